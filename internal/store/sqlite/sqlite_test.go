package sqlite_test

import (
	"context"
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
