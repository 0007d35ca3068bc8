package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func splitterSeeds() []string {
	return []string{
		`{}`, `[]`, `{"a":1}`, ` {"a" : [1, 2.5e-3, -0, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9"]} `,
		`{"a":}`, `{"a" 1}`, `{,}`, `[1,]`, `[01]`, `[1.]`, `[1e]`, `[-]`, `"\x"`, `"\u12"`, `"a` + "\x01" + `"`,
		`tru`, `nul`, `{"a":1}}`, `{"a":1} {"b":2}`, "\"\xff\xfe\"", `{"Records":[{"eventID":"1"},{"eventID":"2"}]}`,
		strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth),
		strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
		strings.Repeat(`{"a":`, 50) + "1" + strings.Repeat("}", 50),
		"", " ", `"abcdefghijklmnopqrstuvwxyz\"0123456789"`, `1`, `-12.5E+07`,
	}
}

// FuzzSplitter checks the validator against encoding/json.Valid, and that
// structEnd finds the end of every valid value.
func FuzzSplitter(f *testing.F) {
	for _, s := range splitterSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v validator
		got := v.valid(b) == nil
		if want := json.Valid(b); got != want {
			t.Fatalf("valid(%q) = %v, json.Valid = %v (err %v)", b, got, want, v.valid(b))
		}
		i := skipSpace(b, 0)
		end, err := v.value(b, i)
		if err != nil {
			var se *jsonSyntaxError
			if !asSyntax(err, &se) || se.Pos < 0 || se.Pos > len(b) {
				t.Fatalf("value(%q): error %v without a position in the input", b, err)
			}
			return
		}
		if !json.Valid(b[i:end]) {
			t.Fatalf("value(%q) = %d: %q is not valid", b, end, b[i:end])
		}
		// Scalars end at a delimiter for structEnd (records are objects).
		if c := b[i]; c != '{' && c != '[' && c != '"' {
			return
		}
		if se := structEnd(b, i); se != end {
			t.Fatalf("structEnd(%q) = %d, validator says %d", b, se, end)
		}
	})
}

func asSyntax(err error, target **jsonSyntaxError) bool {
	se, ok := err.(*jsonSyntaxError)
	*target = se
	return ok
}

func TestSplitterSeeds(t *testing.T) {
	var v validator
	for _, s := range splitterSeeds() {
		if got, want := v.valid([]byte(s)) == nil, json.Valid([]byte(s)); got != want {
			t.Errorf("valid(%.40q) = %v, json.Valid = %v", s, got, want)
		}
	}
	// The error positions a ScanError reports.
	for _, c := range []struct {
		in  string
		pos int
	}{
		{`{"a":1,}`, 7}, {`{"a":tru}`, 8}, {`{"a":"b`, 7}, {`[1,2`, 4}, {"{\"a\":\"\x01\"}", 6},
	} {
		_, err := v.value([]byte(c.in), 0)
		se, ok := err.(*jsonSyntaxError)
		if !ok || se.Pos != c.pos {
			t.Errorf("value(%q) error %v, want one at %d", c.in, err, c.pos)
		}
	}
	_ = bytes.MinRead
}
