package issuer

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/keylessci/keyless/internal/awsquery"
)

// Causes carried in the Err field of the *awsquery.Error values this
// package returns, for callers that branch with errors.Is.
var (
	ErrUnknownIssuer  = errors.New("issuer: unknown issuer")
	ErrUnknownProfile = errors.New("issuer: unknown claim profile")
	ErrProfileSwitch  = errors.New("issuer: request names another claim profile than the issuer's")
	ErrReservedClaim  = errors.New("issuer: reserved claim")
	ErrDerivedClaim   = errors.New("issuer: claim conflicts with the value the profile derives")
	ErrUnknownClaim   = errors.New("issuer: claim not part of the profile")
	ErrClaimValue     = errors.New("issuer: invalid claim value")
	ErrMissing        = errors.New("issuer: required value missing")
	ErrLifetime       = errors.New("issuer: token lifetime out of range")
	ErrTooLarge       = errors.New("issuer: request or token too large")
	ErrBadRequest     = errors.New("issuer: malformed request")
	ErrScope          = errors.New("issuer: caller may not mint for this issuer")
	ErrNoSigningKey   = errors.New("issuer: no signing key is active")
	ErrStale          = errors.New("issuer: key view is stale")
	ErrConfig         = errors.New("issuer: invalid configuration")
)

// Codes of the errors this package answers. They are AWS's codes where AWS
// has one with the same meaning.
const (
	codeInvalidParameterValue = awsquery.CodeInvalidParameterValue
	codeMissingParameter      = awsquery.CodeMissingParameter
	codeValidationError       = awsquery.CodeValidationError
)

// invalid is a 400 InvalidParameterValue whose cause is sentinel.
func invalid(sentinel error, format string, args ...any) *awsquery.Error {
	msg := fmt.Sprintf(format, args...)
	return &awsquery.Error{Code: codeInvalidParameterValue, Message: msg, Err: fmt.Errorf("%w: %s", sentinel, msg)}
}

func missing(format string, args ...any) *awsquery.Error {
	msg := fmt.Sprintf(format, args...)
	return &awsquery.Error{Code: codeMissingParameter, Message: msg, Err: fmt.Errorf("%w: %s", ErrMissing, msg)}
}

func malformed(format string, args ...any) *awsquery.Error {
	msg := fmt.Sprintf(format, args...)
	return &awsquery.Error{Code: codeValidationError, Message: msg, Err: fmt.Errorf("%w: %s", ErrBadRequest, msg)}
}

func tooLarge(format string, args ...any) *awsquery.Error {
	msg := fmt.Sprintf(format, args...)
	return &awsquery.Error{Code: awsquery.CodeRequestEntityTooLarge, Message: msg, Err: fmt.Errorf("%w: %s", ErrTooLarge, msg)}
}

func unavailable(cause error, msg string) *awsquery.Error {
	return &awsquery.Error{Code: awsquery.CodeServiceUnavailable, Message: msg, Status: http.StatusServiceUnavailable, Err: cause}
}

func noSuchIssuer(id string) *awsquery.Error {
	msg := fmt.Sprintf("No issuer named %q is configured on this server.", truncate(id, 64))
	return &awsquery.Error{Code: awsquery.CodeNoSuchEntity, Message: msg, Err: fmt.Errorf("%w: %q", ErrUnknownIssuer, truncate(id, 64))}
}

func accessDenied(cause error, msg string) *awsquery.Error {
	return &awsquery.Error{Code: awsquery.CodeAccessDenied, Message: msg, Err: cause}
}

// truncate bounds how much of a caller-supplied string is echoed back.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
