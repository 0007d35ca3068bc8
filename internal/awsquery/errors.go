// Package awsquery owns the AWS Query wire protocol that STS and IAM speak:
// decoding form bodies and query strings (including member.N lists and
// Tags.member.N maps), encoding XML responses in AWS's namespaces, the
// ErrorResponse envelope, and the single AWS error type every handler returns.
//
// It knows nothing about HTTP routing, storage or authentication; the server
// package wires it to those.
package awsquery

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is the one error type handlers return. Code and Message go to the
// client in the ErrorResponse envelope; Err is the internal cause, which is
// logged but never sent.
type Error struct {
	Code    string // AWS error code, e.g. "NoSuchEntity"
	Message string // safe for the caller to read
	Status  int    // HTTP status; 0 means "derive from Code"
	Err     error  // internal cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status the error is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return StatusForCode(e.Code)
}

// Type is "Sender" for client faults and "Receiver" for server faults, as
// in AWS's envelope.
func (e *Error) Type() string {
	if e.HTTPStatus() >= 500 {
		return "Receiver"
	}
	return "Sender"
}

// Is lets errors.Is match on code: errors.Is(err, &Error{Code: "NoSuchEntity"}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Err == nil
}

// NewError returns an error with the given code and message and the status
// AWS uses for that code.
func NewError(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Errorf formats the message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches an internal cause that is logged but not sent.
func (e *Error) Wrap(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// Internal turns an unexpected error into a ServiceFailure/InternalFailure
// whose client message reveals nothing of the cause.
func Internal(code string, err error) *Error {
	if code == "" {
		code = CodeInternalFailure
	}
	return &Error{Code: code, Message: "An internal error occurred. Retry the request; if it keeps failing, check the server log for the request id.", Err: err}
}

// AsError returns err as an *Error. Errors that are not *Error become an
// InternalFailure, so a handler can never leak a raw error to the client.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return Internal(CodeInternalFailure, err)
}

// Error codes used across STS and IAM. Values are AWS's exact codes.
const (
	// Common to all Query services.
	CodeAccessDenied               = "AccessDenied"
	CodeIncompleteSignature        = "IncompleteSignature"
	CodeInternalFailure            = "InternalFailure"
	CodeInvalidAction              = "InvalidAction"
	CodeInvalidClientTokenID       = "InvalidClientTokenId"
	CodeInvalidParameterCombo      = "InvalidParameterCombination"
	CodeInvalidParameterValue      = "InvalidParameterValue"
	CodeInvalidQueryParameter      = "InvalidQueryParameter"
	CodeMalformedQueryString       = "MalformedQueryString"
	CodeMissingAction              = "MissingAction"
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	CodeMissingParameter           = "MissingParameter"
	CodeRequestExpired             = "RequestExpired"
	CodeServiceUnavailable         = "ServiceUnavailable"
	CodeSignatureDoesNotMatch      = "SignatureDoesNotMatch"
	CodeThrottling                 = "Throttling"
	CodeValidationError            = "ValidationError"
	CodeExpiredToken               = "ExpiredToken"
	CodeRequestEntityTooLarge      = "RequestEntityTooLarge"
	CodeInvalidHTTPRequest         = "InvalidHttpRequest"

	// IAM.
	CodeConcurrentModification      = "ConcurrentModification"
	CodeDeleteConflict              = "DeleteConflict"
	CodeEntityAlreadyExists         = "EntityAlreadyExists"
	CodeEntityTemporarilyUnmod      = "EntityTemporarilyUnmodifiable"
	CodeInvalidInput                = "InvalidInput"
	CodeLimitExceeded               = "LimitExceeded"
	CodeMalformedPolicyDocument     = "MalformedPolicyDocument"
	CodeNoSuchEntity                = "NoSuchEntity"
	CodeOpenIDIdpCommunicationError = "OpenIdIdpCommunicationError"
	CodePolicyEvaluation            = "PolicyEvaluation"
	CodePolicyNotAttachable         = "PolicyNotAttachable"
	CodeServiceFailure              = "ServiceFailure"
	CodeUnmodifiableEntity          = "UnmodifiableEntity"

	// STS.
	CodeExpiredTokenException       = "ExpiredTokenException"
	CodeIDPCommunicationError       = "IDPCommunicationError"
	CodeIDPRejectedClaim            = "IDPRejectedClaim"
	CodeInvalidAuthorizationMessage = "InvalidAuthorizationMessageException"
	CodeInvalidIdentityToken        = "InvalidIdentityToken"
	CodePackedPolicyTooLarge        = "PackedPolicyTooLarge"
	CodeRegionDisabled              = "RegionDisabledException"
)

// StatusForCode is the HTTP status AWS sends with code (from the service
// models' httpStatusCode and the Query services' common errors).
func StatusForCode(code string) int {
	switch code {
	case CodeAccessDenied, CodeInvalidClientTokenID, CodeMissingAuthenticationToken,
		CodeSignatureDoesNotMatch, CodeExpiredToken, CodeIDPRejectedClaim, CodeRegionDisabled:
		return http.StatusForbidden
	case CodeNoSuchEntity, CodeMalformedQueryString:
		return http.StatusNotFound
	case CodeConcurrentModification, CodeDeleteConflict, CodeEntityAlreadyExists,
		CodeEntityTemporarilyUnmod, CodeLimitExceeded:
		return http.StatusConflict
	case CodeRequestEntityTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeInternalFailure, CodeServiceFailure, CodePolicyEvaluation:
		return http.StatusInternalServerError
	case CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}
