package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
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
	k, err := s.signingKey(is, now)
	if err != nil {
		return nil, err
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

// signingKey is the key that signs for is at now, from a fresh view of
// the store.
func (s *Service) signingKey(is *issuer, now time.Time) (*key, error) {
	v := is.view.Load()
	if !v.fresh(now, s.timing) {
		return nil, unavailable(fmt.Errorf("%w: issuer %s", ErrStale, is.cfg.ID), "The issuer's signing keys could not be refreshed recently; retry later.")
	}
	k := v.active(now)
	if k == nil || k.signer == nil {
		return nil, unavailable(fmt.Errorf("%w: issuer %s", ErrNoSigningKey, is.cfg.ID), "The issuer has no usable signing key; retry later.")
	}
	return k, nil
}

// prepare validates req and builds the profile's claims (without the
// registered time and id claims).
func (s *Service) prepare(is *issuer, req MintRequest) (*minting, time.Duration, error) {
	// An issuer mints its own profile's tokens only: a verifier trusting a
	// circleci issuer relies on circleci-shaped tokens (the org claim, the
	// subject layout), so a request may name the profile but not change it.
	prof := is.prof
	if req.Profile != "" {
		if _, ok := profiles[req.Profile]; !ok {
			return nil, 0, invalid(ErrUnknownProfile, "Unknown profile %q; the profiles are %s.", truncate(req.Profile, 32), profileNames())
		}
		if req.Profile != prof.name {
			return nil, 0, invalid(ErrProfileSwitch, "Issuer %q mints %s tokens only; the request asks for profile %s. Omit profile, or ask an issuer configured with profile %s.",
				is.cfg.ID, prof.name, req.Profile, req.Profile)
		}
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
	folded := make(map[string]string, len(req.Claims))
	for name, v := range req.Claims {
		if name == "" || len(name) > maxClaimName || !utf8.ValidString(name) {
			return nil, 0, invalid(ErrClaimValue, "Claim names must be 1 to %d bytes of UTF-8.", maxClaimName)
		}
		if err := checkClaimName(prof, name); err != nil {
			return nil, 0, err
		}
		// Two claims whose names differ only in case are one claim to a
		// verifier that folds case: refuse the pair rather than guess.
		f := strings.ToLower(name)
		if other, dup := folded[f]; dup {
			a, b := min(name, other), max(name, other)
			return nil, 0, invalid(ErrClaimValue, "Claims %q and %q differ only in case; give one.", truncate(a, 64), truncate(b, 64))
		}
		folded[f] = name
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
	if hasBrokerSubjectPrefix(m.subject) {
		return nil, 0, invalid(ErrReservedClaim, "Subjects starting with %q are reserved for the tokens keyless mints itself in broker mode (AWS roles trust them); choose another subject.", BrokerSubjectPrefix)
	}
	if !validIdentifier(m.audience) {
		return nil, 0, invalid(ErrClaimValue, "The audience must be 1 to %d bytes of UTF-8.", maxIdentifier)
	}
	// One check over everything the token will carry (the request's
	// values after coercion, which decodes JSON-array strings, and what
	// the profile derived from them): no string anywhere holds a control
	// character.
	if err := checkText("The subject", m.subject); err != nil {
		return nil, 0, err
	}
	if err := checkText("The audience", m.audience); err != nil {
		return nil, 0, err
	}
	for name, v := range m.claims {
		if err := checkText("A claim name", name); err != nil {
			return nil, 0, err
		}
		if err := checkStrings("Claim "+truncate(name, 64), v); err != nil {
			return nil, 0, err
		}
	}
	return m, lifetime, nil
}

// checkClaimName refuses a request claim the issuer sets itself: a
// registered claim, or, in any case, the name of a claim the profile sets
// or types (a verifier that matched names case-insensitively would read
// "ISS" as iss, or "OIDC.circleci.com/org-id" as the org the issuer
// vouches for).
func checkClaimName(prof *profile, name string) error {
	for reserved, why := range registered {
		if strings.EqualFold(name, reserved) {
			if name == reserved {
				return invalid(ErrReservedClaim, "Claim %s is reserved: %s.", name, why)
			}
			return invalid(ErrReservedClaim, "Claim %q is reserved: it is %s in another case (%s).", truncate(name, 64), reserved, why)
		}
	}
	for known := range prof.known {
		if name != known && strings.EqualFold(name, known) {
			return invalid(ErrReservedClaim, "Claim %q differs only in case from the %s profile's claim %s; use that name.", truncate(name, 64), prof.name, known)
		}
	}
	return nil
}

// checkStrings applies checkText to every string in a claim value, object
// keys included, at any depth (checkValue has bounded the depth).
func checkStrings(what string, v any) error {
	switch x := v.(type) {
	case string:
		return checkText(what, x)
	case []string:
		for _, e := range x {
			if err := checkText(what, e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := checkStrings(what, e); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range x {
			if err := checkText(what+" (an object key)", k); err != nil {
				return err
			}
			if err := checkStrings(what, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkText refuses control characters (C0 including NUL, DEL, C1), line
// and paragraph separators, and the bidirectional overrides and isolates
// that make text display as something other than its bytes: in a sub or
// any claim a trust policy matches, they let two different values look
// alike in logs, consoles and reviews, and NUL truncates the value for
// C-based verifiers.
func checkText(what, s string) error {
	for _, r := range s {
		if confusingRune(r) {
			return invalid(ErrClaimValue, "%s holds the character U+%04X; control characters, NUL and bidirectional controls are not accepted.", what, r)
		}
	}
	return nil
}

func confusingRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0 (NUL included), DEL, C1
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi marks, embeddings, overrides, isolates
		return true
	}
	return false
}

func validIdentifier(s string) bool {
	return s != "" && len(s) <= maxIdentifier && utf8.ValidString(s)
}
