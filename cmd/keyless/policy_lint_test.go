package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/cobra"
)

var updateLint = flag.Bool("update-lint", false, "rewrite testdata/policy-lint/*.golden")

const lintDir = "testdata/policy-lint/"

type chachaReader struct{ r *rand.ChaCha8 }

func (c chachaReader) Read(p []byte) (int, error) { return c.r.Read(p) }

// runLint runs `keyless policy lint args...` with deterministic probes
// and returns the exit status, stdout and stderr.
func runLint(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	deps := lintDeps{rand: chachaReader{rand.NewChaCha8([32]byte{7})}, now: func() time.Time { return now }}
	root := &cobra.Command{Use: "keyless", SilenceUsage: true, SilenceErrors: true}
	pol := &cobra.Command{Use: "policy"}
	pol.AddCommand(newPolicyLintCmdWith(deps))
	root.AddCommand(pol)
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetIn(strings.NewReader(stdin))
	code := run(context.Background(), root, append([]string{"policy", "lint"}, args...), &stderr)
	return code, stdout.String(), stderr.String()
}

var lintInputs = []string{
	lintDir + "github-bad.json", lintDir + "github-fixed.json", lintDir + "gitlab-bad.json", lintDir + "gitlab-fixed.json",
	lintDir + "buildkite-bad.json", lintDir + "buildkite-fixed.json", lintDir + "terraform-plan.json", lintDir + "get-role.json",
}

// TestPolicyLintGolden compares exit status, stdout and stderr with
// testdata/policy-lint/NAME.golden (-update-lint rewrites them).
func TestPolicyLintGolden(t *testing.T) {
	githubBad, err := os.ReadFile(lintDir + "github-bad.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{name: "text", args: lintInputs},
		{name: "json", args: append([]string{"--output", "json"}, lintInputs...)},
		{name: "sarif", args: append([]string{"--output", "sarif"}, lintInputs...)},
		{name: "fixed", args: []string{lintDir + "github-fixed.json", lintDir + "gitlab-fixed.json", lintDir + "buildkite-fixed.json"}},
		{name: "fixed-json", args: []string{"--output", "json", lintDir + "github-fixed.json"}},
		{name: "duplicate-key", args: []string{lintDir + "duplicate-key.json"}},
		{name: "broken", args: []string{lintDir + "broken.json", lintDir + "github-fixed.json"}},
		{name: "missing-file", args: []string{lintDir + "no-such.json"}},
		{name: "stdin", stdin: string(githubBad), args: []string{"--output", "json", "-"}},
		{name: "high-fails", args: []string{lintDir + "github-tp011.json"}},
		{name: "fail-on-critical", args: []string{"--fail-on", "critical", lintDir + "github-tp011.json"}},
		{name: "bad-output", args: []string{"--output", "yaml", lintDir + "github-bad.json"}},
		{name: "bad-fail-on", args: []string{"--fail-on", "severe", lintDir + "github-bad.json"}},
		{name: "nothing", args: nil},
		{name: "role-and-all-roles", args: []string{"--role", "x", "--all-roles"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runLint(t, tc.stdin, tc.args...)
			got := "exit " + strconv.Itoa(code) + "\n--- stdout\n" + stdout + "--- stderr\n" + stderr
			path := lintDir + tc.name + ".golden"
			if *updateLint {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-lint)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

// TestPolicyLintExitCodes: 1 for findings at or above --fail-on, 0
// otherwise, 2 for unreadable input and policies that do not parse, even
// when findings were printed.
func TestPolicyLintExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{lintDir + "github-bad.json"}, 1},
		{[]string{"--fail-on", "CRITICAL", lintDir + "github-bad.json"}, 1},
		{[]string{lintDir + "github-fixed.json"}, 0},
		{[]string{lintDir + "github-tp011.json"}, 1},
		{[]string{"--fail-on", "CRITICAL", lintDir + "github-tp011.json"}, 0},
		{[]string{"--fail-on", "info", lintDir + "github-tp011.json"}, 1},
		{[]string{lintDir + "duplicate-key.json"}, 1},
		{[]string{lintDir + "broken.json"}, 2},
		{[]string{lintDir + "broken.json", lintDir + "github-bad.json"}, 2},
		{[]string{lintDir + "missing.json"}, 2},
		{[]string{lintDir + "terraform-plan.json"}, 1},
		{[]string{lintDir + "get-role.json"}, 1},
		{[]string{"testdata/sarif-schema-2.1.0.json"}, 2}, // not a policy
		{[]string{"--output", "xml", lintDir + "github-bad.json"}, 2},
	} {
		if code, _, stderr := runLint(t, "", tc.args...); code != tc.want {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.want, stderr)
		}
	}
}

// TestPolicyLintDirectory: a directory is walked for *.json; files that
// are no policy are skipped with a note, a broken one makes the exit 2
// and the others are still linted.
func TestPolicyLintDirectory(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{"a/github-bad.json": "github-bad.json", "b/c/gitlab-fixed.json": "gitlab-fixed.json", "plan.json": "terraform-plan.json"} {
		data, err := os.ReadFile(lintDir + src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(`not json`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runLint(t, "", "--output", "json", dir)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var out struct {
		Findings []struct{ File, Rule, Severity string }
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	var files []string // the CRITICAL ones: every file was read, each once
	for _, f := range out.Findings {
		if f.Severity == "CRITICAL" {
			files = append(files, filepath.ToSlash(strings.TrimPrefix(f.File, dir))+" "+f.Rule)
		}
	}
	want := []string{"/a/github-bad.json TP005", "/plan.json (aws_iam_role.deploy) TP005"}
	if d := cmp.Diff(want, files); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	if !strings.Contains(stderr, "skipped "+filepath.Join(dir, "package.json")) {
		t.Errorf("stderr: %s", stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"Statement": [}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runLint(t, "", dir); code != 2 || !strings.Contains(stderr, "line 1, column") {
		t.Errorf("with a broken file: exit %d\n%s", code, stderr)
	}
}

// TestPolicyLintSARIFSchema validates --output sarif against the SARIF
// 2.1.0 JSON schema (testdata/sarif-schema-2.1.0.json, see
// testdata/README-sarif-schema.md), with findings and without.
func TestPolicyLintSARIFSchema(t *testing.T) {
	f, err := os.Open("testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	schemaDoc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const url = "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json"
	if err := c.AddResource(url, schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{lintInputs, {lintDir + "github-fixed.json"}, {lintDir + "duplicate-key.json"}} {
		_, stdout, stderr := runLint(t, "", append([]string{"--output", "sarif"}, args...)...)
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(stdout))
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%v: not valid SARIF 2.1.0: %v", args, err)
		}
		// GitHub code scanning reads these.
		var log struct {
			Version string
			Runs    []struct {
				Tool struct {
					Driver struct {
						Rules []struct{ ID string }
					}
				}
				Results []struct {
					RuleID    string
					Level     string
					Locations []struct {
						PhysicalLocation struct {
							ArtifactLocation struct{ URI string }
						}
					}
				}
			}
		}
		if err := json.Unmarshal([]byte(stdout), &log); err != nil {
			t.Fatal(err)
		}
		if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Tool.Driver.Rules) < 7 {
			t.Fatalf("%v: %s", args, stdout)
		}
		for _, r := range log.Runs[0].Results {
			if r.RuleID == "" || !slices.Contains([]string{"error", "warning", "note"}, r.Level) || len(r.Locations) != 1 || r.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" {
				t.Errorf("%v: result %+v", args, r)
			}
		}
	}
	// The validator does refuse a log that breaks the schema.
	bad, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"version":"2.1.0","runs":[{"tool":{"driver":{}},"results":[{"level":"fatal","message":{"text":"x"}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if sch.Validate(bad) == nil {
		t.Fatal("the schema accepts a driver without a name and a level \"fatal\"")
	}
}

// TestExtractDocs: the role listings are read role by role, with the
// document as an object (the AWS CLI) or URL-encoded (the IAM API).
func TestExtractDocs(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/gitlab.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"gitlab.com:sub":"project_path:a+b c/*"}}}]}`
	encoded, err := json.Marshal(strings.NewReplacer("+", "%2B", " ", "%20", "{", "%7B", "}", "%7D", `"`, "%22", ":", "%3A", "/", "%2F", ",", "%2C", "[", "%5B", "]", "%5D", "*", "%2A").Replace(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, input string }{
		{"list-roles", `{"Roles":[{"RoleName":"r1","Arn":"arn:aws:iam::111122223333:role/r1","AssumeRolePolicyDocument":` + string(encoded) + `},{"RoleName":"r2","Arn":"arn:aws:iam::444455556666:role/r2","AssumeRolePolicyDocument":` + doc + `}]}`},
		{"authorization details", `{"UserDetailList":[],"RoleDetailList":[{"RoleName":"r1","Arn":"arn:aws:iam::111122223333:role/r1","AssumeRolePolicyDocument":` + doc + `},{"RoleName":"r2","Arn":"arn:aws:iam::444455556666:role/r2","AssumeRolePolicyDocument":` + string(encoded) + `}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := extractDocs("f.json", "f.json", []byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) != 2 {
				t.Fatalf("%d documents", len(docs))
			}
			var got []string
			for _, d := range docs {
				var a, b any
				if err := json.Unmarshal(d.doc, &a); err != nil {
					t.Fatalf("%s: %v: %s", d.file, err, d.doc)
				}
				if err := json.Unmarshal([]byte(doc), &b); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(b, a); d != "" {
					t.Errorf("document (-want +got)\n%s", d)
				}
				got = append(got, d.file+" "+d.account)
			}
			want := []string{"f.json (role r1) 111122223333", "f.json (role r2) 444455556666"}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

// TestPolicyLintBaseline: --baseline reports drift (TP040) for what the
// policy admits that its previous version refused, and nothing for a
// version that admits no more; it takes one policy only.
func TestPolicyLintBaseline(t *testing.T) {
	const rules = "../../internal/lint/testdata/rules/"
	findings := func(args ...string) (int, []string) {
		t.Helper()
		code, stdout, stderr := runLint(t, "", append([]string{"--output", "json", "--fail-on", "CRITICAL"}, args...)...)
		if code == 2 {
			return code, []string{stderr}
		}
		var out struct{ Findings []struct{ Rule string } }
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		var ids []string
		for _, f := range out.Findings {
			ids = append(ids, f.Rule)
		}
		return code, ids
	}
	if _, ids := findings("--baseline", rules+"tp040-github-baseline.json", rules+"tp040-github-bad.json"); !slices.Contains(ids, "TP040") {
		t.Errorf("a loosened policy: %v, want TP040", ids)
	}
	if _, ids := findings("--baseline", rules+"tp040-github-baseline.json", rules+"tp040-github-fixed.json"); slices.Contains(ids, "TP040") {
		t.Errorf("a policy that admits no more: %v", ids)
	}
	if _, ids := findings(rules + "tp040-github-bad.json"); slices.Contains(ids, "TP040") {
		t.Errorf("without a baseline: %v", ids)
	}
	if code, msg := findings("--baseline", rules+"tp040-github-baseline.json", rules+"tp040-github-bad.json", rules+"tp040-github-fixed.json"); code != 2 || !strings.Contains(msg[0], "exactly one policy") {
		t.Errorf("two policies with --baseline: exit %d %v", code, msg)
	}
}
