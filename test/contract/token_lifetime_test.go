package contract

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

// TestTokenLifetimeGuardCLI runs issue 14's token lifetime guard through a
// real keyless serve and the unmodified AWS CLI: the provider tag
// keyless:max-token-lifetime is checked when written, lowers the maximum
// exp − iat for its issuer (a 2-hour token is then refused as
// InvalidIdentityToken, and decode-authorization-message says why), and
// untagging restores the server's 24 h.
func TestTokenLifetimeGuardCLI(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	const tagKey = "keyless:max-token-lifetime"
	sub := "repo:octo-org/app:ref:refs/heads/main"
	// mint returns a fresh token issued now that lives life.
	mint := func(life time.Duration) string {
		return f.issuer.Mint(t, sub, ciAudience, func(tk *oidctest.Token) {
			iat := time.Now().Unix()
			tk.Claims["iat"], tk.Claims["nbf"], tk.Claims["exp"] = iat, iat, iat+int64(life/time.Second)
		})
	}
	assume := func(name, tok string) cliResult {
		return awsCLI(t, f.srv.URL, awsEnv(t, "", "", ""), "sts", "assume-role-with-web-identity",
			"--role-arn", f.roleARN, "--role-session-name", name, "--web-identity-token", tok, "--duration-seconds", "900")
	}
	// decode returns keyless's reason from a refusal's encoded message.
	decode := func(r cliResult) (reason, rule string) {
		t.Helper()
		_, enc, ok := strings.Cut(r.Stderr, "Encoded authorization failure message: ")
		if !ok {
			t.Fatalf("no encoded message in %s", r.Stderr)
		}
		dec := f.srv.aws(t, "sts", "decode-authorization-message", "--encoded-message", strings.TrimSpace(enc))
		if dec.Code != 0 {
			t.Fatalf("decode: %s", dec.Stderr)
		}
		var x struct {
			Keyless struct{ Reason, Rule, ErrorCode string }
		}
		if err := json.Unmarshal([]byte(dec.JSON(t)["DecodedMessage"].(string)), &x); err != nil {
			t.Fatal(err)
		}
		if x.Keyless.ErrorCode != "InvalidIdentityToken" {
			t.Errorf("explanation errorCode %q", x.Keyless.ErrorCode)
		}
		return x.Keyless.Reason, x.Keyless.Rule
	}
	wantRefused := func(r cliResult) {
		t.Helper()
		wantAWSError(t, r, "InvalidIdentityToken")
		if !strings.Contains(r.Stderr, "The web identity token that was passed could not be validated by AWS.") || strings.Contains(r.Stderr, "lifetime") {
			t.Errorf("the caller's message is not AWS's generic one: %s", r.Stderr)
		}
	}

	// Without the tag: a 2-hour token is accepted, a 48-hour one refused.
	if r := assume("before-tag", mint(2*time.Hour)); r.Code != 0 {
		t.Fatalf("2 h token refused without the tag: %s", r.Stderr)
	}
	long := assume("long", mint(48*time.Hour))
	wantRefused(long)
	if reason, rule := decode(long); rule != "V11" || !strings.Contains(reason, "(172800 s)") || !strings.Contains(reason, "sts.max_token_lifetime") ||
		!strings.Contains(reason, "aws iam tag-open-id-connect-provider --open-id-connect-provider-arn "+f.provider) {
		t.Errorf("rule %s, reason %q", rule, reason)
	}

	// A value the STS could not use is refused when written.
	bad := f.srv.aws(t, "iam", "tag-open-id-connect-provider", "--open-id-connect-provider-arn", f.provider, "--tags", "Key="+tagKey+",Value=7d")
	wantAWSError(t, bad, "InvalidInput")
	if !strings.Contains(bad.Stderr, "days are not a unit") || !strings.Contains(bad.Stderr, "from 1m to 168h") {
		t.Errorf("refusal of 7d: %s", bad.Stderr)
	}

	// The tag lowers the maximum to 1 hour: the 2-hour token is refused.
	if r := f.srv.aws(t, "iam", "tag-open-id-connect-provider", "--open-id-connect-provider-arn", f.provider, "--tags", "Key="+tagKey+",Value=1h"); r.Code != 0 {
		t.Fatalf("tag: %s", r.Stderr)
	}
	refused := assume("tagged", mint(2*time.Hour))
	wantRefused(refused)
	reason, rule := decode(refused)
	for _, want := range []string{"is 2h0m0s (7200 s)", "the maximum of 1h0m0s (3600 s) set for this issuer", `the tag keyless:max-token-lifetime="1h" of ` + f.provider, "untag-open-id-connect-provider"} {
		if !strings.Contains(reason, want) {
			t.Errorf("reason %q lacks %q", reason, want)
		}
	}
	if rule != "V11" {
		t.Errorf("rule %q, want V11", rule)
	}
	if r := assume("short", mint(time.Hour)); r.Code != 0 {
		t.Fatalf("1 h token refused under a 1h tag: %s", r.Stderr)
	}

	// Untagged: the server's 24 h applies again.
	if r := f.srv.aws(t, "iam", "untag-open-id-connect-provider", "--open-id-connect-provider-arn", f.provider, "--tag-keys", tagKey); r.Code != 0 {
		t.Fatalf("untag: %s", r.Stderr)
	}
	if r := assume("untagged", mint(2*time.Hour)); r.Code != 0 {
		t.Fatalf("2 h token refused after untagging: %s", r.Stderr)
	}
}
