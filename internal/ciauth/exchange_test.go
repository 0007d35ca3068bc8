package ciauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"
)

const testRole = "arn:aws:iam::123456789012:role/ci-deploy"

func newTestExchanger(t *testing.T, h http.Handler, rnd constRand) (*Exchanger, *recordSleep) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	sleeps := &recordSleep{}
	return &Exchanger{Endpoint: srv.URL, Region: "eu-west-1", HTTPClient: srv.Client(), Rand: rnd, Sleep: sleeps.Sleep}, sleeps
}

func TestExchangeRetryPolicy(t *testing.T) {
	type r = stsReply
	tests := []struct {
		name         string
		replies      []stsReply // then success
		refreshable  bool
		wantAttempts int
		wantCode     string // "" = success
		wantTokens   int    // distinct tokens sent
	}{
		{name: "success", wantAttempts: 1, wantTokens: 1},
		{name: "IDPCommunicationError retried", replies: []r{{code: "IDPCommunicationError", message: "idp down"}, {code: "IDPCommunicationError"}}, wantAttempts: 3, wantTokens: 1},
		{name: "Throttling retried", replies: []r{{code: "Throttling", message: "Rate exceeded"}}, wantAttempts: 2, wantTokens: 1},
		{name: "500 retried", replies: []r{{status: 500, code: "InternalFailure"}}, wantAttempts: 2, wantTokens: 1},
		{name: "503 retried", replies: []r{{status: 503, code: "ServiceUnavailable"}}, wantAttempts: 2, wantTokens: 1},
		{name: "429 retried", replies: []r{{status: 429, code: "TooManyRequests"}}, wantAttempts: 2, wantTokens: 1},
		{name: "AccessDenied fails at once", replies: []r{{status: 403, code: "AccessDenied", message: "Not authorized to perform sts:AssumeRoleWithWebIdentity"}}, wantAttempts: 1, wantCode: "AccessDenied", wantTokens: 1},
		{name: "InvalidIdentityToken fails at once", replies: []r{{code: "InvalidIdentityToken", message: "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements"}}, wantAttempts: 1, wantCode: "InvalidIdentityToken", wantTokens: 1},
		{name: "ValidationError fails at once", replies: []r{{code: "ValidationError", message: "Request ARN is invalid"}}, wantAttempts: 1, wantCode: "ValidationError", wantTokens: 1},
		{name: "expired fixed token fails at once", replies: []r{{code: "ExpiredTokenException", message: "Token expired"}}, wantAttempts: 1, wantCode: "ExpiredTokenException", wantTokens: 1},
		{name: "expired refreshable token retried once with a new token", refreshable: true, replies: []r{{code: "ExpiredTokenException"}}, wantAttempts: 2, wantTokens: 2},
		{name: "expired twice gives up", refreshable: true, replies: []r{{code: "ExpiredTokenException"}, {code: "ExpiredTokenException"}}, wantAttempts: 2, wantCode: "ExpiredTokenException", wantTokens: 2},
		{name: "retries get fresh tokens when refreshable", refreshable: true, replies: []r{{code: "Throttling"}, {code: "Throttling"}}, wantAttempts: 3, wantTokens: 3},
		{name: "persistent throttling stops at MaxAttempts", replies: []r{{code: "Throttling"}, {code: "Throttling"}, {code: "Throttling"}, {code: "Throttling"}, {code: "Throttling"}, {code: "Throttling"}}, wantAttempts: 5, wantCode: "Throttling", wantTokens: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeSTS(t, func(n int, _ url.Values) stsReply {
				if n < len(tt.replies) {
					return tt.replies[n]
				}
				return stsReply{}
			})
			x, sleeps := newTestExchanger(t, fake, constRand(0xff))
			src := &staticToken{toks: []string{"tok-aaaa", "tok-bbbb", "tok-cccc", "tok-dddd", "tok-eeee", "tok-ffff"}, refreshable: tt.refreshable}
			res, err := x.Exchange(context.Background(), src, ExchangeRequest{RoleARN: testRole, SessionName: "s1", Duration: 900 * time.Second})
			calls := fake.Calls()
			if len(calls) != tt.wantAttempts {
				t.Errorf("STS called %d times, want %d", len(calls), tt.wantAttempts)
			}
			tokens := map[string]bool{}
			for _, c := range calls {
				tokens[c.Get("WebIdentityToken")] = true
				if c.Get("RoleArn") != testRole || c.Get("RoleSessionName") != "s1" || c.Get("DurationSeconds") != "900" || c.Get("Version") != "2011-06-15" {
					t.Errorf("request form %v", c)
				}
			}
			if len(tokens) != tt.wantTokens {
				t.Errorf("%d distinct tokens sent, want %d", len(tokens), tt.wantTokens)
			}
			if len(sleeps.waits) != len(calls)-1 {
				t.Errorf("%d waits for %d attempts", len(sleeps.waits), len(calls))
			}
			b := Backoff{}.orDefault(defaultBackoffAttempts)
			for i, w := range sleeps.waits {
				if w < 0 || w >= b.Window(i) || w < b.Window(i)*99/100 {
					t.Errorf("wait %d = %v, want just under the window %v (jitter drawn from 0xff…)", i, w, b.Window(i))
				}
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if res.Credentials.AccessKeyID == "" || res.AssumedRoleARN != "arn:aws:sts::123456789012:assumed-role/ci-deploy/s1" || res.AccountID() != "123456789012" {
					t.Errorf("result %+v", res)
				}
				return
			}
			xe, ok := errors.AsType[*ExchangeError](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *ExchangeError", err, err)
			}
			if xe.Code != tt.wantCode || xe.Attempts != tt.wantAttempts {
				t.Errorf("code %q attempts %d, want %q %d", xe.Code, xe.Attempts, tt.wantCode, tt.wantAttempts)
			}
		})
	}
}

func TestBackoffWindowsAndJitter(t *testing.T) {
	b := Backoff{Base: time.Second, Cap: 20 * time.Second, MaxAttempts: 10}
	var got []time.Duration
	for n := range 8 {
		got = append(got, b.Window(n))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 20, 20, 20}
	for i := range want {
		want[i] *= time.Second
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("windows (-want +got):\n%s", diff)
	}
	for n := range 8 {
		if d, _ := b.Delay(n, constRand(0)); d != 0 {
			t.Errorf("zero jitter draw gave %v", d)
		}
		// 0x8080… / 2⁶⁴ ≈ 0.502 of the window.
		d, _ := b.Delay(n, constRand(0x80))
		if half := b.Window(n) / 2; d < half || d > half*101/100 {
			t.Errorf("mid jitter draw gave %v, want just over %v", d, half)
		}
	}
	if _, err := b.Delay(0, strings.NewReader("")); err == nil {
		t.Error("a failing random source must fail the delay")
	}
}

// TestExchangeRetriesNetworkErrors: a server that drops connections is a
// network error, which is retried.
func TestExchangeRetriesNetworkErrors(t *testing.T) {
	fake := newFakeSTS(t, nil)
	var drops atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if drops.Add(1) <= 2 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		fake.ServeHTTP(w, r)
	})
	x, sleeps := newTestExchanger(t, h, constRand(0))
	if _, err := x.Exchange(context.Background(), &staticToken{toks: []string{"tok-x"}}, ExchangeRequest{RoleARN: testRole, SessionName: "s"}); err != nil {
		t.Fatal(err)
	}
	if len(sleeps.waits) != 2 || len(fake.Calls()) != 1 {
		t.Errorf("waits %v, STS calls %d", sleeps.waits, len(fake.Calls()))
	}
}

func TestExchangeStopsWhenContextEnds(t *testing.T) {
	fake := newFakeSTS(t, func(int, url.Values) stsReply { return stsReply{code: "Throttling"} })
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	x := &Exchanger{Endpoint: srv.URL, HTTPClient: srv.Client(), Rand: constRand(0xff),
		Sleep: func(ctx context.Context, d time.Duration) error { cancel(); return sleepCtx(ctx, d) }}
	start := time.Now()
	_, err := x.Exchange(ctx, &staticToken{toks: []string{"tok-x"}}, ExchangeRequest{RoleARN: testRole, SessionName: "s"})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want to mention cancellation", err)
	}
	if time.Since(start) > 5*time.Second || len(fake.Calls()) != 1 {
		t.Errorf("kept going after cancel: %d calls", len(fake.Calls()))
	}
}

func TestExchangeErrorNamesCodeAndClaimsButNotToken(t *testing.T) {
	tok := makeJWT(t, map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/web:pull_request", "aud": "sts.amazonaws.com", "exp": 1900000000})
	fake := newFakeSTS(t, func(int, url.Values) stsReply {
		// A misbehaving server that echoes the token must not leak it.
		return stsReply{status: 403, code: "AccessDenied", message: "Not authorized to perform sts:AssumeRoleWithWebIdentity (token " + tok + ")"}
	})
	x, _ := newTestExchanger(t, fake, constRand(0))
	_, err := x.Exchange(context.Background(), &staticToken{toks: []string{tok}}, ExchangeRequest{RoleARN: testRole, SessionName: "s"})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{
		"AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity",
		`sub="repo:acme/web:pull_request"`,
		`aud="sts.amazonaws.com"`,
		"HTTP 403", "request id req-AssumeRoleWithWebIdentity", "1 attempt)",
		"role:  " + testRole,
		"trust policy",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, tok) || strings.Contains(msg, strings.Split(tok, ".")[2]) {
		t.Errorf("error contains the token:\n%s", msg)
	}
	if xe, ok := errors.AsType[*ExchangeError](err); !ok || xe.Retryable() {
		t.Errorf("AccessDenied should be a non-retryable *ExchangeError: %#v", err)
	}
}

func TestExchangeDecodesAuthorizationMessage(t *testing.T) {
	const blob = "Zm9vYmFy-encoded_blob.1"
	newFake := func() *fakeSTS {
		f := newFakeSTS(t, func(int, url.Values) stsReply {
			return stsReply{status: 403, code: "AccessDenied", message: "Not authorized to perform sts:AssumeRoleWithWebIdentity. Encoded authorization failure message: " + blob}
		})
		f.decoded = `{"allowed":false,"explicitDeny":false,"matchedStatements":{"items":[]},"failures":{"items":[{"condition":"StringEquals token.actions.githubusercontent.com:sub","expected":"repo:acme/web:ref:refs/heads/main","actual":"repo:acme/web:pull_request"}]}}`
		return f
	}

	t.Run("with credentials", func(t *testing.T) {
		fake := newFake()
		x, _ := newTestExchanger(t, fake, constRand(0))
		x.DecodeCredentials = credentials.NewStaticCredentialsProvider("AKIADECODER000000000", "decoder-secret", "")
		_, err := x.Exchange(context.Background(), &staticToken{toks: []string{"tok-x"}}, ExchangeRequest{RoleARN: testRole, SessionName: "s"})
		xe, ok := errors.AsType[*ExchangeError](err)
		if !ok {
			t.Fatalf("err = %v", err)
		}
		if len(fake.decodes) != 1 || fake.decodes[0].Get("EncodedMessage") != blob {
			t.Fatalf("decode calls %v", fake.decodes)
		}
		for _, want := range []string{`"expected":"repo:acme/web:ref:refs/heads/main"`, `"actual":"repo:acme/web:pull_request"`} {
			if !strings.Contains(xe.Explanation, want) || !strings.Contains(err.Error(), want) {
				t.Errorf("explanation lacks %s:\n%s", want, err)
			}
		}
		if strings.Contains(err.Error(), "decoder-secret") {
			t.Error("error leaks the decoding secret key")
		}
		// Decoded: one line, and the blob is not repeated.
		if strings.Contains(err.Error(), blob) || strings.Count(xe.Explanation, "\n") != 0 {
			t.Errorf("decoded error repeats the blob or spans lines:\n%s", err)
		}
	})
	t.Run("without credentials", func(t *testing.T) {
		fake := newFake()
		x, _ := newTestExchanger(t, fake, constRand(0))
		_, err := x.Exchange(context.Background(), &staticToken{toks: []string{"tok-x"}}, ExchangeRequest{RoleARN: testRole, SessionName: "s"})
		want := "aws sts decode-authorization-message --encoded-message " + blob + " --endpoint-url " + x.Endpoint
		if err == nil || !strings.Contains(err.Error(), want) || len(fake.decodes) != 0 || strings.Count(err.Error(), blob) != 1 {
			t.Errorf("err = %v, want the hint %q (the blob once)", err, want)
		}
	})
	t.Run("credentials that fail", func(t *testing.T) {
		fake := newFake()
		x, _ := newTestExchanger(t, fake, constRand(0))
		x.DecodeCredentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no credentials here")
		})
		_, err := x.Exchange(context.Background(), &staticToken{toks: []string{"tok-x"}}, ExchangeRequest{RoleARN: testRole, SessionName: "s"})
		if err == nil || !strings.Contains(err.Error(), "could not be loaded") || strings.Count(err.Error(), blob) != 1 {
			t.Errorf("err = %v, want the decode command once and why it did not decode", err)
		}
	})
}

func TestEncodedAuthorizationMessage(t *testing.T) {
	tests := map[string]string{
		"Not authorized. Encoded authorization failure message: abc-DEF_123": "abc-DEF_123",
		"Encoded authorization failure message:xyz+/= trailing":              "xyz+/=",
		"Not authorized to perform sts:AssumeRoleWithWebIdentity":            "",
		"Encoded authorization failure message: ":                            "",
	}
	for in, want := range tests {
		if got := EncodedAuthorizationMessage(in); got != want {
			t.Errorf("EncodedAuthorizationMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzEncodedAuthorizationMessage(f *testing.F) {
	f.Add("Not authorized. Encoded authorization failure message: abc-DEF_123")
	f.Add("Encoded authorization failure message:")
	f.Add("x")
	f.Fuzz(func(t *testing.T, msg string) {
		blob := EncodedAuthorizationMessage(msg)
		if blob == "" {
			return
		}
		if !strings.Contains(msg, blob) || strings.ContainsAny(blob, " \t\r\n\"'`$;|&") {
			t.Fatalf("blob %q from %q", blob, msg)
		}
	})
}

func TestExchangeRealAWSEndpoint(t *testing.T) {
	// Without an endpoint the SDK targets AWS's regional STS; an in-process
	// transport answers so no network is needed.
	fake := newFakeSTS(t, nil)
	var host string
	x := &Exchanger{Region: "eu-north-1", HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		host = r.URL.Host
		return handlerTransport{fake}.RoundTrip(r)
	})}}
	if _, err := x.Exchange(context.Background(), &staticToken{toks: []string{"tok-x"}}, ExchangeRequest{RoleARN: testRole, SessionName: "s"}); err != nil {
		t.Fatal(err)
	}
	if host != "sts.eu-north-1.amazonaws.com" {
		t.Errorf("request went to %q", host)
	}
	if got := x.EndpointDescription(); got != "https://sts.eu-north-1.amazonaws.com" {
		t.Errorf("EndpointDescription = %q", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCredentialsNeverFormatSecrets(t *testing.T) {
	c := Credentials{AccessKeyID: "ASIAPUBLIC", SecretAccessKey: "SECRET-KEY", SessionToken: "SESSION-TOKEN"}
	var sb strings.Builder
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		sb.WriteString(strings.ReplaceAll(f, "%", "") + ":" + fmtSprintf(f, c) + " ")
	}
	out := sb.String()
	if strings.Contains(out, "SECRET-KEY") || strings.Contains(out, "SESSION-TOKEN") || !strings.Contains(out, "ASIAPUBLIC") {
		t.Errorf("formatted credentials: %s", out)
	}
}

func BenchmarkExchange(b *testing.B) {
	fake := newFakeSTS(b, nil)
	x := &Exchanger{Endpoint: "http://sts.test", HTTPClient: &http.Client{Transport: handlerTransport{fake}}}
	src := &staticToken{toks: []string{"tok-bench"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Exchange(context.Background(), src, ExchangeRequest{RoleARN: testRole, SessionName: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}
