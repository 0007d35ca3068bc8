package iam

import (
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/policy"
)

// Identity-provider controls for shared OIDC providers (IAM User Guide,
// "id_roles_providers_oidc_secure-by-default"; trust-pitfalls.md §4.1):
// when a role trusts an issuer that many customers share (GitHub Actions,
// gitlab.com, Buildkite, HCP Terraform, …), IAM refuses at CreateRole and
// UpdateAssumeRolePolicy a trust policy that does not pin that issuer's
// tenant claim with StringEquals, StringLike or StringEqualsIgnoreCase to a
// value that is not scoped to all. keyless applies the same control,
// semantically: every Allow statement that trusts the provider must pin
// the claim, and no pinned value may match everything (a value starting
// with "*", or blank). That rejects at least what AWS rejects (AWS inspects
// only the first value of a list).

// sharedIssuer names the claims one of which a trust policy must pin.
type sharedIssuer struct {
	host   string   // provider URL host[/path] prefix, without scheme
	claims []string // e.g. sub, job_workflow_ref
}

// sharedIssuers is AWS's list of shared issuers with their required claim
// (captured 2026-09-11, trust-pitfalls.md §4.1). Per-tenant issuers
// (CircleCI, Bitbucket), self-managed GitLab/TFE and private issuers are
// not on it.
var sharedIssuers = []sharedIssuer{
	{host: "token.actions.githubusercontent.com", claims: []string{"sub", "job_workflow_ref"}},
	{host: "gitlab.com", claims: []string{"sub"}},
	{host: "agent.buildkite.com", claims: []string{"sub"}},
	{host: "app.terraform.io", claims: []string{"sub"}},
	{host: "oidc.codefresh.io", claims: []string{"sub"}},
	{host: "studio.datachain.ai/api", claims: []string{"sub"}},
	{host: "oidc-configuration.audit-log.githubusercontent.com", claims: []string{"sub"}},
	{host: "vstoken.actions.githubusercontent.com", claims: []string{"sub"}},
	{host: "scalr.io", claims: []string{"sub"}},
	{host: "tokens.sts.global.api.shisho.dev", claims: []string{"sub"}},
	{host: "oidc.upbound.io", claims: []string{"sub"}},
	{host: "cognito-identity.amazonaws.com", claims: []string{"aud"}},
	{host: "api.pulumi.com/oidc", claims: []string{"aud"}},
	{host: "oidc.vercel.com", claims: []string{"aud"}},
}

// sharedIssuerFor returns the control for a federated principal (a
// provider ARN of any account), if its issuer is shared.
func sharedIssuerFor(federated string) (prefix string, si sharedIssuer, ok bool) {
	_, rest, found := strings.Cut(federated, ":oidc-provider/")
	if !found {
		return "", sharedIssuer{}, false
	}
	for _, s := range sharedIssuers {
		if rest == s.host || strings.HasPrefix(rest, s.host+"/") {
			return rest, s, true
		}
	}
	return "", sharedIssuer{}, false
}

// checkSharedIssuerControls applies the control to a parsed trust policy.
func checkSharedIssuerControls(p *policy.Policy) error {
	for _, st := range p.Statements {
		if st.Effect != policy.Allow || st.Principal == nil {
			continue
		}
		for _, fed := range st.Principal.Federated {
			prefix, si, ok := sharedIssuerFor(fed)
			if !ok {
				continue
			}
			if !pinsClaim(st.Condition, prefix, si.claims) {
				keys := make([]string, len(si.claims))
				for i, c := range si.claims {
					keys[i] = prefix + ":" + c
				}
				return awsquery.Errorf(awsquery.CodeMalformedPolicyDocument,
					"Trust policy with trusted principal %s must evaluate, using StringEquals, StringLike or StringEqualsIgnoreCase, %s which is not scoped to all.",
					fed, strings.Join(keys, " or "))
			}
		}
	}
	return nil
}

// pinsClaim reports whether conditions pin one of the claims to values
// that are all scoped (none matches everything).
func pinsClaim(conds []policy.Condition, prefix string, claims []string) bool {
	for _, c := range conds {
		op, ok := policy.ParseOperator(c.Operator)
		if !ok || op.IfExists || op.Negated {
			continue
		}
		switch op.Base {
		case "StringEquals", "StringLike", "StringEqualsIgnoreCase":
		default:
			continue
		}
		named := false
		for _, claim := range claims {
			if strings.EqualFold(c.Key, prefix+":"+claim) {
				named = true
			}
		}
		if !named {
			continue
		}
		// An empty list matches nothing, which is as scoped as it gets
		// (AWS accepts it too).
		scoped := true
		for _, v := range c.Values {
			t := strings.TrimSpace(v)
			// AWS refuses "*" even under StringEquals, where it is literal.
			if t == "" || strings.HasPrefix(t, "*") {
				scoped = false
			}
		}
		if scoped {
			return true
		}
	}
	return false
}
