package sigv4_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sigv4"
)

// presignedTarget is the request target of a GetCallerIdentity URL
// presigned by aws-sdk-go-v2 with session credentials (the token in the
// query string).
func presignedTarget(t *testing.T) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://h/?Action=GetCallerIdentity&Version=2011-06-15", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: testToken},
		req, payloadHash(""), "sts", "us-east-1", signTime)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u, "http://h")
}

// renameParams rewrites the names of the X-Amz-* query parameters of a
// target with enc, keeping values and order.
func renameParams(target string, enc func(string) string) string {
	path, query, _ := strings.Cut(target, "?")
	parts := strings.Split(query, "&")
	for i, p := range parts {
		name, value, _ := strings.Cut(p, "=")
		if strings.HasPrefix(name, "X-Amz-") {
			parts[i] = enc(name) + "=" + value
		}
	}
	return path + "?" + strings.Join(parts, "&")
}

func hyphensEscaped(n string) string { return strings.ReplaceAll(n, "-", "%2D") }

// TestPresignedEncodedNames: AWS decodes query parameter names before it
// reads them, so a presigned request whose X-Amz-* names arrive
// percent-encoded, in any mix, is the same request: it verifies and carries
// its session token. The same names given twice (raw and encoded), or in
// another case, are refused.
func TestPresignedEncodedNames(t *testing.T) {
	v := &sigv4.Verifier{Now: fixedClock(signTime.Add(time.Minute))}
	target := presignedTarget(t)
	get := func(target string) wire { return wire("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n") }

	for name, enc := range map[string]func(string) string{
		"plain":              func(n string) string { return n },
		"hyphens escaped":    hyphensEscaped,
		"lowercase hex":      func(n string) string { return strings.ReplaceAll(n, "-", "%2d") },
		"last hyphen only":   func(n string) string { i := strings.LastIndexByte(n, '-'); return n[:i] + "%2D" + n[i+1:] },
		"first byte escaped": func(n string) string { return "%58" + n[1:] },
		"token alone": func(n string) string {
			if n == "X-Amz-Security-Token" {
				return hyphensEscaped(n)
			}
			return n
		},
	} {
		t.Run(name, func(t *testing.T) {
			sig, err := check(v, get(renameParams(target, enc)), testSecret)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !sig.Presigned || sig.SessionToken != testToken || sig.AccessKeyID != testAKID {
				t.Errorf("parsed %+v", fieldsOf(sig))
			}
		})
	}

	tokenParam := "X-Amz-Security-Token=" + strings.SplitN(strings.SplitN(target, "X-Amz-Security-Token=", 2)[1], "&", 2)[0]
	for name, tc := range map[string]struct {
		target string
		code   string
	}{
		"token raw and encoded": {target + "&" + hyphensEscaped(tokenParam), awsquery.CodeIncompleteSignature},
		"signature raw and encoded": {target + "&X%2DAmz%2DSignature=" + strings.Repeat("0", 64),
			awsquery.CodeIncompleteSignature},
		"token name in lower case": {strings.Replace(target, "X-Amz-Security-Token=", "x-amz-security-token=", 1),
			awsquery.CodeIncompleteSignature},
		"credential name in upper case": {strings.Replace(target, "X-Amz-Credential=", "X-AMZ-CREDENTIAL=", 1),
			awsquery.CodeIncompleteSignature},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := check(v, get(tc.target), testSecret)
			if got := awsCode(err); got != tc.code {
				t.Fatalf("error %v, want code %s", err, tc.code)
			}
			if strings.Contains(awsquery.AsError(err).Message, testToken) {
				t.Errorf("the refusal echoes the session token: %s", awsquery.AsError(err).Message)
			}
		})
	}
}

// TestEncodedNamesSignedLiterally: a client that signed the encoded names
// as they are, without canonicalising them (which AWS would refuse: its
// canonical query re-encodes decoded names, so X%2DAmz%2DDate becomes
// X-Amz-Date), is refused here too.
func TestEncodedNamesSignedLiterally(t *testing.T) {
	const scope = "20261127/us-east-1/sts/aws4_request"
	cred := "X%2DAmz%2DCredential=" + testAKID + "%2F20261127%2Fus-east-1%2Fsts%2Faws4_request"
	query := "Action=GetCallerIdentity&Version=2011-06-15&X%2DAmz%2DAlgorithm=AWS4-HMAC-SHA256&" + cred +
		"&X%2DAmz%2DDate=20261127T233841Z&X%2DAmz%2DSignedHeaders=host"
	literal := "GET\n/\n" + query + "\nhost:h\n\nhost\n" + payloadHash("")
	sig := refSign(literal, nowStamp, scope, testSecret)
	v := &sigv4.Verifier{Now: fixedClock(errNow)}
	_, err := check(v, wire("GET /?"+query+"&X%2DAmz%2DSignature="+sig+" HTTP/1.1\r\nHost: h\r\n\r\n"), testSecret)
	if awsCode(err) != awsquery.CodeSignatureDoesNotMatch {
		t.Fatalf("error %v, want SignatureDoesNotMatch", err)
	}
	// Signed over the canonical form, the same wire request verifies.
	canonical := "GET\n/\nAction=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + testAKID +
		"%2F20261127%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20261127T233841Z&X-Amz-SignedHeaders=host\nhost:h\n\nhost\n" + payloadHash("")
	sig = refSign(canonical, nowStamp, scope, testSecret)
	if _, err := check(v, wire("GET /?"+query+"&X%2DAmz%2DSignature="+sig+" HTTP/1.1\r\nHost: h\r\n\r\n"), testSecret); err != nil {
		t.Fatalf("canonically signed request refused: %v", err)
	}
}

// TestMismatchRedactsTokenInAnyCase: the canonical request shown in a
// SignatureDoesNotMatch message replaces a query-string session token by
// REDACTED whatever the case of its name.
func TestMismatchRedactsTokenInAnyCase(t *testing.T) {
	const secretToken = "KLS1-this-token-must-never-be-echoed"
	v := &sigv4.Verifier{Now: fixedClock(errNow)}
	for _, name := range []string{"X-Amz-Security-Token", "x-amz-security-token", "X%2DAmz%2DSecurity%2DToken", "X-AMZ-SECURITY-TOKEN"} {
		t.Run(name, func(t *testing.T) {
			w := wire("GET /?Action=GetCallerIdentity&" + name + "=" + secretToken + " HTTP/1.1\r\nHost: h\r\nX-Amz-Date: " + nowStamp + "\r\n" +
				"Authorization: " + authz(testAKID+"/20261127/us-east-1/sts/aws4_request", "host;x-amz-date", strings.Repeat("0", 64)) + "\r\n\r\n")
			_, err := check(v, w, testSecret)
			if awsCode(err) != awsquery.CodeSignatureDoesNotMatch {
				t.Fatalf("error %v, want SignatureDoesNotMatch", err)
			}
			msg := awsquery.AsError(err).Message
			if strings.Contains(msg, secretToken) || !strings.Contains(msg, "=REDACTED") {
				t.Errorf("message does not redact the token:\n%s", msg)
			}
		})
	}
}
