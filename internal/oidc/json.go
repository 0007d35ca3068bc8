package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// A strict JSON decoder for JOSE headers, JWT payloads, discovery documents
// and JWK sets. encoding/json (v1) is unsuitable here: it keeps the LAST of
// duplicate member names, matches names case-insensitively when decoding into
// structs, and silently replaces invalid UTF-8. Each of those is a parser
// differential between the signature checker, the policy evaluator and the
// audit log (trust-pitfalls §7.1 V08, Trail of Bits 2025-06). This parser
// accepts a strict subset of what encoding/json accepts and produces the
// same values (objects as map[string]any, arrays as []any, numbers as
// json.Number), which the differential fuzz test checks.

// Errors reported by the strict decoder. They are wrapped with the byte
// offset; match them with errors.Is.
var (
	ErrJSONSyntax          = errors.New("invalid JSON")
	ErrJSONDuplicateMember = errors.New("duplicate member name")
	ErrJSONCaseVariant     = errors.New("member names differ only in case")
	ErrJSONTooDeep         = errors.New("JSON nested too deeply")
	ErrJSONNotObject       = errors.New("JSON value is not an object")
	ErrJSONInvalidUTF8     = errors.New("invalid UTF-8 in JSON")
)

// maxJSONDepth bounds nesting (V07). CI tokens nest two or three levels;
// 32 leaves room for session-tag objects and rejects stack-depth games.
const maxJSONDepth = 32

type jsonParser struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
}

// parseJSONObject decodes data, which must hold exactly one JSON object and
// nothing but whitespace around it.
//
// Member names that are equal, or equal under Unicode simple case folding
// (what encoding/json uses to match struct fields), are rejected at every
// level: "sub" next to "Sub" would let a case-insensitive consumer downstream
// read a different value from the one we validated.
func parseJSONObject(data []byte, maxDepth int) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, ErrJSONInvalidUTF8
	}
	p := jsonParser{data: data, maxDepth: maxDepth}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, ErrJSONNotObject
	}
	v, err := p.parseValue()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("trailing data after the top-level value")
	}
	return v.(map[string]any), nil
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrJSONSyntax, p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) parseValue() (any, error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.parseObject()
	case c == '[':
		return p.parseArray()
	case c == '"':
		return p.parseString()
	case c == '-' || ('0' <= c && c <= '9'):
		return p.parseNumber()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *jsonParser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) {
		return p.errorf("invalid literal")
	}
	for i := 0; i < len(lit); i++ {
		if p.data[p.pos+i] != lit[i] {
			return p.errorf("invalid literal")
		}
	}
	p.pos += len(lit)
	return nil
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > p.maxDepth {
		return fmt.Errorf("%w (more than %d levels)", ErrJSONTooDeep, p.maxDepth)
	}
	return nil
}

func (p *jsonParser) parseObject() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // '{'
	obj := make(map[string]any)
	// folded maps the case-fold key of a name to the name as written. It
	// is only needed once a name that is not its own fold key (upper-case
	// or non-ASCII letters) appears: until then, obj itself answers "is
	// there a name with this fold key?" for all-lower-case names.
	var folded map[string]string
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return obj, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("expected a member name")
		}
		name, err := p.parseString()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[name]; dup {
			return nil, fmt.Errorf("%w %q", ErrJSONDuplicateMember, truncate(name, 64))
		}
		if key := foldKey(name); key != name || folded != nil {
			if _, ok := obj[key]; ok && key != name {
				return nil, fmt.Errorf("%w: %q and %q", ErrJSONCaseVariant, truncate(key, 64), truncate(name, 64))
			}
			if prev, ok := folded[key]; ok {
				return nil, fmt.Errorf("%w: %q and %q", ErrJSONCaseVariant, truncate(prev, 64), truncate(name, 64))
			}
			if folded == nil {
				folded = make(map[string]string)
			}
			folded[key] = name
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("expected ':' after a member name")
		}
		p.pos++
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		obj[name] = v
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.depth--
			return obj, nil
		default:
			return nil, p.errorf("expected ',' or '}' in object")
		}
	}
}

func (p *jsonParser) parseArray() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // '['
	arr := []any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return arr, nil
	}
	for {
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.depth--
			return arr, nil
		default:
			return nil, p.errorf("expected ',' or ']' in array")
		}
	}
}

func (p *jsonParser) parseNumber() (any, error) {
	start := p.pos
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return nil, p.errorf("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return nil, p.errorf("invalid number fraction")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return nil, p.errorf("invalid number exponent")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	p.pos = i
	return json.Number(d[start:i]), nil
}

// parseString decodes a JSON string starting at the opening quote. The
// input is already known to be valid UTF-8.
func (p *jsonParser) parseString() (string, error) {
	d := p.data
	start := p.pos + 1
	i := start
	// Fast path: no escapes.
	for i < len(d) {
		c := d[i]
		if c == '"' {
			p.pos = i + 1
			return string(d[start:i]), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			p.pos = i
			return "", p.errorf("control character in string")
		}
		i++
	}
	var b strings.Builder
	b.Write(d[start:i])
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return b.String(), nil
		case c < 0x20:
			p.pos = i
			return "", p.errorf("control character in string")
		case c != '\\':
			b.WriteByte(c)
			i++
			continue
		}
		// Escape sequence.
		i++
		if i >= len(d) {
			break
		}
		switch d[i] {
		case '"', '\\', '/':
			b.WriteByte(d[i])
			i++
		case 'b':
			b.WriteByte('\b')
			i++
		case 'f':
			b.WriteByte('\f')
			i++
		case 'n':
			b.WriteByte('\n')
			i++
		case 'r':
			b.WriteByte('\r')
			i++
		case 't':
			b.WriteByte('\t')
			i++
		case 'u':
			r, ok := hex4(d, i+1)
			if !ok {
				p.pos = i
				return "", p.errorf("invalid \\u escape")
			}
			i += 5
			if utf16.IsSurrogate(r) {
				// Only a high surrogate followed by a low one is a
				// character; a lone half is rejected rather than turned
				// into U+FFFD as encoding/json does, so two different
				// inputs cannot decode to the same name.
				if r >= 0xDC00 || i+6 > len(d) || d[i] != '\\' || d[i+1] != 'u' {
					p.pos = i
					return "", p.errorf("lone surrogate in \\u escape")
				}
				r2, ok := hex4(d, i+2)
				if !ok {
					p.pos = i
					return "", p.errorf("invalid \\u escape")
				}
				combined := utf16.DecodeRune(r, r2)
				if combined == unicode.ReplacementChar {
					p.pos = i
					return "", p.errorf("lone surrogate in \\u escape")
				}
				r = combined
				i += 6
			}
			b.WriteRune(r)
		default:
			p.pos = i
			return "", p.errorf("invalid escape character %q", d[i])
		}
	}
	p.pos = len(d)
	return "", p.errorf("unterminated string")
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// foldKey maps s to a canonical representative of its simple-case-folding
// class, so that foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b).
// All-lower-case ASCII strings (the common case) are returned unchanged
// without allocating.
func foldKey(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return foldSlow(s)
		}
	}
	return s
}

func foldSlow(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(minFold(r))
	}
	return b.String()
}

// minFold returns one fixed member of r's simple-folding orbit: the ASCII
// lower-case letter when the orbit has one (so 'K', 'k' and the Kelvin sign
// U+212A all map to 'k', and lower-case ASCII names are their own key),
// otherwise the smallest rune of the orbit.
func minFold(r rune) rune {
	m := r
	for f := r; ; {
		if 'a' <= f && f <= 'z' {
			return f
		}
		if f < m {
			m = f
		}
		if f = unicode.SimpleFold(f); f == r {
			return m
		}
	}
}

// truncate shortens attacker-supplied text that goes into a Reason.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
