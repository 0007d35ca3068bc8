package policy

import (
	"strings"
	"unicode/utf8"
)

// This file holds the pattern machinery shared by Action, Resource and the
// Like/ARN condition operators: '*' matches any sequence of characters
// (including none, and including '/' and ':'), '?' matches exactly one
// character, and ${key} policy variables (2012-10-17) are replaced by the
// request's single value for key.
//
// A resolved variable is matched as literal text: a '*' inside a tag value
// or a token claim never acts as a wildcard. This is also why AWS offers
// ${*}, ${?} and ${$}: they are literal characters.

type tokKind uint8

const (
	tokLit tokKind = iota + 1
	tokStar
	tokQMark
	tokVar
)

type tok struct {
	kind   tokKind
	s      string // literal text, or the variable's folded key
	hash   uint32 // the variable key's keyHash
	def    string // the variable's default
	hasDef bool
	raw    string // the variable's key as written, for traces and key lists
}

// parseTokens splits s into literal, wildcard and variable tokens. wild
// enables '*' and '?'; vars enables ${...}. A "${" without a closing "}" is
// literal text.
func parseTokens(s string, wild, vars bool) []tok {
	var toks []tok
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, tok{kind: tokLit, s: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if vars && c == '$' && i+1 < len(s) && s[i+1] == '{' {
			if end, ok := varEnd(s, i+2); ok {
				inner := s[i+2 : end]
				if v, ok := parseVar(inner); ok {
					if v.kind == tokLit {
						lit.WriteString(v.s)
					} else {
						flush()
						toks = append(toks, v)
					}
					i = end + 1
					continue
				}
			}
		}
		if wild && (c == '*' || c == '?') {
			flush()
			if c == '*' {
				if n := len(toks); n == 0 || toks[n-1].kind != tokStar { // "**" is "*"
					toks = append(toks, tok{kind: tokStar})
				}
			} else {
				toks = append(toks, tok{kind: tokQMark})
			}
			i++
			continue
		}
		lit.WriteByte(c)
		i++
	}
	flush()
	return toks
}

// varEnd finds the "}" closing a variable whose body starts at i, skipping
// over a quoted default (in which ” is an escaped quote).
func varEnd(s string, i int) (int, bool) {
	quoted := false
	for ; i < len(s); i++ {
		switch s[i] {
		case '\'':
			if quoted && i+1 < len(s) && s[i+1] == '\'' {
				i++
				continue
			}
			quoted = !quoted
		case '}':
			if !quoted {
				return i, true
			}
		}
	}
	return 0, false
}

// parseVar parses the body of ${...}: a special character (*, ?, $), or a
// key with an optional default: "key, 'default'".
func parseVar(inner string) (tok, bool) {
	switch inner {
	case "*", "?", "$":
		return tok{kind: tokLit, s: inner}, true
	}
	key, def, hasDef := inner, "", false
	if i := strings.IndexByte(inner, ','); i >= 0 {
		key = inner[:i]
		d := strings.TrimSpace(inner[i+1:])
		if len(d) < 2 || d[0] != '\'' || d[len(d)-1] != '\'' {
			return tok{}, false
		}
		def = strings.ReplaceAll(d[1:len(d)-1], "''", "'")
		hasDef = true
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return tok{}, false
	}
	fk := foldKey(key)
	return tok{kind: tokVar, s: fk, hash: keyHash(fk), raw: key, def: def, hasDef: hasDef}, true
}

// resolveVars looks up the value of every variable token in toks, in
// order, into dst. ok is false when a variable has no value and no default:
// the pattern then matches nothing ("Policy variables with no value"). A
// multivalued key cannot be used as a variable.
func resolveVars(toks []tok, ctx *Context, dst []string) ([]string, bool) {
	for i := range toks {
		t := &toks[i]
		if t.kind != tokVar {
			continue
		}
		vals, ok := ctx.lookup(t.s, t.hash)
		switch {
		case ok && len(vals) == 1:
			dst = append(dst, vals[0])
		case t.hasDef:
			dst = append(dst, t.def)
		default:
			return dst, false
		}
	}
	return dst, true
}

// globKind selects a fast path for the common pattern shapes.
type globKind uint8

const (
	globExact   globKind = iota + 1 // literal text
	globAny                         // "*"
	globPrefix                      // literal then "*"
	globSuffix                      // "*" then literal
	globStars                       // literals and '*' only, case-sensitive, no variables
	globGeneral                     // anything else: matchTokens
)

// glob is a compiled pattern.
type glob struct {
	kind  globKind
	lit   string   // globExact, globPrefix, globSuffix (lower-case when fold)
	orig  string   // globExact with fold: the pattern as written, tried first
	segs  []string // globStars: the literals between the stars
	toks  []tok
	nvars int
	fold  bool // ASCII case-insensitive (actions)
}

func compileGlob(s string, wild, vars, fold bool) glob {
	orig := s
	if fold {
		s = asciiLower(s)
	}
	toks := parseTokens(s, wild, vars)
	g := glob{toks: toks, fold: fold}
	stars, others := 0, 0
	for _, t := range toks {
		switch t.kind {
		case tokVar:
			g.nvars++
			others++
		case tokStar:
			stars++
		case tokQMark:
			others++
		}
	}
	switch {
	case len(toks) == 0:
		g.kind = globExact
	case len(toks) == 1 && toks[0].kind == tokLit:
		g.kind, g.lit = globExact, toks[0].s
		if fold && !vars {
			g.orig = orig // one literal token: the text as written, for a cheap exact try
		}
	case len(toks) == 1 && toks[0].kind == tokStar:
		g.kind = globAny
	case len(toks) == 2 && toks[0].kind == tokLit && toks[1].kind == tokStar:
		g.kind, g.lit = globPrefix, toks[0].s
	case len(toks) == 2 && toks[0].kind == tokStar && toks[1].kind == tokLit:
		g.kind, g.lit = globSuffix, toks[1].s
	case others == 0 && !fold:
		// Split on the stars: segs[0] is the required prefix and
		// segs[len-1] the required suffix (either may be empty).
		g.kind = globStars
		cur := ""
		for _, t := range toks {
			if t.kind == tokStar {
				g.segs = append(g.segs, cur)
				cur = ""
			} else {
				cur = t.s
			}
		}
		g.segs = append(g.segs, cur)
	default:
		g.kind = globGeneral
	}
	return g
}

// match reports whether s matches; vals are the resolved variables.
func (g *glob) match(s string, vals []string) bool {
	switch g.kind {
	case globAny:
		return true
	case globExact:
		if g.fold {
			return s == g.orig || len(s) == len(g.lit) && asciiEqualFold(s, g.lit)
		}
		return s == g.lit
	case globPrefix:
		if len(s) < len(g.lit) {
			return false
		}
		if g.fold {
			return asciiEqualFold(s[:len(g.lit)], g.lit)
		}
		return s[:len(g.lit)] == g.lit
	case globSuffix:
		if len(s) < len(g.lit) {
			return false
		}
		if g.fold {
			return asciiEqualFold(s[len(s)-len(g.lit):], g.lit)
		}
		return s[len(s)-len(g.lit):] == g.lit
	case globStars:
		return matchStars(g.segs, s)
	}
	return matchTokens(g.toks, vals, s, g.fold)
}

// matchStars matches a '*'-only pattern: the first and last literals anchor
// the ends and the others are found left to right, leftmost first, which is
// optimal when '*' is the only wildcard.
func matchStars(segs []string, s string) bool {
	first, last := segs[0], segs[len(segs)-1]
	if len(s) < len(first)+len(last) || s[:len(first)] != first || s[len(s)-len(last):] != last {
		return false
	}
	rest := s[len(first) : len(s)-len(last)]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(rest, seg)
		if i < 0 {
			return false
		}
		rest = rest[i+len(seg):]
	}
	return true
}

// matchTokens is an iterative wildcard match with one backtracking point
// (the most recent '*'), which is sufficient for '*'/'?' patterns and runs
// in O(len(pattern)·len(s)) without recursion.
func matchTokens(toks []tok, vals []string, s string, fold bool) bool {
	ti, off, vi := 0, 0, 0 // pattern position: token, offset in literal, next variable
	i := 0                 // position in s
	starTi, starVi, starI := -1, 0, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case tokStar:
				ti++
				off = 0
				starTi, starVi, starI = ti, vi, i
				continue
			case tokQMark:
				if i < len(s) {
					_, size := utf8.DecodeRuneInString(s[i:])
					i += size
					ti++
					continue
				}
			case tokLit, tokVar:
				lit := t.s
				if t.kind == tokVar {
					lit = vals[vi]
				}
				if off == len(lit) {
					if t.kind == tokVar {
						vi++
					}
					ti++
					off = 0
					continue
				}
				if i < len(s) && (s[i] == lit[off] || fold && asciiLowerByte(s[i]) == lit[off]) {
					off++
					i++
					continue
				}
			}
		} else if i == len(s) {
			return true
		}
		// Mismatch: let the last '*' absorb one more character.
		if starTi < 0 || starI >= len(s) {
			return false
		}
		_, size := utf8.DecodeRuneInString(s[starI:])
		starI += size
		ti, off, vi, i = starTi, 0, starVi, starI
	}
}

func asciiLowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = asciiLowerByte(b[j])
			}
			return string(b)
		}
	}
	return s
}

// asciiEqualFold compares s with a lower-case literal, ignoring ASCII case.
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if asciiLowerByte(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

// arnPattern matches ARNs segment by segment, as the Resource element and
// the Arn* operators do: partition, service, region and account are matched
// separately (a '*' there does not cross ':'), and the resource part after
// the fifth colon is one pattern in which '*' crosses '/' and ':'.
type arnPattern struct {
	any   bool // "*"
	split bool // the pattern has the six ARN parts
	segs  [6]glob
	whole glob // pattern without six parts: matched as a whole string
	raw   string
}

// compileARN compiles an ARN pattern. varsAll lets variables appear in any
// part (the Arn* condition operators); otherwise they are only recognised
// in the resource part, as the Resource element allows ("only in the
// resource portion of the ARN ... after the fifth colon").
func compileARN(s string, vars, varsAll bool) arnPattern {
	a := arnPattern{raw: s}
	if s == "*" {
		a.any = true
		return a
	}
	parts, ok := splitARN(s, vars)
	if !ok {
		a.whole = compileGlob(s, true, vars, false)
		return a
	}
	a.split = true
	for i, p := range parts {
		a.segs[i] = compileGlob(p, true, vars && (varsAll || i == 5), false)
	}
	return a
}

// splitARN splits s into its six colon-separated parts. With vars, colons
// inside ${...} do not split (${aws:username} contains one).
func splitARN(s string, vars bool) ([6]string, bool) {
	var parts [6]string
	n, start := 0, 0
	for i := 0; i < len(s) && n < 5; i++ {
		if vars && s[i] == '$' && i+1 < len(s) && s[i+1] == '{' {
			if end, ok := varEnd(s, i+2); ok {
				i = end
				continue
			}
		}
		if s[i] == ':' {
			parts[n] = s[start:i]
			n++
			start = i + 1
		}
	}
	if n < 5 {
		return parts, false
	}
	parts[5] = s[start:]
	return parts, true
}

func (a *arnPattern) nvars() int {
	if !a.split {
		return a.whole.nvars
	}
	n := 0
	for i := range a.segs {
		n += a.segs[i].nvars
	}
	return n
}

// match reports whether the ARN v matches; vals are the pattern's resolved
// variables in order.
func (a *arnPattern) match(v string, vals []string) bool {
	if a.any {
		return true
	}
	if !a.split {
		return a.whole.match(v, vals)
	}
	parts, ok := splitARN(v, false)
	if !ok {
		return false
	}
	for i := range a.segs {
		g := &a.segs[i]
		n := g.nvars
		if !g.match(parts[i], vals[:n]) {
			return false
		}
		vals = vals[n:]
	}
	return true
}

// forEachVar calls f for every variable token of the pattern, in order.
func (a *arnPattern) forEachVar(f func(t *tok)) {
	visit := func(g *glob) {
		for i := range g.toks {
			if g.toks[i].kind == tokVar {
				f(&g.toks[i])
			}
		}
	}
	if !a.split {
		visit(&a.whole)
		return
	}
	for i := range a.segs {
		visit(&a.segs[i])
	}
}
