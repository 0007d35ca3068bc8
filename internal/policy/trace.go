package policy

import (
	"strconv"
	"strings"
)

// Trace explains one evaluation: for every policy and statement considered,
// whether it applied and, when it did not, the first reason why. It is read
// by people (the STS explains a rejected CI token with it), by the linter
// and by the simulator, so it is a stable JSON format: fields are only ever
// added, never renamed or removed, and enumerated strings keep their
// spelling.
//
// Values shown are the policy's and the request context's; a trace never
// contains credentials or tokens, only the condition keys the caller put in
// the Context (claims such as sub and aud).
type Trace struct {
	// Decision is "allowed", "explicitDeny" or "implicitDeny".
	Decision Decision `json:"decision"`
	// Reason is one sentence saying why, for humans.
	Reason  string       `json:"reason"`
	Request TraceRequest `json:"request"`
	// Policies lists every policy evaluated, in order: identity, resource,
	// boundary, session.
	Policies []PolicyTrace `json:"policies"`
	// MissingContextKeys are the keys read by statements whose principal,
	// action and resource matched but that the context did not hold (the
	// simulator's MissingContextValues), in first-seen order.
	MissingContextKeys []string `json:"missingContextKeys,omitempty"`
}

// TraceRequest echoes the request.
type TraceRequest struct {
	Principal *Principal `json:"principal,omitempty"`
	Action    string     `json:"action"`
	Resource  string     `json:"resource,omitempty"`
}

// PolicyTrace is one policy's part of a trace.
type PolicyTrace struct {
	Layer Layer  `json:"layer"`        // identity, resource, boundary or session
	Index int    `json:"index"`        // position in its PolicySet slice
	ID    string `json:"id,omitempty"` // the policy's Id element
	// Outcome is what the policy contributed: "deny" (a Deny applied),
	// "allow" (an Allow applied, no Deny) or "none".
	Outcome    string           `json:"outcome"`
	Statements []StatementTrace `json:"statements"`
}

// StatementTrace is one statement's evaluation.
type StatementTrace struct {
	Index   int    `json:"index"`
	Sid     string `json:"sid,omitempty"`
	Effect  Effect `json:"effect"`
	Matched bool   `json:"matched"`
	// Mismatch is the first element that did not match: "principal",
	// "action", "resource" or "condition"; empty when Matched.
	Mismatch string `json:"mismatch,omitempty"`
	// Detail explains a principal, action or resource mismatch.
	Detail string `json:"detail,omitempty"`
	// PrincipalMatch, for a matched statement of a resource-based policy,
	// is how its Principal names the request's principal: "principal"
	// (itself), "parent" (its role or IAM user) or "account".
	PrincipalMatch string `json:"principalMatch,omitempty"`
	// Condition is the first condition that did not hold.
	Condition *ConditionTrace `json:"condition,omitempty"`
	Start     Position        `json:"start"`
	End       Position        `json:"end"`
}

// ConditionTrace describes a condition that did not hold.
type ConditionTrace struct {
	Operator string `json:"operator"`
	Key      string `json:"key"`
	// Expected are the policy's values as written.
	Expected []string `json:"expected"`
	// Resolved are the policy's values with variables substituted; present
	// only when a value has variables. Values whose variable has no value
	// are left out (they match nothing).
	Resolved []string `json:"resolved,omitempty"`
	// UnresolvedVariables are variable keys that had no value.
	UnresolvedVariables []string `json:"unresolvedVariables,omitempty"`
	// Actual are the request's values for Key (absent when KeyMissing).
	Actual     []string `json:"actual,omitempty"`
	KeyMissing bool     `json:"keyMissing,omitempty"`
	// Reason says how the comparison failed.
	Reason string `json:"reason"`
}

// MarshalText encodes the effect as "Allow" or "Deny".
func (e Effect) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText decodes "Allow" or "Deny".
func (e *Effect) UnmarshalText(b []byte) error {
	switch string(b) {
	case "Allow":
		*e = Allow
	case "Deny":
		*e = Deny
	default:
		return &Error{Code: CodeInvalidInput, Message: "unknown effect " + string(b), Err: ErrInvalidInput}
	}
	return nil
}

type reasonKind uint8

const (
	reasonAllowed reasonKind = iota + 1
	reasonDenied
	reasonResourceDirect
	reasonNoAllow
	reasonResourceAccountOnly
	reasonBoundary
	reasonSession
)

type traceBuilder struct {
	req         *Request
	policies    []PolicyTrace
	missing     []string
	missingSeen map[string]bool
	reason      reasonKind
	// sim, when set, replaces the full trace with the simulator's summary
	// (deciding statements and missing keys only) and lets it stop an
	// evaluation whose request was cancelled.
	sim *simCollector
}

func newTraceBuilder(req *Request) *traceBuilder {
	tb := &traceBuilder{req: req, missingSeen: map[string]bool{}}
	return tb
}

func (tb *traceBuilder) beginPolicy(l Layer, index int, p *Policy) {
	if tb.sim != nil {
		tb.sim.beginPolicy(l, index, p)
		return
	}
	tb.policies = append(tb.policies, PolicyTrace{Layer: l, Index: index, ID: p.ID, Outcome: "none", Statements: []StatementTrace{}})
}

func (tb *traceBuilder) statement(p *Policy, si int, cs *cstmt, r *stmtResult) {
	if tb.sim != nil {
		tb.sim.statement(tb.req, si, cs, r)
		return
	}
	pt := &tb.policies[len(tb.policies)-1]
	st := &p.Statements[si]
	t := StatementTrace{
		Index:   si,
		Sid:     st.Sid,
		Effect:  st.Effect,
		Matched: r.match,
		Start:   st.Start,
		End:     st.End,
	}
	req := tb.req
	switch r.mismatch {
	case mismatchPrincipal:
		t.Mismatch = "principal"
		if cs.notPrin {
			t.Detail = "principal " + principalString(&req.Principal) + " is excluded by NotPrincipal"
		} else {
			t.Detail = "principal " + principalString(&req.Principal) + " is not named by Principal"
		}
	case mismatchAction:
		t.Mismatch = "action"
		if cs.notAction {
			t.Detail = "action " + strconv.Quote(req.Action) + " is excluded by NotAction " + quoteList(st.NotAction)
		} else {
			t.Detail = "action " + strconv.Quote(req.Action) + " matches none of Action " + quoteList(st.Action)
		}
	case mismatchResource:
		t.Mismatch = "resource"
		if cs.notRes {
			t.Detail = "resource " + strconv.Quote(req.Resource) + " is excluded by NotResource " + quoteList(st.NotResource)
		} else {
			t.Detail = "resource " + strconv.Quote(req.Resource) + " matches none of Resource " + quoteList(st.Resource)
		}
	case mismatchCondition:
		t.Mismatch = "condition"
		t.Condition = conditionTrace(&cs.conds[r.cond], r, req.Context)
	}
	if r.match && cs.prin != nil && pt.Layer == LayerResource {
		switch r.pm {
		case pmDirect:
			t.PrincipalMatch = "principal"
		case pmParent:
			t.PrincipalMatch = "parent"
		case pmAccount:
			t.PrincipalMatch = "account"
		}
	}
	if r.match || r.mismatch == mismatchCondition {
		for _, k := range cs.keys {
			if _, ok := req.Context.Get(k); !ok {
				if fk := foldKey(k); !tb.missingSeen[fk] {
					tb.missingSeen[fk] = true
					tb.missing = append(tb.missing, k)
				}
			}
		}
	}
	if r.match {
		switch {
		case st.Effect == Deny:
			pt.Outcome = "deny"
		case pt.Outcome == "none":
			pt.Outcome = "allow"
		}
	}
	pt.Statements = append(pt.Statements, t)
}

func conditionTrace(c *ccond, r *stmtResult, ctx *Context) *ConditionTrace {
	ct := &ConditionTrace{Operator: c.rawOp, Key: c.rawKey, Expected: append([]string{}, c.values...)}
	hasVars := false
	var resolved []string
	for i := range c.vals {
		cv := &c.vals[i]
		n := cv.g.nvars
		if c.op.base.fam == famARN {
			n = cv.arn.nvars()
		}
		if n == 0 {
			resolved = append(resolved, c.values[i])
			continue
		}
		hasVars = true
		var vv []string
		var ok bool
		if c.op.base.fam == famARN {
			if vv, ok = resolveARNVars(cv.arn, ctx, nil); ok {
				resolved = append(resolved, substituteARN(cv.arn, vv))
			}
		} else if vv, ok = resolveVars(cv.g.toks, ctx, nil); ok {
			resolved = append(resolved, substitute(cv.g.toks, vv))
		}
		if !ok {
			collectUnresolved(cv, c.op.base.fam, ctx, &ct.UnresolvedVariables)
		}
	}
	if hasVars {
		ct.Resolved = resolved
	}
	vals, present := ctx.lookup(c.key, c.keyHash)
	if present {
		ct.Actual = append([]string{}, vals...)
	}
	switch r.why {
	case whyKeyMissing:
		ct.KeyMissing = true
		if present {
			ct.Reason = "the key's value is an empty set"
		} else {
			ct.Reason = "key missing from the request context"
		}
		if c.op.set == setAnyValue {
			ct.Reason += " (ForAnyValue is false for an empty set)"
		}
	case whyNoMatch:
		ct.Reason = "the request value matches none of the policy values"
	case whyNegatedMatch:
		ct.Reason = "the request value matches a policy value of a negated operator"
	case whyMultiValued:
		ct.Reason = "the key has " + strconv.Itoa(len(vals)) + " values and the operator is single-valued (a multivalued key needs ForAnyValue: or ForAllValues:)"
	case whyAnyNone:
		ct.Reason = "no request value qualifies (ForAnyValue needs at least one)"
	case whyAllOne:
		v := ""
		if r.valIdx >= 0 && r.valIdx < len(vals) {
			v = vals[r.valIdx]
		}
		ct.Reason = "request value " + strconv.Quote(v) + " does not qualify (ForAllValues needs every value to)"
	case whyNullMismatch:
		if present && len(vals) > 0 {
			ct.Reason = "the key is present"
		} else {
			ct.Reason = "the key is missing"
			ct.KeyMissing = true
		}
	}
	return ct
}

func collectUnresolved(cv *cval, fam family, ctx *Context, dst *[]string) {
	check := func(t *tok) {
		vals, ok := ctx.lookup(t.s, t.hash)
		if !(ok && len(vals) == 1) && !t.hasDef {
			for _, k := range *dst {
				if strings.EqualFold(k, t.raw) {
					return
				}
			}
			*dst = append(*dst, t.raw)
		}
	}
	if fam == famARN {
		cv.arn.forEachVar(check)
		return
	}
	for i := range cv.g.toks {
		if cv.g.toks[i].kind == tokVar {
			check(&cv.g.toks[i])
		}
	}
}

func substituteARN(a *arnPattern, vals []string) string {
	if a.any {
		return "*"
	}
	if !a.split {
		return substitute(a.whole.toks, vals)
	}
	var b strings.Builder
	for i := range a.segs {
		if i > 0 {
			b.WriteByte(':')
		}
		n := a.segs[i].nvars
		b.WriteString(substitute(a.segs[i].toks, vals[:n]))
		vals = vals[n:]
	}
	return b.String()
}

func principalString(p *Principal) string {
	if p.Type == "" && p.ID == "" {
		return "(none)"
	}
	return string(p.Type) + " " + strconv.Quote(p.ID)
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func (tb *traceBuilder) finish(d Decision) *Trace {
	t := &Trace{Decision: d, Policies: tb.policies, MissingContextKeys: tb.missing}
	if t.Policies == nil {
		t.Policies = []PolicyTrace{}
	}
	req := tb.req
	t.Request = TraceRequest{Action: req.Action, Resource: req.Resource}
	if req.Principal.Type != "" || req.Principal.ID != "" {
		p := req.Principal
		t.Request.Principal = &p
	}
	switch tb.reason {
	case reasonDenied:
		t.Reason = "explicitly denied by " + tb.firstMatch(Deny)
	case reasonResourceDirect:
		t.Reason = "allowed by " + tb.firstMatch(Allow) + ", which names the principal"
	case reasonNoAllow:
		t.Reason = "implicitly denied: no statement allows the request"
	case reasonResourceAccountOnly:
		t.Reason = "implicitly denied: a resource-based policy allows the request only through the principal's account, and no identity-based policy allows it"
	case reasonBoundary:
		t.Reason = "implicitly denied: allowed by the permissions policies but not by the permissions boundary"
	case reasonSession:
		t.Reason = "implicitly denied: allowed by the permissions policies but not by the session policy"
	default:
		t.Reason = "allowed by " + tb.firstMatch(Allow)
	}
	return t
}

// firstMatch names the first matching statement with effect e.
func (tb *traceBuilder) firstMatch(e Effect) string {
	for _, p := range tb.policies {
		for _, s := range p.Statements {
			if s.Matched && s.Effect == e {
				name := "statement " + strconv.Itoa(s.Index)
				if s.Sid != "" {
					name = "statement " + strconv.Quote(s.Sid)
				}
				return name + " of " + string(p.Layer) + " policy " + strconv.Itoa(p.Index)
			}
		}
	}
	return "a statement"
}
