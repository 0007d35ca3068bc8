package iam

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/lint"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

const ghProvider = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"

func ghStmt(cond string) string {
	c := ""
	if cond != "" {
		c = `,"Condition":` + cond
	}
	return `{"Effect":"Allow","Principal":{"Federated":"` + ghProvider + `"},"Action":"sts:AssumeRoleWithWebIdentity"` + c + `}`
}

func trustDoc(stmts ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

func ghSubDoc(op, v string) string {
	return trustDoc(ghStmt(`{"` + op + `":{"token.actions.githubusercontent.com:sub":` + v + `}}`))
}

// The accept/reject matrix observed against live IAM (trust-pitfalls.md
// §4.1), plus keyless's stricter, semantic reading: every value of a list,
// and what a value admits rather than how it starts ("?*", "repo:*",
// "${...:sub}" and look-alike organisations are accepted by AWS and
// refused here; lint's table test has the full set).
func TestSharedIssuerControls(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		reject bool
	}{
		{"no condition", trustDoc(ghStmt("")), true},
		{"sub star", ghSubDoc("StringLike", `"*"`), true},
		{"sub double star", ghSubDoc("StringLike", `"**"`), true},
		{"sub star question", ghSubDoc("StringLike", `"*?"`), true},
		{"sub leading star", ghSubDoc("StringLike", `"*owned"`), true},
		{"sub empty string", ghSubDoc("StringEquals", `""`), true},
		{"sub blank", ghSubDoc("StringEquals", `" "`), true},
		{"star first in list", ghSubDoc("StringLike", `["*","repo:a/b:*"]`), true},
		{"star later in list (stricter than AWS)", ghSubDoc("StringLike", `["repo:a/b:*","*"]`), true},
		{"negated only", ghSubDoc("StringNotLike", `"repo:evil/*"`), true},
		{"IfExists", ghSubDoc("StringLikeIfExists", `"repo:a/b:*"`), true},
		{"Null", ghSubDoc("Null", `"false"`), true},
		{"only repository", trustDoc(ghStmt(`{"StringEquals":{"token.actions.githubusercontent.com:repository":"a/b"}}`)), true},
		{"valid plus unrestricted statement", trustDoc(ghStmt(`{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:a/b:*"}}`), ghStmt("")), true},
		{"enterprise GitHub issuer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com/acme"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, true},
		// AWS accepts these; the evaluator admits another tenant.
		{"question star", ghSubDoc("StringLike", `"?*"`), true},
		{"prefix star", ghSubDoc("StringLike", `"repo:*"`), true},
		{"prefix star slash star", ghSubDoc("StringLike", `"repo:*/*"`), true},
		{"own sub variable", ghSubDoc("StringEquals", `"${token.actions.githubusercontent.com:sub}"`), true},
		{"org look-alike", ghSubDoc("StringLike", `"repo:acme*"`), true},
		{"ForAnyValue loose", ghSubDoc("ForAnyValue:StringLike", `"repo:*"`), true},
		{"environment template", ghSubDoc("StringEquals", `"environment:production"`), true},

		{"exact", ghSubDoc("StringEquals", `"repo:a/b:ref:refs/heads/main"`), false},
		{"question mark", ghSubDoc("StringLike", `"?"`), false},
		{"own repo, any context", ghSubDoc("StringLike", `"repo:a/b:*"`), false},
		{"own organisation", ghSubDoc("StringLike", `"repo:a/*"`), false},
		{"ignore case", ghSubDoc("StringEqualsIgnoreCase", `"repo:a/b:ref:refs/heads/main"`), false},
		{"ForAnyValue", ghSubDoc("ForAnyValue:StringLike", `"repo:a/b:*"`), false},
		{"upper-case key", trustDoc(ghStmt(`{"StringLike":{"TOKEN.ACTIONS.GITHUBUSERCONTENT.COM:SUB":"repo:a/b:*"}}`)), false},
		{"empty list", ghSubDoc("StringEquals", `[]`), false},
		// AWS accepts a job_workflow_ref pin alone; keyless does not: a job
		// of any organisation that calls the (public) reusable workflow
		// carries it (TP014; docs/architecture.md, deviations).
		{"job_workflow_ref", trustDoc(ghStmt(`{"StringLike":{"token.actions.githubusercontent.com:job_workflow_ref":"a/b/.github/workflows/d.yml@refs/heads/main"}}`)), true},
		{"deny only", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"Federated":"` + ghProvider + `"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, false},
		{"private issuer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.circleci.com/org/x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, false},
	}
	opts := lint.Options{Account: "111122223333", Rand: seededReader{rand.NewChaCha8([32]byte{9})},
		Now: func() time.Time { return time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC) }}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Parse(tc.doc, policy.KindTrust)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = sharedIssuerControls(p, opts)
			if tc.reject != (err != nil) {
				t.Fatalf("reject = %v, err = %v", tc.reject, err)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, &awsquery.Error{Code: awsquery.CodeMalformedPolicyDocument}) {
				t.Fatalf("code: %v", err)
			}
			ae, _ := errors.AsType[*awsquery.Error](err)
			if !strings.HasPrefix(ae.Message, "Trust policy with trusted principal arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com") ||
				!strings.Contains(ae.Message, "which is not scoped to all.") {
				t.Fatalf("message: %s", ae.Message)
			}
			// The internal cause is the finding, with its probe.
			if _, ok := errors.AsType[*lint.Finding](err); !ok {
				t.Fatalf("cause is not a lint.Finding: %v", ae.Err)
			}
		})
	}
}

// TestGuardrailOnWrites: CreateRole and UpdateAssumeRolePolicy refuse a
// trust policy that admits another tenant, naming the probe, and store
// nothing; with iam.skip_shared_issuer_controls they accept it.
func TestGuardrailOnWrites(t *testing.T) {
	loose := ghSubDoc("StringLike", `"repo:*"`)
	good := ghSubDoc("StringEquals", `"repo:acme/app:ref:refs/heads/main"`)
	s := newService(t)
	_, err := call(t, s, "CreateRole", url.Values{"RoleName": {"r"}, "AssumeRolePolicyDocument": {loose}})
	wantGuardrail(t, err)
	if _, err := call(t, s, "GetRole", url.Values{"RoleName": {"r"}}); err == nil {
		t.Fatal("a refused role was stored")
	}
	if _, err := call(t, s, "CreateRole", url.Values{"RoleName": {"r"}, "AssumeRolePolicyDocument": {good}}); err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	_, err = call(t, s, "UpdateAssumeRolePolicy", url.Values{"RoleName": {"r"}, "PolicyDocument": {loose}})
	wantGuardrail(t, err)
	out, err := call(t, s, "GetRole", url.Values{"RoleName": {"r"}})
	if err != nil || !strings.Contains(string(out), url.QueryEscape("repo:acme/app:ref:refs/heads/main")) {
		t.Fatalf("the trust policy changed: %v\n%s", err, out)
	}

	// The switch turns the whole guardrail off.
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	off := New(Options{Store: st, Account: "111122223333", SkipSharedIssuerControls: true,
		Now: time.Now, Rand: seededReader{rand.NewChaCha8([32]byte{3})}})
	if _, err := call(t, off, "CreateRole", url.Values{"RoleName": {"r"}, "AssumeRolePolicyDocument": {loose}}); err != nil {
		t.Fatalf("with the controls off: %v", err)
	}
}

func wantGuardrail(t *testing.T, err error) {
	t.Helper()
	ae, ok := errors.AsType[*awsquery.Error](err)
	if !ok || ae.Code != awsquery.CodeMalformedPolicyDocument {
		t.Fatalf("err = %v, want MalformedPolicyDocument", err)
	}
	if !strings.Contains(ae.Message, "which is not scoped to all.") || !strings.Contains(ae.Message, `A token of another tenant is admitted by statement 0 (TP002`) ||
		!strings.Contains(ae.Message, `sub="repo:`) {
		t.Fatalf("message does not name the probe: %s", ae.Message)
	}
}
