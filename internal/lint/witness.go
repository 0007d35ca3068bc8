package lint

// This file holds the search that turns a policy value into a candidate
// subject of another tenant: the intersection of the value (a StringLike
// pattern, a literal, a literal compared ignoring case) with a template of
// the issuer's subject grammar whose slots (owner, repository, branch, …)
// are either fixed or free. It is a shortest-path search over the product
// of the two: the pattern's '*' and '?' and the template's slot classes.
//
// It only proposes candidates. Whether a candidate is admitted is decided
// by policy.PolicySet.Evaluate; a pattern feature this search reads
// loosely (a ${...} variable is taken to match anything) costs at most a
// missed or a useless candidate, never a wrong verdict.

import "strings"

// charset is a set of ASCII bytes, with the byte used when any member
// will do.
type charset struct {
	bits [2]uint64
	fill byte
}

// newCharset builds a set from a spec of single bytes and ranges such as
// "a-zA-Z0-9-" (a '-' first or last is literal).
func newCharset(fill byte, spec string) *charset {
	c := &charset{fill: fill}
	for i := 0; i < len(spec); i++ {
		lo, hi := spec[i], spec[i]
		if i+2 < len(spec) && spec[i+1] == '-' {
			hi = spec[i+2]
			i += 2
		}
		for b := int(lo); b <= int(hi); b++ {
			c.add(byte(b))
		}
	}
	return c
}

// printableExcept is every printable ASCII byte (space to '~') but those
// in except.
func printableExcept(fill byte, except string) *charset {
	c := &charset{fill: fill}
	for b := byte(' '); b <= '~'; b++ {
		if strings.IndexByte(except, b) < 0 {
			c.add(b)
		}
	}
	return c
}

func (c *charset) add(b byte) { c.bits[b>>6] |= 1 << (b & 63) }

func (c *charset) has(b byte) bool { return b < 128 && c.bits[b>>6]&(1<<(b&63)) != 0 }

// The pattern side: a policy value as the operator reads it.
type pkind uint8

const (
	pLit  pkind = iota // one byte
	pAny               // '?': exactly one character
	pStar              // '*': any sequence
)

type ptok struct {
	kind pkind
	b    byte
}

type pattern struct {
	toks []ptok
	fold bool // StringEqualsIgnoreCase
}

// compilePattern reads value as an operator does: wild makes '*' and '?'
// wildcards (the Like operators), vars makes ${...} a policy variable,
// taken to match anything (it resolves from the request, and
// ${token...:sub} resolves to the caller's own subject); ${*}, ${?} and
// ${$} are the literal characters.
func compilePattern(value string, wild, vars, fold bool) pattern {
	p := pattern{fold: fold}
	star := func() {
		if n := len(p.toks); n == 0 || p.toks[n-1].kind != pStar {
			p.toks = append(p.toks, ptok{kind: pStar})
		}
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if vars && c == '$' && i+1 < len(value) && value[i+1] == '{' {
			if end := strings.IndexByte(value[i+2:], '}'); end >= 0 {
				inner := strings.TrimSpace(value[i+2 : i+2+end])
				switch inner {
				case "*", "?", "$":
					p.toks = append(p.toks, ptok{kind: pLit, b: inner[0]})
				default:
					star()
				}
				i += 2 + end
				continue
			}
		}
		if wild && c == '*' {
			star()
			continue
		}
		if wild && c == '?' {
			p.toks = append(p.toks, ptok{kind: pAny})
			continue
		}
		p.toks = append(p.toks, ptok{kind: pLit, b: c})
	}
	return p
}

// The template side, compiled for one assignment of its slots into a
// small NFA.
type nkind uint8

const (
	nLit   nkind = iota // consumes b
	nClass              // consumes one byte of cs
	nSplit              // no input: goes to next or alt
	nEnd
)

type nnode struct {
	kind      nkind
	b         byte
	cs        *charset
	slot      int8 // the free slot this byte belongs to, or -1
	next, alt int32
	altCost   int32 // nSplit: the cost of taking alt
}

// tpart is a piece of a template: literal text, or a slot.
type tpart struct {
	lit  string
	slot int8 // -1 for literal text
}

// template is a claim value written with {slot} placeholders, e.g.
// "repo:{owner}/{repo}:ref:refs/heads/{branch}".
type template []tpart

// parseTemplate reads "{name}" placeholders; index maps a name to its slot.
func parseTemplate(s string, index func(string) int8) template {
	var t template
	for s != "" {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			t = append(t, tpart{lit: s, slot: -1})
			break
		}
		if open > 0 {
			t = append(t, tpart{lit: s[:open], slot: -1})
		}
		end := strings.IndexByte(s[open:], '}')
		t = append(t, tpart{slot: index(s[open+1 : open+end])})
		s = s[open+end+1:]
	}
	return t
}

// slotSpec says how a free slot may be filled.
type slotSpec struct {
	cs       *charset
	def      string // tried first; "" for none
	optional bool   // may be empty
}

// Costs of the search: a byte the pattern or the template decides costs 1;
// a byte chosen freely from a slot's class, and leaving a slot's default
// for another value, cost fillCost, so that a slot's default (a likely
// value: "main", "app", "production", the other tenant's name) is kept
// whenever the pattern allows it.
const fillCost = 48

// maxStates bounds one search (pattern length × template nodes). A longer
// value is not searched; the guardrail refuses what it cannot analyse.
const maxStates = 1 << 17

// scratch is the reusable memory of the search.
type scratch struct {
	nodes  []nnode
	stamp  []uint32
	gen    uint32
	dist   []int32
	parent []int32
	emit   []int16
	heap   []uint64
	buf    []byte
	tags   []int8
	// cost is the cost of the last witness found.
	cost int32
}

// compile builds the NFA of t where fixed[slot] (when set[slot]) is the
// slot's value and the other slots are free, per specs.
func (sc *scratch) compile(t template, fixed []string, set []bool, specs []slotSpec) (start int32) {
	sc.nodes = sc.nodes[:0]
	add := func(n nnode) int32 {
		sc.nodes = append(sc.nodes, n)
		return int32(len(sc.nodes) - 1)
	}
	cur := add(nnode{kind: nEnd, slot: -1})
	lits := func(s string, slot int8, next int32) int32 {
		for i := len(s) - 1; i >= 0; i-- {
			next = add(nnode{kind: nLit, b: s[i], slot: slot, next: next})
		}
		return next
	}
	for k := len(t) - 1; k >= 0; k-- {
		p := t[k]
		if p.slot < 0 {
			cur = lits(p.lit, -1, cur)
			continue
		}
		if set[p.slot] {
			cur = lits(fixed[p.slot], -1, cur)
			continue
		}
		spec := specs[p.slot]
		join := cur
		loop := add(nnode{kind: nSplit, slot: -1, alt: join})
		more := add(nnode{kind: nClass, cs: spec.cs, slot: p.slot, next: loop})
		sc.nodes[loop].next = more
		entry := add(nnode{kind: nClass, cs: spec.cs, slot: p.slot, next: loop})
		if spec.optional {
			entry = loop
		}
		if spec.def != "" {
			def := lits(spec.def, p.slot, join)
			// Leaving the default for a value of the pattern's making
			// costs one arbitrary byte, so the default wins whenever the
			// pattern allows it.
			entry = add(nnode{kind: nSplit, slot: -1, next: def, alt: entry, altCost: fillCost})
		}
		cur = entry
	}
	return cur
}

// prefixClash reports that the pattern's literal start and the
// template's (its text up to the first free slot) differ: no witness can
// exist, and the search is skipped. Most shapes of an issuer fail this way.
func prefixClash(p pattern, t template, fixed []string, set []bool) bool {
	i := 0
	for _, part := range t {
		lit := part.lit
		if part.slot >= 0 {
			if !set[part.slot] {
				return false
			}
			lit = fixed[part.slot]
		}
		for k := 0; k < len(lit); k++ {
			if i >= len(p.toks) {
				return true // the pattern ends before the template
			}
			pt := p.toks[i]
			switch {
			case pt.kind == pStar:
				return false
			case pt.kind == pLit && pt.b != lit[k] && !(p.fold && foldEq(pt.b, lit[k])):
				return true
			}
			i++
		}
	}
	return false
}

// witness finds a string matched by both the pattern and the compiled
// template, preferring slot defaults, and returns it with the values it
// gave the free slots (appended to vals as slot/value pairs). tooLarge
// reports a search refused for its size.
func (sc *scratch) witness(p pattern, start int32, nslots int, vals []string, got []bool) (s string, ok, tooLarge bool) {
	nq := len(sc.nodes)
	na := len(p.toks) + 1
	n := na * nq
	if n > maxStates {
		return "", false, true
	}
	if cap(sc.stamp) < n {
		sc.stamp = make([]uint32, n)
		sc.dist = make([]int32, n)
		sc.parent = make([]int32, n)
		sc.emit = make([]int16, n)
		sc.gen = 0
	}
	sc.stamp, sc.dist, sc.parent, sc.emit = sc.stamp[:n], sc.dist[:n], sc.parent[:n], sc.emit[:n]
	sc.gen++
	if sc.gen == 0 { // wrapped: clear
		clear(sc.stamp[:cap(sc.stamp)])
		sc.gen = 1
	}
	gen := sc.gen
	sc.heap = sc.heap[:0]
	relax := func(to int32, from int32, cost int32, e int16) {
		if sc.stamp[to] == gen && sc.dist[to] <= cost {
			return
		}
		sc.stamp[to], sc.dist[to], sc.parent[to], sc.emit[to] = gen, cost, from, e
		sc.push(uint64(cost)<<32 | uint64(to))
	}
	first := start // i = 0
	relax(first, -1, 0, -1)
	goal := int32(na-1)*int32(nq) + 0 // node 0 is nEnd
	found := false
	for len(sc.heap) > 0 {
		top := sc.pop()
		cost, st := int32(top>>32), int32(top&0xffffffff)
		if sc.dist[st] != cost {
			continue
		}
		if st == goal {
			found = true
			sc.cost = cost
			break
		}
		i, q := int(st)/nq, st%int32(nq)
		node := &sc.nodes[q]
		base := int32(i) * int32(nq)
		// Epsilon moves.
		if i < len(p.toks) && p.toks[i].kind == pStar {
			relax(st+int32(nq), st, cost, -1)
		}
		if node.kind == nSplit {
			relax(base+node.next, st, cost, -1)
			relax(base+node.alt, st, cost+node.altCost, -1)
			continue
		}
		if node.kind == nEnd || i == len(p.toks) {
			continue
		}
		pt := p.toks[i]
		ni := int32(i + 1)
		if pt.kind == pStar {
			ni = int32(i)
		}
		switch node.kind {
		case nLit:
			if pt.kind == pLit && !(pt.b == node.b || p.fold && foldEq(pt.b, node.b)) {
				continue
			}
			relax(ni*int32(nq)+node.next, st, cost+1, int16(node.b))
		case nClass:
			if pt.kind == pLit {
				b := pt.b
				if !node.cs.has(b) {
					if !p.fold || !node.cs.has(swapCase(b)) {
						continue
					}
					b = swapCase(b)
				}
				relax(ni*int32(nq)+node.next, st, cost+1, int16(b))
				continue
			}
			relax(ni*int32(nq)+node.next, st, cost+fillCost, int16(node.cs.fill))
		}
	}
	if !found {
		return "", false, false
	}
	// Walk back: the byte emitted on entering state st was consumed by the
	// node of its parent state.
	sc.buf, sc.tags = sc.buf[:0], sc.tags[:0]
	for st := goal; sc.parent[st] >= 0; st = sc.parent[st] {
		if e := sc.emit[st]; e >= 0 {
			from := sc.parent[st]
			sc.buf = append(sc.buf, byte(e))
			sc.tags = append(sc.tags, sc.nodes[from%int32(nq)].slot)
		}
	}
	for l, r := 0, len(sc.buf)-1; l < r; l, r = l+1, r-1 {
		sc.buf[l], sc.buf[r] = sc.buf[r], sc.buf[l]
		sc.tags[l], sc.tags[r] = sc.tags[r], sc.tags[l]
	}
	for slot := 0; slot < nslots; slot++ {
		var b strings.Builder
		seen := false
		for k, tg := range sc.tags {
			if int(tg) == slot {
				b.WriteByte(sc.buf[k])
				seen = true
			}
		}
		if seen {
			vals[slot], got[slot] = b.String(), true
		}
	}
	return string(sc.buf), true, false
}

func (sc *scratch) push(v uint64) {
	h := append(sc.heap, v)
	for k := len(h) - 1; k > 0; {
		parent := (k - 1) / 2
		if h[parent] <= h[k] {
			break
		}
		h[parent], h[k] = h[k], h[parent]
		k = parent
	}
	sc.heap = h
}

func (sc *scratch) pop() uint64 {
	h := sc.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for k := 0; ; {
		l, r, m := 2*k+1, 2*k+2, k
		if l < len(h) && h[l] < h[m] {
			m = l
		}
		if r < len(h) && h[r] < h[m] {
			m = r
		}
		if m == k {
			break
		}
		h[k], h[m] = h[m], h[k]
		k = m
	}
	sc.heap = h
	return top
}

func foldEq(a, b byte) bool { return a == b || swapCase(a) == b }

func swapCase(b byte) byte {
	switch {
	case 'a' <= b && b <= 'z':
		return b - 'a' + 'A'
	case 'A' <= b && b <= 'Z':
		return b - 'A' + 'a'
	}
	return b
}
