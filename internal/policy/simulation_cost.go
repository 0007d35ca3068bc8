package policy

import "math"

// Pricing a simulation: an upper bound, computed from the compiled
// policies and the longest subjects (action names, resources, context
// values), of the work one action × resource pair costs. One check is
// about one statement element compared, 4–30 ns (measured by
// BenchmarkSimulationCheck's workloads); a result costs pairChecks
// on its own (building it); pattern matching that is linear in the subject
// counts one check per charsPerCheck characters, and matching that is
// quadratic (wildcard patterns with '?' or policy variables, see
// matchTokens; about 2.5 ns per step) counts len(subject) ×
// min(len(pattern), len(subject)) / quadPerCheck.
const (
	pairChecks    = 16
	charsPerCheck = 64
	quadPerCheck  = 4
)

type pricer struct {
	action, resource int // longest action name and resource, in bytes
	varLen           int // longest context value: what a variable can expand to
	ctx              *Context
}

func (s *Simulation) price() {
	pr := pricer{ctx: s.ctx}
	for _, a := range s.actions {
		pr.action = max(pr.action, len(a))
	}
	for _, r := range s.resources {
		pr.resource = max(pr.resource, len(r))
	}
	for _, v := range s.ctx.vals {
		pr.varLen = max(pr.varLen, len(v))
	}
	s.stmtCost = map[*Policy][]int64{}
	c := SimCost{Actions: len(s.actions), Resources: len(s.resources), PerPair: pairChecks}
	for _, layer := range [][]*Policy{s.set.Identity, s.set.Resource, s.set.Boundary, s.set.Session} {
		for _, p := range layer {
			costs, ok := s.stmtCost[p]
			if !ok {
				costs = make([]int64, len(p.c.stmts))
				for i := range p.c.stmts {
					costs[i] = pr.statement(&p.c.stmts[i])
				}
				s.stmtCost[p] = costs
			}
			c.Statements += len(costs)
			for _, sc := range costs {
				c.PerPair = satAdd(c.PerPair, sc)
			}
		}
	}
	c.Total = satMul(satMul(int64(c.Actions), int64(c.Resources)), c.PerPair)
	s.cost = c
}

func (pr *pricer) statement(cs *cstmt) int64 {
	c := int64(1)
	if p := cs.prin; p != nil {
		c += int64(len(p.awsARNs) + len(p.accounts) + len(p.federated) + len(p.service) + len(p.canonical))
	}
	for i := range cs.actions {
		c = satAdd(c, pr.glob(&cs.actions[i], pr.action))
	}
	for i := range cs.res {
		c = satAdd(c, pr.arn(&cs.res[i], pr.resource))
	}
	for i := range cs.conds {
		cd := &cs.conds[i]
		vals, _ := pr.ctx.lookup(cd.key, cd.keyHash)
		longest := 0
		for _, v := range vals {
			longest = max(longest, len(v))
		}
		per := 1 + int64(longest)/charsPerCheck // reading the request value
		for j := range cd.vals {
			per = satAdd(per, pr.value(cd, &cd.vals[j], longest))
		}
		c = satAdd(c, satMul(int64(max(len(vals), 1)), per))
	}
	return c
}

// value prices comparing one request value of length n with one policy
// value.
func (pr *pricer) value(cd *ccond, cv *cval, n int) int64 {
	switch cd.op.base.fam {
	case famString:
		return pr.glob(&cv.g, n)
	case famARN:
		return pr.arn(cv.arn, n)
	case famBool:
		if cv.bvar {
			return pr.glob(&cv.g, n)
		}
	}
	return 1
}

func (pr *pricer) arn(a *arnPattern, n int) int64 {
	switch {
	case a.any:
		return 1
	case !a.split:
		return pr.glob(&a.whole, n)
	}
	c := 1 + int64(n)/charsPerCheck // splitting the subject
	for i := range a.segs {
		c = satAdd(c, pr.glob(&a.segs[i], n))
	}
	return c
}

// glob prices matching g against a subject of at most n bytes.
func (pr *pricer) glob(g *glob, n int) int64 {
	m := g.nvars * pr.varLen
	for _, t := range g.toks {
		switch t.kind {
		case tokLit:
			m += len(t.s)
		case tokQMark, tokStar:
			m++
		}
	}
	switch g.kind {
	case globAny:
		return 1
	case globExact, globPrefix, globSuffix, globStars:
		return 1 + int64(n+m)/charsPerCheck
	}
	return 1 + int64(g.nvars) + int64(m)/charsPerCheck + satMul(int64(n), int64(min(m, n)))/quadPerCheck
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}
