package ciauth

import (
	"strings"
	"time"
)

// AWS's RoleSessionName constraints: pattern [\w+=,.@-]* (ASCII word
// characters), length 2..64.
const (
	MinSessionNameLen = 2
	MaxSessionNameLen = 64
)

// sessionNameFallback prefixes names that would be shorter than AWS allows.
const sessionNameFallback = "keyless"

func validSessionRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("_+=,.@-", r)
}

// cleanPart replaces every character AWS refuses: '/' becomes '.', so a
// repository path stays readable ("acme.web"), anything else becomes '-'.
// Runs of replacement dashes collapse to one and the result is trimmed of
// separators at both ends.
func cleanPart(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	lastDash := false
	for _, r := range s {
		switch {
		case validSessionRune(r):
			b.WriteRune(r)
			lastDash = r == '-'
		case r == '/':
			b.WriteByte('.')
			lastDash = false
		default:
			if !lastDash {
				b.WriteByte('-')
			}
			lastDash = true
		}
	}
	return strings.Trim(b.String(), "-.")
}

// SanitizeSessionName makes any string a valid RoleSessionName,
// deterministically: invalid characters are replaced (see cleanPart), the
// result is cut to 64 characters, and a result shorter than 2 characters
// gets the "keyless" prefix (so it is never empty).
func SanitizeSessionName(s string) string {
	c := cleanPart(s)
	if len(c) > MaxSessionNameLen {
		c = strings.TrimRight(c[:MaxSessionNameLen], "-.")
	}
	if len(c) < MinSessionNameLen {
		if c == "" {
			return sessionNameFallback
		}
		return sessionNameFallback + "-" + c
	}
	return c
}

// namePart is one component of a derived session name. Essential parts (run
// ids, build numbers) are kept whole; the others shrink, least important
// first, when the name is too long.
type namePart struct {
	s         string
	essential bool
	keepEnd   bool // when cutting, keep the end ("org/group/project" → "project")
}

// assembleName joins prefix and parts with '-' and fits the result into 64
// characters. It drops or shortens flexible parts from the last one
// backwards; if the essential parts alone are too long it keeps their end,
// where the most specific identifiers are.
func assembleName(prefix string, parts []namePart) string {
	var ps []namePart
	for _, p := range parts {
		if p.s = cleanPart(p.s); p.s != "" {
			ps = append(ps, p)
		}
	}
	join := func() string {
		all := []string{prefix}
		for _, p := range ps {
			all = append(all, p.s)
		}
		return strings.Join(all, "-")
	}
	name := join()
	for len(name) > MaxSessionNameLen {
		i := len(ps) - 1
		for i >= 0 && ps[i].essential {
			i--
		}
		if i < 0 {
			break
		}
		over := len(name) - MaxSessionNameLen
		// Keep a shortened part only if at least 3 characters survive;
		// shorter stubs carry no meaning.
		if keep := len(ps[i].s) - over; keep >= 3 {
			if ps[i].keepEnd {
				ps[i].s = strings.Trim(ps[i].s[len(ps[i].s)-keep:], "-.")
			} else {
				ps[i].s = strings.Trim(ps[i].s[:keep], "-.")
			}
		} else {
			ps[i].s = ""
		}
		if ps[i].s == "" {
			ps = append(ps[:i], ps[i+1:]...)
		}
		name = join()
	}
	if len(name) > MaxSessionNameLen {
		name = strings.TrimLeft(name[len(name)-MaxSessionNameLen:], "-.")
	}
	return SanitizeSessionName(name)
}

// DeriveSessionName names the session after the CI job, so the assumed-role
// ARN (and every CloudTrail event) tells which run used it:
//
//	CircleCI        circleci-<repo>-<job>-<build num>
//	GitHub Actions  gha-<owner.repo>-<job>-<run id>-<attempt>
//	GitLab CI       gitlab-<group.project>-<job id>
//	Buildkite       buildkite-<pipeline>-<build number>
//
// Outside CI, or without any metadata, it is keyless-<UTC timestamp>.
func DeriveSessionName(env Env, now time.Time) string {
	var prefix string
	var parts []namePart
	switch DetectCI(env) {
	case CICircleCI:
		prefix = "circleci"
		parts = []namePart{
			{s: env.Get("CIRCLE_PROJECT_REPONAME")},
			{s: env.Get("CIRCLE_JOB")},
			{s: env.Get("CIRCLE_BUILD_NUM"), essential: true},
		}
	case CIGitHubActions:
		prefix = "gha"
		parts = []namePart{
			{s: env.Get("GITHUB_REPOSITORY"), keepEnd: true},
			{s: env.Get("GITHUB_JOB")},
			{s: env.Get("GITHUB_RUN_ID"), essential: true},
			{s: env.Get("GITHUB_RUN_ATTEMPT"), essential: true},
		}
	case CIGitLab:
		prefix = "gitlab"
		parts = []namePart{
			{s: env.Get("CI_PROJECT_PATH"), keepEnd: true},
			{s: env.Get("CI_JOB_ID"), essential: true},
		}
	case CIBuildkite:
		prefix = "buildkite"
		parts = []namePart{
			{s: env.Get("BUILDKITE_PIPELINE_SLUG")},
			{s: env.Get("BUILDKITE_BUILD_NUMBER"), essential: true},
		}
	}
	empty := true
	for _, p := range parts {
		if cleanPart(p.s) != "" {
			empty = false
		}
	}
	if empty {
		return sessionNameFallback + "-" + now.UTC().Format("20060102T150405Z")
	}
	return assembleName(prefix, parts)
}
