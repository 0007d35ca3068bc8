package lint

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/policy"
)

// patternCase is what a bad policy of testdata/rules must report for the
// rule of its file name (tpNNN-ISSUER-bad.json), for rule group 1:
// severity, statement, the JSON path of the condition at fault, and
// whether the finding carries a probe (false: a rule of the policy's
// shape, TP009 and TP012).
type patternCase struct {
	sev   Severity
	path  string
	probe bool
}

var patternPrefixes = map[string]string{
	"github": "token.actions.githubusercontent.com", "gitlab": "gitlab.com",
	"terraform": "app.terraform.io", "buildkite": "agent.buildkite.com",
	"bitbucket": "api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc",
}

// subPath is the path of the issuer's sub condition under op.
func subPath(issuer, op string) string {
	return `$.Statement[0].Condition["` + op + `"]["` + patternPrefixes[issuer] + `:sub"]`
}

var patternCases = map[string]patternCase{
	"tp003-github":    {SeverityCritical, subPath("github", "StringLike"), true},
	"tp003-gitlab":    {SeverityCritical, subPath("gitlab", "StringLike"), true},
	"tp003-terraform": {SeverityCritical, subPath("terraform", "StringLike"), true},
	"tp003-buildkite": {SeverityCritical, subPath("buildkite", "StringLike"), true},
	"tp004-github":    {SeverityHigh, subPath("github", "StringLike"), true},
	"tp004-gitlab":    {SeverityHigh, subPath("gitlab", "StringLike"), true},
	"tp004-terraform": {SeverityHigh, subPath("terraform", "StringLike"), true},
	"tp004-buildkite": {SeverityHigh, subPath("buildkite", "StringLike"), true},
	"tp006-github":    {SeverityHigh, subPath("github", "StringLike"), true},
	"tp006-gitlab":    {SeverityHigh, subPath("gitlab", "StringLike"), true},
	"tp006-terraform": {SeverityHigh, subPath("terraform", "StringLike"), true},
	"tp006-buildkite": {SeverityHigh, subPath("buildkite", "StringLike"), true},
	"tp007-github":    {SeverityHigh, subPath("github", "StringEquals"), true},
	"tp007-gitlab":    {SeverityHigh, subPath("gitlab", "StringLike"), true},
	"tp008-github":    {SeverityMedium, subPath("github", "StringLike"), true},
	"tp008-gitlab":    {SeverityMedium, subPath("gitlab", "StringLike"), true},
	"tp008-buildkite": {SeverityMedium, subPath("buildkite", "StringLike"), true},
	"tp008-bitbucket": {SeverityMedium, subPath("bitbucket", "StringLike"), true},
	"tp009-github":    {SeverityLow, subPath("github", "StringEquals"), false},
	"tp009-gitlab":    {SeverityLow, subPath("gitlab", "StringEquals"), false},
	"tp009-terraform": {SeverityLow, subPath("terraform", "StringEquals"), false},
	"tp009-buildkite": {SeverityLow, subPath("buildkite", "StringEquals"), false},
	"tp012-github":    {SeverityMedium, subPath("github", "ForAllValues:StringLike"), false},
	"tp012-gitlab":    {SeverityMedium, subPath("gitlab", "ForAllValues:StringLike"), false},
	"tp012-terraform": {SeverityMedium, subPath("terraform", "ForAllValues:StringLike"), false},
	"tp012-buildkite": {SeverityMedium, subPath("buildkite", "ForAllValues:StringLike"), false},
	"tp015-github":    {SeverityLow, subPath("github", "StringLike"), true},
	"tp015-gitlab":    {SeverityMedium, subPath("gitlab", "StringLike"), true},
	"tp015-terraform": {SeverityMedium, subPath("terraform", "StringLike"), true},
	"tp015-buildkite": {SeverityLow, subPath("buildkite", "StringLike"), true},
	"tp016-github":    {SeverityMedium, subPath("github", "StringLike"), true},
	"tp031-github":    {SeverityMedium, subPath("github", "StringEquals"), true},
}

// patternNoFixedTwin are the cases no condition can clear: HCP Terraform
// and Buildkite expose only sub and aud, no immutable id (trust-pitfalls
// §2.4, §2.6, §4.2), so TP015 has no fixed twin there.
var patternNoFixedTwin = map[string]bool{"tp015-terraform": true, "tp015-buildkite": true}

func readRuleFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rules", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lintDoc(t *testing.T, doc []byte) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(string(doc), policy.KindTrust)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRulesPatterns: for every rule of group 1 and every issuer it applies
// to, the bad policy fires the rule (id, severity, statement 0 and its
// Sid, path, a probe the evaluator admits where the rule has one, a fix)
// and the fixed twin is silent for that rule; a fix that is a Condition
// block, put in place of the statement's, silences the rule.
func TestRulesPatterns(t *testing.T) {
	for stem, want := range patternCases {
		rule := strings.ToUpper(stem[:5])
		t.Run(stem+"-bad", func(t *testing.T) {
			doc := readRuleFile(t, stem+"-bad.json")
			rep, err := Lint(doc, testOptions(3))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(rep.Rules, func(r Rule) bool { return r.ID == rule }) {
				t.Fatalf("%s is not among the rules that ran", rule)
			}
			got := findingsOf(rep.Findings, rule)
			if len(got) == 0 {
				t.Fatalf("%s does not fire; findings: %+v", rule, rep.Findings)
			}
			f := got[0]
			if f.Severity != want.sev || f.Statement != 0 || f.Sid != "Bad" || f.Path != want.path {
				t.Fatalf("finding = %s %v statement %d sid %q path %s, want %v %s", f.Rule, f.Severity, f.Statement, f.Sid, f.Path, want.sev, want.path)
			}
			if f.Message == "" || f.Fix == "" || f.Line == 0 {
				t.Fatalf("finding lacks message, fix or position: %+v", f)
			}
			p := lintDoc(t, doc)
			switch {
			case want.probe && f.Probe == nil:
				t.Fatalf("no probe: %s", f.Message)
			case !want.probe && f.Probe != nil:
				t.Fatalf("a shape rule carries a probe: %+v", f.Probe)
			case f.Probe != nil && !admitsContext(p, f.Probe):
				t.Fatalf("the probe is not admitted: %+v", f.Probe)
			}
			if strings.HasPrefix(f.Fix, "{") {
				fixed := applyPatternFix(t, p, f)
				for _, g := range LintPolicy(fixed, testOptions(3)) {
					if g.Rule == rule && g.Statement == f.Statement {
						t.Fatalf("the fix %s still fires %s: %s", f.Fix, rule, g.Message)
					}
				}
			}
		})
		if patternNoFixedTwin[stem] {
			if _, err := os.Stat(filepath.Join("testdata", "rules", stem+"-fixed.json")); err == nil {
				t.Errorf("%s has a fixed twin, but is listed as having none", stem)
			}
			continue
		}
		t.Run(stem+"-fixed", func(t *testing.T) {
			rep, err := Lint(readRuleFile(t, stem+"-fixed.json"), testOptions(3))
			if err != nil {
				t.Fatal(err)
			}
			if got := findingsOf(rep.Findings, rule); len(got) > 0 {
				t.Fatalf("fixed twin fires %s: %s", rule, got[0].Message)
			}
		})
	}
}

// applyPatternFix is p with the finding's statement's Condition replaced by the
// finding's Fix.
func applyPatternFix(t *testing.T, p *policy.Policy, f Finding) *policy.Policy {
	t.Helper()
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + f.Principal +
		`"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":` + f.Fix + `}]}`
	fp, err := policy.Parse(doc, policy.KindTrust)
	if err != nil {
		t.Fatalf("the fix does not parse: %v\n%s", err, f.Fix)
	}
	np, err := withCondition(p, f.Statement, fp.Statements[0].Condition)
	if err != nil {
		t.Fatal(err)
	}
	return np
}

// TestRulesPatternsVariants: the severities and shapes the files do not
// cover: the partial branch and environment names of TP006 (MEDIUM),
// TP012 on an optional claim (HIGH), TP015 on a tenant-wide pattern
// (MEDIUM), the withdrawn hyphen form of TP016 (CRITICAL, a probe of the
// organisation of that name), and what must stay silent.
func TestRulesPatternsVariants(t *testing.T) {
	const aud = `"StringEquals":{"` + ghPfx + `:aud":"sts.amazonaws.com"}`
	for _, tc := range []struct {
		name, cond, rule string
		sev              Severity // 0: the rule must not fire
		in               string   // in the probe's sub
	}{
		{"branch prefix", `{` + aud + `,"StringLike":{"` + ghPfx + `:sub":"repo:acme/app:ref:refs/heads/release*"}}`, "TP006", SeverityMedium, "refs/heads/release"},
		{"branch prefix is not any branch", `{` + aud + `,"StringLike":{"` + ghPfx + `:sub":"repo:acme/app:ref:refs/heads/release*"}}`, "TP008", 0, ""},
		{"environment prefix", `{` + aud + `,"StringLike":{"` + ghPfx + `:sub":"repo:acme/app:environment:prod*"}}`, "TP006", SeverityMedium, ":environment:prod"},
		{"gitlab ref prefix", `{"StringLike":{"gitlab.com:sub":"project_path:acme/app:ref_type:branch:ref:main*"}}`, "TP006", SeverityMedium, "ref:main"},
		{"buildkite ref prefix", `{"StringLike":{"agent.buildkite.com:sub":"organization:acme:pipeline:deploy:ref:refs/heads/main*"}}`, "TP006", SeverityMedium, "refs/heads/main"},
		{"optional claim under ForAllValues", `{"StringEquals":{"` + ghPfx + `:sub":"repo:acme/app:ref:refs/heads/main"},"ForAllValues:StringEquals":{"` + ghPfx + `:environment":"prod"}}`, "TP012", SeverityHigh, ""},
		{"recycled org-wide", `{` + aud + `,"StringLike":{"` + ghPfx + `:sub":"repo:acme/*"}}`, "TP015", SeverityMedium, "repo:acme/"},
		{"hyphen preview form", `{"StringEquals":{"` + ghPfx + `:sub":"repo:acme-1001/payments-api-5001:ref:refs/heads/main"}}`, "TP016", SeverityCritical, "repo:acme-1001/payments-api-5001:"},
		{"immutable exact", `{"StringEquals":{"` + ghPfx + `:sub":"repo:acme@1001/app@5001:ref:refs/heads/main"}}`, "TP016", 0, ""},
		{"immutable exact is pinned", `{"StringEquals":{"` + ghPfx + `:sub":"repo:acme@1001/app@5001:ref:refs/heads/main"}}`, "TP015", 0, ""},
		{"pull request twin of the PR rule", `{` + aud + `,"StringLike":{"` + ghPfx + `:sub":"repo:acme/app:*"}}`, "TP007", SeverityHigh, ":pull_request"},
		{"another tenant is the guardrail's", `{"StringLike":{"` + ghPfx + `:sub":"repo:*"}}`, "TP004", 0, ""},
		{"blamed on the statement that admits it", `{"StringLike":{"` + ghPfx + `:environment":"Pr*od","` + ghPfx + `:sub":"repo:acme/app:environment:*"}}`, "TP006", SeverityMedium, "environment:Pr"},
		{"ids pin the repository", `{"StringLike":{"` + ghPfx + `:sub":"repo:acme/*"},"StringEquals":{"` + ghPfx + `:repository_id":"5001"}}`, "TP004", 0, ""},
		{"two tight values", `{"StringEquals":{"` + ghPfx + `:sub":["repo:acme/app:ref:refs/heads/main","repo:acme/app:environment:prod"]}}`, "TP003", 0, ""},
		{"every value loose is not TP003", `{"StringLike":{"` + ghPfx + `:sub":["repo:acme/*","repo:acme*"]}}`, "TP003", 0, ""},
		{"tenant-wide value among tight ones", `{"StringLike":{"` + ghPfx + `:sub":["repo:acme/app:ref:refs/heads/main","repo:acme/*"]}}`, "TP003", SeverityCritical, "repo:acme/"},
		{"a look-alike owner is not the policy's tenant", `{"StringLike":{"` + ghPfx + `:sub":"repo:*cme/*"}}`, "TP004", 0, ""},
		{"an environment open to any name is not a partial name", `{"StringLike":{"` + ghPfx + `:sub":["repo:acme/app:*","repo:acme/app:environment:pr*od"]}}`, "TP006", 0, ""},
		{"%3A in a StringLike pin", `{` + aud + `,"StringLike":{"` + ghPfx + `:sub":"repo:acme/app:environment:Prod%3AV*"}}`, "TP031", SeverityMedium, "%3AV"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arn := ghARN
			switch {
			case strings.Contains(tc.cond, "gitlab.com:"):
				arn = glARN
			case strings.Contains(tc.cond, "agent.buildkite.com:"):
				arn = bkARN
			}
			p := policy.MustParse(doc(stmt(arn, tc.cond)), policy.KindTrust)
			got := findingsOf(LintPolicy(p, testOptions(9)), tc.rule)
			if tc.sev == 0 {
				if len(got) > 0 {
					t.Fatalf("%s fires: %s", tc.rule, got[0].Message)
				}
				return
			}
			if len(got) == 0 {
				t.Fatalf("%s does not fire", tc.rule)
			}
			f := got[0]
			if f.Severity != tc.sev {
				t.Fatalf("severity %v, want %v: %s", f.Severity, tc.sev, f.Message)
			}
			if f.Probe != nil && !admitsContext(p, f.Probe) {
				t.Fatalf("the probe is not admitted: %+v", f.Probe)
			}
			if tc.in != "" && (f.Probe == nil || !strings.Contains(f.Probe.Claims["sub"], tc.in)) {
				t.Fatalf("probe %+v, want a sub containing %q", f.Probe, tc.in)
			}
		})
	}
}

// TestRulesPatternsProbesAdmitted extends the property that every probe a
// finding reports is admitted by the evaluator to group 1's corpus: every
// policy of testdata/rules (all groups' files), every finding of any rule.
func TestRulesPatternsProbesAdmitted(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "rules", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Parse(string(b), policy.KindTrust)
		if err != nil {
			continue // a duplicate-key document (TP019) or a baseline
		}
		for seed := range byte(3) {
			for _, f := range PatternRules(p, testOptions(seed)) {
				if f.Probe != nil && !admitsContext(p, f.Probe) {
					t.Fatalf("%s: %s's probe is not admitted: %+v", path, f.Rule, f.Probe)
				}
			}
		}
	}
}

// TestRulesPatternsProperty: on the property test's random GitHub trust
// policies (loosened values, IfExists, ForAllValues, negations, Deny
// statements), every probe group 1 reports is admitted by the evaluator
// on the context it records, and is a token of the policy's own tenant
// (a recycled name, or the withdrawn hyphen form's organisation aside).
func TestRulesPatternsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	n := 300
	if testing.Short() || raceEnabled {
		n = 80
	}
	fired := map[string]int{}
	for i := range n {
		doc := genPolicy(r)
		p, err := policy.Parse(doc, policy.KindTrust)
		if err != nil {
			continue
		}
		for _, f := range PatternRules(p, testOptions(byte(i))) {
			fired[f.Rule]++
			if f.Probe == nil {
				continue
			}
			if !admitsContext(p, f.Probe) {
				t.Fatalf("%s's probe is not admitted:\n%s\n%+v", f.Rule, doc, f.Probe)
			}
			// The statement blamed admits the probe by itself.
			if !admitsContext(statementAlone(p, f.Statement), f.Probe) {
				t.Fatalf("%s's probe is not admitted by statement %d alone:\n%s\n%+v", f.Rule, f.Statement, doc, f.Probe)
			}
			if f.Rule != "TP003" && f.Rule != "TP016" && !strings.EqualFold(f.Probe.Tenant, legitOwner) {
				t.Fatalf("%s's probe is another tenant's (%s):\n%s\n%+v", f.Rule, f.Probe.Tenant, doc, f.Probe)
			}
		}
	}
	// The generator reaches most of the group's probe rules.
	for _, rule := range []string{"TP003", "TP004", "TP007", "TP008", "TP012", "TP015"} {
		if fired[rule] == 0 {
			t.Errorf("%s never fired on %d policies: %v", rule, n, fired)
		}
	}
	t.Logf("findings per rule: %v", fired)
}

// TestRulesPatternsFixProperty: on the same random policies, every fix of
// group 1 that is a Condition block, put in place of its statement's,
// parses and silences its rule on that statement.
func TestRulesPatternsFixProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	n := 200
	if testing.Short() || raceEnabled {
		n = 40
	}
	for i := range n {
		doc := genPolicy(r)
		p, err := policy.Parse(doc, policy.KindTrust)
		if err != nil {
			continue
		}
		for _, f := range PatternRules(p, testOptions(byte(i))) {
			if !strings.HasPrefix(f.Fix, "{") {
				continue
			}
			fixed := applyPatternFix(t, p, f)
			for _, g := range PatternRules(fixed, testOptions(byte(i))) {
				// The shape rules report each condition: the fix is the
				// condition's.
				perCondition := f.Rule == "TP009" || f.Rule == "TP012"
				if g.Rule == f.Rule && g.Statement == f.Statement && (!perCondition || g.Path == f.Path) {
					t.Fatalf("the fix of %s leaves it:\npolicy: %s\nfix: %s\nnow: %s", f.Rule, doc, f.Fix, g.Message)
				}
			}
		}
	}
}

// BenchmarkPatternRules: Lint on group 1's test policies (the budget is
// 50 ms per policy; TestRulesPatternsBudget checks it).
func BenchmarkPatternRules(b *testing.B) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "rules", "tp0[01][0-9]-*.json"))
	for _, path := range paths {
		stem := strings.TrimSuffix(filepath.Base(path), ".json")
		if _, mine := patternCases[stem[:strings.LastIndexByte(stem, '-')]]; !mine {
			continue
		}
		doc, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		o := testOptions(1)
		b.Run(stem, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Lint(doc, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRulesPatternsBudget: each of group 1's test policies lints in well
// under 50 ms.
func TestRulesPatternsBudget(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing")
	}
	for stem := range patternCases {
		for _, kind := range []string{"-bad.json", "-fixed.json"} {
			doc, err := os.ReadFile(filepath.Join("testdata", "rules", stem+kind))
			if err != nil {
				continue
			}
			start := time.Now()
			if _, err := Lint(doc, testOptions(1)); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Errorf("%s%s: %v", stem, kind, d)
			}
		}
	}
}
