package ciauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// AWS bounds DurationSeconds to 900..43200 (the role's MaxSessionDuration
// may lower the top).
const (
	MinDuration = 900 * time.Second
	MaxDuration = 43200 * time.Second
)

// Options are the user's choices (the `keyless assume` flags). Empty
// fields fall back to the environment as the AWS CLI's do.
type Options struct {
	RoleARN     string // else $AWS_ROLE_ARN
	EndpointURL string // else $AWS_ENDPOINT_URL_STS, else $AWS_ENDPOINT_URL; empty: real AWS
	Region      string // else $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1
	Audience    string // for GitHub Actions and Buildkite; DefaultAudience when empty
	TokenFile   string // "-" for stdin
	TokenEnv    string
	SessionName string        // else $AWS_ROLE_SESSION_NAME, else derived from the CI job
	Duration    time.Duration // 0: the server's default

	// Where the credentials go. Profile and Output exclude each other; the
	// CI file sinks combine with either.
	Profile      string
	Output       string // OutputEnv, OutputJSON or OutputCredentialProcess
	GitHubEnv    bool   // append to $GITHUB_ENV
	GitHubOutput bool   // append step outputs to $GITHUB_OUTPUT
	// OutputCredentials adds the key pair and token to the GitHubOutput
	// step outputs (by default only the account id and expiry).
	OutputCredentials bool
	CircleCIBashEnv   bool // append exports to $BASH_ENV
	MaskAccountID     bool // under GitHub Actions, mask the account id too

	// CABundle is a PEM file of the CA certificates trusted for the STS
	// endpoint (a keyless server with a private CA), instead of the
	// system's; else $AWS_CA_BUNDLE. It does not apply to the CI's own
	// token endpoints (GitHub Actions, Buildkite).
	CABundle string

	CacheDir      string        // credential-process cache; DefaultCacheDir when empty
	RefreshMargin time.Duration // DefaultRefreshMargin when zero
	Backoff       Backoff       // retry policy; the default when zero
}

// Runtime is everything Assume needs from the outside world.
type Runtime struct {
	Env            Env
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	HTTPClient     *http.Client // the SDK's default when nil
	Now            func() time.Time
	Rand           io.Reader // backoff jitter and delimiters; crypto/rand when nil
	Sleep          func(context.Context, time.Duration) error
	Logger         *slog.Logger // progress and warnings; silent when nil
	// DecodeCredentials sign sts:DecodeAuthorizationMessage when an
	// exchange fails with an encoded message; nil skips decoding.
	DecodeCredentials aws.CredentialsProvider
	BuildkiteAgent    string // "buildkite-agent" when empty
}

// ErrUsage marks errors in how Assume was asked (conflicting or missing
// options), as opposed to failures while doing it.
var ErrUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// plan is Options resolved against the environment.
type plan struct {
	roleARN     string
	endpoint    string // where STS is called
	recordedEP  string // the endpoint written into outputs ("" for AWS's own)
	region      string
	sessionName string
	// sessionKey is the session name as far as it identifies the caller
	// (explicit names); the time-stamped fallback must not split the cache.
	sessionKey string
	duration   time.Duration
}

func resolve(opts Options, env Env, now time.Time) (plan, error) {
	p := plan{
		roleARN:  strings.TrimSpace(opts.RoleARN),
		endpoint: strings.TrimSpace(opts.EndpointURL),
		region:   strings.TrimSpace(opts.Region),
		duration: opts.Duration,
	}
	if p.roleARN == "" {
		p.roleARN = env.Get("AWS_ROLE_ARN")
	}
	if p.roleARN == "" {
		return plan{}, usageErr("no role: pass --role-arn or set AWS_ROLE_ARN")
	}
	if !strings.HasPrefix(p.roleARN, "arn:") {
		return plan{}, usageErr("--role-arn %q is not an ARN (arn:aws:iam::ACCOUNT:role/NAME)", p.roleARN)
	}
	if p.endpoint == "" {
		p.endpoint = env.first("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL")
	}
	if p.endpoint != "" {
		u, err := url.Parse(p.endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return plan{}, usageErr("endpoint %q is not an http(s) URL", p.endpoint)
		}
		if !isAWSHost(u.Hostname()) {
			p.recordedEP = p.endpoint
		}
	}
	if p.region == "" {
		p.region = env.first("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if p.region == "" {
		p.region = "us-east-1"
	}
	switch name := opts.SessionName; {
	case name != "":
		p.sessionName = SanitizeSessionName(name)
		p.sessionKey = p.sessionName
	case env.Get("AWS_ROLE_SESSION_NAME") != "":
		p.sessionName = SanitizeSessionName(env.Get("AWS_ROLE_SESSION_NAME"))
		p.sessionKey = p.sessionName
	default:
		p.sessionName = DeriveSessionName(env, now)
	}
	if d := p.duration; d != 0 && (d < MinDuration || d > MaxDuration || d%time.Second != 0) {
		return plan{}, usageErr("--duration %s: AWS accepts whole seconds from 900 to 43200", d)
	}
	return p, nil
}

// isAWSHost: credentials from AWS's own STS (regional, FIPS, VPC endpoint)
// work with every AWS endpoint, so no endpoint is recorded for them;
// credentials from any other STS only work where they were minted.
func isAWSHost(host string) bool {
	host = strings.ToLower(host)
	for _, suffix := range []string{".amazonaws.com", ".amazonaws.com.cn", ".api.aws"} {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

func checkSinks(opts Options, env Env) error {
	if opts.Profile != "" && opts.Output != "" {
		return usageErr("--profile and --output exclude each other")
	}
	switch opts.Output {
	case "", OutputEnv, OutputJSON:
	case OutputCredentialProcess:
		if opts.GitHubEnv || opts.GitHubOutput || opts.CircleCIBashEnv {
			return usageErr("--output credential-process is for credential_process in an AWS profile; it cannot write CI environment files")
		}
	default:
		return usageErr("--output %q: want env, json or credential-process", opts.Output)
	}
	if opts.Profile == "" && opts.Output == "" && !opts.GitHubEnv && !opts.GitHubOutput && !opts.CircleCIBashEnv {
		return usageErr("say where the credentials go: --profile NAME, --output env|json|credential-process, --github-env, --github-output or --circleci-bash-env")
	}
	if opts.OutputCredentials && !opts.GitHubOutput {
		return usageErr("--output-credentials only applies with --github-output")
	}
	if opts.Profile != "" {
		if err := ValidateProfileName(opts.Profile); err != nil {
			return fmt.Errorf("%w: %w", ErrUsage, err)
		}
	}
	for _, s := range []struct {
		on  bool
		env string
	}{{opts.GitHubEnv, "GITHUB_ENV"}, {opts.GitHubOutput, "GITHUB_OUTPUT"}, {opts.CircleCIBashEnv, "BASH_ENV"}} {
		if s.on && env.Get(s.env) == "" {
			return usageErr("$%s is not set: this option only works inside the CI system that provides it", s.env)
		}
	}
	return nil
}

// Assume runs `keyless assume`: find the CI token, exchange it, deliver the
// credentials where opts says.
func Assume(ctx context.Context, opts Options, rt Runtime) error {
	if rt.Now == nil {
		rt.Now = time.Now
	}
	if rt.Logger == nil {
		rt.Logger = slog.New(slog.DiscardHandler)
	}
	if rt.Stdout == nil {
		rt.Stdout = io.Discard
	}
	if rt.Stderr == nil {
		rt.Stderr = io.Discard
	}
	if err := checkSinks(opts, rt.Env); err != nil {
		return err
	}
	p, err := resolve(opts, rt.Env, rt.Now())
	if err != nil {
		return err
	}
	if opts.Backoff, err = backoffFromEnv(opts.Backoff, rt.Env); err != nil {
		return err
	}
	if opts.SessionName != "" && p.sessionName != opts.SessionName {
		rt.Logger.Warn("session name changed to fit AWS's rules ([\\w+=,.@-], 2-64 characters)",
			"requested", opts.SessionName, "used", p.sessionName)
	}
	src, err := DetectSource(SourceConfig{
		TokenFile: opts.TokenFile, TokenEnv: opts.TokenEnv, Audience: opts.Audience,
		Env: rt.Env, Stdin: rt.Stdin, HTTPClient: rt.HTTPClient, BuildkiteAgent: rt.BuildkiteAgent,
		Retry: opts.Backoff, Rand: rt.Rand, Sleep: rt.Sleep,
	})
	if err != nil {
		return err
	}
	stsClient := rt.HTTPClient
	if bundle := CABundlePath(opts.CABundle, rt.Env.Get); bundle != "" {
		if stsClient, err = CABundleClient(bundle, 0); err != nil {
			return err
		}
	}
	x := &Exchanger{
		Endpoint: p.endpoint, Region: p.region,
		HTTPClient: stsClient, Backoff: opts.Backoff, Rand: rt.Rand, Sleep: rt.Sleep,
		Logger: rt.Logger, DecodeCredentials: rt.DecodeCredentials,
	}
	req := ExchangeRequest{RoleARN: p.roleARN, SessionName: p.sessionName, Duration: p.duration}

	if opts.Output == OutputCredentialProcess {
		return credentialProcess(ctx, opts, rt, p, src, x, req)
	}

	rt.Logger.Info("exchanging CI token", "source", src.Describe(), "role", p.roleARN,
		"session", p.sessionName, "sts", x.EndpointDescription())
	res, err := x.Exchange(ctx, src, req)
	if err != nil {
		return err
	}
	// Mask before anything can print a secret.
	if DetectCI(rt.Env) == CIGitHubActions {
		masks := []string{res.Credentials.SecretAccessKey, res.Credentials.SessionToken}
		if opts.MaskAccountID {
			masks = append(masks, res.AccountID())
		}
		if err := WriteGitHubMasks(rt.Stderr, masks...); err != nil {
			return err
		}
	}
	return deliver(ctx, opts, rt, p, res)
}

func deliver(ctx context.Context, opts Options, rt Runtime, p plan, res *Result) error {
	if p.recordedEP != "" && res.Brokered(p.roleARN) {
		// keyless in broker mode answered with AWS credentials: the calls
		// made with them go to AWS, not to keyless.
		rt.Logger.Info("keyless brokered AWS credentials: outputs name no endpoint", "sts", p.recordedEP, "assumed_role", res.AssumedRoleARN)
		p.recordedEP = ""
	}
	env := CredentialEnv(res, p.region, p.recordedEP)
	if opts.Profile != "" {
		files, err := DefaultProfileFiles(rt.Env)
		if err != nil {
			return err
		}
		if err := WriteProfile(ctx, files, Profile{
			Name: opts.Profile, Credentials: res.Credentials, Region: p.region, EndpointURL: p.recordedEP,
		}); err != nil {
			return err
		}
		rt.Logger.Info("wrote profile", "profile", opts.Profile, "credentials", files.Credentials, "config", files.Config)
	}
	if opts.GitHubEnv {
		if err := appendGitHub(rt, "GITHUB_ENV", env); err != nil {
			return err
		}
	}
	if opts.GitHubOutput {
		if err := appendGitHub(rt, "GITHUB_OUTPUT", GitHubOutputs(res, opts.OutputCredentials)); err != nil {
			return err
		}
	}
	if opts.CircleCIBashEnv {
		s, err := FormatExports(env)
		if err != nil {
			return err
		}
		if err := appendFile(rt.Env.Get("BASH_ENV"), []byte(s)); err != nil {
			return fmt.Errorf("appending to $BASH_ENV: %w", err)
		}
	}
	switch opts.Output {
	case OutputEnv:
		s, err := FormatExports(env)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(rt.Stdout, s); err != nil {
			return err
		}
	case OutputJSON:
		b, err := FormatJSON(res)
		if err != nil {
			return err
		}
		if _, err := rt.Stdout.Write(b); err != nil {
			return err
		}
	}
	rt.Logger.Info("assumed role", "arn", res.AssumedRoleARN,
		"expires", res.Credentials.Expiration.UTC().Format(time.RFC3339))
	return nil
}

func appendGitHub(rt Runtime, fileVar string, vars []EnvVar) error {
	s, err := FormatGitHubFile(vars, rt.Rand)
	if err != nil {
		return err
	}
	if err := appendFile(rt.Env.Get(fileVar), []byte(s)); err != nil {
		return fmt.Errorf("appending to $%s: %w", fileVar, err)
	}
	return nil
}

func credentialProcess(ctx context.Context, opts Options, rt Runtime, p plan, src TokenSource, x *Exchanger, req ExchangeRequest) error {
	dir := opts.CacheDir
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(rt.Env); err != nil {
			return err
		}
	}
	cache := &CredentialCache{Dir: dir, Now: rt.Now, Margin: opts.RefreshMargin, Logger: rt.Logger}
	key := CacheKey(p.roleARN, x.EndpointDescription(), p.region, src.ID(), p.sessionKey,
		strconv.FormatInt(int64(p.duration/time.Second), 10), jobIdentity(rt.Env))
	creds, err := cache.Get(ctx, key, func(ctx context.Context) (Credentials, error) {
		res, err := x.Exchange(ctx, src, req)
		if err != nil {
			return Credentials{}, err
		}
		return res.Credentials, nil
	})
	if err != nil {
		return err
	}
	b, err := FormatCredentialProcess(creds)
	if err != nil {
		return err
	}
	_, err = rt.Stdout.Write(b)
	return err
}

// DefaultDecodeCredentials finds the credentials the user gave the way the
// AWS CLI does (environment, AWS_PROFILE and the shared files, SSO), never
// from EC2 instance metadata (LoadExplicitConfig), lazily: nothing is
// looked up unless an encoded authorization message needs decoding.
func DefaultDecodeCredentials() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		cfg, err := LoadExplicitConfig(ctx)
		if err != nil {
			return aws.Credentials{}, err
		}
		return cfg.Credentials.Retrieve(ctx)
	})
}
