// Package demo owns `keyless demo`: the whole CI-migration flow in one
// process on loopback, printed as a CI job log. It starts a real server
// (STS, IAM, the OIDC issuer, the audit trail) on an embedded store in a
// temporary directory and then acts only through the public APIs a user
// has: the AWS SDK against the Query API, the issuer's token endpoint, the
// audit files on disk.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/keylessci/keyless/internal/audit"
	iamids "github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/issuer"
	"github.com/keylessci/keyless/internal/server"
)

// Options configures a demo run.
type Options struct {
	Out io.Writer
	// DataDir is kept after the run when set; otherwise a temporary
	// directory is used and removed.
	DataDir string
	// Verbose also prints the server's log.
	Verbose bool
}

// The demo's fictional CircleCI organisation and projects.
const (
	orgID        = "9f2c4e1a-7b3d-4c5e-8f6a-1b2c3d4e5f60"
	projectID    = "5e8d7c6b-4a39-4281-9f0e-d1c2b3a49586"
	otherProject = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	userID       = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
	projectName  = "payments-api"
	accountID    = "123456789012"
)

type step struct {
	out   io.Writer
	n     int
	total int
}

func (s *step) do(title string, fn func() (string, error)) error {
	s.n++
	start := time.Now()
	fmt.Fprintf(s.out, "\n#%d/%d %s\n", s.n, s.total, title)
	detail, err := fn()
	if err != nil {
		fmt.Fprintf(s.out, "   FAILED: %v\n", err)
		return fmt.Errorf("step %d (%s): %w", s.n, title, err)
	}
	for _, line := range strings.Split(strings.TrimRight(detail, "\n"), "\n") {
		fmt.Fprintf(s.out, "   %s\n", line)
	}
	fmt.Fprintf(s.out, "   ok (%s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// Run runs the demo; it returns an error when any step fails.
func Run(ctx context.Context, o Options) (err error) {
	out := o.Out
	started := time.Now()
	dir := o.DataDir
	if dir == "" {
		dir, err = os.MkdirTemp("", "keyless-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback: %w", err)
	}
	base := "http://" + ln.Addr().String()
	issuerURL := base + "/oidc/org/" + orgID
	adminID, err := iamids.NewID(rand.Reader, iamids.PrefixAccessKey, accountID, 16)
	if err != nil {
		return err
	}
	adminSecret, err := iamids.NewSecretAccessKey(rand.Reader)
	if err != nil {
		return err
	}
	env := map[string]string{"KEYLESS_ADMIN_ACCESS_KEY_ID": adminID, "KEYLESS_ADMIN_SECRET_ACCESS_KEY": adminSecret}
	cfg := server.Defaults()
	cfg.Listen = ln.Addr().String()
	cfg.Data = filepath.Join(dir, "data")
	cfg.AccountID = accountID
	cfg.AllowLoopbackHTTPIssuers = true
	cfg.Issuers = []server.IssuerConfig{{ID: "circleci-demo", URL: issuerURL, Profile: issuer.ProfileCircleCI}}
	logger := slog.New(slog.DiscardHandler)
	if o.Verbose {
		logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	fmt.Fprintf(out, "keyless demo: a CircleCI project moves from static AWS keys to OIDC, on loopback.\n")
	fmt.Fprintf(out, "data dir %s, account %s\n", cfg.Data, accountID)
	st := &step{out: out, total: 10}

	var srv *server.Server
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	defer func() {
		stopServe()
		if srv != nil {
			if e := <-served; e != nil && err == nil {
				err = fmt.Errorf("server shutdown: %w", e)
			}
		}
	}()
	if err := st.do("Start keyless: STS, IAM, the OIDC issuer for the CircleCI org, the audit trail", func() (string, error) {
		srv, err = server.New(ctx, cfg, server.Options{Logger: logger, Getenv: func(k string) string { return env[k] }, Listener: ln})
		if err != nil {
			return "", err
		}
		go func() { served <- srv.Serve(serveCtx) }()
		return fmt.Sprintf("endpoint  %s\nissuer    %s", base, issuerURL), nil
	}); err != nil {
		ln.Close()
		return err
	}

	admin := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(adminID, adminSecret, ""), RetryMaxAttempts: 1}
	iamc := iam.NewFromConfig(admin, func(o *iam.Options) { o.BaseEndpoint = aws.String(base) })
	stsAnon := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(base), RetryMaxAttempts: 1})
	prefix := strings.TrimPrefix(issuerURL, "http://")
	var providerARN string
	if err := st.do("Register the issuer as an IAM OIDC identity provider (iam create-open-id-connect-provider)", func() (string, error) {
		// A kept data dir holds the provider of an earlier run, on another
		// loopback port: drop it, its issuer is gone.
		removed, err := removeStaleProviders(ctx, iamc, issuerURL)
		if err != nil {
			return "", err
		}
		note := ""
		if removed > 0 {
			note = fmt.Sprintf("\n(removed %d provider(s) of an earlier demo run in this data dir)", removed)
		}
		resp, err := iamc.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
			Url: aws.String(issuerURL), ClientIDList: []string{orgID},
		})
		switch {
		case isCode(err, "EntityAlreadyExists"):
			// An earlier run on the same port: the same provider.
			providerARN = "arn:aws:iam::" + accountID + ":oidc-provider/" + strings.TrimPrefix(issuerURL, "http://")
		case err != nil:
			return "", err
		default:
			providerARN = aws.ToString(resp.OpenIDConnectProviderArn)
		}
		return "provider  " + providerARN + "\naudience  " + orgID + " (CircleCI's aud is the org id)" + note, nil
	}); err != nil {
		return err
	}

	roleName := "circleci-oidc-" + projectName
	roleARN := "arn:aws:iam::" + accountID + ":role/" + roleName
	trust := fmt.Sprintf(`{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "CircleCIProject",
    "Effect": "Allow",
    "Principal": {"Federated": %q},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {
      "StringEquals": {%q: %q},
      "StringLike": {%q: %q}
    }
  }]
}`, providerARN, prefix+":aud", orgID, prefix+":sub", "org/"+orgID+"/project/"+projectID+"/user/*")
	if err := st.do("Create the role "+roleName+", trusting only that project (StringLike on sub, as CircleCI documents)", func() (string, error) {
		note := ""
		_, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName: aws.String(roleName), AssumeRolePolicyDocument: aws.String(trust), MaxSessionDuration: aws.Int32(3600),
			Description: aws.String("Deploys " + projectName + " from CircleCI"),
		})
		switch {
		case isCode(err, "EntityAlreadyExists"):
			// A kept data dir from an earlier run: trust this run's provider.
			if _, err := iamc.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
				RoleName: aws.String(roleName), PolicyDocument: aws.String(trust),
			}); err != nil {
				return "", err
			}
			note = "\n(the role existed from an earlier demo run: its trust policy now names this run's provider)"
		case err != nil:
			return "", err
		}
		perm := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::` + projectName + `-artifacts/*"}]}`
		if _, err := iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(roleName), PolicyName: aws.String("artifacts"), PolicyDocument: aws.String(perm)}); err != nil {
			return "", err
		}
		return "role      " + roleARN + "\ntrust     sub like org/" + orgID + "/project/" + projectID + "/user/*\npolicy    s3:GetObject, s3:PutObject on " + projectName + "-artifacts/*" + note, nil
	}); err != nil {
		return err
	}

	minter := &issuer.Client{Endpoint: base, Sign: issuer.SigV4Signer(admin.Credentials, "us-east-1", time.Now)}
	mint := func(project string) (string, error) {
		resp, err := minter.Mint(ctx, "circleci-demo", issuer.MintRequest{
			Subject: "org/" + orgID + "/project/" + project + "/user/" + userID,
			Claims:  map[string]any{"oidc.circleci.com/vcs-ref": "refs/heads/main", "oidc.circleci.com/vcs-origin": "github.com/acme/" + projectName},
		})
		if err != nil {
			return "", err
		}
		return resp.Token, nil
	}
	var jobToken string
	if err := st.do("A CircleCI job gets its ID token from the issuer (what $CIRCLE_OIDC_TOKEN_V2 holds)", func() (string, error) {
		jobToken, err = mint(projectID)
		if err != nil {
			return "", err
		}
		claims, err := unverifiedClaims(jobToken)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("iss       %v\nsub       %v\naud       %v\nproject   %v\nexpires   %s", claims["iss"], claims["sub"], claims["aud"],
			claims["oidc.circleci.com/project-id"], time.Unix(int64(claims["exp"].(float64)), 0).UTC().Format(time.RFC3339)), nil
	}); err != nil {
		return err
	}

	var creds *sts.AssumeRoleWithWebIdentityOutput
	if err := st.do("Exchange it for short-lived credentials (sts assume-role-with-web-identity)", func() (string, error) {
		creds, err = stsAnon.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(roleARN), RoleSessionName: aws.String("circleci-" + projectName + "-1042"),
			WebIdentityToken: aws.String(jobToken), DurationSeconds: aws.Int32(900),
		})
		if err != nil {
			return "", err
		}
		c := creds.Credentials
		return fmt.Sprintf("access key %s (secret and session token not shown)\nexpires    %s (15 minutes)\nsession    %s",
			aws.ToString(c.AccessKeyId), c.Expiration.UTC().Format(time.RFC3339), aws.ToString(creds.AssumedRoleUser.Arn)), nil
	}); err != nil {
		return err
	}

	if err := st.do("Use them: sts get-caller-identity, signed with the session keys", func() (string, error) {
		c := creds.Credentials
		session := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)), RetryMaxAttempts: 1}
		who, err := sts.NewFromConfig(session, func(o *sts.Options) { o.BaseEndpoint = aws.String(base) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return "", err
		}
		if aws.ToString(who.Arn) != aws.ToString(creds.AssumedRoleUser.Arn) {
			return "", fmt.Errorf("caller %s is not the assumed role %s", aws.ToString(who.Arn), aws.ToString(creds.AssumedRoleUser.Arn))
		}
		return fmt.Sprintf("arn       %s\nuser id   %s", aws.ToString(who.Arn), aws.ToString(who.UserId)), nil
	}); err != nil {
		return err
	}

	if err := st.do("A job of ANOTHER project tries the same role: refused, and the administrator can see why", func() (string, error) {
		other, err := mint(otherProject)
		if err != nil {
			return "", err
		}
		_, err = stsAnon.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(roleARN), RoleSessionName: aws.String("circleci-other-7"), WebIdentityToken: aws.String(other),
		})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
			return "", fmt.Errorf("want AccessDenied, got %v", err)
		}
		msg, enc, _ := strings.Cut(ae.ErrorMessage(), " Encoded authorization failure message: ")
		adminSTS := sts.NewFromConfig(admin, func(o *sts.Options) { o.BaseEndpoint = aws.String(base) })
		dec, err := adminSTS.DecodeAuthorizationMessage(ctx, &sts.DecodeAuthorizationMessageInput{EncodedMessage: aws.String(enc)})
		if err != nil {
			return "", fmt.Errorf("decode-authorization-message: %w", err)
		}
		var ex struct {
			Keyless struct {
				Reason string `json:"reason"`
			} `json:"keyless"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(dec.DecodedMessage)), &ex); err != nil {
			return "", err
		}
		return fmt.Sprintf("the job sees  AccessDenied: %s (+ an encoded message)\nthe admin decodes (sts decode-authorization-message):\n  %s", msg, wrap(ex.Keyless.Reason, 96, "  ")), nil
	}); err != nil {
		return err
	}

	auditDir := server.AuditDir(cfg.Data)
	if err := st.do("Stop the server: in-flight requests finish, the audit trail is sealed and signed", func() (string, error) {
		stopServe()
		if err := <-served; err != nil {
			return "", err
		}
		srv = nil
		return "sealed into CloudTrail delivery files and a signed digest under " + auditDir, nil
	}); err != nil {
		return err
	}

	if err := st.do("Read the trail (keyless audit tail): every exchange, refused ones too, in CloudTrail's format", func() (string, error) {
		var b strings.Builder
		n := 0
		for e, err := range audit.Read(ctx, auditDir, audit.ReadOptions{}) {
			if err != nil {
				return "", err
			}
			ev := e.Event
			if ev.EventSource != "sts.amazonaws.com" {
				continue
			}
			n++
			who := ""
			if ev.UserIdentity != nil {
				who = ev.UserIdentity.UserName
				if ev.UserIdentity.ARN != "" {
					who = ev.UserIdentity.ARN
				}
			}
			outcome := "ok"
			if ev.ErrorCode != "" {
				outcome = ev.ErrorCode
			}
			fmt.Fprintf(&b, "%s  %-26s %-13s %s\n", ev.EventTime.UTC().Format("15:04:05"), ev.EventName, outcome, who)
			if run, ok := ev.AdditionalEventData["ciRun"].(map[string]any); ok {
				fmt.Fprintf(&b, "          CI run: %v\n", compact(run))
			}
		}
		if n < 3 {
			return "", fmt.Errorf("expected the exchanges in the trail, found %d STS events", n)
		}
		return b.String(), nil
	}); err != nil {
		return err
	}

	if err := st.do("Verify the trail's integrity (keyless audit verify): digests chained and signed, files hashed", func() (string, error) {
		data, err := server.OpenAuditVerifier(ctx, cfg.Data)
		if err != nil {
			return "", err
		}
		rep, err := audit.Verify(ctx, auditDir, data)
		if err != nil {
			return "", err
		}
		if !rep.Intact {
			return "", fmt.Errorf("trail not intact:\n%s", rep)
		}
		return strings.TrimSpace(rep.String()), nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDemo passed in %s. No long-term AWS key was used by the CI job.\n", time.Since(started).Round(time.Millisecond))
	fmt.Fprintf(out, "Next: keyless serve (README), keyless assume in your CI (integrations/), docs/migrate-ci.md.\n")
	return nil
}

// isCode reports whether err is an AWS API error with this code.
func isCode(err error, code string) bool {
	ae, ok := errors.AsType[smithy.APIError](err)
	return ok && ae.ErrorCode() == code
}

// removeStaleProviders deletes the demo's providers left by earlier runs in
// a kept data dir: the same issuer path on another loopback port (every run
// listens on a new one). It returns how many it deleted.
func removeStaleProviders(ctx context.Context, c *iam.Client, issuerURL string) (int, error) {
	list, err := c.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		return 0, err
	}
	current := strings.TrimPrefix(issuerURL, "http://")
	path := current[strings.IndexByte(current, '/'):]
	n := 0
	for _, p := range list.OpenIDConnectProviderList {
		arn := aws.ToString(p.Arn)
		_, host, ok := strings.Cut(arn, ":oidc-provider/")
		port, isDemo := strings.CutPrefix(strings.TrimSuffix(host, path), "127.0.0.1:")
		if !ok || host == current || !isDemo || !strings.HasSuffix(host, path) || strings.Trim(port, "0123456789") != "" {
			continue
		}
		if _, err := c.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: p.Arn}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// unverifiedClaims decodes a JWT's payload for display only.
func unverifiedClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	b, err := decodeSegment(parts[1])
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func compact(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func wrap(s string, width int, indent string) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if len(line)+len(w)+1 > width && line != "" {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n"+indent)
}

func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
