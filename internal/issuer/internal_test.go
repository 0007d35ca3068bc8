package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestMintInternal: keyless's own tokens (broker mode) are signed by the
// issuer whatever its claim profile (a circleci issuer here, whose profile
// would refuse this subject), verify with an independent verifier, carry
// the requested claims and a fresh jti, and refuse registered claims.
func TestMintInternal(t *testing.T) {
	srv, setHandler := lateServer(t)
	f := newFixture(t, []Config{{ID: "cc", URL: srv.URL + "/org/" + orgID, Profile: ProfileCircleCI}})
	setHandler(f.svc.Handler())
	ctx := context.Background()
	sub := BrokerSubjectPrefix + "123456789012:role/deploy"
	req := InternalRequest{Subject: sub, Audience: "sts.amazonaws.com", Lifetime: 5 * time.Minute,
		Claims: map[string]any{"ci_sub": "repo:acme/app:ref:refs/heads/main", "ci_run_id": json.Number("42"), "https://aws.amazon.com/tags": map[string]any{"principal_tags": map[string]any{"team": []any{"web"}}}}}
	tok, err := f.svc.MintInternal(ctx, "cc", req)
	if err != nil {
		t.Fatal(err)
	}
	v := oidc.NewVerifier(srv.URL+"/org/"+orgID, oidc.NewRemoteKeySet(oidc.ClientContext(ctx, srv.Client()), srv.URL+"/org/"+orgID+"/.well-known/jwks.json"),
		&oidc.Config{ClientID: "sts.amazonaws.com", Now: f.clock.Now})
	idt, err := v.Verify(oidc.ClientContext(ctx, srv.Client()), tok.Raw)
	if err != nil {
		t.Fatalf("an independent verifier rejects the token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != sub || claims["ci_sub"] != "repo:acme/app:ref:refs/heads/main" || claims["ci_run_id"] != float64(42) || claims["jti"] != tok.JTI || tok.JTI == "" ||
		idt.Expiry.Sub(idt.IssuedAt) != 5*time.Minute || claims["https://aws.amazon.com/tags"] == nil {
		t.Fatalf("claims = %v, token %v", claims, tok)
	}
	again, err := f.svc.MintInternal(ctx, "cc", req)
	if err != nil || again.JTI == tok.JTI {
		t.Fatalf("second token jti %q (first %q): %v", again.JTI, tok.JTI, err)
	}
	bad := []struct {
		name string
		mod  func(*InternalRequest)
		want error
	}{
		{"registered claim", func(r *InternalRequest) { r.Claims = map[string]any{"Aud": "x"} }, ErrReservedClaim},
		{"control character", func(r *InternalRequest) { r.Claims = map[string]any{"ci_x": "a\u202eb"} }, ErrClaimValue},
		{"null", func(r *InternalRequest) { r.Claims = map[string]any{"ci_x": nil} }, ErrClaimValue},
		{"lifetime too short", func(r *InternalRequest) { r.Lifetime = time.Second }, ErrLifetime},
		{"no audience", func(r *InternalRequest) { r.Audience = "" }, ErrClaimValue},
		{"too large", func(r *InternalRequest) { r.Claims = map[string]any{"ci_big": strings.Repeat("x", MaxTokenChars)} }, ErrTooLarge},
	}
	for _, tc := range bad {
		r := req
		tc.mod(&r)
		if _, err := f.svc.MintInternal(ctx, "cc", r); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := f.svc.MintInternal(ctx, "nope", req); !errors.Is(err, ErrUnknownIssuer) {
		t.Errorf("unknown issuer: %v", err)
	}
}

// TestMintRefusesBrokerSubjects: the token endpoint never mints a subject
// of the keyless:… form, whatever the case: an AWS role trusting keyless's
// broker subject would accept it from any client allowed to mint.
func TestMintRefusesBrokerSubjects(t *testing.T) {
	f := newFixture(t, []Config{{ID: "gen", URL: "https://keyless.example.com/gen"}})
	for _, sub := range []string{"keyless:123456789012:role/deploy", "KEYLESS:123456789012:role/deploy", "keyless:"} {
		_, err := f.svc.Mint(context.Background(), "gen", MintRequest{Subject: sub, Audience: "sts.amazonaws.com"})
		if !errors.Is(err, ErrReservedClaim) {
			t.Errorf("Mint(sub=%q) = %v, want a reserved-claim refusal", sub, err)
		}
	}
	if _, err := f.svc.Mint(context.Background(), "gen", MintRequest{Subject: "keyless-runner:1", Audience: "sts.amazonaws.com"}); err != nil {
		t.Errorf("an ordinary subject: %v", err)
	}
}
