package integrations

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keylessci/keyless/internal/testenv"
)

const (
	orbAdminID     = "AKIAKEYLESSORBADMIN1"
	orbAdminSecret = "keyless-orb-test-admin-secret-0123456789"
	orbAccount     = "123456789012"
)

// buildKeyless builds the keyless binary into a directory of its own.
func buildKeyless(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "keyless"), "github.com/keylessci/keyless/cmd/keyless").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// serveKeyless runs `keyless serve` with the built-in issuer at
// BASE/oidc on a free loopback port until the test ends; it returns BASE.
func serveKeyless(t *testing.T, bin string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	cmd := exec.Command(filepath.Join(bin, "keyless"), "serve", "--listen", addr, "--data", t.TempDir(),
		"--account-id", orbAccount, "--issuer-url", base+"/oidc", "--allow-loopback-http-issuers", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "KEYLESS_ADMIN_ACCESS_KEY_ID="+orbAdminID, "KEYLESS_ADMIN_SECRET_ACCESS_KEY="+orbAdminSecret)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("keyless serve exited: %v", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return base
		}
	}
	t.Fatal("keyless serve did not start")
	return ""
}

// TestOrbSetupAgainstServer runs the orb's setup_oidc script, as CircleCI
// would render it, with the real keyless binary against a real keyless
// serve: parameters naming environment variables are expanded, the
// credentials land in the profile with the region and the endpoint, and,
// set_aws_env_vars being true by default, later steps get them through
// $BASH_ENV and can sign with them.
func TestOrbSetupAgainstServer(t *testing.T) {
	bash := testenv.RequireCommand(t, "bash")
	testenv.RequireCommand(t, "go")
	bin := buildKeyless(t)
	base := serveKeyless(t, bin)
	ctx := context.Background()

	admin := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(orbAdminID, orbAdminSecret, ""), RetryMaxAttempts: 1}
	ic := iam.NewFromConfig(admin, func(o *iam.Options) { o.BaseEndpoint = aws.String(base) })
	issuerURL := base + "/oidc"
	prov, err := ic.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(issuerURL), ClientIDList: []string{"sts.amazonaws.com"}})
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimPrefix(issuerURL, "http://")
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + aws.ToString(prov.OpenIDConnectProviderArn) + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + prefix + `:aud":"sts.amazonaws.com"},"StringLike":{"` + prefix + `:sub":"org/acme/project/*"}}}]}`
	if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("orb-deploy"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	mint := exec.Command(filepath.Join(bin, "keyless"), "token", "mint", "--endpoint-url", base, "--audience", "sts.amazonaws.com", "--subject", "org/acme/project/api/user/u1")
	mint.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+orbAdminID, "AWS_SECRET_ACCESS_KEY="+orbAdminSecret, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	tok, err := mint.Output()
	if err != nil {
		t.Fatalf("token mint: %v", err)
	}

	cmd := loadOrbCommand(t)
	script := string(read(t, filepath.Join(orbSrc, "scripts", "setup_oidc.sh")))
	home := t.TempDir()
	env := orbEnv(t, cmd, map[string]string{
		"role_arn": "arn:aws:iam::${AWS_ACCOUNT_ID}:role/$DEPLOY_ROLE", "endpoint_url": "http://${KEYLESS_ADDR}",
		"region": "$DEPLOY_REGION", "profile_name": "deploy",
	})
	for k, v := range map[string]string{
		"PATH": bin + ":/usr/bin:/bin", "HOME": home, "BASH_ENV": filepath.Join(home, ".bash_env"),
		"CIRCLECI": "true", "CIRCLE_OIDC_TOKEN_V2": strings.TrimSpace(string(tok)), "CIRCLE_PROJECT_REPONAME": "api", "CIRCLE_JOB": "deploy", "CIRCLE_BUILD_NUM": "77",
		"AWS_ACCOUNT_ID": orbAccount, "DEPLOY_ROLE": "orb-deploy", "KEYLESS_ADDR": strings.TrimPrefix(base, "http://"), "DEPLOY_REGION": "eu-west-1",
	} {
		env[k] = v
	}
	if out, err := runScript(t, script, env); err != nil {
		t.Fatalf("setup_oidc: %v\n%s", err, out)
	}

	config := string(read(t, filepath.Join(home, ".aws", "config")))
	for _, want := range []string{"[profile deploy]", "region = eu-west-1", "endpoint_url = " + base} {
		if !strings.Contains(config, want) {
			t.Errorf("~/.aws/config lacks %q:\n%s", want, config)
		}
	}
	if creds := string(read(t, filepath.Join(home, ".aws", "credentials"))); !strings.Contains(creds, "[deploy]") {
		t.Errorf("~/.aws/credentials has no [deploy] profile:\n%s", creds)
	}

	// A later step: CircleCI sources $BASH_ENV before each run command.
	later := exec.Command(bash, "-c", `. "$BASH_ENV"; printf '%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" "$AWS_REGION" "$AWS_ENDPOINT_URL"`)
	later.Env = []string{"BASH_ENV=" + env["BASH_ENV"], "PATH=/usr/bin:/bin"}
	out, err := later.Output()
	if err != nil {
		t.Fatalf("sourcing $BASH_ENV: %v", err)
	}
	v := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(v) != 5 || !strings.HasPrefix(v[0], "ASIA") || v[3] != "eu-west-1" || v[4] != base {
		t.Fatalf("exported to later steps: %q", v)
	}
	session := aws.Config{Region: v[3], Credentials: credentials.NewStaticCredentialsProvider(v[0], v[1], v[2]), RetryMaxAttempts: 1}
	who, err := sts.NewFromConfig(session, func(o *sts.Options) { o.BaseEndpoint = aws.String(v[4]) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with the exported credentials: %v", err)
	}
	if got := aws.ToString(who.Arn); !strings.HasPrefix(got, "arn:aws:sts::"+orbAccount+":assumed-role/orb-deploy/circleci-api-deploy-77") {
		t.Errorf("caller %s, want the orb-deploy role with a session named after the job", got)
	}
}
