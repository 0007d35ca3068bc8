package policy

// SourceType is a simulated policy's SourcePolicyType, AWS's enum.
type SourceType string

const (
	SourceUser        SourceType = "user"
	SourceGroup       SourceType = "group"
	SourceRole        SourceType = "role"
	SourceAWSManaged  SourceType = "aws-managed"
	SourceUserManaged SourceType = "user-managed"
	SourceResource    SourceType = "resource"
	SourceNone        SourceType = "none"
)

// SimPolicy is one policy given to the simulator.
type SimPolicy struct {
	ID     string     // reported as SourcePolicyId
	Type   SourceType // reported as SourcePolicyType
	Layer  Layer      // the PolicySet group it belongs to
	Policy *Policy
}

// ContextKeyType is a ContextEntry's ContextKeyType, AWS's enum.
type ContextKeyType string

const (
	ContextString      ContextKeyType = "string"
	ContextStringList  ContextKeyType = "stringList"
	ContextNumeric     ContextKeyType = "numeric"
	ContextNumericList ContextKeyType = "numericList"
	ContextBoolean     ContextKeyType = "boolean"
	ContextBooleanList ContextKeyType = "booleanList"
	ContextIP          ContextKeyType = "ip"
	ContextIPList      ContextKeyType = "ipList"
	ContextBinary      ContextKeyType = "binary"
	ContextBinaryList  ContextKeyType = "binaryList"
	ContextDate        ContextKeyType = "date"
	ContextDateList    ContextKeyType = "dateList"
)

// ContextEntry is one simulator context key with its declared type.
type ContextEntry struct {
	Key    string
	Type   ContextKeyType
	Values []string
}

// SimulationInput is the simulator's input (SimulateCustomPolicy and
// SimulatePrincipalPolicy, after the caller has collected the policies).
type SimulationInput struct {
	Policies  []SimPolicy
	Actions   []string
	Resources []string  // empty means "*"
	Caller    Principal // the simulated caller, read by resource-based policies
	Context   []ContextEntry
}

// SimResult is the result for one action on one resource.
type SimResult struct {
	Action   string   `json:"evalActionName"`
	Resource string   `json:"evalResourceName"`
	Decision Decision `json:"evalDecision"`
	// MatchedStatements are the statements that decide: the matching Deny
	// statements for explicitDeny, the matching Allow statements for
	// allowed, none for implicitDeny.
	MatchedStatements []MatchedStatement `json:"matchedStatements"`
	// MissingContextValues are keys read by applicable statements but not
	// given in the context.
	MissingContextValues []string `json:"missingContextValues"`
	// PermissionsBoundaryDecisionDetail is set when a boundary was given.
	PermissionsBoundaryDecisionDetail *BoundaryDecisionDetail `json:"permissionsBoundaryDecisionDetail,omitempty"`
	// Trace is the full explanation (keyless's addition), set by
	// Simulation.Explain only: Page leaves it nil.
	Trace *Trace `json:"trace,omitempty"`
}

// MatchedStatement locates a deciding statement.
type MatchedStatement struct {
	SourcePolicyID   string     `json:"sourcePolicyId"`
	SourcePolicyType SourceType `json:"sourcePolicyType"`
	StartPosition    Position   `json:"startPosition"`
	EndPosition      Position   `json:"endPosition"`
}

// BoundaryDecisionDetail is AWS's PermissionsBoundaryDecisionDetail.
type BoundaryDecisionDetail struct {
	// AllowedByPermissionsBoundary is true when the boundary has an
	// applicable Allow and no applicable Deny.
	AllowedByPermissionsBoundary bool `json:"allowedByPermissionsBoundary"`
}

func invalidInput(msg string) *Error {
	return &Error{Code: CodeInvalidInput, Message: msg, Err: ErrInvalidInput}
}
