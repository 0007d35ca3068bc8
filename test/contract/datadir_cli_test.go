package contract

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runKeyless runs the keyless binary with env and returns its exit status
// (0 when it succeeded) and output.
func runKeyless(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatalf("keyless %v: %v", args, err)
	}
	return 0, out.String(), errb.String()
}

// offlineEnv is the environment of an operator's shell: no AWS or KEYLESS_*
// settings beyond extra.
func offlineEnv(t *testing.T, extra ...string) []string {
	return append(awsEnv(t, "", "", ""), extra...)
}

func newMasterKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func pathExists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestOfflineCommandsRefuseMissingStore (issue 12 item 5): admin, issuer
// and sts rotate-session-key refuse a --data that holds no keyless store,
// name it and the data dir it probably meant, create nothing, and exit 1;
// with --init they create a new data dir. keyless serve creates one on
// first start and says so in its log.
func TestOfflineCommandsRefuseMissingStore(t *testing.T) {
	t.Parallel()
	s := startServer(t, filepath.Join(t.TempDir(), "keyless-data"))
	if lines := s.logLines("created a new data dir (a new, empty store): if this server should have existing roles and keys, stop it and check --data"); len(lines) != 1 || lines[0]["level"] != "WARN" {
		t.Errorf("serve on a new data dir logged %v", lines)
	}
	typo := filepath.Join(filepath.Dir(s.Data), "keyles-data")
	env := offlineEnv(t)
	for _, args := range [][]string{
		{"admin", "list-keys", "--data", typo},
		{"admin", "create-key", "--name", "ops", "--data", typo},
		{"issuer", "keys", "--issuer-url", "https://keyless.example.com/oidc", "--data", typo},
		{"sts", "rotate-session-key", "--data", typo},
	} {
		code, stdout, stderr := runKeyless(t, env, args...)
		want := "keyless: no keyless store in " + typo + " (it has no keyless.db): did you mean " + s.Data + "? pass --init to create a new data dir\n"
		if code != 1 || stderr != want || stdout != "" {
			t.Errorf("keyless %s: exit %d\nstdout %q\nstderr %q\nwant   %q", strings.Join(args, " "), code, stdout, stderr, want)
		}
		if pathExists(t, typo) {
			t.Fatalf("keyless %s created %s", strings.Join(args, " "), typo)
		}
	}
	// The data dir keyless serve made is accepted as it is.
	if code, _, stderr := runKeyless(t, env, "admin", "list-keys", "--data", s.Data); code != 0 {
		t.Errorf("admin list-keys on the server's data dir: exit %d %s", code, stderr)
	}
	// --init makes a new one.
	code, stdout, stderr := runKeyless(t, env, "admin", "create-key", "--name", "ops", "--init", "--data", typo)
	if code != 0 || !strings.Contains(stdout, "AWS_ACCESS_KEY_ID=") {
		t.Fatalf("create-key --init: exit %d %s", code, stderr)
	}
	if !pathExists(t, filepath.Join(typo, "keyless.db")) || !pathExists(t, filepath.Join(typo, "master.key")) {
		t.Error("--init did not create the store and master key")
	}
	// audit reset-head and audit verify --data read a store and never make one.
	empty := filepath.Join(t.TempDir(), "nothing")
	if code, _, stderr := runKeyless(t, env, "audit", "reset-head", empty); code != 2 || !strings.Contains(stderr, "no keyless store in "+empty) || pathExists(t, empty) {
		t.Errorf("audit reset-head on a missing store: exit %d %s", code, stderr)
	}
}

// TestMasterKeyFromEnvironment (issue 12 item 5): a data dir created with
// KEYLESS_MASTER_KEY never gets a master.key file, also not from a later
// command run without the variable (that run fails and says why); when the
// variable and a master.key file disagree, keyless serve and the offline
// commands stop with an error naming both key ids instead of one winning.
func TestMasterKeyFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	key := newMasterKey(t)
	withKey := offlineEnv(t, "KEYLESS_MASTER_KEY="+key)
	if code, _, stderr := runKeyless(t, withKey, "admin", "create-key", "--name", "ops", "--init", "--data", dir); code != 0 {
		t.Fatalf("create-key --init with KEYLESS_MASTER_KEY: exit %d %s", code, stderr)
	}
	masterFile := filepath.Join(dir, "master.key")
	if pathExists(t, masterFile) {
		t.Fatal("master.key written next to a store created with KEYLESS_MASTER_KEY")
	}
	code, _, stderr := runKeyless(t, offlineEnv(t), "admin", "list-keys", "--data", dir)
	if want := "keyless: " + dir + " was created with its master key in KEYLESS_MASTER_KEY, which is not set: set it to that key (keyless never writes that key to a file)\n"; code != 1 || stderr != want {
		t.Errorf("without the variable: exit %d\n%q\nwant %q", code, stderr, want)
	}
	if pathExists(t, masterFile) {
		t.Fatal("a run without KEYLESS_MASTER_KEY wrote master.key")
	}
	// The server works from the variable alone.
	s := startServerEnv(t, dir, "KEYLESS_MASTER_KEY="+key)
	s.stop(t)
	if pathExists(t, masterFile) {
		t.Fatal("keyless serve wrote master.key although KEYLESS_MASTER_KEY is set")
	}

	// A master.key that disagrees with the variable.
	if err := os.WriteFile(masterFile, []byte(newMasterKey(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"admin", "list-keys", "--data", dir},
		{"serve", "--data", dir, "--listen", "127.0.0.1:" + freePort(t)},
	} {
		code, _, stderr := runKeyless(t, withKey, args...)
		if code != 1 || !strings.Contains(stderr, "keyless: keyring: KEYLESS_MASTER_KEY and the master key file hold different keys: KEYLESS_MASTER_KEY is key ") ||
			!strings.Contains(stderr, masterFile+" holds key ") || strings.Contains(stderr, key) {
			t.Errorf("keyless %s with disagreeing keys: exit %d\n%s", args[0], code, stderr)
		}
	}
}

// startServerEnv is startServer with extra environment variables (the
// harness's startServer passes the test's own environment).
func startServerEnv(t *testing.T, dataDir string, env ...string) *server {
	t.Helper()
	return startKeylessOn(t, freePort(t), dataDir, "", env)
}
