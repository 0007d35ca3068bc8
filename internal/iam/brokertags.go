package iam

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/keylessci/keyless/internal/store"
)

// Broker mode (package broker) is switched on per role by two role tags.
// Their names are part of keyless's outside surface: the AWS CLI,
// Terraform's aws_iam_role tags and TagRole/UntagRole manage them.
const (
	// TagUpstreamRoleARN names the AWS role a keyless role's exchanges are
	// brokered to: arn:aws:iam::<account>:role/<path/name>.
	TagUpstreamRoleARN = "keyless:upstream-role-arn"
	// TagUpstreamSTSEndpoint overrides, for one role, the STS endpoint the
	// broker calls. Only AWS STS endpoints, and the endpoints the server's
	// configuration allows (broker.allowed_sts_endpoints), are accepted.
	TagUpstreamSTSEndpoint = "keyless:upstream-sts-endpoint"
)

// reUpstreamRoleARN is an IAM role ARN in one of AWS's partitions; the
// name and path use IAM's characters.
var reUpstreamRoleARN = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/([\x{0021}-\x{007E}]{1,512}/)?[\w+=,.@-]{1,64}$`)

// reAWSSTSHost is an AWS STS endpoint host: the global endpoint, a
// regional one, its FIPS variant, in the commercial, GovCloud or China
// partitions.
var reAWSSTSHost = regexp.MustCompile(`^sts(-fips)?(\.[a-z]{2}(-[a-z]+)+-\d+)?\.amazonaws\.com(\.cn)?$`)

// UpstreamRoleARNValid reports whether s is an IAM role ARN fit for the
// keyless:upstream-role-arn tag.
func UpstreamRoleARNValid(s string) bool { return reUpstreamRoleARN.MatchString(s) }

// NormalizeSTSEndpoint returns the canonical form of an STS endpoint URL
// (scheme and host lower-case, no trailing slash, default port dropped) and
// whether it is one: an absolute http(s) URL without user info, path,
// query or fragment.
func NormalizeSTSEndpoint(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.ForceQuery {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.Contains(host, "%") { // no IPv6 zone
		return "", false
	}
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	out := strings.ToLower(u.Scheme) + "://" + host
	if strings.Contains(host, ":") {
		out = strings.ToLower(u.Scheme) + "://[" + host + "]"
	}
	if port != "" {
		out += ":" + port
	}
	return out, true
}

// IsAWSSTSEndpoint reports whether raw is an AWS STS endpoint over HTTPS
// (https://sts.amazonaws.com, https://sts.REGION.amazonaws.com, the FIPS
// and .amazonaws.com.cn variants), on the default port.
func IsAWSSTSEndpoint(raw string) bool {
	n, ok := NormalizeSTSEndpoint(raw)
	if !ok {
		return false
	}
	host, ok := strings.CutPrefix(n, "https://")
	return ok && reAWSSTSHost.MatchString(host)
}

// STSEndpointAllowed reports whether a per-role STS endpoint may be used:
// an AWS STS endpoint, or one of allowed (compared in canonical form).
// Any other endpoint would let whoever may tag a role send keyless-minted
// tokens, which real AWS accepts for the upstream role, to a server of
// their choosing.
func STSEndpointAllowed(raw string, allowed []string) bool {
	if IsAWSSTSEndpoint(raw) {
		return true
	}
	n, ok := NormalizeSTSEndpoint(raw)
	if !ok {
		return false
	}
	return slices.ContainsFunc(allowed, func(a string) bool {
		an, ok := NormalizeSTSEndpoint(a)
		return ok && an == n
	})
}

// RoleTag returns the value of a role's tag key (tag keys are
// case-insensitive in IAM) and whether the role has it.
func RoleTag(r *store.Role, key string) (string, bool) {
	for _, t := range r.Tags {
		if strings.EqualFold(t.Key, key) {
			return t.Value, true
		}
	}
	return "", false
}

// checkBrokerTags refuses broker tags whose values keyless could not use,
// when they are written (CreateRole, TagRole) rather than at the first
// exchange: an upstream role that is not an IAM role ARN, and an STS
// endpoint that is neither AWS's nor allowed by the configuration.
func (s *Service) checkBrokerTags(tags []store.Tag) error {
	for _, t := range tags {
		switch {
		case strings.EqualFold(t.Key, TagUpstreamRoleARN):
			if !UpstreamRoleARNValid(t.Value) {
				return invalid("%s", "The value of tag "+TagUpstreamRoleARN+" must be an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>), not "+quoteTagValue(t.Value)+".")
			}
		case strings.EqualFold(t.Key, TagUpstreamSTSEndpoint):
			if !STSEndpointAllowed(t.Value, s.allowedSTS) {
				return invalid("%s", "The value of tag "+TagUpstreamSTSEndpoint+" must be an AWS STS endpoint (https://sts.amazonaws.com, https://sts.<region>.amazonaws.com, their FIPS and .amazonaws.com.cn forms) or an endpoint listed in the server's broker.allowed_sts_endpoints; "+
					quoteTagValue(t.Value)+" is neither. keyless sends tokens that AWS accepts for the upstream role to this endpoint, so it cannot be any URL.")
			}
		}
	}
	return nil
}

func quoteTagValue(v string) string {
	if len(v) > 128 {
		v = v[:128] + "..."
	}
	return `"` + v + `"`
}
