package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are valid and invalid documents for the parser's corpus.
func fuzzSeeds() []string {
	seeds := []string{ghTrustDoc, permissionPolicy20(), allowAll}
	for _, tc := range conformanceCases() {
		seeds = append(seeds, tc.id...)
		seeds = append(seeds, tc.res...)
		seeds = append(seeds, tc.bnd...)
	}
	for _, tc := range malformedCases() {
		if len(tc.doc) < 4096 {
			seeds = append(seeds, tc.doc)
		}
	}
	return seeds
}

// FuzzParse: Parse never panics, fails only with *Error, and whatever it
// accepts prints to a canonical form that parses back to the same policy
// and prints identically.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, uint8(KindIdentity))
		f.Add(s, uint8(KindTrust))
	}
	f.Fuzz(func(t *testing.T, doc string, k uint8) {
		kind := Kind(k%5 + 1)
		p, err := Parse(doc, kind)
		if err != nil {
			pe, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error has no sentinel cause: %v", err)
			}
			if pe.Message == "" || pe.Code == "" {
				t.Fatalf("error without code or message: %#v", pe)
			}
			return
		}
		assertRoundTrip(t, p)
		_ = p.ConditionKeys()
	})
}

// fuzzOperators are the operators the evaluator fuzz target picks from.
var fuzzOperators = []string{
	"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike",
	"NumericEquals", "NumericLessThan", "NumericGreaterThanEqualsIfExists", "DateLessThan", "DateNotEquals",
	"Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnLike", "ArnNotEquals", "Null",
	"ForAnyValue:StringLike", "ForAllValues:StringNotEquals", "ForAnyValue:ArnLikeIfExists", "StringLikeIfExists",
}

// FuzzEvaluate builds a policy from fuzzed patterns and values, then
// evaluates fuzzed requests against it in every layer: no panic, and the
// fast path always agrees with Explain.
func FuzzEvaluate(f *testing.F) {
	f.Add("s3:Get*", "arn:aws:s3:::b/${aws:username}/*", uint8(4), "repo:acme/*", "s3:GetObject", "arn:aws:s3:::b/alice/x", "alice", uint8(0))
	f.Add("*", "*", uint8(7), "10", "sts:AssumeRoleWithWebIdentity", "arn:aws:iam::123456789012:role/x", "9.5", uint8(3))
	f.Add("iam:*AccessKey?", "arn:aws:iam::*:user/${aws:PrincipalTag/x, 'd'}", uint8(13), "10.0.0.0/8", "IAM:CreateAccessKeys", "arn:aws:iam::1:user/d", "10.1.1.1", uint8(9))
	f.Add("ec2:*", "arn:aws:ec2:*:*:instance/*", uint8(18), "t?.*", "ec2:RunInstances", "arn:aws:ec2:us-east-1:1:instance/i-1", "", uint8(200))
	f.Add("sqs:*", "arn:aws:sqs:*:123456789012:${aws:x}", uint8(9), "2024-01-01T00:00:00Z", "sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012:q", "1704067200", uint8(77))
	f.Fuzz(func(t *testing.T, action, resource string, op uint8, value, reqAction, reqResource, ctxValue string, layers uint8) {
		operator := fuzzOperators[int(op)%len(fuzzOperators)]
		vals, _ := json.Marshal([]string{value, ctxValue})
		act, _ := json.Marshal(action)
		res, _ := json.Marshal(resource)
		effect := "Allow"
		if layers&0x80 != 0 {
			effect = "Deny"
		}
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"` + effect + `","Action":` + string(act) + `,"Resource":` + string(res) +
			`,"Condition":{"` + operator + `":{"k":` + string(vals) + `}}},{"Effect":"Allow","Action":"*","Resource":"*"}]}`
		p, err := ParseWithOptions(doc, KindIdentity, Options{MaxSize: -1})
		if err != nil {
			return
		}
		assertRoundTrip(t, p)
		ctx := NewContext(4)
		if layers&1 != 0 {
			ctx.Set("k", ctxValue)
		}
		if layers&2 != 0 {
			ctx.Set("K", ctxValue, value)
		}
		if layers&4 != 0 {
			ctx.Set("aws:username", ctxValue)
		}
		req := &Request{Principal: Principal{Type: PrincipalAWS, ID: sessARN, ParentARN: roleARN}, Action: reqAction, Resource: reqResource, Context: ctx}
		sets := []PolicySet{{Identity: []*Policy{p}}}
		if layers&8 != 0 {
			sets = append(sets, PolicySet{Identity: []*Policy{MustParse(allowAll, KindIdentity)}, Boundary: []*Policy{p}})
		}
		if layers&16 != 0 {
			sets = append(sets, PolicySet{Identity: []*Policy{MustParse(allowAll, KindIdentity)}, Session: []*Policy{p}})
		}
		for i := range sets {
			d := sets[i].Evaluate(req)
			d2, tr := sets[i].Explain(req)
			if d != d2 || tr.Decision != d {
				t.Fatalf("Evaluate %v, Explain %v, trace %v for %s", d, d2, tr.Decision, doc)
			}
			if _, err := json.Marshal(tr); err != nil {
				t.Fatalf("trace does not marshal: %v", err)
			}
		}
	})
}

// FuzzGlob checks the wildcard matcher against a regular-expression
// reference.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{{"a*b?c", "axxbyc"}, {"*", ""}, {"**a", "ba"}, {"?", "é"}, {"*:pull_request", "repo:x:pull_request"}, {"a*b*c", "abcbc"}, {"x*", "X"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, value string) {
		if !utf8.ValidString(pattern) || len(pattern) > 64 || len(value) > 256 {
			return
		}
		g := compileGlob(pattern, true, false, false)
		want := globRegexp(pattern).MatchString(value)
		if got := g.match(value, nil); got != want {
			t.Fatalf("glob %q on %q = %v, regexp says %v", pattern, value, got, want)
		}
		// The general matcher must agree with whichever fast path was chosen.
		if got := matchTokens(g.toks, nil, value, false); got != want {
			t.Fatalf("matchTokens %q on %q = %v, regexp says %v", pattern, value, got, want)
		}
		if strings.ContainsAny(pattern, "*?") {
			return
		}
		// Literal patterns with case folding equal ASCII case-insensitive
		// comparison.
		gf := compileGlob(pattern, true, false, true)
		if got, want := gf.match(value, nil), asciiLower(pattern) == asciiLower(value); got != want {
			t.Fatalf("fold glob %q on %q = %v, want %v", pattern, value, got, want)
		}
	})
}

// FuzzValues: the typed-value parsers never panic, and what parseDate
// accepts is a real instant that compares with itself.
func FuzzValues(f *testing.F) {
	for _, s := range []string{"2024-01-01T00:00:00Z", "1704067200", "10.5", "-1e3", "10.0.0.0/8", "::1", "QQ==", "true", "2024-02-29T10:11:12.5+02:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := parseDate(s); ok && d.Compare(d) != 0 {
			t.Fatal("date does not equal itself")
		}
		if n, ok := parseNumber(s); ok && compareNumbers(n, n) != 0 {
			t.Fatal("number does not equal itself")
		}
		parsePolicyIP(s)
		parseRequestIP(s)
		decodeBinary(s, nil)
		parseBool(s)
		_ = Size(s)
		_ = ValidChars(s)
	})
}
