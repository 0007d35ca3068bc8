package iam

import (
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/lint"
	"github.com/keylessci/keyless/internal/policy"
)

// Identity-provider controls for shared OIDC providers (IAM User Guide,
// "id_roles_providers_oidc_secure-by-default"; trust-pitfalls.md §4.1):
// when a role trusts an issuer that many customers share (GitHub Actions,
// gitlab.com, Buildkite, HCP Terraform, …), IAM refuses at CreateRole and
// UpdateAssumeRolePolicy a trust policy that does not pin that issuer's
// tenant claim to a value that is not scoped to all.
//
// keyless applies the control semantically (lint.Guardrail): it refuses
// what AWS refuses, and also every trust policy that admits a token of
// another tenant of the issuer, which the evaluator decides on probes of
// other tenants ("repo:*", "?*", "${...:sub}", "repo:acme*" admitting the
// look-alike organisation acme-x7k2: AWS accepts these). The issuer list
// and the probes live in internal/lint. The message starts with AWS's
// wording and names the probe that got in.

// checkSharedIssuerControls applies the guardrail to a parsed trust
// policy, with the service's lint options.
func (s *Service) checkSharedIssuerControls(p *policy.Policy) error {
	return sharedIssuerControls(p, s.LintOptions())
}

// sharedIssuerControls refuses p with MalformedPolicyDocument and the first
// finding's message; the finding is the internal cause.
func sharedIssuerControls(p *policy.Policy, o lint.Options) error {
	fs := lint.Guardrail(p, o)
	if len(fs) == 0 {
		return nil
	}
	f := fs[0]
	return awsquery.NewError(awsquery.CodeMalformedPolicyDocument, f.Message).Wrap(&f)
}
