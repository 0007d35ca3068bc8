package integrations

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keylessci/keyless/internal/testenv"
)

const (
	installer      = "install-keyless.sh"
	testVersion    = "v0.0.0-test"
	gitlabHeredocs = "INSTALL_KEYLESS"
)

// TestInstallerCopies: the orb (whose packed form holds only its src/) and
// the GitLab template (one file to include) carry the installer verbatim,
// so the one tested here is the one they run; the action runs it in place.
func TestInstallerCopies(t *testing.T) {
	want := string(read(t, installer))
	for _, copy := range []string{filepath.Join(orbSrc, "scripts", "install_keyless.sh")} {
		if diff := cmp.Diff(want, string(read(t, copy))); diff != "" {
			t.Errorf("%s differs from %s (cp it again) (-want +got):\n%s", copy, installer, diff)
		}
	}
	if diff := cmp.Diff(want, gitlabInstaller(t)); diff != "" {
		t.Errorf("the installer in %s's before_script differs from %s (-want +got):\n%s", gitlabFile, installer, diff)
	}
}

// gitlabInstaller is the script the GitLab template writes with its
// heredoc.
func gitlabInstaller(t *testing.T) string {
	t.Helper()
	_, jobs, _ := loadGitLab(t, map[string]string{"role_arn": "arn:aws:iam::1:role/x"})
	first := jobs[".keyless_aws"].BeforeScript[0]
	_, body, ok := strings.Cut(first, "<<'"+gitlabHeredocs+"'\n")
	body, _, ok2 := strings.Cut(body, "\n"+gitlabHeredocs+"\n")
	if !ok || !ok2 {
		t.Fatalf("before_script[0] does not write the installer with a <<'%s' heredoc:\n%s", gitlabHeredocs, first)
	}
	return body + "\n"
}

// testRelease is a release of the stand-in keyless (testdata/fakekeyless)
// for this machine, built by scripts/release.sh, served over HTTP.
type testRelease struct {
	dir     string // the release script's output: binary and SHA256SUMS
	url     string // base URL: url/<version>/<file>
	sumsSHA string // SHA-256 of SHA256SUMS: the value to pin
	binary  string // keyless_<version>_<os>_<arch>
	mu      sync.Mutex
	paths   []string // requested paths
}

func (r *testRelease) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.paths)
}

// newRelease runs scripts/release.sh for this platform and serves its
// output under /releases/<version>/.
func newRelease(t *testing.T) *testRelease {
	t.Helper()
	bash := testenv.RequireCommand(t, "bash")
	r := &testRelease{dir: t.TempDir(), binary: "keyless_" + testVersion + "_" + runtime.GOOS + "_" + runtime.GOARCH}
	cmd := exec.Command(bash, "../scripts/release.sh", "--package", "./integrations/testdata/fakekeyless",
		"-o", r.dir, "-t", runtime.GOOS+"/"+runtime.GOARCH, testVersion)
	cmd.Env = append(os.Environ(), "KEYLESS_COMMIT=0123456789abcdef0123456789abcdef01234567", "SOURCE_DATE_EPOCH=1800000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	sums := read(t, filepath.Join(r.dir, "SHA256SUMS"))
	if !regexp.MustCompile(`^[0-9a-f]{64}  ` + regexp.QuoteMeta(r.binary) + "\n$").Match(sums) {
		t.Fatalf("SHA256SUMS is not in sha256sum's format for %s:\n%s", r.binary, sums)
	}
	sum := sha256.Sum256(sums)
	r.sumsSHA = hex.EncodeToString(sum[:])
	files := http.StripPrefix("/releases/"+testVersion+"/", http.FileServer(http.Dir(r.dir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.paths = append(r.paths, req.URL.Path)
		r.mu.Unlock()
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/releases"
	return r
}

// tamper rewrites one file of the release (after SHA256SUMS was made).
func (r *testRelease) tamper(t *testing.T, name string, edit func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.WriteFile(p, edit(read(t, p)), 0o755); err != nil {
		t.Fatal(err)
	}
}

// toolsDir is a PATH with what the installer and the integrations' shell
// need — never keyless — plus curl when download is true, and a stand-in
// go that records its arguments in go.args and "installs" a keyless
// script into GOBIN.
func toolsDir(t *testing.T, download bool) string {
	t.Helper()
	dir := t.TempDir()
	tools := []string{"sh", "bash", "mkdir", "tr", "grep", "cut", "sha256sum", "chmod", "mv", "rm", "awk", "uname", "dirname", "cat", "sed", "head", "date", "mktemp", "env"}
	if download {
		tools = append(tools, "curl")
	}
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			if tool == "mktemp" || tool == "date" || tool == "head" || tool == "sed" || tool == "env" {
				continue
			}
			testenv.Missing(t, tool, "the installer tests run the install script with it")
			return ""
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	goStub := "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/go.args\"\nprintf '#!/bin/sh\\necho built-by-go\\n' > \"$GOBIN/keyless\"\nchmod 0755 \"$GOBIN/keyless\"\n"
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(goStub), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// goArgs is what the stand-in go was run with (nil: not run).
func goArgs(t *testing.T, tools string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tools, "go.args"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// runInstaller runs install-keyless.sh with sh and env; it returns stdout,
// stderr and the error.
func runInstaller(t *testing.T, env map[string]string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(env["PATH"], "sh"), installer)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestInstaller runs install-keyless.sh against a local HTTP server
// serving files made by scripts/release.sh: the pinned release is
// downloaded and verified; a checksum mismatch (of SHA256SUMS or of the
// binary) is refused and never falls back; a release it cannot use falls
// back to go install of the pinned version.
func TestInstaller(t *testing.T) {
	rel := newRelease(t)
	zeros := strings.Repeat("0", 64)
	tests := []struct {
		name      string
		env       map[string]string
		tamper    string // file of the release to corrupt first
		noCurl    bool   // wget instead
		wantErr   string // in stderr; "" = success
		wantBin   string // first line `keyless version` prints; "built-by-go" for the go stand-in
		wantGo    []string
		wantFetch []string // paths requested, in order
	}{
		{
			name:      "pinned release",
			env:       map[string]string{"KEYLESS_VERSION": testVersion, "KEYLESS_SHA256SUMS_SHA256": rel.sumsSHA},
			wantBin:   "keyless " + testVersion,
			wantFetch: []string{"/releases/" + testVersion + "/SHA256SUMS", "/releases/" + testVersion + "/" + rel.binary},
		},
		{
			name:    "pinned release, checksum in capitals, with wget",
			env:     map[string]string{"KEYLESS_VERSION": testVersion, "KEYLESS_SHA256SUMS_SHA256": strings.ToUpper(rel.sumsSHA)},
			noCurl:  true,
			wantBin: "keyless " + testVersion,
		},
		{
			name:      "SHA256SUMS does not match the pin",
			env:       map[string]string{"KEYLESS_VERSION": testVersion, "KEYLESS_SHA256SUMS_SHA256": zeros},
			wantErr:   "checksum mismatch",
			wantFetch: []string{"/releases/" + testVersion + "/SHA256SUMS"},
		},
		{
			name:    "binary does not match SHA256SUMS",
			env:     map[string]string{"KEYLESS_VERSION": testVersion, "KEYLESS_SHA256SUMS_SHA256": rel.sumsSHA},
			tamper:  rel.binary,
			wantErr: "checksum mismatch for " + rel.url + "/" + testVersion + "/" + rel.binary,
		},
		{
			name:    "release unreachable: go install of the pinned version",
			env:     map[string]string{"KEYLESS_VERSION": testVersion, "KEYLESS_SHA256SUMS_SHA256": rel.sumsSHA, "KEYLESS_RELEASE_URL": rel.url + "/missing"},
			wantBin: "built-by-go",
			wantGo:  []string{"install", "github.com/keylessci/keyless/cmd/keyless@" + testVersion},
		},
		{
			name:      "version pinned without checksum: no download, go install",
			env:       map[string]string{"KEYLESS_VERSION": testVersion},
			wantBin:   "built-by-go",
			wantGo:    []string{"install", "github.com/keylessci/keyless/cmd/keyless@" + testVersion},
			wantFetch: []string{},
		},
		{
			name:      "nothing pinned: go install @latest",
			env:       map[string]string{},
			wantBin:   "built-by-go",
			wantGo:    []string{"install", "github.com/keylessci/keyless/cmd/keyless@latest"},
			wantFetch: []string{},
		},
		{
			name:    "not a version",
			env:     map[string]string{"KEYLESS_VERSION": "latest; rm -rf /", "KEYLESS_SHA256SUMS_SHA256": rel.sumsSHA},
			wantErr: "is not a release version",
		},
		{
			name:    "binary URL and its SHA-256",
			env:     map[string]string{"KEYLESS_BINARY_URL": rel.url + "/" + testVersion + "/" + rel.binary, "KEYLESS_BINARY_SHA256": sha256Hex(read(t, filepath.Join(rel.dir, rel.binary)))},
			wantBin: "keyless " + testVersion,
		},
		{
			name:    "binary URL with another SHA-256",
			env:     map[string]string{"KEYLESS_BINARY_URL": rel.url + "/" + testVersion + "/" + rel.binary, "KEYLESS_BINARY_SHA256": zeros},
			wantErr: "checksum mismatch",
		},
		{
			name:      "binary URL without SHA-256",
			env:       map[string]string{"KEYLESS_BINARY_URL": rel.url + "/" + testVersion + "/" + rel.binary},
			wantErr:   "needs its SHA-256",
			wantFetch: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tamper != "" {
				orig := read(t, filepath.Join(rel.dir, tt.tamper))
				rel.tamper(t, tt.tamper, func(b []byte) []byte { c := slices.Clone(b); c[len(c)/2] ^= 1; return c })
				t.Cleanup(func() { rel.tamper(t, tt.tamper, func([]byte) []byte { return orig }) })
			}
			tools := toolsDir(t, !tt.noCurl)
			if tt.noCurl {
				wget, err := exec.LookPath("wget")
				if err != nil {
					t.Skip("no wget")
				}
				os.Symlink(wget, filepath.Join(tools, "wget"))
			}
			dir := filepath.Join(t.TempDir(), "bin")
			env := map[string]string{"PATH": tools, "HOME": t.TempDir(), "KEYLESS_INSTALL_DIR": dir, "KEYLESS_RELEASE_URL": rel.url}
			for k, v := range tt.env {
				env[k] = v
			}
			before := len(rel.requests())
			stdout, stderr, err := runInstaller(t, env)
			if tt.wantFetch != nil {
				if diff := cmp.Diff(tt.wantFetch, rel.requests()[before:]); diff != "" {
					t.Errorf("requests (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.wantGo, goArgs(t, tools)); diff != "" {
				t.Errorf("go run with (-want +got):\n%s", diff)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(stderr, tt.wantErr) {
					t.Fatalf("err %v, stderr %q; want a failure saying %q", err, stderr, tt.wantErr)
				}
				if _, err := os.Stat(filepath.Join(dir, "keyless")); err == nil {
					t.Error("a keyless was installed anyway")
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if got := strings.TrimSpace(stdout); got != filepath.Join(dir, "keyless") {
				t.Fatalf("printed %q, want the installed path", got)
			}
			out, err := exec.Command(filepath.Join(dir, "keyless"), "version").Output()
			if first, _, _ := strings.Cut(string(out), "\n"); err != nil || first != tt.wantBin {
				t.Errorf("installed keyless says %q (%v), want %q", out, err, tt.wantBin)
			}
		})
	}
	t.Run("already on PATH", func(t *testing.T) {
		tools := toolsDir(t, true)
		onPath := filepath.Join(tools, "keyless")
		os.WriteFile(onPath, []byte("#!/bin/sh\n"), 0o755)
		before := len(rel.requests())
		stdout, stderr, err := runInstaller(t, map[string]string{"PATH": tools, "HOME": t.TempDir(), "KEYLESS_VERSION": testVersion, "KEYLESS_SHA256SUMS_SHA256": rel.sumsSHA, "KEYLESS_RELEASE_URL": rel.url})
		if err != nil || strings.TrimSpace(stdout) != onPath || len(rel.requests()) != before {
			t.Errorf("stdout %q, err %v, %d requests; want the keyless on PATH and no download\n%s", stdout, err, len(rel.requests())-before, stderr)
		}
	})
}

// TestIntegrationsInstallPinnedRelease runs each integration's own install
// path — the orb's setup_oidc step, the action's install step, the GitLab
// before_script — with a pinned release served locally: the verified
// binary is installed and run; with a wrong checksum the job fails before
// anything runs keyless.
func TestIntegrationsInstallPinnedRelease(t *testing.T) {
	rel := newRelease(t)
	bad := strings.Repeat("ab", 32)
	for _, sums := range []string{rel.sumsSHA, bad} {
		ok := sums == rel.sumsSHA
		name := map[bool]string{true: "verified", false: "mismatch"}[ok]

		t.Run("orb/"+name, func(t *testing.T) {
			cmd := loadOrbCommand(t)
			home := t.TempDir()
			argsFile := filepath.Join(t.TempDir(), "args")
			env := orbEnv(t, cmd, map[string]string{"role_arn": "arn:aws:iam::123456789012:role/ci", "version": testVersion,
				"sha256sums_sha256": sums, "release_url": rel.url, "region": "eu-west-1"})
			env["PATH"], env["HOME"], env["BASH_ENV"] = toolsDir(t, true), home, filepath.Join(home, "bash_env")
			env["CIRCLE_OIDC_TOKEN_V2"], env["FAKE_KEYLESS_ARGS"] = "header.payload.signature", argsFile
			out, err := runScript(t, string(read(t, filepath.Join(orbSrc, "scripts", "setup_oidc.sh"))), env)
			checkInstalled(t, ok, out, err, filepath.Join(home, ".local", "bin", "keyless"), argsFile)
			if ok && !strings.Contains(string(read(t, env["BASH_ENV"])), filepath.Join(home, ".local", "bin")) {
				t.Error("the install dir was not put on PATH for later steps ($BASH_ENV)")
			}
		})

		t.Run("action/"+name, func(t *testing.T) {
			a, _ := loadAction(t)
			step := actionStepByName(t, a, "Install keyless")
			runnerTemp, ghPath := t.TempDir(), filepath.Join(t.TempDir(), "github_path")
			env := actionStepEnv(a, step, map[string]string{"keyless-version": testVersion, "keyless-sha256sums-sha256": sums, "keyless-release-url": rel.url})
			env["PATH"], env["RUNNER_TEMP"], env["GITHUB_PATH"], env["GITHUB_ACTION_PATH"] = toolsDir(t, true), runnerTemp, ghPath, actionDir(t)
			out, err := runScript(t, step.Run, env)
			bin := filepath.Join(runnerTemp, "keyless-bin", "keyless")
			checkInstalled(t, ok, out, err, bin, "")
			if ok {
				if got := strings.TrimSpace(string(read(t, ghPath))); got != filepath.Dir(bin) {
					t.Errorf("GITHUB_PATH = %q, want %s", got, filepath.Dir(bin))
				}
			} else if !strings.Contains(out, "::error::") {
				t.Errorf("no workflow error in %q", out)
			}
		})

		t.Run("gitlab/"+name, func(t *testing.T) {
			_, jobs, _ := loadGitLab(t, map[string]string{"role_arn": "arn:aws:iam::123456789012:role/gl", "keyless_version": testVersion,
				"keyless_sha256sums_sha256": sums, "keyless_release_url": rel.url})
			job := jobs[".keyless_aws"]
			tmp, argsFile := t.TempDir(), filepath.Join(t.TempDir(), "args")
			env := map[string]string{}
			for k, v := range job.Variables {
				env[k] = v
			}
			env["PATH"], env["TMPDIR"], env["HOME"] = toolsDir(t, true), tmp, t.TempDir()
			env["KEYLESS_ID_TOKEN"], env["FAKE_KEYLESS_ARGS"] = "header.payload.signature", argsFile
			out, err := runScript(t, strings.Join(job.BeforeScript, "\n"), env)
			checkInstalled(t, ok, out, err, filepath.Join(tmp, "keyless-bin", "keyless"), argsFile)
		})
	}
}

// checkInstalled: with ok, the script succeeded, bin is the release's
// stand-in and (when argsFile is given) it ran `assume`; otherwise the
// script failed on the checksum and nothing was installed or run.
func checkInstalled(t *testing.T, ok bool, out string, err error, bin, argsFile string) {
	t.Helper()
	if !ok {
		if err == nil || !strings.Contains(out, "checksum mismatch") {
			t.Fatalf("err %v; want a checksum mismatch failure:\n%s", err, out)
		}
		if _, err := os.Stat(bin); err == nil {
			t.Error("installed a binary despite the mismatch")
		}
		if argsFile != "" {
			if _, err := os.Stat(argsFile); err == nil {
				t.Error("keyless ran despite the mismatch")
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	v, err := exec.Command(bin, "version").Output()
	if first, _, _ := strings.Cut(string(v), "\n"); err != nil || first != "keyless "+testVersion {
		t.Fatalf("%s version: %q %v", bin, v, err)
	}
	if argsFile != "" {
		if args := readArgs(t, argsFile); len(args) == 0 || args[0] != "assume" {
			t.Errorf("keyless ran with %q, want assume …", args)
		}
	}
}

func actionDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Dir(actionFile))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// -------------------------------------------------------- pins and refs

// TestPinnedReleaseConsistent: the three integrations pin the same
// release (or none yet) with its checksum, and the same download location.
func TestPinnedReleaseConsistent(t *testing.T) {
	orb := loadOrbCommand(t)
	act, _ := loadAction(t)
	gl, _, _ := loadGitLab(t, nil)
	str := func(v any) string {
		if v == nil {
			return ""
		}
		return v.(string)
	}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	pins := map[string][3]string{
		"orb":    {str(orb.Parameters["version"].Default), str(orb.Parameters["sha256sums_sha256"].Default), str(orb.Parameters["release_url"].Default)},
		"action": {deref(act.Inputs["keyless-version"].Default), deref(act.Inputs["keyless-sha256sums-sha256"].Default), deref(act.Inputs["keyless-release-url"].Default)},
		"gitlab": {deref(gl["keyless_version"].Default), deref(gl["keyless_sha256sums_sha256"].Default), deref(gl["keyless_release_url"].Default)},
	}
	for name, p := range pins {
		if p != pins["orb"] {
			t.Errorf("%s pins %q, the orb %q: move the pins together", name, p, pins["orb"])
		}
		if (p[0] == "") != (p[1] == "") || p[1] != "" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p[1]) {
			t.Errorf("%s: version %q with checksum %q: a pinned version needs the 64-hex SHA-256 of its SHA256SUMS", name, p[0], p[1])
		}
	}
}

// refPattern finds references to this repository at a git ref: a GitHub
// action `uses:` and raw file URLs.
var refPattern = regexp.MustCompile(`keylessci/keyless/(?:integrations/[A-Za-z0-9_/-]+@([A-Za-z0-9._/-]+)|(?:raw|blob|tree)/([A-Za-z0-9._-]+)/)|raw\.githubusercontent\.com/keylessci/keyless/([A-Za-z0-9._-]+)/`)

// TestRefsExist: every ref of this repository the integrations' files,
// the README and docs/ mention exists — the main branch or a tag of the clone. (Orb registry
// versions such as keylessci/keyless@1.0.0 are not git refs and exist
// only once the orb is published; see circleci-orb/README.md.)
func TestRefsExist(t *testing.T) {
	git := testenv.RequireCommand(t, "git")
	out, err := exec.Command(git, "tag", "--list").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	exists := map[string]bool{"main": true}
	for _, tag := range strings.Fields(string(out)) {
		exists[tag] = true
	}
	var files []string
	for _, pattern := range []string{"*.md", "*/*.md", "*/*.yml", "*/src/*/*.yml", "*/src/@orb.yml", "../README.md", "../docs/*.md"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	n := 0
	for _, f := range files {
		for _, m := range refPattern.FindAllStringSubmatch(string(read(t, f)), -1) {
			ref := m[1] + m[2] + m[3]
			n++
			if !exists[ref] {
				t.Errorf("%s mentions ref %q of keylessci/keyless, which does not exist (main or a tag)", f, ref)
			}
		}
	}
	if n == 0 {
		t.Error("no ref found: the pattern no longer matches the docs")
	}
}
