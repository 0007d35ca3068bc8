package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"
)

// Issue 12 item 1: a request for a service keyless does not serve gets an
// AWS-shaped 501 naming the service, in the protocol its SDK parses; a bare
// GET / gets AWS's redirect and nothing about the deployment.

// signedRequest builds a request signed (header SigV4) as the bench
// administrator for service.
func signedRequest(t *testing.T, method, url, service, contentType, body string, header map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if service == "" {
		return req
	}
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: benchKeyID, SecretAccessKey: benchSecret},
		req, payloadHash(body), service, "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func payloadHash(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}

// answer is what a client reads from a response: status, the error code
// and message in the body's own shape, and the headers SDKs look at.
type answer struct {
	Status      int
	ContentType string
	ErrorType   string // X-Amzn-ErrorType
	Code        string
	Message     string
	Location    string
	Body        string
}

func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), ErrorType: resp.Header.Get("X-Amzn-ErrorType"),
		Location: resp.Header.Get("Location"), Body: string(b)}
	switch {
	case strings.Contains(a.ContentType, "json"):
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("JSON error body does not parse: %v\n%s", err, b)
		}
		a.Code, a.Message = e.Type, e.Message
	case strings.Contains(a.ContentType, "xml"):
		// S3's <Error> or the Query protocol's <ErrorResponse><Error>.
		var e struct {
			XMLName xml.Name
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
			Inner   struct {
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			} `xml:"Error"`
		}
		if err := xml.Unmarshal(b, &e); err != nil {
			t.Fatalf("XML error body does not parse: %v\n%s", err, b)
		}
		a.Code, a.Message = e.Code, e.Message
		if e.XMLName.Local == "ErrorResponse" {
			a.Code, a.Message = "Query:"+e.Inner.Code, e.Inner.Message
		}
	}
	return a
}

func TestUnservedServiceAnswers(t *testing.T) {
	_, ts := benchServer(t)
	const jsonCT = "application/x-amz-json-1.0"
	cases := []struct {
		name string
		req  func(t *testing.T) *http.Request
		// want: status, code ("Query:" prefix for the ErrorResponse
		// envelope), content type, the service the message must name.
		status  int
		code    string
		ctype   string
		service string
	}{
		{"s3 ListBuckets (GET /)", func(t *testing.T) *http.Request {
			return signedRequest(t, "GET", ts.URL+"/", "s3", "", "", nil)
		}, 501, "NotImplemented", "application/xml", "s3"},
		{"s3 GetObject (a path keyless has no route for)", func(t *testing.T) *http.Request {
			return signedRequest(t, "GET", ts.URL+"/bucket/key.txt", "s3", "", "", nil)
		}, 501, "NotImplemented", "application/xml", "s3"},
		{"s3 PutObject", func(t *testing.T) *http.Request {
			return signedRequest(t, "PUT", ts.URL+"/bucket/key.txt", "s3", "text/plain", "hello", nil)
		}, 501, "NotImplemented", "application/xml", "s3"},
		{"s3 presigned URL (X-Amz-Credential)", func(t *testing.T) *http.Request {
			req, _ := http.NewRequest("GET", ts.URL+"/bucket/key.txt", nil)
			u, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: benchKeyID, SecretAccessKey: benchSecret},
				req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			r, _ := http.NewRequest("GET", u, nil)
			return r
		}, 501, "NotImplemented", "application/xml", "s3"},
		{"s3 SigV4a scope (no region)", func(t *testing.T) *http.Request {
			return signedRequest(t, "GET", ts.URL+"/", "", "", "", map[string]string{
				"Authorization": "AWS4-ECDSA-P256-SHA256 Credential=AKIAEXAMPLE/20261207/s3/aws4_request, SignedHeaders=host, Signature=00"})
		}, 501, "NotImplemented", "application/xml", "s3"},
		{"dynamodb ListTables (JSON 1.0, X-Amz-Target)", func(t *testing.T) *http.Request {
			return signedRequest(t, "POST", ts.URL+"/", "dynamodb", jsonCT, "{}", map[string]string{"X-Amz-Target": "DynamoDB_20120810.ListTables"})
		}, 501, "NotImplemented", jsonCT, "dynamodb"},
		{"sqs ListQueues (JSON protocol)", func(t *testing.T) *http.Request {
			return signedRequest(t, "POST", ts.URL+"/", "sqs", jsonCT, "{}", map[string]string{"X-Amz-Target": "AmazonSQS.ListQueues"})
		}, 501, "NotImplemented", jsonCT, "sqs"},
		{"kms ListKeys (JSON 1.1)", func(t *testing.T) *http.Request {
			return signedRequest(t, "POST", ts.URL+"/", "kms", "application/x-amz-json-1.1", "{}", map[string]string{"X-Amz-Target": "TrentService.ListKeys"})
		}, 501, "NotImplemented", "application/x-amz-json-1.1", "kms"},
		{"unsigned JSON call names its target", func(t *testing.T) *http.Request {
			return signedRequest(t, "POST", ts.URL+"/", "", jsonCT, "{}", map[string]string{"X-Amz-Target": "DynamoDB_20120810.ListTables"})
		}, 501, "NotImplemented", jsonCT, "DynamoDB_20120810"},
		{"sns ListTopics (Query, form body)", func(t *testing.T) *http.Request {
			return signedRequest(t, "POST", ts.URL+"/", "sns", "application/x-www-form-urlencoded", "Action=ListTopics&Version=2010-03-31", nil)
		}, 501, "Query:InvalidAction", "text/xml", "sns"},
		{"ec2 DescribeRegions (Query, GET)", func(t *testing.T) *http.Request {
			return signedRequest(t, "GET", ts.URL+"/?Action=DescribeRegions&Version=2016-11-15", "ec2", "", "", nil)
		}, 501, "Query:InvalidAction", "text/xml", "ec2"},
		{"lambda ListFunctions (REST-JSON)", func(t *testing.T) *http.Request {
			return signedRequest(t, "GET", ts.URL+"/2015-03-31/functions/", "lambda", "", "", nil)
		}, 501, "NotImplemented", "application/json", "lambda"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := ts.Client().Do(tc.req(t))
			if err != nil {
				t.Fatal(err)
			}
			a := readAnswer(t, resp)
			if a.Status != tc.status || a.Code != tc.code || a.ContentType != tc.ctype {
				t.Fatalf("got %d %q (%s), want %d %q (%s)\n%s", a.Status, a.Code, a.ContentType, tc.status, tc.code, tc.ctype, a.Body)
			}
			if !strings.Contains(a.Message, ": "+tc.service+" is not implemented here") || !strings.Contains(a.Message, "STS and IAM only") {
				t.Errorf("message does not name %s and what keyless serves: %q", tc.service, a.Message)
			}
			if tc.ctype != "text/xml" && a.ErrorType != "NotImplemented" {
				t.Errorf("X-Amzn-ErrorType = %q, want NotImplemented", a.ErrorType)
			}
			if strings.Contains(a.Body, benchAcct) {
				t.Errorf("the answer reveals the account id: %s", a.Body)
			}
			if resp.Header.Get("x-amzn-RequestId") == "" {
				t.Error("no request id header")
			}
		})
	}
}

// TestServedRoutesUnchanged: what keyless serves is answered as before, even
// when a request carries another service's scope on one of keyless's own
// routes.
func TestServedRoutesUnchanged(t *testing.T) {
	_, ts := benchServer(t)
	noRedirect := ts.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cases := []struct {
		name string
		req  func(t *testing.T) *http.Request
		want answer // compared on Status, Code, Location (and Body when set)
	}{
		{"sts GetCallerIdentity", func(t *testing.T) *http.Request {
			return signedRequest(t, "POST", ts.URL+"/", "sts", "application/x-www-form-urlencoded", "Action=GetCallerIdentity&Version=2011-06-15", nil)
		}, answer{Status: 200}},
		{"iam ListRoles, presigned GET", func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("GET", presign(t, ts.URL, "iam", "Action=ListRoles&Version=2010-05-08"), nil)
			return r
		}, answer{Status: 200}},
		{"unsigned exchange without a token", func(t *testing.T) *http.Request {
			return signedRequest(t, "POST", ts.URL+"/", "", "application/x-www-form-urlencoded", "Action=AssumeRoleWithWebIdentity&Version=2011-06-15", nil)
		}, answer{Status: 400, Code: "Query:ValidationError"}},
		{"iam scope with a JSON target stays the Query API's", func(t *testing.T) *http.Request {
			return signedRequest(t, "POST", ts.URL+"/", "iam", "application/x-amz-json-1.1", "{}", map[string]string{"X-Amz-Target": "X.Y"})
		}, answer{Status: 400, Code: "Query:InvalidHttpRequest"}},
		{"/healthz signed for s3 is still /healthz", func(t *testing.T) *http.Request {
			return signedRequest(t, "GET", ts.URL+"/healthz", "s3", "", "", nil)
		}, answer{Status: 200, Body: "ok\n"}},
		{"bare GET / redirects like AWS", func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("GET", ts.URL+"/", nil)
			return r
		}, answer{Status: 302, Location: ProjectURL, Body: "-"}},
		{"HEAD / redirects too", func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("HEAD", ts.URL+"/", nil)
			return r
		}, answer{Status: 302, Location: ProjectURL, Body: "-"}},
		{"unsigned unknown path is a 404", func(t *testing.T) *http.Request {
			r, _ := http.NewRequest("GET", ts.URL+"/bucket/key.txt", nil)
			return r
		}, answer{Status: 404}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := noRedirect.Do(tc.req(t))
			if err != nil {
				t.Fatal(err)
			}
			a := readAnswer(t, resp)
			got := answer{Status: a.Status, Code: a.Code, Location: a.Location}
			want := answer{Status: tc.want.Status, Code: tc.want.Code, Location: tc.want.Location}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("(-want +got)\n%s\n%s", diff, a.Body)
			}
			switch tc.want.Body {
			case "":
			case "-":
				if a.Body != "" {
					t.Errorf("body %q, want none", a.Body)
				}
			default:
				if a.Body != tc.want.Body {
					t.Errorf("body %q, want %q", a.Body, tc.want.Body)
				}
			}
		})
	}
}

func TestSigningService(t *testing.T) {
	cases := []struct {
		auth, query string
		want        string
	}{
		{"AWS4-HMAC-SHA256 Credential=AKIAX/20261207/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab", "", "s3"},
		{"AWS4-HMAC-SHA256 Credential=AKIAX/20261207/eu-west-1/execute-api/aws4_request,SignedHeaders=host,Signature=ab", "", "execute-api"},
		{"AWS4-ECDSA-P256-SHA256 Credential=AKIAX/20261207/s3/aws4_request, SignedHeaders=host, Signature=ab", "", "s3"},
		{"AWS4-HMAC-SHA256 Credential=AKIAX/20261207/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=ab", "", "sts"},
		{"", "X-Amz-Credential=AKIAX%2F20261207%2Fus-east-1%2Fsqs%2Faws4_request&X-Amz-Signature=ab", "sqs"},
		{"AWS4-HMAC-SHA256 Credential=AKIAX/20261207/us-east-1/S3/aws4_request", "", ""}, // not a signing name
		{"AWS4-HMAC-SHA256 Credential=AKIAX/20261207/us-east-1/s3/aws5_request", "", ""}, // not a SigV4 scope
		{"AWS4-HMAC-SHA256 Credential=s3/aws4_request", "", ""},                          // no scope
		{"AWS4-HMAC-SHA256 Credential=AKIAX/d/r/<script>/aws4_request", "", ""},          // never echoed
		{"Bearer abc", "X-Amz-Credential=AKIAX%2Fd%2Fr%2Fs3%2Faws4_request", ""},         // the header wins
		{"", "", ""},
	}
	for _, tc := range cases {
		r, _ := http.NewRequest("GET", "http://k/?"+tc.query, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := signingService(r); got != tc.want {
			t.Errorf("signingService(%q, %q) = %q, want %q", tc.auth, tc.query, got, tc.want)
		}
	}
}

// FuzzClassifyForeign: whatever the headers and query, classification
// never panics and the service it names (which goes into the message)
// is a plain name.
func FuzzClassifyForeign(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAX/20261207/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab", "", "", "")
	f.Add("", "X-Amz-Credential=AKIAX%2F20261207%2Fus-east-1%2Fsqs%2Faws4_request", "", "application/x-amz-json-1.0")
	f.Add("", "", "DynamoDB_20120810.ListTables", "application/x-amz-json-1.0")
	f.Add("", "Action=ListTopics", "", "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("Credential=/aws4_request", "Credential=%zz", ".", "bad/type;;")
	f.Fuzz(func(t *testing.T, auth, query, target, ctype string) {
		r, err := http.NewRequest("POST", "http://k/", nil)
		if err != nil {
			return
		}
		r.URL.RawQuery = query
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Target", target)
		r.Header.Set("Content-Type", ctype)
		fr, ok := classifyForeign(r)
		if !ok {
			return
		}
		if servedService(fr.service) || !validTargetPrefix(fr.service) && !validSigningName(fr.service) {
			t.Fatalf("classified as foreign service %q", fr.service)
		}
	})
}

func TestQueryValue(t *testing.T) {
	const cred = "AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request"
	for _, tc := range []struct{ raw, want string }{
		{"X-Amz-Credential=" + url.QueryEscape(cred) + "&X-Amz-Security-Token=abc%2Bdef", cred},
		{"Action=GetRole&X%2DAmz%2DCredential=" + url.QueryEscape(cred), cred},
		{"X-Amz-Credentialx=1&a=b", ""},
		{"X-Amz-Credential=%zz", ""},
		{"", ""},
		{"X-Amz-Credential", ""},
	} {
		if got := queryValue(tc.raw, "X-Amz-Credential"); got != tc.want {
			t.Errorf("queryValue(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
