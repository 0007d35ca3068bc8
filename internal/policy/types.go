package policy

// Policy language versions. A document without Version has 2008-10-17
// semantics: policy variables are not substituted.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Kind is where a policy document is used; it decides which elements are
// required or prohibited.
type Kind int

const (
	// KindIdentity is an inline or managed identity-based policy: Principal
	// is prohibited and Resource is required.
	KindIdentity Kind = iota + 1
	// KindTrust is a role trust policy (resource-based): Principal is
	// required, Resource and NotPrincipal are prohibited, and actions are
	// limited to the sts:AssumeRole family.
	KindTrust
	// KindSession is a session policy passed to an AssumeRole* call; the
	// rules are those of KindIdentity.
	KindSession
	// KindBoundary is a permissions boundary; the rules are those of
	// KindIdentity.
	KindBoundary
	// KindResource is any other resource-based policy (for the simulator's
	// ResourcePolicy): Principal or NotPrincipal and Resource are required.
	KindResource
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindIdentity:
		return "identity"
	case KindTrust:
		return "trust"
	case KindSession:
		return "session"
	case KindBoundary:
		return "boundary"
	case KindResource:
		return "resource"
	default:
		return "unknown"
	}
}

func (k Kind) valid() bool { return k >= KindIdentity && k <= KindResource }

func (k Kind) identityLike() bool {
	return k == KindIdentity || k == KindSession || k == KindBoundary
}

// Effect is a statement's effect.
type Effect int

const (
	Allow Effect = iota + 1
	Deny
)

// String returns "Allow" or "Deny".
func (e Effect) String() string {
	switch e {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	default:
		return "Unknown"
	}
}

// Policy is a parsed, validated and compiled policy document. It is
// immutable: do not modify its fields after Parse, the compiled form used by
// evaluation is built from them once.
type Policy struct {
	Kind       Kind
	Version    string // "2012-10-17", "2008-10-17", or "" when absent
	ID         string // the Id element
	Statements []Statement

	c compiledPolicy
}

// VariablesEnabled reports whether ${...} policy variables are substituted
// (Version 2012-10-17); otherwise they are literal text.
func (p *Policy) VariablesEnabled() bool { return p.Version == Version2012 }

// Statement is one statement of a policy. Exactly one of Action and
// NotAction is non-empty. When both Resource and NotResource are nil the
// statement applies to every resource (trust policies).
type Statement struct {
	Sid          string
	Effect       Effect
	Principal    *Principals // nil when absent
	NotPrincipal *Principals // nil when absent
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Condition    []Condition // in document order; nil when absent or empty

	// Start is the position of the statement's opening brace and End the
	// position just after its closing brace.
	Start Position
	End   Position
}

// Principals is the value of a Principal or NotPrincipal element.
type Principals struct {
	// Wildcard is the string form "Principal": "*" (everyone, including
	// anonymous callers). The map form {"AWS": "*"} is AWS: ["*"].
	Wildcard      bool
	AWS           []string
	Federated     []string
	Service       []string
	CanonicalUser []string
}

// Condition is one (operator, key) pair of a Condition element with the
// policy's values for it. Values are strings: JSON numbers keep their text
// and booleans become "true" or "false", as IAM treats them.
type Condition struct {
	Operator string // as written, e.g. "ForAnyValue:StringLike"
	Key      string // as written; matched case-insensitively
	Values   []string
}
