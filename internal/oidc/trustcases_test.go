package oidc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// trustCase is the part of a trust-cases-sample.json token case this
// package checks.
type trustCase struct {
	ID            string `json:"id"`
	Category      string `json:"category"`
	ExpectedError string `json:"expected_error"`
	ValidatorRule string `json:"validator_rule"`
	StrictMode    string `json:"expected_error_strict_mode"`
}

func loadTrustCases(tb testing.TB, path string) []trustCase {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var cs []trustCase
	if err := json.Unmarshal(b, &cs); err != nil {
		tb.Fatal(err)
	}
	return slices.DeleteFunc(cs, func(c trustCase) bool { return c.Category != "token" })
}

// validatorOutcome is what this package must return for a case whose STS
// outcome is given: AccessDenied comes from the trust policy after a
// successful validation, and success is success.
func validatorOutcome(expected string) string {
	switch expected {
	case "none (credentials issued)", "AccessDenied":
		return ""
	}
	return expected
}

// TestTrustCasesSample checks every token case of the public sample
// (testdata/trust-cases-token.json, a copy of
// shared/data/trust-cases-sample.json's token cases) against the attack
// table: each case id has at least one row, and every row tagged with it
// expects the case's error code (in strict mode where the row turns the
// strict option on). The rows themselves run in TestTokenAttacks.
func TestTrustCasesSample(t *testing.T) {
	keys(t)
	rows := map[string][]attackCase{}
	for _, tc := range attackCases() {
		for _, id := range tc.cases {
			rows[id] = append(rows[id], tc)
		}
	}
	cases := loadTrustCases(t, filepath.Join("testdata", "trust-cases-token.json"))
	if len(cases) != 22 {
		t.Fatalf("%d token cases in the sample, want 22", len(cases))
	}
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			if len(rows[c.ID]) == 0 {
				t.Fatalf("no attack-table row for %s", c.ID)
			}
			for _, r := range rows[c.ID] {
				want := validatorOutcome(c.ExpectedError)
				if r.fo.opts != nil && c.StrictMode != "" {
					want = c.StrictMode
				}
				if r.wantCode != want {
					t.Errorf("row %q expects %q; case %s expects %q", r.name, r.wantCode, c.ID, want)
				}
			}
		})
	}
}

// TestTrustCasesInSync compares the testdata copy with the shared file when
// the shared folder sits beside the checkout.
func TestTrustCasesInSync(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "data", "trust-cases-sample.json")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared data not beside the checkout: %v", err)
	}
	if d := cmp.Diff(loadTrustCases(t, shared), loadTrustCases(t, filepath.Join("testdata", "trust-cases-token.json"))); d != "" {
		t.Errorf("testdata/trust-cases-token.json is out of date (-shared +testdata):\n%s", d)
	}
}
