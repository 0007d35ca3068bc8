package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/keylessci/keyless/internal/awsquery"
)

// maxIdentifier bounds sub and aud: OIDC caps sub at 255 ASCII characters,
// and AWS caps client ids (audiences) at 255.
const maxIdentifier = 255

// Token is a minted ID token. Raw is a credential: never log it.
type Token struct {
	Raw       string
	Issuer    string
	Subject   string
	Audience  string
	Profile   string
	KeyID     string
	JTI       string // "" for profiles without jti (circleci)
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// String describes the token without its secret part, so a stray %v does
// not leak it.
func (t *Token) String() string {
	return fmt.Sprintf("Token(iss=%s sub=%s aud=%s kid=%s exp=%s)", t.Issuer, t.Subject, t.Audience, t.KeyID, t.ExpiresAt.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the token.
func (t *Token) GoString() string { return t.String() }

// LogValue keeps the raw token out of structured logs.
func (t *Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("iss", t.Issuer), slog.String("sub", t.Subject), slog.String("aud", t.Audience),
		slog.String("kid", t.KeyID), slog.String("jti", t.JTI), slog.Time("exp", t.ExpiresAt))
}

// Mint signs a token for issuerID. Errors are *awsquery.Error: 400 for a bad
// request (errors.Is one of ErrUnknownProfile, ErrReservedClaim,
// ErrDerivedClaim, ErrUnknownClaim, ErrClaimValue, ErrMissing, ErrLifetime,
// ErrTooLarge), 404 for an unknown issuer, 503 when no key can sign.
func (s *Service) Mint(ctx context.Context, issuerID string, req MintRequest) (*Token, error) {
	is, ok := s.issuers[issuerID]
	if !ok {
		return nil, noSuchIssuer(issuerID)
	}
	now := s.now()
	v := is.view.Load()
	if !v.fresh(now, s.timing) {
		return nil, unavailable(fmt.Errorf("%w: issuer %s", ErrStale, is.cfg.ID), "The issuer's signing keys could not be refreshed recently; retry later.")
	}
	k := v.active(now)
	if k == nil || k.signer == nil {
		return nil, unavailable(fmt.Errorf("%w: issuer %s", ErrNoSigningKey, is.cfg.ID), "The issuer has no usable signing key; retry later.")
	}
	m, lifetime, err := s.prepare(is, req)
	if err != nil {
		return nil, err
	}
	iat := now.Unix()
	exp := iat + int64(lifetime/time.Second)
	m.claims["iss"] = is.cfg.URL
	m.claims["sub"] = m.subject
	m.claims["aud"] = m.audience
	m.claims["iat"] = iat
	m.claims["exp"] = exp
	if m.prof.hasNBF {
		m.claims["nbf"] = iat - int64(m.prof.notBefore/time.Second)
	}
	var jti string
	if m.prof.hasJTI {
		if jti, err = awsquery.NewRequestID(s.rand); err != nil {
			return nil, awsquery.Internal("", fmt.Errorf("issuer: jti: %w", err))
		}
		m.claims["jti"] = jti
	}
	payload, err := json.Marshal(m.claims)
	if err != nil {
		return nil, invalid(ErrClaimValue, "The claims cannot be encoded as JSON.")
	}
	if n := len(k.signer.header) + base64.RawURLEncoding.EncodedLen(len(payload)) + 1 + k.signer.sigLen(); n > MaxTokenChars {
		return nil, invalid(ErrTooLarge, "The token would be %d characters; AWS accepts at most %d.", n, MaxTokenChars)
	}
	raw, err := k.signer.sign(payload)
	if err != nil {
		return nil, awsquery.Internal("", err)
	}
	return &Token{
		Raw: raw, Issuer: is.cfg.URL, Subject: m.subject, Audience: m.audience, Profile: m.prof.name,
		KeyID: k.kid, JTI: jti, IssuedAt: time.Unix(iat, 0).UTC(), ExpiresAt: time.Unix(exp, 0).UTC(),
	}, nil
}

// prepare validates req and builds the profile's claims (without the
// registered time and id claims).
func (s *Service) prepare(is *issuer, req MintRequest) (*minting, time.Duration, error) {
	prof := is.prof
	if req.Profile != "" {
		p, ok := profiles[req.Profile]
		if !ok {
			return nil, 0, invalid(ErrUnknownProfile, "Unknown profile %q; the profiles are %s.", truncate(req.Profile, 32), profileNames())
		}
		prof = p
	}
	lifetime := req.Lifetime
	if lifetime == 0 {
		lifetime = is.cfg.TokenLifetime
	}
	if lifetime%time.Second != 0 || lifetime < MinTokenLifetime || lifetime > is.cfg.MaxTokenLifetime {
		return nil, 0, invalid(ErrLifetime, "The lifetime must be a whole number of seconds from %d to %d (this issuer's maximum); got %s.",
			int64(MinTokenLifetime/time.Second), int64(is.cfg.MaxTokenLifetime/time.Second), lifetime)
	}
	if len(req.Claims) > maxClaims {
		return nil, 0, tooLarge("A request may carry at most %d claims.", maxClaims)
	}
	m := &minting{iss: is, prof: prof, subject: req.Subject, audience: req.Audience, claims: make(map[string]any, len(req.Claims)+12)}
	for name, v := range req.Claims {
		if name == "" || len(name) > maxClaimName || !utf8.ValidString(name) {
			return nil, 0, invalid(ErrClaimValue, "Claim names must be 1 to %d bytes of UTF-8.", maxClaimName)
		}
		if why, ok := registered[name]; ok {
			return nil, 0, invalid(ErrReservedClaim, "Claim %s is reserved: %s.", name, why)
		}
		kind, ok := prof.kindOf(name)
		if !ok {
			return nil, 0, invalid(ErrUnknownClaim, "Claim %q is not a %s claim; namespaced names (containing '/' or ':') are accepted, or use the generic profile for free-form claims.", truncate(name, 64), prof.name)
		}
		if err := checkValue(v, 0); err != nil {
			return nil, 0, invalid(ErrClaimValue, "Claim %s: %v.", truncate(name, 64), err)
		}
		cv, err := coerce(name, kind, v)
		if err != nil {
			return nil, 0, err
		}
		m.claims[name] = cv
	}
	if err := prof.derive(m); err != nil {
		return nil, 0, err
	}
	if !validIdentifier(m.subject) {
		return nil, 0, invalid(ErrClaimValue, "The subject must be 1 to %d bytes of UTF-8.", maxIdentifier)
	}
	if !validIdentifier(m.audience) {
		return nil, 0, invalid(ErrClaimValue, "The audience must be 1 to %d bytes of UTF-8.", maxIdentifier)
	}
	return m, lifetime, nil
}

func validIdentifier(s string) bool {
	return s != "" && len(s) <= maxIdentifier && utf8.ValidString(s)
}
