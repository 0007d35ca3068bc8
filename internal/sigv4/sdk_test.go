package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/sigv4"
)

func payloadHash(body string) string {
	h := sha256.Sum256([]byte(body))
	return hex.EncodeToString(h[:])
}

// sdkCase is a request signed by aws-sdk-go-v2's signer, the signer the Go
// SDK's STS and IAM clients use.
type sdkCase struct {
	name     string
	method   string
	url      string
	headers  map[string]string
	body     string
	service  string
	region   string
	akid     string
	secret   string
	token    string
	presign  bool
	tokenHdr bool      // presign with the token as a signed header, not in the query
	at       time.Time // signing time; zero means signTime
}

var sdkCases = []sdkCase{
	{
		name: "sts-getcalleridentity-session", method: "POST", url: "http://127.0.0.1:8400/",
		headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
		body:    "Action=GetCallerIdentity&Version=2011-06-15",
		service: "sts", region: "eu-west-1", akid: testAKID, secret: testSecret, token: testToken,
	},
	{
		name: "sts-getcalleridentity-longterm", method: "POST", url: "https://sts.us-east-1.amazonaws.com/",
		headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
		body:    "Action=GetCallerIdentity&Version=2011-06-15",
		service: "sts", region: "us-east-1", akid: longAKID, secret: longSecret,
	},
	{
		name: "iam-createrole-session", method: "POST", url: "http://keyless.internal:8400/",
		headers: map[string]string{
			"Content-Type":          "application/x-www-form-urlencoded; charset=utf-8",
			"Amz-Sdk-Invocation-Id": "6f1e8b8e-2a55-4b5a-9d11-3f2a1c0e7b42",
			"Amz-Sdk-Request":       "attempt=1; max=3",
			"X-Amz-User-Agent":      "aws-sdk-go-v2/1.48.0",
		},
		body: "Action=CreateRole&Version=2010-05-08&RoleName=ci-deploy&Path=%2Fci%2F&AssumeRolePolicyDocument=" +
			url.QueryEscape(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:org/*"}}}]}`),
		service: "iam", region: "us-east-1", akid: testAKID, secret: testSecret, token: testToken,
	},
	{
		name: "iam-listroles-get-query", method: "GET",
		url:     "http://127.0.0.1:8400/?Action=ListRoles&Version=2010-05-08&PathPrefix=%2Fci%2F&MaxItems=10",
		service: "iam", region: "us-east-1", akid: longAKID, secret: longSecret,
	},
	{
		name: "sts-endpoint-with-path", method: "POST", url: "https://ci.example.com/keyless/sts/",
		headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
		body:    "Action=GetCallerIdentity&Version=2011-06-15",
		service: "sts", region: "us-west-2", akid: testAKID, secret: testSecret, token: testToken,
	},
	{
		name: "sts-presigned-getcalleridentity-eks", method: "GET",
		url:     "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60",
		headers: map[string]string{"X-K8s-Aws-Id": "prod-cluster"},
		service: "sts", region: "eu-west-1", akid: testAKID, secret: testSecret, token: testToken, presign: true,
	},
	{
		name: "sts-presigned-token-header", method: "GET",
		url:     "http://127.0.0.1:8400/?Action=GetCallerIdentity&Version=2011-06-15",
		service: "sts", region: "us-east-1", akid: testAKID, secret: testSecret, token: testToken, presign: true, tokenHdr: true,
	},
	{
		name: "iam-presigned-listroles-longterm", method: "GET",
		url:     "http://127.0.0.1:8400/?Action=ListRoles&Version=2010-05-08&X-Amz-Expires=300",
		service: "iam", region: "us-east-1", akid: longAKID, secret: longSecret, presign: true,
	},
}

// sign signs c with the SDK signer at signTime and returns the wire request.
func (c sdkCase) sign(t testing.TB) wire {
	t.Helper()
	r, err := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.body == "" {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	for k, v := range c.headers {
		r.Header.Set(k, v)
	}
	r.Header.Set("User-Agent", "keyless-sigv4-test")
	creds := aws.Credentials{AccessKeyID: c.akid, SecretAccessKey: c.secret, SessionToken: c.token}
	signer := v4.NewSigner()
	at := signTime
	if !c.at.IsZero() {
		at = c.at
	}
	if !c.presign {
		if err := signer.SignHTTP(context.Background(), creds, r, payloadHash(c.body), c.service, c.region, at); err != nil {
			t.Fatal(err)
		}
		return toWire(t, r)
	}
	if c.tokenHdr {
		r.Header.Set("X-Amz-Security-Token", c.token)
		creds.SessionToken = ""
	}
	signedURL, signed, err := signer.PresignHTTP(context.Background(), creds, r, payloadHash(c.body), c.service, c.region, at,
		func(o *v4.SignerOptions) { o.DisableHeaderHoisting = c.tokenHdr })
	if err != nil {
		t.Fatal(err)
	}
	pr, err := http.NewRequest(c.method, signedURL, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.body == "" {
		pr.Body, pr.ContentLength = http.NoBody, 0
	}
	for k, vs := range signed {
		if k == "Host" {
			continue
		}
		for _, v := range vs {
			pr.Header.Add(k, v)
		}
	}
	pr.Header.Set("User-Agent", "keyless-sigv4-test")
	return toWire(t, pr)
}

// TestSDKGolden keeps SDK-signed requests as golden wire files: a change in
// the SDK's signing shows up as a diff, and the verifier is checked against
// the frozen bytes. Regenerate with -update.
func TestSDKGolden(t *testing.T) {
	v := &sigv4.Verifier{Now: fixedClock(signTime.Add(time.Minute))}
	for _, c := range sdkCases {
		t.Run(c.name, func(t *testing.T) {
			got := c.sign(t)
			path := filepath.Join("testdata", "sdk", c.name+".http")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("SDK signing changed (-golden +now); rerun with -update if intended:\n%s", diff)
			}

			sig, err := check(v, want, c.secret)
			if err != nil {
				t.Fatalf("SDK-signed request refused: %v", err)
			}
			wantSig := sigFields{AccessKeyID: c.akid, SessionToken: c.token, Region: c.region, Service: c.service,
				Time: signTime, Presigned: c.presign}
			if diff := cmp.Diff(wantSig, fieldsOf(sig)); diff != "" {
				t.Errorf("parsed signature (-want +got):\n%s", diff)
			}
			if _, err := check(v, want, testSecret+"x"); awsCode(err) != "SignatureDoesNotMatch" {
				t.Errorf("wrong secret: %v", err)
			}
			requireAllFail(t, v, want, c.secret)
		})
	}
}

type sigFields struct {
	AccessKeyID, SessionToken, Region, Service string
	Time                                       time.Time
	Presigned                                  bool
}

func fieldsOf(s *sigv4.Signature) sigFields {
	return sigFields{s.AccessKeyID, s.SessionToken, s.Region, s.Service, s.Time, s.Presigned}
}

// TestPresignedLifetime pins the lifetime rules: STS ignores X-Amz-Expires
// and allows the skew window; IAM honours X-Amz-Expires.
func TestPresignedLifetime(t *testing.T) {
	byName := map[string]sdkCase{}
	for _, c := range sdkCases {
		byName[c.name] = c
	}
	tests := []struct {
		name     string
		after    time.Duration
		wantCode string
	}{
		{"sts-presigned-getcalleridentity-eks", 61 * time.Second, ""}, // X-Amz-Expires=60 is ignored
		{"sts-presigned-getcalleridentity-eks", 15 * time.Minute, ""},
		{"sts-presigned-getcalleridentity-eks", 15*time.Minute + time.Second, "SignatureDoesNotMatch"},
		{"sts-presigned-getcalleridentity-eks", -15*time.Minute - time.Second, "SignatureDoesNotMatch"},
		{"iam-presigned-listroles-longterm", 300 * time.Second, ""},
		{"iam-presigned-listroles-longterm", 301 * time.Second, "RequestExpired"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.after.String(), func(t *testing.T) {
			c := byName[tc.name]
			v := &sigv4.Verifier{Now: fixedClock(signTime.Add(tc.after))}
			_, err := check(v, c.sign(t), c.secret)
			if got := awsCode(err); got != tc.wantCode {
				t.Fatalf("code %q, want %q (%v)", got, tc.wantCode, err)
			}
		})
	}
}

// TestSDKPathForms checks that paths the SDK signs without normalising
// ("//", "." and "..") still verify, and that their spec-normalised form is
// what botocore-style clients sign.
func TestSDKPathForms(t *testing.T) {
	v := &sigv4.Verifier{Now: fixedClock(signTime)}
	for _, p := range []string{"/a//b/", "/a/./b", "/a/../b", "/%E1%88%B4/x%2Fy", "/with%20space/", "/~user/!$'()*+,;=:@"} {
		t.Run(p, func(t *testing.T) {
			c := sdkCase{method: "POST", url: "http://127.0.0.1:8400" + p, body: "Action=GetCallerIdentity&Version=2011-06-15",
				service: "sts", region: "us-east-1", akid: testAKID, secret: testSecret, token: testToken}
			w := c.sign(t)
			if !bytes.Contains(w, []byte(" "+strings.SplitN(p, "?", 2)[0]+" ")) {
				t.Logf("SDK rewrote the path: %s", bytes.SplitN(w, []byte("\r\n"), 2)[0])
			}
			if _, err := check(v, w, c.secret); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}
