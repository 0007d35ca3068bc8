package audit

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// t0 is the fixed start of test clocks.
var t0 = time.Date(2025, 4, 16, 2, 46, 56, 0, time.UTC)

const (
	testAccount = "123456789012"
	testRegion  = "us-east-1"
)

// testKeys caches the parsed test keys (parsing PKCS#8 costs a millisecond,
// which adds up in the byte-flip test).
var testKeys sync.Map

func loadKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	if k, ok := testKeys.Load(name); ok {
		return k.(*rsa.PrivateKey)
	}
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	testKeys.Store(name, k)
	return k.(*rsa.PrivateKey)
}

func testSigningKey(t testing.TB) SigningKey {
	t.Helper()
	sk, err := NewSigningKey(loadKey(t, "test-digest-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func testPublicKeys(t testing.TB) map[string]*rsa.PublicKey {
	k := loadKey(t, "test-digest-key.pem")
	return map[string]*rsa.PublicKey{Fingerprint(&k.PublicKey): &k.PublicKey}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedRand is a deterministic io.Reader safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func newRand(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return &lockedRand{r: rand.NewChaCha8(s)}
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// memHead is an in-memory HeadStore.
type memHead struct {
	mu    sync.Mutex
	h     *Head
	saves int
	all   []Head // every head saved, oldest first
}

func (m *memHead) Load(context.Context) (Head, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil {
		return Head{}, ErrNoHead
	}
	return *m.h, nil
}

func (m *memHead) Save(_ context.Context, h Head) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.h = &h
	m.saves++
	m.all = append(m.all, h)
	return nil
}

func (m *memHead) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}

func (m *memHead) get() *Head {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil {
		return nil
	}
	h := *m.h
	return &h
}

// testTrail bundles a trail with what the test needs to inspect it.
type testTrail struct {
	*Trail
	dir   string
	clock *clock
	head  *memHead
	opts  Options
}

// testMACKey authenticates the test trails' heads and seal states.
var testMACKey = []byte("keyless-audit-test-mac-key-32byt")

func testOptions(t testing.TB, dir string, c *clock, head HeadStore) Options {
	return Options{
		Dir:                dir,
		AccountID:          testAccount,
		Region:             testRegion,
		SigningKey:         testSigningKey(t),
		Head:               head,
		MACKey:             testMACKey,
		Now:                c.Now,
		Rand:               newRand(7),
		SealInterval:       -1,
		CheckpointInterval: -1,
	}
}

func openTrail(t testing.TB, dir string, c *clock, head *memHead, mod func(*Options)) *testTrail {
	t.Helper()
	o := testOptions(t, dir, c, head)
	if mod != nil {
		mod(&o)
	}
	tr, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	return &testTrail{Trail: tr, dir: dir, clock: c, head: head, opts: o}
}

func testBuilder(seed byte, c *clock) *Builder {
	return &Builder{AccountID: testAccount, Region: testRegion, Now: c.Now, Rand: newRand(seed)}
}

// callEvent makes a simple later-call event.
func callEvent(t testing.TB, b *Builder, name string) *Event {
	t.Helper()
	ev, err := b.APICall(Call{
		Source: SourceSTS, Name: name, SourceIP: "192.0.2.10", UserAgent: "aws-cli/2.15.0",
		RequestID: "req-" + name, ReadOnly: true,
		Identity: AssumedRole(Session{
			AccountID: testAccount, RoleName: "ci-deploy", RoleARN: "arn:aws:iam::123456789012:role/ci/ci-deploy",
			RoleID: "AROAEXAMPLEROLEID0001", SessionName: "build-42", AccessKeyID: "ASIAEXAMPLEKEYID0001",
			ProviderARN: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com", CreationDate: t0,
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func verifyTrail(t testing.TB, dir string, head *Head) *Report {
	t.Helper()
	rep, err := Verify(context.Background(), dir, VerifyOptions{PublicKeys: testPublicKeys(t), Head: head, MACKey: testMACKey, Now: func() time.Time { return t0.Add(48 * time.Hour) }})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

// readAll collects every event of a trail directory.
func readAll(t testing.TB, dir string) []Entry {
	t.Helper()
	var out []Entry
	for e, err := range Read(context.Background(), dir, ReadOptions{}) {
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// crash stops the trail the way a killed process would leave it: queued
// events are written (they are in the page cache either way), nothing is
// sealed, the lock is released.
func (t *Trail) crash() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	if t.stopSealer != nil {
		close(t.stopSealer)
		<-t.sealerDone
	}
	if t.stopCheckpointer != nil {
		close(t.stopCheckpointer)
		<-t.checkpointerDone
	}
	t.senders.Wait()
	close(t.reqs)
	<-t.writerDone
	if t.metrics != nil {
		t.metrics.unregister()
	}
	t.lock.Close()
	t.root.Close()
	t.closeOnce.Do(func() { t.closeErr = ErrClosed })
}

// segments lists the journal segment paths of a trail directory.
func segments(t testing.TB, dir string) []string {
	t.Helper()
	segs, err := listSegments(testRoot(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		out = append(out, filepath.Join(dir, journalDir, s.Name))
	}
	return out
}

// testRoot opens a trail directory for the package's internal helpers.
func testRoot(t testing.TB, dir string) *trailRoot {
	t.Helper()
	r, err := openTrailRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// loadTestState reads a trail's seal state.
func loadTestState(t testing.TB, dir string) *sealState {
	t.Helper()
	st, err := loadState(testRoot(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// writeTestState replaces a trail's seal state as an attacker without the
// key would (mac false: the MAC is left as it was), or as the trail would.
func writeTestState(t testing.TB, dir string, st *sealState, mac bool) {
	t.Helper()
	if mac {
		st.Seq++
		m, err := stateMAC(testMACKey, st)
		if err != nil {
			t.Fatal(err)
		}
		st.MAC = m
	}
	if err := saveState(defaultSync, testRoot(t, dir), st); err != nil {
		t.Fatal(err)
	}
}

// appendFrameV1 appends a frame in the format written before frames were
// chained.
func appendFrameV1(dst []byte, seq uint64, payload []byte) []byte {
	var h [frameHeaderSizeV1]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:16], seq)
	binary.LittleEndian.PutUint32(h[4:8], frameCRC(h[8:16], payload))
	return append(append(dst, h[:]...), payload...)
}
