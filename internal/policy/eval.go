package policy

// Decision is the outcome of an evaluation. The zero value is ImplicitDeny,
// so an unset Decision never grants anything.
type Decision int

const (
	// ImplicitDeny: no applicable Allow (or a present session policy or
	// permissions boundary does not allow).
	ImplicitDeny Decision = iota
	// Allowed: allowed, with no applicable Deny.
	Allowed
	// ExplicitDeny: a Deny statement applies.
	ExplicitDeny
)

// String returns AWS's simulator spelling: "allowed", "explicitDeny" or
// "implicitDeny".
func (d Decision) String() string {
	switch d {
	case Allowed:
		return "allowed"
	case ExplicitDeny:
		return "explicitDeny"
	default:
		return "implicitDeny"
	}
}

// MarshalText encodes the decision as its String.
func (d Decision) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes the String form.
func (d *Decision) UnmarshalText(b []byte) error {
	switch string(b) {
	case "allowed":
		*d = Allowed
	case "explicitDeny":
		*d = ExplicitDeny
	case "implicitDeny":
		*d = ImplicitDeny
	default:
		return &Error{Code: CodeInvalidInput, Message: "unknown decision " + string(b), Err: ErrInvalidInput}
	}
	return nil
}

// PrincipalType is the kind of principal making a request; the values are
// the Principal element's map keys.
type PrincipalType string

const (
	PrincipalAWS           PrincipalType = "AWS"           // IAM users, roles, role sessions, accounts
	PrincipalFederated     PrincipalType = "Federated"     // web identity / SAML: ID is the provider ARN (or built-in name)
	PrincipalService       PrincipalType = "Service"       // ID is the service principal, e.g. ec2.amazonaws.com
	PrincipalCanonicalUser PrincipalType = "CanonicalUser" // ID is the canonical user id
	PrincipalAnonymous     PrincipalType = "Anonymous"     // unauthenticated; matched only by "*" and {"AWS":"*"}
)

// Principal is who makes a request, as resource-based (trust) policies see
// it.
type Principal struct {
	Type PrincipalType `json:"type"`
	// ID is the principal's own identifier: an IAM user ARN, a role session
	// ARN (arn:aws:sts::ACCT:assumed-role/ROLE/SESSION), an OIDC provider ARN
	// for web identity, a service name.
	ID string `json:"id"`
	// ParentARN is, for a role session, the role's ARN and, for a federated
	// user session, the IAM user's ARN. A policy naming it grants through
	// the role, so boundaries and session policies still limit the grant.
	ParentARN string `json:"parentArn,omitempty"`
	// Account is the principal's 12-digit account; empty means "take it from
	// ID" for AWS principals.
	Account string `json:"account,omitempty"`
}

func (p *Principal) account() string {
	if p.Account != "" {
		return p.Account
	}
	if parts, ok := splitARN(p.ID, false); ok && isAccountID(parts[4]) {
		return parts[4]
	}
	if isAccountID(p.ID) {
		return p.ID
	}
	return ""
}

// Request is what is being decided.
type Request struct {
	Principal Principal // read by Principal/NotPrincipal (resource-based policies)
	Action    string    // e.g. sts:AssumeRoleWithWebIdentity; matched ignoring case
	Resource  string    // an ARN, or "*"
	Context   *Context  // may be nil: no keys
}

// PolicySet is the set of policies that apply to one request, grouped by
// type. A Session or Boundary slice without a (non-nil) policy means that
// layer is not present. A present layer must allow, except that a resource-based policy
// naming the principal itself grants on its own.
type PolicySet struct {
	Identity []*Policy // identity-based policies: their allows are a union
	Session  []*Policy // session policies: intersect with identity
	Boundary []*Policy // permissions boundary: intersects with identity
	Resource []*Policy // resource-based policies, including a role's trust policy
}

// Layer names a PolicySet group.
type Layer string

const (
	LayerIdentity Layer = "identity"
	LayerSession  Layer = "session"
	LayerBoundary Layer = "boundary"
	LayerResource Layer = "resource"
)

// Evaluate decides req against the set with AWS's logic for a single
// account ("Policy evaluation logic"): an applicable Deny in any policy is
// an explicit deny; otherwise the request is allowed when an identity-based
// or resource-based policy allows it and every present session policy and
// permissions boundary allows it too; otherwise it is implicitly denied.
// Grants in resource-based policies follow the principal they name (see
// Principal.ParentARN): naming the principal itself is enough alone, naming
// its role is limited by the boundary and session policy, naming its
// account requires an identity-based allow.
//
// Evaluate does not allocate (unless a policy variable pattern uses more
// than eight variables) and is safe for concurrent use.
func (s *PolicySet) Evaluate(req *Request) Decision {
	return s.evaluate(req, nil)
}

// Explain evaluates like Evaluate and also returns the trace of every
// policy and statement considered.
func (s *PolicySet) Explain(req *Request) (Decision, *Trace) {
	tb := newTraceBuilder(req)
	d := s.evaluate(req, tb)
	return d, tb.finish(d)
}

// layerState collects what one layer contributed.
type layerState struct {
	present bool // the layer holds at least one policy
	allow   bool
	direct  bool // resource layer: an Allow naming the principal itself
	parent  bool // resource layer: an Allow naming the principal's role/user
}

func (s *PolicySet) evaluate(req *Request, tb *traceBuilder) Decision {
	layers := [4]struct {
		name Layer
		ps   []*Policy
	}{
		{LayerIdentity, s.Identity},
		{LayerResource, s.Resource},
		{LayerBoundary, s.Boundary},
		{LayerSession, s.Session},
	}
	var st [4]layerState
	denied := false
	for li := range layers {
		l := &layers[li]
		for pi, p := range l.ps {
			if p == nil {
				continue
			}
			st[li].present = true
			if tb != nil {
				tb.beginPolicy(l.name, pi, p)
			}
			for si := range p.c.stmts {
				cs := &p.c.stmts[si]
				// Once a layer has an Allow, only Deny statements can change
				// the outcome; the fast path skips the rest.
				if tb == nil && !cs.deny && st[li].allow && (l.name != LayerResource || st[li].direct) {
					continue
				}
				r := cs.applies(req, l.name == LayerResource)
				if tb != nil {
					tb.statement(p, si, cs, &r)
					if tb.sim != nil && tb.sim.stop {
						return ImplicitDeny // cancelled: the caller discards the result
					}
				}
				if !r.match {
					continue
				}
				if cs.deny {
					if tb == nil {
						return ExplicitDeny
					}
					denied = true
					continue
				}
				st[li].allow = true
				if l.name == LayerResource {
					switch r.pm {
					case pmDirect:
						st[li].direct = true
					case pmParent:
						st[li].parent = true
					}
				}
			}
		}
	}
	id, res, bnd, ses := &st[0], &st[1], &st[2], &st[3]
	var d Decision
	var why reasonKind
	switch {
	case denied:
		d, why = ExplicitDeny, reasonDenied
	case res.direct:
		d, why = Allowed, reasonResourceDirect
	case !id.allow && !res.parent:
		d, why = ImplicitDeny, reasonNoAllow
		if res.allow {
			why = reasonResourceAccountOnly
		}
	case bnd.present && !bnd.allow:
		d, why = ImplicitDeny, reasonBoundary
	case ses.present && !ses.allow:
		d, why = ImplicitDeny, reasonSession
	default:
		d, why = Allowed, reasonAllowed
	}
	if tb != nil {
		tb.reason = why
	}
	return d
}

// stmtResult is the outcome of matching one statement.
type stmtResult struct {
	match    bool
	mismatch mismatchKind
	pm       prinMatch
	cond     int // index of the first failed condition
	why      condWhy
	valIdx   int // ForAllValues: the request value that failed
}

type mismatchKind uint8

const (
	mismatchNone mismatchKind = iota
	mismatchPrincipal
	mismatchAction
	mismatchResource
	mismatchCondition
)

// applies decides whether the statement applies to req: principal, action,
// resource, then conditions.
func (c *cstmt) applies(req *Request, resourceLayer bool) stmtResult {
	r := stmtResult{pm: pmDirect, cond: -1}
	if c.prin != nil {
		pm := c.prin.match(&req.Principal)
		if c.notPrin {
			if pm != pmNone {
				r.mismatch = mismatchPrincipal
				return r
			}
			pm = pmDirect
		} else if pm == pmNone {
			r.mismatch = mismatchPrincipal
			return r
		}
		r.pm = pm
	} else if resourceLayer {
		// A statement without a principal in a resource-based slot cannot
		// name anyone; it is treated as naming the account, which grants
		// nothing on its own.
		r.pm = pmAccount
	}
	if !c.matchAction(req.Action) {
		r.mismatch = mismatchAction
		return r
	}
	if !c.matchResource(req.Resource, req.Context) {
		r.mismatch = mismatchResource
		return r
	}
	for i := range c.conds {
		ok, why, vi := c.conds[i].eval(req.Context)
		if !ok {
			r.mismatch, r.cond, r.why, r.valIdx = mismatchCondition, i, why, vi
			return r
		}
	}
	r.match = true
	return r
}

func (c *cstmt) matchAction(action string) bool {
	hit := false
	for i := range c.actions {
		if c.actions[i].match(action, nil) {
			hit = true
			break
		}
	}
	return hit != c.notAction
}

// matchResource: a pattern whose variable has no value matches no resource
// ("Policy variables with no value"), which for NotResource means it
// excludes nothing.
func (c *cstmt) matchResource(resource string, ctx *Context) bool {
	if !c.hasRes {
		return true
	}
	hit := false
	for i := range c.res {
		a := &c.res[i]
		var buf varBuf
		vv, ok := resolveARNVars(a, ctx, buf[:0])
		if ok && a.match(resource, vv) {
			hit = true
			break
		}
	}
	return hit != c.notRes
}
