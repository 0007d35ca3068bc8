package query

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/audit"
)

// Options tune Run.
type Options struct {
	// Scan is passed to audit.Scan; Start/End also filter on @timestamp
	// (inclusive start, exclusive end).
	Scan audit.ScanOptions
	// Limit > 0 caps the rows returned, overriding the query's limit.
	Limit int
}

// Result is a query's answer.
type Result struct {
	Columns []string  // result column names, in output order
	Rows    [][]Value // len(row) == len(Columns); a missing field is null
	Matched int64     // records that passed every filter before the first stats/limit
	Stats   audit.ScanStats
}

type row struct {
	vals []Value
	ord  ordKey
}

type sortFn struct {
	f    evalFn
	desc bool
}

type stage struct {
	kind     cmdKind
	filter   evalFn
	src      evalFn // parse's source field
	assign   []int
	exprs    []evalFn
	re       *regexp.Regexp
	sorts    []sortFn
	limit    int
	dedup    []int
	stats    *statsPlan
	symLen   func() int // slots of the phase this stage starts (stats)
	matchedA bool       // rows entering this stage are "records matched"
}

// plan is a compiled query.
type plan struct {
	sym1      *symtab
	ex        extractor
	tsSlot    int
	msgSlot   int
	stream    []stage // per-record stages of the first phase
	barrier   cmdKind // what ends the streaming part: cmdStats, cmdSort, cmdLimit, cmdDedup or 255 (none)
	topN      int     // > 0: keep only the first topN rows per worker
	topSorts  []sortFn
	stats     *statsPlan
	statsSym  *symtab
	matchedS  bool    // count matched at the end of the streaming part
	rest      []stage // table stages after the barrier
	finalSym  *symtab
	colSlots  []int
	columns   []string
	prefilter [][]needle
	start     int64
	end       int64
	bounded   bool
}

const noBarrier cmdKind = 255

func (q *Query) compile(opts Options) *plan {
	cmds := append([]*command(nil), q.cmds...)
	if opts.Limit > 0 {
		last := -1
		for i, c := range cmds {
			if c.kind == cmdLimit {
				last = i
			}
		}
		lc := &command{kind: cmdLimit, limit: opts.Limit}
		if last >= 0 {
			cmds[last] = lc
		} else {
			cmds = append(cmds, lc)
		}
	}
	matchedAt := len(cmds)
	for i, c := range cmds {
		if c.kind == cmdStats || c.kind == cmdLimit || c.kind == cmdDedup {
			matchedAt = i
			break
		}
	}
	p := &plan{sym1: newSymtab(), barrier: noBarrier, tsSlot: -1, msgSlot: -1}
	sym := p.sym1
	i := 0
	assigned := map[string]bool{}
	for ; i < len(cmds); i++ {
		c := cmds[i]
		if c.kind == cmdStats || c.kind == cmdSort || c.kind == cmdLimit || c.kind == cmdDedup {
			break
		}
		if c.kind == cmdFilter {
			// Earlier fields/parse drop no record; a field they assign
			// is not a record field any more (see assigned).
			p.addPrefilter(c.expr, assigned)
		}
		st := compileStage(c, sym)
		for _, it := range c.items {
			if f, ok := it.e.(*fieldExpr); !ok || f.name != it.name {
				assigned[it.name] = true
			}
		}
		for _, n := range c.names {
			assigned[n] = true
		}
		if c.kind == cmdDisplay {
			continue
		}
		p.stream = append(p.stream, st)
	}
	p.matchedS = i == matchedAt
	var lastStats *command
	if i < len(cmds) {
		c := cmds[i]
		p.barrier = c.kind
		switch {
		case c.kind == cmdStats:
			p.stats = compileStats(c, sym)
			lastStats = c
			sym = newSymtab(p.stats.out...)
			p.statsSym = sym
			i++
		case c.kind == cmdLimit:
			p.topN = c.limit
			i++
		case c.kind == cmdSort && i+1 < len(cmds) && cmds[i+1].kind == cmdLimit:
			p.topSorts = compileSorts(c, sym)
			p.topN = cmds[i+1].limit
			p.matchedS = p.matchedS || i+1 == matchedAt
			i += 2
		}
	}
	for j := i; j < len(cmds); j++ {
		c := cmds[j]
		if c.kind == cmdDisplay {
			continue
		}
		st := compileStage(c, sym)
		st.matchedA = j == matchedAt
		if c.kind == cmdStats {
			lastStats = c
			sym = newSymtab(st.stats.out...)
			s := sym
			st.symLen = func() int { return len(s.names) }
		}
		p.rest = append(p.rest, st)
	}
	// Output columns.
	var display []string
	for _, c := range cmds {
		if c.kind == cmdDisplay {
			display = c.names
		}
	}
	switch {
	case display != nil:
		p.columns = display
	default:
		seen := map[string]bool{}
		add := func(n string) {
			if !seen[n] {
				seen[n] = true
				p.columns = append(p.columns, n)
			}
		}
		afterStats := lastStats == nil
		if lastStats != nil {
			for _, n := range compileStatsNames(lastStats) {
				add(n)
			}
		}
		for _, c := range cmds {
			if c == lastStats {
				afterStats = true
				continue
			}
			if c.kind == cmdFields && afterStats {
				for _, it := range c.items {
					add(it.name)
				}
			}
		}
		if len(p.columns) == 0 {
			p.columns = []string{"@timestamp", "@message"}
		}
	}
	for _, n := range p.columns {
		p.colSlots = append(p.colSlots, sym.slot(n))
	}
	p.finalSym = sym
	// Record extraction for the first phase.
	needTS := p.stats == nil || opts.Scan.Start != (time.Time{}) || opts.Scan.End != (time.Time{})
	if p.stats != nil {
		for _, a := range p.stats.aggs {
			if a.fn == "earliest" || a.fn == "latest" {
				needTS = true
			}
		}
	}
	if _, ok := p.sym1.index["@timestamp"]; ok || needTS {
		p.tsSlot = p.sym1.slot("@timestamp")
		p.ex.add("eventTime", p.tsSlot)
	}
	if s, ok := p.sym1.index["@message"]; ok {
		p.msgSlot = s
	}
	for _, n := range p.sym1.names {
		if n != "" && n[0] != '@' {
			p.ex.add(n, p.sym1.index[n])
		}
	}
	if !opts.Scan.Start.IsZero() {
		p.start, p.bounded = opts.Scan.Start.UnixNano(), true
	} else {
		p.start = minTS
	}
	if !opts.Scan.End.IsZero() {
		p.end, p.bounded = opts.Scan.End.UnixNano(), true
	} else {
		p.end = 1<<63 - 1
	}
	return p
}

// addPrefilter records, for each top-level conjunct `F like "text"`,
// `F = "text"` or `F in ["a", ...]` on a record field, needles of which a
// matching record's raw bytes must contain one. Exact when the needle has
// no JSON-escapable or structural byte and the record has no \u escape.
func (p *plan) addPrefilter(e Expr, assigned map[string]bool) {
	if b, ok := e.(*binExpr); ok && b.op == "and" {
		p.addPrefilter(b.l, assigned)
		p.addPrefilter(b.r, assigned)
		return
	}
	field := func(x Expr) bool {
		f, ok := x.(*fieldExpr)
		return ok && !assigned[f.name] && f.name != "" && (f.name[0] != '@' || f.name == "@message")
	}
	ok := func(s string, strict bool) bool {
		if s == "" {
			return false
		}
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c < 0x20, c == '"', c == '\\', c == '/', c == '{', c == '}', c == '[', c == ']', c == ':', c == ',':
				return false
			}
		}
		if strict {
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				return false
			}
			if _, isTime := parseTime(s); isTime {
				return false
			}
		}
		return true
	}
	var needles []needle
	switch x := e.(type) {
	case *matchExpr:
		if x.not || x.re != nil || !field(x.x) || !ok(x.sub, false) {
			return
		}
		needles = []needle{newNeedle(x.sub)}
	case *binExpr:
		l, isLit := x.r.(*litExpr)
		if x.op != "=" || !isLit || l.v.k != kString || !field(x.l) || !ok(l.v.s, true) {
			return
		}
		needles = []needle{newNeedle(l.v.s)}
	case *inExpr:
		if x.not || !field(x.x) {
			return
		}
		for _, y := range x.list {
			l, isLit := y.(*litExpr)
			if !isLit || l.v.k != kString || !ok(l.v.s, true) {
				return
			}
			needles = append(needles, newNeedle(l.v.s))
		}
	default:
		return
	}
	if len(needles) > 0 {
		p.prefilter = append(p.prefilter, needles)
	}
}

func compileStage(c *command, sym *symtab) stage {
	st := stage{kind: c.kind}
	switch c.kind {
	case cmdFilter:
		st.filter = compileExpr(c.expr, sym)
	case cmdFields:
		for _, it := range c.items {
			st.exprs = append(st.exprs, compileExpr(it.e, sym))
		}
		for _, it := range c.items {
			st.assign = append(st.assign, sym.slot(it.name))
		}
	case cmdParse:
		st.src = compileExpr(c.expr, sym)
		st.re = c.re
		for _, n := range c.names {
			st.assign = append(st.assign, sym.slot(n))
		}
	case cmdSort:
		st.sorts = compileSorts(c, sym)
	case cmdLimit:
		st.limit = c.limit
	case cmdDedup:
		for _, n := range c.names {
			st.dedup = append(st.dedup, sym.slot(n))
		}
	case cmdStats:
		st.stats = compileStats(c, sym)
	}
	return st
}

func compileSorts(c *command, sym *symtab) []sortFn {
	var out []sortFn
	for _, k := range c.sorts {
		out = append(out, sortFn{f: compileExpr(k.e, sym), desc: k.desc})
	}
	return out
}

func compileStatsNames(c *command) []string {
	var out []string
	for _, it := range c.items {
		out = append(out, it.name)
	}
	for _, a := range c.aggs {
		out = append(out, a.name)
	}
	return out
}

func compileStats(c *command, sym *symtab) *statsPlan {
	sp := &statsPlan{aggs: c.aggs, out: compileStatsNames(c)}
	for _, it := range c.items {
		sp.by = append(sp.by, compileExpr(it.e, sym))
	}
	for _, a := range c.aggs {
		if a.arg == nil {
			sp.args = append(sp.args, nil)
		} else {
			sp.args = append(sp.args, compileExpr(a.arg, sym))
		}
	}
	return sp
}

// apply runs a per-row stage; false drops the row.
func (st *stage) apply(e *env) bool {
	switch st.kind {
	case cmdFilter:
		return st.filter(e).truthy()
	case cmdFields:
		// Evaluate all, then assign: fields a+1 as a reads the old a.
		var buf [8]Value
		vals := buf[:0]
		for _, f := range st.exprs {
			vals = append(vals, f(e))
		}
		for i, s := range st.assign {
			e.slots[s] = vals[i]
		}
	case cmdParse:
		v := st.src(e)
		var m []int
		s := v.text()
		if v.k != kNull {
			m = st.re.FindStringSubmatchIndex(s)
		}
		if st.re.NumSubexp() == len(st.assign) {
			for i, slot := range st.assign {
				e.slots[slot] = group2(s, m, i+1)
			}
		} else {
			names := st.re.SubexpNames()
			k := 0
			for gi := 1; gi < len(names); gi++ {
				if names[gi] != "" {
					e.slots[st.assign[k]] = group2(s, m, gi)
					k++
				}
			}
		}
	}
	return true
}

func group2(s string, m []int, i int) Value {
	if m == nil || 2*i+1 >= len(m) || m[2*i] < 0 {
		return Value{}
	}
	return strVal(s[m[2*i]:m[2*i+1]])
}

// worker is one goroutine's evaluator: no locks on the hot path.
type worker struct {
	p       *plan
	env     env
	set     func(slots []int, v jsonVal)
	rows    []row
	top     *topHeap
	stats   *statsState
	matched int64
}

func newWorker(p *plan) *worker {
	w := &worker{p: p}
	w.env.slots = make([]Value, len(p.sym1.names))
	w.set = w.env.setJSON
	if p.stats != nil {
		w.stats = newStatsState(p.stats)
	}
	if p.topN > 0 {
		w.top = &topHeap{n: p.topN, sorts: p.topSorts}
	}
	return w
}

func (w *worker) record(r *audit.RawRecord) {
	p := w.p
	data := r.Data
	for _, needles := range p.prefilter {
		found := false
		for _, n := range needles {
			if n.in(data) {
				found = true
				break
			}
		}
		if !found && !hasUnicodeEscape(data) {
			return
		}
	}
	e := &w.env
	clear(e.slots)
	e.scratch = e.scratch[:0]
	e.file, e.idx, e.ts = r.File, r.Index, minTS
	p.ex.run(data, w.set)
	if p.msgSlot >= 0 {
		e.slots[p.msgSlot] = Value{k: kString, s: bstr(data)}
	}
	if p.tsSlot >= 0 {
		v := e.slots[p.tsSlot]
		e.slots[p.tsSlot] = Value{}
		if v.k == kString {
			if ns, ok := parseTime(v.s); ok {
				e.ts = ns
				e.slots[p.tsSlot] = timeVal(ns)
			}
		}
	}
	if p.bounded && (e.ts == minTS || e.ts < p.start || e.ts >= p.end) {
		return
	}
	for i := range p.stream {
		if !p.stream[i].apply(e) {
			return
		}
	}
	if p.matchedS {
		w.matched++
	}
	switch {
	case w.stats != nil:
		w.stats.add(e)
	case w.top != nil:
		w.top.offer(e)
	default:
		w.rows = append(w.rows, cloneRow(e))
	}
}

// needle is a prefilter text with the byte searched first: the rarest in
// CloudTrail's text, so that IndexByte does not stop at every "A" of
// "AWS", "ASIA..." or "arn:aws" when the text is "AssumeRole".
type needle struct {
	b []byte
	k int // index of the anchor byte in b
}

func newNeedle(s string) needle {
	n := needle{b: []byte(s)}
	for i := range n.b {
		if byteRank(n.b[i]) < byteRank(n.b[n.k]) {
			n.k = i
		}
	}
	return n
}

// byteRank is a coarse frequency class of a byte in CloudTrail events
// (lower is rarer): JSON punctuation, lowercase letters and digits make
// most of an event; the capitals of AWS names and IDs (AWS, ARN, ASIA,
// IAM, EC2, Get/List/Describe/Create/Delete) come next.
func byteRank(c byte) int {
	switch {
	case c >= 'a' && c <= 'z', c >= '0' && c <= '9', strings.IndexByte(`":,.-_/{}[] `, c) >= 0:
		return 3
	case strings.IndexByte("ASIEDGLCT", c) >= 0:
		return 2
	case c >= 0x20 && c < 0x7f:
		return 1
	}
	return 0
}

// in reports whether h contains the needle.
func (n needle) in(h []byte) bool {
	if len(n.b) < 2 {
		return bytes.Contains(h, n.b)
	}
	c := n.b[n.k]
	for i := n.k; i < len(h); {
		j := bytes.IndexByte(h[i:], c)
		if j < 0 {
			return false
		}
		start := i + j - n.k
		if start+len(n.b) <= len(h) && bytes.Equal(h[start:start+len(n.b)], n.b) {
			return true
		}
		i += j + 1
	}
	return false
}

// hasUnicodeEscape reports whether data holds a \u escape (a record whose
// text a raw-byte needle may miss).
func hasUnicodeEscape(data []byte) bool {
	for i := 0; i+1 < len(data); i++ {
		j := bytes.IndexByte(data[i:], '\\')
		if j < 0 || i+j+1 >= len(data) {
			return false
		}
		i += j
		if data[i+1] == 'u' {
			return true
		}
		i++ // skip the escaped byte (\\u is not an escape)
	}
	return false
}

func cloneRow(e *env) row {
	vals := make([]Value, len(e.slots))
	for i, v := range e.slots {
		vals[i] = v.clone()
	}
	return row{vals: vals, ord: ordKey{e.ts, e.file, e.idx}}
}

// cmpRows orders rows by sort keys (nulls last either way), then by the
// default order.
func cmpRows(sorts []sortFn, a, b *env) int {
	for _, s := range sorts {
		va, vb := s.f(a), s.f(b)
		var c int
		switch {
		case va.k == kNull || vb.k == kNull:
			c = sortCompare(va, vb)
		case s.desc:
			c = -sortCompare(va, vb)
		default:
			c = sortCompare(va, vb)
		}
		if c != 0 {
			return c
		}
	}
	ka, kb := ordKey{a.ts, a.file, a.idx}, ordKey{b.ts, b.file, b.idx}
	switch {
	case ka.before(kb):
		return -1
	case kb.before(ka):
		return 1
	}
	return 0
}

func rowEnv(r *row) env { return env{slots: r.vals, ts: r.ord.ts, file: r.ord.file, idx: r.ord.idx} }

// topHeap keeps the first n rows in (sort keys, default) order: a max-heap
// on that order, so the root is the worst row kept.
type topHeap struct {
	n     int
	sorts []sortFn
	rows  []row
}

func (h *topHeap) cmp(i, j int) int {
	a, b := rowEnv(&h.rows[i]), rowEnv(&h.rows[j])
	return cmpRows(h.sorts, &a, &b)
}

func (h *topHeap) offer(e *env) {
	if len(h.rows) == h.n {
		root := rowEnv(&h.rows[0])
		if cmpRows(h.sorts, e, &root) >= 0 {
			return
		}
		h.rows[0] = cloneRow(e)
		h.down(0)
		return
	}
	h.push(cloneRow(e))
}

func (h *topHeap) push(r row) {
	if len(h.rows) == h.n {
		a, b := rowEnv(&r), rowEnv(&h.rows[0])
		if cmpRows(h.sorts, &a, &b) >= 0 {
			return
		}
		h.rows[0] = r
		h.down(0)
		return
	}
	h.rows = append(h.rows, r)
	for i := len(h.rows) - 1; i > 0; {
		parent := (i - 1) / 2
		if h.cmp(i, parent) <= 0 {
			break
		}
		h.rows[i], h.rows[parent] = h.rows[parent], h.rows[i]
		i = parent
	}
}

func (h *topHeap) down(i int) {
	for {
		l, big := 2*i+1, i
		if l < len(h.rows) && h.cmp(l, big) > 0 {
			big = l
		}
		if r := l + 1; r < len(h.rows) && h.cmp(r, big) > 0 {
			big = r
		}
		if big == i {
			return
		}
		h.rows[i], h.rows[big] = h.rows[big], h.rows[i]
		i = big
	}
}

// sortRows sorts rows by the sort keys (evaluated once per row), ties in
// the default order.
func sortRows(rows []row, sorts []sortFn) {
	if len(sorts) == 0 {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].ord.before(rows[j].ord) })
		return
	}
	type keyed struct {
		keys []Value
		r    row
	}
	ks := make([]keyed, len(rows))
	for i := range rows {
		e := rowEnv(&rows[i])
		keys := make([]Value, len(sorts))
		for j, s := range sorts {
			keys[j] = s.f(&e)
		}
		ks[i] = keyed{keys, rows[i]}
	}
	sort.SliceStable(ks, func(i, j int) bool {
		for k, s := range sorts {
			a, b := ks[i].keys[k], ks[j].keys[k]
			c := sortCompare(a, b)
			if s.desc && a.k != kNull && b.k != kNull {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return ks[i].r.ord.before(ks[j].r.ord)
	})
	for i := range ks {
		rows[i] = ks[i].r
	}
}

// Run evaluates the query over the events of paths (see audit.Scan).
func (q *Query) Run(ctx context.Context, paths []string, opts Options) (*Result, error) {
	return q.run(opts, func(fn func(int, []audit.RawRecord) error) (audit.ScanStats, error) {
		return audit.Scan(ctx, paths, opts.Scan, fn)
	})
}

type scanFunc func(fn func(worker int, batch []audit.RawRecord) error) (audit.ScanStats, error)

func (q *Query) run(opts Options, scan scanFunc) (*Result, error) {
	p := q.compile(opts)
	n := max(opts.Scan.Workers, runtime.GOMAXPROCS(0), 1)
	workers := make([]*worker, n)
	stats, err := scan(func(wi int, batch []audit.RawRecord) error {
		if wi < 0 || wi >= len(workers) {
			return fmt.Errorf("query: scan worker %d out of range [0, %d)", wi, len(workers))
		}
		w := workers[wi]
		if w == nil {
			w = newWorker(p)
			workers[wi] = w
		}
		for i := range batch {
			w.record(&batch[i])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &Result{Columns: append([]string(nil), p.columns...), Stats: stats}
	var rows []row
	switch {
	case p.stats != nil:
		all := newStatsState(p.stats)
		for _, w := range workers {
			if w != nil {
				all.merge(w.stats)
				res.Matched += w.matched
			}
		}
		rows = all.rows()
		for i := range rows {
			rows[i].vals = append(rows[i].vals, make([]Value, len(p.statsSym.names)-len(rows[i].vals))...)
		}
	case p.topN > 0:
		h := &topHeap{n: p.topN, sorts: p.topSorts}
		for _, w := range workers {
			if w != nil {
				for _, r := range w.top.rows {
					h.push(r)
				}
				res.Matched += w.matched
			}
		}
		rows = h.rows
		sortRows(rows, p.topSorts)
	default:
		for _, w := range workers {
			if w != nil {
				rows = append(rows, w.rows...)
				res.Matched += w.matched
			}
		}
		sortRows(rows, nil)
	}
	for i := range p.rest {
		st := &p.rest[i]
		if st.matchedA {
			res.Matched = int64(len(rows))
		}
		rows = st.table(rows)
	}
	if !p.matchedS && !anyMatched(p.rest) {
		res.Matched = int64(len(rows))
	}
	res.Rows = make([][]Value, len(rows))
	for i, r := range rows {
		out := make([]Value, len(p.colSlots))
		for j, s := range p.colSlots {
			if s < len(r.vals) {
				out[j] = r.vals[s]
			}
		}
		res.Rows[i] = out
	}
	return res, nil
}

func anyMatched(st []stage) bool {
	for _, s := range st {
		if s.matchedA {
			return true
		}
	}
	return false
}

// table runs a stage over a whole table.
func (st *stage) table(rows []row) []row {
	switch st.kind {
	case cmdSort:
		sortRows(rows, st.sorts)
		return rows
	case cmdLimit:
		if len(rows) > st.limit {
			rows = rows[:st.limit]
		}
		return rows
	case cmdDedup:
		seen := map[string]bool{}
		out := rows[:0]
		var key []byte
		for _, r := range rows {
			key = key[:0]
			null := false
			for _, s := range st.dedup {
				var v Value
				if s < len(r.vals) {
					v = r.vals[s]
				}
				null = null || v.k == kNull
				key = appendKey(key, v)
			}
			if !null {
				if seen[string(key)] {
					continue
				}
				seen[string(key)] = true
			}
			out = append(out, r)
		}
		return out
	case cmdStats:
		s := newStatsState(st.stats)
		for i := range rows {
			e := rowEnv(&rows[i])
			s.add(&e)
		}
		out := s.rows()
		n := st.symLen()
		for i := range out {
			out[i].vals = append(out[i].vals, make([]Value, n-len(out[i].vals))...)
		}
		return out
	}
	out := rows[:0]
	for _, r := range rows {
		e := rowEnv(&r)
		if st.apply(&e) {
			out = append(out, r)
		}
	}
	return out
}

// Histogram reports whether the query is `stats <one aggregate> by bin(P)`
// (its last stats, with no other group) and returns the aggregate's column
// and P, for a chart.
func (q *Query) Histogram() (col string, period time.Duration, ok bool) {
	var last *command
	for _, c := range q.cmds {
		if c.kind == cmdStats {
			last = c
		}
	}
	if last == nil || len(last.aggs) != 1 || len(last.items) != 1 {
		return "", 0, false
	}
	call, isCall := last.items[0].e.(*callExpr)
	if !isCall || call.fn != "bin" {
		return "", 0, false
	}
	p := call.args[0].(*periodExpr).p
	if p.months > 0 {
		return "", 0, false
	}
	return last.aggs[0].name, p.d, true
}
