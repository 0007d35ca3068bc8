package contract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/testenv"
)

// Credentials of the bootstrap administrator in every test server.
const (
	adminKeyID  = "AKIAKEYLESSTESTADMIN"
	adminSecret = "keyless-test-admin-secret-0123456789abcd"
	accountID   = "123456789012"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyless-contract-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "keyless")
	build := exec.Command("go", "build", "-o", binary, "github.com/keylessci/keyless/cmd/keyless")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building keyless:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `keyless serve` child process.
type server struct {
	URL     string
	Data    string
	cmd     *exec.Cmd
	logs    *syncBuffer
	exited  chan error
	account string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs keyless serve on a free loopback port with a fresh data
// dir (or the given one) and waits until it is ready. "{PORT}" in args is
// replaced by the port (for --issuer-url).
func startServer(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	return startServerAccount(t, dataDir, accountID, args...)
}

// startServerAccount is startServer for another account id.
func startServerAccount(t *testing.T, dataDir, account string, args ...string) *server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	return startKeylessOn(t, freePort(t), dataDir, account, nil, args...)
}

// startKeylessOn runs keyless serve on a given loopback port with extra
// environment variables (later ones win; none from t.Setenv, so tests
// stay parallel) and waits until it is ready (account "": the data dir's
// own, or a new random one): a test can restart a server
// on the same data dir and port, so with the same issuer URL.
func startKeylessOn(t *testing.T, port, dataDir, account string, env []string, args ...string) *server {
	t.Helper()
	args = append([]string(nil), args...)
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "{PORT}", port)
	}
	all := []string{"serve", "--listen", "127.0.0.1:" + port, "--data", dataDir, "--log-level", "debug"}
	if account != "" {
		all = append(all, "--account-id", account)
	}
	cmd := exec.Command(binary, append(all, args...)...)
	cmd.Env = append(append(os.Environ(),
		"KEYLESS_ADMIN_ACCESS_KEY_ID="+adminKeyID,
		"KEYLESS_ADMIN_SECRET_ACCESS_KEY="+adminSecret,
	), env...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{URL: "http://127.0.0.1:" + port, Data: dataDir, cmd: cmd, logs: logs, exited: make(chan error, 1), account: account}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("server %s log:\n%s", s.URL, tail(logs.String(), 60))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.exited:
			t.Fatalf("keyless serve exited early: %v\n%s", err, logs.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond); err == nil {
			c.Close()
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("keyless serve did not start:\n%s", logs.String())
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("keyless serve did not exit cleanly on SIGTERM: %v", err)
		}
		s.exited <- err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("keyless serve did not stop within 30s of SIGTERM")
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// cliResult is the outcome of one AWS CLI run.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// JSON decodes stdout.
func (r cliResult) JSON(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("aws output is not JSON: %v\n%s", err, r.Stdout)
	}
	return v
}

// ErrorCode extracts "(Code)" from the CLI's "An error occurred (Code) ..." line.
func (r cliResult) ErrorCode() string {
	i := strings.Index(r.Stderr, "An error occurred (")
	if i < 0 {
		return ""
	}
	rest := r.Stderr[i+len("An error occurred ("):]
	j := strings.IndexByte(rest, ')')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// awsEnv is the environment for an AWS CLI or boto3 process: isolated
// config files, the given credentials, no retries that would hide errors.
func awsEnv(t *testing.T, keyID, secret, token string) []string {
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_MAX_ATTEMPTS=1",
		"AWS_RETRY_MODE=standard",
		"AWS_PAGER=",
	}
	for _, k := range []string{"PYENV_ROOT", "PYENV_VERSION", "LANG", "LC_ALL"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if keyID != "" {
		env = append(env, "AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secret)
	}
	if token != "" {
		env = append(env, "AWS_SESSION_TOKEN="+token)
	}
	return env
}

// aws runs the real AWS CLI against url with env.
func awsCLI(t *testing.T, url string, env []string, args ...string) cliResult {
	t.Helper()
	bin := testenv.RequireCommand(t, "aws")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append(append([]string{}, args...), "--endpoint-url", url, "--output", "json")
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("aws %v: %v", args, err)
	}
	return cliResult{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// adminAWS runs the CLI as the bootstrap administrator.
func (s *server) aws(t *testing.T, args ...string) cliResult {
	t.Helper()
	return awsCLI(t, s.URL, awsEnv(t, adminKeyID, adminSecret, ""), args...)
}

// wantAWSError runs the CLI and checks it failed with code.
func wantAWSError(t *testing.T, r cliResult, code string) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("succeeded, want %s:\n%s", code, r.Stdout)
	}
	if got := r.ErrorCode(); got != code {
		t.Fatalf("error code %q, want %q:\n%s", got, code, r.Stderr)
	}
}

// scanLines returns the JSON log lines of the server that carry msg.
func (s *server) logLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}
