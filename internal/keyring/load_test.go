package keyring

import (
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadMasterEnvAndFile: KEYLESS_MASTER_KEY and a master key file are
// used together only when they agree; a disagreement is an error naming
// both key ids and the file, never one silently winning; and with the
// variable set no file is ever written.
func TestLoadMasterEnvAndFile(t *testing.T) {
	envKey, _ := GenerateMasterKey(rand.Reader)
	otherKey, _ := GenerateMasterKey(rand.Reader)
	envMaster, _ := ParseMaster(envKey)
	otherMaster, _ := ParseMaster(otherKey)
	for _, tc := range []struct {
		name     string
		file     *string // nil: no file
		create   bool
		wantID   string
		wantErr  error  // errors.Is target
		wantText string // substring of the error
	}{
		{name: "env alone", create: true, wantID: envMaster.ID()},
		{name: "env and the same key in the file", file: &envKey, wantID: envMaster.ID()},
		{name: "env and the same key with a newline", file: ptr(envKey + "\n"), wantID: envMaster.ID()},
		{name: "env and another key", file: &otherKey, create: true, wantErr: ErrMasterKeyConflict,
			wantText: "KEYLESS_MASTER_KEY is key " + envMaster.ID() + ", "},
		{name: "env and a broken file", file: ptr("not a key"), wantText: "holds no valid key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if tc.file != nil {
				if err := os.WriteFile(path, []byte(*tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m, err := LoadMaster(envKey, path, tc.create, rand.Reader)
			if tc.wantErr != nil || tc.wantText != "" {
				if err == nil {
					t.Fatalf("loaded key %s, want an error", m.ID())
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want errors.Is %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantText) || !strings.Contains(err.Error(), path) {
					t.Errorf("err = %q, want it to contain %q and the file %s", err, tc.wantText, path)
				}
				if tc.wantErr != nil && !strings.Contains(err.Error(), otherMaster.ID()) {
					t.Errorf("err = %q does not name the file's key id %s", err, otherMaster.ID())
				}
				if strings.Contains(err.Error(), envKey) || strings.Contains(err.Error(), otherKey) {
					t.Errorf("err leaks a key: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.ID() != tc.wantID {
				t.Errorf("key id %s, want %s", m.ID(), tc.wantID)
			}
			if tc.file == nil {
				if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a master key file was written although KEYLESS_MASTER_KEY is set (stat: %v)", err)
				}
			}
		})
	}
}

// TestLoadMasterMissingFile: without create a missing file is
// fs.ErrNotExist (OpenData explains it), and nothing is written.
func TestLoadMasterMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if _, err := LoadMaster("", path, false, rand.Reader); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file written without create: %v", err)
	}
}

func ptr(s string) *string { return &s }
