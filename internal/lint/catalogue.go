package lint

import (
	"strings"

	"github.com/keylessci/keyless/internal/oidc"
)

// Issuer is one OIDC issuer of the catalogue: how to recognise its
// provider, whether AWS's identity-provider controls apply, and how to
// build tokens of its tenants.
type Issuer struct {
	// Name identifies the entry: "github", "gitlab.com", "terraform",
	// "buildkite", or the host for the issuers probed generically.
	Name string
	// Host is the provider URL without its scheme. A provider whose URL
	// (without scheme) is Host, or Host followed by "/" and a path, is this
	// issuer: GitHub's enterprise-unique issuers are
	// token.actions.githubusercontent.com/<enterprise-slug>.
	Host string
	// Shared reports that one iss serves every customer of the service, so
	// the trust policy alone separates a role from every other tenant.
	Shared bool
	// ControlClaims are the claims AWS's control for shared providers
	// requires a trust policy to pin (one of them suffices), with
	// StringEquals, StringLike or StringEqualsIgnoreCase and a value that
	// is not scoped to all.
	ControlClaims []string
	// TenantClaims are the claims whose value names the tenant (or one of
	// its projects): a probe of another tenant carries other values in
	// all of them.
	TenantClaims []string

	model *compiledModel
}

// sharedIssuers is AWS's list of shared OIDC issuers with the claim its
// control requires (IAM User Guide, "Identity-provider controls for
// shared OIDC providers", id_roles_providers_oidc_secure-by-default; the
// table as captured 2026-09-11 from radkawar/stackd's live IAM
// observations, trust-pitfalls.md §2.8 and §4.1). Per-tenant issuers
// (CircleCI, Bitbucket), self-managed GitLab and Terraform Enterprise,
// and private issuers are not on it. The IBM Turbonomic, sandboxes.cloud
// and Azure Sentinel entries of AWS's table are not here: their hosts
// were not captured.
//
// The subject grammars behind the models are trust-pitfalls.md §2.1–2.8;
// the issuers probed generically have no documented grammar here, so
// their tenant is taken to be the first value of the subject.
var sharedIssuers = [...]Issuer{
	{Name: "github", Host: "token.actions.githubusercontent.com", Shared: true,
		ControlClaims: []string{"sub", "job_workflow_ref"},
		TenantClaims:  []string{"sub", "job_workflow_ref", "repository", "repository_owner_id", "repository_id"},
		model:         githubModel},
	{Name: "gitlab.com", Host: "gitlab.com", Shared: true,
		ControlClaims: []string{"sub"},
		TenantClaims:  []string{"sub", "project_path", "namespace_path", "project_id", "namespace_id"},
		model:         gitlabModel},
	{Name: "buildkite", Host: "agent.buildkite.com", Shared: true,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: buildkiteModel},
	{Name: "terraform", Host: "app.terraform.io", Shared: true,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: terraformModel},
	{Name: "oidc.codefresh.io", Host: "oidc.codefresh.io", Shared: true,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: genericSubModel},
	{Name: "studio.datachain.ai/api", Host: "studio.datachain.ai/api", Shared: true,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: genericSubModel},
	{Name: "oidc-configuration.audit-log.githubusercontent.com", Host: "oidc-configuration.audit-log.githubusercontent.com", Shared: true,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: genericSubModel},
	{Name: "vstoken.actions.githubusercontent.com", Host: "vstoken.actions.githubusercontent.com", Shared: true,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: genericSubModel},
	{Name: "scalr.io", Host: "scalr.io", Shared: true,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: genericSubModel},
	{Name: "tokens.sts.global.api.shisho.dev", Host: "tokens.sts.global.api.shisho.dev", Shared: true,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: genericSubModel},
	{Name: "oidc.upbound.io", Host: "oidc.upbound.io", Shared: true,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: genericSubModel},
	// The tenant is in aud: a Cognito identity pool id, a Pulumi
	// organisation, a Vercel team URL.
	{Name: "cognito-identity.amazonaws.com", Host: "cognito-identity.amazonaws.com", Shared: true,
		ControlClaims: []string{"aud"}, TenantClaims: []string{"aud"}, model: audModel},
	{Name: "api.pulumi.com/oidc", Host: "api.pulumi.com/oidc", Shared: true,
		ControlClaims: []string{"aud"}, TenantClaims: []string{"aud"}, model: audModel},
	{Name: "oidc.vercel.com", Host: "oidc.vercel.com", Shared: true,
		ControlClaims: []string{"aud"}, TenantClaims: []string{"aud"}, model: audModel},
}

// Issuers returns the catalogue of shared issuers (a copy).
func Issuers() []Issuer {
	out := make([]Issuer, len(sharedIssuers))
	copy(out, sharedIssuers[:])
	for i := range out {
		out[i].ControlClaims = append([]string(nil), out[i].ControlClaims...)
		out[i].TenantClaims = append([]string(nil), out[i].TenantClaims...)
	}
	return out
}

// IssuerFor recognises the issuer of a Federated principal: a provider ARN
// of any account (arn:aws:iam::ACCOUNT:oidc-provider/HOST[/PATH]). prefix
// is the provider's condition-key prefix (its URL without scheme). ok is
// false for principals that are not OIDC provider ARNs and for issuers not
// in the catalogue.
func IssuerFor(federated string) (iss Issuer, prefix string, ok bool) {
	p, prefix, ok := issuerFor(federated)
	if !ok {
		return Issuer{}, "", false
	}
	c := *p
	c.ControlClaims = append([]string(nil), p.ControlClaims...)
	c.TenantClaims = append([]string(nil), p.TenantClaims...)
	return c, prefix, true
}

func issuerFor(federated string) (*Issuer, string, bool) {
	_, rest, found := strings.Cut(federated, ":oidc-provider/")
	if !found || rest == "" {
		return builtinIssuerFor(federated)
	}
	for i := range sharedIssuers {
		s := &sharedIssuers[i]
		if rest == s.Host || strings.HasPrefix(rest, s.Host+"/") {
			return s, rest, true
		}
	}
	// Per-tenant issuers and Google (catalogue_tenants.go).
	if s, ok := tenantIssuerFor(rest); ok {
		return s, rest, true
	}
	return nil, "", false
}

// ConditionKeyNames are the claim names AWS exposes as condition keys for
// the issuer whose condition-key prefix (provider URL without https://) is
// prefix: exactly the keys the STS fills (oidc.ConditionKeyNames, the one
// table), so a probe carries what a real token would.
func ConditionKeyNames(prefix string) []string {
	return oidc.ConditionKeyNames(oidc.KindOf("https://" + prefix))
}
