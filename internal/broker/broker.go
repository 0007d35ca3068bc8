package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/issuer"
	"github.com/keylessci/keyless/internal/sts"
)

// Defaults and bounds.
const (
	// Audience is the aud of every broker token: the audience AWS's IAM
	// OIDC providers list for STS.
	Audience = "sts.amazonaws.com"
	// DefaultTimeout bounds one upstream call.
	DefaultTimeout = 5 * time.Second
	// DefaultTokenLifetime is the broker token's lifetime; it is also the
	// longest allowed.
	DefaultTokenLifetime = 5 * time.Minute
	// ClaimPrefix starts the names of the CI token's claims carried in
	// the broker token: no registered claim, AWS claim or CI profile claim
	// starts with it.
	ClaimPrefix = "ci_"
	// EventSource and EventName name the event recorded before a broker
	// token leaves keyless.
	EventSource = "broker.keyless"
	EventName   = "MintBrokerToken"
)

// Minter signs the broker's tokens (*issuer.Service).
type Minter interface {
	MintInternal(ctx context.Context, issuerID string, req issuer.InternalRequest) (*issuer.Token, error)
}

// Options configures a Broker.
type Options struct {
	// Minter and IssuerID: the built-in issuer that signs broker tokens.
	Minter   Minter
	IssuerID string
	// Region is the server's region: the default endpoint is its regional
	// STS endpoint.
	Region string
	// Endpoint is broker.sts_endpoint ("" for none); EnvEndpoint is the
	// endpoint the server's environment sets for STS ("" for none) and
	// FIPS its AWS_USE_FIPS_ENDPOINT (see [FromEnv]).
	Endpoint    string
	EnvEndpoint string
	FIPS        bool
	// AllowedEndpoints are the endpoints, besides AWS's, a role's
	// keyless:upstream-sts-endpoint tag may name.
	AllowedEndpoints []string
	// Timeout bounds one upstream call (default DefaultTimeout).
	Timeout time.Duration
	// TokenLifetime is the broker token's lifetime (default and maximum
	// DefaultTokenLifetime, at least a minute).
	TokenLifetime time.Duration
	// OmitClaims are CI token claims not carried to the upstream (the
	// audit trail's redacted claims).
	OmitClaims []string
	// HTTPClient calls the upstream (default: a client honouring
	// HTTPS_PROXY/NO_PROXY). Redirects are never followed.
	HTTPClient *http.Client
	// Record records an event durably and returns once it is on disk; nil
	// records nothing (a benchmark build without an audit trail).
	Record func(ctx context.Context, c audit.Call) error
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer receives keyless_broker_upstream_total and
	// keyless_broker_upstream_duration_seconds; nil keeps them
	// unregistered.
	Registerer prometheus.Registerer
}

// Broker exchanges allowed requests of broker roles at their upstream STS
// (it implements sts.Broker).
type Broker struct {
	o       Options
	client  *http.Client
	metrics *metrics
}

// ErrConfig reports options a Broker cannot run with.
var ErrConfig = errors.New("broker: invalid configuration")

// New checks the options and returns a Broker.
func New(o Options) (*Broker, error) {
	if o.Minter == nil || o.IssuerID == "" {
		return nil, fmt.Errorf("%w: no issuer to sign broker tokens", ErrConfig)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.TokenLifetime == 0 {
		o.TokenLifetime = DefaultTokenLifetime
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	if o.TokenLifetime < issuer.MinTokenLifetime || o.TokenLifetime > DefaultTokenLifetime || o.TokenLifetime%time.Second != 0 {
		return nil, fmt.Errorf("%w: token lifetime %s: want whole seconds from 1m to 5m", ErrConfig, o.TokenLifetime)
	}
	for _, e := range append([]string{o.Endpoint, o.EnvEndpoint}, o.AllowedEndpoints...) {
		if _, ok := iam.NormalizeSTSEndpoint(e); e != "" && !ok {
			return nil, fmt.Errorf("%w: STS endpoint %q: want an http(s) URL without path, query or user info", ErrConfig, e)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Broker{o: o, client: noRedirects(o.HTTPClient), metrics: m}, nil
}

// noRedirects returns a copy of c (or of a default client) that never
// follows a redirect: a 307 would re-send the token to another server.
func noRedirects(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = http.ProxyFromEnvironment
		// Keep the connections of concurrent calls for the next ones:
		// net/http keeps 2 idle per host by default, so under load most
		// calls would open a new connection (a TCP and TLS handshake with
		// AWS, a socket in TIME-WAIT). bench/broker.sh measures it.
		tr.MaxIdleConnsPerHost = tr.MaxIdleConns
		out.Transport = tr
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}

// Subject is the sub of the broker token for a keyless role: what the
// upstream role's trust policy pins (<issuer host/path>:sub).
func Subject(account, roleName string) string {
	return "keyless:" + account + ":role/" + roleName
}

// Exchange implements sts.Broker.
func (b *Broker) Exchange(ctx context.Context, req *sts.BrokerRequest) (*sts.BrokerResult, error) {
	endpoint, rerr := b.resolveEndpoint(req)
	if rerr != nil {
		b.metrics.count(rerr.Outcome)
		return nil, rerr
	}
	tok, merr := b.mint(ctx, req)
	if merr != nil {
		merr.Endpoint = endpoint
		b.metrics.count(merr.Outcome)
		return nil, merr
	}
	minted := &sts.MintedToken{Issuer: tok.Issuer, Subject: tok.Subject, JTI: tok.JTI, KeyID: tok.KeyID, SHA256: audit.SHA256Hex(tok.Raw), Expires: tok.ExpiresAt}
	if err := b.record(ctx, req, endpoint, minted); err != nil {
		b.metrics.count(outcomeNotRecorded)
		b.o.Logger.ErrorContext(ctx, "broker token withheld: its audit record failed", "request_id", req.RequestID, "err", err)
		return nil, &sts.BrokerError{
			Code: awsquery.CodeServiceUnavailable, Status: http.StatusServiceUnavailable, Outcome: outcomeNotRecorded,
			Message: "The request could not be recorded in the audit trail. Retry the request.",
			Reason:  "keyless could not record the token it minted for the upstream, so it did not send it", Endpoint: endpoint, Token: minted, Err: err,
		}
	}
	start := b.o.Now()
	res, berr := b.call(ctx, endpoint, req, tok.Raw)
	elapsed := b.o.Now().Sub(start)
	if berr != nil {
		berr.Endpoint, berr.Token = endpoint, minted
		b.fillReason(berr, req, minted)
		b.metrics.observe(berr.Outcome, elapsed)
		return nil, berr
	}
	b.metrics.observe(outcomeSuccess, elapsed)
	res.Endpoint, res.Token = endpoint, *minted
	return res, nil
}

// resolveEndpoint picks the upstream STS endpoint of req's role.
func (b *Broker) resolveEndpoint(req *sts.BrokerRequest) (string, *sts.BrokerError) {
	refuse := func(outcome, reason string) *sts.BrokerError {
		return &sts.BrokerError{Code: awsquery.CodeAccessDenied, Message: "Not authorized to perform sts:AssumeRoleWithWebIdentity", Outcome: outcome, Reason: reason}
	}
	if !iam.UpstreamRoleARNValid(req.UpstreamRoleARN) {
		return "", refuse(outcomeBadUpstream, "the role "+req.RoleARN+"'s tag "+iam.TagUpstreamRoleARN+" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>): fix the tag")
	}
	if req.UpstreamEndpoint != "" {
		n, ok := iam.NormalizeSTSEndpoint(req.UpstreamEndpoint)
		if !ok || !iam.STSEndpointAllowed(req.UpstreamEndpoint, b.o.AllowedEndpoints) {
			return "", refuse(outcomeEndpointRefused, "the role "+req.RoleARN+"'s tag "+iam.TagUpstreamSTSEndpoint+" names "+quote(req.UpstreamEndpoint)+
				", which is neither an AWS STS endpoint nor listed in the server's broker.allowed_sts_endpoints; keyless sends tokens that AWS accepts for the upstream role only to those, so nothing was sent")
		}
		return n, nil
	}
	for _, e := range []string{b.o.Endpoint, b.o.EnvEndpoint} {
		if n, ok := iam.NormalizeSTSEndpoint(e); ok {
			return n, nil
		}
	}
	return DefaultEndpoint(b.o.Region, b.o.FIPS), nil
}

// DefaultEndpoint is the regional STS endpoint of region (its FIPS
// variant when fips; China's regions have none).
func DefaultEndpoint(region string, fips bool) string {
	if strings.HasPrefix(region, "cn-") {
		return "https://sts." + region + ".amazonaws.com.cn"
	}
	if fips {
		return "https://sts-fips." + region + ".amazonaws.com"
	}
	return "https://sts." + region + ".amazonaws.com"
}

// FromEnv reads the AWS SDKs' standard endpoint settings for STS from the
// server's environment: AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, both
// ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true; and
// AWS_USE_FIPS_ENDPOINT. (The proxy settings, HTTPS_PROXY and NO_PROXY,
// are the HTTP client's.)
func FromEnv(getenv func(string) string) (endpoint string, fips bool) {
	isTrue := func(k string) bool { return strings.EqualFold(strings.TrimSpace(getenv(k)), "true") }
	fips = isTrue("AWS_USE_FIPS_ENDPOINT")
	if isTrue("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
		return "", fips
	}
	for _, k := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v, fips
		}
	}
	return "", fips
}

// DefaultUpstream is the endpoint of roles without an endpoint tag, and
// where it comes from (for the server's start-up log).
func (b *Broker) DefaultUpstream() (endpoint, from string) {
	if n, ok := iam.NormalizeSTSEndpoint(b.o.Endpoint); ok {
		return n, "broker.sts_endpoint"
	}
	if n, ok := iam.NormalizeSTSEndpoint(b.o.EnvEndpoint); ok {
		return n, "environment"
	}
	return DefaultEndpoint(b.o.Region, b.o.FIPS), "region"
}

// mint signs the broker token for req.
func (b *Broker) mint(ctx context.Context, req *sts.BrokerRequest) (*issuer.Token, *sts.BrokerError) {
	mr := issuer.InternalRequest{Subject: Subject(req.Account, req.RoleName), Audience: Audience, Lifetime: b.o.TokenLifetime}
	mr.Claims = b.claims(req, false)
	tok, err := b.o.Minter.MintInternal(ctx, b.o.IssuerID, mr)
	if err != nil && errors.Is(err, issuer.ErrTooLarge) {
		// The CI token's claims do not fit: carry its identity only.
		mr.Claims = b.claims(req, true)
		tok, err = b.o.Minter.MintInternal(ctx, b.o.IssuerID, mr)
	}
	if err != nil {
		return nil, &sts.BrokerError{
			Code: awsquery.CodeServiceUnavailable, Status: http.StatusServiceUnavailable, Outcome: outcomeMintFailed,
			Message: "keyless could not sign the token for the upstream STS. Retry the request.",
			Reason:  "keyless's issuer " + quote(b.o.IssuerID) + " could not sign the broker token: " + awsquery.AsError(err).Message, Err: err,
		}
	}
	return tok, nil
}

// identityClaims are the CI token claims kept when the others do not fit.
var identityClaims = []string{"iss", "sub", "aud", "jti"}

// claims are the broker token's claims besides the registered ones: the
// CI token's verified claims as ci_<name> (or only its identity when
// identityOnly), and the session tags and source identity it carried.
func (b *Broker) claims(req *sts.BrokerRequest, identityOnly bool) map[string]any {
	out := map[string]any{}
	if t := req.Token; t != nil {
		for k, v := range t.Claims {
			if identityOnly && !slices.Contains(identityClaims, k) {
				continue
			}
			if strings.HasPrefix(k, "https://aws.amazon.com/") || slices.Contains(b.o.OmitClaims, k) || !issuer.ValidClaimValue(v) {
				continue
			}
			out[ClaimPrefix+k] = v
		}
	}
	if len(req.Tags) > 0 {
		pt := make(map[string]any, len(req.Tags))
		for k, v := range req.Tags {
			pt[k] = []any{v}
		}
		tags := map[string]any{"principal_tags": pt}
		if len(req.TransitiveTagKeys) > 0 {
			keys := make([]any, len(req.TransitiveTagKeys))
			for i, k := range req.TransitiveTagKeys {
				keys[i] = k
			}
			tags["transitive_tag_keys"] = keys
		}
		out["https://aws.amazon.com/tags"] = tags
	}
	if req.SourceIdentity != "" {
		out["https://aws.amazon.com/source_identity"] = req.SourceIdentity
	}
	return out
}

// record writes the MintBrokerToken event, durably, before the token is
// sent.
func (b *Broker) record(ctx context.Context, req *sts.BrokerRequest, endpoint string, t *sts.MintedToken) error {
	if b.o.Record == nil {
		return nil
	}
	c := audit.Call{
		Time: b.o.Now().UTC(), Source: EventSource, Name: EventName, Region: req.Region,
		SourceIP: req.SourceIP, UserAgent: req.UserAgent, RequestID: req.RequestID, SharedEventID: req.SharedEventID,
		RequestParameters: map[string]any{
			"roleArn": req.RoleARN, "roleSessionName": req.SessionName,
			"upstreamRoleArn": req.UpstreamRoleARN, "upstreamEndpoint": endpoint,
		},
		ResponseElements: map[string]any{
			"issuer": t.Issuer, "subject": t.Subject, "audience": Audience, "kid": t.KeyID, "jti": t.JTI,
			"expiration": t.Expires.UTC().Format(time.RFC3339), "tokenSHA256": t.SHA256,
		},
		AdditionalEventData: map[string]any{audit.KeyTrustDecision: "Allow"},
		Resources: []audit.Resource{
			{ARN: req.RoleARN, AccountID: req.Account, Type: audit.ResourceTypeRole},
			{ARN: req.UpstreamRoleARN, AccountID: arnAccount(req.UpstreamRoleARN), Type: audit.ResourceTypeRole},
		},
	}
	if tok := req.Token; tok != nil {
		c.Identity = audit.WebIdentityUser(req.ProviderARN, tok.Audience, tok.Subject)
		c.AdditionalEventData[audit.KeyTokenSHA256] = tok.SHA256
		if tok.JTI != "" {
			c.AdditionalEventData[audit.KeyTokenJTI] = tok.JTI
		}
	}
	return b.o.Record(ctx, c)
}

func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return fmt.Sprintf("%q", s)
}
