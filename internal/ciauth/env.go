package ciauth

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Env is the process environment as ciauth sees it. It is passed in rather
// than read with os.Getenv so a test can describe a whole CI job without
// touching the real environment.
type Env map[string]string

// EnvFromList builds an Env from "KEY=VALUE" strings (os.Environ's format).
func EnvFromList(list []string) Env {
	env := make(Env, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// Get returns the value of key, or "" when unset.
func (e Env) Get(key string) string { return e[key] }

// List returns the environment as sorted "KEY=VALUE" strings, for child
// processes.
func (e Env) List() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// first returns the first non-empty value among keys.
func (e Env) first(keys ...string) string {
	for _, k := range keys {
		if v := e[k]; v != "" {
			return v
		}
	}
	return ""
}

// home is the user's home directory according to the injected environment.
func (e Env) home() string {
	if h := e.Get("HOME"); h != "" {
		return h
	}
	return e.Get("USERPROFILE")
}

// lookPath finds an executable the way a shell would with this Env's PATH
// (exec.LookPath would read the real process environment instead).
func (e Env) lookPath(name string) (string, error) {
	if strings.ContainsRune(name, os.PathSeparator) {
		return name, isExecutable(name)
	}
	for _, dir := range filepath.SplitList(e.Get("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", &os.PathError{Op: "lookpath", Path: name, Err: os.ErrNotExist}
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return &os.PathError{Op: "lookpath", Path: p, Err: os.ErrPermission}
	}
	return nil
}

// CI identifies the CI system a job runs on.
type CI string

// The CI systems ciauth knows. CINone means no CI marker was found.
const (
	CINone          CI = ""
	CICircleCI      CI = "circleci"
	CIGitHubActions CI = "github-actions"
	CIGitLab        CI = "gitlab"
	CIBuildkite     CI = "buildkite"
)

// DetectCI looks at the marker variable each CI system sets in every job
// (CIRCLECI, GITHUB_ACTIONS, GITLAB_CI, BUILDKITE). When several are set
// (a runner nested in another CI), the order of the token-source
// auto-detection wins: CircleCI, GitHub Actions, GitLab, Buildkite.
func DetectCI(env Env) CI {
	switch {
	case isTrue(env.Get("CIRCLECI")):
		return CICircleCI
	case isTrue(env.Get("GITHUB_ACTIONS")):
		return CIGitHubActions
	case isTrue(env.Get("GITLAB_CI")):
		return CIGitLab
	case isTrue(env.Get("BUILDKITE")):
		return CIBuildkite
	}
	return CINone
}

func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// jobIdentity is the CI metadata that names one job run. It keys the
// credential_process cache so two jobs sharing a self-hosted machine never
// read each other's credentials.
func jobIdentity(env Env) string {
	var keys []string
	switch DetectCI(env) {
	case CICircleCI:
		keys = []string{"CIRCLE_PROJECT_USERNAME", "CIRCLE_PROJECT_REPONAME", "CIRCLE_WORKFLOW_ID", "CIRCLE_BUILD_NUM", "CIRCLE_JOB"}
	case CIGitHubActions:
		keys = []string{"GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB"}
	case CIGitLab:
		keys = []string{"CI_SERVER_URL", "CI_PROJECT_PATH", "CI_JOB_ID"}
	case CIBuildkite:
		keys = []string{"BUILDKITE_ORGANIZATION_SLUG", "BUILDKITE_PIPELINE_SLUG", "BUILDKITE_BUILD_NUMBER", "BUILDKITE_JOB_ID"}
	}
	parts := []string{string(DetectCI(env))}
	for _, k := range keys {
		parts = append(parts, env.Get(k))
	}
	return strings.Join(parts, "\x00")
}
