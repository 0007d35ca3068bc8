package contract

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/keylessci/keyless/internal/testenv"
)

// Issue 13's must-show, end to end: keyless A brokers exchanges to an
// upstream STS on loopback — keyless B playing AWS (it registers A's
// built-in issuer as an IAM OIDC provider, with
// --allow-loopback-http-issuers), moto_server, or a test double that
// refuses, throttles or never answers. The CI side is the real AWS CLI
// (and aws-sdk-go-v2 where said); CI tokens come from a loopback test
// issuer registered at A, as a CI system's own issuer would be.

const (
	brokerUpstreamAccount = "222222222222"
	brokerCISubject       = "repo:acme/web:ref:refs/heads/main"
	brokerRoleName        = "ci-deploy"
	// brokerSubject is the sub of A's broker tokens for the role: what
	// the upstream role trusts.
	brokerSubject = "keyless:" + accountID + ":role/" + brokerRoleName
	// brokerPoll bounds how long a test waits for a change at A to apply
	// to the next exchange: docs/broker.md's kill switch promises the
	// store's cache bound, 1 s per node (docs/architecture.md, role and
	// provider documents); a write on the node itself clears it at once.
	brokerPoll = 2 * time.Second
)

// stsCounter is a real loopback reverse proxy in front of an upstream STS
// that counts the AssumeRoleWithWebIdentity calls passing through and
// keeps what the broker sent and what the upstream answered.
type stsCounter struct {
	URL string

	mu    sync.Mutex
	calls []upstreamCall
}

// upstreamCall is one AssumeRoleWithWebIdentity seen by a stsCounter.
type upstreamCall struct {
	Form      url.Values // as the broker sent it (WebIdentityToken included)
	Status    int
	RequestID string // the upstream's x-amzn-RequestId
}

func newSTSCounter(t *testing.T, target string) *stsCounter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &stsCounter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(rec, r)
		if form.Get("Action") == "AssumeRoleWithWebIdentity" {
			c.mu.Lock()
			c.calls = append(c.calls, upstreamCall{Form: form, Status: rec.status, RequestID: w.Header().Get("x-amzn-RequestId")})
			c.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Calls returns the AssumeRoleWithWebIdentity calls seen so far.
func (c *stsCounter) Calls() []upstreamCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]upstreamCall(nil), c.calls...)
}

func (c *stsCounter) count() int { return len(c.Calls()) }

// last is the latest call; the test fails when there is none.
func (c *stsCounter) last(t *testing.T) upstreamCall {
	t.Helper()
	calls := c.Calls()
	if len(calls) == 0 {
		t.Fatal("the upstream saw no AssumeRoleWithWebIdentity")
	}
	return calls[len(calls)-1]
}

// connCounter is a loopback TCP server that counts the connections it
// accepts; with hold it keeps them open without answering (a hung
// upstream), else it closes them at once.
type connCounter struct {
	URL   string
	conns atomic.Int32
}

func newConnCounter(t *testing.T, hold bool) *connCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &connCounter{URL: "http://" + ln.Addr().String()}
	var (
		mu   sync.Mutex
		held []net.Conn
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			if !hold {
				conn.Close()
				continue
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return c
}

// brokerRig is keyless A, the broker: its built-in issuer signs the
// broker tokens; a loopback CI issuer is registered at A and the keyless
// role ci-deploy trusts one of its subjects and is tagged
// keyless:upstream-role-arn. With an upstream, keyless B plays AWS behind
// a counting proxy that A's AWS_ENDPOINT_URL_STS names.
type brokerRig struct {
	a        *server
	aPort    string
	aData    string
	aEnv     []string
	issuer   string // A's built-in issuer URL, as B registers it
	ci       *oidctest.Server
	roleARN  string // ci-deploy at A
	upstream string // the upstream role's ARN
	b        *server
	up       *stsCounter // in front of b
}

// newBrokerRig starts the rig. config is A's configuration file ("" for
// none; {UPSTREAM} in it stands for the counting proxy's URL); env is
// added to A's environment after AWS_ENDPOINT_URL_STS (so it may override
// it).
func newBrokerRig(t *testing.T, withUpstream bool, config string, env ...string) *brokerRig {
	t.Helper()
	r := &brokerRig{
		aPort: freePort(t), aData: t.TempDir(), ci: oidctest.NewServer(t, "/ci", oidctest.Options{}),
		roleARN:  "arn:aws:iam::" + accountID + ":role/" + brokerRoleName,
		upstream: "arn:aws:iam::" + brokerUpstreamAccount + ":role/deploy",
	}
	r.issuer = "http://127.0.0.1:" + r.aPort + "/oidc"
	if withUpstream {
		r.b = startServerAccount(t, "", brokerUpstreamAccount, "--allow-loopback-http-issuers")
		r.up = newSTSCounter(t, r.b.URL)
		r.aEnv = append(r.aEnv, "AWS_ENDPOINT_URL_STS="+r.up.URL)
	} else {
		r.aEnv = append(r.aEnv, "AWS_ENDPOINT_URL_STS=", "AWS_ENDPOINT_URL=")
	}
	r.aEnv = append(r.aEnv, env...)
	r.startA(t, config)

	ctx := context.Background()
	c := r.a.iamClient(adminKeyID, adminSecret, "")
	if _, err := c.CreateOpenIDConnectProvider(ctx, iamCreateProvider(r.ci.URL(), ciAudience)); err != nil {
		t.Fatal(err)
	}
	in := iamCreateRole(brokerRoleName, r.ciTrust(brokerCISubject))
	in.Tags = []types.Tag{{Key: aws.String("keyless:upstream-role-arn"), Value: aws.String(r.upstream)}}
	if _, err := c.CreateRole(ctx, in); err != nil {
		t.Fatal(err)
	}
	return r
}

// startA (re)starts A on its port and data dir with config.
func (r *brokerRig) startA(t *testing.T, config string) {
	t.Helper()
	if r.a != nil {
		r.a.stop(t)
	}
	args := []string{"--issuer-url", r.issuer, "--allow-loopback-http-issuers"}
	if config != "" {
		if r.up != nil {
			config = strings.ReplaceAll(config, "{UPSTREAM}", r.up.URL)
		}
		args = append(args, "--config", writeFile(t, filepath.Join(t.TempDir(), "keyless.yaml"), config))
	}
	r.a = startKeylessOn(t, r.aPort, r.aData, accountID, r.aEnv, args...)
}

// ciTrust is a trust policy at A admitting the CI issuer's tokens for sub.
func (r *brokerRig) ciTrust(sub string) string {
	prefix := strings.TrimPrefix(r.ci.URL(), "http://")
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::` + accountID + `:oidc-provider/` + prefix + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + prefix + `:aud":"` + ciAudience + `","` + prefix + `:sub":"` + sub + `"}}}]}`
}

// token is a CI token of the CI issuer, with a claim beyond sub and aud.
func (r *brokerRig) token(t *testing.T, sub string) string {
	return r.ci.Mint(t, sub, ciAudience, func(tok *oidctest.Token) { tok.Claims["repository"] = "acme/web" })
}

// registerAtUpstream sets B up as AWS would be: the IAM OIDC provider for
// A's issuer (when withProvider) and the upstream role "deploy" trusting
// sub and the audience sts.amazonaws.com, allowed iam:GetRole and
// iam:ListRoles.
func (r *brokerRig) registerAtUpstream(t *testing.T, withProvider bool, sub string) {
	t.Helper()
	ctx := context.Background()
	c := r.b.iamClient(adminKeyID, adminSecret, "")
	prefix := strings.TrimPrefix(r.issuer, "http://")
	if withProvider {
		if _, err := c.CreateOpenIDConnectProvider(ctx, iamCreateProvider(r.issuer, "sts.amazonaws.com")); err != nil {
			t.Fatal(err)
		}
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::` + brokerUpstreamAccount + `:oidc-provider/` + prefix + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + prefix + `:aud":"sts.amazonaws.com","` + prefix + `:sub":"` + sub + `"}}}]}`
	if _, err := c.CreateRole(ctx, iamCreateRole("deploy", trust)); err != nil {
		t.Fatal(err)
	}
	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:GetRole","iam:ListRoles"],"Resource":"*"}]}`
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("deploy"), PolicyName: aws.String("read"), PolicyDocument: aws.String(allow)}); err != nil {
		t.Fatal(err)
	}
}

// exchangeCLI is the CI side at A with the real AWS CLI (unsigned).
func (r *brokerRig) exchangeCLI(t *testing.T, role, session, token string, extra ...string) cliResult {
	t.Helper()
	args := append([]string{"sts", "assume-role-with-web-identity", "--role-arn", role, "--role-session-name", session, "--web-identity-token", token}, extra...)
	return awsCLI(t, r.a.URL, awsEnv(t, "", "", ""), args...)
}

// brokeredCreds is what an exchange returned.
type brokeredCreds struct {
	ARN, AccessKeyID, Secret, SessionToken, Expiration string
}

func (c brokeredCreds) env(t *testing.T) []string {
	return awsEnv(t, c.AccessKeyID, c.Secret, c.SessionToken)
}

// credsOf reads a successful CLI exchange.
func credsOf(t *testing.T, r cliResult) brokeredCreds {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("exchange failed: %s", r.Stderr)
	}
	out := r.JSON(t)
	c, _ := out["Credentials"].(map[string]any)
	u, _ := out["AssumedRoleUser"].(map[string]any)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	return brokeredCreds{ARN: str(u, "Arn"), AccessKeyID: str(c, "AccessKeyId"), Secret: str(c, "SecretAccessKey"), SessionToken: str(c, "SessionToken"), Expiration: str(c, "Expiration")}
}

// rawAnswer is an exchange answered to a plain HTTP POST.
type rawAnswer struct {
	Status  int
	Code    string
	Message string
	ARN     string
	KeyID   string
}

// exchangeRaw posts AssumeRoleWithWebIdentity as botocore does, without
// the CLI's start-up time (for polling and timing).
func exchangeRaw(t *testing.T, base, role, session, token string) rawAnswer {
	t.Helper()
	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn": {role}, "RoleSessionName": {session}, "WebIdentityToken": {token}}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(base+"/", "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := rawAnswer{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		var ok struct {
			ARN   string `xml:"AssumeRoleWithWebIdentityResult>AssumedRoleUser>Arn"`
			KeyID string `xml:"AssumeRoleWithWebIdentityResult>Credentials>AccessKeyId"`
		}
		if err := xml.Unmarshal(body, &ok); err != nil {
			t.Fatalf("exchange answer: %v\n%s", err, body)
		}
		out.ARN, out.KeyID = ok.ARN, ok.KeyID
		return out
	}
	var e struct {
		Code    string `xml:"Error>Code"`
		Message string `xml:"Error>Message"`
	}
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("exchange error: %v\n%s", err, body)
	}
	out.Code, out.Message = e.Code, e.Message
	return out
}

// pollExchange repeats a raw exchange at A until done accepts its answer,
// for at most brokerPoll.
func (r *brokerRig) pollExchange(t *testing.T, what string, done func(rawAnswer) bool) rawAnswer {
	t.Helper()
	deadline := time.Now().Add(brokerPoll)
	for {
		a := exchangeRaw(t, r.a.URL, r.roleARN, "poll", r.token(t, brokerCISubject))
		if done(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s of the change; last answer %+v", what, brokerPoll, a)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// explanation decodes the encoded authorization message of a refused
// exchange at s, as its administrator, and returns its "keyless" part.
func explanation(t *testing.T, s *server, errText string) map[string]any {
	t.Helper()
	_, enc, ok := strings.Cut(errText, "Encoded authorization failure message: ")
	if !ok {
		t.Fatalf("no encoded message in %s", errText)
	}
	enc = strings.TrimSpace(enc)
	dec := s.aws(t, "sts", "decode-authorization-message", "--encoded-message", enc)
	if dec.Code != 0 {
		t.Fatalf("decode-authorization-message: %s", dec.Stderr)
	}
	var m map[string]any
	msg, _ := dec.JSON(t)["DecodedMessage"].(string)
	if err := json.Unmarshal([]byte(msg), &m); err != nil {
		t.Fatalf("decoded message: %v\n%s", err, msg)
	}
	kl, _ := m["keyless"].(map[string]any)
	if kl == nil {
		t.Fatalf("decoded message has no keyless part: %s", msg)
	}
	return kl
}

// str reads a string at a path of nested JSON objects ("" when absent).
func str(m map[string]any, path ...string) string {
	var v any = m
	for _, k := range path {
		o, _ := v.(map[string]any)
		v = o[k]
	}
	s, _ := v.(string)
	return s
}

// jwtClaims decodes a JWT's payload (no verification: the upstream did it).
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestBrokerExchangeReturnsUpstreamCredentials: a CI token goes in at A
// and B's credentials come back (B's account in the AssumedRoleUser ARN),
// which B recognises (aws sts get-caller-identity at B); the session name,
// DurationSeconds (the Expiration) and the session policy reach B (the
// policy restricts the session at B). A token A's trust policy refuses
// never reaches B: a counting proxy between A and B sees 0 calls for it
// and 1 for the allowed exchange.
func TestBrokerExchangeReturnsUpstreamCredentials(t *testing.T) {
	t.Parallel()
	testenv.RequireCommand(t, "aws")
	r := newBrokerRig(t, true, "")
	r.registerAtUpstream(t, true, brokerSubject)

	refused := r.exchangeCLI(t, r.roleARN, "evil", r.token(t, "repo:evil/web:ref:refs/heads/main"))
	wantAWSError(t, refused, "AccessDenied")
	if n := r.up.count(); n != 0 {
		t.Fatalf("a token A's trust policy refuses reached the upstream: %d calls", n)
	}

	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetRole","Resource":"*"}]}`
	before := time.Now()
	res := r.exchangeCLI(t, r.roleARN, "gha-run-7", r.token(t, brokerCISubject), "--duration-seconds", "1800", "--policy", policy)
	c := credsOf(t, res)
	want := "arn:aws:sts::" + brokerUpstreamAccount + ":assumed-role/deploy/gha-run-7"
	if c.ARN != want {
		t.Fatalf("AssumedRoleUser.Arn = %s, want the upstream's %s", c.ARN, want)
	}
	if n := r.up.count(); n != 1 {
		t.Fatalf("upstream calls = %d, want 1", n)
	}
	call := r.up.last(t)
	for k, v := range map[string]string{"RoleArn": r.upstream, "RoleSessionName": "gha-run-7", "DurationSeconds": "1800", "Policy": policy} {
		if got := call.Form.Get(k); got != v {
			t.Errorf("upstream got %s = %q, want %q", k, got, v)
		}
	}
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil {
		t.Fatalf("Expiration %q: %v", c.Expiration, err)
	}
	if lo, hi := before.Add(1800*time.Second-5*time.Second), time.Now().Add(1800*time.Second+5*time.Second); exp.Before(lo) || exp.After(hi) {
		t.Errorf("Expiration %s, want 1800 s after the exchange (%s..%s)", exp, lo, hi)
	}
	if _, ok := res.JSON(t)["PackedPolicySize"]; !ok {
		t.Errorf("no PackedPolicySize in the answer to an exchange with a session policy: %s", res.Stdout)
	}

	who := awsCLI(t, r.b.URL, c.env(t), "sts", "get-caller-identity")
	if who.Code != 0 {
		t.Fatalf("get-caller-identity at the upstream: %s", who.Stderr)
	}
	if got := str(who.JSON(t), "Arn"); got != want {
		t.Errorf("get-caller-identity at the upstream = %s, want %s", got, want)
	}
	// The upstream role may GetRole and ListRoles; the session policy
	// passed on leaves GetRole only.
	if g := awsCLI(t, r.b.URL, c.env(t), "iam", "get-role", "--role-name", "deploy"); g.Code != 0 {
		t.Errorf("get-role at the upstream with the brokered session: %s", g.Stderr)
	}
	wantAWSError(t, awsCLI(t, r.b.URL, c.env(t), "iam", "list-roles"), "AccessDenied")
}

// TestBrokerCallerIdentityAtKeyless: configure-aws-credentials calls
// GetCallerIdentity right after the exchange, with AWS_ENDPOINT_URL_STS
// still pointing at keyless. The AWS CLI and an aws-sdk-go-v2 STS client
// both get the upstream identity there (Arn, UserId, Account, as B itself
// answers); any other call to A with those credentials is AccessDenied; a
// brokered access key id with another session token is
// InvalidClientTokenId. (A second node on A's data dir is not tried: the
// audit trail directory takes one process, and there is no setting for
// another.)
func TestBrokerCallerIdentityAtKeyless(t *testing.T) {
	t.Parallel()
	bin := testenv.RequireCommand(t, "aws")
	r := newBrokerRig(t, true, "")
	r.registerAtUpstream(t, true, brokerSubject)
	c := credsOf(t, r.exchangeCLI(t, r.roleARN, "cac", r.token(t, brokerCISubject)))

	atB := awsCLI(t, r.b.URL, c.env(t), "sts", "get-caller-identity")
	if atB.Code != 0 {
		t.Fatalf("get-caller-identity at the upstream: %s", atB.Stderr)
	}
	want := atB.JSON(t)
	if str(want, "Arn") != "arn:aws:sts::"+brokerUpstreamAccount+":assumed-role/deploy/cac" || str(want, "Account") != brokerUpstreamAccount || str(want, "UserId") == "" {
		t.Fatalf("upstream identity = %v", want)
	}

	// The AWS CLI as the action leaves it: no --endpoint-url, the STS
	// endpoint from the environment.
	cmd := exec.Command(bin, "sts", "get-caller-identity", "--output", "json")
	cmd.Env = append(c.env(t), "AWS_ENDPOINT_URL_STS="+r.a.URL)
	out, err := cmd.Output()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		t.Fatalf("aws sts get-caller-identity with AWS_ENDPOINT_URL_STS=A: %v\n%s", err, ee.Stderr)
	} else if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Arn", "UserId", "Account"} {
		if str(got, k) != str(want, k) {
			t.Errorf("AWS CLI at A: %s = %q, want the upstream's %q", k, str(got, k), str(want, k))
		}
	}

	ctx := context.Background()
	sc := sts.NewFromConfig(sdkConfig(c.AccessKeyID, c.Secret, c.SessionToken), func(o *sts.Options) { o.BaseEndpoint = aws.String(r.a.URL) })
	id, err := sc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("aws-sdk-go-v2 GetCallerIdentity at A: %v", err)
	}
	if aws.ToString(id.Arn) != str(want, "Arn") || aws.ToString(id.UserId) != str(want, "UserId") || aws.ToString(id.Account) != str(want, "Account") {
		t.Errorf("aws-sdk-go-v2 at A: %s %s %s, want %v", aws.ToString(id.Arn), aws.ToString(id.UserId), aws.ToString(id.Account), want)
	}

	wantAWSError(t, awsCLI(t, r.a.URL, c.env(t), "iam", "get-role", "--role-name", brokerRoleName), "AccessDenied")
	_, err = r.a.iamClient(c.AccessKeyID, c.Secret, c.SessionToken).ListRoles(ctx, &iam.ListRolesInput{})
	wantCode(t, err, "AccessDenied")

	forged := awsCLI(t, r.a.URL, awsEnv(t, c.AccessKeyID, c.Secret, c.SessionToken[:len(c.SessionToken)-4]+"AAAA"), "sts", "get-caller-identity")
	wantAWSError(t, forged, "InvalidClientTokenId")
}

// TestBrokerUpstreamRefusalExplained: the upstream refusing keyless's
// token reaches the client as the AWS error it would get from AWS, and the
// encoded message, decoded at A by its administrator, says why and what
// to do (keyless broker aws-setup --role NAME) and names the upstream's
// request id: first B has the role but no provider for A's issuer
// (InvalidIdentityToken), then B's role trusts another subject
// (AccessDenied).
func TestBrokerUpstreamRefusalExplained(t *testing.T) {
	t.Parallel()
	testenv.RequireCommand(t, "aws")
	r := newBrokerRig(t, true, "")
	r.registerAtUpstream(t, false, "keyless:"+accountID+":role/another")

	check := func(code, outcome string, inReason ...string) {
		t.Helper()
		res := r.exchangeCLI(t, r.roleARN, "refused", r.token(t, brokerCISubject))
		wantAWSError(t, res, code)
		call := r.up.last(t)
		if call.Status < 400 || call.RequestID == "" {
			t.Fatalf("upstream answer: status %d, request id %q", call.Status, call.RequestID)
		}
		kl := explanation(t, r.a, res.Stderr)
		reason := str(kl, "reason")
		for _, want := range append([]string{"`keyless broker aws-setup --role " + brokerRoleName + "`", "request id " + call.RequestID}, inReason...) {
			if !strings.Contains(reason, want) {
				t.Errorf("%s: reason lacks %q: %s", code, want, reason)
			}
		}
		if str(kl, "errorCode") != code || str(kl, "upstream", "requestId") != call.RequestID || str(kl, "upstream", "errorCode") != code ||
			str(kl, "upstream", "tokenSubject") != brokerSubject || str(kl, "upstream", "tokenIssuer") != r.issuer || str(kl, "upstream", "roleArn") != r.upstream {
			t.Errorf("%s: explanation = %v", code, kl)
		}
		if got := r.a.metric(t, `keyless_broker_upstream_total{outcome="`+outcome+`"}`); got != 1 {
			t.Errorf("keyless_broker_upstream_total{outcome=%q} = %v, want 1", outcome, got)
		}
	}
	check("InvalidIdentityToken", "invalid_token", "no IAM OIDC provider for keyless's issuer "+r.issuer)

	if _, err := r.b.iamClient(adminKeyID, adminSecret, "").CreateOpenIDConnectProvider(context.Background(), iamCreateProvider(r.issuer, "sts.amazonaws.com")); err != nil {
		t.Fatal(err)
	}
	check("AccessDenied", "denied", "the upstream role "+r.upstream+" does not trust keyless's issuer "+r.issuer+" for the subject "+brokerSubject)
}

// TestBrokerAuditTrailsLink: A's trail links the CI run to the AWS
// session and back. The MintBrokerToken event (eventSource
// broker.keyless) precedes the exchange event and shares its
// sharedEventID; the exchange event carries the upstream access key id,
// assumed-role ARN and request id (as B's answer and B's own trail say)
// and the broker token's jti and SHA-256 (of the token B received). B's
// event for the upstream exchange names keyless's subject as userName
// with the audience sts.amazonaws.com, as AWS's CloudTrail would. The
// broker token B received is keyless's: aud sts.amazonaws.com, at most 5
// minutes, the CI token's claims as ci_*. No secret key, session token,
// CI token or broker token is in clear anywhere under A's data dir (trail
// files gunzipped) or in A's log.
func TestBrokerAuditTrailsLink(t *testing.T) {
	t.Parallel()
	testenv.RequireCommand(t, "aws")
	r := newBrokerRig(t, true, "")
	r.registerAtUpstream(t, true, brokerSubject)
	ciToken := r.token(t, brokerCISubject)
	c := credsOf(t, r.exchangeCLI(t, r.roleARN, "audit-7", ciToken))
	call := r.up.last(t)
	brokerToken := call.Form.Get("WebIdentityToken")

	claims := jwtClaims(t, brokerToken)
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if claims["iss"] != r.issuer || claims["sub"] != brokerSubject || claims["aud"] != "sts.amazonaws.com" || exp-iat <= 0 || exp-iat > 300 ||
		claims["ci_sub"] != brokerCISubject || claims["ci_repository"] != "acme/web" || claims["ci_iss"] != r.ci.URL() {
		t.Errorf("broker token claims = %v", claims)
	}

	r.a.stop(t)
	r.b.stop(t)
	var mint, exch *audit.Event
	mintAt, exchAt := -1, -1
	for i, e := range trailEventsOf(t, r.a.Data) {
		switch {
		case e.EventSource == "broker.keyless" && e.EventName == "MintBrokerToken":
			mint, mintAt = e, i
		case e.EventName == "AssumeRoleWithWebIdentity":
			exch, exchAt = e, i
		}
	}
	if mint == nil || exch == nil {
		t.Fatalf("A's trail: MintBrokerToken %v, AssumeRoleWithWebIdentity %v", mint != nil, exch != nil)
	}
	// In the trail's order: the exchange event's eventTime is the
	// request's arrival (CloudTrail's), so it may be the second before.
	if mintAt > exchAt {
		t.Errorf("MintBrokerToken (#%d) does not precede the exchange event (#%d)", mintAt, exchAt)
	}
	if mint.SharedEventID == "" || mint.SharedEventID != exch.SharedEventID {
		t.Errorf("sharedEventID: MintBrokerToken %q, exchange %q", mint.SharedEventID, exch.SharedEventID)
	}
	if got := str(mint.ResponseElements, "tokenSHA256"); got != sha256Hex(brokerToken) {
		t.Errorf("MintBrokerToken tokenSHA256 = %s, want the SHA-256 of the token B received", got)
	}
	if str(mint.ResponseElements, "jti") != claims["jti"] || str(mint.RequestParameters, "upstreamRoleArn") != r.upstream {
		t.Errorf("MintBrokerToken = %v %v", mint.RequestParameters, mint.ResponseElements)
	}

	// B's own trail: its exchange event, as AWS's CloudTrail would
	// record the broker's call.
	var atB *audit.Event
	for _, e := range trailEventsOf(t, r.b.Data) {
		if e.EventName == "AssumeRoleWithWebIdentity" {
			atB = e
		}
	}
	if atB == nil {
		t.Fatal("B's trail has no AssumeRoleWithWebIdentity")
	}
	if call.RequestID == "" || atB.RequestID != call.RequestID {
		t.Errorf("B's event requestID %q, B's answer said %q", atB.RequestID, call.RequestID)
	}
	bp := "arn:aws:iam::" + brokerUpstreamAccount + ":oidc-provider/" + strings.TrimPrefix(r.issuer, "http://")
	if u := atB.UserIdentity; u == nil || u.Type != "WebIdentityUser" || u.UserName != brokerSubject || u.IdentityProvider != bp ||
		u.PrincipalID != bp+":sts.amazonaws.com:"+brokerSubject {
		t.Errorf("B's userIdentity = %+v, want WebIdentityUser %s of %s for sts.amazonaws.com", atB.UserIdentity, brokerSubject, bp)
	}
	if got := str(atB.ResponseElements, "credentials", "accessKeyId"); got != c.AccessKeyID {
		t.Errorf("B's event accessKeyId %q, client got %q", got, c.AccessKeyID)
	}

	b := exch.AdditionalEventData["broker"]
	bm, _ := b.(map[string]any)
	for k, v := range map[string]string{
		"outcome": "success", "upstreamRoleArn": r.upstream, "upstreamEndpoint": r.up.URL,
		"upstreamAccessKeyId": c.AccessKeyID, "upstreamAssumedRoleArn": c.ARN, "upstreamRequestId": atB.RequestID,
		"brokerTokenJti": str(mint.ResponseElements, "jti"), "brokerTokenSHA256": sha256Hex(brokerToken),
		"brokerTokenSubject": brokerSubject, "brokerTokenIssuer": r.issuer,
	} {
		if got := str(bm, k); got != v {
			t.Errorf("exchange event additionalEventData.broker.%s = %q, want %q", k, got, v)
		}
	}
	if got := str(exch.ResponseElements, "credentials", "accessKeyId"); got != c.AccessKeyID {
		t.Errorf("exchange event responseElements.credentials.accessKeyId = %q, want %q", got, c.AccessKeyID)
	}
	if exch.UserIdentity == nil || exch.UserIdentity.UserName != brokerCISubject {
		t.Errorf("exchange event userIdentity = %+v, want the CI subject", exch.UserIdentity)
	}

	secrets := map[string]string{"secret access key": c.Secret, "session token": c.SessionToken, "CI token": ciToken, "broker token": brokerToken}
	for name, v := range secrets {
		if strings.Contains(r.a.logs.String(), v) {
			t.Errorf("A's log holds the %s in clear", name)
		}
	}
	files := 0
	err := filepath.WalkDir(r.a.Data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		contents := [][]byte{raw}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				return err
			}
			plain, err := io.ReadAll(zr)
			if err != nil {
				return err
			}
			contents = append(contents, plain)
		}
		for _, b := range contents {
			for name, v := range secrets {
				if bytes.Contains(b, []byte(v)) {
					t.Errorf("%s holds the %s in clear", p, name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Fatalf("read only %d files under %s", files, r.a.Data)
	}
}

// TestBrokerKillSwitch: each of docs/broker.md's kill switches stops new
// brokered sessions on the next exchange, and none reaches the upstream
// afterwards (the counting proxy does not move): removing the
// keyless:upstream-role-arn tag (A answers with its own credentials),
// tightening A's trust policy (AccessDenied), deleting the role. Each is
// applied with the AWS CLI at A and must show within brokerPoll (2 s; the
// documented bound is the store's 1 s cache per node). The upstream count
// is checked strictly: the change is written through this very node, whose
// writes clear its cache at once (docs/architecture.md, Caches), so not
// one exchange after it may reach the upstream.
func TestBrokerKillSwitch(t *testing.T) {
	t.Parallel()
	testenv.RequireCommand(t, "aws")
	r := newBrokerRig(t, true, "")
	r.registerAtUpstream(t, true, brokerSubject)
	upstreamARN := "arn:aws:sts::" + brokerUpstreamAccount + ":assumed-role/deploy/poll"
	ownARN := "arn:aws:sts::" + accountID + ":assumed-role/" + brokerRoleName + "/poll"
	if a := exchangeRaw(t, r.a.URL, r.roleARN, "poll", r.token(t, brokerCISubject)); a.ARN != upstreamARN {
		t.Fatalf("brokered exchange = %+v, want %s", a, upstreamARN)
	}
	wantCalls := func(n int) {
		t.Helper()
		if got := r.up.count(); got != n {
			t.Fatalf("upstream calls = %d, want %d", got, n)
		}
	}
	wantCalls(1)

	if res := r.a.aws(t, "iam", "untag-role", "--role-name", brokerRoleName, "--tag-keys", "keyless:upstream-role-arn"); res.Code != 0 {
		t.Fatalf("untag-role: %s", res.Stderr)
	}
	r.pollExchange(t, "untagged: keyless's own credentials", func(a rawAnswer) bool { return a.ARN == ownARN })
	wantCalls(1)

	if res := r.a.aws(t, "iam", "tag-role", "--role-name", brokerRoleName, "--tags", "Key=keyless:upstream-role-arn,Value="+r.upstream); res.Code != 0 {
		t.Fatalf("tag-role: %s", res.Stderr)
	}
	r.pollExchange(t, "tagged again: the upstream's credentials", func(a rawAnswer) bool { return a.ARN == upstreamARN })
	n := r.up.count()

	if res := r.a.aws(t, "iam", "update-assume-role-policy", "--role-name", brokerRoleName, "--policy-document", r.ciTrust("repo:acme/web:environment:production")); res.Code != 0 {
		t.Fatalf("update-assume-role-policy: %s", res.Stderr)
	}
	r.pollExchange(t, "trust tightened: AccessDenied", func(a rawAnswer) bool { return a.Code == "AccessDenied" })
	wantCalls(n)

	if res := r.a.aws(t, "iam", "update-assume-role-policy", "--role-name", brokerRoleName, "--policy-document", r.ciTrust(brokerCISubject)); res.Code != 0 {
		t.Fatalf("update-assume-role-policy: %s", res.Stderr)
	}
	r.pollExchange(t, "trust restored: the upstream's credentials", func(a rawAnswer) bool { return a.ARN == upstreamARN })
	n = r.up.count()

	if res := r.a.aws(t, "iam", "delete-role", "--role-name", brokerRoleName); res.Code != 0 {
		t.Fatalf("delete-role: %s", res.Stderr)
	}
	r.pollExchange(t, "deleted: refused", func(a rawAnswer) bool { return a.Code != "" })
	wantCalls(n)
	wantAWSError(t, r.exchangeCLI(t, r.roleARN, "gone", r.token(t, brokerCISubject)), "AccessDenied")
	wantCalls(n)
}

// throttlingUpstream answers every request with AWS's Throttling error and
// counts them.
func throttlingUpstream(t *testing.T) (string, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("x-amzn-RequestId", "throttled-0001")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>throttled-0001</RequestId></ErrorResponse>`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// TestBrokerUpstreamFailures: an upstream that cannot be reached (A's
// AWS_ENDPOINT_URL_STS at a closed loopback port) gives the client
// IDPCommunicationError at once; one that accepts and never answers gives
// it after broker.timeout (1s in A's config file), not later; one that
// throttles gives Throttling with a backoff hint, which the AWS CLI retries
// (3 attempts with AWS_MAX_ATTEMPTS=3, each reaching the upstream: nothing
// cached). A's metrics count each outcome.
func TestBrokerUpstreamFailures(t *testing.T) {
	t.Parallel()
	testenv.RequireCommand(t, "aws")
	hung := newConnCounter(t, true)
	throttle, throttled := throttlingUpstream(t)
	closed := "http://127.0.0.1:" + freePort(t)
	r := newBrokerRig(t, false, "broker:\n  timeout: 1s\n  allowed_sts_endpoints: ["+hung.URL+", "+throttle+"]\n", "AWS_ENDPOINT_URL_STS="+closed)
	c := r.a.iamClient(adminKeyID, adminSecret, "")
	for name, endpoint := range map[string]string{"slow": hung.URL, "throttled": throttle} {
		in := iamCreateRole(name, r.ciTrust(brokerCISubject))
		in.Tags = []types.Tag{
			{Key: aws.String("keyless:upstream-role-arn"), Value: aws.String(r.upstream)},
			{Key: aws.String("keyless:upstream-sts-endpoint"), Value: aws.String(endpoint)},
		}
		if _, err := c.CreateRole(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	metric := func(outcome string) float64 {
		return r.a.metric(t, `keyless_broker_upstream_total{outcome="`+outcome+`"}`)
	}

	start := time.Now()
	a := exchangeRaw(t, r.a.URL, r.roleARN, "unreachable", r.token(t, brokerCISubject))
	if d := time.Since(start); a.Code != "IDPCommunicationError" || a.Status != http.StatusBadRequest || d > time.Second {
		t.Errorf("unreachable upstream: %+v after %s, want IDPCommunicationError (400) at once", a, d)
	}
	wantAWSError(t, r.exchangeCLI(t, r.roleARN, "unreachable", r.token(t, brokerCISubject)), "IDPCommunicationError")
	if got := metric("unreachable"); got != 2 {
		t.Errorf("unreachable outcomes = %v, want 2", got)
	}

	start = time.Now()
	a = exchangeRaw(t, r.a.URL, "arn:aws:iam::"+accountID+":role/slow", "slow", r.token(t, brokerCISubject))
	d := time.Since(start)
	if a.Code != "IDPCommunicationError" || a.Status != http.StatusBadRequest || d < time.Second || d > 3*time.Second {
		t.Errorf("hung upstream: %+v after %s, want IDPCommunicationError (400) after 1s (broker.timeout)", a, d)
	}
	if hung.conns.Load() != 1 {
		t.Errorf("the hung upstream got %d connections, want 1", hung.conns.Load())
	}
	if got := metric("timeout"); got != 1 {
		t.Errorf("timeout outcomes = %v, want 1", got)
	}

	env := append(awsEnv(t, "", "", ""), "AWS_MAX_ATTEMPTS=3")
	res := awsCLI(t, r.a.URL, env, "sts", "assume-role-with-web-identity", "--role-arn", "arn:aws:iam::"+accountID+":role/throttled",
		"--role-session-name", "throttled", "--web-identity-token", r.token(t, brokerCISubject))
	wantAWSError(t, res, "Throttling")
	if !strings.Contains(res.Stderr, "reached max retries: 2") || !strings.Contains(res.Stderr, "Rate exceeded. The upstream STS is throttling: retry with exponential backoff") {
		t.Errorf("throttled exchange: %s", res.Stderr)
	}
	if n := throttled.Load(); n != 3 {
		t.Errorf("the throttling upstream got %d calls, want the CLI's 3 attempts", n)
	}
	if got := metric("throttled"); got != 3 {
		t.Errorf("throttled outcomes = %v, want 3", got)
	}
	if got := metric("success"); got != 0 {
		t.Errorf("success outcomes = %v, want 0", got)
	}
}

// TestBrokerEndpointTagAllowlist: the endpoint-harvesting attack. A
// role's keyless:upstream-sts-endpoint receives tokens AWS accepts for the
// upstream role, so TagRole refuses an endpoint that is neither AWS's nor
// in broker.allowed_sts_endpoints (InvalidInput), and a tag written while
// the configuration allowed it (a restart on the same data dir without the
// allowlist entry) is refused at exchange time, explained, with no
// connection to the attacker's server. An allowlisted per-role endpoint is
// honoured: with A's default endpoint closed, the exchange succeeds
// through the role's tag.
func TestBrokerEndpointTagAllowlist(t *testing.T) {
	t.Parallel()
	testenv.RequireCommand(t, "aws")
	attacker := newConnCounter(t, false)
	closed := "http://127.0.0.1:" + freePort(t)
	const trusted = "broker:\n  allowed_sts_endpoints: [{UPSTREAM}]\n"
	r := newBrokerRig(t, true, trusted, "AWS_ENDPOINT_URL_STS="+closed)
	r.registerAtUpstream(t, true, brokerSubject)
	tag := func(endpoint string) cliResult {
		return r.a.aws(t, "iam", "tag-role", "--role-name", brokerRoleName, "--tags", "Key=keyless:upstream-sts-endpoint,Value="+endpoint)
	}

	if res := tag(r.up.URL); res.Code != 0 {
		t.Fatalf("tagging an allowlisted endpoint: %s", res.Stderr)
	}
	c := credsOf(t, r.exchangeCLI(t, r.roleARN, "honoured", r.token(t, brokerCISubject)))
	if c.ARN != "arn:aws:sts::"+brokerUpstreamAccount+":assumed-role/deploy/honoured" || r.up.count() != 1 {
		t.Fatalf("allowlisted endpoint tag: %s, %d upstream calls", c.ARN, r.up.count())
	}

	res := tag(attacker.URL)
	wantAWSError(t, res, "InvalidInput")
	if !strings.Contains(res.Stderr, "broker.allowed_sts_endpoints") {
		t.Errorf("TagRole refusal does not say why: %s", res.Stderr)
	}

	// A tag written while the configuration allowed the endpoint...
	r.startA(t, "broker:\n  allowed_sts_endpoints: [{UPSTREAM}, "+attacker.URL+"]\n")
	if res := tag(attacker.URL); res.Code != 0 {
		t.Fatalf("tagging an allowlisted endpoint: %s", res.Stderr)
	}
	// ...then the allowlist entry removed: refused, explained, unsent.
	r.startA(t, trusted)
	res = r.exchangeCLI(t, r.roleARN, "harvest", r.token(t, brokerCISubject))
	wantAWSError(t, res, "AccessDenied")
	reason := str(explanation(t, r.a, res.Stderr), "reason")
	for _, want := range []string{attacker.URL, "neither an AWS STS endpoint nor listed in the server's broker.allowed_sts_endpoints", "nothing was sent"} {
		if !strings.Contains(reason, want) {
			t.Errorf("reason lacks %q: %s", want, reason)
		}
	}
	if n := attacker.conns.Load(); n != 0 {
		t.Errorf("the attacker's server got %d connections", n)
	}
	if got := r.a.metric(t, `keyless_broker_upstream_total{outcome="endpoint_refused"}`); got != 1 {
		t.Errorf("endpoint_refused outcomes = %v, want 1", got)
	}
	if r.up.count() != 1 {
		t.Errorf("upstream calls = %d, want 1", r.up.count())
	}
}

// TestBrokerMotoUpstream: moto_server's STS, an independent
// implementation of AWS's wire protocol, as the upstream (its endpoint in
// A's broker.allowed_sts_endpoints and the role's endpoint tag): the
// exchange at A returns moto's credentials, and GetCallerIdentity at moto
// with them returns moto's assumed-role ARN. moto does not verify web
// identity tokens, so this proves wire compatibility only; keyless B in
// the other tests proves the token is validated.
func TestBrokerMotoUpstream(t *testing.T) {
	t.Parallel()
	testenv.RequireCommand(t, "aws")
	moto := startMoto(t)
	r := newBrokerRig(t, false, "broker:\n  allowed_sts_endpoints: ["+moto+"]\n")
	if res := r.a.aws(t, "iam", "tag-role", "--role-name", brokerRoleName, "--tags",
		"Key=keyless:upstream-sts-endpoint,Value="+moto, "Key=keyless:upstream-role-arn,Value=arn:aws:iam::123456789012:role/moto-deploy"); res.Code != 0 {
		t.Fatalf("tag-role: %s", res.Stderr)
	}
	c := credsOf(t, r.exchangeCLI(t, r.roleARN, "moto-run", r.token(t, brokerCISubject), "--duration-seconds", "900"))
	want := "arn:aws:sts::123456789012:assumed-role/moto-deploy/moto-run"
	if c.ARN != want || !strings.HasPrefix(c.AccessKeyID, "ASIA") {
		t.Fatalf("exchange through moto: %s (access key id %s), want %s", c.ARN, c.AccessKeyID, want)
	}
	who := awsCLI(t, moto, c.env(t), "sts", "get-caller-identity")
	if who.Code != 0 {
		t.Fatalf("get-caller-identity at moto: %s", who.Stderr)
	}
	if got := str(who.JSON(t), "Arn"); got != want {
		t.Errorf("get-caller-identity at moto = %s, want %s", got, want)
	}
	if got := r.a.metric(t, `keyless_broker_upstream_total{outcome="success"}`); got != 1 {
		t.Errorf("success outcomes = %v, want 1", got)
	}
}
