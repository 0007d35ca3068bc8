package ciauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultAudience is the audience requested from CI systems that let the
// job choose one (GitHub Actions, Buildkite). It is what AWS documents and
// what configure-aws-credentials requests.
const DefaultAudience = "sts.amazonaws.com"

// AWS bounds WebIdentityToken to 4..20000 characters.
const (
	minTokenLen = 4
	maxTokenLen = 20000
	// maxTokenRead bounds how much of a file, stdin or HTTP body is read;
	// anything larger cannot be a valid token anyway.
	maxTokenRead = 1 << 20
)

// Errors a caller can branch on with errors.Is. The wrapped error text adds
// what the user should do.
var (
	// ErrNoToken: no token flag was given and no CI token was found.
	ErrNoToken = errors.New("no CI identity token found")
	// ErrGitHubNoIDToken: running under GitHub Actions without the
	// id-token: write permission.
	ErrGitHubNoIDToken = errors.New("GitHub Actions did not provide an ID token request URL")
	// ErrGitLabTokenEnv: GitLab has no fixed variable for ID tokens; the job
	// must name its id_tokens variable.
	ErrGitLabTokenEnv = errors.New("GitLab CI needs --token-env naming an id_tokens variable")
	// ErrInvalidToken: the token obtained is empty or outside AWS's length
	// bounds. The message never contains the token.
	ErrInvalidToken = errors.New("invalid identity token")
	// ErrTokenRequest: a CI system refused or failed to issue a token.
	ErrTokenRequest = errors.New("requesting an identity token failed")
)

// TokenSource produces the CI job's OIDC ID token.
type TokenSource interface {
	// Token returns a token. Sources that can re-request return a fresh one
	// on each call; the others return the same value.
	Token(ctx context.Context) (string, error)
	// Describe names the source for humans ("GitHub Actions", "$VAR").
	Describe() string
	// ID is a stable identity for cache keys ("github:sts.amazonaws.com").
	ID() string
	// Refreshable reports whether Token can produce a fresh token after the
	// previous one expired (GitHub, Buildkite, a re-read file), as opposed
	// to returning a fixed value (an environment variable, stdin).
	Refreshable() bool
}

// checkToken trims and validates a token. The error never quotes it.
func checkToken(tok, from string) (string, error) {
	tok = strings.TrimSpace(tok)
	switch {
	case tok == "":
		return "", fmt.Errorf("%w: %s is empty", ErrInvalidToken, from)
	case len(tok) < minTokenLen || len(tok) > maxTokenLen:
		return "", fmt.Errorf("%w: %s holds %d characters; AWS accepts %d to %d", ErrInvalidToken, from, len(tok), minTokenLen, maxTokenLen)
	case strings.ContainsAny(tok, " \t\r\n"):
		return "", fmt.Errorf("%w: %s contains whitespace inside the token", ErrInvalidToken, from)
	}
	return tok, nil
}

// EnvToken reads a token from an environment variable (CircleCI's
// CIRCLE_OIDC_TOKEN_V2, a GitLab id_tokens variable, --token-env).
type EnvToken struct {
	Var string
	Env Env
}

func (s EnvToken) Token(context.Context) (string, error) {
	return checkToken(s.Env.Get(s.Var), "$"+s.Var)
}
func (s EnvToken) Describe() string { return "$" + s.Var }
func (s EnvToken) ID() string       { return "env:" + s.Var }

// Refreshable is false: the variable holds one token for the whole job.
func (s EnvToken) Refreshable() bool { return false }

// FileToken reads a token file on every call, so a file that something else
// keeps fresh (a Kubernetes projected token, a sidecar) yields a fresh token.
type FileToken struct{ Path string }

func (s FileToken) Token(context.Context) (string, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return "", fmt.Errorf("reading token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenRead))
	if err != nil {
		return "", fmt.Errorf("reading token file %s: %w", s.Path, err)
	}
	return checkToken(string(b), "token file "+s.Path)
}
func (s FileToken) Describe() string { return "token file " + s.Path }
func (s FileToken) ID() string {
	if abs, err := filepath.Abs(s.Path); err == nil {
		return "file:" + abs
	}
	return "file:" + s.Path
}

// Refreshable is true: the file is read again on every call.
func (s FileToken) Refreshable() bool { return true }

// ReaderToken reads the token once from a reader (stdin for --token-file -).
type ReaderToken struct {
	R    io.Reader
	once sync.Once
	tok  string
	err  error
}

func (s *ReaderToken) Token(context.Context) (string, error) {
	s.once.Do(func() {
		b, err := io.ReadAll(io.LimitReader(s.R, maxTokenRead))
		if err != nil {
			s.err = fmt.Errorf("reading token from stdin: %w", err)
			return
		}
		s.tok, s.err = checkToken(string(b), "stdin")
	})
	return s.tok, s.err
}
func (s *ReaderToken) Describe() string { return "stdin" }
func (s *ReaderToken) ID() string       { return "stdin" }

// Refreshable is false: stdin can be read only once.
func (s *ReaderToken) Refreshable() bool { return false }

// GitHubToken requests a token from the GitHub Actions runtime: GET
// $ACTIONS_ID_TOKEN_REQUEST_URL with an audience query parameter and
// "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN"; the answer is
// {"value": "<jwt>"}. Each call asks for a new token.
type GitHubToken struct {
	RequestURL   string
	RequestToken string // a secret: never printed
	Audience     string
	Client       *http.Client
	Retry        Backoff
	Rand         io.Reader
	Sleep        func(context.Context, time.Duration) error
}

func (s *GitHubToken) Describe() string { return "GitHub Actions (audience " + s.Audience + ")" }
func (s *GitHubToken) ID() string       { return "github:" + s.Audience }

// Refreshable is true: every call requests a new token from the runtime.
func (s *GitHubToken) Refreshable() bool { return true }

func (s *GitHubToken) Token(ctx context.Context) (string, error) {
	u, err := url.Parse(s.RequestURL)
	if err != nil {
		return "", fmt.Errorf("%w: ACTIONS_ID_TOKEN_REQUEST_URL is not a URL", ErrTokenRequest)
	}
	q := u.Query()
	q.Set("audience", s.Audience)
	u.RawQuery = q.Encode()

	var tok string
	err = retryLoop(ctx, s.Retry, s.Rand, s.Sleep, nil, func(ctx context.Context) (bool, error) {
		var retry bool
		tok, retry, err = s.fetch(ctx, u.String())
		return retry, err
	})
	return tok, err
}

// fetch does one request and reports whether a failure is worth retrying
// (network errors and 5xx, as the runtime's own client does).
func (s *GitHubToken) fetch(ctx context.Context, u string) (string, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrTokenRequest, err)
	}
	req.Header.Set("Authorization", "bearer "+s.RequestToken)
	req.Header.Set("Accept", "application/json; api-version=2.0")
	req.Header.Set("User-Agent", "keyless-assume")
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error carries the URL, which holds no secret (the bearer
		// token travels in a header).
		return "", ctx.Err() == nil, fmt.Errorf("%w from GitHub Actions: %w", ErrTokenRequest, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenRead))
	if err != nil {
		return "", true, fmt.Errorf("%w from GitHub Actions: reading response: %w", ErrTokenRequest, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		if e.Message != "" {
			return "", retry, fmt.Errorf("%w from GitHub Actions: HTTP %d: %s", ErrTokenRequest, resp.StatusCode, truncate(e.Message, 200))
		}
		return "", retry, fmt.Errorf("%w from GitHub Actions: HTTP %d", ErrTokenRequest, resp.StatusCode)
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&v); err != nil {
		return "", false, fmt.Errorf("%w from GitHub Actions: response is not JSON with a \"value\": %w", ErrTokenRequest, err)
	}
	tok, err := checkToken(v.Value, "the GitHub Actions token response")
	return tok, false, err
}

// BuildkiteToken runs `buildkite-agent oidc request-token --audience AUD`,
// which prints a fresh token on stdout on every call.
type BuildkiteToken struct {
	Agent    string // path of the buildkite-agent executable
	Audience string
	Env      Env // the child's environment (it needs the agent's job token)
}

func (s *BuildkiteToken) Describe() string { return "Buildkite (audience " + s.Audience + ")" }
func (s *BuildkiteToken) ID() string       { return "buildkite:" + s.Audience }

// Refreshable is true: every call runs the agent again.
func (s *BuildkiteToken) Refreshable() bool { return true }

func (s *BuildkiteToken) Token(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, s.Agent, "oidc", "request-token", "--audience", s.Audience)
	cmd.Env = s.Env.List()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &limitedBuffer{buf: &stdout, n: maxTokenRead}
	cmd.Stderr = &limitedBuffer{buf: &stderr, n: 4096}
	if err := cmd.Run(); err != nil {
		// stderr is the agent's diagnostic; the token only ever goes to stdout.
		detail := strings.TrimSpace(stderr.String())
		if detail != "" {
			return "", fmt.Errorf("%w from buildkite-agent: %w: %s", ErrTokenRequest, err, truncate(detail, 500))
		}
		return "", fmt.Errorf("%w from buildkite-agent: %w", ErrTokenRequest, err)
	}
	return checkToken(stdout.String(), "buildkite-agent's output")
}

type limitedBuffer struct {
	buf *bytes.Buffer
	n   int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// SourceConfig says where the token comes from. With neither TokenFile nor
// TokenEnv set, DetectSource takes the first of:
//
//  1. CircleCI: $CIRCLE_OIDC_TOKEN_V2, then $CIRCLE_OIDC_TOKEN;
//  2. GitHub Actions: $ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN (a fresh token
//     per request, for Audience);
//  3. Buildkite ($BUILDKITE): buildkite-agent oidc request-token;
//  4. $AWS_WEB_IDENTITY_TOKEN_FILE, the SDKs' own token-file variable.
//
// Failing those, a job on a known CI gets an error saying what its CI needs
// (GitHub: the id-token permission; GitLab: --token-env naming an id_tokens
// variable, whose name the job chooses).
type SourceConfig struct {
	TokenFile string // "-" reads stdin once
	TokenEnv  string
	Audience  string // for GitHub Actions and Buildkite; DefaultAudience when empty

	Env            Env
	Stdin          io.Reader
	HTTPClient     *http.Client
	BuildkiteAgent string // executable name or path; "buildkite-agent" when empty
	Retry          Backoff
	Rand           io.Reader
	Sleep          func(context.Context, time.Duration) error
}

// DetectSource picks the token source for cfg.
func DetectSource(cfg SourceConfig) (TokenSource, error) {
	aud := cfg.Audience
	if aud == "" {
		aud = DefaultAudience
	}
	env := cfg.Env
	switch {
	case cfg.TokenFile != "" && cfg.TokenEnv != "":
		return nil, errors.New("--token-file and --token-env are mutually exclusive")
	case cfg.TokenFile == "-":
		if cfg.Stdin == nil {
			return nil, errors.New("--token-file - needs stdin")
		}
		return &ReaderToken{R: cfg.Stdin}, nil
	case cfg.TokenFile != "":
		return FileToken{Path: cfg.TokenFile}, nil
	case cfg.TokenEnv != "":
		if _, ok := env[cfg.TokenEnv]; !ok {
			return nil, fmt.Errorf("%w: $%s is not set", ErrNoToken, cfg.TokenEnv)
		}
		return EnvToken{Var: cfg.TokenEnv, Env: env}, nil
	}

	for _, v := range []string{"CIRCLE_OIDC_TOKEN_V2", "CIRCLE_OIDC_TOKEN"} {
		if env.Get(v) != "" {
			return EnvToken{Var: v, Env: env}, nil
		}
	}
	if u := env.Get("ACTIONS_ID_TOKEN_REQUEST_URL"); u != "" {
		if env.Get("ACTIONS_ID_TOKEN_REQUEST_TOKEN") == "" {
			return nil, fmt.Errorf("%w: ACTIONS_ID_TOKEN_REQUEST_TOKEN is empty", ErrGitHubNoIDToken)
		}
		return &GitHubToken{
			RequestURL:   u,
			RequestToken: env.Get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
			Audience:     aud,
			Client:       cfg.HTTPClient,
			Retry:        cfg.Retry.orDefault(3),
			Rand:         cfg.Rand,
			Sleep:        cfg.Sleep,
		}, nil
	}
	ci := DetectCI(env)
	var agentErr error
	if ci == CIBuildkite {
		name := cfg.BuildkiteAgent
		if name == "" {
			name = "buildkite-agent"
		}
		p, err := env.lookPath(name)
		if err == nil {
			return &BuildkiteToken{Agent: p, Audience: aud, Env: env}, nil
		}
		agentErr = fmt.Errorf("%w: running under Buildkite but %s is not on PATH: %w", ErrNoToken, name, err)
	}
	// The SDKs' own variable: EKS/IRSA pods, GitLab jobs that write their
	// id_tokens variable to a file, any runner with a projected token.
	if f := env.Get("AWS_WEB_IDENTITY_TOKEN_FILE"); f != "" {
		return FileToken{Path: f}, nil
	}
	switch ci {
	case CICircleCI:
		return nil, fmt.Errorf("%w: CircleCI gave this job no OIDC token (neither CIRCLE_OIDC_TOKEN_V2 nor CIRCLE_OIDC_TOKEN is set): CircleCI gives one only to jobs that run with a context or with OIDC enabled; add a context to the job in the workflow (an empty one will do), and for forked pull requests turn on \"Pass secrets to builds from forked pull requests\"", ErrNoToken)
	case CIGitHubActions:
		return nil, fmt.Errorf("%w: add `permissions: id-token: write` to the workflow or job", ErrGitHubNoIDToken)
	case CIGitLab:
		return nil, fmt.Errorf("%w: declare `id_tokens: {KEYLESS_ID_TOKEN: {aud: %s}}` in the job and pass --token-env KEYLESS_ID_TOKEN", ErrGitLabTokenEnv, aud)
	case CIBuildkite:
		return nil, agentErr
	}
	return nil, fmt.Errorf("%w: not running under a CI system keyless recognises (CircleCI, GitHub Actions, GitLab, Buildkite); pass --token-file FILE, --token-file - (stdin) or --token-env VAR", ErrNoToken)
}
