package packaging

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/testenv"
)

const (
	stubPackage = "./integrations/testdata/fakekeyless"
	relVersion  = "v1.2.3-rc.1"
	relCommit   = "0123456789abcdef0123456789abcdef01234567"
	relEpoch    = "1800000000" // 2027-01-15T08:00:00Z
)

var targets = []string{"darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"}

// release runs scripts/release.sh from root (a checkout or a copy of one)
// and returns its output directory.
func release(t *testing.T, root string, args ...string) (string, string, error) {
	t.Helper()
	bash := testenv.RequireCommand(t, "bash")
	out := t.TempDir()
	cmd := exec.Command(bash, append([]string{filepath.Join(root, "scripts", "release.sh"), "-o", out}, args...)...)
	cmd.Env = append(os.Environ(), "KEYLESS_COMMIT="+relCommit, "SOURCE_DATE_EPOCH="+relEpoch, "GOFLAGS=-race", "CGO_ENABLED=1", "GOAMD64=v3")
	b, err := cmd.CombinedOutput()
	return out, string(b), err
}

// TestReleaseScript builds a small stand-in main package (the real keyless
// takes minutes per target; scripts/release-check.sh does that in CI)
// through scripts/release.sh for every target, and checks what the script
// promises: the file names, SHA256SUMS in sha256sum's format, static
// binaries of the right platform, the build settings (-trimpath, no cgo,
// no VCS stamp, empty build id, version/commit/date by -X) — whatever
// GOFLAGS, CGO_ENABLED or GOAMD64 the caller's environment holds — and the
// same bytes when built again from another path.
func TestReleaseScript(t *testing.T) {
	args := []string{"--package", stubPackage}
	for _, tg := range targets {
		args = append(args, "-t", tg)
	}
	dir, log, err := release(t, "../..", append(args, relVersion)...)
	if err != nil {
		t.Fatalf("release.sh: %v\n%s", err, log)
	}
	sums := string(readBytes(t, filepath.Join(dir, "SHA256SUMS")))
	var names []string
	for _, line := range strings.Split(strings.TrimSuffix(sums, "\n"), "\n") {
		m := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("SHA256SUMS line %q is not sha256sum's format", line)
		}
		names = append(names, m[2])
		if got := fileSHA256(t, filepath.Join(dir, m[2])); got != m[1] {
			t.Errorf("%s: sha256 %s, SHA256SUMS says %s", m[2], got, m[1])
		}
	}
	var want []string
	for _, tg := range targets {
		want = append(want, "keyless_"+relVersion+"_"+strings.Replace(tg, "/", "_", 1))
	}
	if !slices.Equal(names, want) {
		t.Fatalf("SHA256SUMS lists %q, want %q (sorted)", names, want)
	}
	sumsSHA := fileSHA256(t, filepath.Join(dir, "SHA256SUMS"))
	if !strings.Contains(log, "SHA256SUMS sha256 "+sumsSHA) {
		t.Errorf("the script does not print the SHA256SUMS checksum %s to pin:\n%s", sumsSHA, log)
	}

	for i, tg := range targets {
		path := filepath.Join(dir, want[i])
		checkPlatformAndStatic(t, path, tg)
		bi, err := buildinfo.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", want[i], err)
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		goos, goarch, _ := strings.Cut(tg, "/")
		if settings["-trimpath"] != "true" || settings["CGO_ENABLED"] != "0" || settings["GOOS"] != goos || settings["GOARCH"] != goarch {
			t.Errorf("%s: build settings %v", want[i], settings)
		}
		if settings["-race"] != "" || (goarch == "amd64" && settings["GOAMD64"] != "v1") {
			t.Errorf("%s: the caller's environment leaked into the build: %v", want[i], settings)
		}
		for k := range settings {
			if strings.HasPrefix(k, "vcs") {
				t.Errorf("%s: Go's VCS stamp %s is in the binary (-buildvcs=false expected)", want[i], k)
			}
		}
		// -trimpath keeps -ldflags out of the build info: look for the
		// -X values in the binary, and ask go for its build id.
		bin := readBytes(t, path)
		for _, w := range []string{relVersion, relCommit, "2027-01-15T08:00:00Z"} {
			if !bytes.Contains(bin, []byte(w)) {
				t.Errorf("%s: %q (set with -X) is not in the binary", want[i], w)
			}
		}
		if id, err := exec.Command("go", "tool", "buildid", path).Output(); err != nil || strings.TrimSpace(string(id)) != "" {
			t.Errorf("%s: build id %q (%v), want empty (-buildid=)", want[i], id, err)
		}
	}

	// Again, from a copy of the files at another path: the same bytes.
	copyRoot := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "scripts/release.sh", "integrations/testdata/fakekeyless/main.go"} {
		b := readBytes(t, filepath.Join("../..", f))
		if err := os.MkdirAll(filepath.Dir(filepath.Join(copyRoot, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copyRoot, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir2, log, err := release(t, copyRoot, "--package", stubPackage, "-t", "linux/arm64", "-t", "darwin/amd64", relVersion)
	if err != nil {
		t.Fatalf("release.sh from a copy: %v\n%s", err, log)
	}
	var again []string
	for _, line := range strings.Split(sums, "\n") {
		if strings.HasSuffix(line, "_linux_arm64") || strings.HasSuffix(line, "_darwin_amd64") {
			again = append(again, line)
		}
	}
	if got := strings.TrimSuffix(string(readBytes(t, filepath.Join(dir2, "SHA256SUMS"))), "\n"); got != strings.Join(again, "\n") {
		t.Errorf("not reproducible from another path:\nfirst:  %q\nsecond: %q", again, got)
	}
}

func TestReleaseScriptRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"not a version", []string{"--package", stubPackage, "latest"}, "VERSION must look like v1.2.3"},
		{"unknown target", []string{"--package", stubPackage, "-t", "windows/amd64", relVersion}, "unsupported target windows/amd64"},
		{"no version", []string{"--package", stubPackage}, "usage"},
		{"unknown option", []string{"--sign", relVersion}, "unknown option --sign"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, log, err := release(t, "../..", tt.args...)
			if err == nil || !strings.Contains(strings.ToLower(log), strings.ToLower(tt.want)) {
				t.Errorf("err %v, output %q; want a refusal saying %q", err, log, tt.want)
			}
		})
	}
}

// checkPlatformAndStatic: an ELF for linux with no interpreter and no
// shared libraries, a Mach-O of the right CPU for darwin.
func checkPlatformAndStatic(t *testing.T, path, target string) {
	t.Helper()
	goos, goarch, _ := strings.Cut(target, "/")
	switch goos {
	case "linux":
		f, err := elf.Open(path)
		if err != nil {
			t.Fatalf("%s: not ELF: %v", path, err)
		}
		defer f.Close()
		wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
		if f.Machine != wantMachine {
			t.Errorf("%s: machine %v, want %v", path, f.Machine, wantMachine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s: has %v: not a static binary", path, p.Type)
			}
		}
	case "darwin":
		f, err := macho.Open(path)
		if err != nil {
			t.Fatalf("%s: not Mach-O: %v", path, err)
		}
		defer f.Close()
		wantCPU := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if f.Cpu != wantCPU {
			t.Errorf("%s: CPU %v, want %v", path, f.Cpu, wantCPU)
		}
	}
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	s := sha256.Sum256(readBytes(t, path))
	return hex.EncodeToString(s[:])
}
