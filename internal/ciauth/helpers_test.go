package ciauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// makeJWT builds an unsigned-looking JWT with the given claims. The
// signature part is junk: ciauth never verifies tokens, the STS does.
func makeJWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"k1"}`))
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return h + "." + enc.EncodeToString(p) + "." + enc.EncodeToString([]byte("signature-bytes"))
}

// stsReply is what fakeSTS answers to one call.
type stsReply struct {
	status  int // HTTP status for errors (400 when zero)
	code    string
	message string
	// for successes:
	lifetime time.Duration // 1h when zero
	subject  string        // SubjectFromWebIdentityToken; a GitHub subject when empty
}

// fakeSTS plays AWS STS over the Query protocol: AssumeRoleWithWebIdentity
// (scripted replies) and DecodeAuthorizationMessage (requires a SigV4
// Authorization header, as AWS does).
type fakeSTS struct {
	t       testing.TB
	now     func() time.Time
	respond func(n int, form url.Values) stsReply
	decoded string // DecodeAuthorizationMessage answer

	mu        sync.Mutex
	calls     []url.Values
	decodes   []url.Values
	lastHdrs  http.Header
	callTimes []time.Time
}

func newFakeSTS(t testing.TB, respond func(n int, form url.Values) stsReply) *fakeSTS {
	if respond == nil {
		respond = func(int, url.Values) stsReply { return stsReply{} }
	}
	return &fakeSTS{t: t, now: time.Now, respond: respond}
}

func (f *fakeSTS) Calls() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.calls...)
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("x-amzn-RequestId", "req-"+r.Form.Get("Action"))
	w.Header().Set("Content-Type", "text/xml")
	switch r.Form.Get("Action") {
	case "AssumeRoleWithWebIdentity":
		f.mu.Lock()
		n := len(f.calls)
		f.calls = append(f.calls, r.Form)
		f.callTimes = append(f.callTimes, f.now())
		f.lastHdrs = r.Header.Clone()
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "" {
			writeSTSError(w, 400, "IncompleteSignature", "AssumeRoleWithWebIdentity must be unsigned in this test")
			return
		}
		reply := f.respond(n, r.Form)
		if reply.code != "" {
			writeSTSError(w, reply.status, reply.code, reply.message)
			return
		}
		life := reply.lifetime
		if life == 0 {
			life = time.Hour
		}
		role := r.Form.Get("RoleArn")
		name := role[strings.LastIndexByte(role, '/')+1:]
		acct := strings.Split(role, ":")[4]
		sess := r.Form.Get("RoleSessionName")
		subject := reply.subject
		if subject == "" {
			subject = "repo:acme/web:ref:refs/heads/main"
		}
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>%s</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn>
      <AssumedRoleId>AROAEXAMPLEID:%s</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>FQoGZXIvYXdzE+sess/token%d==</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCY%010d</SecretAccessKey>
      <Expiration>%s</Expiration>
      <AccessKeyId>ASIAEXAMPLE%09d</AccessKeyId>
    </Credentials>
    <Provider>arn:aws:iam::%s:oidc-provider/token.actions.githubusercontent.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>req-ok</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, xmlEscape(subject), acct, xmlEscape(name), xmlEscape(sess), xmlEscape(sess), n, n, f.now().Add(life).UTC().Format(time.RFC3339), n, acct)
	case "DecodeAuthorizationMessage":
		f.mu.Lock()
		f.decodes = append(f.decodes, r.Form)
		f.mu.Unlock()
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			writeSTSError(w, 400, "MissingAuthenticationToken", "Request is missing Authentication Token")
			return
		}
		fmt.Fprintf(w, `<DecodeAuthorizationMessageResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <DecodeAuthorizationMessageResult><DecodedMessage>%s</DecodedMessage></DecodeAuthorizationMessageResult>
  <ResponseMetadata><RequestId>req-decode</RequestId></ResponseMetadata>
</DecodeAuthorizationMessageResponse>`, xmlEscape(f.decoded))
	default:
		writeSTSError(w, 400, "InvalidAction", "unsupported")
	}
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func writeSTSError(w http.ResponseWriter, status int, code, msg string) {
	if status == 0 {
		status = 400
	}
	w.WriteHeader(status)
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-err</RequestId></ErrorResponse>`,
		typ, code, xmlEscape(msg))
}

// handlerTransport serves requests from an http.Handler in-process: no
// sockets, so it also works inside a testing/synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if r.Body != nil {
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(r.Body)
		r = r.Clone(r.Context())
		r.Body = http.NoBody
		if body.Len() > 0 {
			r.Body = readCloser{bytes.NewReader(body.Bytes())}
		}
	}
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// recordSleep replaces the backoff sleep: it records each wait and returns
// at once.
type recordSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *recordSleep) Sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return nil
}

// constRand is an io.Reader that yields the same byte forever: jitter draws
// become predictable (0xff... → just under the window, 0x00... → zero).
type constRand byte

func (c constRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

// staticToken is a TokenSource for exchange tests.
type staticToken struct {
	toks        []string // returned in turn; the last repeats
	n           int
	refreshable bool
	mu          sync.Mutex
}

func (s *staticToken) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.toks[min(s.n, len(s.toks)-1)]
	s.n++
	return tok, nil
}
func (s *staticToken) Describe() string  { return "test source" }
func (s *staticToken) ID() string        { return "test" }
func (s *staticToken) Refreshable() bool { return s.refreshable }

// testenvSh requires a POSIX shell for tests that run shell scripts.
func testenvSh(t *testing.T) {
	t.Helper()
	testenv.RequireCommand(t, "sh")
}

func fmtSprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
