package query

import (
	"math"
	"slices"
	"sort"
)

// ordKey is a row's position in the default order: @timestamp descending,
// then input order (file, index).
type ordKey struct {
	ts   int64
	file int
	idx  int64
}

// before reports whether a comes first in the default order.
func (a ordKey) before(b ordKey) bool {
	if a.ts != b.ts {
		return a.ts > b.ts
	}
	if a.file != b.file {
		return a.file < b.file
	}
	return a.idx < b.idx
}

// inputBefore orders by time ascending, then input order: earliest/latest.
func (a ordKey) inputBefore(b ordKey) bool {
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	if a.file != b.file {
		return a.file < b.file
	}
	return a.idx < b.idx
}

// agg is one stats function's partial state for one group. States merge,
// so workers aggregate without locks and combine at the end.
type agg struct {
	fn     string
	p      float64
	n      int64   // count, count(f), values summed
	sum    float64 // sum, avg, stddev
	sumsq  float64 // stddev
	best   Value   // min, max, sortsFirst, sortsLast, earliest, latest
	bestAt ordKey
	vals   []float64        // pct
	set    map[string]Value // count_distinct
}

func (a *agg) add(v Value, at ordKey, keybuf []byte) []byte {
	switch a.fn {
	case "count":
		if v.k != kNull {
			a.n++
		}
	case "count_distinct":
		if v.k == kNull {
			return keybuf
		}
		keybuf = appendKey(keybuf[:0], v)
		if _, ok := a.set[string(keybuf)]; !ok {
			if a.set == nil {
				a.set = map[string]Value{}
			}
			a.set[string(keybuf)] = v.clone()
		}
	case "sum", "avg", "stddev", "pct":
		if v.k == kNull {
			return keybuf
		}
		f, ok := v.num()
		if !ok {
			return keybuf
		}
		a.n++
		a.sum += f
		a.sumsq += f * f
		if a.fn == "pct" {
			a.vals = append(a.vals, f)
		}
	case "min", "max", "sortsfirst", "sortslast":
		if v.k == kNull {
			return keybuf
		}
		if v.k == kString && (a.fn == "min" || a.fn == "max") {
			if f, ok := v.num(); ok {
				v = numVal(f)
			}
		}
		if a.n == 0 {
			a.n, a.best = 1, v.clone()
			return keybuf
		}
		c := sortCompare(v, a.best)
		if (a.fn == "min" || a.fn == "sortsfirst") && c < 0 || (a.fn == "max" || a.fn == "sortslast") && c > 0 {
			a.best = v.clone()
		}
	case "earliest", "latest":
		if v.k == kNull {
			return keybuf
		}
		if a.n == 0 || (a.fn == "earliest") == at.inputBefore(a.bestAt) {
			a.n, a.best, a.bestAt = 1, v.clone(), at
		}
	}
	return keybuf
}

func (a *agg) merge(b *agg) {
	switch a.fn {
	case "count":
		a.n += b.n
	case "count_distinct":
		for k, v := range b.set {
			if a.set == nil {
				a.set = map[string]Value{}
			}
			a.set[k] = v
		}
	case "sum", "avg", "stddev", "pct":
		a.n += b.n
		a.sum += b.sum
		a.sumsq += b.sumsq
		a.vals = append(a.vals, b.vals...)
	case "min", "max", "sortsfirst", "sortslast":
		if b.n == 0 {
			return
		}
		if a.n == 0 {
			*a = *b
			return
		}
		c := sortCompare(b.best, a.best)
		if (a.fn == "min" || a.fn == "sortsfirst") && c < 0 || (a.fn == "max" || a.fn == "sortslast") && c > 0 {
			a.best = b.best
		}
	case "earliest", "latest":
		if b.n == 0 {
			return
		}
		if a.n == 0 || (a.fn == "earliest") == b.bestAt.inputBefore(a.bestAt) {
			a.n, a.best, a.bestAt = 1, b.best, b.bestAt
		}
	}
}

// result is the aggregate's value. pct is the nearest-rank percentile:
// the smallest value with at least p% of the values <= it.
func (a *agg) result() Value {
	switch a.fn {
	case "count":
		return numVal(float64(a.n))
	case "count_distinct":
		return numVal(float64(len(a.set)))
	case "sum":
		if a.n == 0 {
			return Value{}
		}
		return numVal(a.sum)
	case "avg":
		if a.n == 0 {
			return Value{}
		}
		return numVal(a.sum / float64(a.n))
	case "stddev":
		// Sample standard deviation (n-1), 0 for a single value.
		if a.n == 0 {
			return Value{}
		}
		if a.n == 1 {
			return numVal(0)
		}
		n := float64(a.n)
		v := (a.sumsq - a.sum*a.sum/n) / (n - 1)
		return numVal(math.Sqrt(math.Max(v, 0)))
	case "pct":
		if len(a.vals) == 0 {
			return Value{}
		}
		slices.Sort(a.vals)
		rank := int(math.Ceil(a.p / 100 * float64(len(a.vals))))
		if rank < 1 {
			rank = 1
		}
		return numVal(a.vals[rank-1])
	}
	if a.n == 0 {
		return Value{}
	}
	return a.best
}

// statsPlan is a compiled stats command.
type statsPlan struct {
	by   []evalFn
	args []evalFn // nil for count(*)
	aggs []aggSpec
	out  []string // output columns: groups, then aggregates
}

type group struct {
	keys []Value
	aggs []agg
}

// statsState is one worker's groups; it grows with the number of groups
// (and the values kept by pct and count_distinct), never with the input.
type statsState struct {
	p      *statsPlan
	groups map[string]*group
	keybuf []byte
	keys   []Value
	aux    []byte
}

func newStatsState(p *statsPlan) *statsState {
	return &statsState{p: p, groups: map[string]*group{}, keys: make([]Value, len(p.by))}
}

func (s *statsState) add(e *env) {
	s.keybuf = s.keybuf[:0]
	for i, f := range s.p.by {
		v := f(e)
		s.keys[i] = v
		s.keybuf = appendKey(s.keybuf, v)
	}
	g := s.groups[string(s.keybuf)]
	if g == nil {
		g = &group{keys: make([]Value, len(s.keys)), aggs: make([]agg, len(s.p.aggs))}
		for i, v := range s.keys {
			g.keys[i] = v.clone()
		}
		for i, a := range s.p.aggs {
			g.aggs[i] = agg{fn: a.fn, p: a.p}
		}
		s.groups[string(s.keybuf)] = g
	}
	at := ordKey{e.ts, e.file, e.idx}
	for i := range g.aggs {
		a := &g.aggs[i]
		if s.p.args[i] == nil {
			a.n++
			continue
		}
		s.aux = a.add(s.p.args[i](e), at, s.aux)
	}
}

func (s *statsState) merge(o *statsState) {
	for k, g := range o.groups {
		mine := s.groups[k]
		if mine == nil {
			s.groups[k] = g
			continue
		}
		for i := range mine.aggs {
			mine.aggs[i].merge(&g.aggs[i])
		}
	}
}

// rows returns the groups as rows ordered by the group keys ascending.
func (s *statsState) rows() []row {
	if len(s.groups) == 0 && len(s.p.by) == 0 {
		g := &group{aggs: make([]agg, len(s.p.aggs))}
		for i, a := range s.p.aggs {
			g.aggs[i] = agg{fn: a.fn, p: a.p}
		}
		s.groups[""] = g
	}
	gs := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool {
		for k := range gs[i].keys {
			if c := sortCompare(gs[i].keys[k], gs[j].keys[k]); c != 0 {
				return c < 0
			}
		}
		return false
	})
	out := make([]row, len(gs))
	for i, g := range gs {
		vals := make([]Value, 0, len(g.keys)+len(g.aggs))
		vals = append(vals, g.keys...)
		for j := range g.aggs {
			vals = append(vals, g.aggs[j].result())
		}
		out[i] = row{vals: vals, ord: ordKey{ts: minTS, idx: int64(i)}}
	}
	return out
}
