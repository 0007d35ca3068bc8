package ciauth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"
)

const denyBlob = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8w"

// TestExchangeErrorMessages: each cause of a failed exchange gives one
// short reason (the decoded one-line reason when the caller may decode,
// the encoded blob at most once, never the decoded JSON dump) and its own
// hint. The whole message is compared with testdata/explain/<case>.golden
// (go test -run TestExchangeErrorMessages -update rewrites them).
func TestExchangeErrorMessages(t *testing.T) {
	tok := makeJWT(t, map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/web:pull_request", "aud": "sts.example", "exp": 1900000000})
	admin := credentials.NewStaticCredentialsProvider("AKIADECODER000000000", "decoder-secret", "")
	noCreds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, ErrNoCredentials
	})
	denied := stsReply{status: 403, code: "AccessDenied", message: "Not authorized to perform sts:AssumeRoleWithWebIdentity. Encoded authorization failure message: " + denyBlob}

	type stsCase struct {
		name      string
		reply     stsReply
		decoded   string // DecodeAuthorizationMessage's answer
		decodeErr bool   // DecodeAuthorizationMessage answers AccessDenied
		creds     aws.CredentialsProvider
		duration  time.Duration
		wantCause Cause
	}
	stsCases := []stsCase{
		{name: "role-missing", reply: denied, creds: admin, wantCause: CauseRoleMissing,
			decoded: `{"allowed":false,"keyless":{"reason":"the role arn:aws:iam::123456789012:role/ci-deploy does not exist in this account","errorCode":"AccessDenied"}}`},
		{name: "no-such-entity", reply: stsReply{status: 404, code: "NoSuchEntity", message: "The role with name ci-deploy cannot be found."}, wantCause: CauseRoleMissing},
		{name: "trust-mismatch", reply: denied, creds: admin, wantCause: CauseTrust,
			decoded: `{"allowed":false,"keyless":{"reason":"The trust policy does not allow this token: statement 0: condition StringEquals on token.actions.githubusercontent.com:sub expects \"repo:acme/web:ref:refs/heads/main\", but the token has \"repo:acme/web:pull_request\".","errorCode":"AccessDenied","trace":{"decision":"ImplicitDeny"}}}`},
		{name: "denied-not-decodable", reply: denied, creds: noCreds, wantCause: CauseDenied},
		{name: "denied-decode-refused", reply: denied, creds: admin, decodeErr: true, wantCause: CauseDenied},
		{name: "denied-aws", reply: stsReply{status: 403, code: "AccessDenied", message: "Not authorized to perform sts:AssumeRoleWithWebIdentity"}, creds: admin, wantCause: CauseDenied},
		{name: "audience-decoded", creds: admin, wantCause: CauseAudience,
			reply:   stsReply{code: "InvalidIdentityToken", message: "Incorrect token audience Encoded authorization failure message: " + denyBlob},
			decoded: `{"allowed":false,"keyless":{"reason":"no aud value (1 given) is a client ID of the provider","errorCode":"InvalidIdentityToken","rule":"V13"}}`},
		{name: "audience-aws", reply: stsReply{code: "InvalidIdentityToken", message: "Incorrect token audience"}, wantCause: CauseAudience},
		{name: "no-provider", reply: stsReply{code: "InvalidIdentityToken", message: "No OpenIDConnect provider found in your account for https://token.actions.githubusercontent.com"}, wantCause: CauseNoProvider},
		{name: "duration", reply: stsReply{code: "ValidationError", message: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."}, duration: 2 * time.Hour, wantCause: CauseDuration},
		{name: "expired", reply: stsReply{code: "ExpiredTokenException", message: "Token expired: current date/time 1900000100 must be before the expiration date/time 1900000000"}, wantCause: CauseExpired},
	}
	for _, tc := range stsCases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeSTS(t, func(int, url.Values) stsReply { return tc.reply })
			fake.decoded = tc.decoded
			var h http.Handler = fake
			if tc.decodeErr {
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.ParseForm() == nil && r.Form.Get("Action") == "DecodeAuthorizationMessage" {
						writeSTSError(w, 403, "AccessDenied", "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: sts:DecodeAuthorizationMessage")
						return
					}
					fake.ServeHTTP(w, r)
				})
			}
			x, _ := newTestExchanger(t, h, constRand(0))
			x.DecodeCredentials = tc.creds
			_, err := x.Exchange(context.Background(), &staticToken{toks: []string{tok}}, ExchangeRequest{RoleARN: testRole, SessionName: "s", Duration: tc.duration})
			checkExchangeError(t, err, tc.name, tc.wantCause, map[string]string{x.Endpoint: "{ENDPOINT}"}, tok)
		})
	}

	// Failures without an AWS answer.
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	banner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("welcome\n")) }))
	defer banner.Close()
	tlsSrv := httptest.NewTLSServer(newFakeSTS(t, nil))
	defer tlsSrv.Close()
	for _, tc := range []struct {
		name      string
		endpoint  string
		wantCause Cause
	}{
		{name: "unreachable", endpoint: closed(), wantCause: CauseUnreachable},
		{name: "http-404", endpoint: notFound.URL + "/sts", wantCause: CauseNotFound},
		{name: "not-sts", endpoint: banner.URL, wantCause: CauseNotSTS},
		{name: "http-to-https-server", endpoint: "http://" + tlsSrv.Listener.Addr().String(), wantCause: CauseNotSTS},
		{name: "tls-untrusted", endpoint: tlsSrv.URL, wantCause: CauseTLS},
		{name: "https-to-http-server", endpoint: "https://" + banner.Listener.Addr().String(), wantCause: CausePlainHTTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sleeps := &recordSleep{}
			x := &Exchanger{Endpoint: tc.endpoint, Rand: constRand(0), Sleep: sleeps.Sleep, Backoff: Backoff{MaxAttempts: 2},
				HTTPClient: &http.Client{Timeout: 5 * time.Second}}
			_, err := x.Exchange(context.Background(), &staticToken{toks: []string{tok}}, ExchangeRequest{RoleARN: testRole, SessionName: "s"})
			checkExchangeError(t, err, tc.name, tc.wantCause, map[string]string{tc.endpoint: "{ENDPOINT}"}, tok)
			if (tc.wantCause == CauseTLS || tc.wantCause == CausePlainHTTP) && len(sleeps.waits) != 0 {
				t.Errorf("a TLS failure was retried %d times", len(sleeps.waits))
			}
		})
	}
}

var portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)

func checkExchangeError(t *testing.T, err error, name string, want Cause, replace map[string]string, tok string) {
	t.Helper()
	xe, ok := errors.AsType[*ExchangeError](err)
	if !ok {
		t.Fatalf("err = %v (%T), want *ExchangeError", err, err)
	}
	if xe.Cause != want {
		t.Errorf("cause %q, want %q", xe.Cause, want)
	}
	msg := err.Error()
	if strings.Contains(msg, tok) || strings.Contains(msg, "decoder-secret") {
		t.Fatalf("message leaks the token or a secret:\n%s", msg)
	}
	if n := strings.Count(msg, denyBlob); n > 1 {
		t.Errorf("the encoded blob appears %d times:\n%s", n, msg)
	}
	if lines := strings.Count(msg, "\n") + 1; lines > 7 {
		t.Errorf("%d lines, want a short message:\n%s", lines, msg)
	}
	for from, to := range replace {
		msg = strings.ReplaceAll(msg, from, to)
	}
	msg = portRE.ReplaceAllString(msg, "127.0.0.1:PORT")
	compareGolden(t, filepath.Join("testdata", "explain", name+".golden"), msg+"\n")
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestSplitRoleARN(t *testing.T) {
	for arn, want := range map[string][3]string{
		"arn:aws:iam::123456789012:role/ci":            {"aws", "123456789012", "ci"},
		"arn:aws-cn:iam::123456789012:role/path/to/ci": {"aws-cn", "123456789012", "ci"},
		"nonsense": {"aws", "ACCOUNT", "NAME"},
	} {
		p, a, n := splitRoleARN(arn)
		if got := [3]string{p, a, n}; got != want {
			t.Errorf("splitRoleARN(%q) = %v, want %v", arn, got, want)
		}
	}
}
