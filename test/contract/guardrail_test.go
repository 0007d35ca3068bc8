package contract

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// guardrailDeviations are the sample's trust policies that AWS's
// identity-provider controls accept (they check the value's shape) and
// keyless refuses, because the evaluator admits a token of another
// tenant: the rule, and a fragment of the probe's subject the message
// must name. docs/architecture.md lists the deviation.
var guardrailDeviations = map[string]struct{ rule, probe string }{
	"P-GH-04": {"TP002", `sub="repo:`},             // repo:* admits every organisation
	"P-GL-03": {"TP005", `sub="project_path:acme`}, // project_path:acme* admits the look-alike group acme-…
	"P-TF-03": {"TP005", `sub="organization:acme`}, // organization:acme* admits the look-alike organisation acme-…
}

// TestGuardrailSampleCases: with its default configuration keyless refuses,
// at CreateRole, the sample's trust policies AWS's identity-provider
// controls for shared OIDC issuers refuse (aws_write_guardrail), and also
// those that admit another tenant although AWS accepts them
// (guardrailDeviations), naming the probe that got in; it accepts the
// others.
func TestGuardrailSampleCases(t *testing.T) {
	t.Parallel()
	cases := loadTrustCases(t, "testdata/trust-cases-sample.json")
	s := startServerAccount(t, "", "111122223333")
	c := s.iamClient(adminKeyID, adminSecret, "")
	ctx := context.Background()
	n, deviations := 0, 0
	for _, tc := range cases {
		if tc.Category != "trust_policy" || string(tc.Policy) == "null" || tc.WriteGuardrail == "" {
			continue
		}
		n++
		t.Run(tc.ID, func(t *testing.T) {
			_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("g-" + tc.ID), AssumeRolePolicyDocument: aws.String(string(tc.Policy))})
			dev, isDev := guardrailDeviations[tc.ID]
			switch {
			case strings.HasPrefix(tc.WriteGuardrail, "reject"):
				wantCode(t, err, "MalformedPolicyDocument")
				if !strings.Contains(err.Error(), "which is not scoped to all") {
					t.Errorf("message = %v", err)
				}
			case isDev:
				deviations++
				wantCode(t, err, "MalformedPolicyDocument")
				msg := err.Error()
				if !strings.Contains(msg, "which is not scoped to all.") || !strings.Contains(msg, "A token of another tenant is admitted by statement 0 ("+dev.rule) ||
					!strings.Contains(msg, dev.probe) {
					t.Errorf("message does not name the %s probe %s: %v", dev.rule, dev.probe, msg)
				}
			case criticalFinding(tc):
				// guardrail: enforce (the default) refuses every CRITICAL
				// finding of the linter, which AWS accepts (issue 14; P-GH-31
				// TP016, P-GH-25 TP014).
				wantCode(t, err, "MalformedPolicyDocument")
			default:
				if err != nil {
					t.Fatalf("accepted by AWS's control (%s), refused here: %v", tc.WriteGuardrail, err)
				}
			}
		})
	}
	if n < 20 {
		t.Fatalf("only %d cases carry a guardrail verdict", n)
	}
}

// TestGuardrailCLI (issue 11 item 9): through a real `keyless serve` and
// the real AWS CLI, trust policies whose only tenant constraint matches
// subjects of other tenants are refused at create-role and
// update-assume-role-policy with MalformedPolicyDocument and AWS's wording
// followed by the probe that got in. Before the semantic guardrail, seven
// of them were accepted (AWS accepts them too: their values do not start
// with "*"), and "star after a scoped value" and IfExists were refused
// without a probe; this test, run against that code, failed on every
// case. Scoped policies still pass, and iam.skip_shared_issuer_controls
// still turns the control off.
func TestGuardrailCLI(t *testing.T) {
	t.Parallel()
	const prefix = "token.actions.githubusercontent.com"
	sub := func(op, values string) string {
		cond := `"StringEquals":{"` + prefix + `:aud":"sts.amazonaws.com"},"` + op + `":{"` + prefix + `:sub":` + values + `}`
		if op == "StringEquals" {
			cond = `"StringEquals":{"` + prefix + `:aud":"sts.amazonaws.com","` + prefix + `:sub":` + values + `}`
		}
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/` + prefix +
			`"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{` + cond + `}}]}`
	}
	refused := []struct{ name, doc, rule, probe string }{
		{"question star", sub("StringLike", `"?*"`), "TP002", `sub=\"repo:`},
		{"repo star", sub("StringLike", `"repo:*"`), "TP002", `sub=\"repo:`},
		{"repo star slash star", sub("StringLike", `"repo:*/*"`), "TP002", `sub=\"repo:`},
		{"own subject variable", sub("StringEquals", `"${`+prefix+`:sub}"`), "TP002", `sub=\"repo:`},
		{"look-alike organisation", sub("StringLike", `"repo:acme*"`), "TP005", `sub=\"repo:acme-`},
		{"star after a scoped value", sub("StringLike", `["repo:acme/app:*","*"]`), "TP002", `sub=\"repo:`},
		{"ForAnyValue", sub("ForAnyValue:StringLike", `"repo:*"`), "TP002", `sub=\"repo:`},
		{"IfExists", sub("StringLikeIfExists", `"repo:*"`), "TP001", `sub=\"repo:`},
		{"custom template without owner", sub("StringEquals", `"environment:production"`), "TP014", `sub=\"environment:production\"`},
	}
	accepted := []struct{ name, doc string }{
		{"exact", sub("StringEquals", `"repo:acme/app:ref:refs/heads/main"`)},
		{"own repository", sub("StringLike", `"repo:acme/app:*"`)},
		{"own organisation", sub("StringLike", `"repo:acme/*"`)},
		{"immutable subject", sub("StringLike", `"repo:acme@1001/app@5001:*"`)},
	}
	s := startServerAccount(t, "", "111122223333")
	dir := t.TempDir()
	file := func(name, doc string) string {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return "file://" + p
	}
	wantRefusal := func(t *testing.T, r cliResult, rule, probe string) {
		t.Helper()
		wantAWSError(t, r, "MalformedPolicyDocument")
		msg := strings.Join(strings.Fields(r.Stderr), " ")
		for _, want := range []string{
			"Trust policy with trusted principal arn:aws:iam::111122223333:oidc-provider/" + prefix + " must evaluate, using StringEquals, StringLike or StringEqualsIgnoreCase, " + prefix + ":sub or " + prefix + ":job_workflow_ref which is not scoped to all.",
			"A token of another tenant is admitted by statement 0 (" + rule,
			strings.ReplaceAll(probe, `\"`, `"`),
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
			}
		}
	}
	for _, a := range accepted {
		if r := s.aws(t, "iam", "create-role", "--role-name", "ok-"+strings.ReplaceAll(a.name, " ", "-"), "--assume-role-policy-document", file(a.name, a.doc)); r.Code != 0 {
			t.Fatalf("%s: refused: %s", a.name, r.Stderr)
		}
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			doc := file(c.name, c.doc)
			wantRefusal(t, s.aws(t, "iam", "create-role", "--role-name", "bad", "--assume-role-policy-document", doc), c.rule, c.probe)
			wantRefusal(t, s.aws(t, "iam", "update-assume-role-policy", "--role-name", "ok-exact", "--policy-document", doc), c.rule, c.probe)
		})
	}
	// Nothing was written.
	wantAWSError(t, s.aws(t, "iam", "get-role", "--role-name", "bad"), "NoSuchEntity")
	r := s.aws(t, "iam", "get-role", "--role-name", "ok-exact")
	if r.Code != 0 || !strings.Contains(r.Stdout, "repo:acme/app:ref:refs/heads/main") {
		t.Fatalf("ok-exact's trust policy changed: %s%s", r.Stdout, r.Stderr)
	}

	// The switch, through the configuration file.
	cfg := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(cfg, []byte("iam:\n  skip_shared_issuer_controls: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	off := startServerAccount(t, "", "111122223333", "--config", cfg)
	if r := off.aws(t, "iam", "create-role", "--role-name", "imported", "--assume-role-policy-document", file("off", refused[1].doc)); r.Code != 0 {
		t.Fatalf("with the controls off: %s", r.Stderr)
	}
}

// criticalFinding reports whether the case expects a CRITICAL finding of
// the linter.
func criticalFinding(tc trustCase) bool {
	for _, f := range tc.LinterFindings {
		if f.Severity == "CRITICAL" {
			return true
		}
	}
	return false
}
