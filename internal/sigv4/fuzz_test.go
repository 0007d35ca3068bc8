package sigv4_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sigv4"
)

// maxParseMessage bounds Parse's error messages: client-supplied values are
// echoed truncated, so no input can inflate a response or a log line.
const maxParseMessage = 2048

// checkParseResult holds for any input: Parse returns either a signature
// that satisfies every structural rule, or an *awsquery.Error of bounded size;
// and Verify on a parsed signature never panics.
func checkParseResult(t *testing.T, v *sigv4.Verifier, r *http.Request, sig *sigv4.Signature, err error) {
	t.Helper()
	if err != nil {
		e, ok := errors.AsType[*awsquery.Error](err)
		if !ok {
			t.Fatalf("not an *awsquery.Error: %T %v", err, err)
		}
		if sig != nil {
			t.Fatalf("signature returned with error %v", err)
		}
		if len(e.Message) > maxParseMessage {
			t.Fatalf("message of %d bytes", len(e.Message))
		}
		return
	}
	if sig.AccessKeyID == "" || sig.Region == "" || !slices.Contains([]string{"iam", "sts"}, sig.Service) {
		t.Fatalf("accepted incomplete scope %+v", fieldsOf(sig))
	}
	if !slices.Contains(sig.SignedHeaders, "host") || !slices.IsSorted(sig.SignedHeaders) {
		t.Fatalf("accepted signed headers %q", sig.SignedHeaders)
	}
	if d := sig.Time.Sub(errNow); d > sigv4.DefaultMaxSkew || d < -sigv4.DefaultMaxSkew {
		t.Fatalf("accepted time %v", sig.Time)
	}
	// A fuzzed signature is essentially never right; what matters is that
	// Verify handles whatever Parse let through.
	if err := sig.Verify(r, []byte("Action=GetCallerIdentity"), testSecret); err == nil {
		t.Logf("fuzzed request verified: %+v", fieldsOf(sig))
	} else if awsCode(err) == "" {
		t.Fatalf("Verify error not an *awsquery.Error: %v", err)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	seeds := []struct{ authz, date string }{
		{authz(goodCred, "content-type;host;x-amz-date;x-amz-security-token", anySig), nowStamp},
		{authz(goodCred, "host", anySig), nowStamp},
		{"AWS4-HMAC-SHA256 Credential=" + goodCred + ",SignedHeaders=host,Signature=" + anySig, nowStamp},
		{"AWS4-HMAC-SHA256", ""},
		{"AWS4-HMAC-SHA256 Credential= " + goodCred, nowStamp},
		{"AWS4-ECDSA-P256-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=x", nowStamp},
		{authz(testAKID+"/2026/Mars/s3/aws5", "host", anySig), "20261327T233841Z"},
		{authz(goodCred+"//", "a;b;host", anySig) + ", Credential=x", nowStamp},
		{"Basic dXNlcjpwYXNz", nowStamp},
		{strings.Repeat("AWS4-HMAC-SHA256 ,=", 200), strings.Repeat("9", 16)},
	}
	for _, s := range seeds {
		f.Add(s.authz, s.date, "application/x-www-form-urlencoded", testToken)
	}
	v := &sigv4.Verifier{Now: fixedClock(errNow)}
	f.Fuzz(func(t *testing.T, authzValue, date, contentType, token string) {
		r := &http.Request{Method: "POST", Host: "127.0.0.1:8400", URL: &url.URL{Path: "/"}, Header: http.Header{}}
		r.Header.Set("Authorization", authzValue)
		if date != "" {
			r.Header.Set("X-Amz-Date", date)
		}
		r.Header.Set("Content-Type", contentType)
		if token != "" {
			r.Header.Set("X-Amz-Security-Token", token)
		}
		sig, err := v.Parse(r)
		checkParseResult(t, v, r, sig, err)
	})
}

func FuzzParsePresigned(f *testing.F) {
	seeds := []string{
		presignTarget()[2:],
		presignTarget("X-Amz-Expires", "60", "X-Amz-Security-Token", "IQoJ%2Bb%3D%3D")[2:],
		presignTarget("X-Amz-Credential", testAKID+"%2F20261127%2Fus-east-1%2Fiam%2Faws4_request", "X-Amz-Expires", "0")[2:],
		"X-Amz-Algorithm=AWS4-HMAC-SHA256",
		"X-Amz-Algorith%6D=AWS4-HMAC-SHA256&X-Amz-Credential=%zz&&&=&X-Amz-Date=2026",
		"X-Amz-Algorithm&X-Amz-Algorithm=x&X-Amz-Signature",
		strings.Repeat("X-Amz-Algorithm=a&", 100),
		"a=%&b=%4&c=+&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-SignedHeaders=host%3B%3B",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	v := &sigv4.Verifier{Now: fixedClock(errNow)}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := &http.Request{Method: "GET", Host: "127.0.0.1:8400", URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: http.Header{}}
		sig, err := v.Parse(r)
		if err == nil && !sig.Presigned {
			t.Fatalf("query-only request parsed as header-signed")
		}
		checkParseResult(t, v, r, sig, err)
	})
}

// FuzzVerifyRequest feeds arbitrary paths, queries and header values to
// Verify through a parsed signature: no panic, and a mismatch always comes
// back as SignatureDoesNotMatch with the token redacted.
func FuzzVerifyRequest(f *testing.F) {
	f.Add("/", "Action=GetCallerIdentity&Version=2011-06-15", "a  b\t c", []byte("Action=GetCallerIdentity"))
	f.Add("/a/./b/../..//c/%zz%", "a=%&&=b&+=+&%E1%88", "", []byte{})
	f.Add("*", "X-Amz-Signature=1&X-Amz-Security-Token="+testToken, "\u00a0x\u00a0", []byte{0xff})
	v := &sigv4.Verifier{Now: fixedClock(errNow)}
	f.Fuzz(func(t *testing.T, path, rawQuery, headerValue string, body []byte) {
		r := &http.Request{Method: "POST", Host: "h", RequestURI: path, URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: http.Header{}}
		r.Header.Set("X-Amz-Date", nowStamp)
		r.Header.Set("X-Amz-Security-Token", testToken)
		r.Header.Set("X-Custom", headerValue)
		r.Header.Set("Authorization", authz(goodCred, "host;x-amz-date;x-amz-security-token;x-custom", anySig))
		sig, err := v.Parse(r)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		err = sig.Verify(r, body, testSecret)
		if awsCode(err) != "SignatureDoesNotMatch" {
			t.Fatalf("Verify: %v", err)
		}
		echoed := strings.Contains(path+rawQuery+headerValue, testToken)
		if !echoed && strings.Contains(err.Error(), testToken) {
			t.Fatalf("session token in the error")
		}
	})
}
