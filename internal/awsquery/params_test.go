package awsquery

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseParams(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		query    string
		want     map[string]string
		wantCode string
	}{
		{name: "botocore body", body: "Action=GetRole&Version=2010-05-08&RoleName=ci%2Bdeploy", want: map[string]string{"Action": "GetRole", "Version": "2010-05-08", "RoleName": "ci+deploy"}},
		{name: "plus is space", body: "A=a+b", want: map[string]string{"A": "a b"}},
		{name: "query and body merge", query: "Action=GetCallerIdentity", body: "Version=2011-06-15", want: map[string]string{"Action": "GetCallerIdentity", "Version": "2011-06-15"}},
		{name: "empty pairs ignored", body: "&&A=1&", want: map[string]string{"A": "1"}},
		{name: "bare name is empty value", body: "ClientIDList", want: map[string]string{"ClientIDList": ""}},
		{name: "duplicate in body", body: "A=1&A=2", wantCode: CodeInvalidParameterValue},
		{name: "duplicate across query and body", query: "A=1", body: "A=2", wantCode: CodeInvalidParameterValue},
		{name: "bad escape in value", body: "A=%zz", wantCode: CodeMalformedQueryString},
		{name: "bad escape in name", body: "%G1=x", wantCode: CodeMalformedQueryString},
		{name: "empty name", body: "=x", wantCode: CodeMalformedQueryString},
		{name: "too many", body: strings.Repeat("a=1&", 1) + manyParams(MaxParams+1), wantCode: CodeMalformedQueryString},

		// SigV4 query authentication parameters are never API parameters,
		// whatever the encoding of their names (issue 11 item 10).
		{name: "auth params left out", query: "Action=A&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Security-Token=T&X-Amz-Signature=s", want: map[string]string{"Action": "A"}},
		{name: "encoded token name left out", query: "Action=A&X%2DAmz%2DSecurity%2DToken=T", want: map[string]string{"Action": "A"}},
		{name: "lowercase hex token name left out", query: "X%2dAmz%2dSecurity%2dToken=T&Action=A", want: map[string]string{"Action": "A"}},
		{name: "mixed encoding left out", query: "X-Amz%2DCredential=c&%58-Amz-Signature=s&Action=A", want: map[string]string{"Action": "A"}},
		{name: "every byte escaped left out", query: "%58%2D%41%6D%7A%2D%53%65%63%75%72%69%74%79%2D%54%6F%6B%65%6E=T&Action=A", want: map[string]string{"Action": "A"}},
		{name: "other X-Amz names dropped", query: "X-Amz-User-Agent=aws-sdk&x-amz-foo=1&Action=A", want: map[string]string{"Action": "A"}},
		{name: "token name with a trailing plus is not the token, and no API parameter", query: "X-Amz-Security-Token+=T&Action=A", want: map[string]string{"Action": "A"}},
		{name: "plus inside an X-Amz name is a space", query: "X-Amz-Security+Token=T&Action=A", want: map[string]string{"Action": "A"}},
		{name: "plus and %20 are one name", query: "a+b=1&a%20b=2", wantCode: CodeInvalidParameterValue},
		{name: "token raw and encoded", query: "X-Amz-Security-Token=a&X%2DAmz%2DSecurity%2DToken=b", wantCode: CodeIncompleteSignature},
		{name: "signature raw and encoded", query: "X%2DAmz%2DSignature=a&X-Amz-Signature=a", wantCode: CodeIncompleteSignature},
		{name: "lowercase token name", query: "x-amz-security-token=T&Action=A", wantCode: CodeIncompleteSignature},
		{name: "encoded lowercase token name", query: "x%2damz%2dsecurity%2dtoken=T", wantCode: CodeIncompleteSignature},
		{name: "upper-case signature name", query: "X-AMZ-SIGNATURE=s", wantCode: CodeIncompleteSignature},
		{name: "token in the body", body: "Action=A&X-Amz-Security-Token=T", wantCode: CodeIncompleteSignature},
		{name: "encoded token in the body", body: "Action=A&X%2DAmz%2DSecurity%2DToken=T", wantCode: CodeIncompleteSignature},
		{name: "other X-Amz name in the body dropped", body: "Action=A&X-Amz-User-Agent=x", want: map[string]string{"Action": "A"}},
		{name: "auth param in query and body", query: "X-Amz-Date=1", body: "X-Amz-Date=1", wantCode: CodeIncompleteSignature},
		{name: "other X-Amz name twice", query: "X-Amz-Foo=1&X%2DAmz%2DFoo=2", wantCode: CodeInvalidParameterValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseParams([]byte(tc.body), tc.query)
			if tc.wantCode != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.wantCode {
					t.Fatalf("err = %v, want code %s", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, n := range p.Names() {
				got[n] = p.String(n)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("params (-want +got):\n%s", d)
			}
		})
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("p")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(itoa(i))
		b.WriteString("=1&")
	}
	return b.String()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for i > 0 {
		d = append([]byte{byte('0' + i%10)}, d...)
		i /= 10
	}
	return string(d)
}

func TestList(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		want        []string
		wantPresent bool
		wantErr     bool
	}{
		{name: "absent", body: "A=1", want: []string{}, wantPresent: false},
		{name: "empty list as bare name", body: "ClientIDList=", want: []string{}, wantPresent: true},
		{name: "ordered by index", body: "ClientIDList.member.2=b&ClientIDList.member.1=a&ClientIDList.member.10=j&" + fill(3, 9), want: []string{"a", "b", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "j"}, wantPresent: true},
		{name: "gap", body: "ClientIDList.member.1=a&ClientIDList.member.3=c", wantErr: true},
		{name: "zero index", body: "ClientIDList.member.0=a", wantErr: true},
		{name: "leading zero", body: "ClientIDList.member.01=a", wantErr: true},
		{name: "negative", body: "ClientIDList.member.-1=a", wantErr: true},
		{name: "over max", body: "ClientIDList.member.1001=a", wantErr: true},
		{name: "non-empty bare value", body: "ClientIDList=a", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseParams([]byte(tc.body), "")
			if err != nil {
				t.Fatal(err)
			}
			got, present, err := p.List("ClientIDList")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("List = %v, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if present != tc.wantPresent {
				t.Errorf("present = %v, want %v", present, tc.wantPresent)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("list (-want +got):\n%s", d)
			}
		})
	}
}

func fill(from, to int) string {
	var parts []string
	for i := from; i <= to; i++ {
		parts = append(parts, "ClientIDList.member."+itoa(i)+"=c"+itoa(i))
	}
	return strings.Join(parts, "&")
}

func TestTags(t *testing.T) {
	p, err := ParseParams([]byte("Tags.member.1.Key=team&Tags.member.1.Value=ci&Tags.member.2.Key=empty&Tags.member.2.Value="), "")
	if err != nil {
		t.Fatal(err)
	}
	got, present, err := p.Tags("Tags")
	if err != nil || !present {
		t.Fatalf("Tags: present=%v err=%v", present, err)
	}
	want := []Tag{{"team", "ci"}, {"empty", ""}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tags (-want +got):\n%s", d)
	}

	for _, bad := range []string{
		"Tags.member.1.Value=v",                   // missing key
		"Tags.member.1.Key=k&Tags.member.3.Key=x", // gap
		"Tags.member.1.Colour=k",                  // unknown field
		"Tags.member.1=k",                         // not a struct
		"Tags.member.x.Key=k",                     // bad index
	} {
		p, err := ParseParams([]byte(bad), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.Tags("Tags"); err == nil {
			t.Errorf("Tags(%q) succeeded, want error", bad)
		}
	}
}

func TestStructs(t *testing.T) {
	p, err := ParseParams([]byte("PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FA&PolicyArns.member.2.arn=b"), "")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := p.Structs("PolicyArns", "arn")
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{"arn": "arn:aws:iam::aws:policy/A"}, {"arn": "b"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestValidator(t *testing.T) {
	p := ParamsFromValues(map[string][]string{"RoleSessionName": {"dependabot[bot]"}, "DurationSeconds": {"10"}})
	var v Validator
	v.Required(p, "RoleArn")
	name, _ := v.Required(p, "RoleSessionName")
	v.Pattern("RoleSessionName", name, roleSessionRE, `[\w+=,.@-]*`)
	v.Int(p, "DurationSeconds", 3600, 900, 43200)
	err := v.Err()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	want := "3 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; " +
		"Value 'dependabot[bot]' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*; " +
		"Value '10' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
	if e.Code != CodeValidationError || e.Message != want {
		t.Errorf("got %s %q\nwant %q", e.Code, e.Message, want)
	}
	if e.HTTPStatus() != 400 {
		t.Errorf("status = %d", e.HTTPStatus())
	}
	var ok Validator
	ok.Length("RoleName", "x", 1, 64)
	if ok.Err() != nil {
		t.Errorf("unexpected error %v", ok.Err())
	}
}

func TestSensitiveLength(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm8vciJ9.c2ln"
	tests := []struct {
		name      string
		check     func(v *Validator)
		wantMsg   string
		wantValid bool
	}{
		{"sensitive too long", func(v *Validator) { v.SensitiveLength("WebIdentityToken", token, 4, 10) },
			"1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length less than or equal to 10", false},
		{"sensitive too short", func(v *Validator) { v.SensitiveLength("WebIdentityToken", "eyJ", 4, 0) },
			"1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length greater than or equal to 4", false},
		{"sensitive ok", func(v *Validator) { v.SensitiveLength("WebIdentityToken", token, 4, 20000) }, "", true},
		{"plain shows value", func(v *Validator) { v.Length("RoleName", "abcdef", 1, 3) },
			"1 validation error detected: Value 'abcdef' at 'roleName' failed to satisfy constraint: Member must have length less than or equal to 3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Validator
			tt.check(&v)
			err := v.Err()
			if tt.wantValid {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("err = %v", err)
			}
			if e.Message != tt.wantMsg {
				t.Errorf("message\n got %q\nwant %q", e.Message, tt.wantMsg)
			}
		})
	}
}

func FuzzParseParams(f *testing.F) {
	f.Add([]byte("Action=CreateRole&Version=2010-05-08&Tags.member.1.Key=a&Tags.member.1.Value=b"), "x=1")
	f.Add([]byte("ClientIDList.member.1=a&ClientIDList.member.2=b"), "")
	f.Add([]byte("%zz=&&=="), "a=%")
	f.Add([]byte("L.member.1.arn=x&L.member.2.arn=y&L.member.2.bad=z"), "")
	f.Add([]byte("Action=A"), "X%2DAmz%2DSecurity%2DToken=T&x-amz-date=1")
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		p, err := ParseParams(body, query)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.HTTPStatus() >= 500 {
				t.Fatalf("non-client error %v", err)
			}
			return
		}
		// No X-Amz-* name, however it was encoded, is ever an API
		// parameter.
		for _, name := range p.Names() {
			if len(name) >= 6 && strings.EqualFold(name[:6], "x-amz-") {
				t.Fatalf("X-Amz name %q became an API parameter", name)
			}
		}
		for _, name := range []string{"ClientIDList", "Tags", "L"} {
			if _, _, err := p.List(name); err != nil && !isClientErr(err) {
				t.Fatal(err)
			}
			if _, _, err := p.Tags(name); err != nil && !isClientErr(err) {
				t.Fatal(err)
			}
			if _, _, err := p.Structs(name, "arn"); err != nil && !isClientErr(err) {
				t.Fatal(err)
			}
		}
	})
}

func isClientErr(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.HTTPStatus() < 500
}

func TestClassifyName(t *testing.T) {
	for name, want := range map[string]NameClass{
		"Action":                NameAPI,
		"RoleName":              NameAPI,
		"X-Amz":                 NameAPI,
		"X-Amz-Security-Token":  NameSigV4,
		"X-Amz-Algorithm":       NameSigV4,
		"X-Amz-Credential":      NameSigV4,
		"X-Amz-Date":            NameSigV4,
		"X-Amz-Expires":         NameSigV4,
		"X-Amz-SignedHeaders":   NameSigV4,
		"X-Amz-Signature":       NameSigV4,
		"x-amz-security-token":  NameSigV4Variant,
		"X-AMZ-SIGNATURE":       NameSigV4Variant,
		"X-Amz-Signedheaders":   NameSigV4Variant,
		"X-Amz-User-Agent":      NameAmz,
		"x-amz-":                NameAmz,
		"X-Amz-Security-Token ": NameAmz,
	} {
		if got := ClassifyName(name); got != want {
			t.Errorf("ClassifyName(%q) = %d, want %d", name, got, want)
		}
	}
}

// FuzzUnescapeComponent: the shared decoder agrees with net/url's form
// decoding wherever that succeeds, and reports failure exactly where it
// fails.
func FuzzUnescapeComponent(f *testing.F) {
	for _, s := range []string{"", "a+b", "%2D", "%2d", "%", "%4", "%zz", "100%", "X%2DAmz%2DSecurity%2DToken", "%E2%9C%93"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := UnescapeComponent(s)
		want, err := url.QueryUnescape(s)
		if ok != (err == nil) {
			t.Fatalf("UnescapeComponent(%q) ok=%v, url.QueryUnescape err=%v", s, ok, err)
		}
		if ok && got != want {
			t.Fatalf("UnescapeComponent(%q) = %q, url.QueryUnescape = %q", s, got, want)
		}
	})
}
