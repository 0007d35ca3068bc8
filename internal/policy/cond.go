package policy

import (
	"bytes"
	"strings"
)

// condWhy says why a condition did not hold.
type condWhy uint8

const (
	whyNone             condWhy = iota
	whyKeyMissing               // positive operator, key absent (or empty data set)
	whyNoMatch                  // single value matched no policy value
	whyNegatedMatch             // negated operator: the value matched a policy value
	whyMultiValued              // single-valued operator on a multivalued key
	whyAnyNone                  // ForAnyValue: no request value qualified
	whyAllOne                   // ForAllValues: a request value did not qualify
	whyNullMismatch             // Null: presence differs from the policy's
	whyUnresolvedValues         // every policy value had an unresolvable variable
)

// varBuf is scratch space for resolved variables; patterns with more
// variables than this spill to the heap.
type varBuf [8]string

// eval evaluates the condition against ctx. AWS's rules ("Condition
// operators", "Conditions with multiple context keys or values",
// "Single-valued vs. multivalued context keys"):
//
//   - values listed for a key are ORed; for a negated operator they are
//     NORed (the request value must match none);
//   - a missing key makes a positive operator false and a negated one true;
//     ...IfExists makes a missing key true; Null tests presence only;
//   - ForAnyValue: is true when some request value qualifies, false for a
//     missing key or empty set; ForAllValues: is true when every request
//     value qualifies, and also for a missing key or an empty set (AWS's
//     documented "vacuous truth", which makes it dangerous in Allow
//     statements);
//   - a single-valued operator compared with a multivalued key (more than
//     one value) is not documented by AWS. Here the multivalued value
//     matches no policy value: a positive operator is false and a negated
//     one true, as for any value that cannot match. This is the observed
//     positive-operator behaviour (a bare StringEquals on aws:CalledVia
//     with two services in the chain denies) and keeps negation
//     consistent.
//
// A request value that cannot be read as the operator's type (a number,
// date, IP address, boolean or base64) matches no policy value.
func (c *ccond) eval(ctx *Context) (bool, condWhy, int) {
	vals, present := ctx.lookup(c.key, c.keyHash)
	b := &c.op.base
	if b.fam == famNull {
		absent := !present || len(vals) == 0
		for i := range c.vals {
			if c.vals[i].b == absent {
				return true, whyNone, -1
			}
		}
		return false, whyNullMismatch, -1
	}
	switch c.op.set {
	case setAnyValue:
		if emptySet(vals) {
			if c.op.ifExists {
				return true, whyNone, -1
			}
			return false, whyKeyMissing, -1
		}
		for _, v := range vals {
			if c.matchValue(v, ctx) != b.negated {
				return true, whyNone, -1
			}
		}
		return false, whyAnyNone, -1
	case setAllValues:
		if emptySet(vals) {
			return true, whyNone, -1
		}
		for i, v := range vals {
			if c.matchValue(v, ctx) == b.negated {
				return false, whyAllOne, i
			}
		}
		return true, whyNone, -1
	}
	if len(vals) == 0 {
		if c.op.ifExists || b.negated {
			return true, whyNone, -1
		}
		return false, whyKeyMissing, -1
	}
	if len(vals) > 1 {
		if b.negated {
			return true, whyNone, -1
		}
		return false, whyMultiValued, -1
	}
	m := c.matchValue(vals[0], ctx)
	switch {
	case m && b.negated:
		return false, whyNegatedMatch, 0
	case !m && !b.negated:
		return false, whyNoMatch, 0
	}
	return true, whyNone, -1
}

// emptySet reports a null data set for the set operators: no values, or a
// single empty string ("if the context key value resolves to a null data
// set, such as an empty string").
func emptySet(vals []string) bool {
	return len(vals) == 0 || len(vals) == 1 && vals[0] == ""
}

// matchValue reports whether the request value rv matches any policy value
// under the (positive) base operator.
func (c *ccond) matchValue(rv string, ctx *Context) bool {
	b := &c.op.base
	switch b.fam {
	case famString:
		for i := range c.vals {
			if c.vals[i].matchString(rv, b.cmp, ctx) {
				return true
			}
		}
	case famNumeric:
		n, ok := parseNumber(rv)
		if !ok {
			return false
		}
		for i := range c.vals {
			if cmpHolds(compareNumbers(n, c.vals[i].num), b.cmp) {
				return true
			}
		}
	case famDate:
		t, ok := parseDate(rv)
		if !ok {
			return false
		}
		for i := range c.vals {
			if cmpHolds(t.Compare(c.vals[i].t), b.cmp) {
				return true
			}
		}
	case famBool:
		rb, ok := parseBool(rv)
		if !ok {
			return false
		}
		for i := range c.vals {
			cv := &c.vals[i]
			pb := cv.b
			if cv.bvar {
				s, ok := cv.resolveString(ctx)
				if !ok {
					continue
				}
				if pb, ok = parseBool(s); !ok {
					continue
				}
			}
			if pb == rb {
				return true
			}
		}
	case famBinary:
		var buf [256]byte
		rb, ok := decodeBinary(rv, buf[:])
		if !ok {
			return false
		}
		for i := range c.vals {
			if bytes.Equal(rb, c.vals[i].bin) {
				return true
			}
		}
	case famIP:
		a, ok := parseRequestIP(rv)
		if !ok {
			return false
		}
		for i := range c.vals {
			if c.vals[i].ip.Contains(a) {
				return true
			}
		}
	case famARN:
		for i := range c.vals {
			a := c.vals[i].arn
			var buf varBuf
			vv, ok := resolveARNVars(a, ctx, buf[:0])
			if ok && a.match(rv, vv) {
				return true
			}
		}
	}
	return false
}

func cmpHolds(c int, k cmpKind) bool {
	switch k {
	case cmpEq:
		return c == 0
	case cmpLT:
		return c < 0
	case cmpLE:
		return c <= 0
	case cmpGT:
		return c > 0
	case cmpGE:
		return c >= 0
	}
	return false
}

// matchString applies a string operator. A value whose variable cannot be
// resolved is "effectively null": it matches nothing.
func (cv *cval) matchString(rv string, k cmpKind, ctx *Context) bool {
	if cv.g.nvars == 0 {
		if k == cmpEqFold {
			return strings.EqualFold(rv, cv.fold)
		}
		return cv.g.match(rv, nil)
	}
	var buf varBuf
	vv, ok := resolveVars(cv.g.toks, ctx, buf[:0])
	if !ok {
		return false
	}
	if k == cmpEqFold {
		return strings.EqualFold(rv, substitute(cv.g.toks, vv))
	}
	return cv.g.match(rv, vv)
}

// resolveString returns the value with its variables substituted.
func (cv *cval) resolveString(ctx *Context) (string, bool) {
	var buf varBuf
	vv, ok := resolveVars(cv.g.toks, ctx, buf[:0])
	if !ok {
		return "", false
	}
	return substitute(cv.g.toks, vv), true
}

// substitute renders literal and variable tokens (no wildcards) as text.
func substitute(toks []tok, vals []string) string {
	var b strings.Builder
	vi := 0
	for _, t := range toks {
		switch t.kind {
		case tokVar:
			b.WriteString(vals[vi])
			vi++
		case tokStar:
			b.WriteByte('*')
		case tokQMark:
			b.WriteByte('?')
		default:
			b.WriteString(t.s)
		}
	}
	return b.String()
}

// resolveARNVars resolves an ARN pattern's variables in pattern order.
func resolveARNVars(a *arnPattern, ctx *Context, dst []string) ([]string, bool) {
	if a.any {
		return dst, true
	}
	if !a.split {
		if a.whole.nvars == 0 {
			return dst, true
		}
		return resolveVars(a.whole.toks, ctx, dst)
	}
	ok := true
	for i := range a.segs {
		if a.segs[i].nvars == 0 {
			continue
		}
		if dst, ok = resolveVars(a.segs[i].toks, ctx, dst); !ok {
			return dst, false
		}
	}
	return dst, true
}

// prinMatch grades how a Principal element names the request's principal.
// It matters for resource-based policies ("Policy evaluation logic",
// resource-based policies and implicit denies in other policy types):
// a grant to the principal itself is not limited by implicit denies in
// identity, boundary or session policies; a grant to the role (or IAM
// user) a session came from is limited by boundaries and session policies;
// a grant to the account delegates to the account's identity policies.
type prinMatch uint8

const (
	pmNone prinMatch = iota
	pmAccount
	pmParent
	pmDirect
)

func (c *cprincipals) match(p *Principal) prinMatch {
	if c.wildcard {
		return pmDirect
	}
	switch p.Type {
	case PrincipalAnonymous:
		if c.awsAny {
			return pmDirect
		}
	case PrincipalAWS:
		if c.awsAny {
			return pmDirect
		}
		best := pmNone
		for _, a := range c.awsARNs {
			if a == p.ID {
				return pmDirect
			}
			if p.ParentARN != "" && a == p.ParentARN {
				best = pmParent
			}
		}
		if best != pmNone {
			return best
		}
		if acct := p.account(); acct != "" {
			for _, a := range c.accounts {
				if a == acct {
					return pmAccount
				}
			}
		}
	case PrincipalFederated:
		for _, f := range c.federated {
			// Provider ARNs compare exactly; built-in provider names
			// (accounts.google.com) are host names, compared ignoring case.
			if f == p.ID || !strings.HasPrefix(f, "arn:") && strings.EqualFold(f, p.ID) {
				return pmDirect
			}
		}
	case PrincipalService:
		for _, s := range c.service {
			if strings.EqualFold(s, p.ID) {
				return pmDirect
			}
		}
	case PrincipalCanonicalUser:
		for _, s := range c.canonical {
			if s == p.ID {
				return pmDirect
			}
		}
	}
	return pmNone
}
