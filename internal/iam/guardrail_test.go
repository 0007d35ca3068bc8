package iam

import (
	"errors"
	"testing"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/policy"
)

// The accept/reject matrix observed against live IAM (trust-pitfalls.md
// §4.1), plus keyless's stricter reading where AWS only looks at a list's
// first value.
func TestSharedIssuerControls(t *testing.T) {
	const gh = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
	stmt := func(cond string) string {
		c := ""
		if cond != "" {
			c = `,"Condition":` + cond
		}
		return `{"Effect":"Allow","Principal":{"Federated":"` + gh + `"},"Action":"sts:AssumeRoleWithWebIdentity"` + c + `}`
	}
	doc := func(stmts ...string) string {
		s := `{"Version":"2012-10-17","Statement":[`
		for i, st := range stmts {
			if i > 0 {
				s += ","
			}
			s += st
		}
		return s + "]}"
	}
	sub := func(op, v string) string {
		return `{"` + op + `":{"token.actions.githubusercontent.com:sub":` + v + `}}`
	}
	tests := []struct {
		name   string
		doc    string
		reject bool
	}{
		{"no condition", doc(stmt("")), true},
		{"sub star", doc(stmt(sub("StringLike", `"*"`))), true},
		{"sub double star", doc(stmt(sub("StringLike", `"**"`))), true},
		{"sub star question", doc(stmt(sub("StringLike", `"*?"`))), true},
		{"sub leading star", doc(stmt(sub("StringLike", `"*owned"`))), true},
		{"sub empty string", doc(stmt(sub("StringEquals", `""`))), true},
		{"sub blank", doc(stmt(sub("StringEquals", `" "`))), true},
		{"star first in list", doc(stmt(sub("StringLike", `["*","repo:a/b:*"]`))), true},
		{"star later in list (stricter than AWS)", doc(stmt(sub("StringLike", `["repo:a/b:*","*"]`))), true},
		{"negated only", doc(stmt(sub("StringNotLike", `"repo:evil/*"`))), true},
		{"IfExists", doc(stmt(sub("StringLikeIfExists", `"repo:a/b:*"`))), true},
		{"Null", doc(stmt(`{"Null":{"token.actions.githubusercontent.com:sub":"false"}}`)), true},
		{"only repository", doc(stmt(`{"StringEquals":{"token.actions.githubusercontent.com:repository":"a/b"}}`)), true},
		{"valid plus unrestricted statement", doc(stmt(sub("StringLike", `"repo:a/b:*"`)), stmt("")), true},
		{"exact", doc(stmt(sub("StringEquals", `"repo:a/b:ref:refs/heads/main"`))), false},
		{"question mark", doc(stmt(sub("StringLike", `"?"`))), false},
		{"question star", doc(stmt(sub("StringLike", `"?*"`))), false},
		{"prefix star", doc(stmt(sub("StringLike", `"repo:*"`))), false},
		{"ignore case", doc(stmt(sub("StringEqualsIgnoreCase", `"repo:a/b:ref:refs/heads/main"`))), false},
		{"ForAnyValue", doc(stmt(sub("ForAnyValue:StringLike", `"repo:a/b:*"`))), false},
		{"upper-case key", doc(stmt(`{"StringLike":{"TOKEN.ACTIONS.GITHUBUSERCONTENT.COM:SUB":"repo:a/b:*"}}`)), false},
		{"empty list", doc(stmt(sub("StringEquals", `[]`))), false},
		{"job_workflow_ref", doc(stmt(`{"StringLike":{"token.actions.githubusercontent.com:job_workflow_ref":"a/b/.github/workflows/d.yml@refs/heads/main"}}`)), false},
		{"deny only", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"Federated":"` + gh + `"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, false},
		{"private issuer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.circleci.com/org/x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, false},
		{"enterprise GitHub issuer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com/acme"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Parse(tc.doc, policy.KindTrust)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = checkSharedIssuerControls(p)
			if tc.reject != (err != nil) {
				t.Fatalf("reject = %v, err = %v", tc.reject, err)
			}
			if err != nil && !errors.Is(err, &awsquery.Error{Code: awsquery.CodeMalformedPolicyDocument}) {
				t.Fatalf("code: %v", err)
			}
		})
	}
}
