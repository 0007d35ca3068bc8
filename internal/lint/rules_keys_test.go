package lint

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/policy"
)

// keysOptions are the test options with keyless's own issuer declared
// (testdata/rules/*-keyless-*.json trust it).
func keysOptions(seed byte) Options {
	o := testOptions(seed)
	o.OwnIssuers = []OwnIssuer{{URL: "https://ci.example.net/keyless/org/5f0c9e7a-0000-4000-8000-000000000001", Profile: "circleci"}}
	return o
}

// keysCases are group 2's testdata/rules/<rule>-<issuer>-{bad,fixed}.json:
// the rule, severity and condition path the bad policy must report (in
// statement 0); the fixed twin must not report the rule.
var keysCases = map[string]struct {
	rule string
	sev  Severity
	path string
}{
	"tp001-circleci":          {"TP001", SeverityHigh, "$.Statement[0]"},
	"tp001-bitbucket":         {"TP001", SeverityHigh, "$.Statement[0]"},
	"tp001-gitlabselfmanaged": {"TP001", SeverityHigh, "$.Statement[0]"},
	"tp001-tfe":               {"TP001", SeverityHigh, "$.Statement[0]"},
	"tp001-keyless":           {"TP001", SeverityHigh, "$.Statement[0]"},
	"tp001-generic":           {"TP001", SeverityHigh, "$.Statement[0]"},
	"tp001-google":            {"TP001", SeverityCritical, "$.Statement[0]"},
	"tp013-github":            {"TP013", SeverityMedium, "$.Statement[0].Condition[\"StringEquals\"][\"token.actions.githubusercontent.com:event_name\"]"},
	"tp013-gitlab":            {"TP013", SeverityHigh, "$.Statement[0].Condition[\"StringNotEquals\"][\"gitlab.com:user_login\"]"},
	"tp013-gitlabselfmanaged": {"TP013", SeverityMedium, "$.Statement[0].Condition[\"StringEquals\"][\"gitlab.example.com:project_id\"]"},
	"tp013-terraform":         {"TP013", SeverityMedium, "$.Statement[0].Condition[\"StringEquals\"][\"app.terraform.io:terraform_workspace_id\"]"},
	"tp013-circleci":          {"TP013", SeverityHigh, "$.Statement[0].Condition[\"StringNotEquals\"][\"oidc.circleci.com/org/2a3b4c5d-1111-2222-3333-444455556666:oidc.circleci.com/ssh-rerun\"]"},
	"tp013-bitbucket":         {"TP013", SeverityMedium, "$.Statement[0].Condition[\"StringEquals\"][\"api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc:branchName\"]"},
	"tp013-google":            {"TP013", SeverityMedium, "$.Statement[0].Condition[\"StringEquals\"][\"accounts.google.com:azp\"]"},
	"tp013-generic":           {"TP013", SeverityHigh, "$.Statement[0].Condition[\"StringLikeIfExists\"][\"jenkins.example.org/oidc:job\"]"},
	"tp013-buildkite":         {"TP013", SeverityMedium, "$.Statement[0].Condition[\"StringEquals\"][\"agents.buildkite.com:sub\"]"},
	"tp017-github":            {"TP017", SeverityMedium, "$.Statement[0]"},
	"tp017-gitlab":            {"TP017", SeverityMedium, "$.Statement[0]"},
	"tp017-terraform":         {"TP017", SeverityMedium, "$.Statement[0]"},
	"tp017-buildkite":         {"TP017", SeverityMedium, "$.Statement[0]"},
	"tp017-circleci":          {"TP017", SeverityLow, "$.Statement[0]"},
	"tp017-bitbucket":         {"TP017", SeverityLow, "$.Statement[0]"},
	"tp017-google":            {"TP017", SeverityMedium, "$.Statement[0]"},
	"tp017-generic":           {"TP017", SeverityLow, "$.Statement[0]"},
	"tp017-keyless":           {"TP017", SeverityLow, "$.Statement[0]"},
	"tp018-github":            {"TP018", SeverityMedium, "$.Statement[0].Condition[\"StringEquals\"][\"token.actions.githubusercontent.com:aud\"]"},
	"tp018-gitlab":            {"TP018", SeverityMedium, "$.Statement[0].Condition[\"StringLike\"][\"gitlab.com:aud\"]"},
	"tp018-terraform":         {"TP018", SeverityMedium, "$.Statement[0].Condition[\"StringLike\"][\"app.terraform.io:aud\"]"},
	"tp018-buildkite":         {"TP018", SeverityMedium, "$.Statement[0].Condition[\"StringLike\"][\"agent.buildkite.com:aud\"]"},
	"tp018-circleci":          {"TP018", SeverityLow, "$.Statement[0].Condition[\"StringLike\"][\"oidc.circleci.com/org/2a3b4c5d-1111-2222-3333-444455556666:aud\"]"},
	"tp018-bitbucket":         {"TP018", SeverityLow, "$.Statement[0].Condition[\"StringLike\"][\"api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc:aud\"]"},
	"tp018-generic":           {"TP018", SeverityLow, "$.Statement[0].Condition[\"StringEquals\"][\"jenkins.example.org/oidc:aud\"]"},
	"tp021-github":            {"TP021", SeverityHigh, "$.Statement[0].Principal"},
	"tp021-gitlab":            {"TP021", SeverityHigh, "$.Statement[0].Principal"},
	"tp021-circleci":          {"TP021", SeverityHigh, "$.Statement[0].Principal"},
	"tp021-generic":           {"TP021", SeverityHigh, "$.Statement[0].Principal"},
	"tp022-github":            {"TP022", SeverityMedium, "$.Statement[0].Action"},
	"tp022-gitlab":            {"TP022", SeverityMedium, "$.Statement[0].Action"},
	"tp022-circleci":          {"TP022", SeverityLow, "$.Statement[0].Action"},
	"tp022-terraform":         {"TP022", SeverityMedium, "$.Statement[0].Action"},
	"tp029-github":            {"TP029", SeverityLow, "$.Statement[0].Condition[\"StringEquals\"][\"token.actions.githubusercontent.com:sub\"]"},
	"tp029-gitlab":            {"TP029", SeverityLow, "$.Statement[0].Condition[\"StringEquals\"][\"gitlab.com:sub\"]"},
	"tp029-terraform":         {"TP029", SeverityLow, "$.Statement[0].Condition[\"StringEquals\"][\"app.terraform.io:sub\"]"},
	"tp029-circleci":          {"TP029", SeverityInfo, "$.Statement[0].Condition[\"StringLike\"][\"oidc.circleci.com/org/2a3b4c5d-1111-2222-3333-444455556666:sub\"]"},
	"tp029-bitbucket":         {"TP029", SeverityInfo, "$.Statement[0].Condition[\"StringLike\"][\"api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc:sub\"]"},
	"tp029-generic":           {"TP029", SeverityInfo, "$.Statement[0].Condition[\"StringEquals\"][\"jenkins.example.org/oidc:sub\"]"},
	"tp032-google":            {"TP032", SeverityCritical, "$.Statement[0].Condition[\"StringEquals\"][\"accounts.google.com:aud\"]"},
	"tp039-github":            {"TP039", SeverityLow, "$.Statement[0].Condition[\"StringEquals\"][\"token.actions.githubusercontent.com:email\"]"},
	"tp039-gitlab":            {"TP039", SeverityLow, "$.Statement[0].Condition[\"StringEquals\"][\"gitlab.com:email\"]"},
	"tp039-circleci":          {"TP039", SeverityInfo, "$.Statement[0].Condition[\"StringEquals\"][\"oidc.circleci.com/org/2a3b4c5d-1111-2222-3333-444455556666:email\"]"},
	"tp039-bitbucket":         {"TP039", SeverityInfo, "$.Statement[0].Condition[\"StringEquals\"][\"api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc:email\"]"},
	"tp039-generic":           {"TP039", SeverityInfo, "$.Statement[0].Condition[\"StringEquals\"][\"jenkins.example.org/oidc:email\"]"},
}

// probeRules decide by probes: their findings carry an admitted probe.
var probeRules = []string{"TP001", "TP017", "TP018", "TP032"}

func readRuleDoc(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rules", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRulesKeys: every bad policy fires its rule with the severity (one
// level lower for per-tenant issuers), statement and path expected, a
// probe the evaluator admits for the rules that probe (none for the
// shape rules), and a fix; every fixed twin is silent for that rule; a
// fix that is a Condition block, put in place, silences the rule too.
func TestRulesKeys(t *testing.T) {
	for name, want := range keysCases {
		t.Run(name, func(t *testing.T) {
			bad := readRuleDoc(t, name+"-bad")
			rep, err := Lint(bad, keysOptions(3))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(rep.Rules, func(r Rule) bool { return r.ID == want.rule }) {
				t.Fatalf("%s is not among the rules that ran", want.rule)
			}
			var f *Finding
			for i := range rep.Findings {
				if rep.Findings[i].Rule == want.rule {
					f = &rep.Findings[i]
					break
				}
			}
			if f == nil {
				t.Fatalf("no %s finding: %+v", want.rule, rep.Findings)
			}
			if f.Severity != want.sev || f.Statement != 0 || f.Sid != "CI" || f.Path != want.path {
				t.Errorf("got %s %s statement %d sid %q path %s; want %s %s statement 0 path %s",
					f.Rule, f.Severity, f.Statement, f.Sid, f.Path, want.rule, want.sev, want.path)
			}
			if f.Message == "" || f.Fix == "" || f.Line == 0 {
				t.Errorf("finding lacks message, fix or line: %+v", f)
			}
			p := policy.MustParse(string(bad), policy.KindTrust)
			if slices.Contains(probeRules, want.rule) {
				if f.Probe == nil || !admitsContext(p, f.Probe) {
					t.Errorf("probe missing or not admitted: %+v", f.Probe)
				}
			} else if f.Probe != nil {
				t.Errorf("shape rule %s carries a probe: %+v", want.rule, f.Probe)
			}
			if strings.HasPrefix(f.Fix, "{") {
				var cond map[string]any
				if err := json.Unmarshal([]byte(f.Fix), &cond); err != nil {
					t.Fatalf("fix is not a Condition block: %v: %s", err, f.Fix)
				}
				again, err := Lint(applyFix(t, bad, *f), keysOptions(4))
				if err != nil {
					t.Fatalf("fixed policy does not parse: %v", err)
				}
				for _, g := range again.Findings {
					if g.Rule == want.rule && g.Statement == f.Statement {
						t.Errorf("fix %s leaves %s: %s", f.Fix, g.Rule, g.Message)
					}
				}
			}

			rep, err = Lint(readRuleDoc(t, name+"-fixed"), keysOptions(3))
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range rep.Findings {
				if g.Rule == want.rule {
					t.Errorf("fixed twin fires %s: %s", g.Rule, g.Message)
				}
			}
		})
	}
}

// TestRulesKeysProbesAdmitted extends the property to every policy of
// testdata/rules (all groups'): each probe Lint reports is admitted by
// the evaluator, whatever the rule.
func TestRulesKeysProbesAdmitted(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "rules", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no policies: %v", err)
	}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Parse(string(b), policy.KindTrust)
		if err != nil {
			continue
		}
		for _, f := range LintPolicy(p, keysOptions(5)) {
			if f.Probe != nil && !admitsContext(p, f.Probe) {
				t.Errorf("%s: %s probe not admitted: %+v", path, f.Rule, f.Probe)
			}
		}
	}
}

// TestRulesKeysProperty runs group 2's rules on the property test's
// random GitHub policies (genPolicy): every probe they report is admitted
// by the evaluator, and every Condition-block fix, put in place, clears
// the rule from the statement.
func TestRulesKeysProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	n := 250
	if testing.Short() {
		n = 60
	}
	probes := 0
	for i := range n {
		d := genPolicy(r)
		p, err := policy.Parse(d, policy.KindTrust)
		if err != nil {
			continue
		}
		for _, f := range RulesKeys(p, testOptions(byte(i))) {
			if f.Probe != nil {
				probes++
				if !admitsContext(p, f.Probe) {
					t.Fatalf("%s probe not admitted:\n%s\n%+v", f.Rule, d, f.Probe)
				}
			}
			if !strings.HasPrefix(f.Fix, "{") {
				continue
			}
			fixed, err := policy.Parse(string(applyFix(t, []byte(d), f)), policy.KindTrust)
			if err != nil {
				t.Fatalf("fix %s does not parse: %v", f.Fix, err)
			}
			for _, g := range RulesKeys(fixed, testOptions(byte(i+1))) {
				if g.Rule == f.Rule && g.Statement == f.Statement {
					t.Fatalf("policy %s\nfix %s\nleaves %s: %s", d, f.Fix, g.Rule, g.Message)
				}
			}
		}
	}
	if probes < n/10 {
		t.Fatalf("only %d probes in %d policies", probes, n)
	}
	t.Logf("%d probes", probes)
}

// TestIssuerForOpts: keyless's own issuers are recognised only when the
// options declare them (else they are generic), per-tenant issuers by
// their URL, and every entry's keys are the STS's (one table).
func TestIssuerForOpts(t *testing.T) {
	own := "arn:aws:iam::111122223333:oidc-provider/ci.example.net/keyless/org/5f0c9e7a-0000-4000-8000-000000000001"
	for _, tc := range []struct {
		fed  string
		o    Options
		want string
	}{
		{own, keysOptions(1), IssuerKeyless},
		{own, testOptions(1), IssuerGeneric},
		{"arn:aws:iam::111122223333:oidc-provider/oidc.circleci.com/org/o1", testOptions(1), IssuerCircleCI},
		{"arn:aws:iam::111122223333:oidc-provider/api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc", testOptions(1), IssuerBitbucket},
		{"arn:aws:iam::111122223333:oidc-provider/api.bitbucket.org/2.0/workspaces/acme", testOptions(1), IssuerGeneric},
		{"arn:aws:iam::111122223333:oidc-provider/gitlab.example.com", testOptions(1), IssuerGitLabSelfManaged},
		{"arn:aws:iam::111122223333:oidc-provider/tfe.example.com", testOptions(1), IssuerTerraformEnterprise},
		{"accounts.google.com", testOptions(1), IssuerGoogle},
		{"arn:aws:iam::111122223333:oidc-provider/accounts.google.com", testOptions(1), IssuerGoogle},
		{"arn:aws:iam::111122223333:oidc-provider/gitlab.com", testOptions(1), "gitlab.com"},
		{"arn:aws:iam::111122223333:saml-provider/x", testOptions(1), ""},
	} {
		iss, _, ok := issuerForOpts(tc.fed, tc.o)
		got := ""
		if ok {
			got = iss.Name
			if iss.Shared != (tc.want == "gitlab.com") {
				t.Errorf("%s: Shared = %v", tc.fed, iss.Shared)
			}
		}
		if got != tc.want {
			t.Errorf("issuerForOpts(%q) = %q, want %q", tc.fed, got, tc.want)
		}
	}
	// CircleCI's tokens include SSH reruns (ssh-rerun is a claim, not a
	// key), and the organisation is the issuer's.
	iss, _, _ := issuerFor("arn:aws:iam::1:oidc-provider/oidc.circleci.com/org/o1")
	var shapes []string
	for _, sh := range iss.model.shapes {
		shapes = append(shapes, sh.name)
		for _, c := range sh.claims {
			if c.name == "sub" && !strings.HasPrefix(c.src, "org/o1/project/") {
				t.Errorf("shape %s: sub %s", sh.name, c.src)
			}
		}
	}
	if !slices.Contains(shapes, "ssh-rerun v1") || !slices.Contains(shapes, "ssh-rerun v2") {
		t.Errorf("shapes %v", shapes)
	}
}

// TestTP013Polarity: a key no issuer exposes in a Deny statement swaps
// the severities (a positive condition there is the fail-open one), and
// exposed keys, global keys and keys of another trusted provider of the
// same statement are not reported.
func TestTP013Polarity(t *testing.T) {
	deny := `{"Effect":"Deny","Principal":{"Federated":"` + ghARN + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + ghPfx + `:event_name":"pull_request"}}}`
	allow := stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:aud":"sts.amazonaws.com","`+ghPfx+`:sub":"repo:acme/app:ref:refs/heads/main","aws:RequestedRegion":"us-east-1"}}`)
	p := policy.MustParse(doc(allow, deny), policy.KindTrust)
	var got []Finding
	for _, f := range RulesKeys(p, testOptions(1)) {
		if f.Rule == "TP013" {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Statement != 1 || got[0].Severity != SeverityHigh {
		t.Fatalf("findings %+v", got)
	}
	two := `{"Effect":"Allow","Principal":{"Federated":["` + ghARN + `","` + glARN + `"]},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"gitlab.com:project_id":"42","` + ghPfx + `:repository_id":"5001"}}}`
	for _, f := range RulesKeys(policy.MustParse(doc(two), policy.KindTrust), testOptions(1)) {
		if f.Rule == "TP013" {
			t.Errorf("exposed key of a trusted provider reported: %s", f.Message)
		}
	}
}

// TestTP021Account: a provider of another account is reported only when
// the role's account is known.
func TestTP021Account(t *testing.T) {
	other := "arn:aws:iam::999988887777:oidc-provider/token.actions.githubusercontent.com"
	p := policy.MustParse(doc(stmt(other, `{"StringEquals":{"`+ghPfx+`:aud":"sts.amazonaws.com","`+ghPfx+`:sub":"repo:acme/app:ref:refs/heads/main"}}`)), policy.KindTrust)
	count := func(o Options) int {
		n := 0
		for _, f := range RulesKeys(p, o) {
			if f.Rule == "TP021" {
				n++
			}
		}
		return n
	}
	o := testOptions(1)
	if count(o) != 1 {
		t.Errorf("account %s: want a TP021 finding", o.Account)
	}
	o.Account = ""
	if count(o) != 0 {
		t.Error("no account: want no TP021 finding")
	}
}

// BenchmarkLintKeys: Lint (every rule) on group 2's test policies; the
// budget is 50 ms a policy.
func BenchmarkLintKeys(b *testing.B) {
	names := make([]string, 0, len(keysCases))
	for name := range keysCases {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		d, err := os.ReadFile(filepath.Join("testdata", "rules", name+"-bad.json"))
		if err != nil {
			b.Fatal(err)
		}
		o := keysOptions(1)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Lint(d, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
