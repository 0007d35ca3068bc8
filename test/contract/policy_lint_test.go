package contract

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// lintCLI runs `keyless policy lint args...` with env and stdin; it
// returns the exit status, stdout and stderr.
func lintCLI(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"policy", "lint"}, args...)...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

type lintOutput struct {
	Findings []struct {
		File, Rule, Severity, Path, Message, Fix string
		Statement                                int
		Probe                                    map[string]string
	}
	Rules []string
}

// TestPolicyLintLiveRoles lints the roles of a real keyless serve over
// its IAM API (--all-roles and --role, documents URL-encoded by IAM, as
// the AWS SDK reads them), and a role as the real AWS CLI's get-role
// prints it, through standard input. The server stores bad trust policies
// because its shared-issuer controls are off
// (iam.skip_shared_issuer_controls).
func TestPolicyLintLiveRoles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(cfg, []byte("iam:\n  skip_shared_issuer_controls: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServerAccount(t, "", "111122223333", "--config", cfg)
	const gh = "token.actions.githubusercontent.com"
	trust := func(cond string) string {
		return `{"Version":"2012-10-17","Statement":[{"Sid":"CI","Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/` + gh +
			`"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":` + cond + `}]}`
	}
	roles := map[string]string{
		// A '+' and a space survive IAM's URL encoding.
		"lookalike": trust(`{"StringEquals":{"` + gh + `:aud":"sts.amazonaws.com"},"StringLike":{"` + gh + `:sub":"repo:acme*"}}`),
		"any-repo":  trust(`{"StringLike":{"` + gh + `:sub":["repo:acme/app:ref:refs/heads/a+b c","repo:*"]}}`),
		"scoped":    trust(`{"StringEquals":{"` + gh + `:aud":"sts.amazonaws.com","` + gh + `:sub":"repo:acme/app:ref:refs/heads/a+b c"}}`),
	}
	for name, doc := range roles {
		if r := s.aws(t, "iam", "create-role", "--role-name", name, "--assume-role-policy-document", doc); r.Code != 0 {
			t.Fatalf("create-role %s: %s", name, r.Stderr)
		}
	}
	env := awsEnv(t, adminKeyID, adminSecret, "")

	code, stdout, stderr := lintCLI(t, env, "", "--endpoint-url", s.URL, "--all-roles", "--output", "json")
	if code != 1 {
		t.Fatalf("--all-roles: exit %d\n%s%s", code, stdout, stderr)
	}
	var out lintOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	got := map[string][]string{} // the CRITICAL findings of each role (others advise)
	for _, f := range out.Findings {
		if f.Severity != "CRITICAL" {
			continue
		}
		got[f.File] = append(got[f.File], f.Rule)
		if strings.HasSuffix(f.File, "/any-repo") && !strings.Contains(f.Fix, "refs/heads/a+b c") {
			t.Errorf("the document was not decoded as IAM encoded it: fix %s", f.Fix)
		}
		if f.Probe["sub"] == "" || f.Fix == "" || f.Statement != 0 || !strings.HasPrefix(f.Path, "$.Statement[0].Condition") {
			t.Errorf("finding %+v", f)
		}
	}
	// any-repo: "repo:*" among tight values is TP003 (the loosest value
	// of a list wins), proven by the same probe as TP002.
	want := map[string]string{
		"arn:aws:iam::111122223333:role/lookalike": "TP005",
		"arn:aws:iam::111122223333:role/any-repo":  "TP003",
	}
	if len(got) != len(want) || !slices.Contains(got["arn:aws:iam::111122223333:role/lookalike"], "TP005") || !slices.Contains(got["arn:aws:iam::111122223333:role/any-repo"], "TP003") {
		t.Errorf("findings by role %v, want %v", got, want)
	}
	if !slices.Contains(out.Rules, "TP005") {
		t.Errorf("rules %v", out.Rules)
	}

	// One role; the scoped one is clean.
	if code, stdout, stderr := lintCLI(t, env, "", "--endpoint-url", s.URL, "--role", "scoped"); code != 0 || !strings.Contains(stdout, "0 finding(s) in 1 trust policy") {
		t.Errorf("--role scoped: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := lintCLI(t, env, "", "--endpoint-url", s.URL, "--role", "missing"); code != 2 || !strings.Contains(stderr, "NoSuchEntity") {
		t.Errorf("--role missing: exit %d\n%s", code, stderr)
	}
	// Without credentials: exit 2 with the reason.
	if code, _, stderr := lintCLI(t, awsEnv(t, "", "", ""), "", "--endpoint-url", s.URL, "--all-roles"); code != 2 || !strings.Contains(stderr, "credentials") {
		t.Errorf("no credentials: exit %d\n%s", code, stderr)
	}

	// The AWS CLI's get-role output, on standard input.
	r := s.aws(t, "iam", "get-role", "--role-name", "lookalike")
	if r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	code, stdout, stderr = lintCLI(t, env, r.Stdout, "--output", "sarif", "-")
	if code != 1 || !strings.Contains(stdout, `"ruleId": "TP005"`) || !strings.Contains(stdout, `"uri": "stdin"`) {
		t.Errorf("get-role on stdin: exit %d\n%s%s", code, stdout, stderr)
	}
}
