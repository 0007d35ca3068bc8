package issuer

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Algorithms a keyless issuer signs with. Both are on AWS STS's list.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// DefaultID is the issuer id used when a deployment has one issuer and does
// not name it.
const DefaultID = "default"

// Defaults and bounds of Config.
const (
	DefaultTokenLifetime    = time.Hour
	DefaultMaxTokenLifetime = 6 * time.Hour
	DefaultRotationPeriod   = 7 * 24 * time.Hour
	DefaultJWKSMaxAge       = time.Hour

	// MinTokenLifetime: shorter tokens expire before a CI step can use them.
	MinTokenLifetime = time.Minute
	// MaxTokenLifetimeCeiling: AWS STS refuses ID tokens older than about
	// one day ("Token too old"), so a longer cap would only mint tokens AWS
	// rejects, while keeping retired keys published longer.
	MaxTokenLifetimeCeiling = 24 * time.Hour
	minJWKSMaxAge           = time.Minute
	maxJWKSMaxAge           = 24 * time.Hour
)

// Config describes one issuer.
type Config struct {
	// ID names the issuer in the store (purpose "issuer:<ID>"), in the token
	// endpoint path and on the command line: [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
	ID string
	// URL is the exact issuer identifier (the iss claim). Its path is served
	// by this server: URL/.well-known/openid-configuration. https, or http on
	// a loopback host; no query, fragment, user info or trailing slash.
	URL string
	// Profile is the claim profile of every token the issuer mints:
	// generic (default), circleci, github or gitlab. A request may name it
	// but not another one.
	Profile string
	// Algorithm of new signing keys: RS256 (default) or ES256.
	Algorithm string
	// TokenLifetime is the lifetime of a token whose request names none
	// (default 1 h, as CircleCI).
	TokenLifetime time.Duration
	// MaxTokenLifetime caps requested lifetimes (default 6 h, the longest a
	// GitHub-hosted job runs; at most 24 h). Retired keys stay published
	// this long after they stop signing.
	MaxTokenLifetime time.Duration
	// RotationPeriod is how long a key signs before its successor takes
	// over (default 7 days). It must be at least the pre-publication period.
	RotationPeriod time.Duration
	// JWKSMaxAge is the Cache-Control max-age of the JWKS and discovery
	// document (default 1 h). New keys are published at least this long
	// (plus reload and clock-skew leeway) before they sign.
	JWKSMaxAge time.Duration
	// ServiceDocumentation is an optional URL for the discovery document.
	ServiceDocumentation string
	// PublishInterval, when the JWKS is also served as static files
	// (Publish), is the longest time between two publishes. New keys are
	// pre-published that much longer, so a static copy that lags the store
	// by up to PublishInterval still lists a key before it signs.
	PublishInterval time.Duration
	// Org is the organisation id per-organisation profiles use (circleci:
	// the org-id claim and the default aud). Default: the last path segment
	// when the URL path ends in /org/<id>, as CircleCI's issuers do.
	Org string
}

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	pathSegPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
)

// withDefaults returns c with zero fields defaulted.
func (c Config) withDefaults() Config {
	if c.Profile == "" {
		c.Profile = ProfileGeneric
	}
	if c.Algorithm == "" {
		c.Algorithm = RS256
	}
	if c.TokenLifetime == 0 {
		c.TokenLifetime = DefaultTokenLifetime
	}
	if c.MaxTokenLifetime == 0 {
		c.MaxTokenLifetime = max(DefaultMaxTokenLifetime, c.TokenLifetime)
	}
	if c.RotationPeriod == 0 {
		c.RotationPeriod = DefaultRotationPeriod
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if c.Org == "" {
		if u, err := url.Parse(c.URL); err == nil {
			segs := strings.Split(strings.Trim(u.Path, "/"), "/")
			if n := len(segs); n >= 2 && segs[n-2] == "org" {
				c.Org = segs[n-1]
			}
		}
	}
	return c
}

// validate checks a defaulted config; timing holds the service-wide leeway.
func (c Config) validate(t timing) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: issuer %q: %s", ErrConfig, c.ID, fmt.Sprintf(format, args...))
	}
	if !idPattern.MatchString(c.ID) {
		return bad("id must match %s", idPattern)
	}
	if _, err := issuerPath(c.URL); err != nil {
		return bad("%v", err)
	}
	p, ok := profiles[c.Profile]
	if !ok {
		return bad("unknown profile %q (want %s)", c.Profile, profileNames())
	}
	if c.Algorithm != RS256 && c.Algorithm != ES256 {
		return bad("algorithm %q: want RS256 or ES256", c.Algorithm)
	}
	if c.MaxTokenLifetime < MinTokenLifetime || c.MaxTokenLifetime > MaxTokenLifetimeCeiling {
		return bad("max token lifetime %s outside [%s, %s]", c.MaxTokenLifetime, MinTokenLifetime, MaxTokenLifetimeCeiling)
	}
	if c.TokenLifetime < MinTokenLifetime || c.TokenLifetime > c.MaxTokenLifetime {
		return bad("token lifetime %s outside [%s, %s]", c.TokenLifetime, MinTokenLifetime, c.MaxTokenLifetime)
	}
	if c.JWKSMaxAge < minJWKSMaxAge || c.JWKSMaxAge > maxJWKSMaxAge {
		return bad("JWKS max-age %s outside [%s, %s]", c.JWKSMaxAge, minJWKSMaxAge, maxJWKSMaxAge)
	}
	if c.PublishInterval < 0 || c.PublishInterval > maxJWKSMaxAge {
		return bad("publish interval %s outside [0, %s]", c.PublishInterval, maxJWKSMaxAge)
	}
	if pp := t.prePublish(c); c.RotationPeriod < pp {
		return bad("rotation period %s is shorter than the pre-publication period %s (JWKS max-age + reload and skew leeway)", c.RotationPeriod, pp)
	}
	if c.ServiceDocumentation != "" {
		u, err := url.Parse(c.ServiceDocumentation)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("service documentation %q is not an absolute http(s) URL", c.ServiceDocumentation)
		}
	}
	if c.Org != "" && (strings.ContainsAny(c.Org, "/ \t\r\n") || len(c.Org) > 128) {
		return bad("org %q must be one path segment of at most 128 characters", c.Org)
	}
	if p.needsOrg && c.Org == "" {
		return bad("profile %s needs an organisation id: set Org or use a URL ending in /org/<id>", c.Profile)
	}
	return nil
}

// issuerPath checks an issuer URL and returns its path ("" for the root).
// The rules keep the URL usable as an IAM OIDC provider URL (AWS: at most
// 255 characters, https) and as a literal ServeMux pattern.
func issuerPath(raw string) (string, error) {
	if len(raw) > 255 {
		return "", fmt.Errorf("url is longer than 255 characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("url %q does not parse: %w", raw, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("url %q: scheme must be https", raw)
	case u.Host == "" || u.Opaque != "":
		return "", fmt.Errorf("url %q has no host", raw)
	case u.User != nil:
		return "", fmt.Errorf("url %q must not carry user info", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return "", fmt.Errorf("url %q must not have a query or fragment", raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "", fmt.Errorf("url %q: plain http is allowed only on loopback hosts", raw)
	}
	if u.RawPath != "" {
		return "", fmt.Errorf("url %q: path must not be percent-encoded", raw)
	}
	p := u.Path
	if p == "" {
		return "", nil
	}
	if strings.HasSuffix(p, "/") {
		return "", fmt.Errorf("url %q must not end with a slash", raw)
	}
	for _, seg := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if !pathSegPattern.MatchString(seg) || seg == "." || seg == ".." {
			return "", fmt.Errorf("url %q: path segment %q must be letters, digits, '.', '_', '~' or '-'", raw, seg)
		}
	}
	return p, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// timing is the service-wide leeway that, with a config, fixes the
// rotation schedule.
type timing struct {
	reload time.Duration // how often nodes re-read the keys
	skew   time.Duration // tolerated clock difference between nodes
}

// staleAfter is how old a node's view of the keys may be before it stops
// signing and serving the JWKS.
func (t timing) staleAfter() time.Duration { return 2 * t.reload }

// prePublish is how long a new key is published before it may sign: a
// verifier may cache a JWKS for max-age, fetched from a node whose view is
// up to staleAfter old (or from a static copy up to PublishInterval old),
// on a clock that may differ by skew.
func (t timing) prePublish(c Config) time.Duration {
	return c.JWKSMaxAge + max(t.staleAfter(), c.PublishInterval) + t.skew
}

// retention is how long a key stays published after it stops signing: its
// last token lives MaxTokenLifetime, and a node that has not yet seen the
// retirement may sign for up to staleAfter + skew longer.
func (t timing) retention(c Config) time.Duration {
	return c.MaxTokenLifetime + t.staleAfter() + t.skew
}
