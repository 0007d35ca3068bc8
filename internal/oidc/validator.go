package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Provider is an IAM OIDC identity provider as registered (URL, client-ID
// list and thumbprints), plus optional keyless-only tightening.
type Provider struct {
	// URL is the issuer exactly as tokens carry it in "iss", including a
	// trailing slash if the issuer uses one. No normalisation (V12).
	URL string
	// ClientIDs are the accepted audiences ("ClientIDList").
	ClientIDs []string
	// Thumbprints are hex SHA-1 fingerprints of the top intermediate CA
	// of the provider's hosts, used only when the trust store cannot verify
	// the certificate (aws-sts-iam.md §2.2). Case-insensitive.
	Thumbprints []string

	// Algorithms, if set, narrows the accepted signature algorithms for
	// this issuer (V01); values outside the AWS set are ignored.
	Algorithms []string
	// MaxTokenLifetime, if positive, rejects tokens whose exp − iat is
	// longer (V11), e.g. 1 h for GitHub. Overrides Options.MaxTokenLifetime,
	// up or down.
	MaxTokenLifetime time.Duration
	// MaxTokenLifetimeNote, if set, returns what is appended to the
	// reason of a lifetime refusal: where the maximum that applied comes
	// from and how to change it. The caller that builds the Provider knows
	// (the STS: a provider tag or the server setting). A function, so the
	// text is built only for a refusal.
	MaxTokenLifetimeNote func() string
}

// Options configures a Validator. The zero value of each field gives the
// documented default.
type Options struct {
	Now        func() time.Time      // default time.Now
	Rand       io.Reader             // jitter of key TTLs; default crypto/rand
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // nil: metrics are kept but not registered

	// Leeway is the clock skew allowed on exp, nbf and iat. 0 means the
	// default of 60 s; a negative value means none; more than 5 minutes is
	// refused (V09). 60 s is what the token test cases assume and go-jose's
	// default: CI tokens live 5 minutes (GitHub) to 1 hour, so AWS's
	// recalled 5-minute allowance would double a GitHub token's life.
	Leeway time.Duration
	// MaxTokenAge rejects tokens whose now − iat exceeds it with
	// ExpiredTokenException "Token too old" (V11). 0 means AWS's observed
	// ~1 day (24 h); negative disables the check.
	MaxTokenAge time.Duration
	// MaxTokenLifetime rejects tokens whose exp − iat exceeds it with
	// InvalidIdentityToken (V11): a long-lived token is a long-lived
	// credential if it leaks. 0 means the default of 24 h; negative
	// disables the check (AWS has none). Provider.MaxTokenLifetime
	// overrides it per issuer.
	MaxTokenLifetime time.Duration
	// RequireKID rejects tokens without a kid (strict mode of V04).
	RequireKID bool
	// ReplayCache, when set, makes each (iss, jti) single-use until the
	// token expires (V19). nil accepts replays, as AWS does.
	ReplayCache ReplayCache

	// AllowLoopbackHTTP allows issuers and JWKS on loopback addresses
	// (127.0.0.0/8, ::1, localhost), over http or https
	// (--allow-loopback-http-issuers).
	AllowLoopbackHTTP bool
	// AllowPrivateNetworks allows RFC 1918, ULA and CGNAT destinations, for
	// on-prem issuers. Off by default: AWS only reaches public addresses.
	AllowPrivateNetworks bool
	// UnknownKIDRefreshInterval is the minimum time between two refreshes
	// of one issuer's keys triggered by unknown kids or by failures
	// (default 30 s, go-oidc PR #482).
	UnknownKIDRefreshInterval time.Duration
	// FetchTimeout bounds one refresh, discovery and JWKS together
	// (default 5 s, AWS's documented limit).
	FetchTimeout time.Duration
	// MaxStale is how long past their TTL cached keys are still used
	// while the issuer cannot be reached (default 24 h; negative: forever).
	MaxStale time.Duration

	// RootCAs replaces the system trust store; ExtraRootCAs are added to
	// whichever store is used.
	RootCAs      *x509.CertPool
	ExtraRootCAs []*x509.Certificate
	// Resolver and DialContext are used by the guarded dialler (defaults:
	// net.DefaultResolver and a net.Dialer); DialContext only ever
	// receives addresses that passed the destination policy.
	Resolver    Resolver
	DialContext DialFunc
	// Transport, when set, replaces the whole network stack (dialler,
	// destination policy at dial time, TLS and thumbprint checks). It is a
	// hook for in-process tests; URL scheme checks, redirects and size caps
	// still apply.
	Transport http.RoundTripper
}

const (
	defaultLeeway         = 60 * time.Second
	maxLeeway             = 5 * time.Minute
	defaultMaxTokenAge    = 24 * time.Hour
	defaultRefreshBackoff = 30 * time.Second
	defaultFetchTimeout   = 5 * time.Second
	defaultMaxStale       = 24 * time.Hour
)

// Validator validates web identity tokens against registered providers. It
// is safe for concurrent use; one Validator (and so one key cache) should
// serve the whole process.
type Validator struct {
	opts     Options
	now      func() time.Time
	log      *slog.Logger
	policy   destinationPolicy
	roots    *x509.CertPool
	resolver Resolver
	dial     DialFunc
	metrics  *metrics

	mu     sync.Mutex
	caches map[string]*keyCache
}

// NewValidator checks opts, fills in defaults and registers the metrics.
func NewValidator(opts Options) (*Validator, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.Leeway == 0:
		opts.Leeway = defaultLeeway
	case opts.Leeway < 0:
		opts.Leeway = 0
	case opts.Leeway > maxLeeway:
		return nil, fmt.Errorf("oidc: leeway %s exceeds the maximum of %s", opts.Leeway, maxLeeway)
	}
	if opts.MaxTokenAge == 0 {
		opts.MaxTokenAge = defaultMaxTokenAge
	}
	if opts.MaxTokenLifetime == 0 {
		opts.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if opts.UnknownKIDRefreshInterval == 0 {
		opts.UnknownKIDRefreshInterval = defaultRefreshBackoff
	}
	if opts.FetchTimeout == 0 {
		opts.FetchTimeout = defaultFetchTimeout
	}
	if opts.UnknownKIDRefreshInterval < 0 || opts.FetchTimeout < 0 {
		return nil, errors.New("oidc: negative refresh interval or fetch timeout")
	}
	if opts.MaxStale == 0 {
		opts.MaxStale = defaultMaxStale
	}
	v := &Validator{
		opts:     opts,
		now:      opts.Now,
		log:      opts.Logger,
		policy:   destinationPolicy{allowLoopback: opts.AllowLoopbackHTTP, allowPrivate: opts.AllowPrivateNetworks},
		resolver: opts.Resolver,
		dial:     opts.DialContext,
		caches:   make(map[string]*keyCache),
	}
	if v.resolver == nil {
		v.resolver = net.DefaultResolver
	}
	if v.dial == nil {
		d := &net.Dialer{}
		v.dial = d.DialContext
	}
	v.roots = opts.RootCAs
	if len(opts.ExtraRootCAs) > 0 {
		if v.roots == nil {
			sys, err := x509.SystemCertPool()
			if err != nil {
				sys = x509.NewCertPool()
			}
			v.roots = sys
		} else {
			v.roots = v.roots.Clone()
		}
		for _, c := range opts.ExtraRootCAs {
			v.roots.AddCert(c)
		}
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	v.metrics = m
	return v, nil
}

// Token is a validated web identity token. It never holds the raw token.
type Token struct {
	Header Header
	// Claims is the payload, decoded once, strictly (numbers as
	// json.Number). The same map feeds policy evaluation and the audit log.
	Claims map[string]any

	Issuer  string
	Subject string
	// Audience is the effective audience: azp when present, otherwise the
	// first aud value that is a registered client ID. It feeds the :aud
	// condition key and the response's Audience.
	Audience string
	// OriginalAudience is aud as sent (the :oaud key).
	OriginalAudience []string
	AuthorizedParty  string
	IssuedAt         time.Time
	Expiry           time.Time
	NotBefore        time.Time // zero when absent
	JTI              string
	// Roles is the https://aws.amazon.com/roles claim; nil when absent.
	Roles []string
	// SHA256 is the hex SHA-256 of the token as validated (after
	// [TrimToken]), for the audit trail.
	SHA256 string
	// VerificationMethod says how the connection that fetched the key was
	// verified: VerifiedByTrustStore, VerifiedByThumbprint or
	// VerifiedPlainHTTP.
	VerificationMethod string
	Provider           *Provider
}

// rolesClaim binds a token to specific roles (aws-sts-iam.md §2.8).
const rolesClaim = "https://aws.amazon.com/roles"

// AuthorizeRole applies the roles claim: when the token carries
// https://aws.amazon.com/roles, roleARN must be one of its values exactly.
// It reports whether the IdP named the role (sts:RoleAuthorizedByIdp).
func (t *Token) AuthorizeRole(roleARN string) (bool, error) {
	if t.Roles == nil {
		return false, nil
	}
	if slices.Contains(t.Roles, roleARN) {
		return true, nil
	}
	return false, &Error{Code: CodeInvalidIdentityToken, Message: msgRoleNotInList, Rule: "roles-claim",
		Reason: "the requested role is not in the token's " + rolesClaim + " claim", Err: ErrRoleNotBound}
}

// Validate checks rawToken in the order of trust-pitfalls §7.1: length,
// structure, strict decoding, header rules, exact issuer lookup, key
// resolution, signature, then time, audience and subject claims, then
// replay. lookup maps an iss value to its registered provider by exact
// string equality; it is called once, with the still unverified iss, and an
// issuer it does not know is never contacted (a provider whose URL is not
// exactly iss counts as unknown). Every failure is an *Error.
//
// Surrounding ASCII whitespace (space, tab, CR, LF) is removed first, as AWS
// STS accepts a token read from a file that ends in a newline; see
// [TrimToken]. Everything after that, the SHA256 recorded for the audit
// trail included, is of the token as validated: the trimmed one.
func (v *Validator) Validate(ctx context.Context, rawToken string, lookup func(iss string) (*Provider, bool)) (*Token, error) {
	tok, err := v.validate(ctx, TrimToken(rawToken), lookup)
	if err != nil {
		v.metrics.validations.WithLabelValues(err.Code).Inc()
		return nil, err
	}
	v.metrics.validations.WithLabelValues("ok").Inc()
	return tok, nil
}

func (v *Validator) validate(ctx context.Context, raw string, lookup func(iss string) (*Provider, bool)) (*Token, *Error) {
	if err := checkLength(raw); err != nil {
		return nil, err
	}
	pj, err := parseCompact(raw)
	if err != nil {
		return nil, err
	}
	issV, ok := pj.payload["iss"]
	if !ok {
		return nil, invalidf("V12", ErrUnknownIssuer, "token has no \"iss\" claim")
	}
	iss, ok := issV.(string)
	if !ok {
		return nil, invalidf("V18", ErrClaim, "\"iss\" is not a string")
	}
	p, ok := lookup(iss)
	if !ok || p == nil || p.URL != iss {
		return nil, unknownIssuer(iss)
	}
	if len(p.Algorithms) > 0 && !slices.Contains(p.Algorithms, pj.header.Alg) {
		return nil, algErr(fmt.Sprintf("algorithm %s is not allowed for this issuer", pj.header.Alg))
	}
	if v.opts.RequireKID && !pj.header.HasKID {
		return nil, headerErr("V04", "token has no kid and kid is required")
	}
	c := v.cacheFor(p)
	keys, method, err := v.resolveKeys(ctx, c, pj.header)
	if err != nil {
		return nil, err
	}
	if err := verifyWithAny(keys, pj); err != nil {
		return nil, err
	}
	// From here on the payload is authentic; claim and time errors may be
	// reported (V20).
	tok, err := v.checkClaims(pj.payload, p, v.now())
	if err != nil {
		return nil, err
	}
	tok.Header = pj.header
	tok.VerificationMethod = method
	sum := sha256.Sum256([]byte(raw))
	tok.SHA256 = hex.EncodeToString(sum[:])
	if v.opts.ReplayCache != nil {
		if err := v.checkReplay(ctx, tok); err != nil {
			return nil, err
		}
	}
	return tok, nil
}

// verifyWithAny verifies the signature with the first key that accepts it.
func verifyWithAny(keys []*jwk, pj *parsedJWS) *Error {
	alg := pj.header.Alg
	fitting := keys[:0:0]
	for _, k := range keys {
		if k.fits(alg) && (k.alg == "" || k.alg == alg) {
			fitting = append(fitting, k)
		}
	}
	if len(fitting) == 0 {
		k := keys[0]
		rule, reason := "V02", fmt.Sprintf("key %q is %s and cannot verify %s", truncate(k.kid, 64), k.describeType(), alg)
		if k.alg != "" && k.fits(alg) {
			rule, reason = "V17", fmt.Sprintf("key %q is declared for %s, the token says %s", truncate(k.kid, 64), k.alg, alg)
		}
		return &Error{Code: CodeInvalidIdentityToken, Message: msgInvalid, Rule: rule, Reason: reason, Err: ErrKeyMismatch}
	}
	if !pj.header.HasKID && len(fitting) > maxKIDLessCandidates {
		return invalidf("V04", ErrKeyNotFound, "token has no kid and the issuer has %d %s keys; at most %d are tried", len(fitting), alg, maxKIDLessCandidates)
	}
	var last error
	for _, k := range fitting {
		if last = verifySignature(k, alg, pj.signingInput, pj.signature); last == nil {
			return nil
		}
	}
	return &Error{Code: CodeInvalidIdentityToken, Message: msgInvalid, Rule: "V02",
		Reason: "signature does not verify", Err: last}
}

func unknownIssuer(iss string) *Error {
	// AWS echoes the issuer; it is attacker-supplied, so only a short,
	// printable one is echoed.
	msg := msgNoProvider + iss
	if len(iss) > 256 || hasControl(iss) {
		msg = msgInvalid
	}
	return &Error{Code: CodeInvalidIdentityToken, Message: msg, Rule: "V12",
		Reason: fmt.Sprintf("issuer %q is not a registered provider", truncate(iss, 128)), Err: ErrUnknownIssuer}
}
