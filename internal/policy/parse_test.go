package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ignorePositions compares policies as documents, whatever their layout.
var ignorePositions = []cmp.Option{
	cmpopts.IgnoreUnexported(Policy{}),
	cmpopts.IgnoreFields(Statement{}, "Start", "End"),
}

func TestParseStructure(t *testing.T) {
	doc := `{
  "Version": "2012-10-17",
  "Id": "ci-trust",
  "Statement": [
    {
      "Sid": "GitHub",
      "Effect": "Allow",
      "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com", "AWS": ["123456789012", "arn:aws:iam::123456789012:role/admin"]},
      "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
      "Condition": {
        "StringLike": {"token.actions.githubusercontent.com:sub": ["repo:acme/app:*", "repo:acme/lib:*"]},
        "NumericLessThan": {"x:n": 10, "x:m": "2.5"},
        "Bool": {"x:b": true}
      }
    },
    {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}
  ]
}`
	p, err := Parse(doc, KindTrust)
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Kind:    KindTrust,
		Version: Version2012,
		ID:      "ci-trust",
		Statements: []Statement{
			{
				Sid:    "GitHub",
				Effect: Allow,
				Principal: &Principals{
					AWS:       []string{"123456789012", "arn:aws:iam::123456789012:role/admin"},
					Federated: []string{"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
				},
				Action: []string{"sts:AssumeRoleWithWebIdentity", "sts:TagSession"},
				Condition: []Condition{
					{Operator: "StringLike", Key: "token.actions.githubusercontent.com:sub", Values: []string{"repo:acme/app:*", "repo:acme/lib:*"}},
					{Operator: "NumericLessThan", Key: "x:n", Values: []string{"10"}},
					{Operator: "NumericLessThan", Key: "x:m", Values: []string{"2.5"}},
					{Operator: "Bool", Key: "x:b", Values: []string{"true"}},
				},
				Start: Position{Line: 5, Column: 5},
				End:   Position{Line: 15, Column: 6},
			},
			{
				Effect:    Deny,
				Principal: &Principals{Wildcard: true},
				Action:    []string{"sts:AssumeRole"},
				Start:     Position{Line: 16, Column: 5},
				End:       Position{Line: 16, Column: 69},
			},
		},
	}
	if diff := cmp.Diff(want, p, cmpopts.IgnoreUnexported(Policy{})); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if !p.VariablesEnabled() {
		t.Error("VariablesEnabled = false for 2012-10-17")
	}
}

func TestParseStatementObject(t *testing.T) {
	p, err := Parse(`{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}`, KindIdentity)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Statements) != 1 || p.Version != "" || p.VariablesEnabled() {
		t.Fatalf("got %+v", p)
	}
	if got := p.String(); got != `{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}` {
		t.Errorf("String = %s", got)
	}
}

func TestPositionsCountCharacters(t *testing.T) {
	// "é" is two bytes but one character; columns count characters.
	doc := "{\"Id\":\"é\",\"Statement\":[{" + stmtOK + "}]}"
	p := mustParse(t, doc, KindIdentity)
	if got := p.Statements[0].Start; got != (Position{Line: 1, Column: 24}) {
		t.Errorf("Start = %v, want 1:24", got)
	}
}

func TestCanonicalString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{
			in:   `{"Statement":[{"Resource":["arn:aws:s3:::b"],"Action":["s3:GetObject"],"Effect":"Allow"}],"Version":"2012-10-17"}`,
			want: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b"}]}`,
		},
		{
			in:   `{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Deny","NotAction":["iam:*","s3:*"],"NotResource":"arn:aws:s3:::b","Condition":{"Bool":{"aws:SecureTransport":false},"NumericEquals":{"n":[1,2.50]},"StringEquals":{"k":[]}}}}`,
			want: `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Deny","NotAction":["iam:*","s3:*"],"NotResource":"arn:aws:s3:::b","Condition":{"Bool":{"aws:SecureTransport":"false"},"NumericEquals":{"n":["1","2.50"]},"StringEquals":{"k":[]}}}]}`,
		},
		{
			in:   `{"Id":"x\u0041\n\"q\"","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{}}}`,
			want: `{"Id":"xA\n\"q\"","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`,
		},
	} {
		p := mustParse(t, tc.in, KindIdentity)
		if got := p.String(); got != tc.want {
			t.Errorf("String(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
		b, err := json.Marshal(p)
		if err != nil || string(b) != tc.want {
			t.Errorf("MarshalJSON = %s, %v", b, err)
		}
		assertRoundTrip(t, p)
	}
	trust := mustParse(t, ghTrustDoc, KindTrust)
	assertRoundTrip(t, trust)
	if !strings.Contains(trust.String(), `"Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}`) {
		t.Errorf("trust canonical form: %s", trust)
	}
}

// assertRoundTrip checks parse(print(p)) == p and that printing is stable.
func assertRoundTrip(t testing.TB, p *Policy) {
	t.Helper()
	s := p.String()
	q, err := ParseWithOptions(s, p.Kind, Options{MaxSize: -1})
	if err != nil {
		t.Fatalf("re-parse of canonical form failed: %v\n%s", err, s)
	}
	if diff := cmp.Diff(p, q, ignorePositions...); diff != "" {
		t.Fatalf("round trip differs (-orig +reparsed):\n%s", diff)
	}
	if s2 := q.String(); s2 != s {
		t.Fatalf("canonical form not stable:\n%s\n%s", s, s2)
	}
}

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want int
	}{
		{``, 0},
		{`{}`, 2},
		{"{ \n\t\r}", 2},
		{`{"a b": "c d"}`, 13}, // spaces inside strings count
		{`{"a\"b ": 1}`, 11},   // escaped quote does not end the string
		{`{"é": "ü"}`, 9},      // characters, not bytes
		{`{"unterminated  `, len(`{"unterminated  `)}, // malformed input is still counted
	} {
		if got := Size(tc.doc); got != tc.want {
			t.Errorf("Size(%q) = %d, want %d", tc.doc, got, tc.want)
		}
	}
	pretty := mustParse(t, ghTrustDoc, KindTrust)
	if Size(ghTrustDoc) != Size(pretty.String()) {
		t.Errorf("pretty and compact forms of a string-only policy differ in Size: %d vs %d", Size(ghTrustDoc), Size(pretty.String()))
	}
}

func TestSizeQuotas(t *testing.T) {
	pad := func(n int) string {
		// A trust policy padded to exactly n characters by Size.
		base := trustDoc(`"Effect":"Allow",` + fedOK + `,"Condition":{"StringEquals":{"k":""}}`)
		return strings.Replace(base, `"k":""`, `"k":"`+strings.Repeat("a", n-Size(base))+`"`, 1)
	}
	at, over := pad(TrustPolicySizeDefault), pad(TrustPolicySizeDefault+1)
	if Size(at) != 2048 || Size(over) != 2049 {
		t.Fatalf("padding: %d %d", Size(at), Size(over))
	}
	if _, err := Parse(at, KindTrust); err != nil {
		t.Errorf("2048 characters rejected: %v", err)
	}
	_, err := Parse(over, KindTrust)
	pe, ok := errors.AsType[*Error](err)
	if !ok || !errors.Is(err, ErrTooLarge) || pe.Size != 2049 || pe.Limit != 2048 {
		t.Fatalf("2049 characters: %v", err)
	}
	if _, err := ParseWithOptions(over, KindTrust, Options{MaxSize: TrustPolicySizeMax}); err != nil {
		t.Errorf("raised quota: %v", err)
	}
	if _, err := ParseWithOptions(pad(9000), KindTrust, Options{MaxSize: -1}); err != nil {
		t.Errorf("quota disabled: %v", err)
	}
	for kind, want := range map[Kind]int{KindTrust: 2048, KindIdentity: 6144, KindBoundary: 6144, KindSession: 2048, KindResource: MaxDocumentLength} {
		if got := DefaultMaxSize(kind); got != want {
			t.Errorf("DefaultMaxSize(%v) = %d, want %d", kind, got, want)
		}
	}
}

func TestValidChars(t *testing.T) {
	for doc, want := range map[string]bool{
		"{\"a\":\"b\"}\n\t\r": true,
		"{\"a\":\"ÿé\"}":      true,
		"{\"a\":\"€\"}":       false, // U+20AC is beyond U+00FF
		"{\"a\":\"\x01\"}":    false,
		"\xff":                false,
	} {
		if got := ValidChars(doc); got != want {
			t.Errorf("ValidChars(%q) = %v, want %v", doc, got, want)
		}
	}
}

func TestConditionKeys(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*","Condition":{"StringLike":{"s3:prefix":"${aws:PrincipalTag/team}/*"},"Bool":{"aws:SecureTransport":"true"}}},
		{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:iam::${aws:PrincipalAccount}:role/*"},"Null":{"AWS:SecureTransport":"true"},"StringEquals":{"AWS:UserName":"x"}}}]}`, KindIdentity)
	want := []string{"aws:PrincipalAccount", "aws:PrincipalTag/team", "aws:SecureTransport", "aws:SourceArn", "aws:username", "s3:prefix"}
	if diff := cmp.Diff(want, p.ConditionKeys()); diff != "" {
		t.Errorf("ConditionKeys (-want +got):\n%s", diff)
	}
	old := mustParse(t, `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}}`, KindIdentity)
	if keys := old.ConditionKeys(); len(keys) != 0 {
		t.Errorf("2008-10-17 has no variables, got keys %v", keys)
	}
}

func TestRequireVersion2012(t *testing.T) {
	opts := Options{RequireVersion2012: true}
	if _, err := ParseWithOptions(idDoc(stmtOK), KindIdentity, opts); err != nil {
		t.Errorf("2012-10-17 rejected: %v", err)
	}
	for _, doc := range []string{`{"Statement":{` + stmtOK + `}}`, `{"Version":"2008-10-17","Statement":{` + stmtOK + `}}`} {
		_, err := ParseWithOptions(doc, KindIdentity, opts)
		pe, ok := errors.AsType[*Error](err)
		if !ok || pe.Message != "Policy document must be version 2012-10-17 or greater." || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", doc, err)
		}
		if _, err := Parse(doc, KindIdentity); err != nil {
			t.Errorf("%s without the option: %v", doc, err)
		}
	}
}

func TestParseInvalidKind(t *testing.T) {
	_, err := Parse(idDoc(stmtOK), Kind(42))
	if !errors.Is(err, ErrInvalidInput) {
		t.Errorf("err = %v", err)
	}
}

func TestErrorString(t *testing.T) {
	_, err := Parse("{\n \"Statement\": 1}", KindIdentity)
	want := "MalformedPolicyDocument: Syntax errors in policy. (Statement must be an object or an array of objects at line 2, column 15, Statement)"
	if err == nil || err.Error() != want {
		t.Errorf("Error() = %v\nwant %s", err, want)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic")
		}
	}()
	MustParse("{}", KindIdentity)
}

func TestKindAndEffectStrings(t *testing.T) {
	names := map[Kind]string{KindIdentity: "identity", KindTrust: "trust", KindSession: "session", KindBoundary: "boundary", KindResource: "resource", Kind(0): "unknown"}
	for k, n := range names {
		if k.String() != n {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
	var e Effect
	if err := json.Unmarshal([]byte(`"Deny"`), &e); err != nil || e != Deny {
		t.Errorf("Effect unmarshal: %v %v", e, err)
	}
	if err := json.Unmarshal([]byte(`"deny"`), &e); err == nil {
		t.Error("Effect accepted lower case")
	}
	var d Decision
	for _, s := range []string{"allowed", "explicitDeny", "implicitDeny"} {
		if err := json.Unmarshal([]byte(`"`+s+`"`), &d); err != nil || d.String() != s {
			t.Errorf("Decision %s: %v %v", s, d, err)
		}
	}
	if err := json.Unmarshal([]byte(`"maybe"`), &d); err == nil {
		t.Error("Decision accepted maybe")
	}
}
