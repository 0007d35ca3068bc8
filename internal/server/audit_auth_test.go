package server

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

// authServer starts and closes a server on data (its master key in
// DATA/master.key).
func authServer(t *testing.T, data string) {
	t.Helper()
	cfg := Defaults()
	cfg.Data = data
	cfg.AccountID = benchAcct
	s, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditHeadAuthenticated: the server keeps an authenticated head (MAC
// with a key derived from the master key) and verify authenticates it with
// that master key only.
func TestAuditHeadAuthenticated(t *testing.T) {
	data := t.TempDir()
	authServer(t, data)
	ctx := context.Background()

	st, err := sqlite.Open(ctx, DBPath(data))
	if err != nil {
		t.Fatal(err)
	}
	row, err := st.Meta().Get(ctx, auditHeadKey)
	st.Close()
	if err != nil || !strings.Contains(row, `"mac":`) {
		t.Fatalf("head row %q (%v) carries no MAC", row, err)
	}

	opts, err := OpenAuditVerifier(ctx, data) // DATA/master.key
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, AuditDir(data), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact || !rep.Authenticated {
		t.Fatalf("%s", rep)
	}

	text, _ := keyring.GenerateMasterKey(rand.Reader)
	other, _ := keyring.ParseMaster(text)
	if _, err := AuditVerifyOptions(ctx, data, other); !errors.Is(err, ErrWrongMasterKey) {
		t.Errorf("another master key: %v, want ErrWrongMasterKey", err)
	}
	opts, err = AuditVerifyOptions(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(ctx, AuditDir(data), opts); err != nil || rep.Intact || rep.Unauthenticated == "" {
		t.Errorf("without a master key: %v\n%s", err, rep)
	}
}

// TestResetAuditHead: a server refuses a data dir whose trail was moved
// away (the head is ahead of it); reset-head, which refuses while a trail
// is in place, lets it start a new trail.
func TestResetAuditHead(t *testing.T) {
	data := t.TempDir()
	authServer(t, data)
	ctx := context.Background()
	if _, err := ResetAuditHead(ctx, data); err == nil {
		t.Fatal("reset with the trail in place succeeded")
	}
	if err := os.Rename(AuditDir(data), filepath.Join(t.TempDir(), "old-audit")); err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.Data, cfg.AccountID = data, benchAcct
	if _, err := New(ctx, cfg, Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }}); !errors.Is(err, audit.ErrHeadAhead) {
		t.Fatalf("start without the trail: %v, want ErrHeadAhead", err)
	}
	old, err := ResetAuditHead(ctx, data)
	if err != nil || old == nil || old.MAC == "" {
		t.Fatalf("reset: %+v, %v", old, err)
	}
	authServer(t, data)
}
