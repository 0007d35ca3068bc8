package policygen

import (
	"bytes"

	"github.com/buger/jsonparser"

	"github.com/keylessci/keyless/internal/audit"
)

// The hot path walks records audit.Scan has already validated (each is a
// syntactically valid JSON object), so it only needs to find the ends of
// values: audit's structural cut (strings eight bytes a round,
// containers by counting brackets outside strings). On input that is not valid JSON these functions return wrong
// spans but never read out of bounds.

// rjSpace reports JSON white space.
func rjSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func rjSkip(b []byte, i int) int {
	for i < len(b) && rjSpace(b[i]) {
		i++
	}
	return i
}

// rjStringEnd and rjValueEnd are audit's structural cut (audit.StringEnd,
// audit.ValueEnd), with the end of b instead of -1 when b ends first.
func rjStringEnd(b []byte, i int) int {
	if e := audit.StringEnd(b, i); e >= 0 {
		return e
	}
	return len(b)
}

func rjValueEnd(b []byte, i int) int {
	if e := audit.ValueEnd(b, i); e >= 0 {
		return e
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
