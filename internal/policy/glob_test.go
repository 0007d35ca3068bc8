package policy

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, value string
		fold           bool
		want           bool
	}{
		{"", "", false, true},
		{"", "a", false, false},
		{"*", "", false, true},
		{"*", "anything/at:all", false, true},
		{"a*", "abc", false, true},
		{"a*", "ba", false, false},
		{"*c", "abc", false, true},
		{"a*c", "ac", false, true},
		{"a*c", "abcbc", false, true},
		{"a*c", "abcb", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"a?c", "aéc", false, true}, // ? is one character, not one byte
		{"**", "x", false, true},
		{"*a*b*c*", "xxaxxbxxcxx", false, true},
		{"*a*b*c*", "xxaxxcxxbxx", false, false},
		{"repo:acme/*:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main", false, true},
		{"repo:acme/*:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main2", false, false},
		{"s3:get*", "S3:GetObject", true, true},
		{"S3:GET*", "s3:getobject", true, true},
		{"s3:Get*", "S3:GetObject", false, false},
	} {
		g := compileGlob(tc.pattern, true, false, tc.fold)
		if got := g.match(tc.value, nil); got != tc.want {
			t.Errorf("glob %q match %q (fold %v) = %v, want %v", tc.pattern, tc.value, tc.fold, got, tc.want)
		}
	}
}

func TestGlobVariables(t *testing.T) {
	ctx := NewContext(2)
	ctx.Set("aws:username", "a*b")
	ctx.Set("multi", "1", "2")
	for _, tc := range []struct {
		pattern, value string
		want, resolved bool
	}{
		{"home/${aws:username}/*", "home/a*b/x", true, true},
		{"home/${aws:username}/*", "home/aXXb/x", false, true}, // the value's * is literal
		{"home/${AWS:UserName}", "home/a*b", true, true},
		{"${missing}", "", false, false},
		{"${missing, 'd''x'}", "d'x", true, true},
		{"${ missing , 'def' }", "def", true, true},
		{"${multi}", "1", false, false},
		{"${*}${?}${$}", "*?$", true, true},
		{"${unclosed", "${unclosed", true, true},
		{"${}", "${}", true, true},
		{"${a, bare}", "${a, bare}", true, true},
		{"x${missing, '}'}y", "x}y", true, true},
	} {
		g := compileGlob(tc.pattern, true, true, false)
		vals, ok := resolveVars(g.toks, ctx, nil)
		if ok != tc.resolved {
			t.Errorf("%q: resolved = %v, want %v", tc.pattern, ok, tc.resolved)
			continue
		}
		if ok && g.match(tc.value, vals) != tc.want {
			t.Errorf("%q match %q = %v, want %v", tc.pattern, tc.value, !tc.want, tc.want)
		}
	}
}

func TestARNPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, value string
		want           bool
	}{
		{"*", "anything", true},
		{"arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b", true},
		{"arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", false},
		{"arn:aws:iam::*:role/*", "arn:aws:iam::123456789012:role/x", true},
		{"arn:aws:iam::*:role/*", "arn:aws:iam:us-east-1:123456789012:role/x", false},
		{"arn:*:iam::123456789012:root", "arn:aws-cn:iam::123456789012:root", true},
		{"arn:aws:sns:*:123456789012:t", "arn:aws:sns:us-east-1:123456789012:t", true},
		{"arn:aws:sns:*:123456789012:t", "arn:aws:sns:us-east-1:999:123456789012:t", false},
		{"arn:aws:logs:*:*:log-group:*", "arn:aws:logs:eu-west-1:1:log-group:a:log-stream:b", true},
		{"arn:aws:s3:*", "arn:aws:s3:::b", true}, // fewer than six parts: a whole-string pattern
		{"arn:aws:s3:::b", "not-an-arn", false},
	} {
		a := compileARN(tc.pattern, false, false)
		if got := a.match(tc.value, nil); got != tc.want {
			t.Errorf("ARN %q match %q = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
	// Colons inside a variable do not split the pattern.
	a := compileARN("arn:aws:iam::${aws:PrincipalAccount}:role/${aws:username, 'x:y'}", true, true)
	if !a.split || a.nvars() != 2 {
		t.Fatalf("split %v nvars %d", a.split, a.nvars())
	}
	ctx := NewContext(1)
	ctx.Set("aws:PrincipalAccount", "123456789012")
	vals, ok := resolveARNVars(&a, ctx, nil)
	if !ok || !a.match("arn:aws:iam::123456789012:role/x:y", vals) {
		t.Errorf("variable ARN: %v %v", vals, ok)
	}
	if got := substituteARN(&a, vals); got != "arn:aws:iam::123456789012:role/x:y" {
		t.Errorf("substituteARN = %q", got)
	}
}

// globRegexp is an independent reference implementation for FuzzGlob.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"10", "10.0", 0},
		{"010", "10", 0},
		{"-0", "0", 0},
		{"+5", "5", 0},
		{".5", "0.5", 0},
		{"1.25", "1.3", -1},
		{"-2", "-1", -1},
		{"-1", "-2", 1},
		{"123456789012345678", "123456789012345679", -1},
		{"1e3", "1000", 0},
		{"2E-1", "0.2", 0},
		{"99999999999999999999999", "1e22", 1},
	} {
		a, ok1 := parseNumber(tc.a)
		b, ok2 := parseNumber(tc.b)
		if !ok1 || !ok2 {
			t.Errorf("parse %q %q: %v %v", tc.a, tc.b, ok1, ok2)
			continue
		}
		if got := compareNumbers(a, b); got != tc.want {
			t.Errorf("compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	for _, bad := range []string{"", "-", ".", "1.2.3", "1e", "0x10", "NaN", "Inf", "1,000", " 1", "e5"} {
		if _, ok := parseNumber(bad); ok {
			t.Errorf("parseNumber(%q) accepted", bad)
		}
	}
}

func TestDates(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	for in, want := range map[string]time.Time{
		"2024":                           time.Unix(2024, 0), // digits only: epoch seconds, as IAM reads them
		"2024-02":                        utc(2024, 2, 1, 0, 0, 0, 0),
		"2024-02-29":                     utc(2024, 2, 29, 0, 0, 0, 0),
		"2024-02-29T10:11Z":              utc(2024, 2, 29, 10, 11, 0, 0),
		"2024-02-29T10:11:12Z":           utc(2024, 2, 29, 10, 11, 12, 0),
		"2024-02-29t10:11:12z":           utc(2024, 2, 29, 10, 11, 12, 0),
		"2024-02-29T10:11:12.5Z":         utc(2024, 2, 29, 10, 11, 12, 500000000),
		"2024-02-29T10:11:12":            utc(2024, 2, 29, 10, 11, 12, 0),
		"2024-02-29T10:11:12+02:00":      utc(2024, 2, 29, 8, 11, 12, 0),
		"2024-02-29T10:11:12-0130":       utc(2024, 2, 29, 11, 41, 12, 0),
		"1704067200":                     utc(2024, 1, 1, 0, 0, 0, 0),
		"2024-01-01T00:00:00.123456789Z": utc(2024, 1, 1, 0, 0, 0, 123456789),
	} {
		got, ok := parseDate(in)
		if !ok || !got.Equal(want) {
			t.Errorf("parseDate(%q) = %v %v, want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "2024-1-01", "2023-02-29", "2024-00-10", "2024-01-01T", "2024-01-01T10Z",
		"2024-01-01T25:00Z", "2024-01-01T10:60Z", "2024-01-01T10:00:00+24:00", "2024-01-01 10:00:00",
		"2024-01-01T10:00:00.Z", "2024-01-01T10:00:00.1234567890Z", "1e9", "-5", "9999999999999999999"} {
		if _, ok := parseDate(bad); ok {
			t.Errorf("parseDate(%q) accepted", bad)
		}
	}
}

func TestIPs(t *testing.T) {
	for _, tc := range []struct {
		policy, addr string
		want         bool
	}{
		{"10.0.0.0/8", "10.1.2.3", true},
		{"10.1.2.3/8", "10.200.0.1", true}, // host bits are masked
		{"10.0.0.1", "10.0.0.1", true},
		{"10.0.0.1", "10.0.0.2", false},
		{"2001:db8::/32", "2001:db8:ffff::1", true},
		{"2001:db8::/32", "10.0.0.1", false},
		{"::ffff:10.0.0.0/104", "10.1.1.1", true}, // IPv4-mapped prefix is IPv4
		{"10.0.0.0/8", "::ffff:10.0.0.7", true},   // IPv4-mapped address is IPv4
		{"0.0.0.0/0", "192.0.2.1", true},
	} {
		p, ok := parsePolicyIP(tc.policy)
		a, ok2 := parseRequestIP(tc.addr)
		if !ok || !ok2 {
			t.Errorf("parse %q %q: %v %v", tc.policy, tc.addr, ok, ok2)
			continue
		}
		if got := p.Contains(a); got != tc.want {
			t.Errorf("%s contains %s = %v, want %v", tc.policy, tc.addr, got, tc.want)
		}
	}
	if _, ok := parseRequestIP("fe80::1%eth0"); ok {
		t.Error("zoned address accepted")
	}
	if _, ok := parsePolicyIP("10.0.0.0/x"); ok {
		t.Error("bad prefix accepted")
	}
}

func TestBinary(t *testing.T) {
	for in, want := range map[string]string{"QQ==": "A", "QQ": "A", "": ""} {
		got, ok := decodeBinary(in, nil)
		if !ok || string(got) != want {
			t.Errorf("decodeBinary(%q) = %q %v", in, got, ok)
		}
	}
	if _, ok := decodeBinary("Q===", nil); ok {
		t.Error("bad padding accepted")
	}
	var buf [4]byte
	big := strings.Repeat("QUFB", 10) // 30 bytes: larger than buf
	if got, ok := decodeBinary(big, buf[:]); !ok || len(got) != 30 {
		t.Errorf("large value: %d %v", len(got), ok)
	}
}

func TestParseOperator(t *testing.T) {
	for name, want := range map[string]opInfo{
		"StringLike":                          {base: baseOp{"StringLike", famString, cmpLike, false, true}},
		"ForAnyValue:StringNotEqualsIfExists": {base: baseOp{"StringNotEquals", famString, cmpEq, true, true}, set: setAnyValue, ifExists: true},
		"ForAllValues:ArnLike":                {base: baseOp{"ArnLike", famARN, cmpLike, false, true}, set: setAllValues},
		"NumericLessThanEqualsIfExists":       {base: baseOp{"NumericLessThanEquals", famNumeric, cmpLE, false, false}, ifExists: true},
		"Null":                                {base: baseOp{"Null", famNull, cmpEq, false, false}},
	} {
		got, ok := parseOperator(name)
		if !ok || got != want {
			t.Errorf("parseOperator(%q) = %+v %v", name, got, ok)
		}
	}
	for _, bad := range []string{"", "IfExists", "NullIfExists", "ForAllValues:Null", "forAnyValue:StringLike", "StringLikeIfexists", "ForAnyValue:ForAllValues:StringLike", "StringLikeIfExistsIfExists"} {
		if _, ok := parseOperator(bad); ok {
			t.Errorf("parseOperator(%q) accepted", bad)
		}
	}
}

func TestFoldKey(t *testing.T) {
	for _, pair := range [][2]string{{"AWS:SourceIp", "aws:sourceip"}, {"\u212a", "k"}, {"ſ", "S"}} {
		if foldKey(pair[0]) != foldKey(pair[1]) {
			t.Errorf("foldKey(%q) != foldKey(%q)", pair[0], pair[1])
		}
	}
	if diff := cmp.Diff("a.b", foldKey("A.B")); diff != "" {
		t.Error(diff)
	}
}
