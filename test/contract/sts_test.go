package contract

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/keylessci/keyless/internal/testenv"
)

// federation is a keyless server with a loopback test issuer registered as
// an OIDC provider and a role trusting one CI project.
type federation struct {
	srv      *server
	issuer   *oidctest.Server
	roleARN  string
	provider string
	prefix   string // condition-key prefix: 127.0.0.1:PORT/ci
}

const ciAudience = "sts.amazonaws.com"

func newFederation(t *testing.T) *federation {
	t.Helper()
	iss := oidctest.NewServer(t, "/ci", oidctest.Options{})
	s := startServer(t, "", "--allow-loopback-http-issuers")
	prefix := strings.TrimPrefix(iss.URL(), "http://")
	f := &federation{srv: s, issuer: iss, prefix: prefix,
		roleARN: "arn:aws:iam::" + accountID + ":role/ci-deploy", provider: "arn:aws:iam::" + accountID + ":oidc-provider/" + prefix}
	c := s.iamClient(adminKeyID, adminSecret, "")
	ctx := context.Background()
	if _, err := c.CreateOpenIDConnectProvider(ctx, iamCreateProvider(iss.URL(), ciAudience)); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + f.provider + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + prefix + `:aud":"` + ciAudience + `"},` +
		`"StringLike":{"` + prefix + `:sub":"repo:octo-org/app:*"}}}]}`
	if _, err := c.CreateRole(ctx, iamCreateRole("ci-deploy", trust)); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *federation) token(t *testing.T, sub string) string {
	return f.issuer.Mint(t, sub, ciAudience)
}

// TestWebIdentityWithAWSCLI: the exchange and the use of its credentials
// through the unmodified AWS CLI, including the refused token's encoded
// explanation decoded by an administrator.
func TestWebIdentityWithAWSCLI(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	tok := f.token(t, "repo:octo-org/app:ref:refs/heads/main")
	r := awsCLI(t, f.srv.URL, awsEnv(t, "", "", ""), "sts", "assume-role-with-web-identity",
		"--role-arn", f.roleARN, "--role-session-name", "gha-42", "--web-identity-token", tok, "--duration-seconds", "900")
	if r.Code != 0 {
		t.Fatalf("assume: %s", r.Stderr)
	}
	out := r.JSON(t)
	creds := out["Credentials"].(map[string]any)
	akid, _ := creds["AccessKeyId"].(string)
	if !strings.HasPrefix(akid, "ASIA") || len(akid) != 20 || len(creds["SecretAccessKey"].(string)) != 40 {
		t.Fatalf("credentials = %v", creds)
	}
	if out["Provider"] != f.provider || out["Audience"] != ciAudience || out["SubjectFromWebIdentityToken"] != "repo:octo-org/app:ref:refs/heads/main" {
		t.Fatalf("response = %v", out)
	}
	if _, ok := out["PackedPolicySize"]; ok {
		t.Error("PackedPolicySize present without session policy")
	}
	arn := "arn:aws:sts::" + accountID + ":assumed-role/ci-deploy/gha-42"
	if out["AssumedRoleUser"].(map[string]any)["Arn"] != arn {
		t.Fatalf("assumed role = %v", out["AssumedRoleUser"])
	}
	who := awsCLI(t, f.srv.URL, awsEnv(t, akid, creds["SecretAccessKey"].(string), creds["SessionToken"].(string)), "sts", "get-caller-identity")
	if who.Code != 0 {
		t.Fatalf("get-caller-identity: %s", who.Stderr)
	}
	id := who.JSON(t)
	if id["Arn"] != arn || id["Account"] != accountID || !strings.HasSuffix(id["UserId"].(string), ":gha-42") || !strings.HasPrefix(id["UserId"].(string), "AROA") {
		t.Fatalf("identity = %v", id)
	}
	// The session may not call IAM: its role has no permission policy.
	deny := awsCLI(t, f.srv.URL, awsEnv(t, akid, creds["SecretAccessKey"].(string), creds["SessionToken"].(string)), "iam", "list-roles")
	wantAWSError(t, deny, "AccessDenied")

	// Another project's token is refused; the message carries an encoded
	// explanation only an administrator can decode.
	bad := awsCLI(t, f.srv.URL, awsEnv(t, "", "", ""), "sts", "assume-role-with-web-identity",
		"--role-arn", f.roleARN, "--role-session-name", "evil", "--web-identity-token", f.token(t, "repo:evil-org/app:ref:refs/heads/main"))
	wantAWSError(t, bad, "AccessDenied")
	if !strings.Contains(bad.Stderr, "Not authorized to perform sts:AssumeRoleWithWebIdentity") || strings.Contains(bad.Stderr, "evil-org") {
		t.Fatalf("refusal message = %s", bad.Stderr)
	}
	_, enc, ok := strings.Cut(bad.Stderr, "Encoded authorization failure message: ")
	if !ok {
		t.Fatalf("no encoded message in %s", bad.Stderr)
	}
	enc = strings.TrimSpace(enc)
	dec := f.srv.aws(t, "sts", "decode-authorization-message", "--encoded-message", enc)
	if dec.Code != 0 {
		t.Fatalf("decode: %s", dec.Stderr)
	}
	var explanation map[string]any
	if err := json.Unmarshal([]byte(dec.JSON(t)["DecodedMessage"].(string)), &explanation); err != nil {
		t.Fatal(err)
	}
	kl := explanation["keyless"].(map[string]any)
	reason, _ := kl["reason"].(string)
	if !strings.Contains(reason, "sub") && !strings.Contains(reason, "StringLike") {
		t.Errorf("reason does not name the failed condition: %q", reason)
	}
	trace, _ := json.Marshal(kl["trace"])
	if !strings.Contains(string(trace), "repo:evil-org/app:ref:refs/heads/main") || !strings.Contains(string(trace), "repo:octo-org/app:*") {
		t.Errorf("trace lacks expected vs actual: %s", trace)
	}
	// The session itself may not decode it (no sts:DecodeAuthorizationMessage).
	nd := awsCLI(t, f.srv.URL, awsEnv(t, akid, creds["SecretAccessKey"].(string), creds["SessionToken"].(string)), "sts", "decode-authorization-message", "--encoded-message", enc)
	wantAWSError(t, nd, "AccessDenied")
}

// TestWebIdentityEnvironmentFlows runs CONTRACT.md §3: AWS_ROLE_ARN +
// AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ENDPOINT_URL_STS with the AWS CLI,
// boto3 and aws-sdk-go-v2, none of them told anything else.
func TestWebIdentityEnvironmentFlows(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	tokenFile := filepath.Join(t.TempDir(), "token.jwt")
	if err := os.WriteFile(tokenFile, []byte(f.token(t, "repo:octo-org/app:ref:refs/heads/main")), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(awsEnv(t, "", "", ""),
		"AWS_ENDPOINT_URL_STS="+f.srv.URL,
		"AWS_ROLE_ARN="+f.roleARN,
		"AWS_WEB_IDENTITY_TOKEN_FILE="+tokenFile,
		"AWS_ROLE_SESSION_NAME=env-flow",
	)
	wantARN := "arn:aws:sts::" + accountID + ":assumed-role/ci-deploy/env-flow"

	t.Run("aws cli", func(t *testing.T) {
		bin := testenv.RequireCommand(t, "aws")
		cmd := exec.Command(bin, "sts", "get-caller-identity", "--output", "json")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws sts get-caller-identity: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), wantARN) {
			t.Fatalf("identity = %s", out)
		}
	})
	t.Run("boto3", func(t *testing.T) {
		py := testenv.RequirePython(t, "boto3")
		cmd := exec.Command(py, "-c", "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("boto3: %v\n%s", err, out)
		}
		if strings.TrimSpace(string(out)) != wantARN {
			t.Fatalf("boto3 identity = %s", out)
		}
	})
	t.Run("aws-sdk-go-v2", func(t *testing.T) {
		ctx := context.Background()
		stsClient := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.srv.URL)})
		provider := stscreds.NewWebIdentityRoleProvider(stsClient, f.roleARN, stscreds.IdentityTokenFile(tokenFile),
			func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = "env-flow" })
		cfg := aws.Config{Region: "us-east-1", Credentials: aws.NewCredentialsCache(provider)}
		who, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(f.srv.URL) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(who.Arn) != wantARN {
			t.Fatalf("identity = %s", aws.ToString(who.Arn))
		}
		// A refused token surfaces AWS's error code through the provider.
		badFile := filepath.Join(t.TempDir(), "bad.jwt")
		os.WriteFile(badFile, []byte(f.token(t, "repo:evil/app:ref:refs/heads/main")), 0o600)
		bad := stscreds.NewWebIdentityRoleProvider(stsClient, f.roleARN, stscreds.IdentityTokenFile(badFile))
		_, err = bad.Retrieve(ctx)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
			t.Fatalf("refused token: %v", err)
		}
	})
}
