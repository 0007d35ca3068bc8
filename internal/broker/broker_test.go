package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/issuer"
	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/sts"
)

const upstreamRole = "arn:aws:iam::210987654321:role/deploy"

// fakeMinter signs nothing: its "token" is the request's subject and a
// counter, and it keeps the requests. tooLarge makes requests with more
// than that many claims fail as too large.
type fakeMinter struct {
	mu       sync.Mutex
	reqs     []issuer.InternalRequest
	tooLarge int
	err      error
}

func (m *fakeMinter) MintInternal(ctx context.Context, id string, req issuer.InternalRequest) (*issuer.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reqs = append(m.reqs, req)
	if m.err != nil {
		return nil, m.err
	}
	if m.tooLarge > 0 && len(req.Claims) > m.tooLarge {
		return nil, &awsquery.Error{Code: "InvalidParameterValue", Message: "too large", Err: issuer.ErrTooLarge}
	}
	n := len(m.reqs)
	return &issuer.Token{Raw: fmt.Sprintf("minted.%s.%d", req.Subject, n), Issuer: "https://keyless.example/oidc", Subject: req.Subject, Audience: req.Audience,
		KeyID: "kid1", JTI: fmt.Sprintf("jti-%d", n), ExpiresAt: time.Unix(1700000300, 0)}, nil
}

// recorder keeps the broker's events.
type recorder struct {
	mu     sync.Mutex
	events []audit.Call
	err    error
}

func (r *recorder) record(ctx context.Context, c audit.Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, c)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

const okBody = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>keyless:123456789012:role/deploy</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::210987654321:assumed-role/deploy/build-7</Arn>
      <AssumedRoleId>AROAUPSTREAMROLE0001:build-7</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>IQoJb3JpZ2luX2VjEupstream</SessionToken>
      <SecretAccessKey>upstream-secret-0123456789abcdefghijklmn</SecretAccessKey>
      <Expiration>2026-03-01T13:00:00Z</Expiration>
      <AccessKeyId>ASIAUPSTREAMKEY00001</AccessKeyId>
    </Credentials>
    <PackedPolicySize>7</PackedPolicySize>
    <Provider>arn:aws:iam::210987654321:oidc-provider/keyless.example/oidc</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>body-request-id</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`

func errorBody(code, msg string) string {
	return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>` + code + `</Code><Message>` + msg +
		`</Message></Error><RequestId>err-request-id</RequestId></ErrorResponse>`
}

type fixture struct {
	b        *Broker
	minter   *fakeMinter
	rec      *recorder
	reg      *prometheus.Registry
	upstream *httptest.Server
	hits     atomic.Int32
}

// newFixture is a broker whose configured endpoint is an httptest upstream
// running h.
func newFixture(t *testing.T, h http.HandlerFunc, mod ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{minter: &fakeMinter{}, rec: &recorder{}, reg: prometheus.NewRegistry()}
	f.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(f.upstream.Close)
	o := Options{Minter: f.minter, IssuerID: "default", Region: "eu-west-1", Endpoint: f.upstream.URL, Timeout: 2 * time.Second,
		Record: f.rec.record, Registerer: f.reg, OmitClaims: []string{"email"}}
	for _, m := range mod {
		m(&o)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.b = b
	return f
}

func request() *sts.BrokerRequest {
	return &sts.BrokerRequest{
		RequestID: "keyless-request-1", Time: time.Unix(1700000000, 0), SourceIP: "10.0.0.1", UserAgent: "aws-cli", Region: "eu-west-1", SharedEventID: "link-1",
		Account: "123456789012", RoleName: "deploy", RoleARN: "arn:aws:iam::123456789012:role/ci/deploy", ProviderARN: "arn:aws:iam::123456789012:oidc-provider/ci.example",
		Token: &oidc.Token{Issuer: "https://ci.example", Subject: "repo:acme/app:ref:refs/heads/main", Audience: "sts.amazonaws.com", JTI: "ci-jti", SHA256: "cihash",
			Claims: map[string]any{"iss": "https://ci.example", "sub": "repo:acme/app:ref:refs/heads/main", "aud": "sts.amazonaws.com", "jti": "ci-jti",
				"repository_id": "123", "run_id": json.Number("42"), "email": "dev@acme.example", "https://aws.amazon.com/tags": map[string]any{}}},
		UpstreamRoleARN: upstreamRole, SessionName: "build-7", DurationSeconds: 900,
		Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`, PolicyARNs: []string{"arn:aws:iam::210987654321:policy/a", "arn:aws:iam::210987654321:policy/b"},
		Tags: map[string]string{"team": "web"}, TransitiveTagKeys: []string{"team"}, SourceIdentity: "dev",
	}
}

func (f *fixture) outcome(name string) float64 {
	var m dto.Metric
	_ = f.b.metrics.total.WithLabelValues(name).Write(&m)
	return m.GetCounter().GetValue()
}

func (f *fixture) observations() uint64 {
	var m dto.Metric
	_ = f.b.metrics.duration.Write(&m)
	return m.GetHistogram().GetSampleCount()
}

// TestExchangeSuccess: the upstream gets AssumeRoleWithWebIdentity with the
// client's parameters and keyless's token, only after the MintBrokerToken
// event is on record; the answer comes back field for field.
func TestExchangeSuccess(t *testing.T) {
	var f *fixture
	var form map[string][]string
	f = newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		if f.rec.count() != 1 {
			t.Error("the token reached the upstream before its event was recorded")
		}
		_ = r.ParseForm()
		form = r.PostForm
		w.Header().Set("X-Amzn-RequestId", "header-request-id")
		_, _ = w.Write([]byte(okBody))
	})
	res, err := f.b.Exchange(context.Background(), request())
	if err != nil {
		t.Fatal(err)
	}
	wantForm := map[string][]string{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {upstreamRole}, "RoleSessionName": {"build-7"},
		"WebIdentityToken": {"minted.keyless:123456789012:role/deploy.1"}, "DurationSeconds": {"900"}, "Policy": {request().Policy},
		"PolicyArns.member.1.arn": {"arn:aws:iam::210987654321:policy/a"}, "PolicyArns.member.2.arn": {"arn:aws:iam::210987654321:policy/b"},
	}
	if diff := cmp.Diff(wantForm, form); diff != "" {
		t.Errorf("upstream request (-want +got):\n%s", diff)
	}
	seven := 7
	want := &sts.BrokerResult{
		Endpoint: f.upstream.URL, UpstreamRequestID: "header-request-id",
		Token:                       sts.MintedToken{Issuer: "https://keyless.example/oidc", Subject: "keyless:123456789012:role/deploy", JTI: "jti-1", KeyID: "kid1", SHA256: audit.SHA256Hex("minted.keyless:123456789012:role/deploy.1"), Expires: time.Unix(1700000300, 0)},
		SubjectFromWebIdentityToken: "keyless:123456789012:role/deploy", Audience: "sts.amazonaws.com", Provider: "arn:aws:iam::210987654321:oidc-provider/keyless.example/oidc",
		AssumedRoleARN: "arn:aws:sts::210987654321:assumed-role/deploy/build-7", AssumedRoleID: "AROAUPSTREAMROLE0001:build-7",
		AccessKeyID: "ASIAUPSTREAMKEY00001", SecretAccessKey: "upstream-secret-0123456789abcdefghijklmn", SessionToken: "IQoJb3JpZ2luX2VjEupstream",
		Expiration: "2026-03-01T13:00:00Z", PackedPolicySize: &seven,
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	// The minted token: keyless's subject and audience, at most five
	// minutes, the CI claims as ci_* (redacted ones left out), the session
	// tags and source identity in AWS's claims.
	mr := f.minter.reqs[0]
	wantClaims := map[string]any{
		"ci_iss": "https://ci.example", "ci_sub": "repo:acme/app:ref:refs/heads/main", "ci_aud": "sts.amazonaws.com", "ci_jti": "ci-jti",
		"ci_repository_id": "123", "ci_run_id": json.Number("42"),
		"https://aws.amazon.com/tags":            map[string]any{"principal_tags": map[string]any{"team": []any{"web"}}, "transitive_tag_keys": []any{"team"}},
		"https://aws.amazon.com/source_identity": "dev",
	}
	if mr.Subject != "keyless:123456789012:role/deploy" || mr.Audience != "sts.amazonaws.com" || mr.Lifetime != 5*time.Minute {
		t.Errorf("mint request = %+v", mr)
	}
	if diff := cmp.Diff(wantClaims, mr.Claims); diff != "" {
		t.Errorf("minted claims (-want +got):\n%s", diff)
	}
	// The event recorded before the call.
	ev := f.rec.events[0]
	if ev.Source != EventSource || ev.Name != EventName || ev.RequestID != "keyless-request-1" || ev.SharedEventID != "link-1" ||
		ev.ResponseElements["tokenSHA256"] != want.Token.SHA256 || ev.ResponseElements["jti"] != "jti-1" ||
		ev.RequestParameters["upstreamRoleArn"] != upstreamRole || ev.RequestParameters["upstreamEndpoint"] != f.upstream.URL ||
		ev.AdditionalEventData[audit.KeyTrustDecision] != "Allow" || ev.AdditionalEventData[audit.KeyTokenSHA256] != "cihash" ||
		ev.Identity == nil || ev.Identity.UserName != "repo:acme/app:ref:refs/heads/main" {
		t.Errorf("MintBrokerToken event = %+v", ev)
	}
	if s := fmt.Sprint(ev); strings.Contains(s, "minted.keyless") {
		t.Errorf("the event holds the token: %s", s)
	}
	if f.outcome("success") != 1 || f.observations() != 1 {
		t.Errorf("metrics: success %v", f.outcome("success"))
	}
}

// TestUpstreamErrorsMapped: each upstream refusal reaches the client as the
// AWS error it expects, with keyless's explanation; upstream faults are
// retryable IDPCommunicationErrors.
func TestUpstreamErrorsMapped(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         string
		code         string
		clientStatus int
		outcome      string
		reason       string
	}{
		{"trust refuses keyless", 403, errorBody("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"), "AccessDenied", 403, "denied", "does not trust keyless's issuer https://keyless.example/oidc for the subject keyless:123456789012:role/deploy"},
		{"no provider", 400, errorBody("InvalidIdentityToken", "No OpenIDConnect provider found in your account for https://keyless.example/oidc"), "InvalidIdentityToken", 400, "invalid_token", "keyless broker aws-setup --role deploy"},
		{"expired", 400, errorBody("ExpiredTokenException", "Token expired: current date/time 1 must be before the expiration date/time 0"), "ExpiredTokenException", 400, "expired_token", "clocks"},
		{"jwks unreachable", 400, errorBody("IDPCommunicationError", "Couldn't retrieve verification key from your identity provider"), "IDPCommunicationError", 400, "idp_error", "keyless issuer publish"},
		{"throttled", 400, errorBody("Throttling", "Rate exceeded"), "Throttling", 400, "throttled", "backoff"},
		{"region disabled", 403, errorBody("RegionDisabledException", "STS is not activated in this region for account:210987654321."), "RegionDisabledException", 403, "region_disabled", "activate"},
		{"bad policy", 400, errorBody("MalformedPolicyDocument", "Syntax errors in policy."), "MalformedPolicyDocument", 400, "rejected", "Syntax errors in policy."},
		{"5xx", 500, errorBody("InternalFailure", "boom"), "IDPCommunicationError", 400, "upstream_error", "InternalFailure"},
		{"not XML", 502, "<html>bad gateway</html>", "IDPCommunicationError", 400, "upstream_error", "HTTP 502"},
		{"200 garbage", 200, "<nope/>", "IDPCommunicationError", 400, "upstream_error", "does not parse"},
		{"200 without credentials", 200, strings.Replace(okBody, "<AccessKeyId>ASIAUPSTREAMKEY00001</AccessKeyId>", "", 1), "IDPCommunicationError", 400, "upstream_error", "without credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Amzn-RequestId", "rid-"+tc.outcome)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			_, err := f.b.Exchange(context.Background(), request())
			be, ok := errors.AsType[*sts.BrokerError](err)
			if !ok {
				t.Fatalf("err = %v", err)
			}
			status := (&awsquery.Error{Code: be.Code, Status: be.Status}).HTTPStatus()
			if be.Code != tc.code || status != tc.clientStatus || be.Outcome != tc.outcome || !strings.Contains(be.Reason, tc.reason) ||
				be.UpstreamRequestID != "rid-"+tc.outcome || be.Token == nil || be.Endpoint != f.upstream.URL || be.Message == "" {
				t.Fatalf("BrokerError = %+v (status %d)", be, status)
			}
			if f.outcome(tc.outcome) != 1 {
				t.Errorf("metric %s = %v", tc.outcome, f.outcome(tc.outcome))
			}
		})
	}
}

// TestUpstreamUnavailable: a slow upstream is cut at the timeout, an
// unreachable one fails at once; both are retryable IDPCommunicationErrors.
func TestUpstreamUnavailable(t *testing.T) {
	slow := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}, func(o *Options) { o.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := slow.b.Exchange(context.Background(), request())
	be, _ := errors.AsType[*sts.BrokerError](err)
	if be == nil || be.Code != awsquery.CodeIDPCommunicationError || be.Outcome != "timeout" || time.Since(start) > 2*time.Second || !strings.Contains(be.Reason, "100ms") {
		t.Fatalf("slow upstream: %+v after %s", be, time.Since(start))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	down := newFixture(t, func(http.ResponseWriter, *http.Request) {}, func(o *Options) { o.Endpoint = closed })
	_, err = down.b.Exchange(context.Background(), request())
	be, _ = errors.AsType[*sts.BrokerError](err)
	if be == nil || be.Code != awsquery.CodeIDPCommunicationError || be.Outcome != "unreachable" || be.Endpoint != closed {
		t.Fatalf("unreachable upstream: %+v", be)
	}
}

// TestRedirectNotFollowed: an upstream that redirects does not get the
// token re-sent elsewhere.
func TestRedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/", http.StatusTemporaryRedirect)
	})
	_, err := f.b.Exchange(context.Background(), request())
	be, _ := errors.AsType[*sts.BrokerError](err)
	if be == nil || be.Outcome != "upstream_error" || elsewhere.Load() != 0 {
		t.Fatalf("redirect: %+v, elsewhere hit %d times", be, elsewhere.Load())
	}
}

// TestNothingLeavesUnrecorded: when the MintBrokerToken event cannot be
// written, the upstream is never called.
func TestNothingLeavesUnrecorded(t *testing.T) {
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(okBody)) })
	f.rec.err = errors.New("disk full")
	_, err := f.b.Exchange(context.Background(), request())
	be, _ := errors.AsType[*sts.BrokerError](err)
	if be == nil || be.Code != awsquery.CodeServiceUnavailable || be.Outcome != "not_recorded" || f.hits.Load() != 0 {
		t.Fatalf("unrecorded: %+v, upstream hits %d", be, f.hits.Load())
	}
}

// TestEndpointResolution: the role's tag (AWS endpoints, or allowed ones),
// else the configured endpoint, else AWS_ENDPOINT_URL_STS, else the
// region's; a tag naming any other server is refused before anything is
// minted or sent.
func TestEndpointResolution(t *testing.T) {
	tests := []struct {
		name, tag, cfg, env, region, want string
		refused                           bool
	}{
		{name: "default", region: "eu-west-1", want: "https://sts.eu-west-1.amazonaws.com"},
		{name: "china", region: "cn-north-1", want: "https://sts.cn-north-1.amazonaws.com.cn"},
		{name: "environment", env: "http://127.0.0.1:9000", region: "eu-west-1", want: "http://127.0.0.1:9000"},
		{name: "config over environment", cfg: "https://sts.us-east-2.amazonaws.com/", env: "http://127.0.0.1:9000", want: "https://sts.us-east-2.amazonaws.com"},
		{name: "aws tag over config", tag: "https://sts-fips.us-east-1.amazonaws.com", cfg: "http://127.0.0.1:9000", want: "https://sts-fips.us-east-1.amazonaws.com"},
		{name: "allowed tag", tag: "http://127.0.0.1:8401/", want: "http://127.0.0.1:8401"},
		{name: "harvesting tag", tag: "https://attacker.example", cfg: "http://127.0.0.1:9000", refused: true},
		{name: "lookalike tag", tag: "https://sts.us-east-1.amazonaws.com.attacker.example", refused: true},
		{name: "plain http aws", tag: "http://sts.us-east-1.amazonaws.com", refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, rec := &fakeMinter{}, &recorder{}
			b, err := New(Options{Minter: m, IssuerID: "x", Region: tc.region, Endpoint: tc.cfg, EnvEndpoint: tc.env, AllowedEndpoints: []string{"http://127.0.0.1:8401"}, Record: rec.record})
			if err != nil {
				t.Fatal(err)
			}
			req := request()
			req.UpstreamEndpoint = tc.tag
			got, berr := b.resolveEndpoint(req)
			if tc.refused {
				if berr == nil || berr.Code != awsquery.CodeAccessDenied || berr.Outcome != "endpoint_refused" || !strings.Contains(berr.Reason, "allowed_sts_endpoints") {
					t.Fatalf("resolveEndpoint = %q %+v", got, berr)
				}
				_, err := b.Exchange(context.Background(), req)
				if err == nil || len(m.reqs) != 0 || rec.count() != 0 {
					t.Fatalf("a refused endpoint minted %d tokens, recorded %d events: %v", len(m.reqs), rec.count(), err)
				}
				return
			}
			if berr != nil || got != tc.want {
				t.Fatalf("resolveEndpoint = %q %v, want %q", got, berr, tc.want)
			}
		})
	}
	fips, _ := New(Options{Minter: &fakeMinter{}, IssuerID: "x", Region: "us-gov-west-1", FIPS: true})
	if got, _ := fips.resolveEndpoint(request()); got != "https://sts-fips.us-gov-west-1.amazonaws.com" {
		t.Errorf("FIPS default endpoint = %q", got)
	}
	// A malformed upstream role tag is refused the same way.
	b, _ := New(Options{Minter: &fakeMinter{}, IssuerID: "x", Region: "eu-west-1"})
	req := request()
	req.UpstreamRoleARN = "deploy"
	if _, berr := b.resolveEndpoint(req); berr == nil || berr.Outcome != "bad_upstream_role" || !strings.Contains(berr.Reason, iam.TagUpstreamRoleARN) {
		t.Fatalf("bad upstream role: %+v", berr)
	}
}

// TestLargeClaimsFallBack: when the CI token's claims do not fit in a
// token AWS accepts, the broker token carries the CI identity only.
func TestLargeClaimsFallBack(t *testing.T) {
	f := newFixture(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(okBody)) })
	f.minter.tooLarge = 7
	if _, err := f.b.Exchange(context.Background(), request()); err != nil {
		t.Fatal(err)
	}
	if len(f.minter.reqs) != 2 {
		t.Fatalf("mints = %d", len(f.minter.reqs))
	}
	var names []string
	for k := range f.minter.reqs[1].Claims {
		names = append(names, k)
	}
	if len(names) != 6 || f.minter.reqs[1].Claims["ci_sub"] == nil || f.minter.reqs[1].Claims["ci_repository_id"] != nil {
		t.Fatalf("fallback claims = %v", f.minter.reqs[1].Claims)
	}
	f.minter.err = &awsquery.Error{Code: awsquery.CodeServiceUnavailable, Message: "The issuer has no usable signing key; retry later."}
	_, err := f.b.Exchange(context.Background(), request())
	if be, _ := errors.AsType[*sts.BrokerError](err); be == nil || be.Outcome != "mint_failed" || be.Code != awsquery.CodeServiceUnavailable {
		t.Fatalf("mint failure: %v", err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	bad := []Options{
		{IssuerID: "x"},
		{Minter: &fakeMinter{}},
		{Minter: &fakeMinter{}, IssuerID: "x", TokenLifetime: 6 * time.Minute},
		{Minter: &fakeMinter{}, IssuerID: "x", TokenLifetime: 30 * time.Second},
		{Minter: &fakeMinter{}, IssuerID: "x", Endpoint: "ftp://x"},
		{Minter: &fakeMinter{}, IssuerID: "x", AllowedEndpoints: []string{"https://x/path"}},
	}
	for i, o := range bad {
		if _, err := New(o); !errors.Is(err, ErrConfig) {
			t.Errorf("options %d: %v", i, err)
		}
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add(200, "rid", okBody)
	f.Add(403, "", errorBody("AccessDenied", "x"))
	f.Add(500, "r\x00id", "<ErrorResponse><Error><Code>\x00</Code></Error></ErrorResponse>")
	f.Add(400, "", "")
	f.Add(429, "", errorBody("Throttling", "Rate exceeded"))
	f.Fuzz(func(t *testing.T, status int, requestID, body string) {
		res, be := parseAnswer(status, requestID, []byte(body))
		if be == nil {
			if res == nil || res.AccessKeyID == "" || res.SecretAccessKey == "" || res.SessionToken == "" || res.AssumedRoleARN == "" {
				t.Fatalf("success without credentials: %+v", res)
			}
			return
		}
		if res != nil || be.Code == "" || be.Message == "" || be.Outcome == "" || !slices.Contains(outcomes, be.Outcome) {
			t.Fatalf("error = %#v", be)
		}
		for _, s := range []string{be.UpstreamMessage, be.UpstreamCode, be.UpstreamRequestID} {
			if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
				t.Fatalf("unprintable upstream text %q", s)
			}
		}
	})
}

// TestFromEnv: the AWS SDKs' standard endpoint settings, as the server's
// environment gives them.
func TestFromEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		endpoint string
		fips     bool
	}{
		{name: "none"},
		{name: "sts-specific wins", env: map[string]string{"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:1", "AWS_ENDPOINT_URL": "http://127.0.0.1:2"}, endpoint: "http://127.0.0.1:1"},
		{name: "global", env: map[string]string{"AWS_ENDPOINT_URL": " http://127.0.0.1:2 "}, endpoint: "http://127.0.0.1:2"},
		{name: "ignored", env: map[string]string{"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "TRUE"}},
		{name: "fips", env: map[string]string{"AWS_USE_FIPS_ENDPOINT": "true"}, fips: true},
		{name: "fips false", env: map[string]string{"AWS_USE_FIPS_ENDPOINT": "false"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep, fips := FromEnv(func(k string) string { return tc.env[k] })
			if ep != tc.endpoint || fips != tc.fips {
				t.Errorf("FromEnv = %q %v, want %q %v", ep, fips, tc.endpoint, tc.fips)
			}
		})
	}
}
