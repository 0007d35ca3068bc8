package audit

import (
	"net/url"
	"strconv"
	"strings"
)

// CIRun identifies the CI run behind an ID token, derived from the claims
// each CI provider documents (GitHub Actions, GitLab CI, CircleCI,
// Buildkite). Fields the claims do not carry are empty.
type CIRun struct {
	Provider   string `json:"provider"` // "github-actions", "gitlab-ci", "circleci", "buildkite"
	Project    string `json:"project,omitempty"`
	Workflow   string `json:"workflow,omitempty"`
	Job        string `json:"job,omitempty"`
	RunID      string `json:"runId,omitempty"`
	RunAttempt string `json:"runAttempt,omitempty"`
	Ref        string `json:"ref,omitempty"`
	SHA        string `json:"sha,omitempty"`
	BuildURL   string `json:"buildUrl,omitempty"`
}

// CIRunFromClaims recognises the CI provider by the claim names it uses (not
// by the issuer, so tokens minted by keyless's own issuer with a provider
// profile are recognised too) and returns nil when none matches. Redacted
// claim values are not used. issuer helps build URLs (GitLab instances,
// GitHub Enterprise Server).
func CIRunFromClaims(issuer string, claims map[string]any) *CIRun {
	get := func(k string) string { return claimString(claims[k]) }
	switch {
	case get("repository") != "" && get("run_id") != "":
		r := &CIRun{
			Provider:   "github-actions",
			Project:    get("repository"),
			Workflow:   get("workflow"),
			Job:        get("job_workflow_ref"),
			RunID:      get("run_id"),
			RunAttempt: get("run_attempt"),
			Ref:        get("ref"),
			SHA:        get("sha"),
		}
		r.BuildURL = githubServer(issuer) + "/" + r.Project + "/actions/runs/" + url.PathEscape(r.RunID)
		if r.RunAttempt != "" {
			r.BuildURL += "/attempts/" + url.PathEscape(r.RunAttempt)
		}
		return r
	case get("project_path") != "" && get("pipeline_id") != "":
		r := &CIRun{
			Provider: "gitlab-ci",
			Project:  get("project_path"),
			Workflow: get("pipeline_source"),
			Job:      get("job_id"),
			RunID:    get("pipeline_id"),
			Ref:      get("ref"),
			SHA:      get("sha"),
		}
		if base := httpsBase(issuer); base != "" {
			if r.Job != "" {
				r.BuildURL = base + "/" + r.Project + "/-/jobs/" + url.PathEscape(r.Job)
			} else {
				r.BuildURL = base + "/" + r.Project + "/-/pipelines/" + url.PathEscape(r.RunID)
			}
		}
		return r
	case get("oidc.circleci.com/project-id") != "":
		// CircleCI's claims carry no build or job number, hence no URL.
		return &CIRun{
			Provider: "circleci",
			Project:  get("oidc.circleci.com/project-id"),
			Ref:      get("oidc.circleci.com/vcs-ref"),
		}
	case get("pipeline_slug") != "" && get("build_number") != "":
		r := &CIRun{
			Provider: "buildkite",
			Project:  get("organization_slug") + "/" + get("pipeline_slug"),
			Job:      get("job_id"),
			RunID:    get("build_number"),
			Ref:      get("build_branch"),
			SHA:      get("build_commit"),
		}
		if get("organization_slug") != "" {
			r.BuildURL = "https://buildkite.com/" + r.Project + "/builds/" + url.PathEscape(r.RunID)
			if r.Job != "" {
				r.BuildURL += "#" + r.Job
			}
		}
		return r
	}
	return nil
}

// claimString renders a scalar claim; redacted, structured and absent claims
// give "".
func claimString(v any) string {
	switch x := v.(type) {
	case string:
		if x == RedactedMarker {
			return ""
		}
		return x
	case float64:
		if x == float64(int64(x)) {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// githubServer is https://github.com, or the GitHub Enterprise Server whose
// issuer is https://HOST/_services/token.
func githubServer(issuer string) string {
	if issuer == "https://token.actions.githubusercontent.com" {
		return "https://github.com" // github.com's issuer: no parsing on the common path
	}
	if u, err := url.Parse(issuer); err == nil && u.Scheme == "https" && strings.HasPrefix(u.Path, "/_services/token") {
		return "https://" + u.Host
	}
	return "https://github.com"
}

// httpsBase returns issuer without a trailing slash when it is an https URL
// (the GitLab instance URL is its issuer).
func httpsBase(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return ""
	}
	return strings.TrimRight(issuer, "/")
}

// AppendJSON appends r as a JSON object with its keys in sorted order,
// the order the object has once an event is read back and written again
// (as a generic map); empty fields other than provider are omitted.
func (r *CIRun) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	n := len(dst)
	dst = appendStringField(dst, "buildUrl", r.BuildURL)
	dst = appendStringField(dst, "job", r.Job)
	dst = appendStringField(dst, "project", r.Project)
	dst = append(dst, `,"provider":`...)
	dst = appendString(dst, r.Provider)
	dst = appendStringField(dst, "ref", r.Ref)
	dst = appendStringField(dst, "runAttempt", r.RunAttempt)
	dst = appendStringField(dst, "runId", r.RunID)
	dst = appendStringField(dst, "sha", r.SHA)
	dst = appendStringField(dst, "workflow", r.Workflow)
	return closeObject(dst, n)
}

// MarshalJSON writes what AppendJSON appends.
func (r *CIRun) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }
