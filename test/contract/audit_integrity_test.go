package contract

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/store/sqlite"
)

// The audit trail against someone who can write the data dir but does not
// hold the master key (issue 11, items 6 to 8), through a real keyless
// serve and keyless audit verify. The master key is kept outside the data
// dir (master_key_file), as production should.

type integrityEnv struct {
	f    *federation
	data string
	keys string // holds master.key, outside the data dir
	cfg  string
}

// newIntegrityEnv registers a provider and a role, then moves the master
// key out of the data dir. sealInterval is the audit seal interval.
func newIntegrityEnv(t *testing.T, sealInterval string) *integrityEnv {
	t.Helper()
	f := newFederation(t)
	f.srv.stop(t)
	e := &integrityEnv{f: f, data: f.srv.Data, keys: t.TempDir()}
	if err := os.Rename(filepath.Join(e.data, "master.key"), filepath.Join(e.keys, "master.key")); err != nil {
		t.Fatal(err)
	}
	e.cfg = filepath.Join(e.keys, "keyless.yaml")
	cfg := fmt.Sprintf("master_key_file: %s\naudit:\n  seal_interval: %s\n", filepath.Join(e.keys, "master.key"), sealInterval)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *integrityEnv) start(t *testing.T) *server {
	t.Helper()
	return startServer(t, e.data, "--allow-loopback-http-issuers", "--config", e.cfg)
}

// exchange runs n exchanges (each one durably recorded before it answers).
func (e *integrityEnv) exchange(t *testing.T, s *server, n int) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range n {
		if _, _, err := exchangeHTTP(client, s.URL, e.f.roleARN, fmt.Sprint("integrity-", i), e.f.token(t, "repo:octo-org/app:ref:refs/heads/main")); err != nil {
			t.Fatal(err)
		}
	}
}

func kill9(t *testing.T, s *server) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	s.exited <- nil
}

// clone copies the data dir (server stopped) for one attack.
func (e *integrityEnv) clone(t *testing.T) *integrityEnv {
	t.Helper()
	c := *e
	c.data = t.TempDir()
	copyTree(t, e.data, c.data)
	return &c
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serveRefused runs keyless serve and expects it to refuse to start.
func (e *integrityEnv) serveRefused(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--listen", "127.0.0.1:"+freePort(t), "--data", e.data, "--account-id", accountID,
		"--allow-loopback-http-issuers", "--config", e.cfg)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ctx.Err() != nil {
		t.Fatalf("keyless serve did not refuse to start (%v):\n%s", err, out)
	}
	return string(out)
}

// verify runs keyless audit verify on the data dir, with the master key
// (from outside the data dir) or without any.
func (e *integrityEnv) verify(t *testing.T, withKey bool) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, "audit", "verify", e.data)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYLESS_MASTER_KEY") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if withKey {
		cmd.Env = append(cmd.Env, "KEYLESS_MASTER_KEY_FILE="+filepath.Join(e.keys, "master.key"))
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("keyless audit verify: %v", err)
	return "", 0
}

func (e *integrityEnv) wantVerify(t *testing.T, withKey bool, code int, contains ...string) {
	t.Helper()
	out, got := e.verify(t, withKey)
	if got != code {
		t.Fatalf("keyless audit verify exited %d, want %d:\n%s", got, code, out)
	}
	for _, s := range contains {
		if !strings.Contains(out, s) {
			t.Errorf("keyless audit verify output lacks %q:\n%s", s, out)
		}
	}
}

func (e *integrityEnv) auditPath(parts ...string) string {
	return filepath.Join(append([]string{e.data, "audit"}, parts...)...)
}

func (e *integrityEnv) editState(t *testing.T, edit func(m map[string]any)) {
	t.Helper()
	p := e.auditPath("journal", "seal-state.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// head reads or rewrites the audit head row of the store, as a data-dir
// writer can.
func (e *integrityEnv) head(t *testing.T) map[string]any {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(e.data, "keyless.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := st.Meta().Get(context.Background(), "audit-head")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *integrityEnv) putHead(t *testing.T, m map[string]any) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(e.data, "keyless.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, _ := json.Marshal(m)
	if err := st.Meta().Put(context.Background(), "audit-head", string(b)); err != nil {
		t.Fatal(err)
	}
}

func gunzipPath(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipTo(t *testing.T, p string, data []byte) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fileSnapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "%s %x\n", p, sha256.Sum256(c))
		}
		return nil
	})
	return b.String()
}

// TestAuditIntegrityPathsConfined (item 6): the data dir is not a way to
// delete files. Before the fix, an intent list naming the master key made
// the next start delete it, and a journal/tmp link made the start empty the
// linked directory.
func TestAuditIntegrityPathsConfined(t *testing.T) {
	t.Parallel()
	e := newIntegrityEnv(t, "1h")
	s := e.start(t)
	e.exchange(t, s, 2)
	s.stop(t)
	masterKey := filepath.Join(e.keys, "master.key")
	// The intent names the master key relative to the trail directory.
	fromAudit := func(t *testing.T, a *integrityEnv) string {
		rel, err := filepath.Rel(a.auditPath(), masterKey)
		if err != nil {
			t.Fatal(err)
		}
		return rel
	}

	t.Run("journal/tmp is a link", func(t *testing.T) {
		a := e.clone(t)
		victim := t.TempDir()
		for _, n := range []string{"w-1.tmp", "keep.txt"} {
			os.WriteFile(filepath.Join(victim, n), []byte("keep me"), 0o600)
		}
		tmp := a.auditPath("journal", "tmp")
		if err := os.RemoveAll(tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, tmp); err != nil {
			t.Fatal(err)
		}
		before := fileSnapshot(t, victim)
		out := a.serveRefused(t)
		if !strings.Contains(out, "journal/tmp is a symbolic link") {
			t.Errorf("start refused without saying why:\n%s", out)
		}
		if fileSnapshot(t, victim) != before {
			t.Error("the linked directory was changed")
		}
		a.wantVerify(t, true, 1, "unsafe-path journal/tmp")
	})

	t.Run("intent names the master key (authenticated state)", func(t *testing.T) {
		a := e.clone(t)
		a.editState(t, func(m map[string]any) { m["intent"] = map[string]any{"files": []string{fromAudit(t, a)}} })
		out := a.serveRefused(t)
		if !strings.Contains(out, "seal-state.json") || !strings.Contains(out, "does not authenticate") {
			t.Errorf("start refused without saying why:\n%s", out)
		}
		if _, err := os.Stat(masterKey); err != nil {
			t.Fatalf("master key: %v", err)
		}
		a.wantVerify(t, true, 1, "seal-state-unauthenticated")
	})

	t.Run("intent names the master key (data dir written before authentication)", func(t *testing.T) {
		a := e.clone(t)
		victim := fromAudit(t, a)
		// What keyless wrote before: a version-1 state without MAC and a
		// head row of the four digest fields.
		a.editState(t, func(m map[string]any) {
			for _, k := range []string{"seq", "headSeq", "sealedChain", "keys", "mac"} {
				delete(m, k)
			}
			m["version"] = 1
			m["intent"] = map[string]any{"files": []string{victim}}
		})
		h := a.head(t)
		a.putHead(t, map[string]any{"digestS3Object": h["digestS3Object"], "digestEndTime": h["digestEndTime"], "hashValue": h["hashValue"], "signature": h["signature"]})
		out := a.serveRefused(t)
		if !strings.Contains(out, "unsafe path") || !strings.Contains(out, "seal-state.json") || !strings.Contains(out, victim) {
			t.Errorf("start refused without naming the file and the path:\n%s", out)
		}
		if _, err := os.Stat(masterKey); err != nil {
			t.Fatalf("master key: %v", err)
		}
	})

	// The untouched data dir still starts and verifies.
	s = e.start(t)
	s.stop(t)
	e.wantVerify(t, true, 0, ": intact")
}

// TestAuditIntegrityHeadRollback (item 7): deleting the newest digest and
// its files and rewriting the head row made verify say intact. Now verify
// needs the master key, says NOT AUTHENTICATED (exit 2) without it, reports
// a rewritten head (exit 1), and keyless serve refuses the trail.
func TestAuditIntegrityHeadRollback(t *testing.T) {
	t.Parallel()
	e := newIntegrityEnv(t, "1h")
	var older map[string]any // a genuine head, from before the second run
	// Each clean stop seals and signs a digest.
	for range 2 {
		s := e.start(t)
		e.exchange(t, s, 2)
		s.stop(t)
		if older == nil {
			older = e.head(t)
		}
	}
	e.wantVerify(t, true, 0, ": intact", "head: authenticated")
	e.wantVerify(t, false, 2, "NOT AUTHENTICATED")

	// The attack: newest digest and its delivery files deleted, the head
	// row pointed at the previous digest.
	rollBack := func(t *testing.T, a *integrityEnv) map[string]any {
		h := a.head(t)
		newest := a.auditPath(filepath.FromSlash(h["digestS3Object"].(string)))
		var d struct {
			DigestStartTime         string `json:"digestStartTime"`
			PreviousDigestS3Object  string `json:"previousDigestS3Object"`
			PreviousDigestHashValue string `json:"previousDigestHashValue"`
			PreviousDigestSignature string `json:"previousDigestSignature"`
			LogFiles                []struct {
				S3Object string `json:"s3Object"`
			} `json:"logFiles"`
		}
		if err := json.Unmarshal(gunzipPath(t, newest), &d); err != nil {
			t.Fatal(err)
		}
		for _, lf := range d.LogFiles {
			os.Remove(a.auditPath(filepath.FromSlash(lf.S3Object)))
		}
		if err := os.Remove(newest); err != nil {
			t.Fatal(err)
		}
		h["digestS3Object"], h["digestEndTime"] = d.PreviousDigestS3Object, d.DigestStartTime
		h["hashValue"], h["signature"] = d.PreviousDigestHashValue, d.PreviousDigestSignature
		return h
	}
	t.Run("head rewritten", func(t *testing.T) {
		a := e.clone(t)
		a.putHead(t, rollBack(t, a))
		a.wantVerify(t, true, 1, "NOT INTACT", "head-unauthenticated")
		a.wantVerify(t, false, 2, "NOT AUTHENTICATED")
		if out := a.serveRefused(t); !strings.Contains(out, "does not authenticate") {
			t.Errorf("start refused without saying why:\n%s", out)
		}
	})
	t.Run("an older genuine head put back", func(t *testing.T) {
		a := e.clone(t)
		rollBack(t, a)
		a.putHead(t, older)
		a.wantVerify(t, true, 1, "rolled-back")
		if out := a.serveRefused(t); !strings.Contains(out, "an older head was put back") {
			t.Errorf("start refused without saying why:\n%s", out)
		}
	})
	t.Run("head rewritten in the old unauthenticated form", func(t *testing.T) {
		a := e.clone(t)
		h := rollBack(t, a)
		a.putHead(t, map[string]any{"digestS3Object": h["digestS3Object"], "digestEndTime": h["digestEndTime"], "hashValue": h["hashValue"], "signature": h["signature"]})
		a.wantVerify(t, true, 1, "head-unauthenticated")
		if out := a.serveRefused(t); !strings.Contains(out, "has no MAC") {
			t.Errorf("start refused without saying why:\n%s", out)
		}
	})
}

// TestAuditIntegrityCrashLaundering (item 8): after kill -9, cutting synced
// events from the journal, or rewriting a delivery file awaiting its digest
// together with its hash in seal-state.json, passed verify and the server
// went on to sign the result. Now both are reported and the server refuses
// to start.
func TestAuditIntegrityCrashLaundering(t *testing.T) {
	t.Parallel()
	t.Run("journal cut", func(t *testing.T) {
		e := newIntegrityEnv(t, "1h")
		s := e.start(t)
		e.exchange(t, s, 12)
		time.Sleep(2 * time.Second) // the head checkpoints the journal every second
		kill9(t, s)

		segs, _ := filepath.Glob(e.auditPath("journal", "*.wal"))
		if len(segs) == 0 {
			t.Fatal("no journal segment")
		}
		ok := e.clone(t)
		seg := segs[len(segs)-1]
		fi, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(seg, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		e.wantVerify(t, true, 1, "journal-truncated")
		if out := e.serveRefused(t); !strings.Contains(out, "journal lost acknowledged events") || !strings.Contains(out, "reset-head") {
			t.Errorf("start refused without saying why and what to do:\n%s", out)
		}
		// The same crash, untouched: recovers and verifies.
		s = ok.start(t)
		s.stop(t)
		ok.wantVerify(t, true, 0, ": intact")

		// What the operator does: keep the damaged trail, reset the head,
		// start a new trail.
		if out, err := exec.Command(binary, "audit", "reset-head", e.data).CombinedOutput(); err == nil {
			t.Fatalf("reset-head with the trail still in place succeeded:\n%s", out)
		}
		if err := os.Rename(e.auditPath(), filepath.Join(t.TempDir(), "evidence")); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(binary, "audit", "reset-head", e.data).CombinedOutput(); err != nil || !strings.Contains(string(out), "forgot the audit head") {
			t.Fatalf("reset-head: %v\n%s", err, out)
		}
		s = e.start(t)
		e.exchange(t, s, 1)
		s.stop(t)
		e.wantVerify(t, true, 0, ": intact")
	})
	t.Run("pending file rewritten", func(t *testing.T) {
		e := newIntegrityEnv(t, "300ms")
		s := e.start(t)
		e.exchange(t, s, 4)
		time.Sleep(1500 * time.Millisecond) // sealed into a delivery file awaiting the hourly digest
		kill9(t, s)

		var st struct {
			Pending []struct {
				Path string `json:"path"`
			} `json:"pending"`
		}
		b, err := os.ReadFile(e.auditPath("journal", "seal-state.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &st); err != nil || len(st.Pending) == 0 {
			t.Fatalf("no pending delivery file (%v): %s", err, b)
		}
		p := e.auditPath(filepath.FromSlash(st.Pending[0].Path))
		var doc struct {
			Records []json.RawMessage `json:"Records"`
		}
		if err := json.Unmarshal(gunzipPath(t, p), &doc); err != nil {
			t.Fatal(err)
		}
		doc.Records = doc.Records[1:] // an exchange laundered away
		content, _ := json.Marshal(doc)
		gzipTo(t, p, content)
		sum := sha256.Sum256(content)
		e.editState(t, func(m map[string]any) {
			m["pending"].([]any)[0].(map[string]any)["hashValue"] = hex.EncodeToString(sum[:])
		})
		digests := fileSnapshot(t, e.auditPath("AWSLogs"))
		e.wantVerify(t, true, 1, "seal-state-unauthenticated")
		if out := e.serveRefused(t); !strings.Contains(out, "does not authenticate") {
			t.Errorf("start refused without saying why:\n%s", out)
		}
		if fileSnapshot(t, e.auditPath("AWSLogs")) != digests {
			t.Error("the refused start wrote to the trail")
		}
	})
}
