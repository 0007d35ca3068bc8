package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/ciauth"
	"github.com/spf13/cobra"
)

// newAssumeCmd is `keyless assume`: flags become ciauth.Options; the work is
// ciauth.Assume.
func newAssumeCmd() *cobra.Command {
	var (
		opts     ciauth.Options
		duration string
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "assume",
		Short: "Exchange this CI job's OIDC token for short-lived AWS credentials",
		Long: `Exchange the CI job's OIDC ID token for short-lived credentials with STS
AssumeRoleWithWebIdentity, against a keyless server (--endpoint-url) or real AWS,
and hand them to the steps that follow.

Token (first match): --token-file FILE (re-read on every exchange; "-" is stdin),
--token-env VAR, else auto-detected: CircleCI $CIRCLE_OIDC_TOKEN_V2 then
$CIRCLE_OIDC_TOKEN; GitHub Actions (a fresh token per exchange, for --audience);
Buildkite (buildkite-agent oidc request-token); $AWS_WEB_IDENTITY_TOKEN_FILE.
GitHub jobs need "permissions: id-token: write"; GitLab jobs pass --token-env
naming their id_tokens variable.

Output: --profile NAME writes ~/.aws/credentials and ~/.aws/config (locked,
atomic, other profiles untouched); --output env prints shell exports; --output
json prints the STS response; --output credential-process prints the
credential_process document, cached and refreshed before expiry (use it as
credential_process in an AWS profile so long jobs never run out).
--github-env, --github-output and --circleci-bash-env append to the CI's own
environment files. Under GitHub Actions the secret key and session token are
masked in the log first.

Transient failures (IDPCommunicationError, Throttling, 5xx, network) are
retried with backoff (5 attempts in all, or $AWS_MAX_ATTEMPTS); other errors
are reported in a few lines: the AWS code and one reason (decoded when the
AWS credentials in the environment may call sts:DecodeAuthorizationMessage),
the token's (unverified) claims and a hint for the cause. AWS credentials are
only taken from the environment or the profile given (AWS_PROFILE), never
from EC2 instance metadata.`,
		Example: `  # CircleCI, into a profile
  keyless assume --role-arn arn:aws:iam::123456789012:role/ci-deploy --profile ci

  # GitHub Actions against a keyless server, into the job's environment
  keyless assume --role-arn "$ROLE" --endpoint-url https://keyless.example.com --github-env

  # GitLab, with an id_tokens variable
  eval "$(keyless assume --role-arn "$ROLE" --token-env KEYLESS_ID_TOKEN --output env)"

  # ~/.aws/config, for jobs longer than a session
  [profile ci]
  credential_process = keyless assume --role-arn arn:aws:iam::123456789012:role/ci --output credential-process`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if duration != "" {
				d, err := parseDuration(duration)
				if err != nil {
					return exitCode(2, err)
				}
				opts.Duration = d
			}
			level := slog.LevelInfo
			if quiet || opts.Output == ciauth.OutputCredentialProcess {
				level = slog.LevelWarn
			}
			stderr := cmd.ErrOrStderr()
			logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
				Level: level,
				ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
					if len(groups) == 0 && a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			}))
			err := ciauth.Assume(cmd.Context(), opts, ciauth.Runtime{
				Env:               ciauth.EnvFromList(os.Environ()),
				Stdin:             cmd.InOrStdin(),
				Stdout:            cmd.OutOrStdout(),
				Stderr:            stderr,
				Now:               time.Now,
				Logger:            logger,
				DecodeCredentials: ciauth.DefaultDecodeCredentials(),
			})
			if errors.Is(err, ciauth.ErrUsage) {
				return exitCode(2, err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.RoleARN, "role-arn", "", "ARN of the role to assume (default $AWS_ROLE_ARN)")
	f.StringVar(&opts.EndpointURL, "endpoint-url", "", "STS endpoint, e.g. a keyless server (default $AWS_ENDPOINT_URL_STS, then $AWS_ENDPOINT_URL; none: real AWS)")
	f.StringVar(&opts.Region, "region", "", "region for the STS endpoint and the profile (default $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)")
	f.StringVar(&opts.Audience, "audience", ciauth.DefaultAudience, "audience to request from GitHub Actions or Buildkite")
	f.StringVar(&opts.TokenFile, "token-file", "", `read the OIDC token from this file ("-": stdin)`)
	f.StringVar(&opts.TokenEnv, "token-env", "", "read the OIDC token from this environment variable (GitLab: the id_tokens name)")
	f.StringVar(&opts.SessionName, "session-name", "", "role session name (default $AWS_ROLE_SESSION_NAME, else derived from the CI job)")
	f.StringVar(&duration, "duration", "", "session duration in seconds (900-43200) or as 1h30m (default: the server's, 3600 on AWS)")
	f.StringVar(&opts.Profile, "profile", "", "write the credentials to this AWS profile")
	f.StringVar(&opts.Output, "output", "", "print the credentials: env, json or credential-process")
	f.BoolVar(&opts.GitHubEnv, "github-env", false, "append AWS_* variables to $GITHUB_ENV")
	f.BoolVar(&opts.GitHubOutput, "github-output", false, "append aws-account-id and aws-expiration to $GITHUB_OUTPUT (step outputs)")
	f.BoolVar(&opts.OutputCredentials, "output-credentials", false, "with --github-output, also output aws-access-key-id, aws-secret-access-key and aws-session-token")
	f.BoolVar(&opts.CircleCIBashEnv, "circleci-bash-env", false, "append AWS_* exports to CircleCI's $BASH_ENV")
	f.BoolVar(&opts.MaskAccountID, "mask-account-id", false, "under GitHub Actions, also mask the account id in the log")
	f.StringVar(&opts.CABundle, "ca-bundle", "", "PEM file of the CA certificates to trust for the STS endpoint instead of the system's (default $AWS_CA_BUNDLE)")
	f.StringVar(&opts.CacheDir, "cache-dir", "", "directory of the credential-process cache")
	f.BoolVar(&quiet, "quiet", false, "print warnings and errors only")
	cmd.MarkFlagsMutuallyExclusive("token-file", "token-env")
	cmd.MarkFlagsMutuallyExclusive("profile", "output")
	return cmd
}

// parseDuration accepts whole seconds ("3600", as the AWS CLI's
// --duration-seconds) or a Go duration ("1h").
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("--duration %q: want seconds (3600) or a duration (1h)", s)
	}
	return d, nil
}

// exitCodeError carries the exit status main uses (2: usage).
type exitCodeError struct {
	err  error
	code int
}

func exitCode(code int, err error) error { return &exitCodeError{err: err, code: code} }
func (e *exitCodeError) Error() string   { return e.err.Error() }
func (e *exitCodeError) Unwrap() error   { return e.err }
func (e *exitCodeError) ExitCode() int   { return e.code }
