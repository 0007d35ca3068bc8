package contract

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/keylessci/keyless/internal/testenv"
)

var updateSetupGolden = flag.Bool("update-broker-setup", false, "rewrite testdata/broker-setup/*.golden")

const (
	setupUpstreamAccount = "222222222222"
	setupCISubject       = "repo:acme/web:ref:refs/heads/main"
)

// setupPair is keyless A (the broker, whose built-in issuer signs the
// broker tokens and the CI tokens alike) and keyless B playing AWS: it
// trusts nothing until the setup output registers A's issuer in it.
type setupPair struct {
	a, b    *server
	issuer  string // A's issuer URL
	roleARN string // the keyless role at A
	env     []string
}

func newSetupPair(t *testing.T) *setupPair {
	t.Helper()
	b := startServerAccount(t, "", setupUpstreamAccount, "--allow-loopback-http-issuers")
	// A calls B's STS: the standard override in A's environment.
	t.Setenv("AWS_ENDPOINT_URL_STS", b.URL)
	a := startServer(t, "", "--issuer-url", "http://127.0.0.1:{PORT}/oidc", "--allow-loopback-http-issuers")
	p := &setupPair{a: a, b: b, issuer: a.URL + "/oidc", roleARN: "arn:aws:iam::" + accountID + ":role/ci-deploy",
		env: awsEnv(t, adminKeyID, adminSecret, "")}
	prefix := strings.TrimPrefix(p.issuer, "http://")
	if r := a.aws(t, "iam", "create-open-id-connect-provider", "--url", p.issuer, "--client-id-list", "sts.amazonaws.com"); r.Code != 0 {
		t.Fatalf("create provider at A: %s", r.Stderr)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
		`"Principal":{"Federated":"arn:aws:iam::` + accountID + `:oidc-provider/` + prefix + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity",` +
		`"Condition":{"StringEquals":{"` + prefix + `:aud":"sts.amazonaws.com","` + prefix + `:sub":"` + setupCISubject + `"}}}]}`
	if r := a.aws(t, "iam", "create-role", "--role-name", "ci-deploy", "--assume-role-policy-document", trust, "--max-session-duration", "7200"); r.Code != 0 {
		t.Fatalf("create role at A: %s", r.Stderr)
	}
	return p
}

// ciToken mints a CI token at A's issuer.
func (p *setupPair) ciToken(t *testing.T, subject string) string {
	t.Helper()
	code, tok, stderr := runKeyless(t, p.env, "token", "mint", "--endpoint-url", p.a.URL, "--audience", "sts.amazonaws.com", "--subject", subject)
	if code != 0 {
		t.Fatalf("token mint: %s", stderr)
	}
	return strings.TrimSpace(tok)
}

// exchange is the CI side at A: AssumeRoleWithWebIdentity with the AWS CLI
// (unsigned), returning the AssumedRoleUser ARN and the credentials.
func (p *setupPair) exchange(t *testing.T, session string) (arn string, creds []string) {
	t.Helper()
	r := awsCLI(t, p.a.URL, awsEnv(t, "", "", ""), "sts", "assume-role-with-web-identity",
		"--role-arn", p.roleARN, "--role-session-name", session, "--web-identity-token", p.ciToken(t, setupCISubject))
	if r.Code != 0 {
		t.Fatalf("exchange at A: %s", r.Stderr)
	}
	out := r.JSON(t)
	c, _ := out["Credentials"].(map[string]any)
	u, _ := out["AssumedRoleUser"].(map[string]any)
	arn, _ = u["Arn"].(string)
	id, _ := c["AccessKeyId"].(string)
	secret, _ := c["SecretAccessKey"].(string)
	token, _ := c["SessionToken"].(string)
	return arn, awsEnv(t, id, secret, token)
}

// setup runs keyless broker aws-setup against A with args; it returns the
// output with A's port replaced by {PORT_A}, for the golden files.
func (p *setupPair) setup(t *testing.T, args ...string) (out, normalised string) {
	t.Helper()
	code, stdout, stderr := runKeyless(t, p.env, append([]string{"broker", "aws-setup", "--role", "ci-deploy", "--endpoint-url", p.a.URL}, args...)...)
	if code != 0 {
		t.Fatalf("broker aws-setup %v: exit %d\n%s", args, code, stderr)
	}
	port := p.a.URL[strings.LastIndexByte(p.a.URL, ':')+1:]
	return stdout, strings.ReplaceAll(stdout, "127.0.0.1:"+port, "127.0.0.1:{PORT_A}")
}

func setupGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "broker-setup", name)
	if *updateSetupGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// runSetupScript runs a setup script with bash in a fresh directory (trust.json
// lands there) with env, and fails the test when it fails.
func runSetupScript(t *testing.T, script string, env []string) string {
	t.Helper()
	bash := testenv.RequireCommand(t, "bash")
	dir := t.TempDir()
	f := filepath.Join(dir, "setup.sh")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, f)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("setup script: %v\n%s\nscript:\n%s", err, out, script)
	}
	return string(out)
}

// TestBrokerSetupAppliedMakesBrokerWork is issue 13's must-show: the AWS
// CLI commands keyless broker aws-setup prints, applied unchanged with the
// real AWS CLI to a keyless playing AWS, make the brokered flow work with
// no other step: before, A answers the exchange with its own credentials;
// after, with B's, which B recognises (GetCallerIdentity at B returns the
// upstream assumed-role ARN). The Terraform form passes terraform fmt
// -check. Both outputs are compared with golden files (A's port
// normalised).
func TestBrokerSetupAppliedMakesBrokerWork(t *testing.T) {
	testenv.RequireCommand(t, "aws")
	p := newSetupPair(t)

	arn, _ := p.exchange(t, "before")
	if want := "arn:aws:sts::" + accountID + ":assumed-role/ci-deploy/before"; arn != want {
		t.Fatalf("before the setup the exchange gave %s, want keyless's own %s", arn, want)
	}

	script, golden := p.setup(t, "--output", "cli", "--upstream-account", setupUpstreamAccount)
	setupGolden(t, "untagged.sh.golden", golden)
	_, tf := p.setup(t, "--output", "terraform", "--upstream-account", setupUpstreamAccount)
	setupGolden(t, "untagged.tf.golden", tf)
	setupTerraformFmtCheck(t, tf)

	// Applied as printed: the AWS commands go to B (AWS_ENDPOINT_URL),
	// the tag-role command names A itself. Both servers know the same
	// administrator key.
	runSetupScript(t, script, append(append([]string{}, p.env...), "AWS_ENDPOINT_URL="+p.b.URL))

	arn, creds := p.exchange(t, "after")
	want := "arn:aws:sts::" + setupUpstreamAccount + ":assumed-role/ci-deploy/after"
	if arn != want {
		t.Fatalf("after the setup the exchange gave %s, want the upstream's %s", arn, want)
	}
	r := awsCLI(t, p.b.URL, creds, "sts", "get-caller-identity")
	if r.Code != 0 {
		t.Fatalf("GetCallerIdentity at the upstream: %s", r.Stderr)
	}
	if got, _ := r.JSON(t)["Arn"].(string); got != want {
		t.Errorf("GetCallerIdentity at the upstream: %s, want %s", got, want)
	}

	// Now tagged: the setup output no longer ends with the tag command,
	// and says the same otherwise.
	_, tagged := p.setup(t, "--output", "cli")
	setupGolden(t, "tagged.sh.golden", tagged)
	if strings.Contains(tagged, "tag-role") {
		t.Errorf("a tagged role's setup still tags it:\n%s", tagged)
	}
	// Flags that contradict the tag are refused.
	if code, _, stderr := runKeyless(t, p.env, "broker", "aws-setup", "--role", "ci-deploy", "--endpoint-url", p.a.URL, "--upstream-account", "333333333333"); code != 2 || !strings.Contains(stderr, "is linked to arn:aws:iam::"+setupUpstreamAccount+":role/ci-deploy already") {
		t.Errorf("contradicting --upstream-account: exit %d\n%s", code, stderr)
	}
}

// setupTerraformFmtCheck runs terraform fmt -check on tf (terraform is required
// under CI=true).
func setupTerraformFmtCheck(t *testing.T, tf string) {
	t.Helper()
	bin := testenv.RequireCommand(t, "terraform")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(tf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "fmt", "-check", "-diff", "-no-color", dir)
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("terraform fmt -check: %v\n%s", err, out)
	}
}

// TestBrokerRevokeOlder: keyless broker revoke-older puts AWS's
// AWSRevokeOlderSessions policy on the upstream role through the upstream's
// IAM API: a brokered session issued before is denied afterwards, a new
// one works; a later run with an earlier cut-off changes nothing.
func TestBrokerRevokeOlder(t *testing.T) {
	testenv.RequireCommand(t, "aws")
	p := newSetupPair(t)
	script, _ := p.setup(t, "--output", "cli", "--upstream-account", setupUpstreamAccount)
	runSetupScript(t, script, append(append([]string{}, p.env...), "AWS_ENDPOINT_URL="+p.b.URL))
	// What the upstream role may do in "AWS": read itself.
	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetRole","Resource":"*"}]}`
	if r := p.b.aws(t, "iam", "put-role-policy", "--role-name", "ci-deploy", "--policy-name", "read", "--policy-document", allow); r.Code != 0 {
		t.Fatalf("put-role-policy at B: %s", r.Stderr)
	}
	getRole := func(creds []string) cliResult {
		return awsCLI(t, p.b.URL, creds, "iam", "get-role", "--role-name", "ci-deploy")
	}
	_, old := p.exchange(t, "old")
	if r := getRole(old); r.Code != 0 {
		t.Fatalf("the session cannot read its role before the revocation: %s", r.Stderr)
	}

	code, stdout, stderr := runKeyless(t, p.env, "broker", "revoke-older", "--role", "ci-deploy", "--endpoint-url", p.a.URL, "--upstream-endpoint-url", p.b.URL)
	if code != 0 {
		t.Fatalf("revoke-older: exit %d\n%s", code, stderr)
	}
	t.Logf("keyless broker revoke-older:\n%s", stdout)
	for _, want := range []string{"put inline policy AWSRevokeOlderSessions on arn:aws:iam::" + setupUpstreamAccount + ":role/ci-deploy", "otherwise they live until they expire"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("revoke-older output lacks %q:\n%s", want, stdout)
		}
	}
	wantAWSError(t, getRole(old), "AccessDenied")

	// The cut-off is at most a second ahead; a session issued after it works.
	time.Sleep(1100 * time.Millisecond)
	_, fresh := p.exchange(t, "fresh")
	if r := getRole(fresh); r.Code != 0 {
		t.Errorf("a session issued after the revocation is refused: %s", r.Stderr)
	}

	// Credentials of another account than the role's: refused, as
	// IAM's role names would otherwise hit a namesake there.
	code, _, stderr = runKeyless(t, p.env, "broker", "revoke-older", "--upstream-role-arn", "arn:aws:iam::333333333333:role/ci-deploy", "--upstream-endpoint-url", p.b.URL)
	if code != 1 || !strings.Contains(stderr, "reach arn:aws:iam::"+setupUpstreamAccount+":role/ci-deploy, not the upstream role arn:aws:iam::333333333333:role/ci-deploy") {
		t.Errorf("revoke-older in another account: exit %d\n%s", code, stderr)
	}

	// An earlier cut-off does not move the revocation back.
	code, stdout, stderr = runKeyless(t, p.env, "broker", "revoke-older", "--upstream-role-arn", "arn:aws:iam::"+setupUpstreamAccount+":role/ci-deploy",
		"--before", "2020-01-01T00:00:00Z", "--upstream-endpoint-url", p.b.URL)
	if code != 0 || !strings.Contains(stdout, "nothing changed") {
		t.Errorf("revoke-older with an earlier cut-off: exit %d\n%s%s", code, stdout, stderr)
	}
	wantAWSError(t, getRole(old), "AccessDenied")
}

// TestProviderThumbprintAndSetupOverTLS: keyless provider thumbprint prints
// the SHA-1 of the last certificate an HTTPS issuer sends (a generated
// chain root → intermediate → leaf: the intermediate's), saying on stderr
// that this machine's trust store does not vouch for it; an http URL is a
// usage error. broker aws-setup puts the same thumbprint in the
// Terraform's thumbprint_list and the CLI's --thumbprint-list.
func TestProviderThumbprintAndSetupOverTLS(t *testing.T) {
	iss := oidctest.NewTLSServer(t, "/oidc", oidctest.Options{})
	env := awsEnv(t, adminKeyID, adminSecret, "")
	code, stdout, stderr := runKeyless(t, env, "provider", "thumbprint", iss.URL())
	if code != 0 || stdout != iss.Thumbprint()+"\n" {
		t.Fatalf("provider thumbprint: exit %d, stdout %q, want %q\n%s", code, stdout, iss.Thumbprint()+"\n", stderr)
	}
	if !strings.Contains(stderr, "does not vouch for the chain of "+iss.HTTP.Listener.Addr().String()) {
		t.Errorf("no trust-store note on stderr:\n%s", stderr)
	}
	if code, _, stderr := runKeyless(t, env, "provider", "thumbprint", "http://127.0.0.1:1/oidc"); code != 2 || !strings.Contains(stderr, "want an https issuer URL") {
		t.Errorf("http URL: exit %d\n%s", code, stderr)
	}

	testenv.RequireCommand(t, "aws")
	a := startServer(t, "")
	if r := a.aws(t, "iam", "create-role", "--role-name", "ci-deploy", "--assume-role-policy-document", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/none.example"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`,
		"--tags", "Key=keyless:upstream-role-arn,Value=arn:aws:iam::"+setupUpstreamAccount+":role/deploy"); r.Code != 0 {
		t.Fatalf("create role: %s", r.Stderr)
	}
	for form, want := range map[string]string{
		"terraform": `thumbprint_list = ["` + iss.Thumbprint() + `"]`,
		"cli":       "--thumbprint-list " + iss.Thumbprint() + "\n",
	} {
		code, stdout, stderr := runKeyless(t, env, "broker", "aws-setup", "--role", "ci-deploy", "--endpoint-url", a.URL, "--issuer-url", iss.URL(), "--output", form)
		if code != 0 || !strings.Contains(stdout, want) || !strings.Contains(stdout, "role/deploy") {
			t.Errorf("aws-setup --output %s: exit %d, want %q in\n%s%s", form, code, want, stdout, stderr)
		}
	}
	// The default issuer URL (the endpoint + /oidc) is checked against its
	// discovery document: this server has no issuer there.
	if code, _, stderr := runKeyless(t, env, "broker", "aws-setup", "--role", "ci-deploy", "--endpoint-url", a.URL); code != 1 || !strings.Contains(stderr, "give --issuer-url if the issuer is elsewhere") {
		t.Errorf("aws-setup without an issuer: exit %d\n%s", code, stderr)
	}
}
