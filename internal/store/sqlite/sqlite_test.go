package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keylessci/keyless/internal/store"
	"github.com/keylessci/keyless/internal/store/sqlite"
	"github.com/keylessci/keyless/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyless.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyless.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Meta().PutIfAbsent(ctx, "account-id", "123456789012"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path) // migrations must be idempotent
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Meta().Get(ctx, "account-id"); err != nil || v != "123456789012" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
}

// TestPathWithURICharacters: a data dir whose name holds '#', '?' or '%'
// opens the database inside it, not a file named by the path's prefix.
func TestPathWithURICharacters(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	for _, dir := range []string{"a#1", "b?x=1", "c%41", "d#"} {
		p := filepath.Join(base, dir, "keyless.db")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		st, err := sqlite.Open(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if _, err := st.Meta().PutIfAbsent(ctx, "dir", dir); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: the database is not where asked: %v", dir, err)
		}
	}
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if !e.IsDir() {
			t.Errorf("a stray database file %s was created next to the data dirs", e.Name())
		}
	}
}
