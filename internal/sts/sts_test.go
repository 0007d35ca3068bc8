package sts

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/keylessci/keyless/internal/store"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

const account = "123456789012"

type fixture struct {
	svc     *Service
	st      store.Store
	iss     *oidctest.Server
	roleARN string
	now     time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, _ := keyring.GenerateMasterKey(rand.Reader)
	master, _ := keyring.ParseMaster(mk)
	f := &fixture{st: st, now: time.Now().Truncate(time.Second)}
	clock := func() time.Time { return f.now }
	ring, err := NewRingManager(ctx, st.KeyMaterial(), master, clock, rand.Reader, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.iss = oidctest.NewServer(t, "/ci", oidctest.Options{Now: clock})
	v, err := oidc.NewValidator(oidc.Options{Now: clock, AllowLoopbackHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = New(Options{Store: st, Account: account, Region: "us-east-1", Ring: ring, Validator: v, Now: clock, Rand: rand.Reader})
	prefix := strings.TrimPrefix(f.iss.URL(), "http://")
	provARN := iam.ProviderARN(account, f.iss.URL())
	if err := st.Providers().Create(ctx, &store.Provider{ARN: provARN, URL: f.iss.URL(), ClientIDs: []string{"sts.amazonaws.com"}, CreateDate: f.now}, 0); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Sid":"CI","Effect":"Allow","Principal":{"Federated":"` + provARN + `"},` +
		`"Action":["sts:AssumeRoleWithWebIdentity","sts:TagSession"],"Condition":{"StringLike":{"` + prefix + `:sub":"repo:org/app:*"}}}]}`
	f.roleARN = iam.RoleARN(account, "/ci/", "deploy")
	role := &store.Role{RoleID: "AROAEXAMPLEROLEID0001", Name: "deploy", Path: "/ci/", ARN: f.roleARN, TrustPolicy: trust, MaxSessionDuration: 7200, CreateDate: f.now}
	if err := st.Roles().Create(ctx, role, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) call(t testing.TB, params url.Values) (any, *awsquery.Request, error) {
	t.Helper()
	params.Set("Action", "AssumeRoleWithWebIdentity")
	params.Set("Version", "2011-06-15")
	r := &awsquery.Request{Action: "AssumeRoleWithWebIdentity", Params: awsquery.ParamsFromValues(params), Time: f.now, Region: "us-east-1", SourceIP: "127.0.0.1"}
	res, err := f.svc.assumeRoleWithWebIdentity(context.Background(), r)
	return res, r, err
}

func code(err error) string {
	var e *awsquery.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestAssumeAndResolve(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com")
	res, r, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"build-7"}, "WebIdentityToken": {tok}, "DurationSeconds": {"900"}})
	if err != nil {
		t.Fatal(err)
	}
	out := res.(assumeResult)
	if out.AssumedRoleUser.Arn != "arn:aws:sts::"+account+":assumed-role/deploy/build-7" || out.AssumedRoleUser.AssumedRoleID != "AROAEXAMPLEROLEID0001:build-7" {
		t.Fatalf("assumed role = %+v", out.AssumedRoleUser)
	}
	if exp := f.now.Add(900 * time.Second).UTC().Format("2006-01-02T15:04:05Z"); out.Credentials.Expiration != exp {
		t.Errorf("expiration = %s, want %s", out.Credentials.Expiration, exp)
	}
	if !r.Note.Durable || r.Note.Exchange == nil {
		t.Fatal("the exchange must be audited durably")
	}
	// The validator's hash of the token is the one the trail records.
	if x := r.Note.Exchange.(*audit.Exchange); x.IDTokenSHA256 != audit.SHA256Hex(tok) {
		t.Errorf("IDTokenSHA256 = %q, want the SHA-256 of the presented token", x.IDTokenSHA256)
	}
	secret, caller, err := f.svc.ResolveSession(context.Background(), out.Credentials.AccessKeyID, out.Credentials.SessionToken)
	if err != nil || secret != out.Credentials.SecretAccessKey || caller.ARN != out.AssumedRoleUser.Arn || caller.UserID != out.AssumedRoleUser.AssumedRoleID {
		t.Fatalf("ResolveSession = %q %+v %v", secret, caller, err)
	}
	// Wrong key id for the token, tampered token, expired session.
	if _, _, err := f.svc.ResolveSession(context.Background(), "ASIAOTHERKEY00000000", out.Credentials.SessionToken); code(err) != awsquery.CodeInvalidClientTokenID {
		t.Errorf("other key: %v", err)
	}
	bad := []byte(out.Credentials.SessionToken)
	bad[len(bad)/2] ^= 1
	if _, _, err := f.svc.ResolveSession(context.Background(), out.Credentials.AccessKeyID, string(bad)); code(err) != awsquery.CodeInvalidClientTokenID {
		t.Errorf("tampered token: %v", err)
	}
	f.now = f.now.Add(901 * time.Second)
	if _, _, err := f.svc.ResolveSession(context.Background(), out.Credentials.AccessKeyID, out.Credentials.SessionToken); code(err) != awsquery.CodeExpiredToken {
		t.Errorf("expired: %v", err)
	}
}

func TestAssumeRefusals(t *testing.T) {
	f := newFixture(t)
	good := func() string { return f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com") }
	tests := []struct {
		name   string
		params url.Values
		want   string
	}{
		{"missing everything", url.Values{}, awsquery.CodeValidationError},
		{"bad session name", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"dependabot[bot]"}, "WebIdentityToken": {good()}}, awsquery.CodeValidationError},
		{"duration too short", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}, "DurationSeconds": {"899"}}, awsquery.CodeValidationError},
		{"duration over role max", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}, "DurationSeconds": {"7201"}}, awsquery.CodeValidationError},
		{"invalid ARN", url.Values{"RoleArn": {"arn:aws:iam::123:user/x-long-enough"}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}}, awsquery.CodeValidationError},
		{"token too long", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good() + strings.Repeat("A", 20000)}}, awsquery.CodeValidationError},
		{"provider id given", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}, "ProviderId": {"www.amazon.com"}}, awsquery.CodeValidationError},
		{"garbage token", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {"a.b.c"}}, awsquery.CodeInvalidIdentityToken},
		{"other project", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {f.iss.Mint(t, "repo:evil/app:ref:refs/heads/main", "sts.amazonaws.com")}}, awsquery.CodeAccessDenied},
		{"role of another account", url.Values{"RoleArn": {"arn:aws:iam::999999999999:role/ci/deploy"}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}}, awsquery.CodeInvalidIdentityToken},
		{"missing role", url.Values{"RoleArn": {iam.RoleARN(account, "/", "nope")}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}}, awsquery.CodeAccessDenied},
		{"role with another path", url.Values{"RoleArn": {iam.RoleARN(account, "/", "deploy")}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}}, awsquery.CodeAccessDenied},
		{"malformed session policy", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}, "Policy": {`{"Statement":[`}}, awsquery.CodeMalformedPolicyDocument},
		{"unknown policy arn", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {good()}, "PolicyArns.member.1.arn": {"arn:aws:iam::123456789012:policy/none"}}, awsquery.CodeMalformedPolicyDocument},
		{"expired token", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {f.iss.Mint(t, "repo:org/app:x", "sts.amazonaws.com", func(tk *oidctest.Token) {
			tk.Claims["iat"] = f.now.Add(-time.Hour).Unix()
			tk.Claims["exp"] = f.now.Add(-30 * time.Minute).Unix()
		})}}, awsquery.CodeExpiredTokenException},
		{"source identity without permission", url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {f.iss.Mint(t, "repo:org/app:x", "sts.amazonaws.com", func(tk *oidctest.Token) {
			tk.Claims["https://aws.amazon.com/source_identity"] = "alice"
		})}}, awsquery.CodeAccessDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, r, err := f.call(t, tc.params)
			if got := code(err); got != tc.want {
				t.Fatalf("code = %q (%v), want %s", got, err, tc.want)
			}
			// Refusals are audited too; only those of a verified token are
			// fsynced one by one (issue 11 item 4).
			if ax, ok := r.Note.Exchange.(*audit.Exchange); !ok {
				t.Error("refusals are audited too")
			} else if verified := !ax.Unverified; r.Note.Durable != verified || verified != (tc.want == awsquery.CodeAccessDenied || tc.name == "duration over role max" || strings.Contains(tc.name, "policy")) {
				t.Errorf("durable %v, unverified %v for a %s refusal", r.Note.Durable, ax.Unverified, code(err))
			}
			// The client message never carries the token or its claims.
			// (The encoded part is ciphertext: random base64 may hold "eyJ".)
			if e, ok := errors.AsType[*awsquery.Error](err); ok {
				plain, _, _ := strings.Cut(e.Message, "Encoded authorization failure message:")
				if strings.Contains(plain, "repo:") || strings.Contains(plain, "eyJ") {
					t.Errorf("message reveals the token or its claims: %s", e.Message)
				}
			}
		})
	}
}

func TestSessionTagsAndPolicy(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com", func(tk *oidctest.Token) {
		tk.Claims["https://aws.amazon.com/tags"] = map[string]any{
			"principal_tags":      map[string]any{"project": []any{"app"}},
			"transitive_tag_keys": []any{"project"},
		}
	})
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	res, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {tok}, "Policy": {pol}})
	if err != nil {
		t.Fatal(err)
	}
	out := res.(assumeResult)
	if out.PackedPolicySize == nil || *out.PackedPolicySize <= 0 || *out.PackedPolicySize > 100 {
		t.Fatalf("PackedPolicySize = %v", out.PackedPolicySize)
	}
	_, caller, err := f.svc.ResolveSession(context.Background(), out.Credentials.AccessKeyID, out.Credentials.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	s := caller.Session.(*Session)
	if s.Tags["project"] != "app" || s.Policy != pol {
		t.Fatalf("session = %+v", s)
	}
	// Session policy intersects with the role's (empty) permissions: denied.
	if err := f.svc.AuthorizeSession(context.Background(), &awsquery.Request{Caller: caller}, awsquery.Target{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}); code(err) != awsquery.CodeAccessDenied {
		t.Fatalf("role without permissions: %v", err)
	}
	ctx := context.Background()
	if err := f.st.Roles().PutInlinePolicy(ctx, "deploy", store.InlinePolicy{Name: "p", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/project":"app"}}}]}`}, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.AuthorizeSession(ctx, &awsquery.Request{Caller: caller}, awsquery.Target{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}); err != nil {
		t.Fatalf("allowed by role ∩ session: %v", err)
	}
	if err := f.svc.AuthorizeSession(ctx, &awsquery.Request{Caller: caller}, awsquery.Target{Action: "s3:PutObject", Resource: "arn:aws:s3:::b/k"}); code(err) != awsquery.CodeAccessDenied {
		t.Fatalf("session policy must limit the role: %v", err)
	}
}

func TestDecodeAuthorizationMessage(t *testing.T) {
	f := newFixture(t)
	_, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {f.iss.Mint(t, "repo:evil/app:ref:refs/heads/main", "sts.amazonaws.com")}})
	e, _ := errors.AsType[*awsquery.Error](err)
	_, enc, ok := strings.Cut(e.Message, "Encoded authorization failure message: ")
	if !ok {
		t.Fatalf("message = %s", e.Message)
	}
	r := &awsquery.Request{Params: awsquery.ParamsFromValues(url.Values{"EncodedMessage": {enc}})}
	res, err := f.svc.decodeAuthorizationMessage(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	var ex Explanation
	if err := json.Unmarshal([]byte(res.(decodeResult).DecodedMessage), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Allowed || ex.Context.Resource != f.roleARN || ex.Keyless.Trace == nil ||
		!strings.Contains(ex.Keyless.Reason, `expects "repo:org/app:*", but the token has "repo:evil/app:ref:refs/heads/main"`) {
		t.Fatalf("explanation = %+v", ex)
	}
	r.Params = awsquery.ParamsFromValues(url.Values{"EncodedMessage": {enc[:len(enc)-4] + "AAAA"}})
	if _, err := f.svc.decodeAuthorizationMessage(context.Background(), r); code(err) != awsquery.CodeInvalidAuthorizationMessage {
		t.Fatalf("tampered message: %v", err)
	}
}

func TestRingRotationKeepsOldSessions(t *testing.T) {
	f := newFixture(t)
	res, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {f.iss.Mint(t, "repo:org/app:x", "sts.amazonaws.com")}})
	if err != nil {
		t.Fatal(err)
	}
	out := res.(assumeResult)
	if err := f.svc.ring.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.ResolveSession(context.Background(), out.Credentials.AccessKeyID, out.Credentials.SessionToken); err != nil {
		t.Fatalf("session sealed before rotation: %v", err)
	}
}

// FuzzAssumeForm feeds arbitrary form parameters to the handler: it must
// answer a client error (or succeed), never panic or fail internally.
func FuzzAssumeForm(f *testing.F) {
	fx := newFixture(f)
	tok := fx.iss.Mint(f, "repo:org/app:x", "sts.amazonaws.com")
	f.Add("RoleArn="+url.QueryEscape(fx.roleARN)+"&RoleSessionName=s&WebIdentityToken="+tok, "")
	f.Add("RoleArn=x&RoleSessionName=&WebIdentityToken=a.b.c&DurationSeconds=-1", "")
	f.Add("PolicyArns.member.1.arn=x&PolicyArns.member.3.arn=y&Policy=%7B", "")
	f.Add("RoleArn="+url.QueryEscape(fx.roleARN)+"&RoleSessionName=s1&WebIdentityToken="+tok+"&Policy=%7B%7D", "DurationSeconds=99999999999999999999")
	f.Fuzz(func(t *testing.T, body, query string) {
		p, err := awsquery.ParseParams([]byte(body), query)
		if err != nil {
			return
		}
		r := &awsquery.Request{Params: p, Time: fx.now, Region: "us-east-1"}
		_, err = fx.svc.assumeRoleWithWebIdentity(context.Background(), r)
		if err != nil {
			var e *awsquery.Error
			if !errors.As(err, &e) || e.HTTPStatus() >= 500 {
				t.Fatalf("internal error for body %q: %v", body, err)
			}
		}
	})
}

func TestRevokeAllButInvalidatesOldSessions(t *testing.T) {
	f := newFixture(t)
	res, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {f.iss.Mint(t, "repo:org/app:x", "sts.amazonaws.com")}})
	if err != nil {
		t.Fatal(err)
	}
	out := res.(assumeResult)
	ctx := context.Background()
	if err := f.svc.ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.ring.RevokeAllBut(ctx); err != nil || n != 1 {
		t.Fatalf("RevokeAllBut = %d, %v", n, err)
	}
	if _, _, err := f.svc.ResolveSession(ctx, out.Credentials.AccessKeyID, out.Credentials.SessionToken); code(err) != awsquery.CodeInvalidClientTokenID {
		t.Fatalf("revoked session still verifies: %v", err)
	}
}

// TestSessionRequestContextKeys pins the condition keys a session's call is
// evaluated with: the principal's, the request's global keys and the
// target's own keys (issue 11 item 2).
func TestSessionRequestContextKeys(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com")
	res, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	out := res.(assumeResult)
	_, caller, err := f.svc.ResolveSession(context.Background(), out.Credentials.AccessKeyID, out.Credentials.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	sess := caller.Session.(*Session)
	role, err := f.st.Roles().Get(context.Background(), "deploy")
	if err != nil {
		t.Fatal(err)
	}
	r := &awsquery.Request{Caller: caller, SourceIP: "10.1.2.3", UserAgent: "aws-cli/1.0", Region: "eu-west-1", SecureTransport: true}
	tgt := awsquery.Target{Action: "iam:TagRole", Resource: f.roleARN, Keys: map[string][]string{"aws:TagKeys": {"a", "b"}, "aws:RequestTag/a": {"1"}}}
	c := f.svc.requestContext(r, sess, role, tgt)
	want := map[string][]string{
		"aws:CurrentTime":           {f.now.UTC().Format(time.RFC3339)},
		"aws:EpochTime":             {strconv.FormatInt(f.now.Unix(), 10)},
		"aws:TokenIssueTime":        {time.Unix(sess.Issued, 0).UTC().Format(time.RFC3339)},
		"aws:PrincipalArn":          {f.roleARN},
		"aws:PrincipalAccount":      {account},
		"aws:PrincipalType":         {"AssumedRole"},
		"aws:PrincipalIsAWSService": {"false"},
		"aws:ViaAWSService":         {"false"},
		"aws:userid":                {sess.AssumedRoleID()},
		"aws:FederatedProvider":     {sess.Provider},
		"aws:SourceIp":              {"10.1.2.3"},
		"aws:SecureTransport":       {"true"},
		"aws:UserAgent":             {"aws-cli/1.0"},
		"aws:RequestedRegion":       {"us-east-1"}, // IAM is global: us-east-1 whatever the signing region
		"aws:TagKeys":               {"a", "b"},
		"aws:RequestTag/a":          {"1"},
	}
	for k, v := range want {
		got, ok := c.Get(k)
		if !ok || !slices.Equal(got, v) {
			t.Errorf("%s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	tgt.Action = "sts:DecodeAuthorizationMessage"
	if got, _ := f.svc.requestContext(r, sess, role, tgt).Get("aws:RequestedRegion"); !slices.Equal(got, []string{"eu-west-1"}) {
		t.Errorf("STS RequestedRegion = %q, want the signing region", got)
	}
}
