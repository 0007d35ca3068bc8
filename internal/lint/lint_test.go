package lint

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/policy"
)

// testPolicies are testdata/policies/*.json: ISSUER-RULE.bad.json fires
// RULE, ISSUER-RULE.fixed.json fires nothing.
type testPolicy struct {
	name, rule string
	bad        bool
	doc        []byte
}

func loadTestPolicies(t testing.TB) []testPolicy {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "policies", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test policies: %v", err)
	}
	var out []testPolicy
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(filepath.Base(p), ".json")
		stem, kind, _ := strings.Cut(base, ".")
		_, rule, _ := strings.Cut(stem, "-")
		out = append(out, testPolicy{name: base, rule: strings.ToUpper(rule), bad: kind == "bad", doc: b})
	}
	return out
}

// TestLintTestdata: every bad policy fires its rule (first finding) with a
// probe the evaluator admits and a fix; every fixed twin is clean; and
// the suggested fix, put in place of the statement's Condition, clears
// the statement (placeholders such as OWNER are names like any other).
func TestLintTestdata(t *testing.T) {
	issuers := map[string]map[string]bool{}
	for _, tp := range loadTestPolicies(t) {
		t.Run(tp.name, func(t *testing.T) {
			rep, err := Lint(tp.doc, testOptions(3))
			if err != nil {
				t.Fatal(err)
			}
			if got := ruleIDs(rep.Rules); !slices.Contains(got, tp.rule) {
				t.Fatalf("rule %s is not among the rules that ran: %v", tp.rule, got)
			}
			// Other rules may have their say on the same policy (a name-only
			// pin earns TP015, a GitHub branch pin TP033); the file is about
			// its own rule, and a fixed twin must not be CRITICAL.
			var mine []Finding
			for _, f := range rep.Findings {
				if f.Rule == tp.rule {
					mine = append(mine, f)
				}
			}
			if !tp.bad {
				if len(mine) > 0 {
					t.Fatalf("fixed policy has %s findings: %+v", tp.rule, mine)
				}
				for _, f := range rep.Findings {
					if f.Severity == SeverityCritical {
						t.Fatalf("fixed policy has a CRITICAL finding: %+v", f)
					}
				}
				return
			}
			if len(mine) == 0 {
				t.Fatalf("no %s finding; got %+v", tp.rule, rep.Findings)
			}
			f := mine[0]
			if f.Probe == nil || f.Fix == "" || f.Line == 0 || f.Path == "" {
				t.Fatalf("finding lacks probe, fix, line or path: %+v", f)
			}
			p := policy.MustParse(string(tp.doc), policy.KindTrust)
			if !admitsContext(p, f.Probe) {
				t.Fatalf("probe not admitted: %+v", f.Probe)
			}
			fixed := applyFix(t, tp.doc, f)
			rep2, err := Lint(fixed, testOptions(4))
			if err != nil {
				t.Fatalf("the fix does not parse: %v\n%s", err, fixed)
			}
			for _, g := range rep2.Findings {
				if g.Statement == f.Statement && (g.Rule == f.Rule || g.Severity == SeverityCritical) {
					t.Fatalf("the fix %s leaves %s: %s", f.Fix, g.Rule, g.Message)
				}
			}
			iss, _, _ := strings.Cut(tp.name, "-")
			if issuers[tp.rule] == nil {
				issuers[tp.rule] = map[string]bool{}
			}
			issuers[tp.rule][iss] = true
		})
	}
	// The rules of the shared issuers are exercised on more than GitHub.
	for _, r := range []string{"TP001", "TP002", "TP005"} {
		if len(issuers[r]) < 4 {
			t.Errorf("%s is tested on %v only", r, issuers[r])
		}
	}
}

// applyFix puts the finding's Fix in place of its statement's Condition.
func applyFix(t *testing.T, doc []byte, f Finding) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	var cond any
	if err := json.Unmarshal([]byte(f.Fix), &cond); err != nil {
		t.Fatalf("the fix is not JSON: %v: %s", err, f.Fix)
	}
	st := m["Statement"].([]any)[f.Statement].(map[string]any)
	st["Condition"] = cond
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ruleIDs(rs []Rule) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestLintDuplicateKeys: a document with duplicate keys is a TP019
// finding at the second key, not only an error, at every level and for
// case variants.
func TestLintDuplicateKeys(t *testing.T) {
	const fed = `{"Federated":"` + ghARN + `"}`
	for _, tc := range []struct {
		name, doc string
		want      Finding
	}{
		{"document", `{"Version":"2012-10-17","version":"2012-10-17","Statement":[]}`,
			Finding{Statement: -1, Path: "$", Line: 1, Column: 25}},
		{"statement element", "{\"Version\":\"2012-10-17\",\"Statement\":[\n {\"Effect\":\"Allow\",\"Effect\":\"Deny\",\"Principal\":" + fed + ",\"Action\":\"sts:AssumeRoleWithWebIdentity\"}]}",
			Finding{Statement: 0, Path: "$.Statement[0]", Line: 2, Column: 20}},
		{"operator block of the second statement", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":` + fed + `,"Action":"sts:AssumeRoleWithWebIdentity"},` +
			`{"Effect":"Allow","Principal":` + fed + `,"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"a:b":"x"},"StringLike":{"a:b":"*"}}}]}`,
			Finding{Statement: 1, Path: "$.Statement[1].Condition", Line: 1, Column: 403}},
		{"condition key in another case", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":` + fed + `,"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + ghPfx + `:sub":"repo:acme/app:ref:refs/heads/main","` + strings.ToUpper(ghPfx) + `:SUB":"*"}}}}`,
			Finding{Statement: 0, Path: `$.Statement.Condition["StringEquals"]`, Line: 1, Column: 307}},
		{"non-ASCII case variant", `{"Version":"2012-10-17","Statement":[],"Ä":1,"ä":2}`,
			Finding{Statement: -1, Path: "$", Line: 1, Column: 46}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := policy.Parse(tc.doc, policy.KindTrust); !errors.Is(err, policy.ErrMalformed) {
				t.Fatalf("the parser accepts it: %v", err)
			}
			rep, err := Lint([]byte(tc.doc), testOptions(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) != 1 {
				t.Fatalf("findings %+v", rep.Findings)
			}
			f := rep.Findings[0]
			got := Finding{Statement: f.Statement, Path: f.Path, Line: f.Line, Column: f.Column}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
			if f.Rule != "TP019" || f.Severity != SeverityCritical || f.Fix == "" {
				t.Errorf("finding %+v", f)
			}
			// The position is the parser's too.
			_, perr := policy.Parse(tc.doc, policy.KindTrust)
			if pe, ok := errors.AsType[*policy.Error](perr); !ok || pe.Line != f.Line || pe.Column != f.Column {
				t.Errorf("parser says %v, lint line %d column %d", perr, f.Line, f.Column)
			}
		})
	}
}

// TestLintParseError: any other refusal is an error carrying the
// parser's position.
func TestLintParseError(t *testing.T) {
	for _, doc := range []string{"{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n", `{"Version":"2012-10-17","Statement":[{"Effect":"Maybe"}]}`, `not json`} {
		rep, err := Lint([]byte(doc), testOptions(1))
		pe, ok := errors.AsType[*policy.Error](err)
		if !ok || pe.Line == 0 {
			t.Errorf("%q: error %v, want a *policy.Error with a position", doc, err)
		}
		if len(rep.Findings) != 0 || len(rep.Rules) == 0 {
			t.Errorf("%q: report %+v", doc, rep)
		}
	}
}

// TestLintCleanAndUncatalogued: a tight policy and a tight one for a
// per-tenant issuer have no finding above LOW (what remains is advice:
// an exact name pin without an immutable id, TP015 LOW; follow-up runs on
// the default branch, TP033 INFO; the CircleCI user pin's residual
// ssh-rerun, TP023 MEDIUM).
func TestLintCleanAndUncatalogued(t *testing.T) {
	for _, d := range []string{
		doc(stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:aud":"sts.amazonaws.com","`+ghPfx+`:sub":"repo:acme/app:ref:refs/heads/main"}}`)),
		doc(stmt(ccARN, `{"StringEquals":{"oidc.circleci.com/org/o1:aud":"o1","oidc.circleci.com/org/o1:sub":"org/o1/project/p1/user/u1"}}`)),
	} {
		rep, err := Lint([]byte(d), testOptions(1))
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		for _, f := range rep.Findings {
			if f.Severity > SeverityMedium || (f.Severity == SeverityMedium && f.Rule != "TP023") {
				t.Errorf("%s: %s %s: %s", d, f.Rule, f.Severity, f.Message)
			}
		}
	}
}

// TestPatternMatches checks the fix's value matcher against the
// evaluator on the same values.
func TestPatternMatches(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		fold   bool
		want   bool
	}{
		{"repo:acme*", "repo:acme-x/app", false, true},
		{"repo:acme/*", "repo:acmex/app", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"*a*b*", "xxaxxbxx", false, true},
		{"*a*b", "xxaxxbxxc", false, false},
		{"REPO:ACME", "repo:acme", true, true},
		{"", "", false, true},
		{"*", "", false, true},
	} {
		if got := compilePattern(tc.pat, true, false, tc.fold).matches(tc.s); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}

// FuzzFindDuplicateKey: the duplicate finder never panics, and whenever
// it reports a duplicate the parser refuses the document.
func FuzzFindDuplicateKey(f *testing.F) {
	f.Add(`{"a":1,"A":2}`)
	f.Add(`{"Statement":[{"x":{"y":1,"y":2}}]}`)
	f.Add(`[1,2,{"a":[{"b":1}]}]`)
	f.Add(`{"a":`)
	f.Fuzz(func(t *testing.T, doc string) {
		d, ok := findDuplicateKey([]byte(doc))
		if !ok {
			return
		}
		if _, err := policy.Parse(doc, policy.KindTrust); err == nil {
			t.Fatalf("duplicate %+v in a document the parser accepts: %q", d, doc)
		}
	})
}

// BenchmarkLint: Lint on every test policy (the budget is 50 ms each).
func BenchmarkLint(b *testing.B) {
	for _, tp := range loadTestPolicies(b) {
		o := testOptions(1)
		b.Run(tp.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Lint(tp.doc, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLintBudget: each test policy lints in well under 50 ms.
func TestLintBudget(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing")
	}
	for _, tp := range loadTestPolicies(t) {
		start := time.Now()
		if _, err := Lint(tp.doc, testOptions(1)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("%s: %v", tp.name, d)
		}
	}
}

// TestLintFixProperty: on the property test's random GitHub policies,
// every suggested fix, put in place of its statement's Condition, parses
// and leaves the statement without a finding.
func TestLintFixProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	n := 300
	if testing.Short() {
		n = 60
	}
	total := 0
	for i := range n {
		d := genPolicy(r)
		p, err := policy.Parse(d, policy.KindTrust)
		if err != nil {
			continue
		}
		for _, f := range LintPolicy(p, testOptions(byte(i))) {
			if !slices.Contains([]string{"TP001", "TP002", "TP005", "TP010", "TP011", "TP014"}, f.Rule) {
				// The guardrail's rules here; each rule group checks its
				// own fixes on random policies (TestRulesPatternsFixProperty,
				// TestRulesKeysProperty) or on its testdata (TestRulesCI).
				continue
			}
			if !strings.HasPrefix(f.Fix, "{") || f.Severity == SeverityInfo || f.Probe == nil {
				// Advice: a sentence where no condition fixes it (TP023,
				// TP034), an INFO template whose placeholders only the
				// owner can fill (TP037's immutable ids), or a shape
				// finding (TP009's literal wildcard: only the owner knows
				// the exact value). The property is about what a probe
				// proves gets in.
				continue
			}
			total++
			fixed := applyFix(t, []byte(d), f)
			rep, err := Lint(fixed, testOptions(byte(i+1)))
			if err != nil {
				t.Fatalf("policy %s\nfix %s does not parse: %v", d, f.Fix, err)
			}
			for _, g := range rep.Findings {
				// A fix answers its own rule (another rule's finding on
				// the statement, e.g. TP017's missing aud, has its own).
				// TP020 restates the weakest statement's finding: once
				// fixed, the next weakest may be reported in its turn.
				if g.Statement == f.Statement && g.Rule == f.Rule && f.Rule != "TP020" {
					t.Fatalf("policy %s\nfix %s\nleaves %s: %s", d, f.Fix, g.Rule, g.Message)
				}
			}
		}
	}
	if total < n/5 {
		t.Fatalf("only %d findings in %d policies", total, n)
	}
}
