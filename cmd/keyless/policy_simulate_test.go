package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateSimulate = flag.Bool("update-simulate", false, "rewrite testdata/policy-simulate/*.golden")

// TestPolicySimulateGolden runs `keyless policy simulate` on the files of
// testdata/policy-simulate and compares exit status, stdout and stderr
// with the golden files (go test -run TestPolicySimulateGolden
// -update-simulate ./cmd/keyless/ rewrites them).
func TestPolicySimulateGolden(t *testing.T) {
	const dir = "testdata/policy-simulate/"
	const at = "--time=2026-10-08T18:32:00Z" // between the claims' iat and exp
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  int
	}{
		{"allow", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "claims-main.json", at}, "", 0},
		{"deny-trace", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "claims-pr.json", at}, "", 1},
		{"deny-json", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "claims-pr.json", at, "--output", "json"}, "", 1},
		{"allow-json-expired", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "claims-main.json", "--time=2027-01-01T00:00:00Z", "--output", "json"}, "", 0},
		{"get-role", []string{"--trust-policy", dir + "get-role.json", "--claims", dir + "claims-main.json", at}, "", 0},
		{"get-role-urlencoded", []string{"--trust-policy", dir + "get-role-query.json", "--claims", dir + "claims-pr.json", at, "--output", "json"}, "", 1},
		{"jwt", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "token.jwt", at}, "", 1},
		{"stdin", []string{"--trust-policy", "-", "--claims", dir + "claims-main.json", at}, "get-role.json", 0},
		{"provider-flag", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "claims-main.json", at, "--provider-arn", "arn:aws:iam::111122223333:oidc-provider/gitlab.com"}, "", 1},
		{"bad-missing-file", []string{"--trust-policy", dir + "missing.json", "--claims", dir + "claims-main.json", at}, "", 2},
		{"bad-policy-position", []string{"--trust-policy", dir + "bad-duplicate-key.json", "--claims", dir + "claims-main.json", at}, "", 2},
		{"bad-claims-array", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "claims-array.json", at}, "", 2},
		{"bad-claims-no-sub", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "claims-no-sub.json", at}, "", 2},
		{"bad-output", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "claims-main.json", "--output", "yaml"}, "", 2},
		{"bad-time", []string{"--trust-policy", dir + "trust.json", "--claims", dir + "claims-main.json", "--time", "tomorrow"}, "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := newRootCmd()
			var stdout, stderr strings.Builder
			root.SetOut(&stdout)
			if tc.stdin != "" {
				f, err := os.Open(dir + tc.stdin)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				root.SetIn(f)
			}
			code := run(context.Background(), root, append([]string{"policy", "simulate"}, tc.args...), &stderr)
			got := fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", code, stdout.String(), stderr.String())
			golden := filepath.Join(dir, tc.name+".golden")
			if *updateSimulate {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-simulate to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
			if code != tc.want {
				t.Errorf("exit %d, want %d", code, tc.want)
			}
			if strings.Contains(strings.Join(tc.args, " "), "--output json") && code != 2 {
				var v struct {
					Decision    string         `json:"decision"`
					Explanation map[string]any `json:"explanation"`
				}
				if err := json.Unmarshal([]byte(stdout.String()), &v); err != nil || v.Explanation == nil {
					t.Fatalf("--output json: %v", err)
				}
				if wantDecision := map[int]string{0: "allow", 1: "deny"}[code]; v.Decision != wantDecision {
					t.Errorf("decision = %q, want %q", v.Decision, wantDecision)
				}
			}
		})
	}
}
