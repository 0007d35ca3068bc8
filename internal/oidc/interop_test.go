package oidc

import (
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

// TestInteropGoJose checks both halves against an independent JOSE
// implementation: tokens signed by go-jose validate here, and oidctest's
// JWKS and tokens verify with go-jose. Without it the validator and the
// test issuer could agree on a private mistake.
func TestInteropGoJose(t *testing.T) {
	kr := keys(t)
	for _, tc := range []struct {
		key *oidctest.Key
		alg jose.SignatureAlgorithm
	}{
		{kr.rsa, jose.RS256}, {kr.rsa, jose.RS384}, {kr.rsa, jose.RS512},
		{kr.p256, jose.ES256}, {kr.p384, jose.ES384}, {kr.p521, jose.ES512},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			// The published JWK must not pin the alg, so RS384/RS512 can use
			// the RS256-published RSA key.
			f := newFixture(t, fixtureOpts{issuer: func(i *oidctest.Issuer) { i.OverrideJWK(tc.key.KID, map[string]any{"alg": nil}) }})
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: jose.JSONWebKey{Key: tc.key.Signer, KeyID: tc.key.KID}},
				(&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			claims := f.baseToken().Claims
			raw, err := jwt.Signed(signer).Claims(claims).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := f.validate(raw)
			if err != nil {
				t.Fatalf("go-jose token refused: %v", err)
			}
			if tok.Header.Alg != string(tc.alg) || tok.Subject != baseSubj {
				t.Errorf("alg %s sub %s", tok.Header.Alg, tok.Subject)
			}

			// And the other way: go-jose verifies an oidctest token with the
			// key from oidctest's JWKS.
			minted := f.baseToken().WithKey(tc.key)
			minted.Header["alg"] = string(tc.alg)
			b, _ := json.Marshal(f.gh.JWKS())
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(b, &set); err != nil {
				t.Fatalf("go-jose cannot read oidctest's JWKS: %v", err)
			}
			parsed, err := jwt.ParseSigned(minted.MustSerialize(t), []jose.SignatureAlgorithm{tc.alg})
			if err != nil {
				t.Fatal(err)
			}
			var out jwt.Claims
			if err := parsed.Claims(set.Key(tc.key.KID)[0].Key, &out); err != nil {
				t.Fatalf("go-jose refused the oidctest token: %v", err)
			}
			if err := out.ValidateWithLeeway(jwt.Expected{Issuer: githubURL, Time: time.Unix(testTokenT, 0)}, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}
