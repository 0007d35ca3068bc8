package broker

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sts"
)

// maxResponseBytes bounds an upstream answer (AWS's are about 2 KB).
const maxResponseBytes = 256 << 10

// Outcomes of a brokered exchange: the label of
// keyless_broker_upstream_total and additionalEventData.broker.outcome.
const (
	outcomeSuccess         = "success"
	outcomeEndpointRefused = "endpoint_refused"  // the role's endpoint tag is not allowed
	outcomeBadUpstream     = "bad_upstream_role" // the role's upstream tag is not a role ARN
	outcomeMintFailed      = "mint_failed"       // the issuer could not sign
	outcomeNotRecorded     = "not_recorded"      // the MintBrokerToken event could not be written
	outcomeDenied          = "denied"            // upstream AccessDenied
	outcomeInvalidToken    = "invalid_token"     // upstream InvalidIdentityToken
	outcomeExpiredToken    = "expired_token"     // upstream ExpiredTokenException
	outcomeIDPError        = "idp_error"         // upstream IDPCommunicationError / IDPRejectedClaim
	outcomeThrottled       = "throttled"         // upstream Throttling
	outcomeRegionDisabled  = "region_disabled"   // upstream RegionDisabledException
	outcomeRejected        = "rejected"          // another upstream client error (bad policy, validation)
	outcomeUpstreamError   = "upstream_error"    // upstream 5xx, redirect or unreadable answer
	outcomeTimeout         = "timeout"           // no answer within the timeout
	outcomeUnreachable     = "unreachable"       // no connection
	outcomeCanceled        = "canceled"          // the client went away
)

// outcomes lists every outcome, for the metric's series.
var outcomes = []string{
	outcomeSuccess, outcomeEndpointRefused, outcomeBadUpstream, outcomeMintFailed, outcomeNotRecorded,
	outcomeDenied, outcomeInvalidToken, outcomeExpiredToken, outcomeIDPError, outcomeThrottled,
	outcomeRegionDisabled, outcomeRejected, outcomeUpstreamError, outcomeTimeout, outcomeUnreachable, outcomeCanceled,
}

// assumeResponse is AWS's AssumeRoleWithWebIdentityResponse.
type assumeResponse struct {
	XMLName xml.Name `xml:"AssumeRoleWithWebIdentityResponse"`
	Result  struct {
		SubjectFromWebIdentityToken string `xml:"SubjectFromWebIdentityToken"`
		Audience                    string `xml:"Audience"`
		AssumedRoleUser             struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
		Credentials struct {
			SessionToken    string `xml:"SessionToken"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			Expiration      string `xml:"Expiration"`
			AccessKeyID     string `xml:"AccessKeyId"`
		} `xml:"Credentials"`
		SourceIdentity   string `xml:"SourceIdentity"`
		PackedPolicySize string `xml:"PackedPolicySize"`
		Provider         string `xml:"Provider"`
	} `xml:"AssumeRoleWithWebIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

// errorResponse is the Query protocol's ErrorResponse.
type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// call sends AssumeRoleWithWebIdentity with the broker token to endpoint
// and reads the answer.
func (b *Broker) call(ctx context.Context, endpoint string, req *sts.BrokerRequest, token string) (*sts.BrokerResult, *sts.BrokerError) {
	form := url.Values{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn": {req.UpstreamRoleARN}, "RoleSessionName": {req.SessionName}, "WebIdentityToken": {token},
	}
	if req.DurationSeconds > 0 {
		form.Set("DurationSeconds", strconv.Itoa(req.DurationSeconds))
	}
	if req.Policy != "" {
		form.Set("Policy", req.Policy)
	}
	for i, a := range req.PolicyARNs {
		form.Set("PolicyArns.member."+strconv.Itoa(i+1)+".arn", a)
	}
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &sts.BrokerError{Code: awsquery.CodeIDPCommunicationError, Message: msgUnreachable, Outcome: outcomeUnreachable, Err: err}
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	hr.Header.Set("User-Agent", "keyless-broker")
	resp, err := b.client.Do(hr)
	if err != nil {
		return nil, transportError(ctx, err, b.o.Timeout.String())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, transportError(ctx, err, b.o.Timeout.String())
	}
	return parseAnswer(resp.StatusCode, resp.Header.Get("X-Amzn-Requestid"), body)
}

// parseAnswer reads the upstream's answer: credentials, or the error the
// client gets.
func parseAnswer(status int, requestIDHeader string, body []byte) (*sts.BrokerResult, *sts.BrokerError) {
	requestID := clean(requestIDHeader, 128)
	if len(body) > maxResponseBytes {
		return nil, upstreamFault(requestID, fmt.Errorf("answer larger than %d bytes", maxResponseBytes))
	}
	if status == http.StatusOK {
		var ok assumeResponse
		if err := xml.Unmarshal(body, &ok); err != nil {
			return nil, upstreamFault(requestID, fmt.Errorf("answer does not parse: %w", err))
		}
		r := ok.Result
		if r.Credentials.AccessKeyID == "" || r.Credentials.SecretAccessKey == "" || r.Credentials.SessionToken == "" || r.AssumedRoleUser.Arn == "" {
			return nil, upstreamFault(requestID, errors.New("answer without credentials"))
		}
		if requestID == "" {
			requestID = clean(ok.RequestID, 128)
		}
		out := &sts.BrokerResult{
			UpstreamRequestID: requestID, SubjectFromWebIdentityToken: r.SubjectFromWebIdentityToken, Audience: r.Audience, Provider: r.Provider,
			AssumedRoleARN: r.AssumedRoleUser.Arn, AssumedRoleID: r.AssumedRoleUser.AssumedRoleID,
			AccessKeyID: r.Credentials.AccessKeyID, SecretAccessKey: r.Credentials.SecretAccessKey, SessionToken: r.Credentials.SessionToken,
			Expiration: r.Credentials.Expiration, SourceIdentity: r.SourceIdentity,
		}
		if r.PackedPolicySize != "" {
			if n, err := strconv.Atoi(r.PackedPolicySize); err == nil {
				out.PackedPolicySize = &n
			}
		}
		return out, nil
	}
	var e errorResponse
	if xml.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return nil, upstreamFault(requestID, fmt.Errorf("HTTP %d without an AWS error", status))
	}
	if requestID == "" {
		requestID = clean(e.RequestID, 128)
	}
	return nil, mapUpstreamError(status, clean(e.Error.Code, 64), clean(e.Error.Message, 512), requestID)
}

const (
	msgUnreachable = "keyless could not reach the upstream STS. Retry the request."
	msgTimeout     = "The upstream STS did not answer in time. Retry the request."
	msgFault       = "The upstream STS failed to answer the request. Retry the request."
)

// transportError classifies a failed round trip: a timeout and a refused
// connection are retryable IDPCommunicationErrors, as AWS answers when it
// cannot reach an identity provider.
func transportError(ctx context.Context, err error, timeout string) *sts.BrokerError {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		return &sts.BrokerError{Code: awsquery.CodeIDPCommunicationError, Message: msgTimeout, Outcome: outcomeTimeout,
			Reason: "the upstream STS did not answer within " + timeout + " (broker.timeout)", Err: err}
	case errors.Is(ctx.Err(), context.Canceled):
		return &sts.BrokerError{Code: awsquery.CodeIDPCommunicationError, Message: msgUnreachable, Outcome: outcomeCanceled,
			Reason: "the client went away before the upstream STS answered", Err: err}
	}
	return &sts.BrokerError{Code: awsquery.CodeIDPCommunicationError, Message: msgUnreachable, Outcome: outcomeUnreachable,
		Reason: "keyless could not connect to the upstream STS (" + clean(err.Error(), 200) + ")", Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// upstreamFault is an answer keyless cannot use (5xx, redirect, garbage):
// retryable for the client.
func upstreamFault(requestID string, err error) *sts.BrokerError {
	return &sts.BrokerError{Code: awsquery.CodeIDPCommunicationError, Message: msgFault, Outcome: outcomeUpstreamError,
		UpstreamRequestID: requestID, Reason: "the upstream STS's answer was not usable: " + err.Error(), Err: err}
}

// mapUpstreamError turns the upstream's AWS error into the error the client
// gets: the AWS error it would expect from AWS itself, in AWS's words.
func mapUpstreamError(status int, code, message, requestID string) *sts.BrokerError {
	e := &sts.BrokerError{Code: code, Message: message, Status: status, UpstreamRequestID: requestID, UpstreamCode: code, UpstreamMessage: message,
		Err: fmt.Errorf("upstream answered HTTP %d %s", status, code)}
	if e.Message == "" {
		e.Message = "The upstream STS refused the request (" + code + ")."
	}
	switch code {
	case awsquery.CodeAccessDenied:
		e.Outcome, e.Status = outcomeDenied, http.StatusForbidden
	case awsquery.CodeInvalidIdentityToken:
		e.Outcome, e.Status = outcomeInvalidToken, http.StatusBadRequest
	case awsquery.CodeExpiredTokenException, awsquery.CodeExpiredToken:
		e.Code, e.Outcome, e.Status = awsquery.CodeExpiredTokenException, outcomeExpiredToken, http.StatusBadRequest
	case awsquery.CodeIDPCommunicationError:
		e.Outcome, e.Status = outcomeIDPError, http.StatusBadRequest
	case awsquery.CodeIDPRejectedClaim:
		e.Outcome, e.Status = outcomeIDPError, http.StatusForbidden
	case awsquery.CodeThrottling, "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException":
		e.Code, e.Outcome, e.Status = awsquery.CodeThrottling, outcomeThrottled, http.StatusBadRequest
		e.Message = strings.TrimSuffix(e.Message, ".") + ". The upstream STS is throttling: retry with exponential backoff and jitter (the AWS SDKs and CLI do)."
	case awsquery.CodeRegionDisabled:
		e.Outcome, e.Status = outcomeRegionDisabled, http.StatusForbidden
	default:
		if status >= 500 {
			return &sts.BrokerError{Code: awsquery.CodeIDPCommunicationError, Message: msgFault, Outcome: outcomeUpstreamError,
				UpstreamRequestID: requestID, UpstreamCode: code, UpstreamMessage: message, Err: e.Err}
		}
		e.Outcome = outcomeRejected
		if status < 400 {
			e.Status = http.StatusBadRequest
		}
	}
	return e
}

// fillReason writes keyless's explanation of an upstream refusal: what
// went wrong and what to do.
func (b *Broker) fillReason(e *sts.BrokerError, req *sts.BrokerRequest, t *sts.MintedToken) {
	if e.Reason != "" && e.UpstreamCode == "" {
		return
	}
	setup := "`keyless broker aws-setup --role " + req.RoleName + "`"
	said := ""
	if e.UpstreamCode != "" {
		said = " (the upstream STS answered " + e.UpstreamCode
		if e.UpstreamMessage != "" {
			said += ": " + e.UpstreamMessage
		}
		if e.UpstreamRequestID != "" {
			said += "; request id " + e.UpstreamRequestID
		}
		said += ")"
	}
	switch e.Outcome {
	case outcomeDenied:
		e.Reason = "the upstream role " + req.UpstreamRoleARN + " does not trust keyless's issuer " + t.Issuer + " for the subject " + t.Subject +
			" and audience " + Audience + said + ": register it with " + setup
	case outcomeInvalidToken:
		e.Reason = "the upstream account refused keyless's token" + said + ": it has no IAM OIDC provider for keyless's issuer " + t.Issuer +
			", or the provider lists another audience or thumbprint: register it with " + setup
	case outcomeExpiredToken:
		e.Reason = "the upstream STS found keyless's token expired" + said + ": the clocks of keyless and the upstream disagree; synchronise keyless's clock (NTP)"
	case outcomeIDPError:
		e.Reason = "the upstream STS could not fetch or accept keyless's issuer keys" + said + ": it must reach " + t.Issuer +
			"/.well-known/openid-configuration and the JWKS over HTTPS (host the output of `keyless issuer publish`, or serve keyless behind TLS)"
	case outcomeThrottled:
		e.Reason = "the upstream STS throttled the call" + said + ": retry with exponential backoff"
	case outcomeRegionDisabled:
		e.Reason = "STS is not activated in the upstream endpoint's region" + said +
			": activate the region in the upstream account, or point the role's " + "keyless:upstream-sts-endpoint tag or broker.sts_endpoint at an active region"
	case outcomeRejected:
		e.Reason = "the upstream STS refused the request" + said
	case outcomeUpstreamError:
		if e.Reason == "" {
			e.Reason = "the upstream STS failed" + said
		} else {
			e.Reason += said
		}
	}
}

// clean makes an upstream string safe to show and record: printable
// characters only, at most n bytes.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > n {
		s = s[:n]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.TrimSpace(s)
}
