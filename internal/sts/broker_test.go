package sts

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/keylessci/keyless/internal/store"
)

const upstreamRole = "arn:aws:iam::210987654321:role/deploy"

// fakeBroker records the requests it gets and answers with res or err.
type fakeBroker struct {
	calls []*BrokerRequest
	res   *BrokerResult
	err   error
}

func (b *fakeBroker) Exchange(ctx context.Context, req *BrokerRequest) (*BrokerResult, error) {
	b.calls = append(b.calls, req)
	if b.err != nil {
		return nil, b.err
	}
	r := *b.res
	return &r, nil
}

func upstreamResult(now time.Time) *BrokerResult {
	return &BrokerResult{
		Endpoint: "https://sts.us-east-1.amazonaws.com", UpstreamRequestID: "0f1e2d3c-aaaa-bbbb-cccc-000000000001",
		Token:                       MintedToken{Issuer: "https://keyless.example/oidc", Subject: "keyless:" + account + ":role/deploy", JTI: "jti-1", SHA256: strings.Repeat("ab", 32)},
		SubjectFromWebIdentityToken: "keyless:" + account + ":role/deploy", Audience: "sts.amazonaws.com",
		Provider:       "arn:aws:iam::210987654321:oidc-provider/keyless.example/oidc",
		AssumedRoleARN: "arn:aws:sts::210987654321:assumed-role/deploy/build-7", AssumedRoleID: "AROAUPSTREAMROLE0001:build-7",
		AccessKeyID: "ASIAUPSTREAMKEY00001", SecretAccessKey: "upstream-secret-0123456789abcdefghijklmn", SessionToken: "IQoJb3JpZ2luX2VjEupstream-session-token",
		Expiration: now.Add(900 * time.Second).UTC().Format(time.RFC3339),
	}
}

// tagUpstream makes the fixture's role a broker role.
func (f *fixture) tagUpstream(t *testing.T, tags ...store.Tag) {
	t.Helper()
	if len(tags) == 0 {
		tags = []store.Tag{{Key: iam.TagUpstreamRoleARN, Value: upstreamRole}}
	}
	err := f.st.Roles().Update(context.Background(), "deploy", func(r *store.Role) error {
		r.Tags = tags
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) decode(t *testing.T, err error) Explanation {
	t.Helper()
	e, ok := errors.AsType[*awsquery.Error](err)
	if !ok {
		t.Fatalf("error %v is not an AWS error", err)
	}
	_, enc, ok := strings.Cut(e.Message, "Encoded authorization failure message: ")
	if !ok {
		t.Fatalf("no encoded message in %q", e.Message)
	}
	res, derr := f.svc.decodeAuthorizationMessage(context.Background(), &awsquery.Request{Params: awsquery.ParamsFromValues(url.Values{"EncodedMessage": {enc}})})
	if derr != nil {
		t.Fatal(derr)
	}
	var ex Explanation
	if err := json.Unmarshal([]byte(res.(decodeResult).DecodedMessage), &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestBrokeredExchange: an allowed exchange of a broker role returns the
// upstream's answer unchanged, hands the broker what it must pass on
// (session name, duration, policies AWS checks, the token's session tags),
// records the upstream's request id, role user and access key id, and lets
// the upstream credentials answer GetCallerIdentity, on this node and on
// another one sharing the store, until they expire.
func TestBrokeredExchange(t *testing.T) {
	f := newFixture(t)
	f.tagUpstream(t)
	b := &fakeBroker{res: upstreamResult(f.now)}
	f.svc.SetBroker(b)
	tok := f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com", func(tk *oidctest.Token) {
		tk.Claims["https://aws.amazon.com/tags"] = map[string]any{"principal_tags": map[string]any{"team": []any{"web"}}}
	})
	// PolicyArns name upstream policies: keyless does not look them up.
	res, r, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"build-7"}, "WebIdentityToken": {tok}, "DurationSeconds": {"900"},
		"Policy": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`}, "PolicyArns.member.1.arn": {"arn:aws:iam::210987654321:policy/up"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.calls) != 1 {
		t.Fatalf("broker called %d times", len(b.calls))
	}
	got := b.calls[0]
	if got.UpstreamRoleARN != upstreamRole || got.RoleName != "deploy" || got.RoleARN != f.roleARN || got.Account != account ||
		got.SessionName != "build-7" || got.DurationSeconds != 900 || got.Token == nil || got.Token.Subject != "repo:org/app:ref:refs/heads/main" ||
		!cmp.Equal(got.PolicyARNs, []string{"arn:aws:iam::210987654321:policy/up"}) || got.Policy == "" ||
		!cmp.Equal(got.Tags, map[string]string{"team": "web"}) || got.SharedEventID == "" || got.RequestID != r.RequestID {
		t.Fatalf("broker request = %+v", got)
	}
	up := upstreamResult(f.now)
	want := assumeResult{
		SubjectFromWebIdentityToken: up.SubjectFromWebIdentityToken, Audience: up.Audience, Provider: up.Provider,
		AssumedRoleUser: xmlAssumedRoleUser{Arn: up.AssumedRoleARN, AssumedRoleID: up.AssumedRoleID},
		Credentials:     xmlCredentials{SessionToken: up.SessionToken, SecretAccessKey: up.SecretAccessKey, Expiration: up.Expiration, AccessKeyID: up.AccessKeyID},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Fatalf("the client does not get the upstream's answer (-want +got):\n%s", diff)
	}
	x := r.Note.Exchange.(*audit.Exchange)
	if !r.Note.Durable || x.Decision != "Allow" || x.SharedEventID != got.SharedEventID || x.Credentials == nil || x.Credentials.AccessKeyID != up.AccessKeyID ||
		x.AssumedRoleARN != up.AssumedRoleARN || x.Credentials.Expiration.IsZero() {
		t.Fatalf("exchange event = %+v", x)
	}
	wantBroker := map[string]any{
		"upstreamRoleArn": upstreamRole, "outcome": "success", "upstreamEndpoint": up.Endpoint, "upstreamRequestId": up.UpstreamRequestID,
		"brokerTokenIssuer": up.Token.Issuer, "brokerTokenSubject": up.Token.Subject, "brokerTokenJti": "jti-1", "brokerTokenSHA256": up.Token.SHA256,
		"upstreamAssumedRoleArn": up.AssumedRoleARN, "upstreamAssumedRoleId": up.AssumedRoleID, "upstreamAccessKeyId": up.AccessKeyID,
		"upstreamProvider": up.Provider, "upstreamSubject": up.SubjectFromWebIdentityToken, "upstreamAudience": up.Audience,
	}
	if diff := cmp.Diff(wantBroker, r.Note.Additional["broker"]); diff != "" {
		t.Errorf("additionalEventData.broker (-want +got):\n%s", diff)
	}

	// GetCallerIdentity with the upstream credentials, here and on a node
	// that only shares the store.
	ctx := context.Background()
	other := New(Options{Store: f.st, Account: account, Region: "us-east-1", Ring: f.svc.ring, Validator: f.svc.validator, Now: f.svc.now, Rand: rand.Reader})
	for name, svc := range map[string]*Service{"this node": f.svc, "another node": other} {
		secret, caller, err := svc.ResolveSession(ctx, up.AccessKeyID, up.SessionToken)
		if err != nil || secret != up.SecretAccessKey || caller.ARN != up.AssumedRoleARN || caller.UserID != up.AssumedRoleID || caller.Account != "210987654321" {
			t.Fatalf("%s: ResolveSession = %q %+v %v", name, secret, caller, err)
		}
		// Everything else is AWS's to answer.
		r := &awsquery.Request{Caller: caller}
		if err := svc.AuthorizeSession(ctx, r, awsquery.Target{Action: "iam:ListRoles", Resource: "*"}); code(err) != awsquery.CodeAccessDenied {
			t.Errorf("%s: a brokered session authorized for iam:ListRoles: %v", name, err)
		}
		if _, _, err := svc.ResolveSession(ctx, up.AccessKeyID, up.SessionToken+"x"); code(err) != awsquery.CodeInvalidClientTokenID {
			t.Errorf("%s: another session token: %v", name, err)
		}
	}
	// The record is sealed: no secret in the store in clear.
	ks, err := f.st.KeyMaterial().List(ctx, brokeredPurpose)
	if err != nil || len(ks) != 1 || strings.Contains(string(ks[0].Sealed), up.SecretAccessKey) || ks[0].ID != up.AccessKeyID {
		t.Fatalf("stored brokered sessions = %v %v", ks, err)
	}
	// Expired: refused, then purged.
	f.now = f.now.Add(901 * time.Second)
	if _, _, err := other.ResolveSession(ctx, up.AccessKeyID, up.SessionToken); code(err) != awsquery.CodeExpiredToken {
		t.Errorf("expired brokered session: %v", err)
	}
	if n, err := f.svc.PurgeBrokered(ctx); n != 1 || err != nil {
		t.Fatalf("PurgeBrokered = %d %v", n, err)
	}
	third := New(Options{Store: f.st, Account: account, Region: "us-east-1", Ring: f.svc.ring, Validator: f.svc.validator, Now: f.svc.now, Rand: rand.Reader})
	if _, _, err := third.ResolveSession(ctx, up.AccessKeyID, up.SessionToken); code(err) != awsquery.CodeInvalidClientTokenID {
		t.Errorf("purged brokered session: %v", err)
	}
}

// TestBrokeredRefusedBeforeUpstream: what keyless refuses never reaches the
// broker — a token the trust policy refuses, a role that no longer exists —
// and removing the tag makes the role an ordinary keyless role again (the
// kill switch, on the next request).
func TestBrokeredRefusedBeforeUpstream(t *testing.T) {
	f := newFixture(t)
	f.tagUpstream(t)
	b := &fakeBroker{res: upstreamResult(f.now)}
	f.svc.SetBroker(b)
	_, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {f.iss.Mint(t, "repo:evil/app:ref:refs/heads/main", "sts.amazonaws.com")}})
	if code(err) != awsquery.CodeAccessDenied || len(b.calls) != 0 {
		t.Fatalf("refused token: %v, broker calls %d", err, len(b.calls))
	}
	good := func() string { return f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com") }
	// DurationSeconds above the keyless role's maximum: keyless decides.
	if _, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}, "DurationSeconds": {"7201"}}); code(err) != awsquery.CodeValidationError || len(b.calls) != 0 {
		t.Fatalf("too long: %v, broker calls %d", err, len(b.calls))
	}
	f.tagUpstream(t, store.Tag{Key: "team", Value: "web"})
	res, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}})
	if err != nil || len(b.calls) != 0 || !strings.HasPrefix(res.(assumeResult).Credentials.SessionToken, tokenPrefix) {
		t.Fatalf("untagged role: %v, broker calls %d", err, len(b.calls))
	}
	// Tag keys are case-insensitive in IAM.
	f.tagUpstream(t, store.Tag{Key: "Keyless:Upstream-Role-Arn", Value: upstreamRole})
	if _, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}}); err != nil || len(b.calls) != 1 {
		t.Fatalf("tag in another case: %v, broker calls %d", err, len(b.calls))
	}
	if err := f.st.Roles().Delete(context.Background(), "deploy"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}}); code(err) != awsquery.CodeAccessDenied || len(b.calls) != 1 {
		t.Fatalf("deleted role: %v, broker calls %d", err, len(b.calls))
	}
}

// TestBrokeredWithoutBroker: a broker role on a server without an issuer is
// refused, and the decoded message says why.
func TestBrokeredWithoutBroker(t *testing.T) {
	f := newFixture(t)
	f.tagUpstream(t)
	_, r, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com")}})
	if code(err) != awsquery.CodeAccessDenied {
		t.Fatalf("err = %v", err)
	}
	ex := f.decode(t, err)
	if !strings.Contains(ex.Keyless.Reason, "broker mode is off") || ex.Keyless.Upstream == nil || ex.Keyless.Upstream.RoleARN != upstreamRole {
		t.Fatalf("explanation = %+v", ex.Keyless)
	}
	if br, _ := r.Note.Additional["broker"].(map[string]any); br["outcome"] != "refused" {
		t.Errorf("audit broker = %v", r.Note.Additional["broker"])
	}
}

// TestBrokeredUpstreamErrors: the broker's error reaches the client with
// its code, status and AWS message, plus keyless's explanation in the
// encoded message; the exchange event records the upstream's answer.
func TestBrokeredUpstreamErrors(t *testing.T) {
	tests := []struct {
		name string
		err  *BrokerError
	}{
		{"denied", &BrokerError{Code: awsquery.CodeAccessDenied, Status: http.StatusForbidden, Message: "Not authorized to perform sts:AssumeRoleWithWebIdentity",
			Outcome: "denied", Reason: "the upstream role does not trust keyless's issuer: register it with `keyless broker aws-setup --role deploy`",
			UpstreamRequestID: "req-1", UpstreamCode: "AccessDenied", UpstreamMessage: "Not authorized to perform sts:AssumeRoleWithWebIdentity",
			Token: &MintedToken{Subject: "keyless:" + account + ":role/deploy", Issuer: "https://keyless.example/oidc", SHA256: "aa"}}},
		{"throttled", &BrokerError{Code: awsquery.CodeThrottling, Status: http.StatusBadRequest, Message: "Rate exceeded. Retry with exponential backoff.",
			Outcome: "throttled", Reason: "the upstream STS throttled the call", UpstreamCode: "Throttling"}},
		{"timeout", &BrokerError{Code: awsquery.CodeIDPCommunicationError, Message: "The upstream STS did not answer in time. Retry the request.",
			Outcome: "timeout", Reason: "the upstream STS did not answer within 5s", Err: context.DeadlineExceeded}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.tagUpstream(t)
			f.svc.SetBroker(&fakeBroker{err: tc.err})
			_, r, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com")}})
			e, ok := errors.AsType[*awsquery.Error](err)
			if !ok || e.Code != tc.err.Code || e.HTTPStatus() != (&awsquery.Error{Code: tc.err.Code, Status: tc.err.Status}).HTTPStatus() || !strings.HasPrefix(e.Message, tc.err.Message) {
				t.Fatalf("error = %v", err)
			}
			ex := f.decode(t, err)
			if ex.Keyless.Reason != tc.err.Reason || ex.Keyless.ErrorCode != tc.err.Code || ex.Keyless.Upstream == nil ||
				ex.Keyless.Upstream.RequestID != tc.err.UpstreamRequestID || ex.Keyless.Upstream.ErrorCode != tc.err.UpstreamCode {
				t.Fatalf("explanation = %+v %+v", ex.Keyless, ex.Keyless.Upstream)
			}
			br, _ := r.Note.Additional["broker"].(map[string]any)
			if br["outcome"] != tc.err.Outcome || (tc.err.UpstreamCode != "" && br["upstreamErrorCode"] != tc.err.UpstreamCode) {
				t.Errorf("audit broker = %v", br)
			}
			if x := r.Note.Exchange.(*audit.Exchange); x.Credentials != nil || !r.Note.Durable {
				t.Errorf("a failed brokered exchange recorded credentials: %+v", x)
			}
		})
	}
}
