package sts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/keylessci/keyless/internal/store"
)

// TestTokenLifetimeGuardAtExchange: AssumeRoleWithWebIdentity applies the
// provider's keyless:max-token-lifetime tag (up and down), falls back to
// the server's maximum (24 h) without it or when the stored value is
// invalid (and logs that), and refuses with InvalidIdentityToken (400),
// AWS's generic message and an encoded explanation whose reason names the
// lifetime, the maximum, where it comes from and how to change it.
func TestTokenLifetimeGuardAtExchange(t *testing.T) {
	const hour = int64(3600)
	tests := []struct {
		name    string
		tag     string // keyless:max-token-lifetime value stored; "" none
		life    int64  // exp − iat, seconds
		refused bool
		reason  []string
		logged  bool
	}{
		{name: "no tag, 5 minutes", life: 300},
		{name: "no tag, exactly 24 h", life: 24 * hour},
		{name: "no tag, 24 h + 1 s", life: 24*hour + 1, refused: true,
			reason: []string{"is 24h0m1s (86401 s)", "the maximum of 24h0m0s (86400 s)", "for all issuers", "sts.max_token_lifetime",
				"aws iam tag-open-id-connect-provider", "Key=keyless:max-token-lifetime"}},
		{name: "no tag, 10 days", life: 240 * hour, refused: true, reason: []string{"(864000 s)"}},
		{name: "tag lowers to 15m: at", tag: "15m", life: 900},
		{name: "tag lowers to 15m: just over", tag: "15m", life: 901, refused: true,
			reason: []string{"the maximum of 15m0s (900 s)", "set for this issuer", `the tag keyless:max-token-lifetime="15m" of arn:aws:iam::` + account,
				"aws iam untag-open-id-connect-provider", "--tag-keys keyless:max-token-lifetime"}},
		{name: "tag raises to 72h: 48 h accepted", tag: "72h", life: 48 * hour},
		{name: "tag raises to 72h (seconds): 73 h refused", tag: "259200", life: 73 * hour, refused: true,
			reason: []string{"the maximum of 72h0m0s", "set for this issuer"}},
		{name: "invalid stored tag: default applies, 24 h accepted", tag: "7d", life: 24 * hour, logged: true},
		{name: "invalid stored tag: default applies, 25 h refused", tag: "7d", life: 25 * hour, refused: true, logged: true,
			reason: []string{`tag keyless:max-token-lifetime="7d" is invalid`, "was ignored", "the maximum of 24h0m0s", "for all issuers"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			var logs bytes.Buffer
			f.svc.log = slog.New(slog.NewJSONHandler(&logs, nil))
			provARN := iam.ProviderARN(account, f.iss.URL())
			if tc.tag != "" {
				// Stored directly: the IAM API would refuse "7d".
				err := f.st.Providers().Update(context.Background(), provARN, func(p *store.Provider) error {
					p.Tags = append(p.Tags, store.Tag{Key: iam.TagMaxTokenLifetime, Value: tc.tag})
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			// Issued 10 s ago, so the token is fresh whatever its lifetime.
			iat := f.now.Add(-10 * time.Second).Unix()
			tok := f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com", func(tk *oidctest.Token) {
				tk.Claims["iat"], tk.Claims["nbf"], tk.Claims["exp"] = iat, iat, iat+tc.life
			})
			_, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {tok}})
			if got := strings.Contains(logs.String(), "invalid token lifetime tag"); got != tc.logged {
				t.Errorf("invalid tag logged = %v, want %v: %s", got, tc.logged, logs.String())
			}
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e, ok := errors.AsType[*awsquery.Error](err)
			if !ok || e.Code != "InvalidIdentityToken" || e.HTTPStatus() != 400 {
				t.Fatalf("err = %v, want InvalidIdentityToken (400)", err)
			}
			generic, enc, found := strings.Cut(e.Message, " Encoded authorization failure message: ")
			if !found || generic != "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request." {
				t.Fatalf("message %q: want AWS's generic message and an encoded explanation", e.Message)
			}
			if strings.Contains(e.Message, "lifetime") {
				t.Errorf("the caller's message reveals the reason: %q", e.Message)
			}
			res, err := f.svc.decodeAuthorizationMessage(context.Background(), &awsquery.Request{Params: awsquery.ParamsFromValues(url.Values{"EncodedMessage": {enc}})})
			if err != nil {
				t.Fatal(err)
			}
			var x Explanation
			if err := json.Unmarshal([]byte(res.(decodeResult).DecodedMessage), &x); err != nil {
				t.Fatal(err)
			}
			if x.Keyless.ErrorCode != "InvalidIdentityToken" || x.Keyless.Rule != "V11" {
				t.Errorf("explanation code %q rule %q", x.Keyless.ErrorCode, x.Keyless.Rule)
			}
			t.Logf("decoded reason: %s", x.Keyless.Reason)
			if !strings.Contains(x.Keyless.Reason, "--open-id-connect-provider-arn "+provARN+" ") {
				t.Errorf("reason does not name the provider %s: %q", provARN, x.Keyless.Reason)
			}
			for _, w := range tc.reason {
				if !strings.Contains(x.Keyless.Reason, w) {
					t.Errorf("reason %q lacks %q", x.Keyless.Reason, w)
				}
			}
		})
	}
}
