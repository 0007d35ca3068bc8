package policy

import "strconv"

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
	// Trace is the full explanation (keyless's addition).
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

// Simulate evaluates every action on every resource. It fails only on
// invalid input (an *Error with ErrInvalidInput): a context value that does
// not fit its declared type, several values for a single-valued type, an
// unknown layer or type.
func Simulate(in SimulationInput) ([]SimResult, error) {
	ctx, err := simContext(in.Context)
	if err != nil {
		return nil, err
	}
	var set PolicySet
	src := map[Layer][]*SimPolicy{}
	for i := range in.Policies {
		sp := &in.Policies[i]
		if sp.Policy == nil {
			return nil, invalidInput("policy " + strconv.Quote(sp.ID) + " is nil")
		}
		switch sp.Layer {
		case LayerIdentity:
			set.Identity = append(set.Identity, sp.Policy)
		case LayerSession:
			set.Session = append(set.Session, sp.Policy)
		case LayerBoundary:
			set.Boundary = append(set.Boundary, sp.Policy)
		case LayerResource:
			set.Resource = append(set.Resource, sp.Policy)
		default:
			return nil, invalidInput("policy " + strconv.Quote(sp.ID) + " has unknown layer " + strconv.Quote(string(sp.Layer)))
		}
		src[sp.Layer] = append(src[sp.Layer], sp)
	}
	resources := in.Resources
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	out := make([]SimResult, 0, len(in.Actions)*len(resources))
	for _, action := range in.Actions {
		for _, res := range resources {
			req := Request{Principal: in.Caller, Action: action, Resource: res, Context: ctx}
			d, tr := set.Explain(&req)
			r := SimResult{
				Action:               action,
				Resource:             res,
				Decision:             d,
				MatchedStatements:    []MatchedStatement{},
				MissingContextValues: append([]string{}, tr.MissingContextKeys...),
				Trace:                tr,
			}
			want := Allow
			if d == ExplicitDeny {
				want = Deny
			}
			boundaryAllow, boundaryDeny := false, false
			for _, pt := range tr.Policies {
				sp := src[pt.Layer][pt.Index]
				for _, st := range pt.Statements {
					if !st.Matched {
						continue
					}
					if pt.Layer == LayerBoundary {
						boundaryAllow = boundaryAllow || st.Effect == Allow
						boundaryDeny = boundaryDeny || st.Effect == Deny
					}
					if d != ImplicitDeny && st.Effect == want {
						r.MatchedStatements = append(r.MatchedStatements, MatchedStatement{
							SourcePolicyID:   sp.ID,
							SourcePolicyType: sp.Type,
							StartPosition:    st.Start,
							EndPosition:      st.End,
						})
					}
				}
			}
			if len(set.Boundary) > 0 {
				r.PermissionsBoundaryDecisionDetail = &BoundaryDecisionDetail{AllowedByPermissionsBoundary: boundaryAllow && !boundaryDeny}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func invalidInput(msg string) *Error {
	return &Error{Code: CodeInvalidInput, Message: msg, Err: ErrInvalidInput}
}

// simContext builds a Context from typed entries, checking each value
// against its type.
func simContext(entries []ContextEntry) (*Context, error) {
	ctx := NewContext(len(entries))
	for _, e := range entries {
		if e.Key == "" {
			return nil, invalidInput("a context entry has no key")
		}
		list := false
		var check func(string) bool
		switch e.Type {
		case ContextString, ContextStringList:
			check = func(string) bool { return true }
		case ContextNumeric, ContextNumericList:
			check = func(v string) bool { _, ok := parseNumber(v); return ok }
		case ContextBoolean, ContextBooleanList:
			check = func(v string) bool { _, ok := parseBool(v); return ok }
		case ContextIP, ContextIPList:
			check = func(v string) bool { _, ok := parseRequestIP(v); return ok }
		case ContextBinary, ContextBinaryList:
			check = func(v string) bool { _, ok := decodeBinary(v, nil); return ok }
		case ContextDate, ContextDateList:
			check = func(v string) bool { _, ok := parseDate(v); return ok }
		default:
			return nil, invalidInput("context key " + strconv.Quote(e.Key) + " has unknown type " + strconv.Quote(string(e.Type)))
		}
		switch e.Type {
		case ContextStringList, ContextNumericList, ContextBooleanList, ContextIPList, ContextBinaryList, ContextDateList:
			list = true
		}
		if !list && len(e.Values) != 1 {
			return nil, invalidInput("context key " + strconv.Quote(e.Key) + " of type " + string(e.Type) + " needs exactly one value, got " + strconv.Itoa(len(e.Values)))
		}
		for _, v := range e.Values {
			if !check(v) {
				return nil, invalidInput("context key " + strconv.Quote(e.Key) + ": " + strconv.Quote(v) + " is not a valid " + string(e.Type) + " value")
			}
		}
		ctx.Set(e.Key, e.Values...)
	}
	return ctx, nil
}
