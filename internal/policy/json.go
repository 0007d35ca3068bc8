package policy

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is a small strict JSON reader. encoding/json cannot be used for
// policies: it silently keeps the last of two duplicate keys and matches
// field names case-insensitively, and it does not report positions. The
// reader keeps every object member in order with its position, rejects
// duplicate keys (including keys that differ only in case) at any depth,
// and bounds nesting so adversarial input cannot exhaust the stack.

// maxDepth bounds nesting. A policy needs 7 levels
// (document, Statement, statement, Condition, operator, key, value list).
const maxDepth = 20

// Position is a location in a policy document: 1-based line and 1-based
// column counted in characters.
type Position struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

type pos = Position

type jkind uint8

const (
	jObject jkind = iota + 1
	jArray
	jString
	jNumber
	jBool
	jNull
)

func (k jkind) String() string {
	switch k {
	case jObject:
		return "object"
	case jArray:
		return "array"
	case jString:
		return "string"
	case jNumber:
		return "number"
	case jBool:
		return "boolean"
	default:
		return "null"
	}
}

type jnode struct {
	kind    jkind
	start   pos // position of the first character
	end     pos // position just after the last character
	str     string
	members []jmember
	elems   []*jnode
}

type jmember struct {
	key    string
	keyPos pos
	val    *jnode
}

type jparser struct {
	src  string
	i    int
	line int
	col  int
	path []string // segments of the current location, for error messages
}

func parseJSON(src string) (*jnode, *Error) {
	p := &jparser{src: src, line: 1, col: 1}
	p.skipWS()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipWS()
	if p.i < len(p.src) {
		return nil, p.errf("unexpected content after the JSON document")
	}
	return n, nil
}

func (p *jparser) here() pos { return pos{Line: p.line, Column: p.col} }

func (p *jparser) errf(detail string) *Error {
	return malformed(msgSyntax, detail, p.here(), joinPath(p.path))
}

// advance consumes n bytes, keeping line and column up to date.
func (p *jparser) advance(n int) {
	for k := 0; k < n && p.i < len(p.src); k++ {
		b := p.src[p.i]
		p.i++
		switch {
		case b == '\n':
			p.line++
			p.col = 1
		case b&0xC0 != 0x80: // count characters, not UTF-8 continuation bytes
			p.col++
		}
	}
}

func (p *jparser) skipWS() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\n', '\r':
			p.advance(1)
		default:
			return
		}
	}
}

func (p *jparser) value(depth int) (*jnode, *Error) {
	if depth > maxDepth {
		return nil, p.errf("nesting deeper than " + strconv.Itoa(maxDepth) + " levels")
	}
	if p.i >= len(p.src) {
		return nil, p.errf("unexpected end of document")
	}
	start := p.here()
	var n *jnode
	var err *Error
	switch c := p.src[p.i]; {
	case c == '{':
		n, err = p.object(depth)
	case c == '[':
		n, err = p.array(depth)
	case c == '"':
		var s string
		s, err = p.string()
		n = &jnode{kind: jString, str: s}
	case c == '-' || (c >= '0' && c <= '9'):
		var s string
		s, err = p.number()
		n = &jnode{kind: jNumber, str: s}
	case strings.HasPrefix(p.src[p.i:], "true"):
		p.advance(4)
		n = &jnode{kind: jBool, str: "true"}
	case strings.HasPrefix(p.src[p.i:], "false"):
		p.advance(5)
		n = &jnode{kind: jBool, str: "false"}
	case strings.HasPrefix(p.src[p.i:], "null"):
		p.advance(4)
		n = &jnode{kind: jNull}
	default:
		return nil, p.errf("invalid character " + strconv.QuoteRune(p.peekRune()) + " looking for a value")
	}
	if err != nil {
		return nil, err
	}
	n.start = start
	n.end = p.here()
	return n, nil
}

func (p *jparser) peekRune() rune {
	r, _ := utf8.DecodeRuneInString(p.src[p.i:])
	return r
}

func (p *jparser) object(depth int) (*jnode, *Error) {
	p.advance(1) // {
	n := &jnode{kind: jObject}
	var seen map[string]struct{}
	p.skipWS()
	if p.i < len(p.src) && p.src[p.i] == '}' {
		p.advance(1)
		return n, nil
	}
	for {
		p.skipWS()
		if p.i >= len(p.src) || p.src[p.i] != '"' {
			return nil, p.errf("expected a quoted object key")
		}
		keyPos := p.here()
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		// Duplicate keys are rejected, including case variants: IAM element
		// and condition-key names are compared case-insensitively in places,
		// and "last one wins" has hidden a weaker condition in real incidents.
		fk := foldKey(key)
		if seen == nil {
			seen = make(map[string]struct{}, 8)
		}
		if _, dup := seen[fk]; dup {
			return nil, malformed(msgSyntax, "duplicate key "+strconv.Quote(key), keyPos, joinPath(p.path))
		}
		seen[fk] = struct{}{}
		p.skipWS()
		if p.i >= len(p.src) || p.src[p.i] != ':' {
			return nil, p.errf("expected ':' after object key")
		}
		p.advance(1)
		p.skipWS()
		p.path = append(p.path, keySeg(key))
		v, err := p.value(depth + 1)
		p.path = p.path[:len(p.path)-1]
		if err != nil {
			return nil, err
		}
		n.members = append(n.members, jmember{key: key, keyPos: keyPos, val: v})
		p.skipWS()
		if p.i >= len(p.src) {
			return nil, p.errf("unexpected end of document in object")
		}
		switch p.src[p.i] {
		case ',':
			p.advance(1)
		case '}':
			p.advance(1)
			return n, nil
		default:
			return nil, p.errf("expected ',' or '}' in object")
		}
	}
}

func (p *jparser) array(depth int) (*jnode, *Error) {
	p.advance(1) // [
	n := &jnode{kind: jArray}
	p.skipWS()
	if p.i < len(p.src) && p.src[p.i] == ']' {
		p.advance(1)
		return n, nil
	}
	for {
		p.skipWS()
		p.path = append(p.path, "["+strconv.Itoa(len(n.elems))+"]")
		v, err := p.value(depth + 1)
		p.path = p.path[:len(p.path)-1]
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, v)
		p.skipWS()
		if p.i >= len(p.src) {
			return nil, p.errf("unexpected end of document in array")
		}
		switch p.src[p.i] {
		case ',':
			p.advance(1)
		case ']':
			p.advance(1)
			return n, nil
		default:
			return nil, p.errf("expected ',' or ']' in array")
		}
	}
}

func (p *jparser) number() (string, *Error) {
	start := p.i
	j := p.i
	s := p.src
	if j < len(s) && s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case j < len(s) && s[j] >= '1' && s[j] <= '9':
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
	default:
		p.advance(j - p.i)
		return "", p.errf("invalid number")
	}
	if j < len(s) && s[j] == '.' {
		j++
		if j >= len(s) || s[j] < '0' || s[j] > '9' {
			p.advance(j - p.i)
			return "", p.errf("invalid number")
		}
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j >= len(s) || s[j] < '0' || s[j] > '9' {
			p.advance(j - p.i)
			return "", p.errf("invalid number")
		}
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
	}
	p.advance(j - start)
	return s[start:j], nil
}

// string reads a quoted string starting at p.i and returns its decoded value.
func (p *jparser) string() (string, *Error) {
	p.advance(1) // opening quote
	var b strings.Builder
	escaped := false
	segStart := p.i
	for {
		if p.i >= len(p.src) {
			return "", p.errf("unterminated string")
		}
		c := p.src[p.i]
		switch {
		case c == '"':
			seg := p.src[segStart:p.i]
			p.advance(1)
			if !escaped {
				return seg, nil
			}
			b.WriteString(seg)
			return b.String(), nil
		case c == '\\':
			b.WriteString(p.src[segStart:p.i])
			escaped = true
			if err := p.escape(&b); err != nil {
				return "", err
			}
			segStart = p.i
		case c < 0x20:
			return "", p.errf("control character in string")
		case c < utf8.RuneSelf:
			p.advance(1)
		default:
			r, size := utf8.DecodeRuneInString(p.src[p.i:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.errf("invalid UTF-8 in string")
			}
			p.advance(size)
		}
	}
}

func (p *jparser) escape(b *strings.Builder) *Error {
	if p.i+1 >= len(p.src) {
		return p.errf("unterminated escape sequence")
	}
	c := p.src[p.i+1]
	if r, ok := simpleEscape(c); ok {
		b.WriteByte(r)
		p.advance(2)
		return nil
	}
	if c != 'u' {
		return p.errf("invalid escape sequence \\" + string(rune(c)))
	}
	r, ok := p.hex4(p.i + 2)
	if !ok {
		return p.errf("invalid \\u escape")
	}
	p.advance(6)
	if utf16IsSurrogate(r) {
		// A high surrogate must be followed by an escaped low surrogate;
		// lone surrogates are rejected rather than silently replaced.
		if r >= 0xDC00 || p.i+1 >= len(p.src) || p.src[p.i] != '\\' || p.src[p.i+1] != 'u' {
			return p.errf("lone UTF-16 surrogate in \\u escape")
		}
		lo, ok := p.hex4(p.i + 2)
		if !ok || lo < 0xDC00 || lo > 0xDFFF {
			return p.errf("lone UTF-16 surrogate in \\u escape")
		}
		p.advance(6)
		r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
	}
	b.WriteRune(r)
	return nil
}

func simpleEscape(c byte) (byte, bool) {
	switch c {
	case '"', '\\', '/':
		return c, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

func utf16IsSurrogate(r rune) bool { return r >= 0xD800 && r <= 0xDFFF }

func (p *jparser) hex4(at int) (rune, bool) {
	if at+4 > len(p.src) {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		c := p.src[at+k]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// foldKey maps s to a representative of its case-folding class, so that two
// keys collide exactly when strings.EqualFold reports them equal.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for _, r := range s {
		// The smallest rune of the fold orbit is the class representative.
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		if m < utf8.RuneSelf {
			m = rune(asciiLowerByte(byte(m))) // agree with the ASCII path
		}
		b.WriteRune(m)
	}
	return b.String()
}

// keySeg renders an object key as a path segment: .Key when it is a plain
// identifier, ["key"] otherwise (condition keys contain '.', ':' and '/').
func keySeg(key string) string {
	plain := key != ""
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	if plain {
		return "." + key
	}
	return "[" + strconv.Quote(key) + "]"
}

func joinPath(segs []string) string {
	s := strings.Join(segs, "")
	return strings.TrimPrefix(s, ".")
}
