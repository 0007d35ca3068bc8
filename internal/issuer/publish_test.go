package issuer

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// TestPublishStaticIssuer serves Publish's output with a plain file server
// at the issuer URL and verifies tokens through it with go-oidc, as AWS
// would when the issuer is a static S3 site.
func TestPublishStaticIssuer(t *testing.T) {
	srv, setHandler := lateServer(t)
	dir := t.TempDir()
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServer(http.Dir(dir))))
	setHandler(mux)

	cfg := Config{ID: "air", URL: srv.URL + "/static", Profile: ProfileGitHub, Algorithm: ES256, PublishInterval: 30 * time.Minute}
	f := newFixture(t, []Config{cfg})
	ctx := context.Background()
	r, err := f.svc.Rotate(ctx, "air") // a pending key must be published too
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Publish(ctx, dir, "air")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 2 || !slices.Contains(res.Keys, r.KeyID) {
		t.Fatalf("published keys %v, want the active and the pending %s", res.Keys, r.KeyID)
	}
	if !res.NextChange.After(f.clock.Now()) {
		t.Errorf("NextChange %s is not in the future", res.NextChange)
	}
	for _, name := range []string{DiscoveryFile, JWKSFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v", name, st.Mode())
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, JWKSFile))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil || len(set.Key(r.KeyID)) != 1 {
		t.Fatalf("static JWKS lacks the pending key: %s", b)
	}

	// The pre-publication covers the publish interval.
	pre, _ := f.svc.PrePublish("air")
	if want := cfg.PublishInterval + time.Hour + DefaultClockSkew; pre != want {
		t.Errorf("PrePublish = %s, want max-age + publish interval + skew = %s", pre, want)
	}

	tok, err := f.svc.Mint(ctx, "air", MintRequest{Audience: "sts.amazonaws.com", Claims: map[string]any{"repository": "acme/app", "ref": "refs/heads/main"}})
	if err != nil {
		t.Fatal(err)
	}
	octx := oidc.ClientContext(ctx, srv.Client())
	p, err := oidc.NewProvider(octx, cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verifier(&oidc.Config{ClientID: "sts.amazonaws.com", Now: f.clock.Now}).Verify(octx, tok.Raw); err != nil {
		t.Fatalf("token does not verify through the static site: %v", err)
	}

	// Publishing again replaces the files in place.
	if _, err := f.svc.Publish(ctx, dir, "air"); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".well-known", ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if _, err := f.svc.Publish(ctx, dir, "nope"); err == nil {
		t.Error("published an unknown issuer")
	}
}
