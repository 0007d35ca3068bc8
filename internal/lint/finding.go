package lint

import "fmt"

// Severity grades a finding (trust-pitfalls.md §6).
type Severity int

const (
	SeverityInfo Severity = iota + 1
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

// String returns the upper-case name used in the rule table: INFO, LOW,
// MEDIUM, HIGH, CRITICAL.
func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "INFO"
	case SeverityLow:
		return "LOW"
	case SeverityMedium:
		return "MEDIUM"
	case SeverityHigh:
		return "HIGH"
	case SeverityCritical:
		return "CRITICAL"
	}
	return "UNKNOWN"
}

// MarshalText encodes the severity as its String.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Rule is an entry of the rule catalogue (trust-pitfalls.md §6: ids,
// severities for a shared issuer, and meaning as written there).
type Rule struct {
	ID       string
	Severity Severity
	Title    string
}

// rules are the entries of trust-pitfalls.md §6 implemented today: those
// the guardrail reports, and TP019 (Lint); the others come later.
var rules = [...]Rule{
	{"TP001", SeverityCritical, "no effective positive identity constraint"},
	{"TP002", SeverityCritical, "an identity value matches subjects of every tenant"},
	{"TP003", SeverityCritical, "one loose value in a list of tight ones: the loosest decides"},
	{"TP004", SeverityHigh, "a tenant-wide pattern admits every repository (project, workspace, pipeline) of the tenant"},
	{"TP005", SeverityCritical, "a wildcard in the tenant name admits look-alike tenants"},
	{"TP006", SeverityHigh, "a wildcard after a partial repository name (MEDIUM: branch or environment name)"},
	{"TP007", SeverityHigh, "a pull-request or merge-request run is admitted"},
	{"TP008", SeverityMedium, "any branch is admitted"},
	{"TP009", SeverityLow, "a wildcard under StringEquals is literal: a dead condition"},
	{"TP010", SeverityCritical, "the identity is constrained only through negated operators"},
	{"TP011", SeverityHigh, "IfExists or an optional claim lets a token without the claim in"},
	{"TP012", SeverityMedium, "ForAllValues: on a single-valued key (HIGH when the claim is optional)"},
	{"TP013", SeverityMedium, "a condition names a key the issuer does not expose (HIGH when negated, IfExists or ForAllValues)"},
	{"TP014", SeverityCritical, "a custom-template subject without an owner anchor"},
	{"TP015", SeverityMedium, "names pinned without immutable ids: recycled names get in (LOW for an exact pin)"},
	{"TP016", SeverityMedium, "immutable ids wildcarded (CRITICAL: the withdrawn hyphen form)"},
	{"TP017", SeverityMedium, "no aud condition: tokens minted for other relying parties are admitted"},
	{"TP018", SeverityMedium, "an aud pattern, or an aud list with a generic value, admits other audiences"},
	{"TP019", SeverityCritical, "duplicate JSON keys: the document must be rejected"},
	{"TP020", SeverityCritical, "several Allow statements trust the same provider: the weakest decides (severity inherited from it)"},
	{"TP021", SeverityHigh, "web identity granted to \"*\" or to a Federated principal that is not an OIDC provider of this account"},
	{"TP022", SeverityMedium, "a wildcard action (sts:*, sts:AssumeRole*) or NotAction in a federated statement"},
	{"TP023", SeverityHigh, "a CircleCI trust admits SSH-rerun sessions (MEDIUM when one user is pinned)"},
	{"TP024", SeverityHigh, "an HCP Terraform trust admits plan runs: run_phase wildcarded or absent"},
	{"TP025", SeverityHigh, "a GitLab trust admits merge-request pipelines, unprotected refs or any ref_type"},
	{"TP026", SeverityMedium, "a mutable job_workflow_ref pin, or a CircleCI V2-only vcs-ref pin (LOW)"},
	{"TP029", SeverityLow, "a policy variable in an identity value"},
	{"TP031", SeverityMedium, "an environment pin with %3A collides with another environment name"},
	{"TP032", SeverityCritical, "Google trusted on a generic aud alone, which any Google account can request"},
	{"TP033", SeverityInfo, "a default-branch pin also admits workflow_run, schedule and workflow_dispatch runs"},
	{"TP034", SeverityInfo, "the trust cannot exclude self-hosted runners"},
	{"TP037", SeverityInfo, "a classic name-based subject pin stops matching under the immutable subject"},
	{"TP038", SeverityLow, "a volatile segment pinned (Bitbucket stepUuid, Buildkite commit): the next run is refused"},
	{"TP039", SeverityLow, "an empty value list"},
	{"TP040", SeverityInfo, "drift: the policy admits what its baseline refused"},
}

// RuleByID returns the catalogue entry of id.
func RuleByID(id string) (Rule, bool) {
	for _, r := range rules {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}

// ProbeKind says how a probe stands for another tenant.
type ProbeKind string

const (
	// KindOtherTenant: a tenant with an unrelated name.
	KindOtherTenant ProbeKind = "other-tenant"
	// KindLookalike: a tenant whose name extends a name the policy spells
	// (acme → acme-x7k2, acmex7k2), which anyone can register.
	KindLookalike ProbeKind = "look-alike"
	// KindCustomTemplate: a subject in a custom template any tenant can
	// choose (GitHub's environment:…, ref:…, workflow:…).
	KindCustomTemplate ProbeKind = "custom-template"
	// KindMissingClaim: another tenant's token without an optional claim.
	KindMissingClaim ProbeKind = "missing-claim"
)

// Probe is a token of another tenant, as the evaluator saw it.
type Probe struct {
	Kind ProbeKind `json:"kind"`
	// Shape is the form of the token, e.g. "branch", "pull_request",
	// "template environment".
	Shape string `json:"shape"`
	// Tenant is the other tenant's name; LookalikeOf the name the policy
	// spells that it imitates.
	Tenant      string `json:"tenant,omitempty"`
	LookalikeOf string `json:"lookalikeOf,omitempty"`
	// Missing is the claim left out (KindMissingClaim).
	Missing string `json:"missing,omitempty"`
	// Provider is the Federated principal (provider ARN) it was presented
	// to.
	Provider string `json:"provider"`
	// Claims are the token's claims the issuer's condition keys read.
	Claims map[string]string `json:"claims"`
	// Context is the request context the evaluator decided on: every
	// condition key as the STS fills it for such a token.
	Context map[string][]string `json:"context"`
}

// Finding is one problem of a trust policy.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Statement is the index of the statement in the document, Sid its Sid.
	Statement int    `json:"statement"`
	Sid       string `json:"sid,omitempty"`
	// Path is the JSON path of the condition at fault, or of the
	// statement when no condition is.
	Path string `json:"path"`
	// Principal is the Federated principal (provider ARN) concerned.
	Principal string `json:"principal"`
	// Message is one line for the person who wrote the policy.
	Message string `json:"message"`
	// Probe is the token that proves the finding: the policy admits it and
	// should not. nil for findings of the policy's shape alone (AWS's own
	// control).
	Probe *Probe `json:"probe,omitempty"`
	// Fix is the suggested tightened condition: the statement's Condition
	// block as JSON, with upper-case placeholders (OWNER, REPO) where the
	// policy does not say the name ("" when Lint has none to suggest).
	Fix string `json:"fix,omitempty"`
	// Line and Column locate the finding in the document when Lint knows
	// it: the duplicate key (TP019), else the statement's opening brace.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// Error lets a finding be the internal cause of a refusal.
func (f *Finding) Error() string {
	return fmt.Sprintf("%s statement %d: %s", f.Rule, f.Statement, f.Message)
}
