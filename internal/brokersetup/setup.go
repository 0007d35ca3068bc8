// Package brokersetup writes what an AWS account needs for keyless's broker
// mode, and the AWS policy that revokes the sessions AWS already issued:
// the IAM OIDC provider for keyless's built-in issuer and the upstream
// role whose trust policy admits exactly one keyless role's subject, as
// Terraform or as AWS CLI commands (keyless broker aws-setup), and AWS's
// AWSRevokeOlderSessions policy (keyless broker revoke-older). It renders
// text; reading keyless's role and calling AWS is the command's job.
package brokersetup

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/keylessci/keyless/internal/broker"
	"github.com/keylessci/keyless/internal/iam"
)

// Audience is the aud of the ID tokens keyless's broker presents to AWS
// STS, and so the one client ID of the IAM OIDC provider.
const Audience = broker.Audience

// Subject is the sub of the ID tokens keyless's broker mints for a keyless
// role (one stable subject per role), which the upstream role's trust
// policy pins: package broker's, so that the two cannot drift apart.
func Subject(account, roleName string) string { return broker.Subject(account, roleName) }

// ErrInput marks input a plan cannot be made from (the command's usage
// errors).
var ErrInput = errors.New("invalid input")

// RoleARN is an IAM role ARN taken apart.
type RoleARN struct {
	ARN, Partition, Account string
	Path                    string // "/" or "/a/b/"
	Name                    string
}

var reRoleARN = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role(/(?:[\x{0021}-\x{007E}]*/)?)([\w+=,.@-]{1,64})$`)

// ParseRoleARN parses arn:PARTITION:iam::ACCOUNT:role/PATH/NAME, with
// IAM's characters for the path (at most 512) and the name (at most 64).
func ParseRoleARN(s string) (RoleARN, error) {
	m := reRoleARN.FindStringSubmatch(s)
	if m == nil || len(m[3]) > 512 {
		return RoleARN{}, fmt.Errorf("%w: %q is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<path/name>)", ErrInput, s)
	}
	return RoleARN{ARN: s, Partition: m[1], Account: m[2], Path: m[3], Name: m[4]}, nil
}

var reRoleName = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// ValidRoleName reports whether s is an IAM role name.
func ValidRoleName(s string) bool { return reRoleName.MatchString(s) }

var reAccount = regexp.MustCompile(`^\d{12}$`)

// ValidAccountID reports whether s is a 12-digit AWS account id.
func ValidAccountID(s string) bool { return reAccount.MatchString(s) }

// Issuer is an issuer URL checked for registration as an IAM OIDC
// provider.
type Issuer struct {
	URL string
	// Prefix is the URL without its scheme: the provider ARN's last part
	// and the prefix of the trust policy's condition keys.
	Prefix string
	// Loopback marks a loopback test issuer (plain http or a port), which
	// only a keyless serve --allow-loopback-http-issuers accepts, never
	// AWS.
	Loopback bool
}

// CheckIssuer checks that AWS can register u as an OIDC provider: an
// https URL without port, user info, query or fragment. A loopback URL
// (127.0.0.0/8, [::1], localhost) may be plain http and carry a port, for
// a keyless playing AWS in tests; it is marked Loopback.
func CheckIssuer(u string) (Issuer, error) {
	p, err := url.Parse(u)
	if err != nil || !p.IsAbs() || p.Host == "" || p.Opaque != "" {
		return Issuer{}, fmt.Errorf("%w: issuer URL %q is not an absolute URL", ErrInput, u)
	}
	if p.User != nil || p.RawQuery != "" || p.ForceQuery || p.Fragment != "" || strings.Contains(u, "#") {
		return Issuer{}, fmt.Errorf("%w: issuer URL %q: AWS refuses user info, a query or a fragment in a provider URL", ErrInput, u)
	}
	if len(u) > 255 {
		return Issuer{}, fmt.Errorf("%w: issuer URL %q: AWS takes provider URLs of at most 255 characters", ErrInput, u)
	}
	loopback := isLoopback(p.Hostname())
	switch {
	case p.Scheme != "https" && p.Scheme != "http":
		return Issuer{}, fmt.Errorf("%w: issuer URL %q: AWS registers https providers only", ErrInput, u)
	case loopback && (p.Scheme == "http" || p.Port() != ""):
		// A test issuer: said so in the output.
	case p.Scheme == "http":
		return Issuer{}, fmt.Errorf("%w: issuer URL %q: AWS registers https providers only (plain http is for loopback test issuers); serve the issuer over TLS on 443, or publish it to an HTTPS static host with keyless issuer publish", ErrInput, u)
	case p.Port() != "":
		return Issuer{}, fmt.Errorf("%w: issuer URL %q: AWS refuses a port in a provider URL; serve the issuer on 443", ErrInput, u)
	default:
		loopback = false
	}
	return Issuer{URL: u, Prefix: strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://"), Loopback: loopback}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Input is what a setup plan is made from.
type Input struct {
	// KeylessRoleARN is the keyless role's ARN (GetRole at keyless).
	KeylessRoleARN string
	// MaxSessionDuration is the keyless role's, in seconds (3600–43200);
	// the upstream role gets the same, so that every duration keyless
	// grants AWS grants too.
	MaxSessionDuration int32
	// UpstreamRoleARN is the AWS role (the keyless:upstream-role-arn tag,
	// or built from flags).
	UpstreamRoleARN string
	// Tagged says the keyless role carries the upstream tag already;
	// otherwise the output ends with the command that tags it at
	// KeylessEndpoint.
	Tagged          bool
	KeylessEndpoint string
	// IssuerURL is the exact issuer URL of the broker's ID tokens.
	IssuerURL string
	// Thumbprints of the issuer's hosts (none for a loopback http issuer).
	Thumbprints []Thumbprint
}

// Thumbprint is one host's thumbprint, with whether this machine's trust
// store vouches for its chain.
type Thumbprint struct {
	Host, Value string
	Trusted     bool
}

// Plan is a checked Input with what follows from it.
type Plan struct {
	Input
	KeylessRole RoleARN
	Upstream    RoleARN
	Issuer      Issuer
	Subject     string
	ProviderARN string
}

var reThumbprint = regexp.MustCompile(`^[0-9a-f]{40}$`)

// NewPlan checks in and derives the subject, the provider ARN and the
// condition keys.
func NewPlan(in Input) (*Plan, error) {
	kr, err := ParseRoleARN(in.KeylessRoleARN)
	if err != nil {
		return nil, fmt.Errorf("keyless role: %w", err)
	}
	up, err := ParseRoleARN(in.UpstreamRoleARN)
	if err != nil {
		return nil, fmt.Errorf("upstream role: %w", err)
	}
	if !iam.UpstreamRoleARNValid(in.UpstreamRoleARN) {
		return nil, fmt.Errorf("%w: upstream role %q: not a value keyless accepts for the %s tag", ErrInput, in.UpstreamRoleARN, iam.TagUpstreamRoleARN)
	}
	is, err := CheckIssuer(in.IssuerURL)
	if err != nil {
		return nil, err
	}
	if in.MaxSessionDuration < 3600 || in.MaxSessionDuration > 43200 {
		return nil, fmt.Errorf("%w: max session duration %d: AWS takes 3600 to 43200 seconds", ErrInput, in.MaxSessionDuration)
	}
	if !in.Tagged {
		if _, err := url.ParseRequestURI(in.KeylessEndpoint); err != nil {
			return nil, fmt.Errorf("%w: keyless endpoint %q is not a URL", ErrInput, in.KeylessEndpoint)
		}
	}
	if len(in.Thumbprints) > 5 {
		return nil, fmt.Errorf("%w: %d thumbprints: AWS keeps at most 5", ErrInput, len(in.Thumbprints))
	}
	for _, tp := range in.Thumbprints {
		if !reThumbprint.MatchString(tp.Value) {
			return nil, fmt.Errorf("%w: thumbprint %q is not 40 lowercase hex digits", ErrInput, tp.Value)
		}
	}
	if len(in.Thumbprints) == 0 && !is.Loopback {
		return nil, fmt.Errorf("%w: no thumbprint for %s", ErrInput, in.IssuerURL)
	}
	return &Plan{
		Input:       in,
		KeylessRole: kr,
		Upstream:    up,
		Issuer:      is,
		Subject:     Subject(kr.Account, kr.Name),
		ProviderARN: "arn:" + up.Partition + ":iam::" + up.Account + ":oidc-provider/" + is.Prefix,
	}, nil
}

// The trust policy's condition keys.
func (p *Plan) audKey() string { return p.Issuer.Prefix + ":aud" }
func (p *Plan) subKey() string { return p.Issuer.Prefix + ":sub" }

// description is the upstream role's description: where it is brokered
// from.
func (p *Plan) description() string {
	return "Brokered by keyless for " + p.KeylessRole.ARN + " (subject " + p.Subject + ")"
}

func (p *Plan) thumbprintValues() []string {
	out := make([]string, len(p.Thumbprints))
	for i, t := range p.Thumbprints {
		out[i] = t.Value
	}
	return out
}

// header is the comment both outputs start with.
func (p *Plan) header(form string) []string {
	lines := []string{
		"keyless broker aws-setup --output " + form + ": what AWS account " + p.Upstream.Account + " needs so that keyless",
		"brokers the keyless role " + p.KeylessRole.ARN,
		"to the AWS role " + p.Upstream.ARN + ".",
		"AWS trusts keyless's issuer " + p.Issuer.URL + " for exactly the subject",
		p.Subject + " (audience " + Audience + ").",
	}
	if p.Issuer.Loopback {
		lines = append(lines, "",
			"WARNING: "+p.Issuer.URL+" is a loopback test issuer. Real AWS refuses plain http",
			"and ports in provider URLs: this works only against a keyless serve run with",
			"--allow-loopback-http-issuers playing AWS.")
	}
	for _, t := range p.Thumbprints {
		if !t.Trusted {
			lines = append(lines, "",
				"NOTE: this machine's trust store does not vouch for the certificate chain of "+t.Host+":",
				"AWS may then rely on its thumbprint "+t.Value+"; check it out of band.")
		}
	}
	return lines
}
