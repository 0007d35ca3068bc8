package issuer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// profileRequests is one valid request per profile.
func profileRequests() map[string]MintRequest {
	return map[string]MintRequest{
		ProfileGeneric: {Subject: "woodpecker:acme/app:push", Audience: "sts.amazonaws.com", Claims: map[string]any{"branch": "main"}},
		ProfileCircleCI: {
			Subject: "org/" + orgID + "/project/p-1/user/u-1",
			Claims:  map[string]any{ccVCSRef: "refs/heads/main"},
		},
		ProfileGitHub: {Audience: "sts.amazonaws.com", Claims: map[string]any{"repository": "acme/app", "ref": "refs/heads/main"}},
		ProfileGitLab: {Audience: "sts.amazonaws.com", Claims: map[string]any{"project_path": "acme/app", "ref": "main", "ref_type": "branch"}},
	}
}

// TestIndependentVerifiers checks every profile and algorithm with two
// verifiers that share no code with the issuer: go-oidc (discovery + remote
// JWKS over HTTP, as an STS does) and go-jose's jwt package.
func TestIndependentVerifiers(t *testing.T) {
	srv, setHandler := lateServer(t)
	var cfgs []Config
	for prof := range profileRequests() {
		for _, alg := range []string{RS256, ES256} {
			id := prof + "-" + strings.ToLower(alg)
			cfgs = append(cfgs, Config{ID: id, URL: srv.URL + "/" + id + "/org/" + orgID, Profile: prof, Algorithm: alg})
		}
	}
	f := newFixture(t, cfgs)
	setHandler(f.svc.Handler())
	ctx := oidc.ClientContext(context.Background(), srv.Client())

	for _, c := range f.svc.Issuers() {
		t.Run(c.ID, func(t *testing.T) {
			req := profileRequests()[c.Profile]
			tok, err := f.svc.Mint(context.Background(), c.ID, req)
			if err != nil {
				t.Fatal(err)
			}

			// go-oidc, pointed at the issuer URL only.
			provider, err := oidc.NewProvider(ctx, c.URL)
			if err != nil {
				t.Fatal(err)
			}
			v := provider.Verifier(&oidc.Config{ClientID: tok.Audience, Now: f.clock.Now})
			idt, err := v.Verify(ctx, tok.Raw)
			if err != nil {
				t.Fatalf("go-oidc rejects the token: %v", err)
			}
			if idt.Issuer != c.URL || idt.Subject != tok.Subject {
				t.Errorf("go-oidc sees iss=%q sub=%q", idt.Issuer, idt.Subject)
			}
			var claims map[string]any
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			for name, want := range req.Claims {
				if claims[name] != want {
					t.Errorf("claim %s = %v, want %v", name, claims[name], want)
				}
			}
			if _, ok := claims["iat"].(float64); !ok {
				t.Errorf("iat is %T, want a JSON number", claims["iat"])
			}

			// go-jose with the JWKS fetched from the jwks_uri.
			keys := fetchJWKS(t, srv.Client(), c.URL+"/.well-known/jwks.json")
			parsed, err := jwt.ParseSigned(tok.Raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			if got := parsed.Headers[0].Algorithm; got != c.Algorithm {
				t.Errorf("alg = %s, want %s", got, c.Algorithm)
			}
			match := keys.Key(parsed.Headers[0].KeyID)
			if len(match) != 1 {
				t.Fatalf("kid %s is in the JWKS %d times", parsed.Headers[0].KeyID, len(match))
			}
			var std jwt.Claims
			if err := parsed.Claims(match[0].Key, &std); err != nil {
				t.Fatalf("go-jose rejects the signature: %v", err)
			}
			if err := std.ValidateWithLeeway(jwt.Expected{Issuer: c.URL, AnyAudience: jwt.Audience{tok.Audience}, Time: f.clock.Now()}, 0); err != nil {
				t.Errorf("go-jose claim validation: %v", err)
			}

			// A tampered payload must fail both.
			parts := strings.Split(tok.Raw, ".")
			forged := parts[0] + "." + parts[1][:len(parts[1])-2] + "AA." + parts[2]
			if _, err := v.Verify(ctx, forged); err == nil {
				t.Error("go-oidc accepted a tampered token")
			}
			if p, err := jwt.ParseSigned(forged, []jose.SignatureAlgorithm{jose.RS256, jose.ES256}); err == nil {
				if err := p.Claims(match[0].Key, &std); err == nil {
					t.Error("go-jose accepted a tampered token")
				}
			}
		})
	}

	// A token of one issuer does not verify as another's.
	tok, err := f.svc.Mint(context.Background(), "generic-rs256", profileRequests()[ProfileGeneric])
	if err != nil {
		t.Fatal(err)
	}
	other, err := oidc.NewProvider(ctx, cfgs[0].URL)
	if cfgs[0].ID == "generic-rs256" {
		other, err = oidc.NewProvider(ctx, cfgs[1].URL)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: f.clock.Now}).Verify(ctx, tok.Raw); err == nil {
		t.Error("a token verified against another issuer")
	}
}

func fetchJWKS(t *testing.T, c *http.Client, url string) *jose.JSONWebKeySet {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	return &set
}
