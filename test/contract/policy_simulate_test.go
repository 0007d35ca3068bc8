package contract

// `keyless policy simulate` (CONTRACT.md §4): its verdict on every
// trust_policy case of the shared sample, and its explanation against the
// one a real `keyless serve` seals into a refusal and
// `aws sts decode-authorization-message` returns.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/google/go-cmp/cmp"
)

// simulateRun is one run of the keyless binary's `policy simulate`.
type simulateRun struct {
	code           int
	stdout, stderr string
}

func runSimulate(t *testing.T, args ...string) simulateRun {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"policy", "simulate"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := simulateRun{stdout: out.String(), stderr: errb.String()}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("keyless policy simulate: %v", err)
	}
	return r
}

// simulateOutput is `--output json`.
type simulateOutput struct {
	Decision    string         `json:"decision"`
	Reason      string         `json:"reason"`
	Provider    string         `json:"provider"`
	Explanation map[string]any `json:"explanation"`
}

func (r simulateRun) json(t *testing.T) simulateOutput {
	t.Helper()
	var v simulateOutput
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("simulate output is not JSON: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return v
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPolicySimulateTrustCases: for every trust_policy case of the sample,
// `keyless policy simulate` on the case's policy and claims gives the
// case's expected_verdict (exit 0 allow, 1 deny; a document IAM refuses,
// exit 2), at the case's own time.
func TestPolicySimulateTrustCases(t *testing.T) {
	t.Parallel()
	n := 0
	for _, c := range loadTrustCases(t, trustCasesFile) {
		if c.Category != "trust_policy" {
			continue
		}
		n++
		t.Run(c.ID, func(t *testing.T) {
			doc := string(c.Policy)
			rawOnly := doc == "null" || doc == ""
			if rawOnly {
				doc = c.PolicyRaw
			}
			claims, err := json.Marshal(c.TokenClaims)
			if err != nil {
				t.Fatal(err)
			}
			at := time.Now()
			if iat, ok := c.TokenClaims["iat"].(json.Number); ok {
				s, err := iat.Int64()
				if err != nil {
					t.Fatal(err)
				}
				at = time.Unix(s+10, 0)
			}
			r := runSimulate(t, "--trust-policy", writeTemp(t, "trust.json", []byte(doc)), "--claims", writeTemp(t, "claims.json", claims),
				"--time", at.UTC().Format(time.RFC3339), "--output", "json")
			if rawOnly {
				if r.code != 2 {
					t.Fatalf("a document IAM refuses: exit %d, want 2\n%s", r.code, r.stderr)
				}
				return
			}
			want := map[string]int{"allow": 0, "deny": 1}[c.ExpectedVerdict]
			if c.ExpectedVerdict != "allow" && c.ExpectedVerdict != "deny" {
				t.Fatalf("unknown expected_verdict %q", c.ExpectedVerdict)
			}
			out := r.json(t)
			if out.Decision != c.ExpectedVerdict || r.code != want {
				t.Errorf("decision %q (exit %d), want %q (exit %d): %s\n%s", out.Decision, r.code, c.ExpectedVerdict, want, out.Reason, c.Title)
			}
			if wantProvider := "arn:aws:iam::" + caseAccount + ":oidc-provider/" + c.IssuerKeyPrefix; out.Provider != wantProvider {
				t.Errorf("provider = %s, want %s", out.Provider, wantProvider)
			}
		})
	}
	if n != 26 {
		t.Errorf("%d trust_policy cases, want 26", n)
	}
}

// TestPolicySimulateSameAsDecoder: a refused exchange through a real
// `keyless serve` and the AWS CLI, its explanation decoded with
// `aws sts decode-authorization-message`, and `keyless policy simulate` on
// the role and the same token give the same explanation, but for
// keyless.tokenSha256: only the server sees the token as sent (the
// simulator reads claims, and says so). With the role as IAM's API returns
// it (the document URL-encoded, as written) everything else is equal; with
// the role as `aws iam get-role` prints it, the CLI has re-indented the
// document, so the statements' start and end positions (which locate them
// in the document read) differ and only they. The same role then admits a
// token of the right subject on both sides.
func TestPolicySimulateSameAsDecoder(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	got, err := f.srv.iamClient(adminKeyID, adminSecret, "").GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("ci-deploy")})
	if err != nil {
		t.Fatal(err)
	}
	apiRole, err := json.Marshal(map[string]any{"Role": map[string]any{"Arn": aws.ToString(got.Role.Arn), "AssumeRolePolicyDocument": aws.ToString(got.Role.AssumeRolePolicyDocument)}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(got.Role.AssumeRolePolicyDocument), "%7B") {
		t.Fatalf("GetRole's document is not URL-encoded: %s", aws.ToString(got.Role.AssumeRolePolicyDocument))
	}
	apiFile := writeTemp(t, "role-api.json", apiRole)
	cliRole := f.srv.aws(t, "iam", "get-role", "--role-name", "ci-deploy")
	if cliRole.Code != 0 {
		t.Fatalf("get-role: %s", cliRole.Stderr)
	}
	cliFile := writeTemp(t, "role-cli.json", []byte(cliRole.Stdout))

	tok := f.token(t, "repo:evil-org/app:ref:refs/heads/main")
	tokFile := writeTemp(t, "token.jwt", []byte(tok))
	bad := awsCLI(t, f.srv.URL, awsEnv(t, "", "", ""), "sts", "assume-role-with-web-identity",
		"--role-arn", f.roleARN, "--role-session-name", "evil", "--web-identity-token", tok)
	wantAWSError(t, bad, "AccessDenied")
	_, enc, ok := strings.Cut(bad.Stderr, "Encoded authorization failure message: ")
	if !ok {
		t.Fatalf("no encoded message in %s", bad.Stderr)
	}
	dec := f.srv.aws(t, "sts", "decode-authorization-message", "--encoded-message", strings.TrimSpace(enc))
	if dec.Code != 0 {
		t.Fatalf("decode: %s", dec.Stderr)
	}
	var decoded map[string]any
	if err := json.Unmarshal([]byte(dec.JSON(t)["DecodedMessage"].(string)), &decoded); err != nil {
		t.Fatal(err)
	}
	kl, _ := decoded["keyless"].(map[string]any)
	if kl["tokenSha256"] == nil {
		t.Fatal("the decoded message has no tokenSha256: the one exception below would hide nothing")
	}
	delete(kl, "tokenSha256") // the server's alone

	for _, tc := range []struct {
		name, file string
		ignore     cmp.Option
	}{
		{"IAM API role", apiFile, nil},
		{"aws iam get-role", cliFile, ignoreStatementPositions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSimulate(t, "--trust-policy", tc.file, "--claims", tokFile, "--role-session-name", "evil", "--output", "json")
			if r.code != 1 {
				t.Fatalf("simulate: exit %d, want 1 (deny)\n%s%s", r.code, r.stdout, r.stderr)
			}
			out := r.json(t)
			if d := cmp.Diff(decoded, out.Explanation, tc.ignore); d != "" {
				t.Errorf("simulate's explanation differs from the decoded message (-decoder +simulate):\n%s", d)
			}
			if out.Decision != "deny" || out.Reason != kl["reason"] || out.Provider != f.provider {
				t.Errorf("decision %q, reason %q, provider %q; want deny, %q, %q", out.Decision, out.Reason, out.Provider, kl["reason"], f.provider)
			}
		})
	}
	if t.Failed() {
		return
	}
	// The text output's reason line is the decoder's reason.
	text := runSimulate(t, "--trust-policy", apiFile, "--claims", tokFile, "--role-session-name", "evil")
	if !strings.Contains(text.stdout, "decision: deny\nreason:   "+kl["reason"].(string)+"\n") || !strings.Contains(text.stdout, "WITHOUT verifying its signature") {
		t.Errorf("text output:\n%s", text.stdout)
	}

	good := f.token(t, "repo:octo-org/app:ref:refs/heads/main")
	ok2 := awsCLI(t, f.srv.URL, awsEnv(t, "", "", ""), "sts", "assume-role-with-web-identity",
		"--role-arn", f.roleARN, "--role-session-name", "gha", "--web-identity-token", good)
	if ok2.Code != 0 {
		t.Fatalf("assume: %s", ok2.Stderr)
	}
	if r := runSimulate(t, "--trust-policy", cliFile, "--claims", writeTemp(t, "good.jwt", []byte(good)), "--output", "json"); r.code != 0 || r.json(t).Decision != "allow" {
		t.Errorf("simulate of an accepted token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// ignoreStatementPositions drops the start and end positions of trace
// statements (maps with "matched" and "effect").
var ignoreStatementPositions = cmp.FilterPath(func(p cmp.Path) bool {
	mi, ok := p.Last().(cmp.MapIndex)
	if !ok {
		return false
	}
	k := mi.Key().String()
	if k != "start" && k != "end" {
		return false
	}
	parent, _ := p.Index(-2).Values()
	if !parent.IsValid() || !parent.CanInterface() {
		return false
	}
	m, ok := parent.Interface().(map[string]any)
	_, stmt := m["matched"]
	return ok && stmt
}, cmp.Ignore())
