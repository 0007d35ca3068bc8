package oidc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestTokenLifetimeGuard: exp − iat against the validator's maximum
// (default 24 h) and a provider's override, up and down (V11). A refusal
// is InvalidIdentityToken with AWS's generic message; the reason names the
// lifetime, the maximum, which maximum applied, and the provider's note.
func TestTokenLifetimeGuard(t *testing.T) {
	keys(t)
	const day = int64(24 * 3600)
	tests := []struct {
		name     string
		opts     func(*Options)
		prov     func(*Provider)
		iat, exp int64 // offsets from T; the clock is T+10 s
		omit     string
		// wantErr is nil for an accepted token.
		wantErr    error
		wantReason []string
	}{
		{name: "5 minutes (GitHub)", exp: 300},
		{name: "exactly the default 24 h", exp: day},
		{name: "one second over the default", exp: day + 1, wantErr: ErrLifetime,
			wantReason: []string{"is 24h0m1s (86401 s)", "the maximum of 24h0m0s (86400 s)", "for all issuers"}},
		{name: "far over the default (30 days)", exp: 30 * day, wantErr: ErrLifetime,
			wantReason: []string{"is 720h0m0s (2592000 s)", "the maximum of 24h0m0s", "for all issuers"}},
		{name: "issued an hour ago, 25 h lifetime", iat: -3600, exp: 24 * 3600, wantErr: ErrLifetime,
			wantReason: []string{"(90000 s)"}},
		{name: "configured maximum 1 h: at", opts: func(o *Options) { o.MaxTokenLifetime = time.Hour }, exp: 3600},
		{name: "configured maximum 1 h: just over", opts: func(o *Options) { o.MaxTokenLifetime = time.Hour }, exp: 3601,
			wantErr: ErrLifetime, wantReason: []string{"the maximum of 1h0m0s (3600 s)", "for all issuers"}},
		{name: "provider lowers it to 15 m: at", prov: func(p *Provider) { p.MaxTokenLifetime = 15 * time.Minute }, exp: 900},
		{name: "provider lowers it to 15 m: just over", exp: 901, wantErr: ErrLifetime,
			prov: func(p *Provider) {
				p.MaxTokenLifetime = 15 * time.Minute
				p.MaxTokenLifetimeNote = func() string { return "set by the tag keyless:max-token-lifetime=15m" }
			},
			wantReason: []string{"the maximum of 15m0s (900 s)", "set for this issuer", "; set by the tag keyless:max-token-lifetime=15m"}},
		{name: "provider raises it to 72 h: 48 h accepted", prov: func(p *Provider) { p.MaxTokenLifetime = 72 * time.Hour }, exp: 2 * day},
		{name: "provider raises it to 72 h: 73 h refused", prov: func(p *Provider) { p.MaxTokenLifetime = 72 * time.Hour },
			exp: 3*day + 3600, wantErr: ErrLifetime, wantReason: []string{"the maximum of 72h0m0s", "set for this issuer"}},
		{name: "provider override beats a lower configured maximum",
			opts: func(o *Options) { o.MaxTokenLifetime = time.Hour }, prov: func(p *Provider) { p.MaxTokenLifetime = 2 * time.Hour }, exp: 7200},
		{name: "check off: 30 days accepted", opts: func(o *Options) { o.MaxTokenLifetime = -1 }, exp: 30 * day},
		{name: "exp equal to iat", exp: 0, wantErr: ErrClaim, wantReason: []string{"not after iat"}},
		{name: "exp before iat", exp: -1, wantErr: ErrClaim, wantReason: []string{"not after iat"}},
		{name: "no exp", omit: "exp", exp: 300, wantErr: ErrClaim, wantReason: []string{`no "exp"`}},
		{name: "no iat", omit: "iat", exp: 300, wantErr: ErrClaim, wantReason: []string{`no "iat"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{opts: tc.opts, ghProv: tc.prov})
			tok := f.baseToken()
			tok.Claims["iat"], tok.Claims["nbf"], tok.Claims["exp"] = testTokenT+tc.iat, testTokenT+tc.iat, testTokenT+tc.exp
			if tc.omit != "" {
				delete(tok.Claims, tc.omit)
			}
			got, err := f.validate(tok.MustSerialize(t))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if life := got.Expiry.Sub(got.IssuedAt); life != time.Duration(tc.exp-tc.iat)*time.Second {
					t.Errorf("token lifetime %s", life)
				}
				return
			}
			e := asError(t, err)
			if e.Code != CodeInvalidIdentityToken || e.Message != msgInvalid || !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %s %q (%v), want InvalidIdentityToken with the generic message and %v", e.Code, e.Message, e.Err, tc.wantErr)
			}
			if tc.wantErr == ErrLifetime && e.Rule != "V11" {
				t.Errorf("rule %s, want V11", e.Rule)
			}
			for _, w := range tc.wantReason {
				if !strings.Contains(e.Reason, w) {
					t.Errorf("reason %q lacks %q", e.Reason, w)
				}
			}
		})
	}
}
