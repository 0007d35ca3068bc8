package sigv4

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
)

// Causes carried in awsquery.Error.Err, for callers that branch on what went
// wrong rather than on the AWS code.
var (
	// ErrNoAuth: the request carries neither an Authorization header nor an
	// X-Amz-Algorithm query parameter. The server may let such a request
	// through for actions AWS serves unsigned (AssumeRoleWithWebIdentity).
	ErrNoAuth = errors.New("sigv4: request carries no authentication")
	// ErrClockSkew: the request time is outside the accepted window.
	ErrClockSkew = errors.New("sigv4: request time outside the accepted window")
	// ErrMismatch: the signature does not match the one computed here.
	ErrMismatch = errors.New("sigv4: signature mismatch")
)

// AWS's texts. Messages that AWS builds from several findings end each
// finding with ". ", as the STS front end does.
const (
	msgMissingToken = "Request is missing Authentication Token"
	msgMismatch     = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgHostNotSigned  = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgBothAuth       = "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
	msgInvalidToken   = "The security token included in the request is invalid."
	msgExpiredToken   = "The security token included in the request is expired"
	msgBadRegion      = "Credential should be scoped to a valid region. "
	msgReexamineQuery = "Re-examine the query-string parameters."
)

// maxEcho bounds how much of a client-supplied value is echoed back in a
// message, so a huge header cannot inflate error responses and logs.
const maxEcho = 256

func echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return s[:maxEcho] + "..."
}

func incomplete(msg string) *awsquery.Error {
	return &awsquery.Error{Code: awsquery.CodeIncompleteSignature, Message: msg}
}

func mismatch(msg string, cause error) *awsquery.Error {
	return &awsquery.Error{Code: awsquery.CodeSignatureDoesNotMatch, Message: msg, Err: cause}
}

func missingAuth(cause error) *awsquery.Error {
	return &awsquery.Error{Code: awsquery.CodeMissingAuthenticationToken, Message: msgMissingToken, Err: cause}
}

// InvalidClientTokenID is the error for an access key id the caller does not
// know, or a session token that is invalid or does not belong to the key. The
// cause is logged, never sent.
func InvalidClientTokenID(cause error) *awsquery.Error {
	return &awsquery.Error{Code: awsquery.CodeInvalidClientTokenID, Message: msgInvalidToken, Err: cause}
}

// ExpiredToken is the error for session credentials past their expiration.
func ExpiredToken(cause error) *awsquery.Error {
	return &awsquery.Error{Code: awsquery.CodeExpiredToken, Message: msgExpiredToken, Err: cause}
}

// wrongService is AWS's message naming the service the credential should
// have been scoped to.
func wrongService(services []string) string {
	return "Credential should be scoped to correct service: '" + strings.Join(services, "' or '") + "'. "
}

// skewMinutes renders a window the way AWS does ("15 min.").
func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min.", d/time.Minute)
	}
	return fmt.Sprintf("%g sec.", d.Seconds())
}

func expired(reqTime, now time.Time, window time.Duration) *awsquery.Error {
	return mismatch(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s)",
		reqTime.Format(amzDateLayout), now.Add(-window).Format(amzDateLayout),
		now.Format(amzDateLayout), skewText(window)), ErrClockSkew)
}

func notYetCurrent(reqTime, now time.Time, window time.Duration) *awsquery.Error {
	return mismatch(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s)",
		reqTime.Format(amzDateLayout), now.Add(window).Format(amzDateLayout),
		now.Format(amzDateLayout), skewText(window)), ErrClockSkew)
}
