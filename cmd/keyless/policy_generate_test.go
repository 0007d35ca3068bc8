package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/policy"
)

// runGenerate runs `keyless policy generate args...` in process.
func runGenerate(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("KEYLESS_DATA", "")
	root := newRootCmd()
	var stdout, stderr strings.Builder
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetIn(strings.NewReader(stdin))
	code := run(context.Background(), root, append([]string{"policy", "generate"}, args...), &stderr)
	return code, stdout.String(), stderr.String()
}

const genAccount = "123456789012"

// genTrail is a keyless-shaped NDJSON trail: two CI projects exchange
// tokens for one role; web reads a role and lists roles, api reads a role
// and its policy, and is denied CreateRole.
func genTrail() string {
	role := "arn:aws:iam::" + genAccount + ":role/ci-shared"
	var b strings.Builder
	exchange := func(key, session, sub, repo string) {
		fmt.Fprintf(&b, `{"eventVersion":"1.11","eventTime":"2026-12-07T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRoleWithWebIdentity","awsRegion":"us-east-1","eventType":"AwsApiCall","readOnly":true,"recipientAccountId":"%s","userIdentity":{"type":"WebIdentityUser","userName":"%s","identityProvider":"arn:aws:iam::%s:oidc-provider/ci.example"},"requestParameters":{"roleArn":"%s","roleSessionName":"%s"},"responseElements":{"credentials":{"accessKeyId":"%s"},"assumedRoleUser":{"arn":"arn:aws:sts::%s:assumed-role/ci-shared/%s"},"subjectFromWebIdentityToken":"%s"},"additionalEventData":{"webIdentityTokenClaims":{"sub":"%s","repository":"%s"}},"eventID":"x-%s"}`+"\n",
			genAccount, sub, genAccount, role, session, key, genAccount, session, sub, sub, repo, key)
	}
	call := func(key, session, name, params, errCode string, n int) {
		for i := range n {
			errPart := ""
			if errCode != "" {
				errPart = `,"errorCode":"` + errCode + `","errorMessage":"no"`
			}
			fmt.Fprintf(&b, `{"eventVersion":"1.11","eventTime":"2026-12-07T10:01:00Z","eventSource":"iam.amazonaws.com","eventName":"%s","awsRegion":"us-east-1","eventType":"AwsApiCall","readOnly":%t,"recipientAccountId":"%s","userIdentity":{"type":"AssumedRole","accessKeyId":"%s","accountId":"%s","arn":"arn:aws:sts::%s:assumed-role/ci-shared/%s","sessionContext":{"sessionIssuer":{"type":"Role","arn":"%s","userName":"ci-shared"}}},"requestParameters":%s%s,"eventID":"e-%s-%s-%d"}`+"\n",
				name, !strings.HasPrefix(name, "Create"), genAccount, key, genAccount, genAccount, session, role, params, errPart, key, name, i)
		}
	}
	exchange("ASIAWEB0000000000001", "web-1", "repo:octo-org/web:ref:refs/heads/main", "octo-org/web")
	exchange("ASIAAPI0000000000001", "api-1", "repo:octo-org/api:ref:refs/heads/main", "octo-org/api")
	call("ASIAWEB0000000000001", "web-1", "GetRole", `{"roleName":"ci-shared"}`, "", 2)
	call("ASIAWEB0000000000001", "web-1", "ListRoles", `null`, "", 1)
	call("ASIAAPI0000000000001", "api-1", "GetRole", `{"roleName":"ci-shared"}`, "", 1)
	call("ASIAAPI0000000000001", "api-1", "GetRolePolicy", `{"roleName":"ci-shared","policyName":"perm"}`, "", 1)
	call("ASIAAPI0000000000001", "api-1", "CreateRole", `{"roleName":"x"}`, "AccessDenied", 1)
	return b.String()
}

func writeTrail(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trail.ndjson")
	if err := os.WriteFile(p, []byte(genTrail()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyGenerateExitCodes(t *testing.T) {
	trail := writeTrail(t)
	dir := t.TempDir()
	badPolicy := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badPolicy, []byte(`{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	notPolicy := filepath.Join(dir, "role.json")
	if err := os.WriteFile(notPolicy, []byte(`{"Role":{"RoleName":"x"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args       []string
		want       int
		wantStderr string
	}{
		{args: nil, want: 2, wantStderr: "give at least one PATH"},
		{args: []string{trail, "--output", "yaml"}, want: 2, wantStderr: "--output must be text, json or terraform"},
		{args: []string{trail, "--by", "repo"}, want: 2, wantStderr: "want role, subject or claim:NAME"},
		{args: []string{trail, "--by", "claim:"}, want: 2, wantStderr: "want role, subject or claim:NAME"},
		{args: []string{trail, "--start", "yesterday"}, want: 2, wantStderr: "--start:"},
		{args: []string{trail, "--start", "2026-12-08", "--end", "2026-12-07"}, want: 2, wantStderr: "is not after --start"},
		{args: []string{trail, "--diff", notPolicy, "--diff-live"}, want: 2, wantStderr: "not both"},
		{args: []string{trail, "--diff", notPolicy, "--output", "terraform"}, want: 2, wantStderr: "use --output text or json"},
		{args: []string{trail, "--endpoint-url", "http://127.0.0.1:1"}, want: 2, wantStderr: "--endpoint-url is for --diff-live"},
		{args: []string{trail, "--collapse-after", "0"}, want: 2, wantStderr: "--collapse-after must be at least 1"},
		{args: []string{filepath.Join(dir, "missing")}, want: 1, wantStderr: "missing"},
		{args: []string{trail, "--diff", filepath.Join(dir, "missing.json")}, want: 1, wantStderr: "missing.json"},
		{args: []string{trail, "--diff", notPolicy}, want: 1, wantStderr: "not a policy document"},
		{args: []string{trail, "--diff", badPolicy}, want: 1, wantStderr: "bad.json"},
		{args: []string{"-"}, want: 1, wantStderr: "byte"}, // stdin "{": malformed
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdin := ""
			if len(tc.args) == 1 && tc.args[0] == "-" {
				stdin = "{\n"
			}
			code, _, stderr := runGenerate(t, stdin, tc.args...)
			if code != tc.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.want, stderr)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr)
			}
		})
	}
}

// TestPolicyGenerateJSONShape checks CONTRACT.md's shape of --output json:
// {"policies":[{"role":ARN,"binding":STRING|null,"policy":{...}}],
// "excluded":{...},"denied":[...]}, per subject and per claim, and that
// each policy passes keyless's parser.
func TestPolicyGenerateJSONShape(t *testing.T) {
	trail := writeTrail(t)
	for _, tc := range []struct {
		by       string
		bindings []any
	}{
		{"role", []any{nil}},
		{"subject", []any{"repo:octo-org/api:ref:refs/heads/main", "repo:octo-org/web:ref:refs/heads/main"}},
		{"claim:repository", []any{"octo-org/api", "octo-org/web"}},
	} {
		t.Run(tc.by, func(t *testing.T) {
			code, stdout, stderr := runGenerate(t, "", trail, "--by", tc.by, "--output", "json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var out map[string]any
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, stdout)
			}
			pols, ok := out["policies"].([]any)
			if !ok {
				t.Fatalf("policies is not an array: %s", stdout)
			}
			if _, ok := out["excluded"].(map[string]any); !ok {
				t.Errorf("excluded is not an object: %v", out["excluded"])
			}
			denied, ok := out["denied"].([]any)
			if !ok || len(denied) != 1 {
				t.Errorf("denied = %v, want the one CreateRole", out["denied"])
			}
			var bindings []any
			for _, p := range pols {
				pm := p.(map[string]any)
				if pm["role"] != "arn:aws:iam::"+genAccount+":role/ci-shared" {
					t.Errorf("role = %v", pm["role"])
				}
				b, present := pm["binding"]
				if !present {
					t.Errorf("binding missing (must be a string or null)")
				}
				bindings = append(bindings, b)
				doc, ok := pm["policy"].(map[string]any)
				if !ok {
					t.Fatalf("policy is not an object: %v", pm["policy"])
				}
				raw, _ := json.Marshal(doc)
				if _, err := policy.Parse(string(raw), policy.KindIdentity); err != nil {
					t.Errorf("policy does not parse: %v\n%s", err, raw)
				}
			}
			if fmt.Sprint(bindings) != fmt.Sprint(tc.bindings) {
				t.Errorf("bindings = %v, want %v", bindings, tc.bindings)
			}
			if !strings.Contains(stderr, "events scanned") {
				t.Errorf("no summary on stderr: %s", stderr)
			}
		})
	}
}

// TestPolicyGenerateOutputs: the text report names each binding, its
// actions and its document; terraform writes one block per binding; --diff
// compares a granted file with the calls of each binding.
func TestPolicyGenerateOutputs(t *testing.T) {
	trail := writeTrail(t)
	code, stdout, stderr := runGenerate(t, "", trail, "--by", "claim:repository")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{`binding "octo-org/web"`, `binding "octo-org/api"`, "iam:ListRoles", "iam:GetRolePolicy", `"Version": "2012-10-17"`, "Denied calls", "iam:CreateRole"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text report lacks %q:\n%s", want, stdout)
		}
	}
	// Standard input reads as the file does.
	_, fromFile, _ := runGenerate(t, "", trail, "--by", "subject", "--output", "json")
	code, fromStdin, stderr := runGenerate(t, genTrail(), "-", "--by", "subject", "--output", "json")
	policiesOf := func(s string) string {
		var v struct{ Policies json.RawMessage }
		_ = json.Unmarshal([]byte(s), &v)
		return string(v.Policies)
	}
	if code != 0 || policiesOf(fromStdin) == "" || policiesOf(fromStdin) != policiesOf(fromFile) {
		t.Errorf("from stdin (exit %d, %s):\n%s\nfrom the file:\n%s", code, stderr, fromStdin, fromFile)
	}
	code, stdout, stderr = runGenerate(t, "", trail, "--by", "claim:repository", "--output", "terraform")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := strings.Count(stdout, `data "aws_iam_policy_document" "ci_shared_octo_org_`); n != 2 {
		t.Errorf("%d blocks, want 2:\n%s", n, stdout)
	}

	granted := filepath.Join(t.TempDir(), "perm.json")
	doc := `{"RoleName":"ci-shared","PolicyName":"perm","PolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"}]}}`
	if err := os.WriteFile(granted, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runGenerate(t, "", trail, "--by", "subject", "--diff", granted, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct {
		Diffs []struct {
			Binding *string
			Unused  []struct {
				Grant string
				Used  []string
			}
			Denied []struct{ Action string }
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Diffs) != 2 {
		t.Fatalf("%d diffs, want 2:\n%s", len(out.Diffs), stdout)
	}
	for _, d := range out.Diffs {
		var used []string
		for _, u := range d.Unused {
			used = append(used, u.Used...)
		}
		switch *d.Binding {
		case "repo:octo-org/web:ref:refs/heads/main":
			if fmt.Sprint(used) != "[iam:GetRole iam:ListRoles]" || len(d.Denied) != 0 {
				t.Errorf("web: used %v, denied %v", used, d.Denied)
			}
		case "repo:octo-org/api:ref:refs/heads/main":
			if fmt.Sprint(used) != "[iam:GetRole iam:GetRolePolicy]" || len(d.Denied) != 1 || d.Denied[0].Action != "iam:CreateRole" {
				t.Errorf("api: used %v, denied %v", used, d.Denied)
			}
		default:
			t.Errorf("binding %q", *d.Binding)
		}
	}
	code, stdout, _ = runGenerate(t, "", trail, "--diff", granted)
	if code != 0 || !strings.Contains(stdout, "Granted, never used in the window") || !strings.Contains(stdout, "iam:Get*") {
		t.Errorf("text diff (exit %d):\n%s", code, stdout)
	}
}
