package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseJSONObject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string]any
		wantErr error
	}{
		{name: "empty object", in: `{}`, want: map[string]any{}},
		{name: "whitespace around", in: " \t\r\n{ \"a\" : 1 }\n", want: map[string]any{"a": json.Number("1")}},
		{name: "all value kinds", in: `{"s":"x","n":-1.5e3,"t":true,"f":false,"z":null,"a":[1,"b",[]],"o":{"k":{}}}`,
			want: map[string]any{"s": "x", "n": json.Number("-1.5e3"), "t": true, "f": false, "z": nil,
				"a": []any{json.Number("1"), "b", []any{}}, "o": map[string]any{"k": map[string]any{}}}},
		{name: "escapes", in: `{"e":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, want: map[string]any{"e": "\"\\/\b\f\n\r\té😀"}},
		{name: "raw UTF-8", in: `{"é":"ü"}`, want: map[string]any{"é": "ü"}},
		{name: "distinct names that only look alike", in: `{"kid":1,"kid ":2}`, want: map[string]any{"kid": json.Number("1"), "kid ": json.Number("2")}},
		{name: "same name in different objects", in: `{"a":{"x":1},"b":{"x":2}}`,
			want: map[string]any{"a": map[string]any{"x": json.Number("1")}, "b": map[string]any{"x": json.Number("2")}}},

		{name: "duplicate", in: `{"a":1,"a":2}`, wantErr: ErrJSONDuplicateMember},
		{name: "duplicate through an escape", in: `{"sub":1,"s\u0075b":2}`, wantErr: ErrJSONDuplicateMember},
		{name: "nested duplicate", in: `{"o":{"a":1,"a":1}}`, wantErr: ErrJSONDuplicateMember},
		{name: "case variant", in: `{"sub":1,"SUB":2}`, wantErr: ErrJSONCaseVariant},
		{name: "case variant, upper first", in: `{"Aud":1,"aud":2}`, wantErr: ErrJSONCaseVariant},
		{name: "Kelvin sign folds to k", in: `{"kid":1,"` + "\u212a" + `id":2}`, wantErr: ErrJSONCaseVariant},
		{name: "long s folds to s", in: `{"sub":1,"` + "\u017f" + `ub":2}`, wantErr: ErrJSONCaseVariant},
		{name: "nested case variant", in: `{"o":{"Tag":1,"tag":2}}`, wantErr: ErrJSONCaseVariant},
		{name: "too deep", in: `{"a":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, wantErr: ErrJSONTooDeep},
		{name: "array top level", in: `[]`, wantErr: ErrJSONNotObject},
		{name: "string top level", in: `"x"`, wantErr: ErrJSONNotObject},
		{name: "empty", in: ``, wantErr: ErrJSONNotObject},
		{name: "byte order mark", in: "\uFEFF{}", wantErr: ErrJSONNotObject},
		{name: "invalid UTF-8", in: "{\"a\":\"\xc3\x28\"}", wantErr: ErrJSONInvalidUTF8},
		{name: "trailing object", in: `{}{}`, wantErr: ErrJSONSyntax},
		{name: "trailing garbage", in: `{} x`, wantErr: ErrJSONSyntax},
		{name: "trailing comma", in: `{"a":1,}`, wantErr: ErrJSONSyntax},
		{name: "array trailing comma", in: `{"a":[1,]}`, wantErr: ErrJSONSyntax},
		{name: "single quotes", in: `{'a':1}`, wantErr: ErrJSONSyntax},
		{name: "unquoted name", in: `{a:1}`, wantErr: ErrJSONSyntax},
		{name: "leading zero", in: `{"a":01}`, wantErr: ErrJSONSyntax},
		{name: "plus sign", in: `{"a":+1}`, wantErr: ErrJSONSyntax},
		{name: "bare fraction", in: `{"a":.5}`, wantErr: ErrJSONSyntax},
		{name: "empty exponent", in: `{"a":1e}`, wantErr: ErrJSONSyntax},
		{name: "NaN", in: `{"a":NaN}`, wantErr: ErrJSONSyntax},
		{name: "truncated literal", in: `{"a":tru}`, wantErr: ErrJSONSyntax},
		{name: "raw control character", in: "{\"a\":\"\x01\"}", wantErr: ErrJSONSyntax},
		{name: "invalid escape", in: `{"a":"\x41"}`, wantErr: ErrJSONSyntax},
		{name: "short unicode escape", in: `{"a":"\u12"}`, wantErr: ErrJSONSyntax},
		{name: "lone high surrogate", in: `{"a":"\ud800"}`, wantErr: ErrJSONSyntax},
		{name: "lone low surrogate", in: `{"a":"\udc00"}`, wantErr: ErrJSONSyntax},
		{name: "high surrogate then non-surrogate", in: `{"a":"\ud800\u0041"}`, wantErr: ErrJSONSyntax},
		{name: "unterminated string", in: `{"a":"x`, wantErr: ErrJSONSyntax},
		{name: "unterminated object", in: `{"a":1`, wantErr: ErrJSONSyntax},
		{name: "missing colon", in: `{"a" 1}`, wantErr: ErrJSONSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseJSONObject([]byte(tc.in), maxJSONDepth)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestFoldKeyMatchesEqualFold(t *testing.T) {
	words := []string{"kid", "KID", "Kid", "\u212aid", "sub", "\u017fub", "SUB", "aud", "AUD", "ß", "ẞ", "σ", "Σ", "ς", "ǅ", "ǆ", "Ǆ", "x", "é", "É"}
	for _, a := range words {
		for _, b := range words {
			if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("foldKey(%q)==foldKey(%q) is %v, EqualFold %v", a, b, got, want)
			}
		}
	}
}

// FuzzParseJSONObject is a differential test: whatever the strict parser
// accepts, encoding/json accepts too and decodes to the same value; and
// nothing panics.
func FuzzParseJSONObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"\u00e9"}`, `{"a":1,"a":2}`, `{"a":1,"A":2}`,
		`{"s":"\ud83d\ude00"}`, `{"n":-0.5e-3}`, "{\"a\":\"\xff\"}", `{"a":` + strings.Repeat("[", 40) + `}`,
		basePayloadJSON(""),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseJSONObject(data, maxJSONDepth)
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var want map[string]any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("strict parser accepted %q, encoding/json refused: %v", data, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("values differ for %q (-encoding/json +strict):\n%s", data, d)
		}
	})
}
