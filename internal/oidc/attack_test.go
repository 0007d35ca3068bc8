package oidc

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

// attackCase is one row of the token-attack table: a mutation of the T-00
// baseline token (or of the issuer, the provider or the options) and the
// exact outcome STS must give.
type attackCase struct {
	name  string
	rules []string // validator rules exercised (trust-pitfalls §7.1)
	cases []string // token cases of trust-cases-sample.json / the full set

	fo     fixtureOpts
	mutate func(f *fixture, t *oidctest.Token)
	raw    func(tb testing.TB, f *fixture) string // replaces mutate+serialize

	wantCode string // "" means the token is accepted
	wantMsg  string // exact caller message, when AWS's is known
	wantRule string
	wantErr  error // sentinel reachable with errors.Is
	check    func(t *testing.T, f *fixture, tok *Token)
}

func setHeader(name string, v any) func(*fixture, *oidctest.Token) {
	return func(_ *fixture, t *oidctest.Token) { t.Header[name] = v }
}

func setClaim(name string, v any) func(*fixture, *oidctest.Token) {
	return func(_ *fixture, t *oidctest.Token) { t.Claims[name] = v }
}

func delClaim(name string) func(*fixture, *oidctest.Token) {
	return func(_ *fixture, t *oidctest.Token) { delete(t.Claims, name) }
}

func setTime(name string, offset int64) func(*fixture, *oidctest.Token) {
	return setClaim(name, testTokenT+offset)
}

// rawPayload replaces the payload bytes, keeping header and a real
// signature over them.
func rawPayload(s string) func(*fixture, *oidctest.Token) {
	return func(_ *fixture, t *oidctest.Token) { t.RawPayload = []byte(s) }
}

// basePayloadJSON is T-00's payload written by hand, for byte-level cases.
func basePayloadJSON(extra string) string {
	return fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":%q,"iat":%d,"nbf":%d,"exp":%d,"jti":"j-1"%s}`,
		githubURL, clientID, baseSubj, testTokenT, testTokenT, testTokenT+300, extra)
}

// attackCases builds the table. The keyring must exist already (keys(t) in
// the caller), so the keys(nil) calls inside cannot fail.
func attackCases() []attackCase {
	generic := msgInvalid
	return []attackCase{
		// --- baseline and accepted variants -------------------------------
		{name: "T-00 baseline", cases: []string{"T-00"}, rules: []string{"V12", "V13", "V14"},
			check: func(t *testing.T, f *fixture, tok *Token) {
				got := map[string]any{"iss": tok.Issuer, "sub": tok.Subject, "aud": tok.Audience, "oaud": tok.OriginalAudience,
					"kid": tok.Header.KID, "alg": tok.Header.Alg, "exp": tok.Expiry.Unix(), "method": tok.VerificationMethod}
				want := map[string]any{"iss": githubURL, "sub": baseSubj, "aud": clientID, "oaud": []string{clientID},
					"kid": "gh-rsa", "alg": "RS256", "exp": int64(testTokenT + 300), "method": VerifiedByTrustStore}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("token (-want +got):\n%s", d)
				}
				if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tok.SHA256) {
					t.Errorf("SHA256 = %q", tok.SHA256)
				}
			}},
		{name: "ES256 on P-256", rules: []string{"V01", "V02"},
			mutate: func(f *fixture, t *oidctest.Token) { t.WithKey(keys(nil).p256) }},
		{name: "ES384 on P-384", rules: []string{"V02"},
			mutate: func(f *fixture, t *oidctest.Token) { t.WithKey(keys(nil).p384) }},
		{name: "ES512 on P-521", rules: []string{"V02"},
			mutate: func(f *fixture, t *oidctest.Token) { t.WithKey(keys(nil).p521) }},
		{name: "RS256 on RSA-4096", rules: []string{"V15"},
			mutate: func(f *fixture, t *oidctest.Token) { t.WithKey(keys(nil).rsa4096) }},
		{name: "RS512 on an RSA key published without alg", rules: []string{"V01", "V17"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				i.PublishKey(alias(keys(nil).rsa, "no-alg"))
				i.OverrideJWK("no-alg", map[string]any{"alg": nil})
			}},
			mutate: func(f *fixture, t *oidctest.Token) { t.Header["alg"], t.Header["kid"] = "RS512", "no-alg" }},
		{name: "no kid, one fitting key", rules: []string{"V04"},
			mutate: func(f *fixture, t *oidctest.Token) {
				t.WithKey(keys(nil).p256)
				delete(t.Header, "kid")
			}},
		{name: "typ absent", rules: []string{"V08"},
			mutate: func(_ *fixture, t *oidctest.Token) { delete(t.Header, "typ") }},
		{name: "x5t hint is ignored", rules: []string{"V03"}, mutate: setHeader("x5t", "AAAA")},
		{name: "aud array containing the client ID", rules: []string{"V13"},
			mutate: setClaim("aud", []any{"other", clientID}),
			check: func(t *testing.T, _ *fixture, tok *Token) {
				if tok.Audience != clientID || !slices.Equal(tok.OriginalAudience, []string{"other", clientID}) {
					t.Errorf("Audience %q, OriginalAudience %q", tok.Audience, tok.OriginalAudience)
				}
			}},
		{name: "azp is the client ID, aud is not (Google shape)", rules: []string{"V13"},
			mutate: func(_ *fixture, t *oidctest.Token) { t.Claims["aud"], t.Claims["azp"] = "1234.apps.example", clientID },
			check: func(t *testing.T, _ *fixture, tok *Token) {
				if tok.Audience != clientID || tok.AuthorizedParty != clientID || tok.OriginalAudience[0] != "1234.apps.example" {
					t.Errorf("Audience %q azp %q oaud %q", tok.Audience, tok.AuthorizedParty, tok.OriginalAudience)
				}
			}},
		{name: "exp just inside the leeway", rules: []string{"V09"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Claims["iat"], t.Claims["nbf"], t.Claims["exp"] = testTokenT-400, testTokenT-400, testTokenT-45
			}},
		{name: "exp before iat", rules: []string{"V09"},
			mutate:   func(_ *fixture, t *oidctest.Token) { t.Claims["exp"] = testTokenT - 1 },
			wantCode: CodeInvalidIdentityToken, wantRule: "V09", wantErr: ErrClaim},
		{name: "nbf just inside the leeway", rules: []string{"V10"}, mutate: setTime("nbf", 60)},
		{name: "T-47 token of another registered issuer (trust decides)", cases: []string{"T-47"}, rules: []string{"V12"},
			raw: func(tb testing.TB, f *fixture) string {
				return f.gl.Mint(tb, "project_path:acme/x:ref_type:branch:ref:main", clientID)
			},
			check: func(t *testing.T, _ *fixture, tok *Token) {
				// Valid for GitLab's provider; the role trusting only GitHub
				// then gives AccessDenied in the STS.
				if tok.Provider.URL != gitlabURL {
					t.Errorf("provider %q", tok.Provider.URL)
				}
			}},
		{name: "T-53 numeric repository_id is canonicalised", cases: []string{"T-53"}, rules: []string{"V18"},
			mutate: setClaim("repository_id", 5001),
			check: func(t *testing.T, _ *fixture, tok *Token) {
				got := ConditionValues(tok)["token.actions.githubusercontent.com:repository_id"]
				if !slices.Equal(got, []string{"5001"}) {
					t.Errorf("repository_id key = %q, want [5001]", got)
				}
			}},
		{name: "roles claim is parsed", mutate: setClaim(rolesClaim, []any{"arn:aws:iam::111122223333:role/a"}),
			check: func(t *testing.T, _ *fixture, tok *Token) {
				if ok, err := tok.AuthorizeRole("arn:aws:iam::111122223333:role/a"); !ok || err != nil {
					t.Errorf("AuthorizeRole(listed) = %v, %v", ok, err)
				}
				_, err := tok.AuthorizeRole("arn:aws:iam::111122223333:role/b")
				e := asError(t, err)
				if e.Code != CodeInvalidIdentityToken || e.Message != msgRoleNotInList || !errors.Is(err, ErrRoleNotBound) {
					t.Errorf("AuthorizeRole(unlisted) = %v", err)
				}
			}},

		// --- V01 algorithm allow-list ------------------------------------
		{name: "T-01 alg none with a signature", cases: []string{"T-01"}, rules: []string{"V01"},
			mutate:   func(_ *fixture, t *oidctest.Token) { t.Header["alg"] = "none"; t.Signature = []byte("x") },
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V01", wantErr: ErrAlgorithm},
		{name: "T-02 alg None", cases: []string{"T-02"}, rules: []string{"V01"},
			mutate:   func(_ *fixture, t *oidctest.Token) { t.Header["alg"] = "None"; t.Signature = []byte("x") },
			wantCode: CodeInvalidIdentityToken, wantRule: "V01", wantErr: ErrAlgorithm},
		{name: "T-02 alg NONE", cases: []string{"T-02"}, rules: []string{"V01"},
			mutate:   func(_ *fixture, t *oidctest.Token) { t.Header["alg"] = "NONE"; t.Signature = []byte("x") },
			wantCode: CodeInvalidIdentityToken, wantRule: "V01", wantErr: ErrAlgorithm},
		{name: "T-03 HS256 keyed with the issuer's public key", cases: []string{"T-03"}, rules: []string{"V01", "V02"},
			mutate: func(f *fixture, t *oidctest.Token) {
				t.Header["alg"] = "HS256"
				t.Sign = oidctest.HMACSigner(keys(nil).rsa.PublicKeyPEM())
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V01", wantErr: ErrAlgorithm},
		{name: "T-04 PS256 (valid PSS signature)", cases: []string{"T-04"}, rules: []string{"V01"},
			mutate:   setHeader("alg", "PS256"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V01", wantErr: ErrAlgorithm},
		{name: "EdDSA", rules: []string{"V01"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Header["alg"] = "EdDSA"
				t.Signature = bytes.Repeat([]byte{1}, 64)
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V01", wantErr: ErrAlgorithm},
		{name: "alg compared case-sensitively (rs256)", rules: []string{"V01"},
			mutate:   func(_ *fixture, t *oidctest.Token) { t.Header["alg"] = "rs256"; t.SignAlg = "RS256" },
			wantCode: CodeInvalidIdentityToken, wantRule: "V01", wantErr: ErrAlgorithm},
		{name: "T-09 alg missing", cases: []string{"T-09"}, rules: []string{"V01"},
			mutate:   func(_ *fixture, t *oidctest.Token) { delete(t.Header, "alg"); t.SignAlg = "RS256" },
			wantCode: CodeInvalidIdentityToken, wantRule: "V01", wantErr: ErrAlgorithm},
		{name: "alg not a string", rules: []string{"V01"},
			mutate:   func(_ *fixture, t *oidctest.Token) { t.Header["alg"] = 256; t.SignAlg = "RS256" },
			wantCode: CodeInvalidIdentityToken, wantRule: "V01", wantErr: ErrAlgorithm},
		{name: "alg outside the provider's narrowed list", rules: []string{"V01"},
			fo:       fixtureOpts{ghProv: func(p *Provider) { p.Algorithms = []string{ES256} }},
			wantCode: CodeInvalidIdentityToken, wantRule: "V01", wantErr: ErrAlgorithm},

		// --- V02 key type, curve, signature format -----------------------
		{name: "T-05 ES256 header with an RSA key's kid", cases: []string{"T-05"}, rules: []string{"V02"},
			mutate: func(f *fixture, t *oidctest.Token) {
				t.Header["alg"] = "ES256"
				t.Key = keys(nil).p256
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V02", wantErr: ErrKeyMismatch},
		{name: "T-06 ES256 header with a P-384 key", cases: []string{"T-06"}, rules: []string{"V02"},
			mutate: func(f *fixture, t *oidctest.Token) {
				t.WithKey(keys(nil).p384)
				t.Header["alg"], t.SignAlg = "ES256", "ES256"
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V02", wantErr: ErrKeyMismatch},
		{name: "RS256 header with an EC key's kid", rules: []string{"V02"},
			mutate:   func(_ *fixture, t *oidctest.Token) { t.Header["kid"] = "ec-p256" },
			wantCode: CodeInvalidIdentityToken, wantRule: "V02", wantErr: ErrKeyMismatch},
		{name: "T-07 ECDSA r=s=0 (psychic signature)", cases: []string{"T-07"}, rules: []string{"V02"},
			mutate: func(f *fixture, t *oidctest.Token) {
				t.WithKey(keys(nil).p256)
				t.Signature = make([]byte, 64)
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V02", wantErr: ErrSignature},
		{name: "T-07 ECDSA r=s=n (out of range)", cases: []string{"T-07"}, rules: []string{"V02"},
			raw: func(tb testing.TB, f *fixture) string {
				k := keys(tb).p256
				tok := f.baseToken().WithKey(k)
				n := k.Signer.Public().(*ecdsa.PublicKey).Curve.Params().N
				tok.Signature = oidctest.RawECDSA(256, n, n)
				return tok.MustSerialize(tb)
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V02", wantErr: ErrSignature},
		{name: "T-08 ECDSA signature in DER", cases: []string{"T-08"}, rules: []string{"V02"},
			mutate: func(f *fixture, t *oidctest.Token) {
				t.WithKey(keys(nil).p256)
				t.DERSignature = true
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V02", wantErr: ErrSignature},
		{name: "signature by another key under the same kid", rules: []string{"V02"},
			mutate:   func(f *fixture, t *oidctest.Token) { t.Key = keys(nil).rsaOther },
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V02", wantErr: ErrSignature},
		{name: "RSA signature one byte short", rules: []string{"V02"},
			raw: func(tb testing.TB, f *fixture) string {
				s := f.baseToken().MustSerialize(tb)
				i := strings.LastIndexByte(s, '.')
				sig, _ := base64.RawURLEncoding.DecodeString(s[i+1:])
				return s[:i+1] + base64.RawURLEncoding.EncodeToString(sig[1:])
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V02", wantErr: ErrSignature},
		{name: "payload changed after signing", rules: []string{"V02"},
			raw: func(tb testing.TB, f *fixture) string {
				good := strings.Split(f.baseToken().MustSerialize(tb), ".")
				evil := f.baseToken()
				evil.Claims["sub"] = "repo:evil/x:ref:refs/heads/main"
				bad := strings.Split(evil.MustSerialize(tb), ".")
				return good[0] + "." + bad[1] + "." + good[2]
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V02", wantErr: ErrSignature},

		// --- V03 key material named by the token -------------------------
		{name: "T-16 jku header", cases: []string{"T-16"}, rules: []string{"V03"},
			mutate:   setHeader("jku", "https://attacker.example/jwks.json"),
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V03", wantErr: ErrHeader,
			check: noRequestTo("attacker.example")},
		{name: "T-17 x5u header", cases: []string{"T-17"}, rules: []string{"V03"},
			mutate:   setHeader("x5u", "https://attacker.example/cert.pem"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V03", wantErr: ErrHeader},
		{name: "T-18 embedded jwk signed by the attacker", cases: []string{"T-18"}, rules: []string{"V03"},
			mutate: func(f *fixture, t *oidctest.Token) {
				k := keys(nil).rsaOther
				t.Header["jwk"] = map[string]any{"kty": "RSA", "n": k.JWK()["n"], "e": "AQAB"}
				t.Key = k
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V03", wantErr: ErrHeader},
		{name: "T-19 x5c header", cases: []string{"T-19"}, rules: []string{"V03"},
			mutate:   setHeader("x5c", []any{"MIIB"}),
			wantCode: CodeInvalidIdentityToken, wantRule: "V03", wantErr: ErrHeader},

		// --- V04 kid -----------------------------------------------------
		{name: "T-12 unknown kid (one refresh, then fail)", cases: []string{"T-12"}, rules: []string{"V04", "V16"},
			mutate:   setHeader("kid", "unknown-kid"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoKey, wantRule: "V04", wantErr: ErrKeyNotFound,
			check: func(t *testing.T, f *fixture, _ *Token) {
				if n := f.gh.Requests().JWKS; n != 1 {
					t.Errorf("JWKS fetched %d times, want 1", n)
				}
			}},
		{name: "T-15 kid path traversal", cases: []string{"T-15"}, rules: []string{"V04"},
			mutate:   setHeader("kid", "../../../../dev/null"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoKey, wantRule: "V04", wantErr: ErrKeyNotFound,
			check: noRequestTo("dev")},
		{name: "T-15 kid SQL injection", cases: []string{"T-15"}, rules: []string{"V04"},
			mutate:   setHeader("kid", "' OR 1=1 --"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V04", wantErr: ErrKeyNotFound},
		{name: "kid matched exactly, not case-insensitively", rules: []string{"V04"},
			mutate:   setHeader("kid", "GH-RSA"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V04", wantErr: ErrKeyNotFound},
		{name: "kid not a string", rules: []string{"V04"}, mutate: setHeader("kid", 7),
			wantCode: CodeInvalidIdentityToken, wantRule: "V04", wantErr: ErrHeader},
		{name: "kid empty", rules: []string{"V04"}, mutate: setHeader("kid", ""),
			wantCode: CodeInvalidIdentityToken, wantRule: "V04", wantErr: ErrHeader},
		{name: "kid longer than 256 bytes", rules: []string{"V04", "V07"}, mutate: setHeader("kid", strings.Repeat("k", 257)),
			wantCode: CodeInvalidIdentityToken, wantRule: "V04", wantErr: ErrHeader},
		{name: "no kid in strict mode", rules: []string{"V04"},
			fo:       fixtureOpts{opts: func(o *Options) { o.RequireKID = true }},
			mutate:   func(_ *fixture, t *oidctest.Token) { delete(t.Header, "kid") },
			wantCode: CodeInvalidIdentityToken, wantRule: "V04", wantErr: ErrHeader},
		{name: "no kid, too many candidate keys", rules: []string{"V04"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				for n := range 10 {
					i.PublishKey(alias(keys(nil).rsa, fmt.Sprintf("dup-%d", n)))
				}
			}},
			mutate:   func(_ *fixture, t *oidctest.Token) { delete(t.Header, "kid") },
			wantCode: CodeInvalidIdentityToken, wantRule: "V04", wantErr: ErrKeyNotFound},

		// --- V05 crit and b64 --------------------------------------------
		{name: "T-22 unknown crit", cases: []string{"T-22"}, rules: []string{"V05"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Header["crit"] = []any{"exp"}
				t.Header["exp"] = 1
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V05", wantErr: ErrHeader},
		{name: "T-23 b64 false", cases: []string{"T-23"}, rules: []string{"V05"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Header["b64"] = false
				t.Header["crit"] = []any{"b64"}
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V05", wantErr: ErrHeader},
		{name: "b64 false without crit", rules: []string{"V05"}, mutate: setHeader("b64", false),
			wantCode: CodeInvalidIdentityToken, wantRule: "V05", wantErr: ErrHeader},

		// --- V06 serialization -------------------------------------------
		{name: "T-24 JWE compact (5 segments, PBES2 p2c)", cases: []string{"T-24"}, rules: []string{"V06"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Header = map[string]any{"alg": "PBES2-HS512+A256KW", "p2c": 2147483647, "enc": "A256GCM", "zip": "DEF"}
				t.Signature = []byte("tag")
				t.Segments = func(h, p, s string) []string { return []string{h, "ZWs", "aXY", p, s} }
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V06", wantErr: ErrMalformed},
		{name: "JWE parameters in a 3-segment token", rules: []string{"V06"},
			mutate:   setHeader("enc", "A256GCM"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V06", wantErr: ErrHeader},
		{name: "T-26 JWS JSON serialization with two signatures", cases: []string{"T-26"}, rules: []string{"V06"},
			raw: func(tb testing.TB, f *fixture) string {
				parts := strings.Split(f.baseToken().MustSerialize(tb), ".")
				return fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q},{"protected":%q,"signature":"AAAA"}]}`,
					parts[1], parts[0], parts[2], parts[0])
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V06", wantErr: ErrMalformed},
		{name: "four segments", rules: []string{"V06"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Segments = func(h, p, s string) []string { return []string{h, p, s, s} }
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V06", wantErr: ErrMalformed},
		{name: "two segments", rules: []string{"V06"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Segments = func(h, p, _ string) []string { return []string{h, p} }
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V06", wantErr: ErrMalformed},
		{name: "unsecured JWS (alg none, empty signature)", rules: []string{"V06", "V01"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Header["alg"] = "none"
				t.Signature = []byte{}
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V06", wantErr: ErrMalformed},
		{name: "nested JWT (cty)", rules: []string{"V06"}, mutate: setHeader("cty", "JWT"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V06", wantErr: ErrHeader},

		// --- V07 size ----------------------------------------------------
		{name: "T-33 longer than 20000 characters", cases: []string{"T-33"}, rules: []string{"V07"},
			mutate:   setClaim("pad", strings.Repeat("x", 20000)),
			wantCode: CodeValidationError, wantMsg: msgTooLong, wantRule: "V07", wantErr: ErrTokenLength},
		{name: "exactly 20000 characters is parsed", rules: []string{"V07"},
			raw: func(tb testing.TB, f *fixture) string {
				t := f.baseToken()
				t.Claims["pad"] = ""
				n := len(t.MustSerialize(tb))
				// Each 3 bytes of padding add 4 characters.
				t.Claims["pad"] = strings.Repeat("x", (20000-n)/4*3)
				s := t.MustSerialize(tb)
				if len(s) > 20000 || len(s) < 19990 {
					tb.Fatalf("built a %d-character token", len(s))
				}
				return s
			}},
		{name: "shorter than 4 characters", rules: []string{"V07"},
			raw:      func(testing.TB, *fixture) string { return "a.b" },
			wantCode: CodeValidationError, wantMsg: msgTooShort, wantRule: "V07", wantErr: ErrTokenLength},
		{name: "20000 dots", rules: []string{"V07", "V06"},
			raw:      func(testing.TB, *fixture) string { return strings.Repeat(".", 20000) },
			wantCode: CodeInvalidIdentityToken, wantRule: "V06", wantErr: ErrMalformed},
		{name: "header over 4 KiB", rules: []string{"V07"}, mutate: setHeader("pad", strings.Repeat("p", 5000)),
			wantCode: CodeInvalidIdentityToken, wantRule: "V07", wantErr: ErrMalformed},
		{name: "payload nested 40 levels", rules: []string{"V07"},
			mutate:   rawPayload(basePayloadJSON(`,"deep":` + strings.Repeat("[", 40) + strings.Repeat("]", 40))),
			wantCode: CodeInvalidIdentityToken, wantRule: "V07", wantErr: ErrJSONTooDeep},

		// --- V08 strict decoding -----------------------------------------
		{name: "T-27 duplicate sub in the payload", cases: []string{"T-27"}, rules: []string{"V08"},
			mutate:   rawPayload(basePayloadJSON(`,"sub":"repo:evil/x:ref:refs/heads/main"`)),
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V08", wantErr: ErrJSONDuplicateMember},
		{name: "case-variant Sub next to sub", rules: []string{"V08"},
			mutate:   rawPayload(basePayloadJSON(`,"Sub":"repo:evil/x:ref:refs/heads/main"`)),
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrJSONCaseVariant},
		{name: "duplicate alg in the header", rules: []string{"V08"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.RawHeader = []byte(`{"alg":"RS256","kid":"gh-rsa","alg":"HS256"}`)
				t.SignAlg = "RS256"
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrJSONDuplicateMember},
		{name: "Kelvin-sign variant of kid (case folding beyond ASCII)", rules: []string{"V08"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.RawHeader = []byte(`{"alg":"RS256","kid":"gh-rsa","\u212aid":"other"}`)
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrJSONCaseVariant},
		{name: "escaped duplicate (s\\u0075b)", rules: []string{"V08"},
			mutate:   rawPayload(basePayloadJSON(`,"s\u0075b":"repo:evil/x:ref:refs/heads/main"`)),
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrJSONDuplicateMember},
		{name: "T-30 padded base64url", cases: []string{"T-30"}, rules: []string{"V08"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Claims["pad"] = "x" // make the payload length not a multiple of 3
				t.Encode = oidctest.PaddedBase64
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V08", wantErr: ErrMalformed},
		{name: "T-30 standard base64 alphabet", cases: []string{"T-30"}, rules: []string{"V08"},
			raw: func(tb testing.TB, f *fixture) string {
				t := f.baseToken()
				t.Claims["pad"] = "?????????" // 0x3F bytes encode as "Pz8/"
				t.Encode = func(b []byte) string { return strings.TrimRight(oidctest.StdBase64(b), "=") }
				s := t.MustSerialize(tb)
				if !strings.ContainsAny(s, "+/") {
					tb.Fatal("token has no '+' or '/'")
				}
				return s
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrMalformed},
		{name: "T-30 non-zero trailing bits", cases: []string{"T-30"}, rules: []string{"V08"},
			raw: func(tb testing.TB, f *fixture) string {
				for pad := ""; ; pad += "x" {
					t := f.baseToken()
					t.Claims["pad"] = pad
					s := t.MustSerialize(tb)
					parts := strings.Split(s, ".")
					pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
					if len(pb)%3 != 0 {
						return parts[0] + "." + oidctest.NonZeroTrailingBits(pb) + "." + parts[2]
					}
				}
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrMalformed},
		{name: "line break inside a segment", rules: []string{"V08"},
			raw: func(tb testing.TB, f *fixture) string {
				s := f.baseToken().MustSerialize(tb)
				return s[:10] + "\n" + s[10:]
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrMalformed},
		{name: "invalid UTF-8 in the payload", rules: []string{"V08"},
			mutate:   rawPayload(basePayloadJSON(`,"x":"` + "\xff" + `"`)),
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrJSONInvalidUTF8},
		{name: "lone surrogate escape", rules: []string{"V08"},
			mutate:   rawPayload(basePayloadJSON(`,"x":"\ud800"`)),
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrJSONSyntax},
		{name: "trailing bytes after the payload object", rules: []string{"V08"},
			mutate:   rawPayload(basePayloadJSON("") + `{}`),
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrJSONSyntax},
		{name: "payload is an array", rules: []string{"V08"},
			mutate:   rawPayload(`[` + basePayloadJSON("") + `]`),
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrJSONNotObject},
		{name: "typ at+jwt (an access token)", rules: []string{"V08"}, mutate: setHeader("typ", "at+jwt"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V08", wantErr: ErrHeader},

		// --- V09 exp -----------------------------------------------------
		{name: "T-36 exp in the past beyond leeway", cases: []string{"T-36"}, rules: []string{"V09"},
			mutate:   setTime("exp", -600),
			wantCode: CodeExpiredToken, wantRule: "V09", wantErr: ErrExpired,
			wantMsg: fmt.Sprintf("Token expired: current date/time %d must be before the expiration date/time %d",
				testTokenT+10, testTokenT-600)},
		{name: "exp missing", rules: []string{"V09"}, mutate: delClaim("exp"),
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V09", wantErr: ErrClaim},
		{name: "T-39 exp as a string", cases: []string{"T-39"}, rules: []string{"V09", "V18"},
			mutate:   setClaim("exp", "1791484575"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},
		{name: "T-39 exp as a fraction", cases: []string{"T-39"}, rules: []string{"V18"},
			mutate:   rawPayload(strings.Replace(basePayloadJSON(""), fmt.Sprintf(`"exp":%d`, testTokenT+300), `"exp":1800000300.5`, 1)),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},
		{name: "T-39 exp 1e308", cases: []string{"T-39"}, rules: []string{"V18"},
			mutate:   rawPayload(strings.Replace(basePayloadJSON(""), fmt.Sprintf(`"exp":%d`, testTokenT+300), `"exp":1e308`, 1)),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},
		{name: "exp negative", rules: []string{"V18"}, mutate: setClaim("exp", -1),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},
		{name: "exp beyond year 9999", rules: []string{"V18"}, mutate: setClaim("exp", int64(1)<<40),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},

		// --- V10 nbf / iat -----------------------------------------------
		{name: "nbf in the future beyond leeway", rules: []string{"V10"},
			mutate:   setTime("nbf", 600),
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V10", wantErr: ErrNotYetValid},
		{name: "iat in the future beyond leeway", rules: []string{"V10"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Claims["iat"], t.Claims["nbf"], t.Claims["exp"] = testTokenT+600, testTokenT, testTokenT+900
			},
			wantCode: CodeInvalidIdentityToken, wantRule: "V10", wantErr: ErrNotYetValid},
		{name: "T-42 iat missing", cases: []string{"T-42"}, rules: []string{"V10"}, mutate: delClaim("iat"),
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V10", wantErr: ErrClaim},

		// --- V11 age and lifetime ----------------------------------------
		{name: "token too old (iat two days ago, exp ahead)", rules: []string{"V11"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Claims["iat"], t.Claims["nbf"], t.Claims["exp"] = testTokenT-172800, testTokenT-172800, testTokenT+3600
			},
			wantCode: CodeExpiredToken, wantMsg: "Token too old: 172810", wantRule: "V11", wantErr: ErrTooOld},
		{name: "lifetime over the provider's maximum", rules: []string{"V11"},
			fo:       fixtureOpts{ghProv: func(p *Provider) { p.MaxTokenLifetime = time.Hour }},
			mutate:   setTime("exp", 7200),
			wantCode: CodeInvalidIdentityToken, wantRule: "V11", wantErr: ErrLifetime},
		{name: "long-lived token refused by the default lifetime limit", rules: []string{"V11"},
			mutate:   setTime("exp", 7*24*3600),
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V11", wantErr: ErrLifetime},
		{name: "long-lived token accepted with the lifetime limit off (AWS parity)", rules: []string{"V11"},
			fo:     fixtureOpts{opts: func(o *Options) { o.MaxTokenLifetime = -1 }},
			mutate: setTime("exp", 7*24*3600)},

		// --- V12 issuer --------------------------------------------------
		{name: "T-44 iss with a trailing slash", cases: []string{"T-44"}, rules: []string{"V12"},
			mutate:   setClaim("iss", githubURL+"/"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoProvider + githubURL + "/", wantRule: "V12", wantErr: ErrUnknownIssuer,
			check: noFetches},
		{name: "T-45 iss on a suffix host", cases: []string{"T-45"}, rules: []string{"V12"},
			mutate:   setClaim("iss", "https://token.actions.githubusercontent.com.evil.example"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoProvider + "https://token.actions.githubusercontent.com.evil.example",
			wantRule: "V12", wantErr: ErrUnknownIssuer, check: noRequestTo("token.actions.githubusercontent.com.evil.example")},
		{name: "T-46 iss in upper case", cases: []string{"T-46"}, rules: []string{"V12"},
			mutate:   setClaim("iss", "https://TOKEN.actions.githubusercontent.com"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V12", wantErr: ErrUnknownIssuer, check: noFetches},
		{name: "T-46 iss over http", cases: []string{"T-46"}, rules: []string{"V12"},
			mutate:   setClaim("iss", "http://token.actions.githubusercontent.com"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V12", wantErr: ErrUnknownIssuer, check: noFetches},
		{name: "iss missing", rules: []string{"V12"}, mutate: delClaim("iss"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V12", wantErr: ErrUnknownIssuer},
		{name: "iss not a string", rules: []string{"V12", "V18"}, mutate: setClaim("iss", []any{githubURL}),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},
		{name: "unregistered iss with a control character is not echoed", rules: []string{"V12", "V20"},
			mutate:   setClaim("iss", "https://evil.example/\r\nInjected: yes"),
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V12", wantErr: ErrUnknownIssuer},

		// --- V13 audience ------------------------------------------------
		{name: "aud missing", rules: []string{"V13"}, mutate: delClaim("aud"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgMissingAud, wantRule: "V13", wantErr: ErrAudience},
		{name: "T-50 azp names another party", cases: []string{"T-50"}, rules: []string{"V13"},
			mutate: func(_ *fixture, t *oidctest.Token) {
				t.Claims["aud"], t.Claims["azp"] = []any{clientID, "other"}, "other"
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: msgIncorrectAud, wantRule: "V13", wantErr: ErrAudience},
		{name: "aud not a client ID", rules: []string{"V13"},
			mutate:   setClaim("aud", "https://github.com/acme"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgIncorrectAud, wantRule: "V13", wantErr: ErrAudience},
		{name: "aud compared case-sensitively", rules: []string{"V13"}, mutate: setClaim("aud", "STS.amazonaws.com"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgIncorrectAud, wantRule: "V13", wantErr: ErrAudience},
		{name: "aud empty array", rules: []string{"V13"}, mutate: setClaim("aud", []any{}),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgMissingAud, wantRule: "V13", wantErr: ErrAudience},
		{name: "aud array with a number", rules: []string{"V13", "V18"}, mutate: setClaim("aud", []any{clientID, 5}),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},
		{name: "aud object", rules: []string{"V18"}, mutate: setClaim("aud", map[string]any{"a": clientID}),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},

		// --- V14 subject -------------------------------------------------
		{name: "sub missing", rules: []string{"V14"}, mutate: delClaim("sub"),
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V14", wantErr: ErrClaim},
		{name: "sub empty", rules: []string{"V14"}, mutate: setClaim("sub", ""),
			wantCode: CodeInvalidIdentityToken, wantRule: "V14", wantErr: ErrClaim},
		{name: "sub with a newline", rules: []string{"V14"}, mutate: setClaim("sub", "repo:acme/x:ref:refs/heads/main\nrepo:evil"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V14", wantErr: ErrClaim},
		{name: "sub with U+2028", rules: []string{"V14"}, mutate: setClaim("sub", "repo:acme/x\u2028"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V14", wantErr: ErrClaim},
		{name: "sub not a string", rules: []string{"V14"}, mutate: setClaim("sub", 42),
			wantCode: CodeInvalidIdentityToken, wantRule: "V14", wantErr: ErrClaim},
		{name: "sub over 1024 bytes", rules: []string{"V14"}, mutate: setClaim("sub", strings.Repeat("s", 1025)),
			wantCode: CodeInvalidIdentityToken, wantRule: "V14", wantErr: ErrClaim},

		// --- V15 weak or broken keys -------------------------------------
		{name: "T-58 RSA-1024 key", cases: []string{"T-58"}, rules: []string{"V15"},
			mutate:   func(f *fixture, t *oidctest.Token) { t.WithKey(keys(nil).rsa1024) },
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoKey, wantRule: "V04", wantErr: ErrKeyNotFound},
		{name: "T-59 RSA key with e=1", cases: []string{"T-59"}, rules: []string{"V15"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				i.PublishKey(alias(keys(nil).rsa, "e-one"))
				i.OverrideJWK("e-one", map[string]any{"e": "AQ"})
			}},
			mutate:   setHeader("kid", "e-one"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoKey, wantRule: "V04", wantErr: ErrKeyNotFound},
		{name: "T-60 EC point not on the curve", cases: []string{"T-60"}, rules: []string{"V15"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				i.PublishKey(alias(keys(nil).p256, "off-curve"))
				y := keys(nil).p256.JWK()["y"].(string)
				i.OverrideJWK("off-curve", map[string]any{"y": flipLastChar(y)})
			}},
			mutate: func(f *fixture, t *oidctest.Token) {
				t.WithKey(alias(keys(nil).p256, "off-curve"))
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoKey, wantRule: "V04", wantErr: ErrKeyNotFound},
		{name: "JWK with private key material", rules: []string{"V15"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				i.PublishKey(alias(keys(nil).rsa, "leaked"))
				i.OverrideJWK("leaked", map[string]any{"d": "AQAB"})
			}},
			mutate:   setHeader("kid", "leaked"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoKey, wantRule: "V04", wantErr: ErrKeyNotFound},

		// --- V16 fetching ------------------------------------------------
		{name: "JWKS unreachable and nothing cached", rules: []string{"V16"},
			fo:       fixtureOpts{issuer: func(i *oidctest.Issuer) { i.SetFailure(oidctest.Failure{Status: 503}) }},
			wantCode: CodeIDPCommunicationError, wantMsg: msgNoKey, wantRule: "V16", wantErr: ErrHTTPStatus},
		{name: "T-56 jwks_uri pointing at the metadata service", cases: []string{"T-56"}, rules: []string{"V16"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				i.SetDiscovery(map[string]any{"jwks_uri": "http://169.254.169.254/latest/meta-data/"})
			}},
			wantCode: CodeIDPCommunicationError, wantRule: "V16", wantErr: ErrDestinationRefused,
			check: noRequestTo("169.254.169.254")},
		{name: "discovery issuer differs from the provider URL", rules: []string{"V16"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				i.SetDiscovery(map[string]any{"issuer": githubURL + "/"})
			}},
			wantCode: CodeIDPCommunicationError, wantRule: "V16", wantErr: ErrDiscovery},
		{name: "T-57 key beyond the first 100 RSA keys is ignored", cases: []string{"T-57"}, rules: []string{"V16"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				for n := range 110 {
					i.PublishKey(alias(keys(nil).rsa, fmt.Sprintf("many-%03d", n)))
				}
			}},
			// gh-rsa and rsa4096 come first, so many-098 is the 101st RSA key.
			mutate:   setHeader("kid", "many-098"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoKey, wantRule: "V04", wantErr: ErrKeyNotFound},
		{name: "T-57 key within the first 100 RSA keys verifies", cases: []string{"T-57"}, rules: []string{"V16"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				for n := range 110 {
					i.PublishKey(alias(keys(nil).rsa, fmt.Sprintf("many-%03d", n)))
				}
			}},
			mutate: setHeader("kid", "many-097")},

		// --- V17 JWK use / key_ops / alg ---------------------------------
		{name: "T-21 JWK use=enc", cases: []string{"T-21"}, rules: []string{"V17"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				i.PublishKey(alias(keys(nil).rsa, "enc-key"))
				i.OverrideJWK("enc-key", map[string]any{"use": "enc"})
			}},
			mutate:   setHeader("kid", "enc-key"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoKey, wantRule: "V04", wantErr: ErrKeyNotFound},
		{name: "T-21 JWK alg RS512, header RS256", cases: []string{"T-21"}, rules: []string{"V17"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				i.PublishKey(alias(keys(nil).rsa, "rs512-key"))
				i.OverrideJWK("rs512-key", map[string]any{"alg": "RS512"})
			}},
			mutate:   setHeader("kid", "rs512-key"),
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V17", wantErr: ErrKeyMismatch},
		{name: "JWK key_ops without verify", rules: []string{"V17"},
			fo: fixtureOpts{issuer: func(i *oidctest.Issuer) {
				i.PublishKey(alias(keys(nil).rsa, "ops-key"))
				i.OverrideJWK("ops-key", map[string]any{"key_ops": []any{"encrypt"}})
			}},
			mutate:   setHeader("kid", "ops-key"),
			wantCode: CodeInvalidIdentityToken, wantMsg: msgNoKey, wantRule: "V04", wantErr: ErrKeyNotFound},

		// --- V18 typed claims --------------------------------------------
		{name: "jti not a string", rules: []string{"V18"}, mutate: setClaim("jti", 12),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},
		{name: "roles claim of the wrong type", rules: []string{"V18"}, mutate: setClaim(rolesClaim, 3),
			wantCode: CodeInvalidIdentityToken, wantRule: "V18", wantErr: ErrClaim},

		// --- V19 replay --------------------------------------------------
		{name: "T-62 replay accepted by default", cases: []string{"T-62"}, rules: []string{"V19"},
			raw: presentedOnce},
		{name: "T-62 replay refused in single-use mode", cases: []string{"T-62"}, rules: []string{"V19"},
			fo:       fixtureOpts{opts: func(o *Options) { o.ReplayCache = NewMemoryReplayCache(100, nil) }},
			raw:      presentedOnce,
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V19", wantErr: ErrReplay},
		{name: "single-use mode needs jti", rules: []string{"V19"},
			fo:       fixtureOpts{opts: func(o *Options) { o.ReplayCache = NewMemoryReplayCache(100, nil) }},
			mutate:   delClaim("jti"),
			wantCode: CodeInvalidIdentityToken, wantRule: "V19", wantErr: ErrReplay},

		// --- V20 signature before claims ---------------------------------
		{name: "T-11 expired and badly signed: the signature error wins", cases: []string{"T-11"}, rules: []string{"V20", "V02"},
			mutate: func(f *fixture, t *oidctest.Token) {
				t.Claims["exp"] = testTokenT - 600
				t.Key = keys(nil).rsaOther
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V02", wantErr: ErrSignature},
		{name: "wrong audience and badly signed: the signature error wins", rules: []string{"V20"},
			mutate: func(f *fixture, t *oidctest.Token) {
				t.Claims["aud"] = "other"
				t.Key = keys(nil).rsaOther
			},
			wantCode: CodeInvalidIdentityToken, wantMsg: generic, wantRule: "V02", wantErr: ErrSignature},
	}
}

func flipLastChar(s string) string {
	c := s[len(s)-1]
	if c == 'A' {
		return s[:len(s)-1] + "B"
	}
	return s[:len(s)-1] + "A"
}

// presentedOnce mints T-00, has it accepted once, and returns it for the
// table to present a second time.
func presentedOnce(tb testing.TB, f *fixture) string {
	raw := f.baseToken().MustSerialize(tb)
	if _, err := f.validate(raw); err != nil {
		tb.Fatalf("first use: %v", err)
	}
	return raw
}

func noFetches(t *testing.T, f *fixture, _ *Token) {
	t.Helper()
	if r := f.gh.Requests(); r != (oidctest.Counts{}) {
		t.Errorf("issuer contacted: %+v", r)
	}
	if u := f.mux.Unrouted(); len(u) != 0 {
		t.Errorf("requests to unknown hosts: %q", u)
	}
}

func noRequestTo(host string) func(*testing.T, *fixture, *Token) {
	return func(t *testing.T, f *fixture, _ *Token) {
		t.Helper()
		for _, u := range f.mux.Unrouted() {
			if strings.HasPrefix(u, host) {
				t.Errorf("request sent to %q", u)
			}
		}
		for _, h := range f.gh.Hosts() {
			if strings.HasPrefix(h, host) {
				t.Errorf("request sent to %q", h)
			}
		}
	}
}

func TestTokenAttacks(t *testing.T) {
	keys(t) // generate the keyring before the table refers to it
	for _, tc := range attackCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.fo)
			var raw string
			if tc.raw != nil {
				raw = tc.raw(t, f)
			} else {
				tok := f.baseToken()
				if tc.mutate != nil {
					tc.mutate(f, tok)
				}
				raw = tok.MustSerialize(t)
			}
			got, err := f.validate(raw)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if tc.check != nil {
					tc.check(t, f, got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted the token; want %s", tc.wantCode)
			}
			e := asError(t, err)
			t.Logf("%s", e)
			if e.Code != tc.wantCode || e.Rule != tc.wantRule {
				t.Errorf("code, rule = %s, %s; want %s, %s (reason: %s)", e.Code, e.Rule, tc.wantCode, tc.wantRule, e.Reason)
			}
			if tc.wantMsg != "" && e.Message != tc.wantMsg {
				t.Errorf("message = %q\nwant      %q", e.Message, tc.wantMsg)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("errors.Is(err, %v) is false; err = %v", tc.wantErr, err)
			}
			if !errors.Is(err, &Error{Code: tc.wantCode}) {
				t.Errorf("errors.Is by code failed")
			}
			// V20 hygiene: neither the token nor its signature leaks.
			sig := raw[strings.LastIndexByte(raw, '.')+1:]
			for _, s := range []string{e.Message, e.Reason, e.Error()} {
				if len(raw) > 20 && strings.Contains(s, raw) || len(sig) > 20 && strings.Contains(s, sig) {
					t.Errorf("error text contains the token: %q", s)
				}
			}
			if tc.check != nil {
				tc.check(t, f, nil)
			}
		})
	}
}

// TestAttackTableCoversEveryRule keeps the table honest: every validator
// rule V01–V20 is exercised by at least one rejecting case.
func TestAttackTableCoversEveryRule(t *testing.T) {
	keys(t)
	covered := map[string]bool{}
	for _, tc := range attackCases() {
		for _, r := range tc.rules {
			covered[r] = true
		}
		if tc.wantRule != "" {
			covered[tc.wantRule] = true
		}
	}
	var missing []string
	for i := 1; i <= 20; i++ {
		if r := fmt.Sprintf("V%02d", i); !covered[r] {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		t.Errorf("rules without a case: %v", missing)
	}
}
