package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
)

// BrokerSubjectPrefix starts the subject of every token keyless mints for
// itself in broker mode (keyless:<account>:role/<name>): AWS roles trust
// exactly such a subject, so the token endpoint refuses to mint one for a
// client (Mint), and only [Service.MintInternal] issues them.
const BrokerSubjectPrefix = "keyless:"

func hasBrokerSubjectPrefix(sub string) bool {
	return len(sub) >= len(BrokerSubjectPrefix) && strings.EqualFold(sub[:len(BrokerSubjectPrefix)], BrokerSubjectPrefix)
}

// InternalRequest is a token keyless mints for its own use (broker mode),
// in-process: outside the issuer's claim profile, whose subject and claim
// rules are for CI jobs.
type InternalRequest struct {
	Subject  string
	Audience string
	// Lifetime: whole seconds from MinTokenLifetime to the issuer's
	// maximum.
	Lifetime time.Duration
	// Claims are further claims; none may be a registered claim (iss, sub,
	// aud, exp, iat, nbf, jti, azp) in any case, and every value must pass
	// [ValidClaimValue].
	Claims map[string]any
}

// ValidClaimValue reports whether v may be a claim value of a minted
// token: a JSON value (no null, at most 8 levels deep) whose strings hold
// no control or bidirectional characters.
func ValidClaimValue(v any) bool {
	return checkValue(v, 0) == nil && checkStrings("", v) == nil
}

// MintInternal signs a token for issuerID with iss, sub, aud, iat, exp and
// a unique jti, whatever the issuer's profile. Errors are *awsquery.Error
// like Mint's.
func (s *Service) MintInternal(ctx context.Context, issuerID string, req InternalRequest) (*Token, error) {
	is, ok := s.issuers[issuerID]
	if !ok {
		return nil, noSuchIssuer(issuerID)
	}
	now := s.now()
	k, err := s.signingKey(is, now)
	if err != nil {
		return nil, err
	}
	if !validIdentifier(req.Subject) || checkText("The subject", req.Subject) != nil {
		return nil, invalid(ErrClaimValue, "The subject must be 1 to %d bytes of UTF-8 without control characters.", maxIdentifier)
	}
	if !validIdentifier(req.Audience) || checkText("The audience", req.Audience) != nil {
		return nil, invalid(ErrClaimValue, "The audience must be 1 to %d bytes of UTF-8 without control characters.", maxIdentifier)
	}
	lifetime := req.Lifetime
	if lifetime%time.Second != 0 || lifetime < MinTokenLifetime || lifetime > is.cfg.MaxTokenLifetime {
		return nil, invalid(ErrLifetime, "The lifetime must be a whole number of seconds from %d to %d; got %s.",
			int64(MinTokenLifetime/time.Second), int64(is.cfg.MaxTokenLifetime/time.Second), lifetime)
	}
	claims := make(map[string]any, len(req.Claims)+6)
	for name, v := range req.Claims {
		for reserved := range registered {
			if strings.EqualFold(name, reserved) {
				return nil, invalid(ErrReservedClaim, "Claim %q is reserved.", truncate(name, 64))
			}
		}
		if name == "" || checkText("A claim name", name) != nil || !ValidClaimValue(v) {
			return nil, invalid(ErrClaimValue, "Claim %q cannot be minted.", truncate(name, 64))
		}
		claims[name] = v
	}
	jti, err := awsquery.NewRequestID(s.rand)
	if err != nil {
		return nil, awsquery.Internal("", fmt.Errorf("issuer: jti: %w", err))
	}
	iat := now.Unix()
	exp := iat + int64(lifetime/time.Second)
	claims["iss"], claims["sub"], claims["aud"] = is.cfg.URL, req.Subject, req.Audience
	claims["iat"], claims["exp"], claims["jti"] = iat, exp, jti
	payload, err := json.Marshal(claims)
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
		Raw: raw, Issuer: is.cfg.URL, Subject: req.Subject, Audience: req.Audience, Profile: "internal",
		KeyID: k.kid, JTI: jti, IssuedAt: time.Unix(iat, 0).UTC(), ExpiresAt: time.Unix(exp, 0).UTC(),
	}, nil
}

// URL is the issuer URL (the iss claim) of issuerID.
func (s *Service) URL(issuerID string) (string, bool) {
	is, ok := s.issuers[issuerID]
	if !ok {
		return "", false
	}
	return is.cfg.URL, true
}
