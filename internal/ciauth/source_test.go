package ciauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tokenOf returns a plausible token whose text marks where it came from.
func tokenOf(t *testing.T, origin string) string {
	return makeJWT(t, map[string]any{"iss": "https://issuer.example", "sub": origin, "aud": "sts.amazonaws.com"})
}

func TestDetectSourceEnvironments(t *testing.T) {
	dir := t.TempDir()
	fileTok := tokenOf(t, "file")
	tokFile := filepath.Join(dir, "token.jwt")
	if err := os.WriteFile(tokFile, []byte(fileTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v1, v2, gl := tokenOf(t, "circle-v1"), tokenOf(t, "circle-v2"), tokenOf(t, "gitlab")

	tests := []struct {
		name        string
		cfg         SourceConfig
		wantID      string
		wantToken   string
		refreshable bool
		wantErr     error
	}{
		{name: "CircleCI prefers V2", cfg: SourceConfig{Env: Env{"CIRCLECI": "true", "CIRCLE_OIDC_TOKEN": v1, "CIRCLE_OIDC_TOKEN_V2": v2}},
			wantID: "env:CIRCLE_OIDC_TOKEN_V2", wantToken: v2},
		{name: "CircleCI V1 only", cfg: SourceConfig{Env: Env{"CIRCLECI": "true", "CIRCLE_OIDC_TOKEN": v1}},
			wantID: "env:CIRCLE_OIDC_TOKEN", wantToken: v1},
		{name: "CircleCI without OIDC", cfg: SourceConfig{Env: Env{"CIRCLECI": "true"}}, wantErr: ErrNoToken},
		{name: "GitHub without id-token permission", cfg: SourceConfig{Env: Env{"GITHUB_ACTIONS": "true"}}, wantErr: ErrGitHubNoIDToken},
		{name: "GitHub URL without request token", cfg: SourceConfig{Env: Env{"GITHUB_ACTIONS": "true", "ACTIONS_ID_TOKEN_REQUEST_URL": "http://x/"}}, wantErr: ErrGitHubNoIDToken},
		{name: "GitLab needs --token-env", cfg: SourceConfig{Env: Env{"GITLAB_CI": "true", "KEYLESS_ID_TOKEN": gl}}, wantErr: ErrGitLabTokenEnv},
		{name: "GitLab with --token-env", cfg: SourceConfig{TokenEnv: "KEYLESS_ID_TOKEN", Env: Env{"GITLAB_CI": "true", "KEYLESS_ID_TOKEN": gl}},
			wantID: "env:KEYLESS_ID_TOKEN", wantToken: gl},
		{name: "--token-env wins over CI detection", cfg: SourceConfig{TokenEnv: "MINE", Env: Env{"CIRCLE_OIDC_TOKEN_V2": v2, "MINE": gl}},
			wantID: "env:MINE", wantToken: gl},
		{name: "--token-env unset", cfg: SourceConfig{TokenEnv: "NOPE", Env: Env{}}, wantErr: ErrNoToken},
		{name: "--token-env empty", cfg: SourceConfig{TokenEnv: "EMPTY", Env: Env{"EMPTY": "  "}}, wantID: "env:EMPTY", wantErr: ErrInvalidToken},
		{name: "--token-file", cfg: SourceConfig{TokenFile: tokFile, Env: Env{"CIRCLE_OIDC_TOKEN_V2": v2}},
			wantID: "file:" + tokFile, wantToken: fileTok, refreshable: true},
		{name: "--token-file -", cfg: SourceConfig{TokenFile: "-", Stdin: strings.NewReader(" " + fileTok + "\n"), Env: Env{}},
			wantID: "stdin", wantToken: fileTok},
		{name: "AWS_WEB_IDENTITY_TOKEN_FILE fallback", cfg: SourceConfig{Env: Env{"AWS_WEB_IDENTITY_TOKEN_FILE": tokFile}},
			wantID: "file:" + tokFile, wantToken: fileTok, refreshable: true},
		{name: "nothing at all", cfg: SourceConfig{Env: Env{}}, wantErr: ErrNoToken},
		{name: "GitLab job with the token written to a file", cfg: SourceConfig{Env: Env{"GITLAB_CI": "true", "AWS_WEB_IDENTITY_TOKEN_FILE": tokFile}},
			wantID: "file:" + tokFile, wantToken: fileTok, refreshable: true},
		{name: "GitHub runner on EKS without id-token permission", cfg: SourceConfig{Env: Env{"GITHUB_ACTIONS": "true", "AWS_WEB_IDENTITY_TOKEN_FILE": tokFile}},
			wantID: "file:" + tokFile, wantToken: fileTok, refreshable: true},
		{name: "Buildkite without agent", cfg: SourceConfig{Env: Env{"BUILDKITE": "true", "PATH": dir}}, wantErr: ErrNoToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := DetectSource(tt.cfg)
			if err != nil {
				if tt.wantErr == nil || !errors.Is(err, tt.wantErr) {
					t.Fatalf("DetectSource: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if src.ID() != tt.wantID {
				t.Errorf("ID = %q, want %q", src.ID(), tt.wantID)
			}
			if src.Refreshable() != tt.refreshable {
				t.Errorf("Refreshable = %v, want %v", src.Refreshable(), tt.refreshable)
			}
			tok, err := src.Token(context.Background())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Token: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok != tt.wantToken {
				t.Errorf("token = %.20s…, want %.20s…", tok, tt.wantToken)
			}
		})
	}
}

func TestTokenFileIsReread(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tok")
	src := FileToken{Path: p}
	for i, want := range []string{"first-token", "second-token"} {
		if err := os.WriteFile(p, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := src.Token(context.Background())
		if err != nil || got != want {
			t.Fatalf("read %d = %q, %v; want %q", i, got, err, want)
		}
	}
}

func TestTokenValidationNeverQuotesToken(t *testing.T) {
	secret := "SECRETSECRET"
	for _, tok := range []string{"ab", secret + " " + secret, strings.Repeat("x", maxTokenLen+1) + secret} {
		_, err := checkToken(tok, "$VAR")
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("checkToken(%.10q…) = %v, want ErrInvalidToken", tok, err)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "ab\"") {
			t.Errorf("error quotes the token: %v", err)
		}
	}
}

// githubEndpoint plays the Actions runtime's token endpoint.
type githubEndpoint struct {
	t            *testing.T
	bearer       string
	fail         int // answer 503 this many times first
	hits         atomic.Int32
	lastAudience atomic.Value
}

func (g *githubEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := g.hits.Add(1)
	if r.Method != http.MethodGet {
		http.Error(w, "want GET", http.StatusMethodNotAllowed)
		return
	}
	if got := r.Header.Get("Authorization"); got != "bearer "+g.bearer && got != "Bearer "+g.bearer {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"bad bearer"}`)
		return
	}
	if r.URL.Query().Get("api-version") != "2.0" {
		http.Error(w, "the runtime URL's own query parameters were lost", http.StatusBadRequest)
		return
	}
	if int(n) <= g.fail {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	aud := r.URL.Query().Get("audience")
	g.lastAudience.Store(aud)
	fmt.Fprintf(w, `{"count":1,"value":%q}`, makeJWT(g.t, map[string]any{"aud": aud, "n": n, "sub": "repo:acme/web:ref:refs/heads/main"}))
}

func TestGitHubTokenRequest(t *testing.T) {
	const bearer = "runtime-request-token-SECRET"
	tests := []struct {
		name     string
		audience string
		bearer   string
		fail     int
		wantErr  bool
		wantHits int32
	}{
		{name: "default audience", wantHits: 1},
		{name: "custom audience with reserved characters", audience: "https://keyless.example.com/aud?x=1&y", wantHits: 1},
		{name: "5xx is retried", fail: 2, wantHits: 3},
		{name: "wrong bearer is not retried", bearer: "other", wantErr: true, wantHits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := &githubEndpoint{t: t, bearer: bearer, fail: tt.fail}
			srv := httptest.NewServer(ep)
			defer srv.Close()
			reqTok := bearer
			if tt.bearer != "" {
				reqTok = tt.bearer
			}
			sleeps := &recordSleep{}
			src, err := DetectSource(SourceConfig{
				Audience:   tt.audience,
				HTTPClient: srv.Client(),
				Sleep:      sleeps.Sleep,
				Rand:       constRand(0x80),
				Env: Env{
					"GITHUB_ACTIONS":                 "true",
					"ACTIONS_ID_TOKEN_REQUEST_URL":   srv.URL + "/_apis/token?api-version=2.0",
					"ACTIONS_ID_TOKEN_REQUEST_TOKEN": reqTok,
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !src.Refreshable() {
				t.Error("GitHub source must be refreshable")
			}
			tok, err := src.Token(context.Background())
			if got := ep.hits.Load(); got != tt.wantHits {
				t.Errorf("endpoint hit %d times, want %d", got, tt.wantHits)
			}
			if tt.wantErr {
				if !errors.Is(err, ErrTokenRequest) {
					t.Fatalf("err = %v, want ErrTokenRequest", err)
				}
				if strings.Contains(err.Error(), reqTok) {
					t.Errorf("error leaks the request token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantAud := tt.audience
			if wantAud == "" {
				wantAud = DefaultAudience
			}
			if got := ep.lastAudience.Load(); got != wantAud {
				t.Errorf("audience sent = %v, want %q", got, wantAud)
			}
			c, err := ParseClaims(tok)
			if err != nil || len(c.Audience) != 1 || c.Audience[0] != wantAud {
				t.Errorf("token claims = %+v, %v", c, err)
			}
			if len(sleeps.waits) != tt.fail {
				t.Errorf("slept %d times, want %d", len(sleeps.waits), tt.fail)
			}
			// A second call asks again: GitHub tokens are refreshable.
			if _, err := src.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := ep.hits.Load(); got != tt.wantHits+1 {
				t.Errorf("second Token() did not re-request (hits %d)", got)
			}
		})
	}
}

// writeFakeAgent writes a stand-in for buildkite-agent that checks its
// arguments and prints a token, or fails like the real agent does.
func writeFakeAgent(t *testing.T, dir, token string, fail bool) string {
	t.Helper()
	p := filepath.Join(dir, "buildkite-agent")
	script := fmt.Sprintf(`#!/bin/sh
if [ "$1 $2 $3" != "oidc request-token --audience" ]; then echo "unexpected args: $*" >&2; exit 64; fi
if [ -z "$BUILDKITE_AGENT_ACCESS_TOKEN" ]; then echo "no agent token in env" >&2; exit 65; fi
if [ %q = true ]; then echo "fatal: failed to get OIDC token: 403 Forbidden" >&2; exit 1; fi
echo "$4" > "${0%%/*}/audience"
printf '%%s\n' %q
`, fmt.Sprint(fail), token)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildkiteToken(t *testing.T) {
	testenvSh(t)
	dir := t.TempDir()
	want := tokenOf(t, "buildkite")
	writeFakeAgent(t, dir, want, false)
	env := Env{"BUILDKITE": "true", "PATH": dir, "BUILDKITE_AGENT_ACCESS_TOKEN": "agent-secret"}
	src, err := DetectSource(SourceConfig{Env: env, Audience: "https://keyless.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if src.ID() != "buildkite:https://keyless.example.com" || !src.Refreshable() {
		t.Errorf("ID %q refreshable %v", src.ID(), src.Refreshable())
	}
	got, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("token mismatch")
	}
	aud, _ := os.ReadFile(filepath.Join(dir, "audience"))
	if diff := cmp.Diff("https://keyless.example.com\n", string(aud)); diff != "" {
		t.Errorf("audience passed to the agent (-want +got):\n%s", diff)
	}

	failDir := t.TempDir()
	agent := writeFakeAgent(t, failDir, want, true)
	src = &BuildkiteToken{Agent: agent, Audience: "a", Env: env}
	_, err = src.Token(context.Background())
	if !errors.Is(err, ErrTokenRequest) || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Errorf("failing agent: err = %v, want ErrTokenRequest carrying the agent's message", err)
	}
}

func TestGitHubTokenHonoursContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	src := &GitHubToken{RequestURL: srv.URL, RequestToken: "x", Audience: "a", Client: srv.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := src.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}
