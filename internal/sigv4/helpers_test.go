package sigv4_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sigv4"
)

var update = flag.Bool("update", false, "regenerate golden files under testdata/")

// Credentials used by every generated fixture. Example values, as in AWS's
// documentation; nothing real.
const (
	testAKID   = "ASIAEXAMPLEKEYID0001"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testToken  = "IQoJb3JpZ2luX2VjEXAMPLETOKEN/ke+yless=="
	// A long-term key pair, signing without a session token.
	longAKID   = "AKIAIOSFODNN7EXAMPLE"
	longSecret = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
)

// signTime is when the SDK fixtures are signed; checks run a minute later.
var signTime = time.Date(2026, 11, 27, 23, 38, 41, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// wire is a request as bytes on the wire, the form every fixture is kept in:
// the verifier then sees exactly what net/http's server would give it.
type wire []byte

// toWire serialises a client request the way net/http's transport does.
func toWire(t testing.TB, r *http.Request) wire {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	return b.Bytes()
}

// serverRequest parses wire bytes as net/http's server does and returns the
// request with its body read.
func serverRequest(t testing.TB, w wire) (*http.Request, []byte) {
	t.Helper()
	r, body, err := tryServerRequest(w)
	if err != nil {
		t.Fatalf("reading request: %v\n%s", err, w)
	}
	return r, body
}

func tryServerRequest(w wire) (*http.Request, []byte, error) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(w)))
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, err
	}
	return r, body, nil
}

// check runs both phases as the server does and returns the first error.
func check(v *sigv4.Verifier, w wire, secret string) (*sigv4.Signature, error) {
	r, body, err := tryServerRequest(w)
	if err != nil {
		return nil, err
	}
	sig, err := v.Parse(r)
	if err != nil {
		return nil, err
	}
	return sig, sig.Verify(r, body, secret)
}

func awsCode(err error) string {
	if e, ok := errors.AsType[*awsquery.Error](err); ok {
		return e.Code
	}
	return ""
}

// wireParts splits a request into its request line, header lines and body,
// so tests can change one part and reassemble it.
type wireParts struct {
	method, target, proto string
	headers               [][2]string
	body                  string
}

func splitWire(t testing.TB, w wire) wireParts {
	t.Helper()
	head, body, ok := strings.Cut(string(w), "\r\n\r\n")
	if !ok {
		t.Fatalf("no header terminator in %q", w)
	}
	lines := strings.Split(head, "\r\n")
	rl := strings.SplitN(lines[0], " ", 3)
	if len(rl) != 3 {
		t.Fatalf("bad request line %q", lines[0])
	}
	p := wireParts{method: rl[0], target: rl[1], proto: rl[2], body: body}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("bad header line %q", l)
		}
		p.headers = append(p.headers, [2]string{k, strings.TrimLeft(v, " ")})
	}
	return p
}

func (p wireParts) join() wire {
	var b strings.Builder
	b.WriteString(p.method + " " + p.target + " " + p.proto + "\r\n")
	for _, h := range p.headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(p.body)
	return wire(b.String())
}

func (p wireParts) clone() wireParts {
	c := p
	c.headers = append([][2]string(nil), p.headers...)
	return c
}

// withBody replaces the body and fixes Content-Length.
func (p wireParts) withBody(body string) wireParts {
	c := p.clone()
	c.body = body
	for i, h := range c.headers {
		if strings.EqualFold(h[0], "Content-Length") {
			c.headers[i][1] = itoa(len(body))
			return c
		}
	}
	c.headers = append(c.headers, [2]string{"Content-Length", itoa(len(body))})
	return c
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// swapByte replaces one byte by a different, non-white-space byte that is
// not the same letter in another case, so the change can never be absorbed by
// trimming or by case-insensitive hex escapes ("%3A" and "%3a" are one byte).
func swapByte(c byte) byte {
	if c == 'a' || c == 'A' {
		return 'b'
	}
	return 'a'
}

func replaceAt(s string, i int) string {
	return s[:i] + string(swapByte(s[i])) + s[i+1:]
}

// signedHeaderNames reads the signed-header list of a wire request.
func signedHeaderNames(t testing.TB, p wireParts) []string {
	t.Helper()
	for _, h := range p.headers {
		if strings.EqualFold(h[0], "Authorization") {
			_, after, ok := strings.Cut(h[1], "SignedHeaders=")
			if !ok {
				t.Fatalf("no SignedHeaders in %q", h[1])
			}
			list, _, _ := strings.Cut(after, ",")
			return strings.Split(list, ";")
		}
	}
	_, after, ok := strings.Cut(p.target, "X-Amz-SignedHeaders=")
	if !ok {
		t.Fatalf("no signed headers in %q", p.target)
	}
	list, _, _ := strings.Cut(after, "&")
	return strings.Split(strings.ReplaceAll(list, "%3B", ";"), ";")
}

// mutation is one change to a signed part of a request.
type mutation struct {
	name string
	w    wire
}

// mutations lists changes to every signed part of a correctly signed wire
// request: each byte of the method, the request target, every signed header
// value and the body; removal and duplication of each signed header; and each
// hex digit of the signature. Every one must make verification fail.
func mutations(t testing.TB, w wire) []mutation {
	t.Helper()
	p := splitWire(t, w)
	var out []mutation
	add := func(name string, q wireParts) { out = append(out, mutation{name, q.join()}) }

	for i := range p.method {
		q := p.clone()
		q.method = replaceAt(p.method, i)
		add("method byte "+itoa(i), q)
	}
	for i := range p.target {
		if p.target[i] == '/' && i == 0 {
			continue // a target must start with '/'
		}
		q := p.clone()
		q.target = replaceAt(p.target, i)
		add("target byte "+itoa(i), q)
	}
	signed := signedHeaderNames(t, p)
	for hi, h := range p.headers {
		name := strings.ToLower(h[0])
		if name == "authorization" {
			// Only the signature digits are signed material here; the
			// credential's key id is bound by the key lookup, not the HMAC.
			_, sig, _ := strings.Cut(h[1], "Signature=")
			off := len(h[1]) - len(sig)
			for i := range sig {
				q := p.clone()
				q.headers[hi][1] = replaceAt(h[1], off+i)
				add("signature digit "+itoa(i), q)
			}
			continue
		}
		isSigned := false
		for _, s := range signed {
			isSigned = isSigned || s == name
		}
		if !isSigned || name == "content-length" {
			continue // content-length is covered by the body mutations
		}
		for i := range h[1] {
			q := p.clone()
			q.headers[hi][1] = replaceAt(h[1], i)
			add(name+" byte "+itoa(i), q)
		}
		q := p.clone()
		q.headers = append(q.headers[:hi:hi], q.headers[hi+1:]...)
		add("drop "+name, q)
		q = p.clone()
		q.headers = append(q.headers, [2]string{h[0], "extra"})
		add("repeat "+name, q)
	}
	for i := range p.body {
		add("body byte "+itoa(i), p.withBody(replaceAt(p.body, i)))
	}
	add("body appended", p.withBody(p.body+"&"))
	if p.body != "" {
		add("body truncated", p.withBody(p.body[:len(p.body)-1]))
	}
	return out
}

// requireAllFail checks every mutation of w is refused (or unreadable as
// HTTP, which a server refuses too).
func requireAllFail(t *testing.T, v *sigv4.Verifier, w wire, secret string) {
	t.Helper()
	ms := mutations(t, w)
	if len(ms) < 10 {
		t.Fatalf("only %d mutations generated", len(ms))
	}
	for _, m := range ms {
		_, err := check(v, m.w, secret)
		if err == nil {
			t.Errorf("mutation %q verified:\n%s", m.name, m.w)
			continue
		}
		if awsCode(err) == "" {
			if _, _, perr := tryServerRequest(m.w); perr == nil {
				t.Errorf("mutation %q: error is not an *awsquery.Error: %v", m.name, err)
			}
		}
	}
}
