package lint

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/policy"
)

// ciCase is what a bad policy of testdata/rules must report for the
// rule of its file name (tpNNN-ISSUER-bad.json): severity, statement and
// the JSON path of the condition at fault; probe says whether the rule
// proves it with an admitted token (false: the rule is about a token the
// policy refuses, or about the policy's shape).
type ciCase struct {
	sev   Severity
	stmt  int
	path  string
	probe bool
}

const (
	ghP  = "token.actions.githubusercontent.com"
	ccP  = "oidc.circleci.com/org/2c8b5e2a-1111-4222-8333-444455556666"
	bbP  = "api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc"
	tfP  = "app.terraform.io"
	tfeP = "tfe.example.com"
)

var ciCases = map[string]ciCase{
	"tp020-github":            {SeverityCritical, 1, `$.Statement[1].Condition["StringLike"]["token.actions.githubusercontent.com:sub"]`, true},
	"tp020-gitlab":            {SeverityCritical, 1, `$.Statement[1].Condition["StringLike"]["gitlab.com:sub"]`, true},
	"tp023-circleci":          {SeverityHigh, 0, `$.Statement[0].Condition["StringLike"]["` + ccP + `:sub"]`, true},
	"tp024-terraform":         {SeverityHigh, 0, `$.Statement[0].Condition["StringLike"]["` + tfP + `:sub"]`, true},
	"tp024-tfe":               {SeverityMedium, 0, `$.Statement[0].Condition["StringLike"]["` + tfeP + `:sub"]`, true},
	"tp025-gitlab":            {SeverityHigh, 0, `$.Statement[0].Condition["StringEquals"]["gitlab.com:sub"]`, true},
	"tp025-gitlabselfmanaged": {SeverityMedium, 0, `$.Statement[0].Condition["StringLike"]["gitlab.example.com:sub"]`, true},
	"tp026-github":            {SeverityMedium, 0, `$.Statement[0].Condition["StringEquals"]["` + ghP + `:job_workflow_ref"]`, true},
	"tp026-circleci":          {SeverityLow, 0, `$.Statement[0].Condition["StringLike"]["` + ccP + `:sub"]`, false},
	"tp033-github":            {SeverityInfo, 0, `$.Statement[0].Condition["StringEquals"]["` + ghP + `:sub"]`, true},
	"tp034-github":            {SeverityInfo, 0, `$.Statement[0].Condition["StringEquals"]["` + ghP + `:sub"]`, true},
	"tp037-github":            {SeverityInfo, 0, `$.Statement[0].Condition["StringEquals"]["` + ghP + `:sub"]`, false},
	"tp038-buildkite":         {SeverityLow, 0, `$.Statement[0].Condition["StringEquals"]["agent.buildkite.com:sub"]`, false},
	"tp038-bitbucket":         {SeverityLow, 0, `$.Statement[0].Condition["StringEquals"]["` + bbP + `:sub"]`, false},
	"tp040-github":            {SeverityInfo, 0, `$.Statement[0].Condition["StringEquals"]["` + ghP + `:sub"]`, true},
	"tp040-terraform":         {SeverityInfo, 1, `$.Statement[1]`, true},
}

// ciFixedFires are the rules that no condition can silence (trust-
// pitfalls.md §6: AWS exposes no key that would): their fixed twin
// narrows the finding instead, to this severity.
var ciFixedFires = map[string]Severity{
	// ssh-rerun is not a condition key: pinning one user lowers TP023
	// from HIGH to MEDIUM.
	"tp023-circleci": SeverityMedium,
}

type ciFile struct {
	stem, rule string
	bad        bool
	doc, base  []byte
}

func loadCIFiles(t testing.TB) []ciFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "rules", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []ciFile
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		stem, kind := name[:strings.LastIndexByte(name, '-')], name[strings.LastIndexByte(name, '-')+1:]
		if _, mine := ciCases[stem]; !mine || kind == "baseline" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := ciFile{stem: stem, rule: strings.ToUpper(stem[:5]), bad: kind == "bad", doc: b}
		if base, err := os.ReadFile(filepath.Join("testdata", "rules", stem+"-baseline.json")); err == nil {
			f.base = base
		}
		out = append(out, f)
	}
	return out
}

func findingsOf(fs []Finding, rule string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// TestRulesCI: for every rule of this group and every issuer it applies
// to, the bad policy fires the rule (severity, statement, path, a probe
// the evaluator admits, a fix) and the fixed twin is silent for it; a
// fix that is a Condition block, put in place, silences the rule on that
// statement.
func TestRulesCI(t *testing.T) {
	files := loadCIFiles(t)
	seen := map[string]bool{}
	for _, cf := range files {
		name := cf.stem + map[bool]string{true: "-bad", false: "-fixed"}[cf.bad]
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			o := testOptions(5)
			o.Baseline = cf.base
			rep, err := Lint(cf.doc, o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(ruleIDs(rep.Rules), cf.rule) {
				t.Fatalf("%s is not among the rules that ran", cf.rule)
			}
			got := findingsOf(rep.Findings, cf.rule)
			if !cf.bad {
				if sev, ok := ciFixedFires[cf.stem]; ok {
					for _, f := range got {
						if f.Severity != sev {
							t.Fatalf("fixed twin: %s at %v, want at most %v: %s", cf.rule, f.Severity, sev, f.Message)
						}
					}
					return
				}
				if len(got) > 0 {
					t.Fatalf("fixed twin fires %s: %s", cf.rule, got[0].Message)
				}
				return
			}
			want := ciCases[cf.stem]
			if len(got) == 0 {
				t.Fatalf("no %s finding; findings: %+v", cf.rule, rep.Findings)
			}
			f := got[0]
			if f.Severity != want.sev || f.Statement != want.stmt || f.Path != want.path {
				t.Fatalf("got %v statement %d path %s, want %v statement %d path %s\n%s",
					f.Severity, f.Statement, f.Path, want.sev, want.stmt, want.path, f.Message)
			}
			if f.Message == "" || f.Fix == "" || f.Line == 0 {
				t.Fatalf("finding lacks message, fix or line: %+v", f)
			}
			p := policy.MustParse(string(cf.doc), policy.KindTrust)
			if want.probe != (f.Probe != nil) {
				t.Fatalf("probe %v, want %v", f.Probe, want.probe)
			}
			if f.Probe != nil && !admitsContext(p, f.Probe) {
				t.Fatalf("probe not admitted: %+v", f.Probe)
			}
			if !strings.HasPrefix(f.Fix, "{") {
				return
			}
			fixed := applyFix(t, cf.doc, f)
			rep2, err := Lint(fixed, o)
			if err != nil {
				t.Fatalf("the fix does not parse: %v\n%s", err, fixed)
			}
			for _, g := range findingsOf(rep2.Findings, cf.rule) {
				if cf.rule == "TP020" {
					// The fix is the weakest finding's: that rule is
					// gone; the next weakest may remain.
					if rule := got[0].Message[strings.Index(got[0].Message, "(TP"):][:7]; strings.Contains(g.Message, rule) {
						t.Fatalf("the fix %s leaves %s: %s", f.Fix, rule, g.Message)
					}
					continue
				}
				if g.Statement == f.Statement {
					t.Fatalf("the fix %s leaves %s: %s", f.Fix, g.Rule, g.Message)
				}
			}
		})
	}
	for stem := range ciCases {
		if !seen[stem+"-bad"] {
			t.Errorf("no testdata/rules/%s-bad.json", stem)
		}
		if _, ok := ciFixedFires[stem]; !seen[stem+"-fixed"] && stem != "tp034-github" && !ok {
			t.Errorf("no testdata/rules/%s-fixed.json", stem)
		}
	}
}

// TestRulesCIProbesAdmitted: on every policy of testdata/rules and
// testdata/policies, each probe Lint reports (any rule) is admitted by
// the evaluator on its recorded context, with and without a baseline.
func TestRulesCIProbesAdmitted(t *testing.T) {
	var docs [][]byte
	for _, cf := range loadCIFiles(t) {
		docs = append(docs, cf.doc)
	}
	for _, tp := range loadTestPolicies(t) {
		docs = append(docs, tp.doc)
	}
	base, err := os.ReadFile(filepath.Join("testdata", "rules", "tp040-github-baseline.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, d := range docs {
		for _, b := range [][]byte{nil, base} {
			o := testOptions(byte(i))
			o.Baseline = b
			rep, err := Lint(d, o)
			if err != nil {
				continue
			}
			p := policy.MustParse(string(d), policy.KindTrust)
			for _, f := range rep.Findings {
				if f.Probe == nil {
					continue
				}
				n++
				if !admitsContext(p, f.Probe) {
					t.Fatalf("%s probe not admitted:\n%s\n%+v", f.Rule, d, f.Probe)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no probes checked")
	}
}

// TestTP020NeedsSeveralStatements: the loose statement alone fires its
// own rule, not TP020; with a tight twin for the same provider it fires
// TP020 too, with the loose statement's severity and probe.
func TestTP020NeedsSeveralStatements(t *testing.T) {
	loose := stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:acme*"}}`)
	tight := stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:sub":"repo:acme/app:ref:refs/heads/main"}}`)
	rep, err := Lint([]byte(doc(loose)), testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(findingsOf(rep.Findings, "TP020")) != 0 || len(findingsOf(rep.Findings, "TP005")) == 0 {
		t.Fatalf("one statement: %+v", rep.Findings)
	}
	rep, err = Lint([]byte(doc(tight, loose)), testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	got := findingsOf(rep.Findings, "TP020")
	if len(got) != 1 || got[0].Statement != 1 || got[0].Severity != SeverityCritical || got[0].Probe == nil {
		t.Fatalf("two statements: %+v", got)
	}
	// Another provider's statement is not part of the union.
	other := strings.Replace(tight, ghARN, "arn:aws:iam::111122223333:oidc-provider/gitlab.com", 1)
	rep, err = Lint([]byte(doc(other, loose)), testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := findingsOf(rep.Findings, "TP020"); len(got) != 0 {
		t.Fatalf("different providers: %+v", got)
	}
}

// TestTP040Baseline: without a baseline TP040 is silent; an unparsable
// baseline is said, not ignored; a tightening is not drift; a looser
// operator is.
func TestTP040Baseline(t *testing.T) {
	exact := doc(stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:sub":"repo:acme/app:ref:refs/heads/main"}}`))
	looser := doc(stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:acme/app:*"}}`))
	run := func(d, base string) []Finding {
		t.Helper()
		o := testOptions(2)
		if base != "" {
			o.Baseline = []byte(base)
		}
		rep, err := Lint([]byte(d), o)
		if err != nil {
			t.Fatal(err)
		}
		return findingsOf(rep.Findings, "TP040")
	}
	if got := run(looser, ""); len(got) != 0 {
		t.Fatalf("no baseline: %+v", got)
	}
	if got := run(exact, looser); len(got) != 0 {
		t.Fatalf("tightened: %+v", got)
	}
	got := run(looser, exact)
	if len(got) != 1 || got[0].Probe == nil || !strings.Contains(got[0].Message, "operator StringEquals became StringLike") {
		t.Fatalf("loosened: %+v", got)
	}
	if got := run(exact, "{not json"); len(got) != 1 || !strings.Contains(got[0].Message, "baseline does not parse") {
		t.Fatalf("bad baseline: %+v", got)
	}
}

// TestRulesCIBudget: each policy of testdata/rules lints well within
// 50 ms (BenchmarkRulesCI gives the figures).
func TestRulesCIBudget(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing")
	}
	for _, cf := range loadCIFiles(t) {
		o := testOptions(1)
		o.Baseline = cf.base
		start := time.Now()
		if _, err := Lint(cf.doc, o); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("%s: %v", cf.stem, d)
		}
	}
}

// BenchmarkRulesCI: Lint (every rule) on the policies of testdata/rules.
func BenchmarkRulesCI(b *testing.B) {
	for _, cf := range loadCIFiles(b) {
		o := testOptions(1)
		o.Baseline = cf.base
		name := cf.stem + map[bool]string{true: "-bad", false: "-fixed"}[cf.bad]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Lint(cf.doc, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTP037TagOnly: a policy that admits only tag runs is checked
// without a crash (the model has no immutable tag shape: found by
// TestGuardrailProperty's random policies, which once made TP037 fit a
// nil shape).
func TestTP037TagOnly(t *testing.T) {
	d := doc(stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:sub":"repo:acme/app:ref:refs/tags/v1"}}`))
	rep, err := Lint([]byte(d), testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := findingsOf(rep.Findings, "TP037"); len(got) != 0 {
		t.Fatalf("%+v", got)
	}
}

// TestTP026GitHubRefs: a tag is movable whoever owns it (P-GH-34); a
// branch of the token's own repository is not another's to move; a
// commit SHA is immutable.
func TestTP026GitHubRefs(t *testing.T) {
	for _, c := range []struct {
		jwr  string
		want bool
	}{
		{"acme/automation/.github/workflows/deploy.yml@refs/tags/v1", true},
		{"acme/automation/.github/workflows/deploy.yml@refs/heads/main", true},
		{"acme/app/.github/workflows/deploy.yml@refs/heads/main", false},
		{"acme/automation/.github/workflows/deploy.yml@8f4e2d1c0b9a8f7e6d5c4b3a2918f7e6d5c4b3a2", false},
	} {
		d := doc(stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:sub":"repo:acme/app:ref:refs/heads/main","`+ghPfx+`:job_workflow_ref":"`+c.jwr+`"}}`))
		rep, err := Lint([]byte(d), testOptions(1))
		if err != nil {
			t.Fatal(err)
		}
		got := findingsOf(rep.Findings, "TP026")
		if (len(got) > 0) != c.want {
			t.Errorf("%s: %+v, want %v", c.jwr, got, c.want)
		}
		if len(got) > 0 && (got[0].Severity != SeverityMedium || got[0].Probe == nil) {
			t.Errorf("%s: %+v", c.jwr, got[0])
		}
	}
}
