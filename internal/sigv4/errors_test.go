package sigv4_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sigv4"
)

const (
	nowStamp = "20261127T233841Z"
	anySig   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	goodCred = testAKID + "/20261127/us-east-1/sts/aws4_request"
)

var errNow = time.Date(2026, 11, 27, 23, 38, 41, 0, time.UTC)

func authz(cred, signed, sig string) string {
	return "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + signed + ", Signature=" + sig
}

// req builds a server-side request from a target and header pairs.
func req(t *testing.T, method, target string, headers ...string) *http.Request {
	t.Helper()
	p := wireParts{method: method, target: target, proto: "HTTP/1.1", headers: [][2]string{{"Host", "127.0.0.1:8400"}}}
	for i := 0; i+1 < len(headers); i += 2 {
		p.headers = append(p.headers, [2]string{headers[i], headers[i+1]})
	}
	r, _ := serverRequest(t, p.join())
	return r
}

func presignTarget(params ...string) string {
	base := map[string]string{
		"X-Amz-Algorithm":     "AWS4-HMAC-SHA256",
		"X-Amz-Credential":    strings.ReplaceAll(goodCred, "/", "%2F"),
		"X-Amz-Date":          nowStamp,
		"X-Amz-SignedHeaders": "host",
		"X-Amz-Signature":     anySig,
	}
	order := []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"}
	for i := 0; i+1 < len(params); i += 2 {
		if _, ok := base[params[i]]; !ok {
			order = append(order, params[i])
		}
		base[params[i]] = params[i+1]
	}
	q := "Action=GetCallerIdentity&Version=2011-06-15"
	for _, k := range order {
		if v := base[k]; v != "-" {
			q += "&" + k + "=" + v
		}
	}
	return "/?" + q
}

type errCase struct {
	name    string
	v       sigv4.Verifier
	r       func(t *testing.T) *http.Request
	code    string // "" means Parse succeeds
	status  int
	msg     string
	isCause error
}

func TestParseErrors(t *testing.T) {
	hdr := func(h ...string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request { return req(t, "POST", "/", h...) }
	}
	signedBy := func(a string, extra ...string) func(t *testing.T) *http.Request {
		return hdr(append([]string{"X-Amz-Date", nowStamp, "Authorization", a}, extra...)...)
	}
	get := func(target string, h ...string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request { return req(t, "GET", target, h...) }
	}
	const incomplete, mismatch = "IncompleteSignature", "SignatureDoesNotMatch"
	tests := []errCase{
		{name: "no authentication", r: hdr(), code: "MissingAuthenticationToken", status: 403,
			msg: "Request is missing Authentication Token", isCause: sigv4.ErrNoAuth},
		{name: "other scheme", r: hdr("Authorization", "Basic dXNlcjpwYXNz"), code: "MissingAuthenticationToken", status: 403,
			msg: "Request is missing Authentication Token"},
		{name: "header and query", r: get(presignTarget(), "Authorization", authz(goodCred, "host", anySig)), code: mismatch, status: 403,
			msg: "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."},
		{name: "two authorization headers", r: hdr("X-Amz-Date", nowStamp, "Authorization", authz(goodCred, "host", anySig), "Authorization", authz(goodCred, "host", anySig)),
			code: incomplete, status: 400, msg: "Only one Authorization header is allowed."},
		{name: "everything missing", r: hdr("Authorization", "AWS4-HMAC-SHA256"), code: incomplete, status: 400,
			msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
				"Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a " +
				"'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"},
		{name: "signature missing", r: signedBy("AWS4-HMAC-SHA256 Credential=" + goodCred + ", SignedHeaders=host"), code: incomplete,
			msg: "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=" + goodCred + ", SignedHeaders=host"},
		{name: "empty signed headers count as missing", r: signedBy(authz(goodCred, "", anySig)), code: incomplete,
			msg: "Authorization header requires 'SignedHeaders' parameter. Authorization=" + authz(goodCred, "", anySig)},
		{name: "component without equal sign", r: signedBy("AWS4-HMAC-SHA256 Credential= " + goodCred + ", SignedHeaders=host, Signature=" + anySig),
			code: incomplete, status: 400,
			msg: "'" + goodCred + "' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential= " + goodCred + ", SignedHeaders=host, Signature=" + anySig + "'."},
		{name: "duplicate component", r: signedBy(authz(goodCred, "host", anySig) + ", Signature=" + anySig), code: incomplete,
			msg: "'Signature' appears more than once in Authorization header: '" + authz(goodCred, "host", anySig) + ", Signature=" + anySig + "'."},
		{name: "components without spaces", r: signedBy("AWS4-HMAC-SHA256 Credential=" + goodCred + ",SignedHeaders=host;x-amz-date,Signature=" + anySig)},
		{name: "date not basic format", r: hdr("X-Amz-Date", "2026-11-27T23:38:41Z", "Authorization", authz(goodCred, "host", anySig)), code: incomplete,
			msg: "Date must be in ISO-8601 'basic format'. Got '2026-11-27T23:38:41Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "date out of range", r: hdr("X-Amz-Date", "20261327T233841Z", "Authorization", authz(goodCred, "host", anySig)), code: incomplete,
			msg: "Date must be in ISO-8601 'basic format'. Got '20261327T233841Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "two dates", r: hdr("X-Amz-Date", nowStamp, "X-Amz-Date", nowStamp, "Authorization", authz(goodCred, "host", anySig)), code: incomplete,
			msg: "Only one X-Amz-Date header is allowed."},
		{name: "date header, HTTP format", r: hdr("Date", "Fri, 27 Nov 2026 23:38:41 GMT", "Authorization", authz(goodCred, "date;host", anySig))},
		{name: "date header, basic format", r: hdr("Date", nowStamp, "Authorization", authz(goodCred, "date;host", anySig))},
		{name: "date header, bad", r: hdr("Date", "yesterday", "Authorization", authz(goodCred, "date;host", anySig)), code: incomplete,
			msg: "Date must be in ISO-8601 'basic format'. Got 'yesterday'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "expired", r: hdr("X-Amz-Date", "20261127T232340Z", "Authorization", authz("AKIAIOSFODNN7EXAMPLE/20261127/us-east-1/sts/aws4_request", "host", anySig)),
			code: mismatch, status: 403, isCause: sigv4.ErrClockSkew,
			msg: "Signature expired: 20261127T232340Z is now earlier than 20261127T232341Z (20261127T233841Z - 15 min.)"},
		{name: "oldest accepted", r: hdr("X-Amz-Date", "20261127T232341Z", "Authorization", authz(goodCred, "host", anySig))},
		{name: "not yet current", r: hdr("X-Amz-Date", "20261127T235342Z", "Authorization", authz(goodCred, "host", anySig)),
			code: mismatch, isCause: sigv4.ErrClockSkew,
			msg: "Signature not yet current: 20261127T235342Z is still later than 20261127T235341Z (20261127T233841Z + 15 min.)"},
		{name: "newest accepted", r: hdr("X-Amz-Date", "20261127T235341Z", "Authorization", authz(goodCred, "host", anySig))},
		{name: "custom skew", v: sigv4.Verifier{MaxSkew: 5 * time.Minute}, r: hdr("X-Amz-Date", "20261127T233340Z", "Authorization", authz(goodCred, "host", anySig)),
			code: mismatch, msg: "Signature expired: 20261127T233340Z is now earlier than 20261127T233341Z (20261127T233841Z - 5 min.)"},
		{name: "host not signed", r: signedBy(authz(goodCred, "x-amz-date", anySig)), code: mismatch, status: 403,
			msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "signed headers unsorted", r: signedBy(authz(goodCred, "x-amz-date;host", anySig)), code: incomplete,
			msg: "SignedHeaders must be a sorted, ';'-separated list of distinct lowercase header names, got 'x-amz-date;host'."},
		{name: "signed headers uppercase", r: signedBy(authz(goodCred, "Host", anySig)), code: incomplete,
			msg: "SignedHeaders must be a sorted, ';'-separated list of distinct lowercase header names, got 'Host'."},
		{name: "signed headers duplicate", r: signedBy(authz(goodCred, "host;host", anySig)), code: incomplete,
			msg: "SignedHeaders must be a sorted, ';'-separated list of distinct lowercase header names, got 'host;host'."},
		{name: "signed header missing", r: signedBy(authz(goodCred, "host;x-absent;x-amz-date", anySig)), code: mismatch, status: 403,
			msg: "Header 'x-absent' is listed in SignedHeaders but is missing from the request."},
		{name: "presigned, signed header missing", r: get(presignTarget("X-Amz-SignedHeaders", "host%3Bx-k8s-aws-id")), code: mismatch,
			msg: "Header 'x-k8s-aws-id' is listed in SignedHeaders but is missing from the request."},
		{name: "token header not signed", r: signedBy(authz(goodCred, "host;x-amz-date", anySig), "X-Amz-Security-Token", testToken), code: mismatch,
			msg: "There were headers present in the request which were not signed: x-amz-security-token"},
		{name: "two token headers", r: signedBy(authz(goodCred, "host;x-amz-date;x-amz-security-token", anySig), "X-Amz-Security-Token", "a", "X-Amz-Security-Token", "b"),
			code: incomplete, msg: "Only one X-Amz-Security-Token header is allowed."},
		{name: "sigv4a", r: signedBy("AWS4-ECDSA-P256-SHA256 Credential=" + goodCred + ", SignedHeaders=host, Signature=" + anySig), code: incomplete,
			msg: "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256' (only AWS4-HMAC-SHA256 for now). "},
		{name: "credential too short", r: signedBy(authz(testAKID+"/20261127/us-east-1/sts", "host", anySig)), code: incomplete,
			msg: "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '" + testAKID + "/20261127/us-east-1/sts'"},
		{name: "credential trailing slashes ignored", r: signedBy(authz(goodCred+"//", "host", anySig))},
		{name: "invalid region", r: signedBy(authz(testAKID+"/20261127/US_EAST/sts/aws4_request", "host", anySig)), code: mismatch,
			msg: "Credential should be scoped to a valid region. "},
		{name: "region outside allow-list", v: sigv4.Verifier{Regions: []string{"eu-west-1"}}, r: signedBy(authz(goodCred, "host", anySig)), code: mismatch,
			msg: "Credential should be scoped to a valid region. "},
		{name: "custom region name", r: signedBy(authz(testAKID+"/20261127/local/sts/aws4_request", "host", anySig))},
		{name: "service not allowed", r: signedBy(authz(testAKID+"/20261127/us-east-1/s3/aws4_request", "host", anySig)), code: mismatch,
			msg: "Credential should be scoped to correct service: 'iam' or 'sts'. "},
		{name: "service not allowed, one service", v: sigv4.Verifier{Services: []string{"sts"}}, r: signedBy(authz(testAKID+"/20261127/us-east-1/iam/aws4_request", "host", anySig)),
			code: mismatch, msg: "Credential should be scoped to correct service: 'sts'. "},
		{name: "bad terminator", r: signedBy(authz(testAKID+"/20261127/us-east-1/sts/aws4_requests", "host", anySig)), code: mismatch,
			msg: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_requests'. "},
		{name: "scope date differs", r: signedBy(authz(testAKID+"/20261126/us-east-1/sts/aws4_request", "host", anySig)), code: mismatch,
			msg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261126' != '20261127', from '20261127T233841Z'. "},
		{name: "every scope finding at once", r: signedBy(authz(testAKID+"/2026/Mars/s3/aws5", "host", anySig)), code: mismatch,
			msg: "Credential should be scoped to a valid region. Credential should be scoped to correct service: 'iam' or 'sts'. " +
				"Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5'. " +
				"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '2026' != '20261127', from '20261127T233841Z'. "},
		{name: "malformed access key id", r: signedBy(authz("ASIA-BAD/20261127/us-east-1/sts/aws4_request", "host", anySig)),
			code: "InvalidClientTokenId", status: 403, msg: "The security token included in the request is invalid."},

		// Presigned.
		{name: "presigned, only the algorithm", r: get("/?X-Amz-Algorithm=AWS4-HMAC-SHA256"), code: incomplete, status: 400,
			msg: "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. " +
				"AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS query-string parameters must include 'X-Amz-Date'. " +
				"Re-examine the query-string parameters."},
		{name: "presigned, empty algorithm", r: get(presignTarget("X-Amz-Algorithm", "")), code: incomplete,
			msg: "AWS query-string parameters must include 'X-Amz-Algorithm'. Re-examine the query-string parameters."},
		{name: "presigned, escaped parameter name", r: get(strings.Replace(presignTarget(), "X-Amz-Algorithm", "X-Amz-Algorith%6D", 1))},
		{name: "presigned, duplicate credential", r: get(presignTarget() + "&X-Amz-Credential=x"), code: incomplete,
			msg: "AWS query-string parameter 'X-Amz-Credential' must appear only once. Re-examine the query-string parameters."},
		{name: "presigned, bad date", r: get(presignTarget("X-Amz-Date", "20261127")), code: incomplete,
			msg: "Date must be in ISO-8601 'basic format'. Got '20261127'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "presigned, unsupported algorithm", r: get(presignTarget("X-Amz-Algorithm", "AWS4-HMAC-SHA1")), code: incomplete,
			msg: "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1' (only AWS4-HMAC-SHA256 for now). "},
		{name: "presigned, host not signed", r: get(presignTarget("X-Amz-SignedHeaders", "x-k8s-aws-id")), code: mismatch,
			msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "presigned sts, X-Amz-Expires ignored", r: get(presignTarget("X-Amz-Expires", "garbage"))},
		{name: "presigned sts, expired", r: get(presignTarget("X-Amz-Date", "20261127T232340Z", "X-Amz-Expires", "900")), code: mismatch, isCause: sigv4.ErrClockSkew,
			msg: "Signature expired: 20261127T232340Z is now earlier than 20261127T232341Z (20261127T233841Z - 15 min.)"},
		{name: "presigned, not yet current", r: get(presignTarget("X-Amz-Date", "20261127T235342Z")), code: mismatch,
			msg: "Signature not yet current: 20261127T235342Z is still later than 20261127T235341Z (20261127T233841Z + 15 min.)"},
		{name: "presigned iam, X-Amz-Expires zero", r: get(presignTarget("X-Amz-Credential", testAKID+"%2F20261127%2Fus-east-1%2Fiam%2Faws4_request", "X-Amz-Expires", "0")),
			code: incomplete, msg: "X-Amz-Expires must be a whole number of seconds between 1 and 604800, got '0'. Re-examine the query-string parameters."},
		{name: "presigned iam, X-Amz-Expires too large", r: get(presignTarget("X-Amz-Credential", testAKID+"%2F20261127%2Fus-east-1%2Fiam%2Faws4_request", "X-Amz-Expires", "604801")),
			code: incomplete, msg: "X-Amz-Expires must be a whole number of seconds between 1 and 604800, got '604801'. Re-examine the query-string parameters."},
		{name: "presigned iam, expired by X-Amz-Expires", r: get(presignTarget("X-Amz-Credential", testAKID+"%2F20261127%2Fus-east-1%2Fiam%2Faws4_request",
			"X-Amz-Date", "20261127T233740Z", "X-Amz-Expires", "60")), code: "RequestExpired", status: 400, isCause: sigv4.ErrClockSkew,
			msg: "Request has expired: X-Amz-Date 20261127T233740Z plus X-Amz-Expires 60 seconds ended at 20261127T233840Z; it is now 20261127T233841Z."},
		{name: "presigned iam, long X-Amz-Expires capped by skew", r: get(presignTarget("X-Amz-Credential", testAKID+"%2F20261127%2Fus-east-1%2Fiam%2Faws4_request",
			"X-Amz-Date", "20261127T232340Z", "X-Amz-Expires", "3600")), code: mismatch,
			msg: "Signature expired: 20261127T232340Z is now earlier than 20261127T232341Z (20261127T233841Z - 15 min.)"},
		{name: "presigned, token header not signed", r: get(presignTarget(), "X-Amz-Security-Token", testToken), code: mismatch,
			msg: "There were headers present in the request which were not signed: x-amz-security-token"},
		{name: "presigned, token twice", r: get(presignTarget("X-Amz-SignedHeaders", "host%3Bx-amz-security-token", "X-Amz-Security-Token", "a"), "X-Amz-Security-Token", "b"),
			code: incomplete, msg: "The session token must be sent either as the X-Amz-Security-Token header or as the query parameter, not both."},
		{name: "presigned, scope service", r: get(presignTarget("X-Amz-Credential", testAKID+"%2F20261127%2Fus-east-1%2Fs3%2Faws4_request")), code: mismatch,
			msg: "Credential should be scoped to correct service: 'iam' or 'sts'. "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.v
			v.Now = fixedClock(errNow)
			sig, err := v.Parse(tc.r(t))
			if tc.code == "" {
				if err != nil || sig == nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if sig != nil {
				t.Errorf("signature returned with an error")
			}
			e, ok := errors.AsType[*awsquery.Error](err)
			if !ok {
				t.Fatalf("error %v (%T) is not an *awsquery.Error", err, err)
			}
			if diff := cmp.Diff(tc.code+": "+tc.msg, e.Code+": "+e.Message); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if tc.status != 0 && e.HTTPStatus() != tc.status {
				t.Errorf("status %d, want %d", e.HTTPStatus(), tc.status)
			}
			if !errors.Is(err, &awsquery.Error{Code: tc.code}) {
				t.Errorf("errors.Is by code fails")
			}
			if tc.isCause != nil && !errors.Is(err, tc.isCause) {
				t.Errorf("errors.Is(err, %v) = false", tc.isCause)
			}
			if tc.isCause != sigv4.ErrNoAuth && errors.Is(err, sigv4.ErrNoAuth) {
				t.Errorf("ErrNoAuth for a request that carries authentication")
			}
			if strings.Contains(e.Error(), testToken) || strings.Contains(e.Error(), testSecret) {
				t.Errorf("secret material in error: %v", e)
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	v := &sigv4.Verifier{Now: fixedClock(signTime)}
	base := sdkCases[0] // STS GetCallerIdentity with a session token, eu-west-1
	signedWith := func(mod func(*sdkCase)) wire {
		c := base
		c.headers = map[string]string{}
		for k, val := range base.headers {
			c.headers[k] = val
		}
		mod(&c)
		return c.sign(t)
	}
	t.Run("content sha256 mismatch", func(t *testing.T) {
		w := signedWith(func(c *sdkCase) { c.headers["X-Amz-Content-Sha256"] = payloadHash("other") })
		_, err := check(v, w, testSecret)
		if got := awsCode(err) + ": " + awsquery.AsError(err).Message; got != "SignatureDoesNotMatch: The provided 'x-amz-content-sha256' header does not match what was computed." {
			t.Errorf("got %q", got)
		}
	})
	t.Run("content sha256 matching", func(t *testing.T) {
		w := signedWith(func(c *sdkCase) { c.headers["X-Amz-Content-Sha256"] = payloadHash(c.body) })
		if _, err := check(v, w, testSecret); err != nil {
			t.Errorf("refused: %v", err)
		}
	})
	t.Run("unsigned payload", func(t *testing.T) {
		w := signedWith(func(c *sdkCase) { c.headers["X-Amz-Content-Sha256"] = "UNSIGNED-PAYLOAD" })
		_, err := check(v, w, testSecret)
		want := "IncompleteSignature: X-Amz-Content-Sha256 must be the SHA-256 of the request body; unsigned and streaming payloads are not accepted by this service."
		if got := awsCode(err) + ": " + awsquery.AsError(err).Message; got != want {
			t.Errorf("got %q", got)
		}
	})
	t.Run("mismatch message shows the canonical request without the token", func(t *testing.T) {
		w := signedWith(func(*sdkCase) {})
		_, err := check(v, w, testSecret+"x")
		if !errors.Is(err, sigv4.ErrMismatch) {
			t.Fatalf("err = %v", err)
		}
		want := "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details." +
			"\n\nThe Canonical String for this request should have been\n'" +
			"POST\n/\n\ncontent-length:43\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:127.0.0.1:8400\nx-amz-date:20261127T233841Z\nx-amz-security-token:REDACTED\n\n" +
			"content-length;content-type;host;x-amz-date;x-amz-security-token\n" + payloadHash(base.body) +
			"'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20261127T233841Z\n20261127/eu-west-1/sts/aws4_request\n"
		msg := awsquery.AsError(err).Message
		if !strings.HasPrefix(msg, want) {
			t.Errorf("message:\n%s\nwant prefix:\n%s", msg, want)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("session token in the error")
		}
	})
	t.Run("presigned mismatch redacts the query token", func(t *testing.T) {
		c := sdkCases[5]
		_, err := check(v, c.sign(t), testSecret+"x")
		msg := awsquery.AsError(err).Message
		if !strings.Contains(msg, "X-Amz-Security-Token=REDACTED&") || strings.Contains(msg, "IQoJ") {
			t.Errorf("message: %s", msg)
		}
	})
	t.Run("uppercase signature hex", func(t *testing.T) {
		w := signedWith(func(*sdkCase) {})
		s := string(w)
		i := strings.Index(s, "Signature=") + len("Signature=")
		upper := wire(s[:i] + strings.ToUpper(s[i:i+64]) + s[i+64:])
		if _, err := check(v, upper, testSecret); awsCode(err) != "SignatureDoesNotMatch" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("nil signature", func(t *testing.T) {
		var s *sigv4.Signature
		if err := s.Verify(req(t, "GET", "/"), nil, testSecret); awsCode(err) != "InternalFailure" {
			t.Errorf("err = %v", err)
		}
	})
}

func TestRequireService(t *testing.T) {
	v := &sigv4.Verifier{Now: fixedClock(signTime)}
	r, _ := serverRequest(t, sdkCases[0].sign(t))
	sig, err := v.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := sig.RequireService("sts"); err != nil {
		t.Errorf("sts: %v", err)
	}
	err = sig.RequireService("iam")
	if got := awsCode(err) + ": " + awsquery.AsError(err).Message; got != "SignatureDoesNotMatch: Credential should be scoped to correct service: 'iam'. " {
		t.Errorf("got %q", got)
	}
}

func TestCredentialErrors(t *testing.T) {
	cause := errors.New("no such key")
	tests := []struct {
		err          *awsquery.Error
		code, msg    string
		status       int
		internalText string
	}{
		{sigv4.InvalidClientTokenID(cause), "InvalidClientTokenId", "The security token included in the request is invalid.", 403, "no such key"},
		{sigv4.ExpiredToken(cause), "ExpiredToken", "The security token included in the request is expired", 403, "no such key"},
	}
	for _, tc := range tests {
		if tc.err.Code != tc.code || tc.err.Message != tc.msg || tc.err.HTTPStatus() != tc.status {
			t.Errorf("%s: got %q %q %d", tc.code, tc.err.Code, tc.err.Message, tc.err.HTTPStatus())
		}
		if !errors.Is(tc.err, cause) {
			t.Errorf("%s: cause not wrapped", tc.code)
		}
	}
}
