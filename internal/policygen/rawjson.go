package policygen

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	"github.com/buger/jsonparser"
)

// The hot path walks records audit.Scan has already validated (each is a
// syntactically valid JSON object), so it only needs to find the ends of
// values: strings by IndexByte, containers by counting brackets outside
// strings. On input that is not valid JSON these functions return wrong
// spans but never read out of bounds.

// rjSpace reports JSON white space.
func rjSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func rjSkip(b []byte, i int) int {
	for i < len(b) && rjSpace(b[i]) {
		i++
	}
	return i
}

// rjStringEnd returns the index after the closing quote of the string whose
// opening quote is at b[i].
func rjStringEnd(b []byte, i int) int {
	i++
	for {
		// Eight bytes at a time to the next quote or backslash: most
		// strings of an event are short, where IndexByte's call costs
		// more than the scan.
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ (rjLSB * '"')
			s := x ^ (rjLSB * '\\')
			if t := ((q-rjLSB)&^q | (s-rjLSB)&^s) & rjMSB; t != 0 {
				i += bits.TrailingZeros64(t) >> 3
				break
			}
			i += 8
		}
		for i < len(b) && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i >= len(b) {
			return len(b)
		}
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // a backslash and the byte it escapes
	}
}

const (
	rjLSB = 0x0101010101010101
	rjMSB = 0x8080808080808080
)

// rjValueEnd returns the index after the value starting at b[i].
func rjValueEnd(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return rjStringEnd(b, i)
	case '{', '[':
		// Strings by IndexByte (most of the bytes), the rest by a loop.
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = rjStringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) {
		switch c := b[i]; {
		case c == ',' || c == '}' || c == ']' || rjSpace(c):
			return i
		}
		i++
	}
	return len(b)
}

// rjEach calls fn with the (raw, escaped) key and the raw value of each
// member of the object obj, until fn returns false.
func rjEach(obj []byte, fn func(key, val []byte) bool) {
	i := rjSkip(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = rjSkip(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		ke := rjStringEnd(obj, i)
		key := obj[i+1 : max(i+1, ke-1)]
		i = rjSkip(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = rjSkip(obj, i+1)
		ve := rjValueEnd(obj, i)
		if !fn(key, obj[i:ve]) {
			return
		}
		i = rjSkip(obj, ve)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

// rjMember returns the raw value at path in obj, or nil.
func rjMember(obj []byte, path ...string) []byte {
	for _, k := range path {
		var found []byte
		rjEach(obj, func(key, val []byte) bool {
			if string(key) == k {
				found = val
				return false
			}
			return true
		})
		if found == nil {
			return nil
		}
		obj = found
	}
	return obj
}

// rjType is the jsonparser type of a raw value.
func rjType(v []byte) jsonparser.ValueType {
	if len(v) == 0 {
		return jsonparser.NotExist
	}
	switch v[0] {
	case '"':
		return jsonparser.String
	case '{':
		return jsonparser.Object
	case '[':
		return jsonparser.Array
	case 't', 'f':
		return jsonparser.Boolean
	case 'n':
		return jsonparser.Null
	}
	return jsonparser.Number
}

// rjString returns the content of a raw JSON string, unescaped into buf
// when it has escapes; ok is false for another type.
func rjString(v []byte, buf []byte) (s []byte, nbuf []byte, ok bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, buf, false
	}
	c := v[1 : len(v)-1]
	if bytes.IndexByte(c, '\\') < 0 {
		return c, buf, true
	}
	u, err := jsonparser.Unescape(c, buf[:0])
	if err != nil {
		return nil, buf, false
	}
	return u, u, true
}
