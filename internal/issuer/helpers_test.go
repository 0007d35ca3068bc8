package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store/sqlite"
	"github.com/keylessci/keyless/internal/store/sqlstore"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// t0 is the fixed clock of golden tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// lockedRand is a deterministic, concurrency-safe io.Reader.
type lockedRand struct {
	mu sync.Mutex
	r  *mathrand.ChaCha8
}

func newRand(seed byte) *lockedRand {
	var s [32]byte
	s[0] = seed
	return &lockedRand{r: mathrand.NewChaCha8(s)}
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixedKeys hands out the keys under testdata/keys in order, then fresh
// ones, so golden files are stable.
type fixedKeys struct {
	mu   sync.Mutex
	next map[string]int
}

func (f *fixedKeys) gen(t testing.TB) KeyGenerator {
	return func(alg string, rand io.Reader) (crypto.Signer, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.next == nil {
			f.next = map[string]int{}
		}
		f.next[alg]++
		prefix := map[string]string{RS256: "rsa", ES256: "ec"}[alg]
		b, err := os.ReadFile(filepath.Join("testdata", "keys", fmt.Sprintf("%s-%d.pem", prefix, f.next[alg])))
		if os.IsNotExist(err) {
			return GenerateKey(alg, rand)
		}
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		return k.(crypto.Signer), nil
	}
}

func testMaster(t testing.TB) *keyring.Master {
	t.Helper()
	m, err := keyring.ParseMaster(base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func openStore(t testing.TB, path string) *sqlstore.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fixture is a Service over a real SQLite store with a settable clock.
type fixture struct {
	svc    *Service
	clock  *fakeClock
	dbPath string
	store  *sqlstore.Store
	caller *Caller
}

type fixtureOpt func(*Options)

func newFixture(t testing.TB, cfgs []Config, opts ...fixtureOpt) *fixture {
	t.Helper()
	f := &fixture{clock: &fakeClock{t: t0}, dbPath: filepath.Join(t.TempDir(), "keyless.db")}
	f.store = openStore(t, f.dbPath)
	keys := &fixedKeys{}
	o := Options{
		Keys:    f.store.KeyMaterial(),
		Master:  testMaster(t),
		Issuers: cfgs,
		Now:     f.clock.Now,
		Rand:    newRand(1),
		KeyGen:  keys.gen(t),
		Authenticate: func(r *http.Request, body []byte) (*Caller, error) {
			if f.caller == nil {
				return &Caller{AccessKeyID: "AKIAADMIN", Admin: true}, nil
			}
			return f.caller, nil
		},
	}
	for _, opt := range opts {
		opt(&o)
	}
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// serve starts an httptest server for handler and returns it; the issuer
// URL must be known before the service exists, so the handler is swapped
// in later through the returned setter.
func lateServer(t testing.TB) (*httptest.Server, func(http.Handler)) {
	t.Helper()
	var mu sync.RWMutex
	var h http.Handler = http.NotFoundHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		hh := h
		mu.RUnlock()
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func(nh http.Handler) { mu.Lock(); h = nh; mu.Unlock() }
}

// decodeJWT splits a compact JWS into its decoded header and payload.
func decodeJWT(t testing.TB, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	return header, payload
}

// golden compares got (JSON-marshalled, indented) with testdata/name, or
// rewrites it under -update.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	goldenBytes(t, name, append(b, '\n'))
}

// goldenJSON compares a JSON document as served (member order kept),
// indented for readable diffs.
func goldenJSON(t *testing.T, name string, raw []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v", name, err)
	}
	buf.WriteByte('\n')
	goldenBytes(t, name, buf.Bytes())
}

func goldenBytes(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if diff := cmp.Diff(string(want), string(b)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// postToken sends a token request and decodes the answer.
func postToken(t testing.TB, h http.Handler, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("answer is not JSON: %q", w.Body.String())
	}
	return w.Code, w.Header(), out
}
