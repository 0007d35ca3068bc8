package contract

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExitCodesThroughBinary (issue 12 item 6): 2 for every usage error,
// cobra's included, with a pointer to --help; 1 for failures; audit
// verify's own codes unchanged.
func TestExitCodesThroughBinary(t *testing.T) {
	t.Parallel()
	env := offlineEnv(t)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		args   []string
		want   int
		stderr string
	}{
		{[]string{"bogus"}, 2, "keyless: unknown command \"bogus\" for \"keyless\"\n"},
		{[]string{"admin", "lst-keys"}, 2, "keyless: unknown command \"lst-keys\" for \"keyless admin\" (did you mean list-keys?)\nRun 'keyless admin --help' for usage.\n"},
		{[]string{"serve", "--listn", "x"}, 2, "keyless: unknown flag: --listn\nRun 'keyless serve --help' for usage.\n"},
		{[]string{"audit", "verify", "a", "b"}, 2, "keyless: accepts 1 arg(s), received 2\nRun 'keyless audit verify --help' for usage.\n"},
		{[]string{"token", "mint"}, 2, "keyless: no server: give --endpoint-url or set AWS_ENDPOINT_URL_STS\nRun 'keyless token mint --help' for usage.\n"},
		{[]string{"assume", "--role-arn", "role", "--output", "env"}, 2, "--role-arn \"role\" is not an ARN"},
		{[]string{"admin", "list-keys", "--data", missing}, 1, "keyless: no keyless store in " + missing},
		{[]string{"audit", "verify", missing}, 2, "no digest public key"},
		{[]string{"admin"}, 0, ""},
	} {
		code, _, stderr := runKeyless(t, env, tc.args...)
		if code != tc.want || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("keyless %s: exit %d, want %d\nstderr %q\nwant   %q", strings.Join(tc.args, " "), code, tc.want, stderr, tc.stderr)
		}
	}
}

// imdsCounter is a stand-in EC2 instance-metadata endpoint that counts
// the requests it gets (AWS_EC2_METADATA_SERVICE_ENDPOINT points the SDK
// to it).
func imdsCounter(t *testing.T) (url string, calls *atomic.Int32) {
	calls = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no role here", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, calls
}

// TestTokenMintWithoutCredentials (issue 12 item 6): token mint without a
// key says which key it needs and how to give it, in one line, without
// asking EC2 instance metadata.
func TestTokenMintWithoutCredentials(t *testing.T) {
	t.Parallel()
	imds, calls := imdsCounter(t)
	for _, extra := range [][]string{nil, {"AWS_PROFILE=ci"}} {
		env := offlineEnv(t, append(extra, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds)...)
		code, stdout, stderr := runKeyless(t, env, "token", "mint", "--endpoint-url", "http://127.0.0.1:1", "--audience", "sts.amazonaws.com")
		want := "token mint signs its request with a keyless key and found none: give it an administrator key or an issuer-client key " +
			"(keyless admin create-key [--kind issuer-client --scope ISSUER]) as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile holding one with AWS_PROFILE\n"
		if code != 1 || stdout != "" || !strings.HasSuffix(stderr, want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("env %v: exit %d\nstderr %q\nwant suffix %q", extra, code, stderr, want)
		}
		if extra != nil && !strings.Contains(stderr, `the AWS profile "ci" (AWS_PROFILE) is in neither`) {
			t.Errorf("a missing profile is not named: %s", stderr)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("instance metadata was asked %d times", n)
	}
}

// TestServeConfigErrorsAndPrintConfig (issue 12 item 6): config file errors
// name the file, line and key path (and the nearest key); --print-config
// prints the merged configuration (defaults, file, environment, flags) as
// YAML with secrets masked and exits 0; boolean variables take the usual
// spellings or fail naming the variable; the sample keyless.yaml loads.
func TestServeConfigErrorsAndPrintConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:9999\naudit:\n  seal_intervl: 1m\nhttp:\n  max_body_bytes: 1MB\n"), 0o600)
	code, _, stderr := runKeyless(t, offlineEnv(t), "serve", "--config", bad)
	want := "keyless: config " + bad + ":3: audit.seal_intervl: unknown key; did you mean seal_interval?\n" +
		"config " + bad + ":5: http.max_body_bytes: want a whole number, got \"1MB\"\n"
	if code != 1 || stderr != want {
		t.Errorf("serve with a bad config: exit %d\n%s\nwant\n%s", code, stderr, want)
	}

	good := filepath.Join(dir, "keyless.yaml")
	os.WriteFile(good, []byte("listen: 127.0.0.1:9999\nregion: eu-north-1\naudit:\n  seal_interval: 1m\n"), 0o600)
	masterKey := newMasterKey(t)
	env := offlineEnv(t, "KEYLESS_LOG_LEVEL=debug", "KEYLESS_ALLOW_LOOPBACK_HTTP_ISSUERS=Yes", "KEYLESS_MASTER_KEY="+masterKey,
		"KEYLESS_ADMIN_ACCESS_KEY_ID="+adminKeyID, "KEYLESS_ADMIN_SECRET_ACCESS_KEY="+adminSecret)
	code, stdout, stderr := runKeyless(t, env, "serve", "--config", good, "--region", "eu-west-1", "--data", filepath.Join(dir, "never-created"), "--print-config")
	if code != 0 || stderr != "" {
		t.Fatalf("--print-config: exit %d %s", code, stderr)
	}
	var got map[string]any
	if err := yaml.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("--print-config output is not YAML: %v\n%s", err, stdout)
	}
	audit, _ := got["audit"].(map[string]any)
	logCfg, _ := got["log"].(map[string]any)
	if got["listen"] != "127.0.0.1:9999" || got["region"] != "eu-west-1" || logCfg["level"] != "debug" ||
		got["allow_loopback_http_issuers"] != true || audit["seal_interval"] != "1m" {
		t.Errorf("merged configuration wrong:\n%s", stdout)
	}
	if strings.Contains(stdout, masterKey) || strings.Contains(stdout, adminSecret) || !strings.Contains(stdout, "#   KEYLESS_MASTER_KEY: ******** (set)") {
		t.Errorf("secrets not masked:\n%s", stdout)
	}
	if pathExists(t, filepath.Join(dir, "never-created")) {
		t.Error("--print-config created the data dir")
	}
	// The printed configuration is a valid --config file.
	printed := filepath.Join(dir, "printed.yaml")
	os.WriteFile(printed, []byte(stdout), 0o600)
	if code, again, stderr := runKeyless(t, offlineEnv(t), "serve", "--config", printed, "--print-config"); code != 0 || !strings.Contains(again, "region: eu-west-1\n") {
		t.Errorf("printed config does not load back: exit %d %s", code, stderr)
	}

	code, _, stderr = runKeyless(t, offlineEnv(t, "KEYLESS_ALLOW_LOOPBACK_HTTP_ISSUERS=enabled"), "serve", "--print-config")
	if want := `keyless: KEYLESS_ALLOW_LOOPBACK_HTTP_ISSUERS="enabled": want true or false (also 1/0, yes/no, on/off, in any case)` + "\n"; code != 1 || stderr != want {
		t.Errorf("bad boolean: exit %d\n%q\nwant %q", code, stderr, want)
	}

	code, _, stderr = runKeyless(t, offlineEnv(t), "serve", "--config", "../../docs/keyless.yaml", "--print-config")
	if code != 0 {
		t.Errorf("the sample docs/keyless.yaml: exit %d %s", code, stderr)
	}
}
