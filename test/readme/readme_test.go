package readme

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/testenv"
)

// binDir holds the keyless binary built from this checkout; the README's
// blocks find it first on PATH (what its install block does).
var binDir string

// TestMain makes the directory the binary is built into (by keylessBinary,
// on first use, so that the documentation checks need no build) and
// removes it afterwards.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyless-readme-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// keylessBinary builds keyless from this checkout into binDir, once.
func keylessBinary(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "keyless"), "github.com/keylessci/keyless/cmd/keyless").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building keyless: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// runTimeout bounds the whole README run.
const runTimeout = 90 * time.Second

// TestREADMERunsAsWritten (issue 12 item 2) pastes the README's shell
// blocks, in order, into one bash, as a newcomer would on a fresh machine:
// a fresh HOME, no AWS configuration, keyless first on PATH. The only
// substitutions are the two variables the README itself documents for it,
// KEYLESS_LISTEN (a free port) and KEYLESS_DATA (a temporary directory).
// The README starts its own `keyless serve`. The test fails on the first
// block that fails, printing it and what it printed.
//
// sh/bash blocks run under `set -eo pipefail`, so a failing command anywhere
// in a block fails it. In a console block each "$ " command runs and each
// line shown under it must be a line of what it printed, "..." standing for
// any text (its exit status is then not checked: console blocks show
// refusals); a command shown without output must succeed.
func TestREADMERunsAsWritten(t *testing.T) {
	bash := testenv.RequireCommand(t, "bash")
	testenv.RequireCommand(t, "aws")
	testenv.RequireCommand(t, "curl")
	keylessBinary(t)
	blocks, _, err := readMarkdown("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var run []block
	for _, b := range blocks {
		if b.shell() && !b.marked(noRun) {
			run = append(run, b)
		}
	}
	if len(run) < 5 {
		t.Fatalf("only %d runnable shell blocks in the README: the quick start is gone?", len(run))
	}

	work := t.TempDir() // the directory the blocks are pasted in
	scripts := t.TempDir()
	home := t.TempDir()
	data := filepath.Join(t.TempDir(), "keyless-data")
	listen := "127.0.0.1:" + freePort(t)

	// The driver sources each block in the same shell (variables, the
	// working directory and background jobs carry over, as in a terminal)
	// and records progress on fd 3.
	var driver strings.Builder
	driver.WriteString("set -eo pipefail\n")
	type step struct {
		block   block
		console []consoleStep
	}
	steps := make([]step, len(run))
	for i, b := range run {
		steps[i].block = b
		fmt.Fprintf(&driver, "echo 'start %d' >&3\n", i)
		if b.Lang != "console" {
			f := filepath.Join(scripts, fmt.Sprintf("b%d.sh", i))
			writeFile(t, f, b.Body)
			fmt.Fprintf(&driver, "source %q > %q 2>&1\n", f, f+".out")
			fmt.Fprintf(&driver, "echo 'ok %d' >&3\n", i)
			continue
		}
		cs, err := consoleSteps(b.Body)
		if err != nil {
			t.Fatalf("%s:%d: %v", b.File, b.Line, err)
		}
		steps[i].console = cs
		driver.WriteString("set +e\n")
		for j, c := range cs {
			f := filepath.Join(scripts, fmt.Sprintf("b%d.%d.sh", i, j))
			writeFile(t, f, c.Command+"\n")
			fmt.Fprintf(&driver, "source %q > %q 2>&1; echo \"rc %d %d $?\" >&3\n", f, f+".out", i, j)
		}
		driver.WriteString("set -e\n")
		fmt.Fprintf(&driver, "echo 'ok %d' >&3\n", i)
	}
	driverFile := filepath.Join(scripts, "driver.sh")
	writeFile(t, driverFile, driver.String())
	statusFile := filepath.Join(scripts, "status")
	status, err := os.Create(statusFile)
	if err != nil {
		t.Fatal(err)
	}
	defer status.Close()
	logFile, err := os.Create(filepath.Join(scripts, "driver.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "--noprofile", "--norc", driverFile)
	cmd.Dir = work
	cmd.Env = freshEnv(home, listen, data)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{status}
	// The README starts keyless serve in the background: bash and
	// everything it started share one process group, killed as one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start)
	if cmd.Process != nil {
		// Whatever the README left running (it stops its server itself).
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	t.Logf("README: %d blocks run in %v", len(run), elapsed.Round(time.Millisecond))

	progress := readProgress(t, statusFile)
	serverLog := func() string {
		b, err := os.ReadFile(filepath.Join(work, "keyless.log"))
		if err != nil {
			return "(no keyless.log)"
		}
		return tail(string(b), 30)
	}
	for i, s := range steps {
		b := s.block
		if !progress.started[i] {
			t.Fatalf("block %d never ran (the run stopped before it: %v)\n%s", i, runErr, b)
		}
		if s.console == nil {
			if !progress.ok[i] {
				reason := fmt.Sprint(runErr)
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					reason = fmt.Sprintf("still running after %v", runTimeout)
				}
				t.Fatalf("README block failed (%s):\n%s\n--- it printed:\n%s\n--- keyless.log:\n%s",
					reason, b, readOut(filepath.Join(scripts, fmt.Sprintf("b%d.sh.out", i))), serverLog())
			}
			continue
		}
		for j, c := range s.console {
			out := readOut(filepath.Join(scripts, fmt.Sprintf("b%d.%d.sh.out", i, j)))
			rc, ran := progress.rc[[2]int{i, j}]
			if !ran {
				t.Fatalf("README console command did not finish: $ %s\n(in %s:%d)\n--- it printed:\n%s", c.Command, b.File, b.Line, out)
			}
			if len(c.Want) == 0 && rc != 0 {
				t.Fatalf("README console command exited %d, and the README shows no output for it: $ %s\n(in %s:%d)\n--- it printed:\n%s", rc, c.Command, b.File, b.Line, out)
			}
			for _, want := range c.Want {
				if !printedLine(out, want) {
					t.Fatalf("README console command did not print what the README shows:\n$ %s\nwant a line containing: %s\n(in %s:%d)\n--- it printed (exit %d):\n%s", c.Command, want, b.File, b.Line, rc, out)
				}
			}
		}
	}
	if runErr != nil {
		t.Fatalf("bash: %v\n%s", runErr, readOut(logFile.Name()))
	}
	if elapsed > 60*time.Second {
		t.Errorf("the README took %v to run; keep it under a minute", elapsed)
	}
}

// printedLine reports whether out has a line showing want, where "..." in
// want stands for any text (the README elides what varies: the port, long
// encoded messages).
func printedLine(out, want string) bool {
	parts := strings.Split(want, "...")
	for _, line := range strings.Split(out, "\n") {
		rest, ok := line, true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}

// freshEnv is a newcomer's environment: PATH with keyless first, a HOME of
// its own, no AWS_* or KEYLESS_* settings, plus the two substitutions.
// Python's version manager is passed through so that the aws shim works.
func freshEnv(home, listen, data string) []string {
	env := []string{
		"HOME=" + home,
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"KEYLESS_LISTEN=" + listen,
		"KEYLESS_DATA=" + data,
		"AWS_PAGER=",
	}
	for _, k := range []string{"PYENV_ROOT", "PYENV_VERSION", "LANG", "LC_ALL", "TMPDIR"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

type progress struct {
	started, ok map[int]bool
	rc          map[[2]int]int
}

func readProgress(t *testing.T, file string) progress {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := progress{started: map[int]bool{}, ok: map[int]bool{}, rc: map[[2]int]int{}}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "start":
			n, _ := strconv.Atoi(f[1])
			p.started[n] = true
		case len(f) == 2 && f[0] == "ok":
			n, _ := strconv.Atoi(f[1])
			p.ok[n] = true
		case len(f) == 4 && f[0] == "rc":
			i, _ := strconv.Atoi(f[1])
			j, _ := strconv.Atoi(f[2])
			rc, _ := strconv.Atoi(f[3])
			p.rc[[2]int{i, j}] = rc
		}
	}
	return p
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readOut(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return "(nothing)"
	}
	return tail(string(b), 60)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
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
