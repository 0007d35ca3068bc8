package lint

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/policy"
)

const (
	ghARN  = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
	ghPfx  = "token.actions.githubusercontent.com"
	glARN  = "arn:aws:iam::111122223333:oidc-provider/gitlab.com"
	tfARN  = "arn:aws:iam::111122223333:oidc-provider/app.terraform.io"
	bkARN  = "arn:aws:iam::111122223333:oidc-provider/agent.buildkite.com"
	scARN  = "arn:aws:iam::111122223333:oidc-provider/scalr.io"
	cgARN  = "arn:aws:iam::111122223333:oidc-provider/cognito-identity.amazonaws.com"
	puARN  = "arn:aws:iam::111122223333:oidc-provider/api.pulumi.com/oidc"
	ccARN  = "arn:aws:iam::111122223333:oidc-provider/oidc.circleci.com/org/o1"
	entARN = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com/acme-ent"
)

// seeded is a deterministic io.Reader.
type seeded struct{ r *rand.ChaCha8 }

func (s seeded) Read(p []byte) (int, error) { return s.r.Read(p) }

func testOptions(seed byte) Options {
	now := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	return Options{Account: "111122223333", Now: func() time.Time { return now }, Rand: seeded{rand.NewChaCha8([32]byte{seed})}}
}

// stmt is an Allow statement of fed for AssumeRoleWithWebIdentity with the
// given Condition JSON ("" for none).
func stmt(fed, cond string) string {
	c := ""
	if cond != "" {
		c = `,"Condition":` + cond
	}
	return `{"Effect":"Allow","Principal":{"Federated":"` + fed + `"},"Action":"sts:AssumeRoleWithWebIdentity"` + c + `}`
}

func denyStmt(fed, cond string) string {
	return strings.Replace(stmt(fed, cond), `"Allow"`, `"Deny"`, 1)
}

func doc(stmts ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// gh is one GitHub statement with one condition on a GitHub key.
func gh(op, key, values string) string {
	return doc(stmt(ghARN, `{"`+op+`":{"`+ghPfx+`:`+key+`":`+values+`}}`))
}

func ghSub(op, values string) string { return gh(op, "sub", values) }

type guardCase struct {
	name string
	doc  string
	// rule is the expected rule of the first finding; "" means accepted.
	rule string
	// kind is the expected probe kind; "" means a finding of AWS's control
	// alone, without a probe.
	kind ProbeKind
	// stmt is the statement the finding names.
	stmt int
	// in is a substring of the probe's sub (or of the claim the case is
	// about, see claim).
	in    string
	claim string
}

func guardCases() []guardCase {
	return []guardCase{
		// Accepted: scoped to one tenant (looser rules such as TP004
		// tenant-wide, TP006 repo prefix or TP007 pull requests are the
		// linter's, not the guardrail's).
		{name: "exact", doc: ghSub("StringEquals", `"repo:acme/app:ref:refs/heads/main"`)},
		{name: "own repo any context", doc: ghSub("StringLike", `"repo:acme/app:*"`)},
		{name: "org wide", doc: ghSub("StringLike", `"repo:acme/*"`)},
		{name: "repo prefix", doc: ghSub("StringLike", `"repo:acme/app*"`)},
		{name: "ignore case", doc: ghSub("StringEqualsIgnoreCase", `"REPO:Acme/App:ref:refs/heads/main"`)},
		{name: "ForAnyValue scoped", doc: ghSub("ForAnyValue:StringLike", `"repo:acme/app:*"`)},
		{name: "ForAllValues scoped", doc: ghSub("ForAllValues:StringLike", `"repo:acme/app:*"`)},
		{name: "upper-case key", doc: doc(stmt(ghARN, `{"StringLike":{"TOKEN.ACTIONS.GITHUBUSERCONTENT.COM:SUB":"repo:acme/app:*"}}`))},
		{name: "empty list", doc: ghSub("StringEquals", `[]`)},
		{name: "question mark", doc: ghSub("StringLike", `"?"`)},
		{name: "two scoped values", doc: ghSub("StringLike", `["repo:acme/app:*","repo:acme/infra:ref:refs/heads/main"]`)},
		{name: "immutable exact", doc: ghSub("StringEquals", `"repo:acme@1001/app@5001:ref:refs/heads/main"`)},
		{name: "immutable ids wildcarded", doc: ghSub("StringLike", `"repo:acme@*/app@*:ref:refs/heads/main"`)},
		{name: "repository_owner template", doc: ghSub("StringEquals", `"repository_owner:acme"`)},
		{name: "sub loose but owner id pinned", doc: doc(stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:*"},"StringEquals":{"`+ghPfx+`:repository_owner_id":"1001"}}`))},
		{name: "sub loose but repository pinned", doc: doc(stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:*"},"StringEquals":{"`+ghPfx+`:repository":"acme/app"}}`))},
		{name: "two organisations", doc: ghSub("StringLike", `["repo:acme/*","repo:acme-tools/*:ref:refs/heads/main"]`)},
		{name: "mixed-case organisation", doc: ghSub("StringLike", `"repo:Acme-Corp/app:environment:prod*"`)},
		{name: "immutable organisation wide", doc: ghSub("StringLike", `"repo:acme@1001/*"`)},
		{name: "branch wildcard", doc: ghSub("StringLike", `"repo:acme/app:ref:refs/heads/release-*"`)},
		{name: "deny only", doc: doc(denyStmt(ghARN, ""))},
		{name: "private issuer", doc: doc(stmt(ccARN, ""))},
		{name: "gitlab exact", doc: doc(stmt(glARN, `{"StringEquals":{"gitlab.com:sub":"project_path:acme/app:ref_type:branch:ref:main"}}`))},
		{name: "gitlab group wide", doc: doc(stmt(glARN, `{"StringLike":{"gitlab.com:sub":"project_path:acme/*"}}`))},
		{name: "gitlab subgroup", doc: doc(stmt(glARN, `{"StringLike":{"gitlab.com:sub":"project_path:acme/team/*"}}`))},
		{name: "terraform exact", doc: doc(stmt(tfARN, `{"StringEquals":{"app.terraform.io:sub":"organization:acme:project:infra:workspace:prod:run_phase:apply"}}`))},
		{name: "terraform apply anywhere in the org", doc: doc(stmt(tfARN, `{"StringLike":{"app.terraform.io:sub":"organization:acme:project:*:workspace:*:run_phase:apply"}}`))},
		{name: "terraform org wide", doc: doc(stmt(tfARN, `{"StringLike":{"app.terraform.io:sub":"organization:acme:*"}}`))},
		{name: "buildkite pipeline", doc: doc(stmt(bkARN, `{"StringLike":{"agent.buildkite.com:sub":"organization:acme:pipeline:deploy:ref:refs/heads/main:*"}}`))},
		{name: "generic issuer scoped", doc: doc(stmt(scARN, `{"StringLike":{"scalr.io:sub":"account:acme:*"}}`))},
		{name: "cognito pool", doc: doc(stmt(cgARN, `{"StringEquals":{"cognito-identity.amazonaws.com:aud":"us-east-1:12345678-aaaa-bbbb-cccc-1234567890ab"}}`))},
		{name: "cognito pool and amr", doc: doc(stmt(cgARN, `{"StringEquals":{"cognito-identity.amazonaws.com:aud":"us-east-1:12345678-aaaa-bbbb-cccc-1234567890ab"},"ForAnyValue:StringLike":{"cognito-identity.amazonaws.com:amr":"authenticated"}}`))},
		{name: "pulumi org", doc: doc(stmt(puARN, `{"StringEquals":{"api.pulumi.com/oidc:aud":"acme"}}`))},

		// Refused by AWS's control and by a probe.
		{name: "no condition", doc: doc(stmt(ghARN, "")), rule: "TP001", kind: KindOtherTenant, in: "repo:"},
		{name: "aud only", doc: gh("StringEquals", "aud", `"sts.amazonaws.com"`), rule: "TP001", kind: KindOtherTenant, in: "repo:"},
		{name: "star", doc: ghSub("StringLike", `"*"`), rule: "TP002", kind: KindOtherTenant},
		{name: "double star", doc: ghSub("StringLike", `"**"`), rule: "TP002", kind: KindOtherTenant},
		{name: "star question", doc: ghSub("StringLike", `"*?"`), rule: "TP002", kind: KindOtherTenant},
		{name: "leading star", doc: ghSub("StringLike", `"*owned"`), rule: "TP002", kind: KindOtherTenant, in: "owned"},
		{name: "star first in list", doc: ghSub("StringLike", `["*","repo:acme/app:*"]`), rule: "TP002", kind: KindOtherTenant},
		{name: "negated only", doc: ghSub("StringNotLike", `"repo:evil/*"`), rule: "TP010", kind: KindOtherTenant},
		{name: "Null", doc: ghSub("Null", `"false"`), rule: "TP001", kind: KindOtherTenant},
		{name: "IfExists loose", doc: ghSub("StringLikeIfExists", `"repo:*"`), rule: "TP001", kind: KindOtherTenant},
		{name: "valid plus unrestricted statement", doc: doc(stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:acme/app:*"}}`), stmt(ghARN, "")), rule: "TP001", kind: KindOtherTenant, stmt: 1},
		{name: "enterprise issuer", doc: doc(stmt(entARN, "")), rule: "TP001", kind: KindOtherTenant},
		{name: "gitlab aud only", doc: doc(stmt(glARN, `{"StringEquals":{"gitlab.com:aud":"https://gitlab.com"}}`)), rule: "TP001", kind: KindOtherTenant, in: "project_path:"},
		{name: "buildkite aud only", doc: doc(stmt(bkARN, `{"StringEquals":{"agent.buildkite.com:aud":"sts.amazonaws.com"}}`)), rule: "TP001", kind: KindOtherTenant, in: "organization:"},
		{name: "cognito no condition", doc: doc(stmt(cgARN, "")), rule: "TP001", kind: KindOtherTenant, claim: "aud"},

		// Refused by AWS's control alone: nothing of another tenant gets
		// in, but AWS refuses the shape and keyless refuses at least what
		// AWS refuses.
		{name: "empty string", doc: ghSub("StringEquals", `""`), rule: "TP002"},
		{name: "blank", doc: ghSub("StringEquals", `" "`), rule: "TP002"},
		{name: "IfExists scoped", doc: ghSub("StringLikeIfExists", `"repo:acme/app:*"`), rule: "TP001"},
		{name: "only repository", doc: gh("StringEquals", "repository", `"acme/app"`), rule: "TP001"},
		// gitlab.com tokens lack the GitHub key the statement requires, so
		// none gets in; AWS still refuses the unconstrained provider.
		{name: "second provider of the statement unconstrained", doc: doc(`{"Effect":"Allow","Principal":{"Federated":["` + ghARN + `","` + glARN + `"]},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + ghPfx + `:sub":"repo:acme/app:ref:refs/heads/main"}}}`), rule: "TP001"},

		// Accepted by AWS (the value's shape is scoped), refused here: the
		// evaluator admits another tenant's token.
		{name: "question star", doc: ghSub("StringLike", `"?*"`), rule: "TP002", kind: KindOtherTenant},
		{name: "two questions star", doc: ghSub("StringLike", `"??*"`), rule: "TP002", kind: KindOtherTenant},
		{name: "repo star", doc: ghSub("StringLike", `"repo:*"`), rule: "TP002", kind: KindOtherTenant, in: "repo:"},
		{name: "repo star slash star", doc: ghSub("StringLike", `"repo:*/*"`), rule: "TP002", kind: KindOtherTenant, in: "repo:"},
		{name: "any org main", doc: ghSub("StringLike", `"repo:*:ref:refs/heads/main"`), rule: "TP002", kind: KindOtherTenant, in: ":ref:refs/heads/main"},
		{name: "sub variable", doc: ghSub("StringEquals", `"${token.actions.githubusercontent.com:sub}"`), rule: "TP002", kind: KindOtherTenant},
		{name: "sub variable like", doc: ghSub("StringLike", `"${token.actions.githubusercontent.com:sub}"`), rule: "TP002", kind: KindOtherTenant},
		{name: "org look-alike", doc: ghSub("StringLike", `"repo:acme*"`), rule: "TP005", kind: KindLookalike, in: "repo:acme"},
		{name: "org look-alike upper case", doc: ghSub("StringLike", `"repo:ACME*"`), rule: "TP005", kind: KindLookalike, in: "repo:ACME"},
		{name: "org look-alike with hyphen", doc: ghSub("StringLike", `"repo:acme-*/app:*"`), rule: "TP005", kind: KindLookalike, in: "repo:acme-"},
		{name: "org suffix look-alike", doc: ghSub("StringLike", `"repo:*acme/app:*"`), rule: "TP005", kind: KindLookalike, in: "acme/app:"},
		{name: "org one character", doc: ghSub("StringLike", `"repo:a?me/app:*"`), rule: "TP002", kind: KindOtherTenant, in: "/app:"},
		{name: "star after scoped value", doc: ghSub("StringLike", `["repo:acme/app:*","*"]`), rule: "TP002", kind: KindOtherTenant},
		{name: "question star after scoped value", doc: ghSub("StringLike", `["repo:acme/app:*","?*"]`), rule: "TP002", kind: KindOtherTenant},
		{name: "ForAnyValue loose", doc: ghSub("ForAnyValue:StringLike", `"repo:*"`), rule: "TP002", kind: KindOtherTenant},
		{name: "ForAllValues loose", doc: ghSub("ForAllValues:StringLike", `"repo:*"`), rule: "TP002", kind: KindOtherTenant},
		{name: "IfExists look-alike plus scoped", doc: doc(stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:acme*"},"StringEqualsIfExists":{"`+ghPfx+`:environment":"production"}}`)), rule: "TP005", kind: KindLookalike},
		{name: "environment template", doc: ghSub("StringEquals", `"environment:production"`), rule: "TP014", kind: KindCustomTemplate, in: "environment:production"},
		// A reusable workflow's ref names the workflow, not the caller: a
		// job of any organisation that calls a public one carries it
		// (trust-pitfalls TP014, trust-cases-sample P-GH-25; AWS accepts).
		{name: "job_workflow_ref alone", doc: gh("StringEquals", "job_workflow_ref", `"acme/automation/.github/workflows/deploy.yml@refs/heads/main"`), rule: "TP014", kind: KindCustomTemplate, claim: "job_workflow_ref", in: "acme/automation/"},
		{name: "job_workflow_ref template subject", doc: ghSub("StringEquals", `"job_workflow_ref:acme/automation/.github/workflows/deploy.yml@refs/heads/main"`), rule: "TP014", kind: KindCustomTemplate, in: "job_workflow_ref:acme/automation/"},
		{name: "org .github repository workflow", doc: gh("StringEquals", "job_workflow_ref", `"acme/.github/.github/workflows/deploy.yml@refs/heads/main"`), rule: "TP014", kind: KindCustomTemplate, claim: "job_workflow_ref", in: "acme/.github/"},
		{name: "ref template", doc: ghSub("StringEquals", `"ref:refs/heads/main"`), rule: "TP014", kind: KindCustomTemplate},
		{name: "repository_owner look-alike", doc: ghSub("StringLike", `"repository_owner:acme*"`), rule: "TP005", kind: KindLookalike},
		// Look-alike owners would get in too; a caller of the workflow
		// itself is found first (TP014).
		{name: "job_workflow_ref look-alike", doc: gh("StringLike", "job_workflow_ref", `"acme*/automation/.github/workflows/deploy.yml@refs/heads/main"`), rule: "TP014", kind: KindCustomTemplate, claim: "job_workflow_ref", in: "/automation/.github/workflows/deploy.yml@refs/heads/main"},
		{name: "two loose conditions together", doc: doc(stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:*"},"ForAnyValue:StringLike":{"`+ghPfx+`:sub":"*:environment:production"}}`)), rule: "TP002", kind: KindOtherTenant, in: ":environment:production"},
		{name: "region condition does not scope", doc: doc(stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:*"},"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}`)), rule: "TP002", kind: KindOtherTenant},
		{name: "deny of the likely names does not scope", doc: doc(stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:*"}}`), denyStmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":["repo:*/app:*","repo:*:ref:refs/heads/main"]}}`)), rule: "TP002", kind: KindOtherTenant},
		{name: "gitlab look-alike", doc: doc(stmt(glARN, `{"StringLike":{"gitlab.com:sub":"project_path:acme*"}}`)), rule: "TP005", kind: KindLookalike, in: "project_path:acme"},
		{name: "gitlab look-alike with subgroup", doc: doc(stmt(glARN, `{"StringLike":{"gitlab.com:sub":"project_path:acme*/team/*"}}`)), rule: "TP005", kind: KindLookalike, in: "/team/"},
		{name: "gitlab any project", doc: doc(stmt(glARN, `{"StringLike":{"gitlab.com:sub":"project_path:*"}}`)), rule: "TP002", kind: KindOtherTenant},
		{name: "terraform look-alike", doc: doc(stmt(tfARN, `{"StringLike":{"app.terraform.io:sub":"organization:acme*"}}`)), rule: "TP005", kind: KindLookalike, in: "organization:acme"},
		{name: "terraform any org", doc: doc(stmt(tfARN, `{"StringLike":{"app.terraform.io:sub":"organization:*:project:infra:*"}}`)), rule: "TP002", kind: KindOtherTenant, in: ":project:infra:"},
		{name: "buildkite any org", doc: doc(stmt(bkARN, `{"StringLike":{"agent.buildkite.com:sub":"organization:*"}}`)), rule: "TP002", kind: KindOtherTenant},
		{name: "generic label star", doc: doc(stmt(scARN, `{"StringLike":{"scalr.io:sub":"account:*"}}`)), rule: "TP002", kind: KindOtherTenant},
		{name: "generic look-alike", doc: doc(stmt(scARN, `{"StringLike":{"scalr.io:sub":"account:acme*"}}`)), rule: "TP005", kind: KindLookalike},
		{name: "cognito pool prefix", doc: doc(stmt(cgARN, `{"StringLike":{"cognito-identity.amazonaws.com:aud":"us-east-1:*"}}`)), rule: "TP005", kind: KindLookalike, claim: "aud", in: "us-east-1:"},
		{name: "pulumi look-alike", doc: doc(stmt(puARN, `{"StringLike":{"api.pulumi.com/oidc:aud":"acme*"}}`)), rule: "TP005", kind: KindLookalike, claim: "aud", in: "acme"},
	}
}

// TestGuardrail is the accept/refuse table. Every refusal by a probe names
// a probe that the evaluator, asked again with the probe's context,
// admits; every message starts with AWS's wording.
func TestGuardrail(t *testing.T) {
	for _, tc := range guardCases() {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Parse(tc.doc, policy.KindTrust)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			fs := Guardrail(p, testOptions(1))
			if tc.rule == "" {
				if len(fs) > 0 {
					t.Fatalf("refused: %s", fs[0].Message)
				}
				return
			}
			if len(fs) == 0 {
				t.Fatal("accepted")
			}
			f := fs[0]
			if f.Rule != tc.rule || f.Statement != tc.stmt {
				t.Errorf("rule %s statement %d, want %s statement %d: %s", f.Rule, f.Statement, tc.rule, tc.stmt, f.Message)
			}
			if !strings.HasPrefix(f.Message, "Trust policy with trusted principal arn:aws:iam::111122223333:oidc-provider/") ||
				!strings.Contains(f.Message, "which is not scoped to all.") {
				t.Errorf("message does not start with AWS's wording: %s", f.Message)
			}
			if f.Severity == 0 || f.Path == "" || f.Principal == "" {
				t.Errorf("incomplete finding %+v", f)
			}
			if tc.kind == "" {
				if f.Probe != nil {
					t.Errorf("probe %+v, want a finding of AWS's control alone", f.Probe)
				}
				return
			}
			if f.Probe == nil {
				t.Fatalf("no probe: %s", f.Message)
			}
			if f.Probe.Kind != tc.kind {
				t.Errorf("probe kind %s, want %s: %s", f.Probe.Kind, tc.kind, f.Message)
			}
			claim := tc.claim
			if claim == "" {
				claim = "sub"
			}
			v := f.Probe.Claims[claim]
			if !strings.Contains(v, tc.in) {
				t.Errorf("probe %s = %q, want it to contain %q", claim, v, tc.in)
			}
			if !strings.Contains(f.Message, v) {
				t.Errorf("message does not name the probe's %s %q: %s", claim, v, f.Message)
			}
			if !admitsContext(p, f.Probe) {
				t.Errorf("the evaluator does not admit the reported probe %+v", f.Probe)
			}
			t.Log(f.Message)
		})
	}
}

// admitsContext asks the evaluator again with the probe's recorded
// context, built afresh.
func admitsContext(p *policy.Policy, pb *Probe) bool {
	c := policy.NewContext(len(pb.Context))
	for k, v := range pb.Context {
		c.Set(k, v...)
	}
	set := policy.PolicySet{Resource: []*policy.Policy{p}}
	return set.Evaluate(&policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalFederated, ID: pb.Provider},
		Action:    "sts:AssumeRoleWithWebIdentity", Resource: "arn:aws:iam::111122223333:role/r", Context: c,
	}) == policy.Allowed
}

// TestGuardrailLongValue: a value too long to analyse is refused, not
// skipped (a padded "????…*" would otherwise pass).
func TestGuardrailLongValue(t *testing.T) {
	long := strings.Repeat("?", maxValueLen+1) + "*"
	p := policy.MustParse(ghSub("StringLike", `"`+long+`"`), policy.KindTrust)
	fs := Guardrail(p, testOptions(1))
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "cannot verify a condition value longer than") {
		t.Fatalf("findings = %+v", fs)
	}
	// Just under the limit it is analysed, and refused by a probe.
	p = policy.MustParse(ghSub("StringLike", `"repo:`+strings.Repeat("?", 200)+`*"`), policy.KindTrust)
	if fs := Guardrail(p, testOptions(1)); len(fs) != 1 || fs[0].Probe == nil {
		t.Fatalf("findings = %+v", fs)
	}
}

// TestGuardrailRandomNames: the other tenant's name comes from Options.Rand,
// so a policy cannot be written to let out exactly the probes.
func TestGuardrailRandomNames(t *testing.T) {
	p := policy.MustParse(ghSub("StringLike", `"repo:*"`), policy.KindTrust)
	a, b := Guardrail(p, testOptions(1)), Guardrail(p, testOptions(2))
	if len(a) != 1 || len(b) != 1 || a[0].Probe.Tenant == b[0].Probe.Tenant {
		t.Fatalf("tenants %q and %q", a[0].Probe.Tenant, b[0].Probe.Tenant)
	}
	// Same seed, same probe: the check is reproducible in tests.
	if c := Guardrail(p, testOptions(1)); c[0].Probe.Tenant != a[0].Probe.Tenant {
		t.Fatal("not reproducible")
	}
	// A policy that lets out exactly the first probe's tenant is still
	// refused with another draw.
	denied := doc(stmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:*"}}`),
		denyStmt(ghARN, `{"StringLike":{"`+ghPfx+`:sub":"repo:`+a[0].Probe.Tenant+`/*"}}`))
	if fs := Guardrail(policy.MustParse(denied, policy.KindTrust), testOptions(3)); len(fs) == 0 {
		t.Fatal("accepted")
	}
}
