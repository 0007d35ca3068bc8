package sigv4_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sigv4"
)

// refSign is an independent, deliberately plain SigV4 signer over a given
// canonical request, built on crypto/hmac.
func refSign(canonicalRequest, amzDate, scope, secret string) string {
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	parts := strings.Split(scope, "/")
	k := mac([]byte("AWS4"+secret), parts[0])
	for _, p := range parts[1:] {
		k = mac(k, p)
	}
	h := sha256.Sum256([]byte(canonicalRequest))
	return hex.EncodeToString(mac(k, "AWS4-HMAC-SHA256\n"+amzDate+"\n"+scope+"\n"+hex.EncodeToString(h[:])))
}

// TestCanonicalRequest pins how each part of a wire request is
// canonicalised. Each case is signed over the expected canonical request by
// refSign; the verifier must agree byte for byte (on disagreement its error
// shows its own canonical request, diffed below).
func TestCanonicalRequest(t *testing.T) {
	const scope = "20261127/us-east-1/sts/aws4_request"
	emptyHash := payloadHash("")
	tests := []struct {
		name      string
		wire      string // {auth} is replaced by the Authorization header
		signed    string
		canonical string // up to, not including, the signed-header line
	}{
		{"plus is a space, lowercase escapes are upper-cased",
			"GET /?a=b+c&d=%7e&x=%2f%3a HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date",
			"GET\n/\na=b%20c&d=~&x=%2F%3A\nhost:h\nx-amz-date:20261127T233841Z\n"},
		{"a stray percent is a literal percent",
			"GET /?x=100%&y=%zz HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date",
			"GET\n/\nx=100%25&y=%25zz\nhost:h\nx-amz-date:20261127T233841Z\n"},
		{"empty segments skipped, bare names get empty values",
			"GET /?&a&&b=&c=1 HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date",
			"GET\n/\na=&b=&c=1\nhost:h\nx-amz-date:20261127T233841Z\n"},
		{"repeated names sorted by encoded value; sorting after encoding",
			"GET /?k=2&k=10&k=1&a-b=1&a/b=2 HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date",
			"GET\n/\na%2Fb=2&a-b=1&k=1&k=10&k=2\nhost:h\nx-amz-date:20261127T233841Z\n"},
		{"reserved and UTF-8 bytes in the query",
			"GET /?a=b:c@d&na%C3%AFve=%E2%9C%93 HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date",
			"GET\n/\na=b%3Ac%40d&na%C3%AFve=%E2%9C%93\nhost:h\nx-amz-date:20261127T233841Z\n"},
		{"path: dot segments and repeated slashes removed",
			"POST /a/./b/../c//d/ HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date",
			"POST\n/a/c/d/\n\nhost:h\nx-amz-date:20261127T233841Z\n"},
		{"path: encoded once more on top of the wire encoding",
			"POST /x%2Fy/%E1%88%B4/a:b@c HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date",
			"POST\n/x%252Fy/%25E1%2588%25B4/a%3Ab%40c\n\nhost:h\nx-amz-date:20261127T233841Z\n"},
		{"absolute-form request target",
			"POST http://h/abs/path?q=1 HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date",
			"POST\n/abs/path\nq=1\nhost:h\nx-amz-date:20261127T233841Z\n"},
		{"header values trimmed, inner spaces collapsed, tabs kept",
			"POST / HTTP/1.1\r\nHost: h\r\nMy-Header:   a   b  c  \r\nX-Tab: a\t\tb\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;my-header;x-amz-date;x-tab",
			"POST\n/\n\nhost:h\nmy-header:a b c\nx-amz-date:20261127T233841Z\nx-tab:a\t\tb\n"},
		{"repeated header lines joined by commas, in order",
			"POST / HTTP/1.1\r\nHost: h\r\nX-Multi: 2\r\nx-multi:  1 \r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date;x-multi",
			"POST\n/\n\nhost:h\nx-amz-date:20261127T233841Z\nx-multi:2,1\n"},
		{"Date header instead of X-Amz-Date",
			"POST / HTTP/1.1\r\nHost: h\r\nDate: Fri, 27 Nov 2026 23:38:41 GMT\r\n{auth}\r\n",
			"date;host",
			"POST\n/\n\ndate:Fri, 27 Nov 2026 23:38:41 GMT\nhost:h\n"},
		{"a header signed with an empty value",
			"POST / HTTP/1.1\r\nHost: h\r\nX-Empty: \r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date;x-empty",
			"POST\n/\n\nhost:h\nx-amz-date:20261127T233841Z\nx-empty:\n"},
		{"header name longer than 64 bytes",
			"POST / HTTP/1.1\r\nHost: h\r\nX-" + strings.Repeat("Long-", 14) + "Name: v\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date;x-" + strings.Repeat("long-", 14) + "name",
			"POST\n/\n\nhost:h\nx-amz-date:20261127T233841Z\nx-" + strings.Repeat("long-", 14) + "name:v\n"},
		{"host kept as sent, with its port",
			"POST / HTTP/1.1\r\nHost: Example.COM:8400\r\nX-Amz-Date: 20261127T233841Z\r\n{auth}\r\n",
			"host;x-amz-date",
			"POST\n/\n\nhost:Example.COM:8400\nx-amz-date:20261127T233841Z\n"},
	}
	v := &sigv4.Verifier{Now: fixedClock(errNow)}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			creq := tc.canonical + "\n" + tc.signed + "\n" + emptyHash
			sig := refSign(creq, nowStamp, scope, testSecret)
			w := wire(strings.Replace(tc.wire, "{auth}",
				"Authorization: "+authz(testAKID+"/"+scope, tc.signed, sig), 1) + "\r\n")
			if _, err := check(v, w, testSecret); err != nil {
				if awsCode(err) == "" {
					t.Fatalf("bad test wire: %v", err)
				}
				msg := awsquery.AsError(err).Message
				_, got, _ := strings.Cut(msg, "should have been\n'")
				got, _, _ = strings.Cut(got, "'\n\n")
				t.Fatalf("refused: %s\ncanonical request (-want +verifier):\n%s", awsquery.AsError(err).Code, cmp.Diff(creq, got))
			}
		})
	}
}

// TestPresignedCanonicalQuery: X-Amz-Signature is left out wherever it sits,
// the other X-Amz-* parameters are signed like any parameter.
func TestPresignedCanonicalQuery(t *testing.T) {
	const scope = "20261127/us-east-1/sts/aws4_request"
	cred := "X-Amz-Credential=" + testAKID + "%2F20261127%2Fus-east-1%2Fsts%2Faws4_request"
	creq := "GET\n/\nAction=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256&" + cred +
		"&X-Amz-Date=20261127T233841Z&X-Amz-SignedHeaders=host\nhost:h\n\nhost\n" + payloadHash("")
	sig := refSign(creq, nowStamp, scope, testSecret)
	target := "/?X-Amz-Signature=" + sig + "&X-Amz-Date=20261127T233841Z&Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256&" +
		cred + "&X-Amz-SignedHeaders=host"
	v := &sigv4.Verifier{Now: fixedClock(errNow)}
	s, err := check(v, wire("GET "+target+" HTTP/1.1\r\nHost: h\r\n\r\n"), testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Presigned || s.AccessKeyID != testAKID {
		t.Errorf("parsed %+v", fieldsOf(s))
	}
}
