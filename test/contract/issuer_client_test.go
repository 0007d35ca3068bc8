package contract

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/testenv"
)

// issuerFederation is a keyless serve whose built-in issuer is registered
// as an OIDC provider, with a role trusting one subject pattern.
func issuerFederation(t *testing.T) (s *server, issuerURL, roleARN string) {
	t.Helper()
	s = startServer(t, "", "--issuer-url", "http://127.0.0.1:{PORT}/oidc", "--allow-loopback-http-issuers")
	issuerURL = s.URL + "/oidc"
	prefix := strings.TrimPrefix(issuerURL, "http://")
	c := s.iamClient(adminKeyID, adminSecret, "")
	ctx := context.Background()
	if _, err := c.CreateOpenIDConnectProvider(ctx, iamCreateProvider(issuerURL, "sts.amazonaws.com")); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::` + accountID + `:oidc-provider/` + prefix + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"` + prefix + `:sub":"repo:acme/app:*"}}}]}`
	if _, err := c.CreateRole(ctx, iamCreateRole("jenkins-deploy", trust)); err != nil {
		t.Fatal(err)
	}
	return s, issuerURL, "arn:aws:iam::" + accountID + ":role/jenkins-deploy"
}

// keyless runs the keyless binary with env.
func keyless(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestIssuerTokenWithBoto3: `keyless token mint` (the CLI, SigV4 as the
// admin) gives a token that boto3's own web-identity provider exchanges at
// keyless's STS, unmodified.
func TestIssuerTokenWithBoto3(t *testing.T) {
	t.Parallel()
	py := testenv.RequirePython(t, "boto3")
	s, _, roleARN := issuerFederation(t)
	admin := append(awsEnv(t, adminKeyID, adminSecret, ""), "AWS_ENDPOINT_URL_STS="+s.URL)
	tok, stderr, err := keyless(t, admin, "token", "mint", "--audience", "sts.amazonaws.com", "--subject", "repo:acme/app:ref:refs/heads/main")
	if err != nil {
		t.Fatalf("token mint: %v\n%s", err, stderr)
	}
	tok = strings.TrimSpace(tok)
	if strings.Count(tok, ".") != 2 || strings.Contains(stderr, tok) {
		t.Fatalf("mint printed %q (stderr %q)", tok, stderr)
	}
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte(tok), 0o600)
	cmd := exec.Command(py, "-c", "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])")
	cmd.Env = append(awsEnv(t, "", "", ""), "AWS_ENDPOINT_URL_STS="+s.URL, "AWS_ROLE_ARN="+roleARN,
		"AWS_WEB_IDENTITY_TOKEN_FILE="+file, "AWS_ROLE_SESSION_NAME=jenkins-17")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "arn:aws:sts::"+accountID+":assumed-role/jenkins-deploy/jenkins-17" {
		t.Fatalf("boto3 identity = %s", got)
	}
	// An issuer-client key of another issuer may not mint here. (That
	// issuer must exist for create-key: it is named by a configuration.)
	otherCfg := filepath.Join(t.TempDir(), "other.yaml")
	os.WriteFile(otherCfg, []byte("issuers:\n  - id: other\n    url: https://keyless.example.com/other\n"), 0o600)
	key, _, err := keyless(t, os.Environ(), "admin", "create-key", "--data", s.Data, "--config", otherCfg, "--name", "other-ci", "--kind", "issuer-client", "--scope", "other", "--output", "env")
	if err != nil {
		t.Fatalf("create-key: %v", err)
	}
	var id, secret string
	for _, line := range strings.Split(key, "\n") {
		if v, ok := strings.CutPrefix(line, "AWS_ACCESS_KEY_ID="); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "AWS_SECRET_ACCESS_KEY="); ok {
			secret = v
		}
	}
	_, stderr, err = keyless(t, append(awsEnv(t, id, secret, ""), "AWS_ENDPOINT_URL_STS="+s.URL), "token", "mint", "--issuer", "default", "--audience", "sts.amazonaws.com", "--subject", "repo:acme/app:x")
	if err == nil || !strings.Contains(stderr, "AccessDenied") {
		t.Fatalf("issuer-client key minted for another issuer: err=%v stderr=%s", err, stderr)
	}
}

// TestAssumeAgainstKeyless: `keyless assume --profile ci` against a real
// keyless serve, then the unmodified AWS CLI uses the profile; a refused
// token exits non-zero with the AWS error code.
func TestAssumeAgainstKeyless(t *testing.T) {
	t.Parallel()
	s, _, roleARN := issuerFederation(t)
	admin := append(awsEnv(t, adminKeyID, adminSecret, ""), "AWS_ENDPOINT_URL_STS="+s.URL)
	mint := func(sub string) string {
		tok, stderr, err := keyless(t, admin, "token", "mint", "--audience", "sts.amazonaws.com", "--subject", sub)
		if err != nil {
			t.Fatalf("token mint: %v\n%s", err, stderr)
		}
		f := filepath.Join(t.TempDir(), "tok")
		os.WriteFile(f, []byte(strings.TrimSpace(tok)), 0o600)
		return f
	}
	env := awsEnv(t, "", "", "") // a CI job: no AWS credentials at all
	_, stderr, err := keyless(t, env, "assume", "--role-arn", roleARN, "--endpoint-url", s.URL, "--token-file", mint("repo:acme/app:ref:refs/heads/main"),
		"--session-name", "ci-run-5", "--profile", "ci")
	if err != nil {
		t.Fatalf("assume: %v\n%s", err, stderr)
	}
	r := awsCLI(t, s.URL, env, "sts", "get-caller-identity", "--profile", "ci")
	if r.Code != 0 || !strings.Contains(r.Stdout, "assumed-role/jenkins-deploy/ci-run-5") {
		t.Fatalf("aws --profile ci: %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	_, stderr, err = keyless(t, env, "assume", "--role-arn", roleARN, "--endpoint-url", s.URL, "--token-file", mint("repo:evil/app:ref:refs/heads/main"), "--output", "json")
	if err == nil || !strings.Contains(stderr, "AccessDenied") {
		t.Fatalf("refused token: err=%v stderr=%s", err, stderr)
	}
}
