package ciauth

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/testenv"
)

// helperAssume is a minimal `keyless assume` built from the test binary,
// so the real AWS CLI can run it as a credential_process:
//
//	ciauth.test -- --role-arn ARN --endpoint-url URL --token-file F --output credential-process --cache-dir D
func helperAssume() int {
	args := os.Args[1:]
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	var opts Options
	fs := flag.NewFlagSet("assume", flag.ContinueOnError)
	fs.StringVar(&opts.RoleARN, "role-arn", "", "")
	fs.StringVar(&opts.EndpointURL, "endpoint-url", "", "")
	fs.StringVar(&opts.TokenFile, "token-file", "", "")
	fs.StringVar(&opts.Output, "output", "", "")
	fs.StringVar(&opts.Profile, "profile", "", "")
	fs.StringVar(&opts.CacheDir, "cache-dir", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	err := Assume(context.Background(), opts, Runtime{
		Env:    EnvFromList(os.Environ()),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyless:", err)
		return 1
	}
	return 0
}

// startMoto runs moto_server on a free loopback port until the test ends.
func startMoto(t *testing.T) string {
	t.Helper()
	bin := testenv.RequireCommand(t, "moto_server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	logf, err := os.Create(filepath.Join(t.TempDir(), "moto.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("moto_server did not start: %v\n%s", err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// awsEnv is the environment for the real AWS CLI: ours minus any AWS_*
// settings, plus the given ones.
func awsEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, append([]string{"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}, extra...)...)
}

func callerIdentity(t *testing.T, aws string, env []string, args ...string) map[string]string {
	t.Helper()
	cmd := exec.Command(aws, append([]string{"sts", "get-caller-identity", "--output", "json"}, args...)...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("aws sts get-caller-identity %v: %v\n%s%s", args, err, out, stderr)
	}
	var id map[string]string
	if err := json.Unmarshal(out, &id); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return id
}

// TestEndToEndMoto: the real ciauth code against moto's STS (a plain AWS
// STS emulator), then the unmodified AWS CLI uses what it wrote. This shows
// the client speaks plain AWS.
func TestEndToEndMoto(t *testing.T) {
	if testenv.Short() {
		t.Skip("starts moto_server")
	}
	aws := testenv.RequireCommand(t, "aws")
	endpoint := startMoto(t)
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token.jwt")
	tok := makeJWT(t, map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/web:ref:refs/heads/main",
		"aud": "sts.amazonaws.com", "exp": time.Now().Add(5 * time.Minute).Unix()})
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	const role = "arn:aws:iam::123456789012:role/ci-deploy"
	env := Env{
		"HOME":           dir,
		"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/web", "GITHUB_JOB": "deploy",
		"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1",
	}
	var stderr strings.Builder
	err := Assume(context.Background(), Options{RoleARN: role, EndpointURL: endpoint, TokenFile: tokFile, Profile: "ci", Region: "eu-west-1"},
		Runtime{Env: env, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "::add-mask::") {
		t.Errorf("no masks under GitHub Actions: %q", stderr.String())
	}
	files, _ := DefaultProfileFiles(env)
	awsFiles := awsEnv("AWS_SHARED_CREDENTIALS_FILE="+files.Credentials, "AWS_CONFIG_FILE="+files.Config)
	wantArn := "arn:aws:sts::123456789012:assumed-role/ci-deploy/gha-acme.web-deploy-4242-1"

	id := callerIdentity(t, aws, awsFiles, "--profile", "ci", "--endpoint-url", endpoint)
	if id["Arn"] != wantArn || id["Account"] != "123456789012" {
		t.Errorf("with --endpoint-url: %v, want Arn %s", id, wantArn)
	}
	// The profile's own endpoint_url is enough.
	id = callerIdentity(t, aws, awsFiles, "--profile", "ci")
	if id["Arn"] != wantArn {
		t.Errorf("via the profile's endpoint_url: %v, want Arn %s", id, wantArn)
	}

	t.Run("credential_process", func(t *testing.T) {
		cacheDir := filepath.Join(dir, "cache")
		cfg := filepath.Join(dir, "cp-config")
		line := fmt.Sprintf("%s -- --role-arn %s --endpoint-url %s --token-file %s --output credential-process --cache-dir %s",
			os.Args[0], role, endpoint, tokFile, cacheDir)
		if err := os.WriteFile(cfg, []byte("[profile cp]\nregion = us-east-1\nendpoint_url = "+endpoint+"\ncredential_process = "+line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cpEnv := awsEnv("AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"), helperEnv+"=assume")
		id := callerIdentity(t, aws, cpEnv, "--profile", "cp")
		if !strings.HasPrefix(id["Arn"], "arn:aws:sts::123456789012:assumed-role/ci-deploy/keyless-") {
			t.Errorf("credential_process identity %v", id)
		}
		entries, err := os.ReadDir(cacheDir)
		if err != nil || len(entries) != 2 { // the entry and its lock
			t.Fatalf("cache dir: %v %v", entries, err)
		}
		var entry string
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".json") {
				entry = filepath.Join(cacheDir, e.Name())
			}
		}
		before, _ := os.ReadFile(entry)
		fi, _ := os.Stat(entry)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("cache entry mode %v", fi.Mode().Perm())
		}
		id2 := callerIdentity(t, aws, cpEnv, "--profile", "cp")
		after, _ := os.ReadFile(entry)
		if id2["Arn"] != id["Arn"] || string(before) != string(after) {
			t.Errorf("second process call did not reuse the cached credentials")
		}
	})
}
