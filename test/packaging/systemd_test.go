package packaging

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/testenv"
)

const unitPath = "../../packaging/keyless.service"

func TestParseUnit(t *testing.T) {
	u, err := ParseUnit("# c\n[Unit]\nDescription=x\n\n[Service]\n; c\nExecStart=/bin/a \\\n  # inside\n  b\nLoadCredential=a:b\nLoadCredential=\nLoadCredential=c:d\nCapabilityBoundingSet=\n")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := u.Last("Service", "ExecStart"); v != "/bin/a  b" {
		t.Errorf("ExecStart %q", v)
	}
	if diff := cmp.Diff([]string{"c:d"}, u.Values("Service", "LoadCredential")); diff != "" {
		t.Errorf("an empty assignment resets a list (-want +got):\n%s", diff)
	}
	if v, ok := u.Last("Service", "CapabilityBoundingSet"); !ok || v != "" {
		t.Errorf("CapabilityBoundingSet %q %v, want set and empty", v, ok)
	}
	for _, bad := range []string{"Key=v\n", "[Service\nA=b\n", "[S]\nnovalue\n", "[S]\nA=b \\\n"} {
		if _, err := ParseUnit(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseUnit(f *testing.F) {
	f.Add("[Service]\nA=b \\\n c\n")
	f.Add("[Unit]\n#x\n;y\nB=\n")
	f.Fuzz(func(t *testing.T, src string) {
		u, err := ParseUnit(src)
		if err != nil {
			return
		}
		for _, e := range u {
			if e.Section == "" || e.Key == "" || e.Line < 1 {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}

// TestSystemdUnit checks the hardening of packaging/keyless.service and
// that it hands keyless its secrets through what keyless really reads.
func TestSystemdUnit(t *testing.T) {
	u, err := ParseUnit(readFile(t, unitPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range unitProblems(u, goSource(t)) {
		t.Error(p)
	}
}

// TestSystemdUnitProblems: each hardening directive removed or weakened in
// a copy of the unit is reported.
func TestSystemdUnitProblems(t *testing.T) {
	src := readFile(t, unitPath)
	code := goSource(t)
	for _, tt := range []struct{ old, new, want string }{
		{"DynamicUser=yes", "DynamicUser=no", "DynamicUser"},
		{"StateDirectory=keyless", "", "StateDirectory"},
		{"ProtectSystem=strict", "ProtectSystem=full", "ProtectSystem"},
		{"ProtectHome=yes", "", "ProtectHome"},
		{"NoNewPrivileges=yes", "", "NoNewPrivileges"},
		{"PrivateTmp=yes", "PrivateTmp=no", "PrivateTmp"},
		{"CapabilityBoundingSet=\n", "CapabilityBoundingSet=CAP_NET_ADMIN\n", "CapabilityBoundingSet"},
		{"LoadCredential=master.key:/etc/keyless/master.key", "", "master.key"},
		{"Environment=KEYLESS_MASTER_KEY_FILE=%d/master.key", "Environment=KEYLESS_MASTER_KEY_PATH=%d/master.key", "KEYLESS_MASTER_KEY_PATH"},
		{"LoadCredential=admin-secret-access-key:", "LoadCredential=admin-secret:", "admin-secret"},
		{"--listen 127.0.0.1:8400", "--listen 127.0.0.1:443", "below 1024"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("the unit no longer contains %q: update this test", tt.old)
			}
			u, err := ParseUnit(strings.Replace(src, tt.old, tt.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			problems := unitProblems(u, code)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %q; want one mentioning %q", problems, tt.want)
			}
		})
	}
}

var (
	envName       = regexp.MustCompile(`\bKEYLESS_[A-Z0-9_]+\b`)
	credentialRef = regexp.MustCompile(`(?:%d|\$\$CREDENTIALS_DIRECTORY|\$\{CREDENTIALS_DIRECTORY\})/([A-Za-z0-9._-]+)`)
	listenFlag    = regexp.MustCompile(`--listen[ =]"?([^" ]+)`)
)

func unitProblems(u Unit, code string) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	want := map[string]string{
		"DynamicUser":     "yes",
		"StateDirectory":  "keyless",
		"ProtectSystem":   "strict",
		"ProtectHome":     "yes",
		"NoNewPrivileges": "yes",
		"PrivateTmp":      "yes",
	}
	for k, v := range want {
		if got, _ := u.Last("Service", k); got != v {
			report("[Service] %s=%q, want %q", k, got, v)
		}
	}
	exec, _ := u.Last("Service", "ExecStart")
	if !strings.Contains(exec, "/usr/local/bin/keyless serve") {
		report("ExecStart does not run keyless serve: %s", exec)
	}
	if !strings.Contains(exec, `--data "$$STATE_DIRECTORY"`) && !strings.Contains(exec, "--data %S/keyless") {
		report("ExecStart does not keep the data in the state directory: %s", exec)
	}
	// No capabilities, unless the listen port needs one.
	port := 0
	if m := listenFlag.FindStringSubmatch(exec); m != nil {
		if i := strings.LastIndexByte(m[1], ':'); i >= 0 {
			port, _ = strconv.Atoi(m[1][i+1:])
		}
	}
	caps, set := u.Last("Service", "CapabilityBoundingSet")
	switch {
	case port == 0:
		report("ExecStart gives no --listen HOST:PORT")
	case port < 1024 && !strings.Contains(caps, "CAP_NET_BIND_SERVICE"):
		report("listening on port %d (below 1024) needs CAP_NET_BIND_SERVICE in CapabilityBoundingSet and AmbientCapabilities", port)
	case port >= 1024 && (!set || caps != ""):
		report("CapabilityBoundingSet=%q: want it set and empty (port %d needs no capability)", caps, port)
	}

	// Credentials: every one referenced is loaded, and the master key and
	// the admin secret are among them.
	loaded := map[string]bool{}
	for _, lc := range u.Values("Service", "LoadCredential") {
		name, _, _ := strings.Cut(lc, ":")
		loaded[name] = true
	}
	var text strings.Builder
	for _, e := range u {
		text.WriteString(e.Value + "\n")
	}
	used := map[string]bool{}
	for _, m := range credentialRef.FindAllStringSubmatch(text.String(), -1) {
		used[m[1]] = true
		if !loaded[m[1]] {
			report("credential %q is used but not loaded with LoadCredential=", m[1])
		}
	}
	// Every KEYLESS_* variable the unit sets is one keyless reads.
	for _, name := range envName.FindAllString(text.String(), -1) {
		if !strings.Contains(code, `"`+name+`"`) {
			report("the unit sets %s, which keyless does not read", name)
		}
	}
	// The master key goes by file, the admin secret by the environment
	// (there is no file variant for it), both from credentials.
	masterFile := ""
	for _, env := range u.Values("Service", "Environment") {
		if v, ok := strings.CutPrefix(env, "KEYLESS_MASTER_KEY_FILE="); ok {
			masterFile = v
		}
	}
	if m := credentialRef.FindStringSubmatch(masterFile); m == nil || !loaded[m[1]] {
		report("KEYLESS_MASTER_KEY_FILE=%q is not a loaded credential (LoadCredential=master.key:… and Environment=KEYLESS_MASTER_KEY_FILE=%%d/master.key)", masterFile)
	}
	secretFromCred := regexp.MustCompile(`KEYLESS_ADMIN_SECRET_ACCESS_KEY=\$\$\(cat "\$\$CREDENTIALS_DIRECTORY/([A-Za-z0-9._-]+)"\)`).FindStringSubmatch(exec)
	if secretFromCred == nil || !loaded[secretFromCred[1]] {
		report("the admin secret does not come from a loaded credential")
	}
	return problems
}

// goSource is keyless's non-test Go code, to check that the environment
// variables the packaging sets are ones keyless reads.
func goSource(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, dir := range []string{"../../internal", "../../cmd"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			b.Write(src)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestSystemdExecStart runs the unit's ExecStart as systemd would (after
// its $$ and specifier expansion), with a stand-in keyless, a credentials
// directory and a state directory: keyless gets the administrator from the
// credentials, the master key file and its arguments.
func TestSystemdExecStart(t *testing.T) {
	sh := testenv.RequireCommand(t, "sh")
	u, err := ParseUnit(readFile(t, unitPath))
	if err != nil {
		t.Fatal(err)
	}
	exec0, _ := u.Last("Service", "ExecStart")
	script, ok := strings.CutPrefix(exec0, "/bin/sh -c '")
	if !ok || !strings.HasSuffix(script, "'") || strings.Count(script, "'") != 1 {
		t.Fatalf("ExecStart is not /bin/sh -c '…' with no inner single quote: %s", exec0)
	}
	script = strings.TrimSuffix(script, "'")
	creds, state, bin := t.TempDir(), t.TempDir(), t.TempDir()
	for name, v := range map[string]string{"master.key": "bWFzdGVy\n", "admin-access-key-id": "AKIAUNITTESTADMIN01", "admin-secret-access-key": "unit-test-secret-0123456789"} {
		if err := os.WriteFile(filepath.Join(creds, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stub := filepath.Join(bin, "keyless")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" \"id=$KEYLESS_ADMIN_ACCESS_KEY_ID\" \"secret=$KEYLESS_ADMIN_SECRET_ACCESS_KEY\" \"master=$KEYLESS_MASTER_KEY_FILE\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// systemd's expansion: specifiers, then $$ → $.
	expand := strings.NewReplacer("%d", creds, "%S", state, "%%", "%", "$$", "$")
	script = strings.ReplaceAll(expand.Replace(script), "/usr/local/bin/keyless", stub)
	cmd := exec.Command(sh, "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "CREDENTIALS_DIRECTORY=" + creds, "STATE_DIRECTORY=" + state}
	for _, env := range u.Values("Service", "Environment") {
		cmd.Env = append(cmd.Env, expand.Replace(env))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ExecStart: %v\n%s", err, out)
	}
	want := []string{"serve", "--listen", "127.0.0.1:8400", "--data", state, "--log-format", "json",
		"id=AKIAUNITTESTADMIN01", "secret=unit-test-secret-0123456789", "master=" + filepath.Join(creds, "master.key")}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")); diff != "" {
		t.Errorf("keyless started with (-want +got):\n%s", diff)
	}
	// A missing credential stops the start instead of running without it.
	if err := os.Remove(filepath.Join(creds, "admin-secret-access-key")); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(sh, "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "CREDENTIALS_DIRECTORY=" + creds, "STATE_DIRECTORY=" + state}
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("started without the admin secret:\n%s", out)
	}
}
