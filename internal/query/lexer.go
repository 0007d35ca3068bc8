package query

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SyntaxError is a query that does not parse. Offset is in bytes, Line and
// Col (in runes) are 1-based.
type SyntaxError struct {
	Offset, Line, Col int
	Msg               string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("query: line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// Caret returns the line of src the error is on and, under it, a caret at
// the error's column.
func (e *SyntaxError) Caret(src string) string {
	lines := strings.Split(src, "\n")
	if e.Line < 1 || e.Line > len(lines) {
		return ""
	}
	line := strings.TrimRight(lines[e.Line-1], "\r")
	pad := make([]byte, 0, e.Col)
	i := 0
	for _, r := range line {
		if i >= e.Col-1 {
			break
		}
		if r == '\t' {
			pad = append(pad, '\t')
		} else {
			pad = append(pad, ' ')
		}
		i++
	}
	for ; i < e.Col-1; i++ {
		pad = append(pad, ' ')
	}
	return line + "\n" + string(pad) + "^"
}

func newSyntaxError(src string, off int, format string, args ...any) *SyntaxError {
	if off < 0 {
		off = 0
	}
	if off > len(src) {
		off = len(src)
	}
	line, col := 1, 1
	for _, r := range src[:off] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &SyntaxError{Offset: off, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tNumber
	tPeriod
	tString
	tRegex
	tPunct
)

type token struct {
	kind   tokKind
	off    int
	end    int
	text   string // ident name, decoded string, regex source, punctuation
	num    float64
	per    period
	quoted bool // a `backquoted` identifier
}

type lexer struct {
	src string
	pos int
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '@' || c == '$' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c == '.' || (c >= '0' && c <= '9')
}

// next returns the next token; a '/' is read as the start of a regex when
// regex is set (the parser expects an operand).
func (l *lexer) next(regex bool) (token, *SyntaxError) {
	src := l.src
	for l.pos < len(src) {
		c := src[l.pos]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			l.pos++
			continue
		}
		if c == '#' {
			for l.pos < len(src) && src[l.pos] != '\n' {
				l.pos++
			}
			continue
		}
		break
	}
	start := l.pos
	if start >= len(src) {
		return token{kind: tEOF, off: start, end: start}, nil
	}
	c := src[start]
	switch {
	case c >= '0' && c <= '9' || (c == '.' && start+1 < len(src) && src[start+1] >= '0' && src[start+1] <= '9'):
		return l.number()
	case isIdentStart(c):
		i := start
		for i < len(src) && isIdentChar(src[i]) {
			i++
		}
		l.pos = i
		return token{kind: tIdent, off: start, end: i, text: src[start:i]}, nil
	case c == '`':
		end := strings.IndexByte(src[start+1:], '`')
		if end < 0 {
			return token{}, newSyntaxError(src, start, "unterminated `quoted` field name")
		}
		l.pos = start + 1 + end + 1
		if end == 0 {
			return token{}, newSyntaxError(src, start, "empty `quoted` field name")
		}
		return token{kind: tIdent, off: start, end: l.pos, text: src[start+1 : start+1+end], quoted: true}, nil
	case c == '"' || c == '\'':
		return l.str(c)
	case c == '/' && regex:
		var b strings.Builder
		i := start + 1
		for i < len(src) && src[i] != '/' {
			if src[i] == '\\' && i+1 < len(src) && src[i+1] == '/' {
				b.WriteByte('/')
				i += 2
				continue
			}
			if src[i] == '\\' && i+1 < len(src) {
				b.WriteString(src[i : i+2])
				i += 2
				continue
			}
			b.WriteByte(src[i])
			i++
		}
		if i >= len(src) {
			return token{}, newSyntaxError(src, start, "unterminated regular expression")
		}
		l.pos = i + 1
		return token{kind: tRegex, off: start, end: l.pos, text: b.String()}, nil
	}
	for _, op := range [...]string{"!=", "<=", ">=", "=~", "==", "|", ",", "(", ")", "[", "]", "+", "-", "*", "/", "%", "^", "=", "<", ">"} {
		if strings.HasPrefix(src[start:], op) {
			l.pos = start + len(op)
			if op == "==" {
				op = "="
			}
			return token{kind: tPunct, off: start, end: l.pos, text: op}, nil
		}
	}
	r, _ := utf8.DecodeRuneInString(src[start:])
	return token{}, newSyntaxError(src, start, "unexpected character %q", r)
}

var periodUnits = map[string]period{
	"ms": {d: 1e6}, "s": {d: 1e9}, "sec": {d: 1e9}, "m": {d: 60e9}, "min": {d: 60e9},
	"h": {d: 3600e9}, "hr": {d: 3600e9}, "d": {d: 86400e9}, "w": {d: 7 * 86400e9},
	"mo": {months: 1}, "q": {months: 3}, "y": {months: 12},
}

func (l *lexer) number() (token, *SyntaxError) {
	src, start := l.src, l.pos
	i := start
	for i < len(src) && (src[i] >= '0' && src[i] <= '9' || src[i] == '.') {
		i++
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') && i+1 < len(src) &&
		(src[i+1] >= '0' && src[i+1] <= '9' || (src[i+1] == '-' || src[i+1] == '+') && i+2 < len(src) && src[i+2] >= '0' && src[i+2] <= '9') {
		i += 2
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
	}
	f, err := strconv.ParseFloat(src[start:i], 64)
	if err != nil {
		return token{}, newSyntaxError(src, start, "bad number %q", src[start:i])
	}
	if i < len(src) && isIdentStart(src[i]) {
		j := i
		for j < len(src) && isIdentChar(src[j]) {
			j++
		}
		unit, ok := periodUnits[strings.ToLower(src[i:j])]
		if !ok || f <= 0 || f != float64(int64(f)) {
			return token{}, newSyntaxError(src, start, "bad time period %q: want a positive whole number and a unit ms, s, m, h, d, w, mo, q or y", src[start:j])
		}
		l.pos = j
		p := period{d: unit.d * time.Duration(f), months: unit.months * int(f)}
		if unit.d > 0 && p.d/unit.d != time.Duration(f) {
			return token{}, newSyntaxError(src, start, "time period %q too large", src[start:j])
		}
		return token{kind: tPeriod, off: start, end: j, per: p, text: src[start:j]}, nil
	}
	l.pos = i
	return token{kind: tNumber, off: start, end: i, num: f, text: src[start:i]}, nil
}

func (l *lexer) str(q byte) (token, *SyntaxError) {
	src, start := l.src, l.pos
	var b strings.Builder
	i := start + 1
	for i < len(src) && src[i] != q {
		if src[i] != '\\' {
			b.WriteByte(src[i])
			i++
			continue
		}
		if i+1 >= len(src) {
			break
		}
		switch e := src[i+1]; e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\', '"', '\'', '/':
			b.WriteByte(e)
		case 'u':
			if i+6 <= len(src) {
				if n, err := strconv.ParseUint(src[i+2:i+6], 16, 32); err == nil {
					b.WriteRune(rune(n))
					i += 6
					continue
				}
			}
			return token{}, newSyntaxError(src, i, `bad \u escape: want four hex digits`)
		default:
			return token{}, newSyntaxError(src, i, "unknown escape \\%c", e)
		}
		i += 2
	}
	if i >= len(src) {
		return token{}, newSyntaxError(src, start, "unterminated string")
	}
	l.pos = i + 1
	return token{kind: tString, off: start, end: l.pos, text: b.String()}, nil
}
