package issuer

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Claim profiles.
const (
	ProfileGeneric  = "generic"
	ProfileCircleCI = "circleci"
	ProfileGitHub   = "github"
	ProfileGitLab   = "gitlab"
)

// claimKind is the JSON type a profile gives a claim.
type claimKind uint8

const (
	kindAny     claimKind = iota // any JSON value but null
	kindString                   // JSON string
	kindBool                     // JSON boolean; "true"/"false" accepted
	kindStrings                  // array of strings; a JSON-array string or one bare value accepted
	kindInt                      // JSON integer; a decimal string accepted
)

func (k claimKind) String() string {
	switch k {
	case kindString:
		return "a string"
	case kindBool:
		return "a boolean"
	case kindStrings:
		return "an array of strings"
	case kindInt:
		return "an integer"
	}
	return "any JSON value"
}

// registered are the claims the issuer always sets itself. azp is among
// them because AWS matches azp, when present, instead of aud against the
// provider's client ids: letting a request set it would silently change
// which audience AWS checks.
var registered = map[string]string{
	"iss": "the issuer sets it to its URL",
	"sub": "use the subject field",
	"aud": "use the audience field",
	"exp": "use the lifetime field",
	"iat": "the issuer sets it",
	"nbf": "the issuer sets it",
	"jti": "the issuer sets it",
	"azp": "AWS would check azp instead of aud",
}

// profile is one CI system's token shape.
type profile struct {
	name string
	// known claims and their types; other names are refused unless free,
	// namespaced (containing '/' or ':', RFC 7519 §4.2 public names) or
	// starting with one of prefixes.
	known    map[string]claimKind
	free     bool
	prefixes []string
	// notBefore: nbf = iat - notBefore when hasNBF.
	hasNBF    bool
	notBefore time.Duration
	hasJTI    bool
	needsOrg  bool
	// derive sets sub, aud and derived claims on m.
	derive func(m *minting) error
}

// supported is the discovery document's claims_supported for p.
func (p *profile) supported() []string {
	out := []string{"aud", "exp", "iat", "iss", "sub"}
	if p.hasJTI {
		out = append(out, "jti")
	}
	if p.hasNBF {
		out = append(out, "nbf")
	}
	sort.Strings(out)
	names := make([]string, 0, len(p.known))
	for n := range p.known {
		names = append(names, n)
	}
	sort.Strings(names)
	return append(out, names...)
}

// kindOf returns the type p gives name and whether p accepts the name.
func (p *profile) kindOf(name string) (claimKind, bool) {
	if k, ok := p.known[name]; ok {
		return k, true
	}
	if p.free || strings.ContainsAny(name, "/:") {
		return kindAny, true
	}
	for _, pre := range p.prefixes {
		if strings.HasPrefix(name, pre) && len(name) > len(pre) {
			return kindAny, true
		}
	}
	return kindAny, false
}

var profiles = map[string]*profile{
	ProfileGeneric:  genericProfile,
	ProfileCircleCI: circleCIProfile,
	ProfileGitHub:   gitHubProfile,
	ProfileGitLab:   gitLabProfile,
}

func profileNames() string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Profiles lists the claim profile names.
func Profiles() []string { return strings.Split(profileNames(), ", ") }

var genericProfile = &profile{
	name:   ProfileGeneric,
	known:  map[string]claimKind{},
	free:   true,
	hasNBF: true, hasJTI: true,
	derive: func(m *minting) error {
		if m.subject == "" {
			return missing("The generic profile needs a subject.")
		}
		if m.audience == "" {
			return missing("The generic profile needs an audience.")
		}
		return nil
	},
}

// CircleCI claims (https://circleci.com/docs/openid-connect-tokens/). Its
// tokens carry iss, sub, aud, iat and exp only: no nbf, no jti.
const (
	ccOrgID      = "oidc.circleci.com/org-id"
	ccProjectID  = "oidc.circleci.com/project-id"
	ccContextIDs = "oidc.circleci.com/context-ids"
	ccVCSOrigin  = "oidc.circleci.com/vcs-origin"
	ccVCSRef     = "oidc.circleci.com/vcs-ref"
	ccSSHRerun   = "oidc.circleci.com/ssh-rerun"
)

var circleCIProfile = &profile{
	name: ProfileCircleCI,
	known: map[string]claimKind{
		ccOrgID:      kindString,
		ccProjectID:  kindString,
		ccContextIDs: kindStrings,
		ccVCSOrigin:  kindString,
		ccVCSRef:     kindString,
		ccSSHRerun:   kindBool,
		"oidc.circleci.com/pipeline-definition-id": kindString,
		"oidc.circleci.com/workflow-id":            kindString,
	},
	needsOrg: true,
	derive: func(m *minting) error {
		org := m.iss.cfg.Org
		if org == "" {
			return invalid(ErrMissing, "Issuer %q has no organisation id; the circleci profile needs one.", m.iss.cfg.ID)
		}
		if err := m.setDerived(ccOrgID, org, "the issuer's organisation"); err != nil {
			return err
		}
		if m.subject == "" {
			return missing("The circleci profile needs a subject: org/%s/project/<project-id>/user/<user-id>[/vcs-origin/<origin>/vcs-ref/<ref>].", org)
		}
		s, err := ParseCircleCISubject(m.subject)
		if err != nil {
			return invalid(ErrClaimValue, "%v", err)
		}
		if s.Org != org {
			return invalid(ErrClaimValue, "The subject names org %q but issuer %q is org %q.", truncate(s.Org, 64), m.iss.cfg.ID, org)
		}
		if err := m.setDerived(ccProjectID, s.Project, "the subject"); err != nil {
			return err
		}
		if s.VCSOrigin != "" {
			if err := m.setDerived(ccVCSOrigin, s.VCSOrigin, "the subject"); err != nil {
				return err
			}
			if err := m.setDerived(ccVCSRef, s.VCSRef, "the subject"); err != nil {
				return err
			}
		}
		if _, ok := m.claims[ccSSHRerun]; !ok {
			m.claims[ccSSHRerun] = false // CircleCI always sends it
		}
		if m.audience == "" {
			m.audience = org // CircleCI's fixed default audience
		}
		return nil
	},
}

// CircleCISubject is a parsed CircleCI sub claim.
type CircleCISubject struct {
	Org, Project, User string
	// VCSOrigin and VCSRef are set for the $CIRCLE_OIDC_TOKEN_V2 form.
	VCSOrigin, VCSRef string
}

// ParseCircleCISubject parses org/<org>/project/<project>/user/<user>,
// optionally followed by /vcs-origin/<origin>/vcs-ref/<ref> (the V2 form;
// origin and ref may contain '/').
func ParseCircleCISubject(sub string) (CircleCISubject, error) {
	var s CircleCISubject
	bad := fmt.Errorf("%w: subject %q is not org/<org>/project/<project>/user/<user>[/vcs-origin/<origin>/vcs-ref/<ref>]", ErrClaimValue, truncate(sub, 128))
	parts := strings.SplitN(sub, "/", 7)
	if len(parts) < 6 || parts[0] != "org" || parts[2] != "project" || parts[4] != "user" {
		return s, bad
	}
	s.Org, s.Project, s.User = parts[1], parts[3], parts[5]
	if s.Org == "" || s.Project == "" || s.User == "" {
		return s, bad
	}
	if len(parts) == 6 {
		return s, nil
	}
	rest, ok := strings.CutPrefix(parts[6], "vcs-origin/")
	if !ok {
		return s, bad
	}
	origin, ref, ok := strings.Cut(rest, "/vcs-ref/")
	if !ok || origin == "" || ref == "" {
		return s, bad
	}
	s.VCSOrigin, s.VCSRef = origin, ref
	return s, nil
}

// GitHub Actions claims; every value is a JSON string in GitHub's tokens
// (ids and ref_protected included).
var gitHubProfile = &profile{
	name:     ProfileGitHub,
	known:    stringKinds("actor", "actor_id", "base_ref", "check_run_id", "enterprise", "enterprise_id", "environment", "environment_node_id", "event_name", "head_ref", "job_workflow_ref", "job_workflow_sha", "ref", "ref_protected", "ref_type", "repository", "repository_id", "repository_owner", "repository_owner_id", "repository_visibility", "run_attempt", "run_id", "run_number", "runner_environment", "sha", "workflow", "workflow_ref", "workflow_sha"),
	prefixes: []string{"repo_property_"},
	hasJTI:   true,
	hasNBF:   true,
	// GitHub's documented example token has nbf = iat - 600 s.
	notBefore: 10 * time.Minute,
	derive: func(m *minting) error {
		repo := m.str("repository")
		var owner string
		if repo != "" {
			o, name, ok := strings.Cut(repo, "/")
			if !ok || o == "" || name == "" || strings.Contains(name, "/") {
				return invalid(ErrClaimValue, "Claim repository must be OWNER/REPO, not %q.", truncate(repo, 128))
			}
			owner = o
			if err := m.setDerived("repository_owner", owner, "repository"); err != nil {
				return err
			}
		}
		ref := m.str("ref")
		switch {
		case strings.HasPrefix(ref, "refs/heads/"):
			if err := m.setDerived("ref_type", "branch", "ref"); err != nil {
				return err
			}
		case strings.HasPrefix(ref, "refs/tags/"):
			if err := m.setDerived("ref_type", "tag", "ref"); err != nil {
				return err
			}
		}
		if m.subject == "" {
			if repo == "" {
				return missing("The github profile derives the subject from claim repository=OWNER/REPO (with environment, event_name=pull_request or ref); give it or a subject.")
			}
			env, event := m.str("environment"), m.str("event_name")
			switch {
			case env != "":
				// GitHub writes ':' in an environment name as %3A and
				// leaves '%' alone.
				m.subject = "repo:" + repo + ":environment:" + strings.ReplaceAll(env, ":", "%3A")
			case strings.HasPrefix(event, "pull_request"):
				m.subject = "repo:" + repo + ":pull_request"
			case ref != "":
				m.subject = "repo:" + repo + ":ref:" + ref
			default:
				return missing("The github profile cannot derive the subject: give claim ref (refs/heads/<branch>), environment or event_name=pull_request, or a subject.")
			}
		}
		if m.audience == "" {
			if owner == "" {
				return missing("The github profile's default audience is https://github.com/OWNER: give claim repository or an audience.")
			}
			m.audience = "https://github.com/" + owner
		}
		return nil
	},
}

// GitLab CI claims; values are JSON strings except runner_id (an integer)
// and the user_identities/groups_direct arrays.
var gitLabProfile = &profile{
	name: ProfileGitLab,
	known: func() map[string]claimKind {
		m := stringKinds("namespace_id", "namespace_path", "project_id", "project_path", "user_id", "user_login", "user_email", "user_access_level", "pipeline_id", "pipeline_source", "job_id", "ref", "ref_type", "ref_path", "ref_protected", "environment", "environment_protected", "deployment_tier", "environment_action", "runner_environment", "sha", "ci_config_ref_uri", "ci_config_sha", "project_visibility")
		m["runner_id"] = kindInt
		m["groups_direct"] = kindStrings
		m["user_identities"] = kindAny
		return m
	}(),
	hasJTI: true,
	hasNBF: true,
	// GitLab sets nbf five seconds before iat.
	notBefore: 5 * time.Second,
	derive: func(m *minting) error {
		pp := m.str("project_path")
		if pp != "" {
			i := strings.LastIndexByte(pp, '/')
			if i <= 0 || i == len(pp)-1 {
				return invalid(ErrClaimValue, "Claim project_path must be GROUP/PROJECT, not %q.", truncate(pp, 128))
			}
			if err := m.setDerived("namespace_path", pp[:i], "project_path"); err != nil {
				return err
			}
		}
		ref, refType := m.str("ref"), m.str("ref_type")
		if refType != "" && refType != "branch" && refType != "tag" {
			return invalid(ErrClaimValue, "Claim ref_type must be branch or tag, not %q.", truncate(refType, 64))
		}
		if ref != "" && refType != "" {
			prefix := "refs/heads/"
			if refType == "tag" {
				prefix = "refs/tags/"
			}
			if err := m.setDerived("ref_path", prefix+ref, "ref and ref_type"); err != nil {
				return err
			}
		}
		if m.subject == "" {
			if pp == "" || ref == "" || refType == "" {
				return missing("The gitlab profile derives the subject from claims project_path, ref_type and ref; give them or a subject.")
			}
			m.subject = "project_path:" + pp + ":ref_type:" + refType + ":ref:" + ref
		}
		if m.audience == "" {
			return missing("The gitlab profile needs an audience (GitLab jobs always name theirs in id_tokens).")
		}
		return nil
	},
}

func stringKinds(names ...string) map[string]claimKind {
	m := make(map[string]claimKind, len(names))
	for _, n := range names {
		m[n] = kindString
	}
	return m
}

// minting is the state of one token being built.
type minting struct {
	iss      *issuer
	prof     *profile
	subject  string
	audience string
	claims   map[string]any
}

// str returns a string claim ("" when absent; types were checked before).
func (m *minting) str(name string) string {
	s, _ := m.claims[name].(string)
	return s
}

// setDerived sets a claim the profile derives; a request may give it only
// with the same value.
func (m *minting) setDerived(name, value, from string) error {
	if v, ok := m.claims[name]; ok {
		if s, isStr := v.(string); !isStr || s != value {
			return invalid(ErrDerivedClaim, "Claim %s is derived from %s as %q; the request gave %s.", name, from, truncate(value, 128), truncate(jsonText(v), 128))
		}
	}
	m.claims[name] = value
	return nil
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// coerce checks v against kind, accepting the string forms the command
// line sends for typed claims, and returns the value to put in the token.
func coerce(name string, kind claimKind, v any) (any, error) {
	bad := func() error {
		return invalid(ErrClaimValue, "Claim %s must be %s, not %s.", truncate(name, 64), kind, truncate(jsonText(v), 64))
	}
	switch kind {
	case kindString:
		if _, ok := v.(string); !ok {
			return nil, bad()
		}
		return v, nil
	case kindBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch x {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, bad()
	case kindStrings:
		switch x := v.(type) {
		case []string:
			return slices.Clone(x), nil
		case []any:
			out := make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, bad()
				}
				out[i] = s
			}
			return out, nil
		case string:
			if x == "" {
				return []string{}, nil
			}
			if strings.HasPrefix(x, "[") {
				var out []string
				if err := json.Unmarshal([]byte(x), &out); err != nil || out == nil {
					return nil, bad()
				}
				return out, nil
			}
			return []string{x}, nil
		}
		return nil, bad()
	case kindInt:
		var s string
		switch x := v.(type) {
		case json.Number:
			s = x.String()
		case string:
			s = x
		case int:
			return int64(x), nil
		case int64:
			return x, nil
		default:
			return nil, bad()
		}
		if !isInteger(s) {
			return nil, bad()
		}
		return json.Number(s), nil
	}
	return v, nil
}

func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
