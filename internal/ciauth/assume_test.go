package ciauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type assumeFixture struct {
	sts    *fakeSTS
	srv    *httptest.Server
	env    Env
	stdout bytes.Buffer
	stderr bytes.Buffer
	dir    string
}

func newAssumeFixture(t *testing.T, env Env) *assumeFixture {
	t.Helper()
	f := &assumeFixture{sts: newFakeSTS(t, nil), dir: t.TempDir(), env: Env{}}
	f.srv = httptest.NewServer(f.sts)
	t.Cleanup(f.srv.Close)
	tok := filepath.Join(f.dir, "token")
	if err := os.WriteFile(tok, []byte(makeJWT(t, map[string]any{"sub": "ci"})), 0o600); err != nil {
		t.Fatal(err)
	}
	f.env["HOME"] = f.dir
	f.env["AWS_WEB_IDENTITY_TOKEN_FILE"] = tok
	for k, v := range env {
		f.env[k] = v
	}
	return f
}

func (f *assumeFixture) run(t *testing.T, opts Options) error {
	t.Helper()
	if opts.RoleARN == "" {
		opts.RoleARN = testRole
	}
	if opts.EndpointURL == "" && f.env.Get("AWS_ENDPOINT_URL_STS") == "" {
		opts.EndpointURL = f.srv.URL
	}
	return Assume(context.Background(), opts, Runtime{
		Env: f.env, Stdout: &f.stdout, Stderr: &f.stderr, HTTPClient: f.srv.Client(), Rand: constRand(7),
	})
}

func touch(t *testing.T, p string) string {
	t.Helper()
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAssumeGitHubActionsFiles(t *testing.T) {
	f := newAssumeFixture(t, Env{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/web", "GITHUB_JOB": "deploy", "GITHUB_RUN_ID": "99", "GITHUB_RUN_ATTEMPT": "1"})
	ghEnv := touch(t, filepath.Join(f.dir, "github_env"))
	ghOut := touch(t, filepath.Join(f.dir, "github_output"))
	f.env["GITHUB_ENV"], f.env["GITHUB_OUTPUT"] = ghEnv, ghOut
	if err := f.run(t, Options{GitHubEnv: true, GitHubOutput: true, OutputCredentials: true, MaskAccountID: true, Region: "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	envB, _ := os.ReadFile(ghEnv)
	got := parseGitHubFile(t, string(envB))
	call := f.sts.Calls()[0]
	if call.Get("RoleSessionName") != "gha-acme.web-deploy-99-1" {
		t.Errorf("session name %q", call.Get("RoleSessionName"))
	}
	secret, token := got["AWS_SECRET_ACCESS_KEY"], got["AWS_SESSION_TOKEN"]
	if !strings.HasPrefix(got["AWS_ACCESS_KEY_ID"], "ASIA") || secret == "" || token == "" ||
		got["AWS_REGION"] != "eu-west-1" || got["AWS_ENDPOINT_URL"] != f.srv.URL {
		t.Errorf("GITHUB_ENV = %v", got)
	}
	outB, _ := os.ReadFile(ghOut)
	outs := parseGitHubFile(t, string(outB))
	if outs["aws-account-id"] != "123456789012" || outs["aws-secret-access-key"] != secret {
		t.Errorf("GITHUB_OUTPUT = %v", outs)
	}
	// Masks come first on stderr, and the secrets appear nowhere else.
	stderr := f.stderr.String()
	wantMasks := "::add-mask::" + secret + "\n::add-mask::" + token + "\n::add-mask::123456789012\n"
	if !strings.HasPrefix(stderr, wantMasks) {
		t.Errorf("stderr does not start with the masks:\n%s", stderr)
	}
	rest := strings.TrimPrefix(stderr, wantMasks) + f.stdout.String()
	if strings.Contains(rest, secret) || strings.Contains(rest, token) {
		t.Errorf("a secret was printed outside ::add-mask::")
	}
}

func TestAssumeGitHubOutputWithoutCredentials(t *testing.T) {
	f := newAssumeFixture(t, Env{"GITHUB_ACTIONS": "true"})
	ghOut := touch(t, filepath.Join(f.dir, "github_output"))
	f.env["GITHUB_OUTPUT"] = ghOut
	if err := f.run(t, Options{GitHubOutput: true}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(ghOut)
	got := parseGitHubFile(t, string(b))
	if _, ok := got["aws-secret-access-key"]; ok || got["aws-account-id"] != "123456789012" || got["aws-expiration"] == "" {
		t.Errorf("GITHUB_OUTPUT without output-credentials = %v", got)
	}
}

func TestAssumeCircleCIProfileAndBashEnv(t *testing.T) {
	f := newAssumeFixture(t, Env{"CIRCLECI": "true", "CIRCLE_PROJECT_REPONAME": "web", "CIRCLE_JOB": "deploy", "CIRCLE_BUILD_NUM": "12"})
	f.env["CIRCLE_OIDC_TOKEN_V2"] = makeJWT(t, map[string]any{"sub": "org/o/project/p/user/u/vcs-origin/github.com/acme/web/vcs-ref/refs/heads/main"})
	bashEnv := touch(t, filepath.Join(f.dir, "bash_env"))
	f.env["BASH_ENV"] = bashEnv
	if err := f.run(t, Options{Profile: "ci", CircleCIBashEnv: true, Duration: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	call := f.sts.Calls()[0]
	if call.Get("WebIdentityToken") != f.env["CIRCLE_OIDC_TOKEN_V2"] || call.Get("DurationSeconds") != "7200" || call.Get("RoleSessionName") != "circleci-web-deploy-12" {
		t.Errorf("STS got %v", call)
	}
	creds, _ := os.ReadFile(filepath.Join(f.dir, ".aws", "credentials"))
	cm, _ := credentialsSectionMatcher("ci")
	if v := sectionValues(creds, cm); !strings.HasPrefix(v["aws_access_key_id"], "ASIA") || v["aws_session_token"] == "" {
		t.Errorf("credentials [ci] = %v", v)
	}
	cfg, _ := os.ReadFile(filepath.Join(f.dir, ".aws", "config"))
	pm, _ := configSectionMatcher("ci")
	if v := sectionValues(cfg, pm); v["region"] != "us-east-1" || v["endpoint_url"] != f.srv.URL {
		t.Errorf("config [profile ci] = %v", v)
	}
	b, _ := os.ReadFile(bashEnv)
	if !strings.Contains(string(b), "export AWS_ACCESS_KEY_ID='ASIA") {
		t.Errorf("BASH_ENV = %s", b)
	}
	if strings.Contains(f.stderr.String(), "::add-mask::") {
		t.Error("masks printed outside GitHub Actions")
	}
	if f.stdout.Len() != 0 {
		t.Errorf("profile mode printed to stdout: %q", f.stdout.String())
	}
}

func TestAssumeStdoutOutputs(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		f := newAssumeFixture(t, nil)
		if err := f.run(t, Options{Output: OutputEnv, SessionName: "my session!"}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f.stdout.String(), "export AWS_SESSION_TOKEN='") || f.sts.Calls()[0].Get("RoleSessionName") != "my-session" {
			t.Errorf("stdout %q, session %q", f.stdout.String(), f.sts.Calls()[0].Get("RoleSessionName"))
		}
	})
	t.Run("json", func(t *testing.T) {
		f := newAssumeFixture(t, Env{"AWS_ROLE_SESSION_NAME": "from-env"})
		if err := f.run(t, Options{Output: OutputJSON}); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Credentials     map[string]string
			AssumedRoleUser map[string]string
		}
		if err := json.Unmarshal(f.stdout.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.AssumedRoleUser["Arn"] != "arn:aws:sts::123456789012:assumed-role/ci-deploy/from-env" || doc.Credentials["SessionToken"] == "" {
			t.Errorf("json %s", f.stdout.String())
		}
	})
}

// TestAssumeAWSEndpointNotRecorded: credentials from AWS's own STS work at
// every AWS endpoint, so none is written into the profile or environment.
func TestAssumeAWSEndpointNotRecorded(t *testing.T) {
	f := newAssumeFixture(t, Env{"AWS_ENDPOINT_URL_STS": "https://sts.eu-west-1.amazonaws.com", "AWS_REGION": "eu-west-1"})
	var host string
	err := Assume(context.Background(), Options{RoleARN: testRole, Output: OutputEnv}, Runtime{
		Env: f.env, Stdout: &f.stdout,
		HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			host = r.URL.Host
			return handlerTransport{f.sts}.RoundTrip(r)
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if host != "sts.eu-west-1.amazonaws.com" {
		t.Errorf("called %q", host)
	}
	if strings.Contains(f.stdout.String(), "AWS_ENDPOINT_URL") || !strings.Contains(f.stdout.String(), "AWS_REGION='eu-west-1'") {
		t.Errorf("exports:\n%s", f.stdout.String())
	}
}

func TestAssumeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		env  Env
		opts Options
	}{
		{name: "no sink", opts: Options{RoleARN: testRole}},
		{name: "profile and output", opts: Options{RoleARN: testRole, Profile: "ci", Output: OutputEnv}},
		{name: "unknown output", opts: Options{RoleARN: testRole, Output: "yaml"}},
		{name: "credential-process with CI files", env: Env{"GITHUB_ENV": "/x"}, opts: Options{RoleARN: testRole, Output: OutputCredentialProcess, GitHubEnv: true}},
		{name: "github-env outside GitHub", opts: Options{RoleARN: testRole, GitHubEnv: true}},
		{name: "bash-env outside CircleCI", opts: Options{RoleARN: testRole, CircleCIBashEnv: true}},
		{name: "no role", opts: Options{Output: OutputEnv}},
		{name: "role not an ARN", opts: Options{RoleARN: "ci-deploy", Output: OutputEnv}},
		{name: "endpoint not a URL", opts: Options{RoleARN: testRole, EndpointURL: "keyless:8400", Output: OutputEnv}},
		{name: "duration too short", opts: Options{RoleARN: testRole, Duration: time.Minute, Output: OutputEnv}},
		{name: "duration too long", opts: Options{RoleARN: testRole, Duration: 13 * time.Hour, Output: OutputEnv}},
		{name: "bad profile name", opts: Options{RoleARN: testRole, Profile: "a b"}},
		{name: "output-credentials without github-output", env: Env{"GITHUB_ENV": "/x"}, opts: Options{RoleARN: testRole, GitHubEnv: true, OutputCredentials: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Assume(context.Background(), tt.opts, Runtime{Env: tt.env})
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("err = %v, want ErrUsage", err)
			}
		})
	}
}

func TestResolveFallbacks(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		opts Options
		env  Env
		want plan
	}{
		{name: "env defaults", env: Env{"AWS_ROLE_ARN": testRole, "AWS_ENDPOINT_URL": "http://k:1", "AWS_DEFAULT_REGION": "ap-east-1"},
			want: plan{roleARN: testRole, endpoint: "http://k:1", recordedEP: "http://k:1", region: "ap-east-1", sessionName: "keyless-20260102T030405Z"}},
		{name: "service-specific endpoint wins", env: Env{"AWS_ROLE_ARN": testRole, "AWS_ENDPOINT_URL": "http://all:1", "AWS_ENDPOINT_URL_STS": "http://sts:2", "AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "x"},
			want: plan{roleARN: testRole, endpoint: "http://sts:2", recordedEP: "http://sts:2", region: "eu-west-3", sessionName: "keyless-20260102T030405Z"}},
		{name: "flags win", opts: Options{RoleARN: testRole, EndpointURL: "https://sts.us-west-2.amazonaws.com", Region: "us-west-2", SessionName: "n"},
			env:  Env{"AWS_ROLE_ARN": "arn:other", "AWS_ENDPOINT_URL_STS": "http://sts:2", "AWS_REGION": "eu-west-3"},
			want: plan{roleARN: testRole, endpoint: "https://sts.us-west-2.amazonaws.com", region: "us-west-2", sessionName: "keyless-n", sessionKey: "keyless-n"}},
		{name: "nothing: real AWS us-east-1", opts: Options{RoleARN: testRole},
			want: plan{roleARN: testRole, region: "us-east-1", sessionName: "keyless-20260102T030405Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolve(tt.opts, tt.env, now)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(plan{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestAssumeReportsTokenSourceErrors(t *testing.T) {
	err := Assume(context.Background(), Options{RoleARN: testRole, Output: OutputEnv}, Runtime{Env: Env{"GITHUB_ACTIONS": "true"}})
	if !errors.Is(err, ErrGitHubNoIDToken) || !strings.Contains(err.Error(), "id-token: write") {
		t.Errorf("err = %v", err)
	}
}

// TestAssumeBrokeredCredentialsNameNoEndpoint: a keyless server in broker
// mode answers with AWS credentials (the upstream names keyless's broker
// subject for the role asked for); the profile and the exports must then
// send the AWS SDKs to AWS, not to keyless. A subject of another role keeps
// the endpoint.
func TestAssumeBrokeredCredentialsNameNoEndpoint(t *testing.T) {
	for _, tc := range []struct {
		subject  string
		brokered bool
	}{
		{"keyless:123456789012:role/ci-deploy", true},
		{"keyless:123456789012:role/other", false},
		{"keyless:999999999999:role/ci-deploy", false},
		{"repo:acme/web:ref:refs/heads/main", false},
	} {
		t.Run(tc.subject, func(t *testing.T) {
			f := newAssumeFixture(t, nil)
			f.sts.respond = func(int, url.Values) stsReply { return stsReply{subject: tc.subject} }
			bashEnv := touch(t, filepath.Join(f.dir, "bash_env"))
			f.env["BASH_ENV"] = bashEnv
			if err := f.run(t, Options{Profile: "ci", CircleCIBashEnv: true}); err != nil {
				t.Fatal(err)
			}
			exports, _ := os.ReadFile(bashEnv)
			cfg, _ := os.ReadFile(filepath.Join(f.dir, ".aws", "config"))
			pm, _ := configSectionMatcher("ci")
			gotProfile := sectionValues(cfg, pm)["endpoint_url"]
			gotEnv := strings.Contains(string(exports), "AWS_ENDPOINT_URL")
			if tc.brokered && (gotProfile != "" || gotEnv) {
				t.Errorf("brokered AWS credentials point at keyless: profile endpoint_url %q, exports:\n%s", gotProfile, exports)
			}
			if !tc.brokered && (gotProfile != f.srv.URL || !gotEnv) {
				t.Errorf("keyless credentials lost their endpoint: profile endpoint_url %q, exports:\n%s", gotProfile, exports)
			}
		})
	}
}
