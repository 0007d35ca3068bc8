package query

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keylessci/keyless/internal/audit"
)

type kind uint8

const (
	kNull kind = iota
	kString
	kNumber
	kBool
	kTime
)

// Value is one value of a query: null, string, number (float64), bool or
// time. The zero Value is null.
type Value struct {
	k kind
	s string  // string; for a number read from JSON, its source text
	n float64 // number; bool as 0/1
	t int64   // time, Unix nanoseconds UTC
}

func strVal(s string) Value  { return Value{k: kString, s: s} }
func numVal(f float64) Value { return Value{k: kNumber, n: f} }
func timeVal(ns int64) Value { return Value{k: kTime, t: ns} }
func boolVal(b bool) Value {
	if b {
		return Value{k: kBool, n: 1}
	}
	return Value{k: kBool}
}

// IsNull reports whether v is null (a missing field, or a JSON null).
func (v Value) IsNull() bool { return v.k == kNull }

// String renders v for display: numbers as Logs Insights shows them
// (integers without a fraction, else the shortest representation), times as
// "2006-01-02 15:04:05.000" UTC, booleans as true/false, null as "".
func (v Value) String() string {
	switch v.k {
	case kString:
		return v.s
	case kNumber:
		return formatNum(v.n)
	case kBool:
		if v.n != 0 {
			return "true"
		}
		return "false"
	case kTime:
		return time.Unix(0, v.t).UTC().Format(displayTimeLayout)
	}
	return ""
}

// text is the string form used by string operations (like, =~, strlen, ...):
// a number read from JSON keeps its source text.
func (v Value) text() string {
	if v.k == kNumber && v.s != "" {
		return v.s
	}
	return v.String()
}

// JSON returns v for a JSON encoder: string, int64 (integral numbers) or
// float64, bool, nil, and times as RFC 3339 strings with milliseconds.
func (v Value) JSON() any {
	switch v.k {
	case kString:
		return v.s
	case kNumber:
		if v.n == math.Trunc(v.n) && math.Abs(v.n) < 1<<53 {
			return int64(v.n)
		}
		if math.IsInf(v.n, 0) || math.IsNaN(v.n) {
			return formatNum(v.n)
		}
		return v.n
	case kBool:
		return v.n != 0
	case kTime:
		return time.Unix(0, v.t).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return nil
}

// AppendJSON appends v as JSON (the encoding of v.JSON() by
// encoding/json with HTML escaping off, as the trail itself writes strings;
// without its reflection: --output json writes every cell
// of every row through it).
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.k {
	case kString:
		return audit.AppendJSONString(dst, v.s)
	case kNumber:
		switch {
		case v.n == math.Trunc(v.n) && math.Abs(v.n) < 1<<53:
			return strconv.AppendInt(dst, int64(v.n), 10)
		case math.IsInf(v.n, 0) || math.IsNaN(v.n):
			return audit.AppendJSONString(dst, formatNum(v.n))
		}
		// encoding/json's float64 format: shortest, 'e' for very large or
		// small magnitudes, with a cleaned-up exponent.
		abs := math.Abs(v.n)
		f := byte('f')
		if abs < 1e-6 || abs >= 1e21 {
			f = 'e'
		}
		n := len(dst)
		dst = strconv.AppendFloat(dst, v.n, f, -1, 64)
		if f == 'e' {
			// clean up e-09 to e-9
			if m := len(dst) - n; m >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
				dst[len(dst)-2] = dst[len(dst)-1]
				dst = dst[:len(dst)-1]
			}
		}
		return dst
	case kBool:
		return strconv.AppendBool(dst, v.n != 0)
	case kTime:
		dst = append(dst, '"')
		dst = time.Unix(0, v.t).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
		return append(dst, '"')
	}
	return append(dst, "null"...)
}

func formatNum(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// clone returns v with its string copied, so it outlives the record it was
// read from.
func (v Value) clone() Value {
	if v.s != "" {
		v.s = strings.Clone(v.s)
	}
	return v
}

// num converts v to a number: numbers, numeric strings, bools, and times
// (as epoch milliseconds).
func (v Value) num() (float64, bool) {
	switch v.k {
	case kNumber, kBool:
		return v.n, true
	case kString:
		return numericString(v.s)
	case kTime:
		return float64(v.t / 1e6), true
	}
	return 0, false
}

// numericString parses s as a decimal number (optional sign, digits, a
// fraction, an exponent; surrounding spaces allowed), nothing else.
func numericString(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return 0, false
	}
	digits := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E':
		default:
			return 0, false
		}
	}
	if !digits {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

func (v Value) truthy() bool {
	switch v.k {
	case kBool, kNumber:
		return v.n != 0
	case kString:
		return v.s != ""
	case kTime:
		return true
	}
	return false
}

// parseTime reads the time formats a query may compare @timestamp with:
// RFC 3339 (with or without fraction), "2006-01-02 15:04:05[.000]" UTC,
// and a date alone.
func parseTime(s string) (int64, bool) {
	if ns, ok := fastRFC3339(s); ok {
		return ns, true
	}
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixNano(), true
		}
	}
	return 0, false
}

// fastRFC3339 parses the "2006-01-02T15:04:05Z" form CloudTrail writes
// without going through time.Parse.
func fastRFC3339(s string) (int64, bool) {
	if len(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return 0, false
	}
	d := func(i, n int) int {
		v := 0
		for j := i; j < i+n; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, da, h, mi, se := d(0, 4), d(5, 2), d(8, 2), d(11, 2), d(14, 2), d(17, 2)
	if y < 0 || mo < 1 || mo > 12 || da < 1 || da > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60 {
		return 0, false
	}
	t := time.Date(y, time.Month(mo), da, h, mi, se, 0, time.UTC)
	if t.Day() != da {
		return 0, false
	}
	return t.UnixNano(), true
}

// compare orders a and b for comparison operators: numbers numerically
// (a string that parses as a number compares numerically with a number),
// times by instant (a string is parsed as a time), everything else by the
// string forms. ok is false when either side is null.
func compare(a, b Value) (int, bool) {
	if a.k == kNull || b.k == kNull {
		return 0, false
	}
	switch {
	case a.k == kNumber && b.k == kNumber:
		return cmpFloat(a.n, b.n), true
	case a.k == kTime && b.k == kTime:
		return cmpInt(a.t, b.t), true
	case a.k == kTime || b.k == kTime:
		other, tv, sign := b, a.t, 1
		if b.k == kTime {
			other, tv, sign = a, b.t, -1
		}
		switch other.k {
		case kNumber:
			return sign * cmpInt(tv/1e6, int64(other.n)), true
		case kString:
			if ns, ok := parseTime(other.s); ok {
				return sign * cmpInt(tv, ns), true
			}
		}
	case a.k == kNumber || b.k == kNumber:
		if x, ok := a.num(); ok {
			if y, ok := b.num(); ok {
				return cmpFloat(x, y), true
			}
		}
	}
	return strings.Compare(a.text(), b.text()), true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sortCompare is the total order of `sort`, min/max and group keys: nulls
// last; otherwise as compare, with non-numbers before numbers
// (Logs Insights' "all non-number values come before all number values").
func sortCompare(a, b Value) int {
	if a.k == kNull || b.k == kNull {
		switch {
		case a.k == b.k:
			return 0
		case a.k == kNull:
			return 1
		}
		return -1
	}
	af, an := sortNumber(a)
	bf, bn := sortNumber(b)
	if an != bn {
		if an {
			return 1
		}
		return -1
	}
	if an {
		if c := cmpFloat(af, bf); c != 0 || a.k == b.k {
			return c
		}
		return cmpInt(int64(a.k), int64(b.k))
	}
	if a.k == kString && b.k == kString {
		return naturalCompare(a.s, b.s)
	}
	if a.k != b.k && a.k != kTime && b.k != kTime {
		// bool vs string: by string form, then kind for a total order.
		if c := naturalCompare(a.text(), b.text()); c != 0 {
			return c
		}
		return cmpInt(int64(a.k), int64(b.k))
	}
	c, _ := compare(a, b)
	if c == 0 && a.k != b.k {
		return cmpInt(int64(a.k), int64(b.k))
	}
	return c
}

// naturalCompare is Logs Insights' "natural sorting" of non-number values:
// runs of digits are compared with each other by length, then by value
// ("5A" before "111A"); everything else, a digit run against a non-digit
// included, by Unicode code point ("2345_" before "@"). Strings equal
// that way are ordered bytewise, so the order stays total.
func naturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			ei, ej := i, j
			for ei < len(a) && isDigit(a[ei]) {
				ei++
			}
			for ej < len(b) && isDigit(b[ej]) {
				ej++
			}
			if c := cmpInt(int64(ei-i), int64(ej-j)); c != 0 {
				return c
			}
			if c := strings.Compare(a[i:ei], b[j:ej]); c != 0 {
				return c
			}
			i, j = ei, ej
			continue
		}
		ra, na := utf8.DecodeRuneInString(a[i:])
		rb, nb := utf8.DecodeRuneInString(b[j:])
		if ra != rb {
			return cmpInt(int64(ra), int64(rb))
		}
		i += na
		j += nb
	}
	switch {
	case i < len(a):
		return 1
	case j < len(b):
		return -1
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// sortNumber reports whether v is a "number value" for sorting: a number,
// or a string of only a number.
func sortNumber(v Value) (float64, bool) {
	switch v.k {
	case kNumber:
		return v.n, true
	case kString:
		return numericString(v.s)
	}
	return 0, false
}

// appendKey appends an encoding of v that is equal for values that group
// together (stats by, count_distinct, dedup).
func appendKey(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.k))
	switch v.k {
	case kString:
		dst = strconv.AppendInt(dst, int64(len(v.s)), 10)
		dst = append(dst, ':')
		dst = append(dst, v.s...)
	case kNumber, kBool:
		dst = strconv.AppendUint(dst, math.Float64bits(v.n+0), 16) // +0 folds -0
		dst = append(dst, ';')
	case kTime:
		dst = strconv.AppendInt(dst, v.t, 10)
		dst = append(dst, ';')
	}
	return dst
}

// parseFloat parses a JSON number; err reports a malformed one.
func parseFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	return f, err != nil
}
