package policy

import (
	"context"
	"errors"
	"strconv"
	"unicode/utf8"
)

// The simulator is built for hostile input: SimulateCustomPolicy lets any
// caller allowed iam:Simulate* send policies, actions and resources, and
// the results are a product of all three. NewSimulation prices the whole
// simulation before evaluating anything (Cost) and refuses it above
// SimLimits.MaxChecks; Page then evaluates only the results it returns,
// records only what a result reports (not a full Trace), and stops when
// its context is cancelled.

// ErrSimulationTooLarge is the cause of a simulation refused because its
// work (Cost) or its context exceeds SimLimits.
var ErrSimulationTooLarge = errors.New("policy: simulation exceeds its work limit")

// Default simulation limits (SimLimits' zero fields).
const (
	// DefaultSimMaxChecks allows, for example, 300 actions × 10 resources
	// against 250 statements, or 100,000 action × resource pairs against
	// one Allow statement; it refuses 300 actions × 300 resources against
	// 50 statements. All pages together it is 50–300 ms of evaluation on
	// one core (4–30 ns a check, whatever the patterns).
	DefaultSimMaxChecks = 10_000_000
	// DefaultSimMaxContextEntries bounds the context entries of one
	// simulation (AWS documents no limit; a request context has about 20
	// keys).
	DefaultSimMaxContextEntries = 100
	// DefaultSimMaxContextValues bounds the values of one context entry
	// (aws:TagKeys holds at most 50).
	DefaultSimMaxContextValues = 100
	// DefaultSimMaxContextValueLength bounds one context value, in
	// characters (ARNs are at most 2048).
	DefaultSimMaxContextValueLength = 2048
	// DefaultSimMaxPageEntries bounds the matched statements and missing
	// context keys of one page together.
	DefaultSimMaxPageEntries = 10_000
)

// SimLimits bounds the work and the output of one simulation. A zero field
// takes its Default value.
type SimLimits struct {
	// MaxChecks bounds Cost().Total: every action × resource pair times
	// the checks one pair costs.
	MaxChecks int64
	// MaxContextEntries, MaxContextValues (per entry) and
	// MaxContextValueLength (characters) bound the context.
	MaxContextEntries     int
	MaxContextValues      int
	MaxContextValueLength int
	// MaxPageEntries ends a page early (never before its first result)
	// once its results hold this many matched statements and missing
	// context keys together; IAM, too, "might return fewer results, even
	// when there are more results available".
	MaxPageEntries int
}

func (l SimLimits) withDefaults() SimLimits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxChecks <= 0 {
		l.MaxChecks = DefaultSimMaxChecks
	}
	def(&l.MaxContextEntries, DefaultSimMaxContextEntries)
	def(&l.MaxContextValues, DefaultSimMaxContextValues)
	def(&l.MaxContextValueLength, DefaultSimMaxContextValueLength)
	def(&l.MaxPageEntries, DefaultSimMaxPageEntries)
	return l
}

// SimCost is the price of a simulation, computed before any evaluation.
type SimCost struct {
	Actions    int
	Resources  int
	Statements int // in every policy of the simulation
	// PerPair is an upper bound of the checks that evaluating one action on
	// one resource costs: a fixed share for the result, one per statement, per Action, Resource and
	// Principal entry and per condition value compared (times the request
	// values of its key), and for wildcard patterns with '?' or policy
	// variables, whose matching is quadratic, a share of
	// len(subject) × min(len(pattern), len(subject)).
	PerPair int64
	// Total is Actions × Resources × PerPair (saturating).
	Total int64
}

// Simulation is a checked, priced simulation whose results (one per action
// and resource, actions outer) are computed a page at a time. It is safe
// for concurrent use.
type Simulation struct {
	set       PolicySet
	src       map[Layer][]*SimPolicy
	actions   []string
	resources []string
	caller    Principal
	ctx       *Context
	lim       SimLimits
	cost      SimCost
	stmtCost  map[*Policy][]int64
}

// NewSimulation checks the input and prices it. It fails with an *Error
// whose Code is CodeInvalidInput: its cause is ErrInvalidInput for a
// context value that does not fit its declared type, several values for a
// single-valued type, an unknown layer or type, and ErrSimulationTooLarge
// when the context or the cost exceeds lim (the message says the limit and
// how to split the request).
func NewSimulation(in SimulationInput, lim SimLimits) (*Simulation, error) {
	lim = lim.withDefaults()
	ctx, err := simContext(in.Context, lim)
	if err != nil {
		return nil, err
	}
	s := &Simulation{src: map[Layer][]*SimPolicy{}, actions: in.Actions, resources: in.Resources, caller: in.Caller, ctx: ctx, lim: lim}
	for i := range in.Policies {
		sp := &in.Policies[i]
		if sp.Policy == nil {
			return nil, invalidInput("policy " + strconv.Quote(sp.ID) + " is nil")
		}
		switch sp.Layer {
		case LayerIdentity:
			s.set.Identity = append(s.set.Identity, sp.Policy)
		case LayerSession:
			s.set.Session = append(s.set.Session, sp.Policy)
		case LayerBoundary:
			s.set.Boundary = append(s.set.Boundary, sp.Policy)
		case LayerResource:
			s.set.Resource = append(s.set.Resource, sp.Policy)
		default:
			return nil, invalidInput("policy " + strconv.Quote(sp.ID) + " has unknown layer " + strconv.Quote(string(sp.Layer)))
		}
		s.src[sp.Layer] = append(s.src[sp.Layer], sp)
	}
	if len(s.resources) == 0 {
		s.resources = []string{"*"}
	}
	s.price()
	if s.cost.Total > lim.MaxChecks {
		return nil, s.tooLarge()
	}
	return s, nil
}

// Cost returns the simulation's price.
func (s *Simulation) Cost() SimCost { return s.cost }

// Len is the number of results: actions × resources.
func (s *Simulation) Len() int { return len(s.actions) * len(s.resources) }

// tooLarge says by how much the simulation is over its limit and how to
// split it.
func (s *Simulation) tooLarge() *Error {
	c := s.cost
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	msg := "The simulation needs " + itoa(c.Total) + " policy checks (" + strconv.Itoa(c.Actions) + " actions x " +
		strconv.Itoa(c.Resources) + " resources x " + itoa(c.PerPair) + " checks per action and resource, for " +
		strconv.Itoa(c.Statements) + " policy statements); the limit is " + itoa(s.lim.MaxChecks) + " per request. "
	pairs := s.lim.MaxChecks / max(c.PerPair, 1)
	switch {
	case pairs == 0:
		msg += "The policies alone exceed it: simulate fewer or smaller policies."
	case pairs >= int64(c.Resources):
		msg += "Split the request: at most " + itoa(pairs/int64(c.Resources)) + " ActionNames per call with these " +
			strconv.Itoa(c.Resources) + " ResourceArns."
	default:
		msg += "Split the request: at most " + itoa(pairs) + " ResourceArns per call, one action at a time."
	}
	return &Error{Code: CodeInvalidInput, Message: msg, Err: ErrSimulationTooLarge}
}

// result index i is action i / len(resources) on resource i % len(resources).
func (s *Simulation) request(i int) Request {
	return Request{Principal: s.caller, Action: s.actions[i/len(s.resources)], Resource: s.resources[i%len(s.resources)], Context: s.ctx}
}

// Page evaluates results start .. start+n-1 (fewer at the end, or when the
// page reaches MaxPageEntries) and returns them with the index of the next
// result; next == Len() when there are no more. Only these results are
// evaluated, so a page costs at most n/Len() of Cost().Total. Page checks
// ctx as it goes and returns ctx's error, and no results, once ctx is done.
func (s *Simulation) Page(ctx context.Context, start, n int) ([]SimResult, int, error) {
	total := s.Len()
	if start < 0 {
		start = 0
	}
	if start >= total || n <= 0 {
		return []SimResult{}, min(start, total), nil
	}
	end := total
	if n < total-start {
		end = start + n
	}
	col := &simCollector{ctx: ctx, costs: s.stmtCost, seen: map[string]uint32{}}
	if err := ctx.Err(); err != nil {
		return nil, start, err
	}
	tb := &traceBuilder{sim: col}
	out := make([]SimResult, 0, end-start)
	entries := 0
	for i := start; i < end; i++ {
		if i > start && entries >= s.lim.MaxPageEntries {
			return out, i, nil
		}
		req := s.request(i)
		col.reset()
		col.tick(1)
		tb.req = &req
		d := s.set.evaluate(&req, tb)
		if col.stop {
			return nil, i, col.err
		}
		r := s.summarize(&req, d, col)
		entries += len(r.MatchedStatements) + len(r.MissingContextValues)
		out = append(out, r)
	}
	return out, end, nil
}

// Explain returns result i (0 ≤ i < Len()) with its full Trace (keyless's
// addition). It costs about ten times a result of Page: callers explain a
// few results, not a product.
func (s *Simulation) Explain(i int) SimResult {
	req := s.request(i)
	d, tr := s.set.Explain(&req)
	r := SimResult{
		Action: req.Action, Resource: req.Resource, Decision: d,
		MatchedStatements:    []MatchedStatement{},
		MissingContextValues: append([]string{}, tr.MissingContextKeys...),
		Trace:                tr,
	}
	var matches []simMatch
	for _, pt := range tr.Policies {
		for _, st := range pt.Statements {
			if st.Matched {
				matches = append(matches, simMatch{layer: pt.Layer, policy: pt.Index, stmt: st.Index, effect: st.Effect})
			}
		}
	}
	s.fill(&r, d, matches)
	return r
}

func (s *Simulation) summarize(req *Request, d Decision, col *simCollector) SimResult {
	r := SimResult{
		Action: req.Action, Resource: req.Resource, Decision: d,
		MatchedStatements:    []MatchedStatement{},
		MissingContextValues: append([]string{}, col.missing...),
	}
	s.fill(&r, d, col.matches)
	return r
}

// fill sets the deciding statements and the boundary detail from the
// matched statements, in evaluation order.
func (s *Simulation) fill(r *SimResult, d Decision, matches []simMatch) {
	want := Allow
	if d == ExplicitDeny {
		want = Deny
	}
	boundaryAllow, boundaryDeny := false, false
	for _, m := range matches {
		sp := s.src[m.layer][m.policy]
		if m.layer == LayerBoundary {
			boundaryAllow = boundaryAllow || m.effect == Allow
			boundaryDeny = boundaryDeny || m.effect == Deny
		}
		if d != ImplicitDeny && m.effect == want {
			st := &sp.Policy.Statements[m.stmt]
			r.MatchedStatements = append(r.MatchedStatements, MatchedStatement{
				SourcePolicyID:   sp.ID,
				SourcePolicyType: sp.Type,
				StartPosition:    st.Start,
				EndPosition:      st.End,
			})
		}
	}
	if len(s.set.Boundary) > 0 {
		r.PermissionsBoundaryDecisionDetail = &BoundaryDecisionDetail{AllowedByPermissionsBoundary: boundaryAllow && !boundaryDeny}
	}
}

// simMatch is one statement that applied.
type simMatch struct {
	layer  Layer
	policy int
	stmt   int
	effect Effect
}

// simCheckEvery is how many checks the collector lets pass between looks
// at the context: about 50 µs of evaluation.
const simCheckEvery = 4096

// simCollector is the simulator's trace: it records what a result reports
// and nothing else, and stops the evaluation once its context is done.
type simCollector struct {
	ctx     context.Context
	costs   map[*Policy][]int64
	cur     []int64    // the current policy's statement costs
	keys    [][]keyRef // the current policy's statement keys
	layer   Layer
	index   int
	budget  int64 // checks until the next look at ctx
	stop    bool
	err     error
	matches []simMatch
	missing []string
	seen    map[string]uint32 // folded missing key → generation
	gen     uint32
}

func (c *simCollector) reset() {
	c.matches = c.matches[:0]
	c.missing = c.missing[:0]
	c.gen++
}

// tick accounts for n checks and looks at the context when they add up.
func (c *simCollector) tick(n int64) {
	c.budget -= n
	if c.budget > 0 {
		return
	}
	c.budget = simCheckEvery
	if err := c.ctx.Err(); err != nil {
		c.stop, c.err = true, err
	}
}

func (c *simCollector) beginPolicy(l Layer, index int, p *Policy) {
	c.layer, c.index, c.cur, c.keys = l, index, c.costs[p], p.c.keys
}

func (c *simCollector) statement(req *Request, si int, cs *cstmt, r *stmtResult) {
	if si < len(c.cur) {
		c.tick(c.cur[si])
	}
	if r.match {
		eff := Allow
		if cs.deny {
			eff = Deny
		}
		c.matches = append(c.matches, simMatch{layer: c.layer, policy: c.index, stmt: si, effect: eff})
	}
	if !r.match && r.mismatch != mismatchCondition {
		return
	}
	for i, k := range c.keys[si] {
		if _, ok := req.Context.lookup(k.fold, k.hash); ok {
			continue
		}
		if c.seen[k.fold] != c.gen {
			c.seen[k.fold] = c.gen
			c.missing = append(c.missing, cs.keys[i])
		}
	}
}

// simContext builds a Context from typed entries, checking each value
// against its type and the entries against lim.
func simContext(entries []ContextEntry, lim SimLimits) (*Context, error) {
	if len(entries) > lim.MaxContextEntries {
		return nil, simTooLarge("The simulation has " + strconv.Itoa(len(entries)) + " context entries; the limit is " + strconv.Itoa(lim.MaxContextEntries) + ".")
	}
	ctx := NewContext(len(entries))
	for _, e := range entries {
		if e.Key == "" {
			return nil, invalidInput("a context entry has no key")
		}
		if len(e.Values) > lim.MaxContextValues {
			return nil, simTooLarge("Context key " + strconv.Quote(e.Key) + " has " + strconv.Itoa(len(e.Values)) + " values; the limit is " + strconv.Itoa(lim.MaxContextValues) + " per key.")
		}
		for _, v := range e.Values {
			if n := utf8.RuneCountInString(v); n > lim.MaxContextValueLength {
				return nil, simTooLarge("A value of context key " + strconv.Quote(e.Key) + " has " + strconv.Itoa(n) + " characters; the limit is " + strconv.Itoa(lim.MaxContextValueLength) + ".")
			}
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

func simTooLarge(msg string) *Error {
	return &Error{Code: CodeInvalidInput, Message: msg, Err: ErrSimulationTooLarge}
}
