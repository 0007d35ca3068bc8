package ciauth

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keylessci/keyless/internal/testenv"
)

// hostileValues are values an attacker (or an unlucky server) might put
// where ciauth writes shell and CI files.
var hostileValues = []string{
	"plain",
	"",
	"it's",
	`"double" and \backslash\ and $HOME and $(touch /tmp/pwned) and ` + "`id`",
	"line one\nline two\n",
	"x\nAWS_ACCESS_KEY_ID=injected",
	"'; touch /tmp/pwned; echo '",
	"EOF\nghadelimiter_00000000000000000000000000000000\nINJECTED=1",
	"trailing backslash \\",
	"tab\tand\r\ncrlf",
	"% %25 %0A",
	"ünïcödé ✓",
}

func TestFormatExportsRoundTripsThroughShells(t *testing.T) {
	for _, shell := range []string{"sh", "bash"} {
		t.Run(shell, func(t *testing.T) {
			sh := testenv.RequireCommand(t, shell)
			for i, v := range hostileValues {
				script, err := FormatExports([]EnvVar{{"KEYLESS_TEST_VALUE", v}, {"SECOND", "after"}})
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				f := filepath.Join(dir, "env")
				if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
					t.Fatal(err)
				}
				// Source the file, as CircleCI does with $BASH_ENV, and print
				// the value back byte for byte.
				cmd := exec.Command(sh, "-c", `. "$1" && printf '%s|%s' "$KEYLESS_TEST_VALUE" "$SECOND"`, "sh", f)
				cmd.Dir = dir
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("value %d: %v\n%s", i, err, out)
				}
				if diff := cmp.Diff(v+"|after", string(out)); diff != "" {
					t.Errorf("value %d round trip (-want +got):\n%s", i, diff)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 1 {
					t.Errorf("value %d: sourcing created files: %v", i, entries)
				}
			}
		})
	}
}

func TestFormatExportsRefuses(t *testing.T) {
	for _, v := range []EnvVar{{"A B", "x"}, {"1A", "x"}, {"", "x"}, {"OK", "nul\x00"}} {
		if _, err := FormatExports([]EnvVar{v}); err == nil {
			t.Errorf("%q=%q accepted", v.Name, v.Value)
		}
	}
}

// parseGitHubFile reads $GITHUB_ENV / $GITHUB_OUTPUT the way the Actions
// runner does: NAME=VALUE lines, or NAME<<DELIMITER, value lines, DELIMITER.
func parseGitHubFile(t *testing.T, s string) map[string]string {
	t.Helper()
	lines := strings.Split(s, "\n")
	got := map[string]string{}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		eq, hd := strings.Index(line, "="), strings.Index(line, "<<")
		if eq >= 0 && (hd < 0 || eq < hd) {
			got[line[:eq]] = line[eq+1:]
			continue
		}
		if hd < 0 {
			t.Fatalf("line %d %q is neither form", i, line)
		}
		name, delim := line[:hd], line[hd+2:]
		var val []string
		for i++; ; i++ {
			if i >= len(lines) {
				t.Fatalf("unterminated heredoc for %s", name)
			}
			if lines[i] == delim {
				break
			}
			val = append(val, lines[i])
		}
		got[name] = strings.Join(val, "\n")
	}
	return got
}

// seqRand yields zero bytes for the first n bytes, then 0x11 forever.
type seqRand struct{ zeros int }

func (s *seqRand) Read(p []byte) (int, error) {
	for i := range p {
		if s.zeros > 0 {
			p[i] = 0
			s.zeros--
		} else {
			p[i] = 0x11
		}
	}
	return len(p), nil
}

func TestFormatGitHubFileHostileValues(t *testing.T) {
	var vars []EnvVar
	want := map[string]string{}
	for i, v := range hostileValues {
		name := "V" + string(rune('A'+i))
		vars = append(vars, EnvVar{name, v})
		want[name] = v
	}
	// The first delimiter drawn (all zeros) occurs in a value: it must be
	// redrawn.
	rnd := &seqRand{zeros: 16}
	s, err := FormatGitHubFile(vars, rnd)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "<<ghadelimiter_00000000000000000000000000000000\n") {
		t.Fatal("used a delimiter that occurs in a value")
	}
	if diff := cmp.Diff(want, parseGitHubFile(t, s)); diff != "" {
		t.Errorf("runner would read (-want +got):\n%s", diff)
	}
	if _, ok := parseGitHubFile(t, s)["INJECTED"]; ok {
		t.Error("a value injected a variable")
	}
}

func FuzzFormatGitHubFile(f *testing.F) {
	for _, v := range hostileValues {
		f.Add(v, v+"\n")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.ContainsRune(a+b, 0) {
			return // refused by design
		}
		// The runner splits on \n and joins value lines with \n; a lone
		// trailing \r would be ambiguous only for our test parser, not for
		// injection, so compare after the same split/join.
		vars := []EnvVar{{"FIRST", a}, {"SECOND", b}}
		s, err := FormatGitHubFile(vars, constRand(0x5a))
		if err != nil {
			if strings.Contains(a+b, "ghadelimiter_5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a") {
				return // every draw collides: refusing is right
			}
			t.Fatal(err)
		}
		got := parseGitHubFile(t, s)
		if len(got) != 2 || got["FIRST"] != a || got["SECOND"] != b {
			t.Fatalf("round trip of %q, %q gave %q", a, b, got)
		}
	})
}

func TestFormatGitHubFileGivesUpOnStuckRandom(t *testing.T) {
	_, err := FormatGitHubFile([]EnvVar{{"X", "ghadelimiter_00000000000000000000000000000000"}}, constRand(0))
	if err == nil {
		t.Fatal("want an error when every delimiter collides")
	}
}

func TestWriteGitHubMasks(t *testing.T) {
	var b bytes.Buffer
	if err := WriteGitHubMasks(&b, "abc/+=", "", "50%\nnext"); err != nil {
		t.Fatal(err)
	}
	want := "::add-mask::abc/+=\n::add-mask::50%25%0Anext\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func testResult() *Result {
	return &Result{
		Credentials: Credentials{AccessKeyID: "ASIAEXAMPLE000000001", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			SessionToken: "FQoGZXIvYXdzEXAMPLE+token/==", Expiration: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)},
		AssumedRoleARN: "arn:aws:sts::123456789012:assumed-role/ci-deploy/gha-acme.web-deploy-1-1",
		AssumedRoleID:  "AROAEXAMPLEID:gha-acme.web-deploy-1-1", SubjectFromWebIdentityToken: "repo:acme/web:ref:refs/heads/main",
		Audience: "sts.amazonaws.com", Provider: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
	}
}

func TestOutputsGolden(t *testing.T) {
	r := testResult()
	exports, err := FormatExports(CredentialEnv(r, "eu-west-1", "https://keyless.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	jsonOut, err := FormatJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := FormatCredentialProcess(r.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	gh, err := FormatGitHubFile(GitHubOutputs(r, true), constRand(0xab))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{
		"exports.sh": exports, "assume.json": string(jsonOut), "credential-process.json": string(cp), "github-output.txt": gh,
	} {
		path := filepath.Join("testdata", "output", name+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func BenchmarkFormatGitHubFile(b *testing.B) {
	vars := CredentialEnv(testResult(), "eu-west-1", "")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FormatGitHubFile(vars, constRand(1)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormatExports(b *testing.B) {
	vars := CredentialEnv(testResult(), "eu-west-1", "")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FormatExports(vars); err != nil {
			b.Fatal(err)
		}
	}
}

var _ io.Reader = (*seqRand)(nil)
