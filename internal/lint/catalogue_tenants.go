package lint

import (
	"strings"
)

// The issuers outside AWS's shared list: per-tenant issuers whose URL
// names the tenant (CircleCI's per-organisation issuer, Bitbucket's
// per-workspace issuer, self-managed GitLab and Terraform Enterprise,
// keyless's own issuer), the built-in Google provider, and any other OIDC
// provider ("generic"). None of them is Shared: the server's guardrail
// does not refuse their policies; Lint's rules check them (TP001 by
// probes, TP013, TP017, … by shape), one severity level lower for a
// per-tenant issuer (trust-pitfalls.md §6: the blast radius is one
// tenant). Google is a shared issuer (any Google account mints tokens)
// that is not on AWS's list of controlled providers: its findings keep
// their severity.
//
// The condition keys of every entry are oidc.ConditionKeyNames of the
// provider URL's kind (the one table): CircleCI adds
// oidc.circleci.com/project-id, Google has aud, oaud, sub and email, all
// the others the default keys (aud, sub, amr, oaud, email).

// Issuer names of the per-tenant and generic entries.
const (
	IssuerCircleCI  = "circleci"
	IssuerBitbucket = "bitbucket"
	IssuerGoogle    = "google"
	// IssuerGitLabSelfManaged is a self-managed GitLab instance: its own
	// issuer, gitlab.com's subject grammar, the default keys only.
	IssuerGitLabSelfManaged = "gitlab"
	// IssuerTerraformEnterprise is a Terraform Enterprise instance.
	IssuerTerraformEnterprise = "terraform-enterprise"
	// IssuerKeyless is one of keyless's own issuers (Options.OwnIssuers).
	IssuerKeyless = "keyless"
	// IssuerGeneric is any other OIDC provider: no subject grammar is
	// known, so a probe's subject is any string.
	IssuerGeneric = "generic"
)

// Hosts and paths of the per-tenant issuers (trust-pitfalls.md §2.3, §2.5).
const (
	circleciOrgPrefix = "oidc.circleci.com/org/"
	bitbucketPrefix   = "api.bitbucket.org/2.0/workspaces/"
	bitbucketSuffix   = "/pipelines-config/identity/oidc"
	googleHost        = "accounts.google.com"
)

// CircleCI claim names (trust-pitfalls.md §2.3). Only project-id is a
// condition key on AWS (and in keyless's STS).
const (
	claimCircleCIProject   = "oidc.circleci.com/project-id"
	claimCircleCIOrg       = "oidc.circleci.com/org-id"
	claimCircleCISSHRerun  = "oidc.circleci.com/ssh-rerun"
	claimCircleCIVCSOrigin = "oidc.circleci.com/vcs-origin"
	claimCircleCIVCSRef    = "oidc.circleci.com/vcs-ref"
)

// OwnIssuer is one of keyless's own issuers (internal/issuer): its URL
// and the claim profile of its tokens ("circleci", "github", "gitlab",
// "generic"). A provider whose URL is one of them is recognised as
// keyless's own, with that profile's subject grammar.
type OwnIssuer struct {
	URL     string
	Profile string
}

// Character classes of the per-tenant grammars.
var (
	uuidText = printableExcept('x', "/: ") // UUIDs, with or without braces
	emailish = newCharset('x', "a-z0-9-")  // service-account names
)

// circleciModel is CircleCI's grammar for the organisation org (trust-
// pitfalls.md §2.3): the organisation is fixed by the issuer, the project
// identifies the tenant a token stands for. Shapes: the V1 subject, the
// V2 subject with vcs-origin and vcs-ref, and both from an SSH rerun
// (ssh-rerun is a claim, not a condition key: no policy can exclude it).
func circleciModel(org string) *compiledModel {
	sub := "org/" + org + "/project/{project}/user/{user}"
	v2 := sub + "/vcs-origin/{origin}/vcs-ref/{ref}"
	vcs := []claimDef{{claimCircleCIVCSOrigin, "{origin}"}, {claimCircleCIVCSRef, "{ref}"}}
	shape := func(name, subject, ssh string, extra []claimDef) shapeDef {
		return shapeDef{name, KindOtherTenant, append([]claimDef{{"sub", subject}, {claimCircleCISSHRerun, ssh}}, extra...)}
	}
	return (&model{
		slots: []slotDef{
			{name: "project", cs: uuidText, tenant: true},
			{name: "user", cs: uuidText, id: true},
			{name: "origin", cs: noColon, def: "github.com/acme/app"},
			{name: "ref", cs: gitRef, def: "refs/heads/main"},
			{name: "aud", cs: anyText, def: org},
		},
		common: []claimDef{
			{"aud", "{aud}"},
			{claimCircleCIProject, "{project}"},
			{claimCircleCIOrg, org},
		},
		shapes: []shapeDef{
			shape("v1", sub, "false", nil),
			shape("v2", v2, "false", vcs),
			shape("ssh-rerun v1", sub, "true", nil),
			shape("ssh-rerun v2", v2, "true", vcs),
		},
		order:   []string{"aud", claimCircleCIProject, "sub"},
		seps:    "/",
		primary: "project",
	}).compile()
}

// bitbucketModel is Bitbucket Pipelines' grammar for workspace ws
// (trust-pitfalls.md §2.5): the repository identifies the tenant; a step
// subject, and a deployment step's subject with its environment.
func bitbucketModel(ws string) *compiledModel {
	return (&model{
		slots: []slotDef{
			{name: "repo", cs: uuidText, tenant: true},
			{name: "env", cs: uuidText, def: "{9e1b7c2a-0000-4000-8000-00000000e0e0}"},
			{name: "step", cs: uuidText, def: "{5d3f1a2b-0000-4000-8000-000000005e95}"},
			{name: "aud", cs: anyText, def: "ari:cloud:bitbucket::workspace/" + ws},
		},
		common: []claimDef{{"aud", "{aud}"}},
		shapes: []shapeDef{
			{"step", KindOtherTenant, []claimDef{{"sub", "{repo}:{step}"}}},
			{"deployment", KindOtherTenant, []claimDef{{"sub", "{repo}:{env}:{step}"}}},
		},
		order:   []string{"aud", "sub"},
		seps:    ":",
		primary: "repo",
	}).compile()
}

// googleModel: accounts.google.com (trust-pitfalls.md §2.7). Any Google
// account (a service account of any project) mints an ID token with the
// audience it asks for: aud is the caller's choice, the account's numeric
// id (sub) and e-mail identify the tenant.
var googleModel = (&model{
	slots: []slotDef{
		{name: "id", cs: digits, tenant: true, id: true},
		{name: "sa", cs: emailish, tenant: true},
		{name: "project", cs: slugName, def: "other-project"},
		{name: "aud", cs: anyText, def: "sts.amazonaws.com"},
	},
	common: []claimDef{
		{"aud", "{aud}"},
		{"sub", "{id}"},
		{"email", "{sa}@{project}.iam.gserviceaccount.com"},
	},
	shapes:  []shapeDef{{"service account", KindOtherTenant, nil}},
	order:   []string{"aud", "email", "sub"},
	seps:    "@.",
	primary: "sa",
}).compile()

// anySubModel: an issuer without a known grammar: the subject is any
// string, and another subject is another identity.
var anySubModel = (&model{
	slots: []slotDef{
		{name: "subject", cs: noSpace, tenant: true},
		{name: "aud", cs: anyText, def: "sts.amazonaws.com"},
	},
	common:  []claimDef{{"aud", "{aud}"}, {"sub", "{subject}"}},
	shapes:  []shapeDef{{"subject", KindOtherTenant, nil}},
	order:   []string{"aud", "sub"},
	seps:    "",
	primary: "subject",
}).compile()

// tenantIssuerFor recognises a provider that is not on AWS's shared list
// by its URL without scheme (rest): CircleCI, Bitbucket, Google (as an
// oidc-provider ARN), self-managed GitLab (a host whose first label is
// "gitlab") and Terraform Enterprise (first label "tfe" or "terraform").
// Recognising them only picks the subject grammar of the probes: the
// verdicts stay the evaluator's.
func tenantIssuerFor(rest string) (*Issuer, bool) {
	switch {
	case strings.HasPrefix(rest, circleciOrgPrefix):
		org := rest[len(circleciOrgPrefix):]
		if org == "" || strings.ContainsAny(org, "/{}") {
			return nil, false
		}
		return &Issuer{Name: IssuerCircleCI, Host: "oidc.circleci.com/org",
			ControlClaims: []string{"sub"}, TenantClaims: []string{"sub", claimCircleCIProject},
			model: circleciModel(org)}, true
	case strings.HasPrefix(rest, bitbucketPrefix) && strings.HasSuffix(rest, bitbucketSuffix):
		ws := strings.TrimSuffix(rest[len(bitbucketPrefix):], bitbucketSuffix)
		if ws == "" || strings.ContainsAny(ws, "/{}") {
			return nil, false
		}
		return &Issuer{Name: IssuerBitbucket, Host: "api.bitbucket.org/2.0/workspaces",
			ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: bitbucketModel(ws)}, true
	case strings.EqualFold(rest, googleHost):
		return googleIssuer(), true
	}
	host, _, _ := strings.Cut(rest, "/")
	label, _, _ := strings.Cut(host, ".")
	switch strings.ToLower(label) {
	case "gitlab":
		if host == "gitlab.com" {
			return nil, false
		}
		return &Issuer{Name: IssuerGitLabSelfManaged, Host: host,
			ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: gitlabModel}, true
	case "tfe", "terraform":
		return &Issuer{Name: IssuerTerraformEnterprise, Host: host,
			ControlClaims: []string{"sub"}, TenantClaims: []string{"sub"}, model: terraformModel}, true
	}
	return nil, false
}

func googleIssuer() *Issuer {
	return &Issuer{Name: IssuerGoogle, Host: googleHost,
		ControlClaims: []string{"sub"}, TenantClaims: []string{"sub", "email"}, model: googleModel}
}

// builtinIssuerFor recognises a Federated principal written as a built-in
// provider name rather than an ARN: accounts.google.com.
func builtinIssuerFor(federated string) (*Issuer, string, bool) {
	if strings.EqualFold(federated, googleHost) {
		return googleIssuer(), googleHost, true
	}
	return nil, "", false
}

// issuerForOpts is issuerFor with the issuers the options add: keyless's
// own issuers first (their URL may look like anything), then the
// catalogue, then, for any other OIDC provider ARN, the generic entry.
func issuerForOpts(federated string, o Options) (*Issuer, string, bool) {
	_, rest, isOIDC := strings.Cut(federated, ":oidc-provider/")
	if isOIDC && rest != "" {
		for _, own := range o.OwnIssuers {
			_, u, found := strings.Cut(own.URL, "://")
			if !found {
				u = own.URL
			}
			if strings.TrimSuffix(u, "/") == strings.TrimSuffix(rest, "/") {
				return &Issuer{Name: IssuerKeyless, Host: u, ControlClaims: []string{"sub"},
					TenantClaims: []string{"sub"}, model: ownModel(own.Profile, u)}, rest, true
			}
		}
	}
	if iss, prefix, ok := issuerFor(federated); ok {
		return iss, prefix, true
	}
	if isOIDC && rest != "" {
		return &Issuer{Name: IssuerGeneric, Host: rest, ControlClaims: []string{"sub"},
			TenantClaims: []string{"sub"}, model: anySubModel}, rest, true
	}
	return nil, "", false
}

// ownModel is the grammar of keyless's own issuer profile prof
// (internal/issuer's profiles); a circleci-profile issuer's organisation
// is the last segment of its URL (…/org/<id>).
func ownModel(prof, u string) *compiledModel {
	switch prof {
	case "circleci":
		org := u[strings.LastIndexByte(u, '/')+1:]
		if org == "" || strings.ContainsAny(org, "{}") {
			return anySubModel
		}
		return circleciModel(org)
	case "github":
		return githubModel
	case "gitlab":
		return gitlabModel
	}
	return anySubModel
}

// perTenant reports an issuer whose findings are one severity level
// lower than a shared issuer's (trust-pitfalls.md §6): its URL names one
// tenant.
// A generic issuer counts as per-tenant: an issuer AWS does not list as
// shared is most often a private one (a self-hosted CI's).
func perTenant(iss *Issuer) bool {
	return !iss.Shared && iss.Name != IssuerGoogle
}
