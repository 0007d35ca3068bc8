package issuer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigValidation(t *testing.T) {
	ok := Config{ID: "ci", URL: "https://keyless.example.com/oidc"}
	tests := []struct {
		name string
		mod  func(*Config)
		bad  bool
	}{
		{"defaults", func(*Config) {}, false},
		{"root path", func(c *Config) { c.URL = "https://keyless.example.com" }, false},
		{"loopback http with port", func(c *Config) { c.URL = "http://127.0.0.1:8400/oidc" }, false},
		{"localhost http", func(c *Config) { c.URL = "http://localhost:8400/oidc" }, false},
		{"ipv6 loopback http", func(c *Config) { c.URL = "http://[::1]:8400/oidc" }, false},
		{"public http", func(c *Config) { c.URL = "http://keyless.example.com/oidc" }, true},
		{"trailing slash", func(c *Config) { c.URL = "https://keyless.example.com/oidc/" }, true},
		{"query", func(c *Config) { c.URL = "https://keyless.example.com/oidc?x=1" }, true},
		{"empty query", func(c *Config) { c.URL = "https://keyless.example.com/oidc?" }, true},
		{"fragment", func(c *Config) { c.URL = "https://keyless.example.com/oidc#x" }, true},
		{"user info", func(c *Config) { c.URL = "https://u:p@keyless.example.com/oidc" }, true},
		{"dot segment", func(c *Config) { c.URL = "https://keyless.example.com/a/../b" }, true},
		{"pattern metacharacter", func(c *Config) { c.URL = "https://keyless.example.com/{id}" }, true},
		{"percent-encoded path", func(c *Config) { c.URL = "https://keyless.example.com/a%2Fb" }, true},
		{"too long", func(c *Config) { c.URL = "https://keyless.example.com/" + strings.Repeat("a", 250) }, true},
		{"bad id", func(c *Config) { c.ID = "a/b" }, true},
		{"unknown profile", func(c *Config) { c.Profile = "jenkins" }, true},
		{"unknown algorithm", func(c *Config) { c.Algorithm = "HS256" }, true},
		{"lifetime over max", func(c *Config) { c.TokenLifetime, c.MaxTokenLifetime = 3*time.Hour, 2*time.Hour }, true},
		{"long default lifetime raises the default max", func(c *Config) { c.TokenLifetime = 7 * time.Hour }, false},
		{"max over a day", func(c *Config) { c.MaxTokenLifetime = 25 * time.Hour }, true},
		{"rotation shorter than pre-publication", func(c *Config) { c.RotationPeriod = time.Hour }, true},
		{"max-age too long", func(c *Config) { c.JWKSMaxAge = 48 * time.Hour }, true},
		{"circleci without org", func(c *Config) { c.Profile = ProfileCircleCI }, true},
		{"circleci org from URL", func(c *Config) { c.Profile = ProfileCircleCI; c.URL = "https://keyless.example.com/org/" + orgID }, false},
		{"circleci explicit org", func(c *Config) { c.Profile = ProfileCircleCI; c.Org = "acme" }, false},
		{"relative service documentation", func(c *Config) { c.ServiceDocumentation = "/docs" }, true},
		{"negative publish interval", func(c *Config) { c.PublishInterval = -time.Minute }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			_, err := New(Options{Keys: openStore(t, t.TempDir()+"/k.db").KeyMaterial(), Master: testMaster(t), Issuers: []Config{c}})
			if tt.bad != (err != nil) {
				t.Fatalf("New = %v, want bad=%v", err, tt.bad)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
		})
	}

	// Several issuers: ids and paths must be distinct.
	ks := openStore(t, t.TempDir()+"/k.db").KeyMaterial()
	for _, pair := range [][2]Config{
		{ok, {ID: "ci", URL: "https://other.example.com/x"}},
		{ok, {ID: "ci2", URL: "https://other.example.com/oidc"}},
	} {
		if _, err := New(Options{Keys: ks, Master: testMaster(t), Issuers: pair[:]}); !errors.Is(err, ErrConfig) {
			t.Errorf("%v: %v", pair, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	f := newFixture(t, []Config{{ID: "ci", URL: "https://keyless.example.com/org/" + orgID}})
	got := f.svc.Issuers()[0]
	want := Config{
		ID: "ci", URL: "https://keyless.example.com/org/" + orgID, Profile: ProfileGeneric, Algorithm: RS256,
		TokenLifetime: time.Hour, MaxTokenLifetime: 6 * time.Hour, RotationPeriod: 7 * 24 * time.Hour,
		JWKSMaxAge: time.Hour, Org: orgID,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	pre, _ := f.svc.PrePublish("ci")
	if pre != time.Hour+2*DefaultReloadInterval+DefaultClockSkew {
		t.Errorf("PrePublish = %s", pre)
	}
	// A default-lifetime token lives one hour.
	tok, err := f.svc.Mint(context.Background(), "ci", MintRequest{Subject: "s", Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresAt.Sub(tok.IssuedAt) != time.Hour || !tok.IssuedAt.Equal(t0) {
		t.Errorf("token %s–%s", tok.IssuedAt, tok.ExpiresAt)
	}
}

// TestTokenNeverPrinted: %v and slog output of a Token leave out the JWT.
func TestTokenNeverPrinted(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, []Config{{ID: "ci", URL: "https://keyless.example.com/ci", Algorithm: ES256}}, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	tok, err := f.svc.Mint(context.Background(), "ci", MintRequest{Subject: "s", Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	sig := tok.Raw[strings.LastIndexByte(tok.Raw, '.')+1:]
	if strings.Contains(fmt.Sprint(tok), sig) || strings.Contains(fmt.Sprintf("%+v", tok), sig) || strings.Contains(fmt.Sprintf("%#v", tok), sig) {
		t.Error("fmt prints the token")
	}
	status, _, out := postToken(t, f.svc.Handler(), TokenPath("ci"), `{"subject":"s","audience":"a"}`)
	if status != 200 {
		t.Fatal(out)
	}
	raw := out["token"].(string)
	if strings.Contains(logs.String(), raw[strings.LastIndexByte(raw, '.')+1:]) {
		t.Errorf("the log carries the token: %s", logs.String())
	}
	if !strings.Contains(logs.String(), tokenHash(raw)) {
		t.Errorf("the log lacks the token's SHA-256: %s", logs.String())
	}
}

func TestStartRunsScheduledRotation(t *testing.T) {
	f := newFixture(t, []Config{{ID: "ci", URL: "https://keyless.example.com/ci", Algorithm: ES256}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := f.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Start(ctx); err == nil {
		t.Error("Start twice succeeded")
	}
	// The loop's wake-up is the reload interval, or sooner for a due
	// rotation or an expiry.
	pre, _ := f.svc.PrePublish("ci")
	if d := f.svc.nextWake(f.clock.Now()); d != DefaultReloadInterval {
		t.Errorf("nextWake = %s", d)
	}
	f.clock.Advance(DefaultRotationPeriod - pre - 30*time.Second)
	if d := f.svc.nextWake(f.clock.Now()); d != 30*time.Second {
		t.Errorf("nextWake before a due rotation = %s, want 30s", d)
	}
}
