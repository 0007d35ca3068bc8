package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode"
)

const (
	// maxNumericDate is 9999-12-31T23:59:59Z; anything later is not a date
	// a token can mean, and keeps arithmetic far from int64 overflow.
	maxNumericDate = 253402300799
	// maxSubjectBytes caps sub (V14). AWS's SubjectFromWebIdentityToken is
	// modelled at 6–255 characters, but GitHub subjects with environment
	// names can be longer, so the cap is looser than the model.
	maxSubjectBytes = 1024
)

// numericDate reads an integer NumericDate claim (V09, V18). AWS: "Timestamps
// in the token must be formatted as either an integer or a long integer";
// strings, fractions, exponents and negative or absurd values are refused.
func numericDate(payload map[string]any, name string) (int64, bool, *Error) {
	v, ok := payload[name]
	if !ok {
		return 0, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, true, invalidf("V18", ErrClaim, "%q is %s, not an integer NumericDate", name, describe(v))
	}
	s := string(n)
	if !isDigits(s) || (len(s) > 1 && s[0] == '0') {
		return 0, true, invalidf("V18", ErrClaim, "%q is %s, not a non-negative integer NumericDate", name, truncate(s, 32))
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil || i > maxNumericDate {
		return 0, true, invalidf("V18", ErrClaim, "%q value %s is out of range", name, truncate(s, 32))
	}
	return i, true, nil
}

// checkClaims applies the time, audience and subject rules (V09–V11,
// V13, V14, V18) to an authenticated payload and builds the Token.
func (v *Validator) checkClaims(payload map[string]any, p *Provider, now time.Time) (*Token, *Error) {
	nowS := now.Unix()
	leeway := int64(v.opts.Leeway / time.Second)

	exp, hasExp, err := numericDate(payload, "exp")
	if err != nil {
		return nil, err
	}
	iat, hasIat, err := numericDate(payload, "iat")
	if err != nil {
		return nil, err
	}
	nbf, hasNbf, err := numericDate(payload, "nbf")
	if err != nil {
		return nil, err
	}
	if !hasExp {
		return nil, invalidf("V09", ErrClaim, "token has no \"exp\" claim")
	}
	if !hasIat {
		return nil, invalidf("V10", ErrClaim, "token has no \"iat\" claim (AWS requires it)")
	}
	if nowS > exp+leeway {
		msg := fmt.Sprintf("Token expired: current date/time %d must be before the expiration date/time %d", nowS, exp)
		return nil, &Error{Code: CodeExpiredToken, Message: msg, Rule: "V09",
			Reason: fmt.Sprintf("exp %d is %d s in the past (leeway %d s)", exp, nowS-exp, leeway), Err: ErrExpired}
	}
	if hasNbf && nbf > nowS+leeway {
		return nil, invalidf("V10", ErrNotYetValid, "nbf %d is %d s in the future (leeway %d s)", nbf, nbf-nowS, leeway)
	}
	if iat > nowS+leeway {
		return nil, invalidf("V10", ErrNotYetValid, "iat %d is %d s in the future (leeway %d s)", iat, iat-nowS, leeway)
	}
	if exp <= iat {
		return nil, invalidf("V09", ErrClaim, "exp %d is not after iat %d: the token has no lifetime", exp, iat)
	}
	if v.opts.MaxTokenAge > 0 {
		if age := nowS - iat; age > int64(v.opts.MaxTokenAge/time.Second) {
			return nil, &Error{Code: CodeExpiredToken, Message: fmt.Sprintf("Token too old: %d", age), Rule: "V11",
				Reason: fmt.Sprintf("token was issued %d s ago; the maximum age is %d s", age, int64(v.opts.MaxTokenAge/time.Second)),
				Err:    ErrTooOld}
		}
	}
	if err := v.checkLifetime(p, iat, exp); err != nil {
		return nil, err
	}

	tok := &Token{Claims: payload, Issuer: p.URL, Provider: p,
		IssuedAt: time.Unix(iat, 0).UTC(), Expiry: time.Unix(exp, 0).UTC()}
	if hasNbf {
		tok.NotBefore = time.Unix(nbf, 0).UTC()
	}

	// Audience (V13).
	audV, ok := payload["aud"]
	if !ok {
		return nil, &Error{Code: CodeInvalidIdentityToken, Message: msgMissingAud, Rule: "V13",
			Reason: "token has no \"aud\" claim", Err: ErrAudience}
	}
	switch a := audV.(type) {
	case string:
		tok.OriginalAudience = []string{a}
	case []any:
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, invalidf("V18", ErrClaim, "\"aud\" array holds %s, not only strings", describe(e))
			}
			tok.OriginalAudience = append(tok.OriginalAudience, s)
		}
		if len(tok.OriginalAudience) == 0 {
			return nil, &Error{Code: CodeInvalidIdentityToken, Message: msgMissingAud, Rule: "V13",
				Reason: "\"aud\" is an empty array", Err: ErrAudience}
		}
	default:
		return nil, invalidf("V18", ErrClaim, "\"aud\" is %s, not a string or an array of strings", describe(audV))
	}
	if azpV, ok := payload["azp"]; ok {
		azp, ok := azpV.(string)
		if !ok {
			return nil, invalidf("V18", ErrClaim, "\"azp\" is %s, not a string", describe(azpV))
		}
		// OIDC Core 3.1.3.7 and AWS's observed behaviour (aws-sts-iam.md
		// §2.3): when azp is present it is the party the token was issued
		// to, and it is what must be a registered client ID.
		if !slices.Contains(p.ClientIDs, azp) {
			return nil, &Error{Code: CodeInvalidIdentityToken, Message: msgIncorrectAud, Rule: "V13",
				Reason: fmt.Sprintf("azp %q is not a client ID of the provider", truncate(azp, 128)), Err: ErrAudience}
		}
		tok.AuthorizedParty, tok.Audience = azp, azp
	} else {
		for _, a := range tok.OriginalAudience {
			if slices.Contains(p.ClientIDs, a) {
				tok.Audience = a
				break
			}
		}
		if tok.Audience == "" {
			return nil, &Error{Code: CodeInvalidIdentityToken, Message: msgIncorrectAud, Rule: "V13",
				Reason: fmt.Sprintf("no aud value (%d given) is a client ID of the provider", len(tok.OriginalAudience)), Err: ErrAudience}
		}
	}

	// Subject (V14).
	subV, ok := payload["sub"]
	if !ok {
		return nil, invalidf("V14", ErrClaim, "token has no \"sub\" claim")
	}
	sub, ok := subV.(string)
	switch {
	case !ok:
		return nil, invalidf("V14", ErrClaim, "\"sub\" is %s, not a string", describe(subV))
	case sub == "":
		return nil, invalidf("V14", ErrClaim, "\"sub\" is empty")
	case len(sub) > maxSubjectBytes:
		return nil, invalidf("V14", ErrClaim, "\"sub\" is %d bytes; at most %d are accepted", len(sub), maxSubjectBytes)
	case hasControl(sub):
		return nil, invalidf("V14", ErrClaim, "\"sub\" contains control characters")
	}
	tok.Subject = sub

	if jtiV, ok := payload["jti"]; ok {
		jti, ok := jtiV.(string)
		if !ok {
			return nil, invalidf("V18", ErrClaim, "\"jti\" is %s, not a string", describe(jtiV))
		}
		tok.JTI = jti
	}
	if rv, ok := payload[rolesClaim]; ok {
		roles, ok := stringOrStrings(rv)
		if !ok || len(roles) == 0 {
			return nil, invalidf("V18", ErrClaim, "%q is not a role ARN or a non-empty array of them", rolesClaim)
		}
		tok.Roles = roles
	}
	return tok, nil
}

func stringOrStrings(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// hasControl reports control characters, including the Unicode line and
// paragraph separators that split log lines.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return true
		}
	}
	return false
}

func (v *Validator) checkReplay(ctx context.Context, tok *Token) *Error {
	if tok.JTI == "" {
		return invalidf("V19", ErrReplay, "single-use tokens are enforced and the token has no \"jti\"")
	}
	fresh, err := v.opts.ReplayCache.Use(ctx, tok.Issuer+"\x00"+tok.JTI, tok.Expiry.Add(v.opts.Leeway))
	if err != nil {
		return &Error{Code: CodeInvalidIdentityToken, Message: msgInvalid, Rule: "V19",
			Reason: "replay cache unavailable: " + err.Error(), Err: fmt.Errorf("%w: %w", ErrReplay, err)}
	}
	if !fresh {
		return invalidf("V19", ErrReplay, "jti %q of this issuer was already used", truncate(tok.JTI, 64))
	}
	return nil
}
