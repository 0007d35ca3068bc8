package oidc

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// IssuerKind selects the set of condition keys AWS exposes for a provider.
type IssuerKind string

// Issuer kinds with their own key sets (trust-pitfalls §4.2).
const (
	KindGeneric  IssuerKind = "generic"
	KindGitHub   IssuerKind = "github"
	KindGitLab   IssuerKind = "gitlab.com"
	KindCircleCI IssuerKind = "circleci"
	KindGoogle   IssuerKind = "google"
)

// KindOf recognises the issuers whose key sets differ from the default by
// their provider URL.
func KindOf(providerURL string) IssuerKind {
	switch {
	case providerURL == "https://token.actions.githubusercontent.com",
		// Enterprise-unique issuers: .../<enterprise-slug> (GitHub docs).
		strings.HasPrefix(providerURL, "https://token.actions.githubusercontent.com/"):
		return KindGitHub
	case providerURL == "https://gitlab.com":
		// Only gitlab.com; self-managed GitLab gets the default keys.
		return KindGitLab
	case strings.HasPrefix(providerURL, "https://oidc.circleci.com/org/"):
		return KindCircleCI
	case providerURL == "https://accounts.google.com":
		return KindGoogle
	}
	return KindGeneric
}

// ConditionKeyNames is THE list of condition-key names (the part after
// "<prefix>:") that AWS exposes in trust policies for an issuer kind. The
// STS fills exactly these keys and the trust-policy linter flags any other
// (TP013), so both must use this function. It returns a fresh slice.
//
// Sources, as collected in trust-pitfalls §4.2 and aws-sts-iam.md §2.9:
//   - default: IAM User Guide, "Available keys for AWS OIDC federation",
//     Default tab: aud, sub, amr, oaud, email.
//   - GitHub: the same page's GitHub tab, added with the STS identity-
//     provider claim validation launch (AWS What's New, 2026-01):
//     actor, actor_id, job_workflow_ref, repository, repository_id,
//     repository_owner_id (present in some copies of the list only,
//     trust-pitfalls §10.2), workflow, ref, environment, enterprise_id.
//   - gitlab.com: the GitLab tab: project_id, namespace_id, ref_protected,
//     pipeline_source, project_path, namespace_path, ref, ref_type,
//     environment.
//   - CircleCI: oidc.circleci.com/project-id (written
//     "oidc.circleci.com/org/<ORG>:oidc.circleci.com/project-id").
//   - accounts.google.com: aud (= azp when present), oaud, sub, email.
func ConditionKeyNames(kind IssuerKind) []string {
	defaults := []string{"aud", "sub", "amr", "oaud", "email"}
	switch kind {
	case KindGitHub:
		return append(defaults, "actor", "actor_id", "job_workflow_ref", "repository", "repository_id",
			"repository_owner_id", "workflow", "ref", "environment", "enterprise_id")
	case KindGitLab:
		return append(defaults, "project_id", "namespace_id", "ref_protected", "pipeline_source",
			"project_path", "namespace_path", "ref", "ref_type", "environment")
	case KindCircleCI:
		return append(defaults, "oidc.circleci.com/project-id")
	case KindGoogle:
		return []string{"aud", "oaud", "sub", "email"}
	}
	return defaults
}

// ConditionKeyPrefix is the provider URL without its scheme: host[:port] and
// path, trailing slash included (aws-sts-iam.md §2.9; CONTRACT §2 for
// loopback URLs with a port).
func ConditionKeyPrefix(providerURL string) string {
	if _, rest, ok := strings.Cut(providerURL, "://"); ok {
		return rest
	}
	return providerURL
}

// ConditionValues maps a validated token to its condition-key values for
// the trust policy: "<prefix>:<name>" → values, for every key of the
// issuer's kind that the token provides. aud is the effective audience
// (azp when present), oaud the original aud values; arrays give several
// values; scalars use ClaimStrings' canonical form.
func ConditionValues(t *Token) map[string][]string {
	prefix := ConditionKeyPrefix(t.Provider.URL) + ":"
	out := make(map[string][]string)
	for _, name := range ConditionKeyNames(KindOf(t.Provider.URL)) {
		var vals []string
		switch name {
		case "aud":
			vals = []string{t.Audience}
		case "oaud":
			vals = append([]string(nil), t.OriginalAudience...)
		case "sub":
			vals = []string{t.Subject}
		default:
			vals, _ = ClaimStrings(t.Claims[name])
		}
		if len(vals) > 0 {
			out[prefix+name] = vals
		}
	}
	return out
}

// ClaimStrings converts a claim value to the strings a condition compares
// (V18), one canonical form for policy evaluation and audit alike: strings
// as they are, booleans "true"/"false", integers in plain decimal (5001,
// whether sent as 5001, 5001.0 or 5.001e3), other numbers in Go's shortest
// round-trip form, arrays as several values (nested arrays and objects are
// skipped). Objects and null give no value.
func ClaimStrings(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case bool:
		return []string{strconv.FormatBool(v)}, true
	case json.Number:
		return []string{canonicalNumber(v)}, true
	case []any:
		var out []string
		for _, e := range v {
			switch e.(type) {
			case []any, map[string]any, nil:
				continue
			}
			s, _ := ClaimStrings(e)
			out = append(out, s...)
		}
		return out, len(out) > 0
	}
	return nil, false
}

func canonicalNumber(n json.Number) string {
	s := string(n)
	digits := strings.TrimPrefix(s, "-")
	if isDigits(digits) && (len(digits) == 1 || digits[0] != '0') {
		if digits == "0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return s
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
