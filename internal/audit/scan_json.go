package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// The JSON splitter of Scan: a validating byte loop that finds where each
// record ends. It agrees with encoding/json.Valid on every input (FuzzSplitter
// checks it), including the nesting limit (maxJSONDepth, the one
// encoding/json enforces) and the acceptance of invalid UTF-8 inside strings,
// which encoding/json.Valid lets through too. It is iterative (the nesting
// is kept in a byte stack, not the call stack) and allocates nothing unless it
// reports an error.

// maxJSONDepth is the deepest nesting accepted, as in encoding/json.
const maxJSONDepth = 10000

// errJSONEnd is a value cut short by the end of the input.
var errJSONEnd = errors.New("unexpected end of JSON input (truncated file?)")

// jsonSyntaxError is invalid JSON at a position.
type jsonSyntaxError struct {
	Pos int
	Err error
}

func (e *jsonSyntaxError) Error() string { return e.Err.Error() }
func (e *jsonSyntaxError) Unwrap() error { return e.Err }

func badChar(b []byte, i int, ctx string) error {
	if i >= len(b) {
		return &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
	}
	return &jsonSyntaxError{Pos: i, Err: fmt.Errorf("invalid character %q %s", b[i], ctx)}
}

// validator validates JSON values; its stack is reused between calls.
type validator struct {
	stack []byte
}

// isSpace reports JSON whitespace.
func isSpace(c byte) bool { return c <= ' ' && (c == ' ' || c == '\n' || c == '\r' || c == '\t') }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// stringEnd returns the index after the closing quote of the string whose
// content starts at b[i], without validating escapes, or -1 if b ends first.
func stringEnd(b []byte, i int) int {
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ (lsb * '"')
			s := x ^ (lsb * '\\')
			t := ((q-lsb)&^q | (s-lsb)&^s) & msb
			if t != 0 {
				i += bits.TrailingZeros64(t) >> 3
				break
			}
			i += 8
		}
		for i < len(b) && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i >= len(b) {
			return -1
		}
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // a backslash and the byte it escapes
		if i > len(b) {
			return -1
		}
	}
}

// ValueEnd returns the index after the JSON value starting at b[i], found
// by its structure alone (strings and brackets, nothing validated), or -1
// when b ends first. It is for walking records Scan has validated: query's
// field extractor and policygen's record reader skip what they do not
// need with it, rather than with copies of their own.
func ValueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	if e := structEnd(b, i); e > i {
		return e
	}
	// No value at b[i] (a ',' or ':' of malformed input): -1, so that a
	// caller's loop always moves on.
	return -1
}

// StringEnd returns the index after the closing quote of the JSON string
// whose opening quote is at b[i], or -1 when b ends first.
func StringEnd(b []byte, i int) int { return stringEnd(b, i+1) }

// structEnd returns the end of the JSON value starting at b[i] by its
// structure alone (strings and brackets; nothing validated), or -1 if b ends
// before it does. Scan's readers use it to cut a stream at record
// boundaries; the workers then validate each record.
func structEnd(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			// Short strings inline (a call per string costs more than
			// its bytes); stringEnd takes over at a backslash.
			j := i + 1
			for j+8 <= len(b) {
				x := binary.LittleEndian.Uint64(b[j:])
				q, s := x^(lsb*'"'), x^(lsb*'\\')
				if t := ((q-lsb)&^q | (s-lsb)&^s) & msb; t != 0 {
					j += bits.TrailingZeros64(t) >> 3
					break
				}
				j += 8
			}
			if j < len(b) && b[j] == '"' {
				j++
			} else if j = stringEnd(b, j); j < 0 {
				return -1
			}
			if depth == 0 {
				return j
			}
			i = j
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth <= 0 {
				return i + 1
			}
		default:
			if depth == 0 {
				for j := i; j < len(b); j++ {
					switch b[j] {
					case ' ', '\t', '\r', '\n', ',', ']', '}', '{', '[', '"', ':':
						return j
					}
				}
				return -1
			}
		}
		i++
	}
	return -1
}

// validString validates the string whose content starts at b[i] and returns
// the index after its closing quote.
func validString(b []byte, i int) (int, error) {
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ (lsb * '"')
			s := x ^ (lsb * '\\')
			t := ((q-lsb)&^q | (s-lsb)&^s | (x-lsb*0x20)&^x) & msb
			if t != 0 {
				i += bits.TrailingZeros64(t) >> 3
				break
			}
			i += 8
		}
		for i < len(b) {
			c := b[i]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			i++
		}
		if i >= len(b) {
			return 0, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return 0, badChar(b, i, "in string literal")
		}
		// A backslash.
		i++
		if i >= len(b) {
			return 0, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			i++
			for k := 0; k < 4; k++ {
				if i >= len(b) {
					return 0, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
				}
				if !isHex(b[i]) {
					return 0, badChar(b, i, "in \\u hexadecimal character escape")
				}
				i++
			}
		default:
			return 0, badChar(b, i, "in string escape code")
		}
	}
}

func isHex(c byte) bool   { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validNumber validates the number starting at b[i] and returns its end.
func validNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return 0, badChar(b, i, "in numeric literal")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) {
			return 0, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
		}
		if !isDigit(b[i]) {
			return 0, badChar(b, i, "after decimal point in numeric literal")
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) {
			return 0, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
		}
		if !isDigit(b[i]) {
			return 0, badChar(b, i, "in exponent of numeric literal")
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i, nil
}

func validLiteral(b []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return 0, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
		}
		if b[i+k] != lit[k] {
			return 0, badChar(b, i+k, "in literal "+lit+" (expecting '"+lit[k:k+1]+"')")
		}
	}
	return i + len(lit), nil
}

// value validates the JSON value starting at b[i] (no leading space) and
// returns the index after it. Errors are *jsonSyntaxError.
func (v *validator) value(b []byte, i int) (int, error) {
	end, st, err := v.scanValue(b, i, v.stack[:0])
	v.stack = st[:0]
	return end, err
}

// scanValue is value with the container stack st (returned, grown).
func (v *validator) scanValue(b []byte, i int, st []byte) (int, []byte, error) {
	var err error
	for {
		// A value is expected at b[i].
		if i >= len(b) {
			return 0, st, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(st) >= maxJSONDepth {
				return 0, st, &jsonSyntaxError{Pos: i, Err: errors.New("exceeded max depth")}
			}
			st = append(st, c)
			i = skipSpace(b, i+1)
			if i >= len(b) {
				return 0, st, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
			}
			if c == '{' {
				if b[i] == '}' {
					st = st[:len(st)-1]
					i++
					break
				}
				if i, err = v.key(b, i); err != nil {
					return 0, st, err
				}
				continue
			}
			if b[i] == ']' {
				st = st[:len(st)-1]
				i++
				break
			}
			continue
		case '"':
			// The common case inline: no escape or control byte, closed
			// within b. validString takes over at the first other byte.
			i++
			for i+8 <= len(b) {
				x := binary.LittleEndian.Uint64(b[i:])
				q, s := x^(lsb*'"'), x^(lsb*'\\')
				if t := ((q-lsb)&^q | (s-lsb)&^s | (x-lsb*0x20)&^x) & msb; t != 0 {
					i += bits.TrailingZeros64(t) >> 3
					break
				}
				i += 8
			}
			if i < len(b) && b[i] == '"' {
				i++
			} else if i, err = validString(b, i); err != nil {
				return 0, st, err
			}
		case 't':
			if i, err = validLiteral(b, i, "true"); err != nil {
				return 0, st, err
			}
		case 'f':
			if i, err = validLiteral(b, i, "false"); err != nil {
				return 0, st, err
			}
		case 'n':
			if i, err = validLiteral(b, i, "null"); err != nil {
				return 0, st, err
			}
		default:
			if c != '-' && !isDigit(c) {
				return 0, st, badChar(b, i, "looking for beginning of value")
			}
			if i, err = validNumber(b, i); err != nil {
				return 0, st, err
			}
		}
		// After a value: close containers or move to the next element.
		for {
			if len(st) == 0 {
				return i, st, nil
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, st, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
			}
			top := st[len(st)-1]
			c := b[i]
			if c == ',' {
				i = skipSpace(b, i+1)
				if top == '{' {
					if i, err = v.key(b, i); err != nil {
						return 0, st, err
					}
				}
				break
			}
			if top == '{' && c == '}' || top == '[' && c == ']' {
				st = st[:len(st)-1]
				i++
				continue
			}
			if top == '{' {
				return 0, st, badChar(b, i, "after object key:value pair")
			}
			return 0, st, badChar(b, i, "after array element")
		}
	}
}

// key validates `"key" :` and the space after it, from b[i].
func (v *validator) key(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
	}
	if b[i] != '"' {
		return 0, badChar(b, i, "looking for beginning of object key string")
	}
	// As in scanValue: the common case inline.
	i++
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		q, s := x^(lsb*'"'), x^(lsb*'\\')
		if t := ((q-lsb)&^q | (s-lsb)&^s | (x-lsb*0x20)&^x) & msb; t != 0 {
			i += bits.TrailingZeros64(t) >> 3
			break
		}
		i += 8
	}
	if i < len(b) && b[i] == '"' {
		i++
	} else {
		var err error
		if i, err = validString(b, i); err != nil {
			return 0, err
		}
	}
	if i < len(b) && b[i] == ':' {
		// Compact JSON: no space around the colon.
		i++
		if i < len(b) && !isSpace(b[i]) {
			return i, nil
		}
		return skipSpace(b, i), nil
	}
	i = skipSpace(b, i)
	if i >= len(b) {
		return 0, &jsonSyntaxError{Pos: len(b), Err: errJSONEnd}
	}
	if b[i] != ':' {
		return 0, badChar(b, i, "after object key")
	}
	return skipSpace(b, i+1), nil
}

// valid reports whether b is one JSON value with optional surrounding space,
// as encoding/json.Valid does.
func (v *validator) valid(b []byte) error {
	i := skipSpace(b, 0)
	end, err := v.value(b, i)
	if err != nil {
		return err
	}
	if j := skipSpace(b, end); j < len(b) {
		return badChar(b, j, "after top-level value")
	}
	return nil
}
