package contract

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/keylessci/keyless/internal/testenv"
)

// cliRunner runs AWS CLI commands through testdata/awscli_runner.py: the
// CLI's own entry point in one long-lived Python process, so a scenario of
// fifty commands does not pay fifty interpreter start-ups.
type cliRunner struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Reader
	cmd *exec.Cmd
}

func newCLIRunner(t *testing.T) *cliRunner {
	t.Helper()
	testenv.RequireCommand(t, "aws")
	py := testenv.RequirePython(t, "awscli")
	cmd := exec.Command(py, "testdata/awscli_runner.py")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &cliRunner{in: in, out: bufio.NewReaderSize(out, 1<<20), cmd: cmd}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("awscli runner stderr:\n%s", stderr.String())
		}
	})
	return r
}

// run executes one CLI command with env (KEY=VALUE pairs) against url.
func (c *cliRunner) run(t *testing.T, url string, env []string, args ...string) cliResult {
	t.Helper()
	envMap := map[string]any{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		envMap[k] = v
	}
	// Credentials not given must not leak in from the test process.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		if _, ok := envMap[k]; !ok {
			envMap[k] = nil // unset
		}
	}
	full := append(append([]string{}, args...), "--endpoint-url", url, "--output", "json")
	line, err := json.Marshal(map[string]any{"args": full, "env": envMap})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.in.Write(append(line, '\n')); err != nil {
		t.Fatalf("awscli runner: %v", err)
	}
	resp, err := c.out.ReadBytes('\n')
	if err != nil {
		t.Fatalf("awscli runner: %v", err)
	}
	var r struct {
		Code   int    `json:"code"`
		Stdout string `json:"stdout"`
		Stderr string `json:"stderr"`
	}
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatalf("awscli runner: %v: %s", err, resp)
	}
	return cliResult{Stdout: r.Stdout, Stderr: r.Stderr, Code: r.Code}
}
