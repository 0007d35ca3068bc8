package query

import (
	"regexp"
	"strings"
)

// funcArity lists the scalar functions: lower-case name -> min, max args
// (max -1: variadic).
var funcArity = map[string][2]int{
	"ispresent": {1, 1}, "isempty": {1, 1}, "isblank": {1, 1}, "coalesce": {1, -1},
	"strlen": {1, 1}, "tolower": {1, 1}, "toupper": {1, 1}, "concat": {1, -1},
	"substr": {2, 3}, "replace": {3, 3}, "strcontains": {2, 2},
	"ltrim": {1, 2}, "rtrim": {1, 2}, "trim": {1, 2},
	"abs": {1, 1}, "ceil": {1, 1}, "floor": {1, 1}, "greatest": {1, -1}, "least": {1, -1},
	"log": {1, 1}, "sqrt": {1, 1},
	"bin": {1, 1}, "datefloor": {2, 2}, "dateceil": {2, 2}, "frommillis": {1, 1}, "tomillis": {1, 1},
	"isvalidip": {1, 1}, "isvalidipv4": {1, 1}, "isvalidipv6": {1, 1},
	"isipinsubnet": {2, 2}, "isipv4insubnet": {2, 2}, "isipv6insubnet": {2, 2},
}

// aggArity lists the stats functions.
var aggArity = map[string][2]int{
	"count": {0, 1}, "count_distinct": {1, 1}, "sum": {1, 1}, "avg": {1, 1},
	"min": {1, 1}, "max": {1, 1}, "stddev": {1, 1}, "pct": {2, 2},
	"earliest": {1, 1}, "latest": {1, 1}, "sortsfirst": {1, 1}, "sortslast": {1, 1},
}

type parser struct {
	lx    lexer
	tok   token
	prev  token
	depth int
}

// maxDepth bounds expression nesting, so a hostile query cannot exhaust
// the stack.
const maxDepth = 256

// Parse parses a Logs Insights query. Its error is a *SyntaxError.
func Parse(src string) (*Query, error) {
	q, err := parse(src)
	if err != nil {
		return nil, err
	}
	return q, nil
}

func parse(src string) (q *Query, err *SyntaxError) {
	p := &parser{lx: lexer{src: src}}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*SyntaxError)
			if !ok {
				panic(r)
			}
			q, err = nil, se
		}
	}()
	p.advance(false)
	q = &Query{src: src}
	for {
		if p.tok.kind == tEOF {
			if len(q.cmds) == 0 || p.prev.text == "|" {
				p.fail(p.tok.off, "expected a command (fields, display, filter, stats, sort, limit, dedup or parse)")
			}
			break
		}
		q.cmds = append(q.cmds, p.command())
		if p.tok.kind == tEOF {
			break
		}
		if !p.isPunct("|") {
			p.fail(p.tok.off, "expected | or the end of the query, found %s", p.describe())
		}
		p.advance(false)
	}
	for _, c := range q.cmds {
		p.checkPeriods(c)
	}
	return q, nil
}

// checkPeriods rejects a time period anywhere but as bin's argument or
// datefloor/dateceil's second one.
func (p *parser) checkPeriods(c *command) {
	var exprs []Expr
	exprs = append(exprs, c.expr)
	for _, it := range c.items {
		exprs = append(exprs, it.e)
	}
	for _, a := range c.aggs {
		exprs = append(exprs, a.arg)
	}
	for _, k := range c.sorts {
		exprs = append(exprs, k.e)
	}
	allowed := map[Expr]bool{}
	for _, e := range exprs {
		walk(e, func(x Expr) {
			if call, ok := x.(*callExpr); ok {
				for _, a := range call.args {
					if _, isPer := a.(*periodExpr); isPer {
						allowed[a] = true
					}
				}
			}
		})
	}
	for _, e := range exprs {
		walk(e, func(x Expr) {
			if _, isPer := x.(*periodExpr); isPer && !allowed[x] {
				p.fail(x.pos(), "a time period is only allowed in bin, datefloor and dateceil")
			}
		})
	}
}

func (p *parser) fail(off int, format string, args ...any) {
	panic(newSyntaxError(p.lx.src, off, format, args...))
}

func (p *parser) advance(regex bool) {
	t, err := p.lx.next(regex)
	if err != nil {
		panic(err)
	}
	p.prev, p.tok = p.tok, t
}

// operand re-reads the current token as the start of an operand (a '/'
// starts a regex there).
func (p *parser) operand() {
	if p.tok.kind == tPunct && p.tok.text == "/" {
		p.lx.pos = p.tok.off
		p.advance(true)
	}
}

func (p *parser) describe() string {
	switch p.tok.kind {
	case tEOF:
		return "the end of the query"
	case tString:
		return "a string"
	case tRegex:
		return "a regular expression"
	}
	return strings.TrimSpace(p.lx.src[p.tok.off:p.tok.end])
}

func (p *parser) isPunct(s string) bool { return p.tok.kind == tPunct && p.tok.text == s }

func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tIdent && !p.tok.quoted && strings.EqualFold(p.tok.text, kw)
}

func (p *parser) expectPunct(s string) {
	if !p.isPunct(s) {
		p.fail(p.tok.off, "expected %s, found %s", s, p.describe())
	}
	p.advance(false)
}

func (p *parser) command() *command {
	if p.tok.kind != tIdent || p.tok.quoted {
		p.fail(p.tok.off, "expected a command (fields, display, filter, stats, sort, limit, dedup or parse), found %s", p.describe())
	}
	c := &command{off: p.tok.off}
	name := strings.ToLower(p.tok.text)
	p.advance(true)
	switch name {
	case "fields":
		c.kind = cmdFields
		c.items = p.namedList()
	case "display":
		c.kind = cmdDisplay
		c.names = p.nameList()
	case "filter":
		c.kind = cmdFilter
		c.expr = p.expr()
	case "stats":
		c.kind = cmdStats
		p.stats(c)
	case "sort":
		c.kind = cmdSort
		for {
			k := sortKey{e: p.expr()}
			if p.isKeyword("desc") {
				k.desc = true
				p.advance(false)
			} else if p.isKeyword("asc") {
				p.advance(false)
			}
			c.sorts = append(c.sorts, k)
			if !p.isPunct(",") {
				break
			}
			p.advance(true)
		}
	case "limit":
		c.kind = cmdLimit
		if p.tok.kind != tNumber || p.tok.num < 1 || p.tok.num != float64(int(p.tok.num)) || p.tok.num > 1e9 {
			p.fail(p.tok.off, "limit wants a whole number of rows >= 1, found %s", p.describe())
		}
		c.limit = int(p.tok.num)
		p.advance(false)
	case "dedup":
		c.kind = cmdDedup
		c.names = p.nameList()
	case "parse":
		c.kind = cmdParse
		p.parseCmd(c)
	default:
		p.fail(c.off, "unknown command %q: expected fields, display, filter, stats, sort, limit, dedup or parse", p.prev.text)
	}
	return c
}

func (p *parser) srcText(from, to int) string {
	return strings.Join(strings.Fields(p.lx.src[from:to]), " ")
}

func (p *parser) namedList() []namedExpr {
	var out []namedExpr
	for {
		start := p.tok.off
		e := p.expr()
		ne := namedExpr{e: e, name: p.srcText(start, p.prev.end)}
		if f, ok := e.(*fieldExpr); ok {
			ne.name = f.name
		}
		if p.isKeyword("as") {
			p.advance(false)
			ne.name = p.ident()
		}
		out = append(out, ne)
		if !p.isPunct(",") {
			return out
		}
		p.advance(true)
	}
}

func (p *parser) ident() string {
	if p.tok.kind != tIdent {
		p.fail(p.tok.off, "expected a field name, found %s", p.describe())
	}
	s := p.tok.text
	p.advance(false)
	return s
}

func (p *parser) nameList() []string {
	var out []string
	for {
		out = append(out, p.ident())
		if !p.isPunct(",") {
			return out
		}
		p.advance(false)
	}
}

func (p *parser) stats(c *command) {
	for {
		start := p.tok.off
		if p.tok.kind != tIdent || p.tok.quoted {
			p.fail(p.tok.off, "expected a stats function (count, count_distinct, sum, avg, min, max, stddev, pct, earliest, latest, sortsFirst, sortsLast), found %s", p.describe())
		}
		fn := strings.ToLower(p.tok.text)
		ar, ok := aggArity[fn]
		if !ok {
			if _, scalar := funcArity[fn]; scalar {
				p.fail(start, "%s is not a stats function: stats wants count, count_distinct, sum, avg, min, max, stddev, pct, earliest, latest, sortsFirst or sortsLast", p.tok.text)
			}
			p.fail(start, "unknown stats function %q", p.tok.text)
		}
		p.advance(false)
		if !p.isPunct("(") {
			p.fail(p.tok.off, "expected ( after %s", fn)
		}
		p.advance(true)
		a := aggSpec{fn: fn}
		var args []Expr
		if fn == "count" && p.isPunct("*") {
			p.advance(false)
		} else if !p.isPunct(")") {
			args = p.args()
		}
		if len(args) < ar[0] || len(args) > ar[1] {
			p.fail(start, "%s takes %s", fn, arityText(ar))
		}
		p.expectPunct(")")
		if len(args) > 0 {
			a.arg = args[0]
			p.noAggInside(a.arg)
		}
		if fn == "pct" {
			l, ok := args[1].(*litExpr)
			if !ok || l.v.k != kNumber || l.v.n < 0 || l.v.n > 100 {
				p.fail(args[1].pos(), "pct wants a percentile number between 0 and 100")
			}
			a.p = l.v.n
		}
		a.name = p.srcText(start, p.prev.end)
		if p.isKeyword("as") {
			p.advance(false)
			a.name = p.ident()
		}
		if p.isPunct("+") || p.isPunct("-") || p.isPunct("*") || p.isPunct("/") {
			p.fail(p.tok.off, "arithmetic on stats results is unsupported: use a later fields command")
		}
		c.aggs = append(c.aggs, a)
		if !p.isPunct(",") {
			break
		}
		p.advance(false)
	}
	if p.isKeyword("by") {
		p.advance(true)
		c.items = p.namedList()
		for _, it := range c.items {
			p.noAggInside(it.e)
		}
	}
}

func (p *parser) noAggInside(e Expr) {
	walk(e, func(x Expr) {
		if c, ok := x.(*callExpr); ok {
			if _, agg := aggArity[c.fn]; agg {
				p.fail(c.off, "stats function %s cannot be nested in an expression", c.fn)
			}
		}
	})
}

func walk(e Expr, f func(Expr)) {
	if e == nil {
		return
	}
	f(e)
	switch x := e.(type) {
	case *unaryExpr:
		walk(x.x, f)
	case *binExpr:
		walk(x.l, f)
		walk(x.r, f)
	case *matchExpr:
		walk(x.x, f)
	case *inExpr:
		walk(x.x, f)
		for _, y := range x.list {
			walk(y, f)
		}
	case *callExpr:
		for _, y := range x.args {
			walk(y, f)
		}
	}
}

func arityText(a [2]int) string {
	switch {
	case a[1] < 0:
		return itoa(a[0]) + " or more arguments"
	case a[0] == a[1]:
		if a[0] == 1 {
			return "1 argument"
		}
		return itoa(a[0]) + " arguments"
	}
	return itoa(a[0]) + " to " + itoa(a[1]) + " arguments"
}

func itoa(i int) string { return formatNum(float64(i)) }

func (p *parser) parseCmd(c *command) {
	c.expr = p.unary()
	p.operand()
	switch p.tok.kind {
	case tString:
		glob := p.tok.text
		off := p.tok.off
		p.advance(false)
		var re strings.Builder
		parts := strings.Split(glob, "*")
		if len(parts) < 2 {
			p.fail(off, "parse pattern has no * to capture")
		}
		for i, part := range parts {
			re.WriteString(regexp.QuoteMeta(part))
			if i < len(parts)-1 {
				if i == len(parts)-2 && parts[len(parts)-1] == "" {
					re.WriteString("(.*)")
				} else {
					re.WriteString("(.*?)")
				}
			}
		}
		compiled, err := regexp.Compile("(?s)" + re.String())
		if err != nil {
			p.fail(off, "bad parse pattern: %v", err)
		}
		c.re = compiled
		if !p.isKeyword("as") {
			p.fail(p.tok.off, "expected as and %d field names after the parse pattern", len(parts)-1)
		}
		asOff := p.tok.off
		p.advance(false)
		c.names = p.nameList()
		if len(c.names) != len(parts)-1 {
			p.fail(asOff, "the parse pattern has %d * but %d field names follow as", len(parts)-1, len(c.names))
		}
	case tRegex:
		re, err := regexp.Compile(p.tok.text)
		if err != nil {
			p.fail(p.tok.off, "bad regular expression: %v", err)
		}
		for i, n := range re.SubexpNames() {
			if i > 0 && n != "" {
				c.names = append(c.names, n)
			}
		}
		if len(c.names) == 0 {
			p.fail(p.tok.off, "parse regular expression has no named group (?<name>...)")
		}
		c.re = re
		p.advance(false)
	default:
		p.fail(p.tok.off, "expected a \"glob with *\" or a /regex/ after the parse field, found %s", p.describe())
	}
}

// Expressions, lowest precedence first: or, and, not, comparison,
// + -, * / %, ^, unary -.
func (p *parser) expr() Expr {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		p.fail(p.tok.off, "expression nested too deeply (more than %d levels)", maxDepth)
	}
	p.operand()
	l := p.and()
	for p.isKeyword("or") {
		off := p.tok.off
		p.advance(true)
		l = &binExpr{off: off, op: "or", l: l, r: p.and()}
	}
	return l
}

func (p *parser) and() Expr {
	l := p.not()
	for p.isKeyword("and") {
		off := p.tok.off
		p.advance(true)
		l = &binExpr{off: off, op: "and", l: l, r: p.not()}
	}
	return l
}

func (p *parser) not() Expr {
	p.operand()
	if p.isKeyword("not") {
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			p.fail(p.tok.off, "expression nested too deeply (more than %d levels)", maxDepth)
		}
		off := p.tok.off
		p.advance(true)
		return &unaryExpr{off: off, op: "not", x: p.not()}
	}
	return p.comparison()
}

func (p *parser) comparison() Expr {
	l := p.additive()
	for {
		off := p.tok.off
		switch {
		case p.tok.kind == tPunct && (p.tok.text == "=" || p.tok.text == "!=" || p.tok.text == "<" || p.tok.text == "<=" || p.tok.text == ">" || p.tok.text == ">="):
			op := p.tok.text
			p.advance(true)
			l = &binExpr{off: off, op: op, l: l, r: p.additive()}
		case p.isPunct("=~"):
			p.advance(true)
			l = p.match(off, l, false, true)
		case p.isKeyword("like"):
			p.advance(true)
			l = p.match(off, l, false, false)
		case p.isKeyword("in"):
			p.advance(false)
			l = p.in(off, l, false)
		case p.isKeyword("not"):
			// x not like ..., x not in [...]
			save := p.lx.pos
			saveTok, savePrev := p.tok, p.prev
			p.advance(false)
			switch {
			case p.isKeyword("like"):
				p.advance(true)
				l = p.match(off, l, true, false)
			case p.isKeyword("in"):
				p.advance(false)
				l = p.in(off, l, true)
			default:
				p.lx.pos, p.tok, p.prev = save, saveTok, savePrev
				return l
			}
		default:
			return l
		}
	}
}

func (p *parser) match(off int, x Expr, not, regexOnly bool) Expr {
	m := &matchExpr{off: off, x: x, not: not}
	switch p.tok.kind {
	case tRegex:
		re, err := regexp.Compile(p.tok.text)
		if err != nil {
			p.fail(p.tok.off, "bad regular expression: %v", err)
		}
		m.re = re
	case tString:
		if regexOnly {
			p.fail(p.tok.off, "=~ wants a /regular expression/")
		}
		m.sub = p.tok.text
	default:
		p.fail(p.tok.off, "expected a \"string\" or a /regular expression/, found %s", p.describe())
	}
	p.advance(false)
	return m
}

func (p *parser) in(off int, x Expr, not bool) Expr {
	if !p.isPunct("[") {
		p.fail(p.tok.off, "expected [ after in, found %s", p.describe())
	}
	p.advance(true)
	e := &inExpr{off: off, x: x, not: not}
	for !p.isPunct("]") {
		e.list = append(e.list, p.additive())
		if p.isPunct(",") {
			p.advance(true)
			continue
		}
		if !p.isPunct("]") {
			p.fail(p.tok.off, "expected , or ] in the in list, found %s", p.describe())
		}
	}
	p.advance(false)
	return e
}

func (p *parser) additive() Expr {
	l := p.multiplicative()
	for p.isPunct("+") || p.isPunct("-") {
		op, off := p.tok.text, p.tok.off
		p.advance(true)
		l = &binExpr{off: off, op: op, l: l, r: p.multiplicative()}
	}
	return l
}

func (p *parser) multiplicative() Expr {
	l := p.power()
	for p.isPunct("*") || p.isPunct("/") || p.isPunct("%") {
		op, off := p.tok.text, p.tok.off
		p.advance(true)
		l = &binExpr{off: off, op: op, l: l, r: p.power()}
	}
	return l
}

func (p *parser) power() Expr {
	l := p.unary()
	if p.isPunct("^") {
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			p.fail(p.tok.off, "expression nested too deeply (more than %d levels)", maxDepth)
		}
		off := p.tok.off
		p.advance(true)
		return &binExpr{off: off, op: "^", l: l, r: p.power()}
	}
	return l
}

func (p *parser) unary() Expr {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		p.fail(p.tok.off, "expression nested too deeply (more than %d levels)", maxDepth)
	}
	p.operand()
	if p.isPunct("-") {
		off := p.tok.off
		p.advance(true)
		return &unaryExpr{off: off, op: "-", x: p.unary()}
	}
	return p.primary()
}

func (p *parser) primary() Expr {
	p.operand()
	t := p.tok
	switch t.kind {
	case tNumber:
		p.advance(false)
		return &litExpr{off: t.off, v: numVal(t.num)}
	case tString:
		p.advance(false)
		return &litExpr{off: t.off, v: strVal(t.text)}
	case tPeriod:
		p.advance(false)
		return &periodExpr{off: t.off, p: t.per}
	case tIdent:
		p.advance(false)
		if !t.quoted && p.isPunct("(") {
			return p.call(t)
		}
		if !t.quoted {
			switch strings.ToLower(t.text) {
			case "and", "or", "not", "like", "in", "as", "by", "asc", "desc":
				p.fail(t.off, "expected an expression, found the keyword %s", t.text)
			case "true", "false":
				return &litExpr{off: t.off, v: boolVal(strings.EqualFold(t.text, "true"))}
			}
			if strings.HasPrefix(t.text, ".") || strings.HasSuffix(t.text, ".") || strings.Contains(t.text, "..") {
				p.fail(t.off, "bad field name %q", t.text)
			}
		}
		return &fieldExpr{off: t.off, name: t.text}
	case tPunct:
		if t.text == "(" {
			p.advance(true)
			e := p.expr()
			p.expectPunct(")")
			return e
		}
	case tRegex:
		p.fail(t.off, "a regular expression is only allowed after like, =~ or in parse")
	}
	p.fail(t.off, "expected an expression, found %s", p.describe())
	return nil
}

func (p *parser) args() []Expr {
	var args []Expr
	for {
		args = append(args, p.expr())
		if !p.isPunct(",") {
			return args
		}
		p.advance(true)
	}
}

func (p *parser) call(name token) Expr {
	fn := strings.ToLower(name.text)
	p.advance(true) // (
	var args []Expr
	if !p.isPunct(")") {
		args = p.args()
	}
	p.expectPunct(")")
	ar, ok := funcArity[fn]
	if !ok {
		if _, agg := aggArity[fn]; agg {
			p.fail(name.off, "stats function %s is only allowed in stats", name.text)
		}
		p.fail(name.off, "unknown function %q", name.text)
	}
	if len(args) < ar[0] || (ar[1] >= 0 && len(args) > ar[1]) {
		p.fail(name.off, "%s takes %s, found %d", name.text, arityText(ar), len(args))
	}
	// Periods: bin(P), datefloor(t, P), dateceil(t, P) and nowhere else.
	for i, a := range args {
		_, isPer := a.(*periodExpr)
		wantPer := (fn == "bin" && i == 0) || ((fn == "datefloor" || fn == "dateceil") && i == 1)
		if isPer != wantPer {
			if wantPer {
				p.fail(a.pos(), "%s wants a time period like 5m, 1h or 1d", name.text)
			}
			p.fail(a.pos(), "a time period is only allowed in bin, datefloor and dateceil")
		}
	}
	return &callExpr{off: name.off, fn: fn, args: args}
}
