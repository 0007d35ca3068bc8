package awsquery

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

var roleSessionRE = regexp.MustCompile(`^[\w+=,.@-]*$`)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s mismatch:\nwant %s\ngot  %s", name, want, got)
	}
}

type member struct {
	Arn string `xml:"Arn"`
}

type listResult struct {
	OpenIDConnectProviderList []member `xml:"OpenIDConnectProviderList>member"`
}

func TestMarshalResponseGolden(t *testing.T) {
	var buf bytes.Buffer
	res := listResult{OpenIDConnectProviderList: []member{{"arn:aws:iam::123456789012:oidc-provider/server.example.com"}}}
	if err := MarshalResponse(&buf, NamespaceIAM, "ListOpenIDConnectProviders", "2c91531b-4f65-11e4-aefa-bfd6aEXAMPLE", res); err != nil {
		t.Fatal(err)
	}
	golden(t, "list_providers.xml", buf.Bytes())

	buf.Reset()
	if err := MarshalResponse(&buf, NamespaceIAM, "DeleteOpenIDConnectProvider", "id-1", nil); err != nil {
		t.Fatal(err)
	}
	golden(t, "no_result.xml", buf.Bytes())
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	e := Errorf(CodeExpiredTokenException, "Token too old: %d", 441398)
	if err := WriteError(rec, NamespaceSTS, "1fd1964b-1544-11ea-ba37-99c3c1dede42", e); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status = %d", rec.Code)
	}
	if got := rec.Header().Get("x-amzn-RequestId"); got != "1fd1964b-1544-11ea-ba37-99c3c1dede42" {
		t.Errorf("request id header = %q", got)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/xml" {
		t.Errorf("content type = %q", ct)
	}
	golden(t, "error_expired.xml", rec.Body.Bytes())

	rec = httptest.NewRecorder()
	_ = WriteError(rec, NamespaceIAM, "r", AsError(errors.New("disk on fire")))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "<Type>Receiver</Type>") || strings.Contains(rec.Body.String(), "disk on fire") {
		t.Errorf("internal error leaked or wrong: %d %s", rec.Code, rec.Body.String())
	}
}

func TestStatusForCode(t *testing.T) {
	for code, want := range map[string]int{
		CodeNoSuchEntity: 404, CodeEntityAlreadyExists: 409, CodeLimitExceeded: 409, CodeDeleteConflict: 409,
		CodeInvalidInput: 400, CodeMalformedPolicyDocument: 400, CodeAccessDenied: 403, CodeIDPRejectedClaim: 403,
		CodeInvalidIdentityToken: 400, CodeExpiredTokenException: 400, CodeExpiredToken: 403, CodeSignatureDoesNotMatch: 403,
		CodeIncompleteSignature: 400, CodeMissingAuthenticationToken: 403, CodeServiceFailure: 500, CodeValidationError: 400,
		CodeInvalidClientTokenID: 403, CodeRegionDisabled: 403,
	} {
		if got := StatusForCode(code); got != want {
			t.Errorf("StatusForCode(%s) = %d, want %d", code, got, want)
		}
	}
}

func TestErrorsIs(t *testing.T) {
	err := Errorf(CodeNoSuchEntity, "The role with name x cannot be found.").Wrap(os.ErrNotExist)
	if !errors.Is(err, &Error{Code: CodeNoSuchEntity}) {
		t.Error("errors.Is by code failed")
	}
	if errors.Is(err, &Error{Code: CodeEntityAlreadyExists}) {
		t.Error("errors.Is matched another code")
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Error("cause not unwrapped")
	}
}

func TestNewRequestID(t *testing.T) {
	id, err := NewRequestID(bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if id != "ffffffff-ffff-4fff-bfff-ffffffffffff" {
		t.Errorf("id = %s", id)
	}
}

func TestAppendEscapedMatchesEncodingXML(t *testing.T) {
	for _, s := range []string{"", "plain", `a&b<c>d"e'f`, "tab\tnl\ncr\r", "ünïcödé", "ctl\x01x", "\xff\xfe", "]]>"} {
		var want bytes.Buffer
		if err := xml.EscapeText(&want, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if got := AppendEscaped(nil, s); string(got) != want.String() {
			t.Errorf("AppendEscaped(%q) = %q, want %q", s, got, want.String())
		}
	}
}

func FuzzAppendEscaped(f *testing.F) {
	f.Add("a&b<c>")
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		_ = xml.EscapeText(&want, []byte(s))
		if got := AppendEscaped(nil, s); string(got) != want.String() {
			t.Fatalf("AppendEscaped(%q) = %q, want %q", s, got, want.String())
		}
	})
}
