package contract

// Fixture of the trust-case suite (trustcases_test.go): the case file, one
// TLS server impersonating every CI issuer the cases name, one `keyless
// serve` routed to it, and the clients that drive the exchange.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

// caseAccount is the account of every ARN in the case file.
const caseAccount = "111122223333"

// trustCase is one object of trust-cases-sample.json (trust-pitfalls §8):
// the fields of both categories that the suite reads.
type trustCase struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	Provider string `json:"provider"`
	Title    string `json:"title"`

	// trust_policy cases
	IssuerKeyPrefix  string          `json:"issuer_key_prefix"`
	Policy           json.RawMessage `json:"policy"`
	PolicyRaw        string          `json:"policy_raw"`
	TokenClaims      map[string]any  `json:"token_claims"`
	ExpectedVerdict  string          `json:"expected_verdict"`
	ExtendedVerdict  string          `json:"expected_verdict_extended_claims"`
	WriteGuardrail   string          `json:"aws_write_guardrail"`
	ConditionKeysAWS []string        `json:"aws_condition_keys_available"`
	LinterFindings   []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
	} `json:"linter_findings"`

	// token cases
	Group          string          `json:"group"`
	Mutation       json.RawMessage `json:"mutation"`
	ExpectedError  string          `json:"expected_error"`
	HTTPStatus     int             `json:"http_status"`
	StrictMode     string          `json:"expected_error_strict_mode"`
	PrivateFetches *int            `json:"expected_outbound_requests_to_private_ranges"`
	BaselineToken  *baselineToken  `json:"baseline_token"`
}

// baselineToken is T-00's symbolic description of the baseline token:
// times are "T", "T+300"…, placeholders are "<…>".
type baselineToken struct {
	Header   map[string]any `json:"header"`
	Claims   map[string]any `json:"claims"`
	Provider struct {
		URL       string   `json:"url"`
		ClientIDs []string `json:"client_ids"`
	} `json:"provider"`
	Now string `json:"now"`
}

// providerURL is the issuer URL of a trust_policy case: its condition-key
// prefix with the scheme put back.
func (c trustCase) providerURL() string { return "https://" + c.IssuerKeyPrefix }

// roleName is the role the suite creates for a trust_policy case.
func (c trustCase) roleName() string { return "tc-" + c.ID }

// wantSuccess reports whether a token case expects credentials
// ("none (credentials issued)").
func (c trustCase) wantSuccess() bool { return strings.HasPrefix(c.ExpectedError, "none") }

// loadTrustCases reads the case file, keeping JSON numbers as json.Number so
// that claims are re-encoded exactly as the file has them (5001 stays 5001,
// "5001" stays a string).
func loadTrustCases(t testing.TB, path string) []trustCase {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var cs []trustCase
	if err := dec.Decode(&cs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cs
}

// symbolicTime matches the case file's symbolic times: T, T+300, T-600.
var symbolicTime = regexp.MustCompile(`^T([+-][0-9]+)?$`)

// resolveSymbolic turns a symbolic value of T-00's baseline into a concrete
// one: times relative to t0, "<uuid>" a fresh UUID, "<current GitHub kid>"
// the issuer's signing kid. Other values are returned as they are.
func resolveSymbolic(v any, t0 int64, kid string) (any, error) {
	s, ok := v.(string)
	if !ok {
		return v, nil
	}
	if m := symbolicTime.FindStringSubmatch(s); m != nil {
		off := int64(0)
		if m[1] != "" {
			n, err := strconv.ParseInt(m[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("symbolic time %q: %w", s, err)
			}
			off = n
		}
		return t0 + off, nil
	}
	switch s {
	case "<uuid>":
		return newUUID(), nil
	case "<current GitHub kid>":
		return kid, nil
	}
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		return nil, fmt.Errorf("unknown placeholder %q in the baseline token", s)
	}
	return s, nil
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// reanchorTimes returns claims with iat, nbf and exp moved so that iat is
// issuedAt while every offset between them stays as the case wrote it. The
// file's absolute times (October 2026) would otherwise be "too old" or in
// the future depending on when the suite runs.
func reanchorTimes(claims map[string]any, issuedAt int64) (map[string]any, error) {
	out := make(map[string]any, len(claims))
	for k, v := range claims {
		out[k] = v
	}
	iat, ok := claims["iat"].(json.Number)
	if !ok {
		return out, nil // nothing to anchor on: the case keeps its times
	}
	base, err := iat.Int64()
	if err != nil {
		return nil, fmt.Errorf("iat %v: %w", iat, err)
	}
	for _, name := range []string{"iat", "nbf", "exp"} {
		n, ok := claims[name].(json.Number)
		if !ok {
			continue
		}
		v, err := n.Int64()
		if err != nil {
			return nil, fmt.Errorf("%s %v: %w", name, n, err)
		}
		out[name] = issuedAt + (v - base)
	}
	return out, nil
}

// tlsChain is a generated root → intermediate → leaf chain whose leaf names
// every issuer host.
type tlsChain struct {
	root, inter, leaf *x509.Certificate
	leafKey           *ecdsa.PrivateKey
}

func newTLSChain(hosts []string, now time.Time) (*tlsChain, error) {
	keys := make([]*ecdsa.PrivateKey, 3)
	for i := range keys {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	from, until := now.Add(-time.Hour), now.Add(24*time.Hour)
	ca := func(cn string, serial int64, pathLen int) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"keyless contract tests"}},
			NotBefore: from, NotAfter: until,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true, IsCA: true, MaxPathLen: pathLen, MaxPathLenZero: pathLen == 0,
		}
	}
	issue := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, error) {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
	rootT := ca("trust-cases root", 1, 1)
	root, err := issue(rootT, rootT, &keys[0].PublicKey, keys[0])
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	inter, err := issue(ca("trust-cases intermediate", 2, 0), root, &keys[1].PublicKey, keys[0])
	if err != nil {
		return nil, fmt.Errorf("intermediate: %w", err)
	}
	leaf, err := issue(&x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: from, NotAfter: until,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    hosts,
	}, inter, &keys[2].PublicKey, keys[1])
	if err != nil {
		return nil, fmt.Errorf("leaf: %w", err)
	}
	return &tlsChain{root: root, inter: inter, leaf: leaf, leafKey: keys[2]}, nil
}

// hostIssuers serves the issuers that share one host (github.com's issuer
// and an enterprise issuer below it): the longest issuer path that prefixes
// the request path wins.
type hostIssuers []*oidctest.Issuer

func issuerPath(i *oidctest.Issuer) string {
	u, err := url.Parse(i.URL())
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

func (h hostIssuers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var best *oidctest.Issuer
	for _, i := range h {
		p := issuerPath(i)
		if (p == "" || r.URL.Path == p || strings.HasPrefix(r.URL.Path, p+"/")) && (best == nil || len(p) > len(issuerPath(best))) {
			best = i
		}
	}
	if best == nil {
		http.NotFound(w, r)
		return
	}
	best.ServeHTTP(w, r)
}

// issuerFarm is ONE TLS server on 127.0.0.1 serving every issuer of the
// cases under its real host name, routed by Host (oidctest.HostMux).
type issuerFarm struct {
	http     *httptest.Server
	mux      *oidctest.HostMux
	issuers  map[string]*oidctest.Issuer // by issuer URL
	hosts    []string
	addr     string // 127.0.0.1:PORT
	rootFile string // PEM of the chain's root, for oidc.ca_files
}

// newIssuerFarm starts the server with one issuer per URL; keys[url] are
// the issuer's keys, the first one signing by default.
func newIssuerFarm(t *testing.T, keys map[string][]*oidctest.Key) *issuerFarm {
	t.Helper()
	f := &issuerFarm{mux: &oidctest.HostMux{}, issuers: map[string]*oidctest.Issuer{}}
	byHost := map[string]hostIssuers{}
	for u, ks := range keys {
		iss, err := oidctest.NewIssuer(u, oidctest.Options{PublishKeys: ks})
		if err != nil {
			t.Fatal(err)
		}
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "https" || pu.Port() != "" {
			t.Fatalf("issuer URL %q: want https without port", u)
		}
		f.issuers[u] = iss
		byHost[pu.Host] = append(byHost[pu.Host], iss)
	}
	for h, is := range byHost {
		f.hosts = append(f.hosts, h)
		f.mux.Handle(h, is)
	}
	sort.Strings(f.hosts)
	chain, err := newTLSChain(f.hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.http = httptest.NewUnstartedServer(f.mux)
	f.http.TLS = &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{chain.leaf.Raw, chain.inter.Raw}, PrivateKey: chain.leafKey, Leaf: chain.leaf,
	}}}
	f.http.StartTLS()
	t.Cleanup(f.http.Close)
	f.addr = f.http.Listener.Addr().String()
	f.rootFile = filepath.Join(t.TempDir(), "issuers-root.pem")
	if err := os.WriteFile(f.rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain.root.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *issuerFarm) issuer(t *testing.T, u string) *oidctest.Issuer {
	t.Helper()
	i := f.issuers[u]
	if i == nil {
		t.Fatalf("no test issuer for %q", u)
	}
	return i
}

// keylessConfig writes the YAML that points keyless at the farm: the root
// as an extra trusted CA, every issuer host:443 connected to the farm, and
// loopback destinations allowed (the farm is on 127.0.0.1; link-local,
// metadata and private addresses stay refused). The shared-issuer write
// controls are off, so that every case's role exists as a role written
// before AWS enforced them would; TestSharedIssuerControls checks the
// controls themselves.
func (f *issuerFarm) keylessConfig(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("allow_loopback_http_issuers: true\niam:\n  skip_shared_issuer_controls: true\noidc:\n  ca_files:\n")
	fmt.Fprintf(&b, "    - %s\n", strconv.Quote(f.rootFile))
	b.WriteString("  connect_to:\n")
	for _, h := range f.hosts {
		fmt.Fprintf(&b, "    - %s\n", strconv.Quote(h+":443="+f.addr))
	}
	path := filepath.Join(t.TempDir(), "keyless.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// generateKeys makes keys concurrently (RSA generation dominates the
// suite's set-up on two cores).
func generateKeys(t *testing.T, specs map[string]oidctest.KeyType) map[string]*oidctest.Key {
	t.Helper()
	out := make(map[string]*oidctest.Key, len(specs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(specs))
	for kid, kt := range specs {
		wg.Go(func() {
			k, err := oidctest.GenerateKey(kt, kid)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			out[kid] = k
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// outcome is what one AssumeRoleWithWebIdentity call produced.
type outcome struct {
	out     *sts.AssumeRoleWithWebIdentityOutput
	err     error
	code    string // "" on success
	message string
	status  int
	elapsed time.Duration
}

func (o outcome) String() string {
	if o.err == nil {
		return "credentials issued"
	}
	return fmt.Sprintf("%s (HTTP %d): %s", o.code, o.status, o.message)
}

// exchange calls AssumeRoleWithWebIdentity unsigned through aws-sdk-go-v2,
// without retries (the SDK retries IDPCommunicationError by default).
func exchange(ctx context.Context, c *sts.Client, roleARN, session, token string) outcome {
	start := time.Now()
	out, err := c.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String(session), WebIdentityToken: aws.String(token),
	})
	o := outcome{out: out, err: err, elapsed: time.Since(start), status: http.StatusOK}
	if err == nil {
		return o
	}
	o.status = 0
	var ae smithy.APIError
	if errors.As(err, &ae) {
		o.code, o.message = ae.ErrorCode(), ae.ErrorMessage()
	}
	var hs interface{ HTTPStatusCode() int }
	if errors.As(err, &hs) {
		o.status = hs.HTTPStatusCode()
	}
	return o
}

// connRetryer retries a call only when the client's own transport closed
// the connection under the response (net.ErrClosed), never on an answer of
// the server: each outcome is exactly what keyless said. The close is a
// client-side race: smithy-go closes the request body as soon as the
// response headers arrive, net/http's writer then fails and closes the
// connection while the body is read (aws-sdk-go-v2#2737); the SDK's
// default retryer retries it for the same reason. The default retryer is
// not used because it also retries IDPCommunicationError.
func connRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 10 * time.Millisecond, nil })
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			return aws.BoolTernary(errors.Is(err, net.ErrClosed))
		})}
	})
}

// newSTSClients returns an anonymous client (AssumeRoleWithWebIdentity is
// unsigned) and one signed as the bootstrap administrator.
func newSTSClients(endpoint string) (anon, admin *sts.Client) {
	anon = sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Retryer: connRetryer()})
	admin = sts.NewFromConfig(clientConfig(adminKeyID, adminSecret, ""), func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint) })
	return anon, admin
}

// clientConfig is an SDK configuration with static credentials and
// connRetryer (not sdkConfig: its RetryMaxAttempts=1 overrides any retryer).
func clientConfig(keyID, secret, token string) aws.Config {
	return aws.Config{Region: "us-east-1", Retryer: connRetryer,
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, token)}
}

// newIAMClient is the administrator's IAM client.
func newIAMClient(endpoint string) *iam.Client {
	return iam.NewFromConfig(clientConfig(adminKeyID, adminSecret, ""), func(o *iam.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// sessionClient is an STS client signing with issued credentials.
func sessionClient(endpoint string, c *sts.AssumeRoleWithWebIdentityOutput) *sts.Client {
	cfg := clientConfig(aws.ToString(c.Credentials.AccessKeyId), aws.ToString(c.Credentials.SecretAccessKey), aws.ToString(c.Credentials.SessionToken))
	return sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// encodedMessageMarker precedes the opaque explanation in AccessDenied
// messages, as in AWS.
const encodedMessageMarker = "Encoded authorization failure message:"

// decodedExplanation is the part of DecodeAuthorizationMessage's JSON the
// suite reads.
type decodedExplanation struct {
	Keyless struct {
		Reason        string              `json:"reason"`
		ErrorCode     string              `json:"errorCode"`
		Rule          string              `json:"rule"`
		ConditionKeys map[string][]string `json:"conditionKeys"`
		Trace         json.RawMessage     `json:"trace"`
	} `json:"keyless"`
}

// decodeRefusal extracts the encoded message of a refusal and decodes it as
// the administrator.
func decodeRefusal(ctx context.Context, t *testing.T, admin *sts.Client, message string) decodedExplanation {
	t.Helper()
	_, enc, ok := strings.Cut(message, encodedMessageMarker)
	if !ok {
		t.Fatalf("refusal message lacks %q: %q", encodedMessageMarker, message)
	}
	out, err := admin.DecodeAuthorizationMessage(ctx, &sts.DecodeAuthorizationMessageInput{EncodedMessage: aws.String(strings.TrimSpace(enc))})
	if err != nil {
		t.Fatalf("DecodeAuthorizationMessage: %v", err)
	}
	var d decodedExplanation
	if err := json.Unmarshal([]byte(aws.ToString(out.DecodedMessage)), &d); err != nil {
		t.Fatalf("decoded message is not JSON: %v", err)
	}
	if strings.TrimSpace(d.Keyless.Reason) == "" {
		t.Errorf("decoded explanation has an empty keyless.reason: %s", aws.ToString(out.DecodedMessage))
	}
	return d
}

// randomThumbprint is a syntactically valid thumbprint that matches no
// certificate; changing a provider's thumbprints gives it a fresh key cache
// in keyless (TLS is verified through ca_files, so the value is unused).
func randomThumbprint() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// resetKeyCache makes keyless forget the keys it cached for a provider, by
// an administrator's thumbprint update.
func resetKeyCache(ctx context.Context, t *testing.T, c *iam.Client, providerARN string) {
	t.Helper()
	if _, err := c.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{
		OpenIDConnectProviderArn: aws.String(providerARN), ThumbprintList: []string{randomThumbprint()},
	}); err != nil {
		t.Fatalf("UpdateOpenIDConnectProviderThumbprint: %v", err)
	}
}

// logsWith counts the server's log lines with msg whose fields equal want.
func (s *server) logsWith(msg string, want map[string]string) int {
	n := 0
	for _, l := range s.logLines(msg) {
		ok := true
		for k, v := range want {
			if fmt.Sprint(l[k]) != v {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// waitLogs waits until at least n log lines with msg carry the fields: the
// child's output reaches the buffer through a pipe-copying goroutine, so a
// line written just before a response may still be in flight.
func (s *server) waitLogs(msg string, want map[string]string, n int) int {
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := s.logsWith(msg, want)
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// auds lists a token's audiences (a string or an array of strings).
func auds(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, e := range a {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// keyNames strips "<prefix>:" from condition keys.
func keyNames(prefix string, keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, strings.TrimPrefix(k, prefix+":"))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestResolveSymbolic(t *testing.T) {
	t.Parallel()
	const t0 = 1_800_000_000
	tests := []struct {
		in      any
		want    any
		wantErr bool
	}{
		{in: "T", want: int64(t0)},
		{in: "T+300", want: int64(t0 + 300)},
		{in: "T-600", want: int64(t0 - 600)},
		{in: "<current GitHub kid>", want: "kid-1"},
		{in: "sts.amazonaws.com", want: "sts.amazonaws.com"},
		{in: "T+", want: "T+"}, // not a symbolic time: kept
		{in: json.Number("5001"), want: json.Number("5001")},
		{in: "<attacker n>", wantErr: true},
		{in: "T+99999999999999999999", wantErr: true},
	}
	for _, tc := range tests {
		got, err := resolveSymbolic(tc.in, t0, "kid-1")
		if (err != nil) != tc.wantErr {
			t.Errorf("resolveSymbolic(%v) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("resolveSymbolic(%v) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
	if u, _ := resolveSymbolic("<uuid>", t0, ""); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(u.(string)) {
		t.Errorf("<uuid> gave %v", u)
	}
}

func FuzzResolveSymbolic(f *testing.F) {
	for _, s := range []string{"T", "T+300", "T-600", "<uuid>", "<x>", "T+", "T-9223372036854775808", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := resolveSymbolic(s, 0, "kid")
		if err != nil {
			return
		}
		// A time is T plus the written offset; anything else is kept or is
		// a placeholder's value.
		if n, ok := got.(int64); ok {
			m := symbolicTime.FindStringSubmatch(s)
			off := int64(0)
			if m != nil && m[1] != "" {
				off, _ = strconv.ParseInt(m[1], 10, 64)
			}
			if m == nil || n != off {
				t.Errorf("resolveSymbolic(%q) = %d", s, n)
			}
		}
	})
}

func TestReanchorTimes(t *testing.T) {
	t.Parallel()
	in := map[string]any{"iat": json.Number("1791484275"), "nbf": json.Number("1791483975"), "exp": json.Number("1791484575"), "sub": "x"}
	got, err := reanchorTimes(in, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iat": int64(1000), "nbf": int64(700), "exp": int64(1300), "sub": "x"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("reanchorTimes (-want +got):\n%s", d)
	}
	if in["iat"] != json.Number("1791484275") {
		t.Error("reanchorTimes changed its input")
	}
	noIat := map[string]any{"exp": json.Number("5")}
	if got, _ := reanchorTimes(noIat, 1000); got["exp"] != json.Number("5") {
		t.Errorf("without iat the times must stay as written, got %v", got["exp"])
	}
	if _, err := reanchorTimes(map[string]any{"iat": json.Number("1.5")}, 0); err == nil {
		t.Error("a fractional iat must be an error")
	}
}
