package server

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/keyring"
)

func openTestData(t *testing.T, dir, envKey string, init bool) (*Data, error) {
	t.Helper()
	cfg := Defaults()
	cfg.Data = dir
	getenv := func(k string) string {
		if k == "KEYLESS_MASTER_KEY" {
			return envKey
		}
		return ""
	}
	d, err := OpenData(context.Background(), cfg, getenv, rand.Reader, init)
	if err == nil {
		t.Cleanup(func() { d.Store.Close() })
	}
	return d, err
}

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestOpenDataRefusesMissingStore: without init a directory without
// keyless.db is refused (nothing is created, not even the directory) with
// a *NoStoreError; with init it becomes a new data dir.
func TestOpenDataRefusesMissingStore(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "keyless-data")
	_, err := openTestData(t, dir, "", false)
	var nse *NoStoreError
	if !errors.As(err, &nse) || !errors.Is(err, ErrNoStore) || !nse.CanInit {
		t.Fatalf("err = %v, want a *NoStoreError with CanInit", err)
	}
	for _, want := range []string{dir, "did you mean", "pass --init to create a new data dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if exists(t, dir) {
		t.Fatal("the refused data dir was created")
	}
	d, err := openTestData(t, dir, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Created || !exists(t, DBPath(dir)) || !exists(t, MasterKeyPath(dir)) {
		t.Fatalf("init: created=%v, store %v, key %v", d.Created, exists(t, DBPath(dir)), exists(t, MasterKeyPath(dir)))
	}
	d.Store.Close()
	d2, err := openTestData(t, dir, "", false)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	if d2.Created || d2.Master.ID() != d.Master.ID() {
		t.Errorf("reopened: created=%v, key %s then %s", d2.Created, d.Master.ID(), d2.Master.ID())
	}
}

// TestOpenDataSuggestsNearbyStores: the error names the data dirs a typo
// probably meant: a sibling with a close name first, the data dir a path
// points inside of, a data dir inside the given one.
func TestOpenDataSuggestsNearbyStores(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"keyless-data", "prod-store"} {
		if _, err := openTestData(t, filepath.Join(root, name), "", true); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{dir: filepath.Join(root, "keyles-data"), want: []string{filepath.Join(root, "keyless-data"), filepath.Join(root, "prod-store")}},
		{dir: filepath.Join(root, "keyless-data", "audit"), want: []string{filepath.Join(root, "keyless-data")}},
		{dir: root, want: []string{filepath.Join(root, "keyless-data"), filepath.Join(root, "prod-store")}},
	} {
		_, err := openTestData(t, tc.dir, "", false)
		nse, ok := errors.AsType[*NoStoreError](err)
		if !ok {
			t.Fatalf("%s: err = %v", tc.dir, err)
		}
		if diff := cmp.Diff(tc.want, nse.Nearby); diff != "" {
			t.Errorf("%s: suggestions (-want +got):\n%s", tc.dir, diff)
		}
		if !strings.Contains(err.Error(), "did you mean "+tc.want[0]) {
			t.Errorf("%s: error %q does not suggest %s", tc.dir, err, tc.want[0])
		}
	}
	if got := asWritten("./keyles-data", "keyless-data"); got != "./keyless-data" {
		t.Errorf("asWritten = %q", got)
	}
}

// TestOpenDataEnvMasterKey: a data dir created with KEYLESS_MASTER_KEY
// never gets a master.key file, not at creation and not when a later run
// forgets the variable (that run fails and says the store was created with
// the variable); the variable and a key file that disagree stop keyless.
func TestOpenDataEnvMasterKey(t *testing.T) {
	envKey, _ := keyring.GenerateMasterKey(rand.Reader)
	dir := filepath.Join(t.TempDir(), "data")
	d, err := openTestData(t, dir, envKey, true)
	if err != nil {
		t.Fatal(err)
	}
	if d.MasterKeySource != "KEYLESS_MASTER_KEY" || !d.Created {
		t.Errorf("source %q created %v", d.MasterKeySource, d.Created)
	}
	d.Store.Close()
	if exists(t, MasterKeyPath(dir)) {
		t.Fatal("master.key written next to a store created with KEYLESS_MASTER_KEY")
	}
	for _, init := range []bool{false, true} {
		_, err = openTestData(t, dir, "", init)
		if err == nil || !strings.Contains(err.Error(), "created with its master key in KEYLESS_MASTER_KEY, which is not set") {
			t.Fatalf("init=%v without the variable: err = %v", init, err)
		}
		if exists(t, MasterKeyPath(dir)) {
			t.Fatalf("init=%v: a run without the variable wrote master.key", init)
		}
	}
	if _, err := openTestData(t, dir, envKey, false); err != nil {
		t.Fatalf("with the variable again: %v", err)
	}

	// A key file that disagrees with the variable.
	other, _ := keyring.GenerateMasterKey(rand.Reader)
	if err := os.WriteFile(MasterKeyPath(dir), []byte(other+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openTestData(t, dir, envKey, false)
	if !errors.Is(err, keyring.ErrMasterKeyConflict) || !strings.Contains(err.Error(), MasterKeyPath(dir)) {
		t.Fatalf("disagreeing keys: err = %v, want ErrMasterKeyConflict naming the file", err)
	}
	// The same key in both places is fine.
	if err := os.WriteFile(MasterKeyPath(dir), []byte(envKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openTestData(t, dir, envKey, false); err != nil {
		t.Fatalf("agreeing keys: %v", err)
	}
}

// TestOpenDataFileKeyThenEnv: a store created with a key file and opened
// with another key from the environment (and the file moved away) is
// refused as another key; a missing key file is explained, not recreated.
func TestOpenDataFileKeyThenEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	d, err := openTestData(t, dir, "", true)
	if err != nil {
		t.Fatal(err)
	}
	d.Store.Close()
	if err := os.Rename(MasterKeyPath(dir), MasterKeyPath(dir)+".moved"); err != nil {
		t.Fatal(err)
	}
	_, err = openTestData(t, dir, "", true)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "was created with the key in") {
		t.Fatalf("missing key file: err = %v", err)
	}
	if exists(t, MasterKeyPath(dir)) {
		t.Fatal("a new master.key was generated for an existing store")
	}
	other, _ := keyring.GenerateMasterKey(rand.Reader)
	_, err = openTestData(t, dir, other, false)
	if err == nil || !strings.Contains(err.Error(), "is not the one this data dir was created with") {
		t.Fatalf("another key: err = %v", err)
	}
}

func TestRequireStore(t *testing.T) {
	dir := t.TempDir()
	err := RequireStore(dir)
	nse, ok := errors.AsType[*NoStoreError](err)
	if !ok || nse.CanInit || strings.Contains(err.Error(), "--init") {
		t.Fatalf("err = %v, want a *NoStoreError without the --init hint", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if ok, err := HasStore(file); ok || err != nil {
		t.Errorf("HasStore(a file) = %v, %v", ok, err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"keyless-data", "keyles-data", 1}, {"kitten", "sitting", 3}, {"data", "atad", 2}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
