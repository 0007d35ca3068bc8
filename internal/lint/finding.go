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
	{"TP005", SeverityCritical, "a wildcard in the tenant name admits look-alike tenants"},
	{"TP010", SeverityCritical, "the identity is constrained only through negated operators"},
	{"TP011", SeverityHigh, "IfExists or an optional claim lets a token without the claim in"},
	{"TP014", SeverityCritical, "a custom-template subject without an owner anchor"},
	{"TP019", SeverityCritical, "duplicate JSON keys: the document must be rejected"},
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
