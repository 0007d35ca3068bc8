package oidc

import (
	"errors"
	"fmt"
	"strings"
)

// AWS error codes a validation failure maps to (trust-pitfalls §7.4). All
// are sent with HTTP 400. The sts package converts *Error into its
// awsquery.Error; this package does not import awsquery.
const (
	CodeInvalidIdentityToken  = "InvalidIdentityToken"
	CodeExpiredToken          = "ExpiredTokenException"
	CodeIDPCommunicationError = "IDPCommunicationError"
	CodeValidationError       = "ValidationError"
)

// Caller-facing messages. Where AWS's wording is known (aws-sts-iam.md §1.6)
// it is reproduced exactly, including the double space in msgNoKey.
const (
	msgInvalid       = "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request."
	msgNoKey         = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements"
	msgThumbprint    = "OpenIDConnect provider's HTTPS certificate doesn't match configured thumbprint"
	msgIncorrectAud  = "Incorrect token audience"
	msgMissingAud    = "Missing a required claim: aud"
	msgRoleNotInList = "The target role ARN is not present in the roles claim of the identity token"
	msgTooLong       = "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length less than or equal to 20000"
	msgTooShort      = "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length greater than or equal to 4"
	msgNoProvider    = "No OpenIDConnect provider found in your account for "
)

// Categories of failure, reachable with errors.Is from an *Error.
var (
	ErrTokenLength   = errors.New("token length out of range")
	ErrMalformed     = errors.New("malformed token")
	ErrHeader        = errors.New("forbidden or invalid JOSE header")
	ErrAlgorithm     = errors.New("signature algorithm not allowed")
	ErrUnknownIssuer = errors.New("issuer is not a registered provider")
	ErrKeyNotFound   = errors.New("no verification key for the token")
	ErrKeyMismatch   = errors.New("verification key does not fit the algorithm")
	ErrSignature     = errors.New("signature verification failed")
	ErrClaim         = errors.New("invalid claim")
	ErrExpired       = errors.New("token expired")
	ErrTooOld        = errors.New("token too old")
	ErrNotYetValid   = errors.New("token not yet valid")
	ErrLifetime      = errors.New("token lifetime too long")
	ErrAudience      = errors.New("audience not accepted")
	ErrReplay        = errors.New("token already used")
	ErrRoleNotBound  = errors.New("role not in the token's roles claim")

	// ErrFetch wraps every failure to obtain discovery or JWKS documents;
	// the more specific causes below are wrapped with it.
	ErrFetch              = errors.New("fetching provider keys failed")
	ErrDestinationRefused = errors.New("destination refused by policy")
	ErrRedirectRefused    = errors.New("redirect refused")
	ErrResponseTooLarge   = errors.New("response too large")
	ErrHTTPStatus         = errors.New("unexpected HTTP status")
	ErrDiscovery          = errors.New("invalid discovery document")
	ErrJWKS               = errors.New("invalid JWK set")
	ErrThumbprintMismatch = errors.New("TLS certificate not trusted and no thumbprint matches")
	ErrFetchTimeout       = errors.New("fetch timed out")
)

// Error is a validation failure. Code and Message are what the STS sends to
// the caller (AWS's code and, where known, AWS's wording). Reason is the
// precise explanation for logs and the administrator's decoded explanation;
// it never contains the token, a signature or key material, only short,
// truncated header and claim values. Rule names the validator rule of
// trust-pitfalls §7.1 (V01–V20) that rejected the token.
type Error struct {
	Code    string
	Message string
	Reason  string
	Rule    string
	Err     error
}

// Error returns the code, rule and Reason; the wrapped Err is reachable
// with errors.Is and errors.As.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oidc: ")
	b.WriteString(e.Code)
	if e.Rule != "" {
		b.WriteString(" (")
		b.WriteString(e.Rule)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches on code, as awsquery.Error does:
// errors.Is(err, &oidc.Error{Code: oidc.CodeExpiredToken}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Reason == "" && t.Rule == "" && t.Err == nil
}

func invalidf(rule string, sentinel error, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidIdentityToken, Message: msgInvalid, Rule: rule, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

func malformed(rule, reason string) *Error {
	return &Error{Code: CodeInvalidIdentityToken, Message: msgInvalid, Rule: rule, Reason: reason, Err: ErrMalformed}
}

// malformedErr reports a decoding failure; reason should end with the
// cause's text, which Error() does not repeat.
func malformedErr(rule, reason string, cause error) *Error {
	return &Error{Code: CodeInvalidIdentityToken, Message: msgInvalid, Rule: rule, Reason: reason,
		Err: fmt.Errorf("%w: %w", ErrMalformed, cause)}
}

func headerErr(rule, reason string) *Error {
	return &Error{Code: CodeInvalidIdentityToken, Message: msgInvalid, Rule: rule, Reason: reason, Err: ErrHeader}
}

func algErr(reason string) *Error {
	return &Error{Code: CodeInvalidIdentityToken, Message: msgInvalid, Rule: "V01", Reason: reason, Err: ErrAlgorithm}
}
