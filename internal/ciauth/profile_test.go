package ciauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keylessci/keyless/internal/testenv"
)

func testCreds(id string) Credentials {
	return Credentials{AccessKeyID: "ASIA" + id, SecretAccessKey: "secret/" + id, SessionToken: "token+" + id + "==", Expiration: time.Now().Add(time.Hour)}
}

func copyFile(t *testing.T, from, to string) []byte {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func checkMode(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
	}
}

func TestWriteProfileKeepsOtherContent(t *testing.T) {
	home := t.TempDir()
	files, err := DefaultProfileFiles(Env{"HOME": home})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".aws", "credentials"); files.Credentials != want {
		t.Fatalf("credentials path %q, want %q", files.Credentials, want)
	}
	credsBefore := copyFile(t, "testdata/ini/credentials-existing.in", files.Credentials)
	configBefore := copyFile(t, "testdata/ini/config-existing.in", files.Config)

	creds := testCreds("X1")
	if err := WriteProfile(context.Background(), files, Profile{Name: "ci", Credentials: creds, Region: "eu-central-1", EndpointURL: "http://127.0.0.1:8400"}); err != nil {
		t.Fatal(err)
	}
	credsAfter, _ := os.ReadFile(files.Credentials)
	configAfter, _ := os.ReadFile(files.Config)
	cm, _ := credentialsSectionMatcher("ci")
	checkPreserved(t, credsBefore, credsAfter, cm)
	pm, _ := configSectionMatcher("ci")
	checkPreserved(t, configBefore, configAfter, pm)
	checkMode(t, files.Credentials)
	checkMode(t, files.Config)

	want := map[string]string{"aws_access_key_id": creds.AccessKeyID, "aws_secret_access_key": creds.SecretAccessKey,
		"aws_session_token": creds.SessionToken, "region_note": "keep me"}
	if diff := cmp.Diff(want, sectionValues(credsAfter, cm)); diff != "" {
		t.Errorf("credentials [ci] (-want +got):\n%s", diff)
	}
	if v := sectionValues(configAfter, pm); v["region"] != "eu-central-1" || v["endpoint_url"] != "http://127.0.0.1:8400" || v["cli_pager"] != "" {
		t.Errorf("config [profile ci] = %v", v)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(files.Credentials))
	for _, e := range entries {
		if n := e.Name(); n != "credentials" && n != "config" && n != "credentials.lock" && n != "config.lock" {
			t.Errorf("stray file %s", n)
		}
	}
}

// TestWriteProfileBotocoreReadsIt checks the result with the real parser of
// the AWS CLI v1 (botocore), not with our own.
func TestWriteProfileBotocoreReadsIt(t *testing.T) {
	py := testenv.RequirePython(t, "botocore")
	dir := t.TempDir()
	files := ProfileFiles{Credentials: filepath.Join(dir, "credentials"), Config: filepath.Join(dir, "config")}
	copyFile(t, "testdata/ini/credentials-existing.in", files.Credentials)
	copyFile(t, "testdata/ini/config-existing.in", files.Config)
	creds := testCreds("BOTO")
	if err := WriteProfile(context.Background(), files, Profile{Name: "ci", Credentials: creds, Region: "eu-central-1", EndpointURL: "http://127.0.0.1:8400"}); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys
from botocore.session import Session
s = Session(profile="ci")
c = s.get_credentials().get_frozen_credentials()
full = s.full_config["profiles"]
print(json.dumps({"key": c.access_key, "secret": c.secret_key, "token": c.token,
  "region": s.get_config_variable("region"), "endpoint": full["ci"].get("endpoint_url"),
  "s3": full["ci"].get("s3"), "others": sorted(full)}))`
	cmd := exec.Command(py, "-c", script)
	cmd.Env = []string{"AWS_SHARED_CREDENTIALS_FILE=" + files.Credentials, "AWS_CONFIG_FILE=" + files.Config, "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("botocore: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]any{
		"key": creds.AccessKeyID, "secret": creds.SecretAccessKey, "token": creds.SessionToken,
		"region": "eu-central-1", "endpoint": "http://127.0.0.1:8400",
		"s3":     map[string]any{"addressing_style": "path"},
		"others": []any{"ci", "ci-other", "default", "prod"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("botocore sees (-want +got):\n%s", diff)
	}
}

func TestDefaultProfileFilesHonoursEnv(t *testing.T) {
	got, err := DefaultProfileFiles(Env{"HOME": "/h", "AWS_SHARED_CREDENTIALS_FILE": "~/creds", "AWS_CONFIG_FILE": "/etc/aws/config"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ProfileFiles{Credentials: "/h/creds", Config: "/etc/aws/config"}, got); diff != "" {
		t.Error(diff)
	}
	if _, err := DefaultProfileFiles(Env{}); err == nil {
		t.Error("no HOME and no overrides should fail")
	}
}

func TestWriteProfileThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "aws-credentials")
	copyFile(t, "testdata/ini/credentials-existing.in", real)
	link := filepath.Join(dir, ".aws", "credentials")
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../dotfiles/aws-credentials", link); err != nil {
		t.Fatal(err)
	}
	files := ProfileFiles{Credentials: link, Config: filepath.Join(dir, ".aws", "config")}
	if err := WriteProfile(context.Background(), files, Profile{Name: "ci", Credentials: testCreds("L")}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced by a file")
	}
	b, _ := os.ReadFile(real)
	cm, _ := credentialsSectionMatcher("ci")
	if sectionValues(b, cm)["aws_access_key_id"] != "ASIAL" {
		t.Errorf("the link target was not updated:\n%s", b)
	}
	if _, err := os.Stat(files.Config); err == nil {
		t.Errorf("config written although there was nothing to set")
	}
}

func TestWriteProfileRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "a b", "x]", "[x", "a\nb"} {
		err := WriteProfile(context.Background(), ProfileFiles{Credentials: "/nonexistent/c", Config: "/nonexistent/k"}, Profile{Name: name})
		if err == nil {
			t.Errorf("profile %q accepted", name)
		}
	}
}

// allProfiles returns the credentials sections' access key ids.
func allProfiles(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range splitLines(b) {
		if name, ok := sectionName(l.text); ok {
			m, _ := credentialsSectionMatcher(name)
			got[name] = sectionValues(b, m)["aws_access_key_id"]
		}
	}
	return got
}

func TestWriteProfileConcurrentGoroutines(t *testing.T) {
	dir := t.TempDir()
	files := ProfileFiles{Credentials: filepath.Join(dir, "credentials"), Config: filepath.Join(dir, "config")}
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("g%d", i)
			errs <- WriteProfile(context.Background(), files, Profile{Name: id, Credentials: testCreds(id), Region: "us-east-2"})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := allProfiles(t, files.Credentials)
	for i := range n {
		id := fmt.Sprintf("g%d", i)
		if got[id] != "ASIA"+id {
			t.Errorf("profile %s lost (have %d profiles)", id, len(got))
		}
	}
	cfg, _ := os.ReadFile(files.Config)
	if c := bytes.Count(cfg, []byte("[profile g")); c != n {
		t.Errorf("config has %d profiles, want %d", c, n)
	}
	checkMode(t, files.Credentials)
}

func TestWriteProfileConcurrentProcesses(t *testing.T) {
	if testenv.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	files := ProfileFiles{Credentials: filepath.Join(dir, "credentials"), Config: filepath.Join(dir, "config")}
	const procs, each = 6, 8
	var wg sync.WaitGroup
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	for p := range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=profile-writer", "HELPER_CREDENTIALS="+files.Credentials,
				"HELPER_CONFIG="+files.Config, "HELPER_COUNT="+strconv.Itoa(each), "HELPER_ID="+strconv.Itoa(p))
			outs[p], errs[p] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for p := range procs {
		if errs[p] != nil {
			t.Fatalf("writer %d: %v\n%s", p, errs[p], outs[p])
		}
	}
	got := allProfiles(t, files.Credentials)
	if len(got) != procs*each {
		t.Errorf("%d profiles in the file, want %d", len(got), procs*each)
	}
	for p := range procs {
		for i := range each {
			name := fmt.Sprintf("w%d-%d", p, i)
			if got[name] != "ASIA"+name {
				t.Errorf("profile %s lost", name)
			}
		}
	}
}

func BenchmarkWriteProfile(b *testing.B) {
	dir := b.TempDir()
	files := ProfileFiles{Credentials: filepath.Join(dir, "credentials"), Config: filepath.Join(dir, "config")}
	c := testCreds("B")
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteProfile(context.Background(), files, Profile{Name: "ci", Credentials: c, Region: "us-east-1"}); err != nil {
			b.Fatal(err)
		}
	}
}
