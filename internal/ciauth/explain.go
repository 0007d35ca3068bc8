package ciauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Cause is what a failed exchange comes down to; each has its own hint.
type Cause string

// The causes ExchangeError tells apart.
const (
	CauseOther        Cause = ""
	CauseRoleMissing  Cause = "role-missing"  // no such role (NoSuchEntity, or a decoded AccessDenied that never reached a trust policy)
	CauseTrust        Cause = "trust"         // the trust policy did not accept the token (decoded: which condition)
	CauseDenied       Cause = "denied"        // AccessDenied that could not be decoded: missing role or trust mismatch
	CauseAudience     Cause = "audience"      // the token's aud is not a client ID of the provider
	CauseNoProvider   Cause = "no-provider"   // the token's issuer is not registered in the role's account
	CauseInvalidToken Cause = "invalid-token" // refused before the trust policy for another reason
	CauseExpired      Cause = "expired"
	CauseDuration     Cause = "duration" // DurationSeconds above the role's MaxSessionDuration
	CauseTransient    Cause = "transient"
	CauseUnreachable  Cause = "unreachable" // no answer: connection refused, unknown host, timeout
	CauseNotFound     Cause = "not-found"   // HTTP 404 without an AWS error: wrong URL or path
	CauseNotSTS       Cause = "not-sts"     // an answer that is not an AWS response
	CauseTLS          Cause = "tls"         // the server's certificate does not verify
	CausePlainHTTP    Cause = "plain-http"  // https:// to a server that speaks plain HTTP
)

// awsMessages are AWS STS's fixed error messages for causes that share an
// error code (aws-sts-iam.md §1.6; keyless answers with the same words).
// They are part of the protocol, like the codes, and the only signal when
// the encoded reason cannot be decoded.
var awsMessages = []struct {
	code, prefix string
	cause        Cause
}{
	{codeInvalidToken, "Incorrect token audience", CauseAudience},
	{codeInvalidToken, "Missing a required claim: aud", CauseAudience},
	{codeInvalidToken, "No OpenIDConnect provider found in your account for", CauseNoProvider},
	{"ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration", CauseDuration},
}

// Token-validation rules (keyless's decoded reason names them; trust-pitfalls
// §7.1) that have their own hint.
const (
	ruleIssuer   = "V12"
	ruleAudience = "V13"
)

// ExchangeError is a failed exchange, reduced to what the user needs: one
// reason, where it happened, and what to do.
type ExchangeError struct {
	Code       string // AWS error code; "" when no AWS answer was received
	Message    string // AWS error message without the encoded blob, or the transport failure
	StatusCode int
	RequestID  string
	Attempts   int
	Endpoint   string
	RoleARN    string
	Source     string  // where the token came from
	Claims     *Claims // the token's claims, unverified, when it is a JWT
	Duration   time.Duration
	// EncodedMessage is the "Encoded authorization failure message" blob.
	EncodedMessage string
	// Explanation is the one-line reason from the decoded authorization
	// message, when the caller's credentials could decode it.
	Explanation string
	// NotDecoded says why an encoded message was not decoded ("" when it
	// was, or when no decoding was attempted).
	NotDecoded string
	Cause      Cause
	Hint       string
	Err        error
}

func (e *ExchangeError) Error() string {
	var b strings.Builder
	b.WriteString(e.headline())
	answered := e.Code != ""
	if answered {
		fmt.Fprintf(&b, "\n  role:  %s", e.RoleARN)
		fmt.Fprintf(&b, "\n  token: from %s", e.Source)
		if e.Claims != nil {
			fmt.Fprintf(&b, "; unverified claims %s", e.Claims)
		}
	}
	fmt.Fprintf(&b, "\n  sts:   %s", e.Endpoint)
	var meta []string
	if e.StatusCode != 0 {
		meta = append(meta, fmt.Sprintf("HTTP %d", e.StatusCode))
	}
	if e.RequestID != "" {
		meta = append(meta, "request id "+e.RequestID)
	}
	meta = append(meta, plural(e.Attempts, "attempt"))
	fmt.Fprintf(&b, " (%s)", strings.Join(meta, ", "))
	if e.EncodedMessage != "" && e.Explanation == "" {
		fmt.Fprintf(&b, "\n  why:   %s", e.decodeAdvice())
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "\n  hint:  %s", e.Hint)
	}
	return b.String()
}

// headline is the one-line reason.
func (e *ExchangeError) headline() string {
	if e.Code != "" {
		reason := e.Message
		if e.Explanation != "" {
			reason = e.Explanation
		}
		return e.Code + ": " + reason
	}
	switch e.Cause {
	case CauseNotFound:
		return fmt.Sprintf("%s answered HTTP 404 Not Found: there is no STS API at this URL", e.Endpoint)
	case CauseNotSTS:
		return fmt.Sprintf("%s answered HTTP %d with something that is not an AWS STS response", e.Endpoint, e.StatusCode)
	case CauseTLS:
		return fmt.Sprintf("TLS with %s failed: %s", e.Endpoint, e.Message)
	case CausePlainHTTP:
		return fmt.Sprintf("%s does not speak TLS: %s", e.Endpoint, e.Message)
	case CauseUnreachable:
		return fmt.Sprintf("cannot reach STS at %s: %s", e.Endpoint, e.Message)
	}
	return "calling STS failed: " + e.Message
}

// decodeAdvice says how to read the encoded reason, naming the blob once.
func (e *ExchangeError) decodeAdvice() string {
	cmd := "aws sts decode-authorization-message --encoded-message " + e.EncodedMessage
	if e.recordedEndpoint() != "" {
		cmd += " --endpoint-url " + e.recordedEndpoint()
	}
	s := "the reason is encoded; credentials allowed sts:DecodeAuthorizationMessage (an administrator's) read it with: " + cmd
	if e.NotDecoded != "" {
		s += " (" + e.NotDecoded + ")"
	}
	return s
}

// recordedEndpoint is the endpoint to pass to AWS CLI commands ("" for
// AWS's own STS).
func (e *ExchangeError) recordedEndpoint() string {
	if u, err := url.Parse(e.Endpoint); err == nil && isAWSHost(u.Hostname()) {
		return ""
	}
	return e.Endpoint
}

func (e *ExchangeError) Unwrap() error { return e.Err }

// Retryable reports whether the failure was of a kind worth retrying (the
// attempts then ran out).
func (e *ExchangeError) Retryable() bool { return retryable(e.Err) }

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

var encodedMessageRE = regexp.MustCompile(`\.?\s*Encoded authorization failure message:\s*([A-Za-z0-9_\-+/=.~]+)`)

// EncodedAuthorizationMessage extracts the blob of an "Encoded
// authorization failure message: <blob>" error message, or "".
func EncodedAuthorizationMessage(msg string) string {
	if m := encodedMessageRE.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

// withoutEncodedMessage is msg without its encoded blob (and the full stop
// before it).
func withoutEncodedMessage(msg string) string {
	return strings.TrimSpace(encodedMessageRE.ReplaceAllString(msg, ""))
}

// decodedMessage is the part of a decoded authorization message that
// keyless adds to AWS's fields: its reason, rule and trust-policy trace.
type decodedMessage struct {
	Keyless *struct {
		Reason string          `json:"reason"`
		Rule   string          `json:"rule"`
		Trace  json.RawMessage `json:"trace"`
	} `json:"keyless"`
}

// oneLineReason reduces a decoded message to one line: keyless's reason,
// or AWS's JSON document compacted (and truncated).
func oneLineReason(text string) (reason string, d *decodedMessage) {
	d = &decodedMessage{}
	if err := json.Unmarshal([]byte(text), d); err != nil {
		line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
		return truncate(line, 300), nil
	}
	if d.Keyless != nil && d.Keyless.Reason != "" {
		return strings.Join(strings.Fields(d.Keyless.Reason), " "), d
	}
	// AWS's own decoded messages: the document itself, on one line.
	var compact bytes.Buffer
	if json.Compact(&compact, []byte(text)) != nil {
		return truncate(strings.Join(strings.Fields(text), " "), 400), d
	}
	return truncate(compact.String(), 400), d
}

func (x *Exchanger) explain(ctx context.Context, err error, tok string, src TokenSource, req ExchangeRequest, attempts int) error {
	e := &ExchangeError{
		Attempts: attempts,
		Endpoint: x.EndpointDescription(),
		RoleARN:  req.RoleARN,
		Source:   src.Describe(),
		Duration: req.Duration,
		Err:      err,
	}
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		e.Code, e.Message = ae.ErrorCode(), redact(ae.ErrorMessage(), tok)
	} else {
		e.Message = redact(transportReason(err), tok)
	}
	e.StatusCode = httpStatus(err)
	if re, ok := errors.AsType[*awshttp.ResponseError](err); ok {
		e.RequestID = re.ServiceRequestID()
	}
	if c, perr := ParseClaims(tok); perr == nil {
		e.Claims = &c
	}
	var decoded *decodedMessage
	if blob := EncodedAuthorizationMessage(e.Message); blob != "" {
		e.EncodedMessage = blob
		e.Message = withoutEncodedMessage(e.Message)
		if x.DecodeCredentials != nil {
			e.Explanation, decoded, e.NotDecoded = x.tryDecode(ctx, blob, tok)
		}
	}
	e.Cause = classify(e, decoded)
	e.Hint = e.hint(src)
	return e
}

// tryDecode decodes blob with the caller's credentials: the one-line
// reason, or why it could not.
func (x *Exchanger) tryDecode(ctx context.Context, blob, tok string) (reason string, d *decodedMessage, notDecoded string) {
	creds, err := x.DecodeCredentials.Retrieve(ctx)
	if errors.Is(err, ErrNoCredentials) {
		return "", nil, "there are no AWS credentials here to decode it"
	}
	if err != nil {
		return "", nil, "the AWS credentials here could not be loaded"
	}
	text, err := x.decode(ctx, creds, blob)
	if err != nil {
		if code := apiCode(err); code != "" {
			return "", nil, "the AWS credentials here may not decode it: " + code
		}
		return "", nil, "decoding failed: " + summarize(err, tok)
	}
	reason, d = oneLineReason(redact(text, tok))
	return reason, d, ""
}

// classify finds the cause: from the structure of the failure (code,
// decoded rule or trace, HTTP status, Go error types), else from AWS's
// fixed messages.
func classify(e *ExchangeError, d *decodedMessage) Cause {
	if e.Code == "" {
		if c := tlsCause(e.Err); c != "" {
			return c
		}
		switch {
		case e.StatusCode == http.StatusNotFound:
			return CauseNotFound
		case e.StatusCode != 0:
			return CauseNotSTS
		}
		if _, ok := errors.AsType[*smithyhttp.RequestSendError](e.Err); ok {
			return CauseUnreachable
		}
		return CauseOther
	}
	if d != nil && d.Keyless != nil {
		switch {
		case e.Code == codeAccessDenied && len(d.Keyless.Trace) > 0 && string(d.Keyless.Trace) != "null":
			return CauseTrust
		case e.Code == codeAccessDenied:
			// Refused before any trust policy was evaluated.
			return CauseRoleMissing
		case d.Keyless.Rule == ruleAudience:
			return CauseAudience
		case d.Keyless.Rule == ruleIssuer:
			return CauseNoProvider
		}
	}
	for _, m := range awsMessages {
		if e.Code == m.code && strings.HasPrefix(e.Message, m.prefix) {
			return m.cause
		}
	}
	switch e.Code {
	case "NoSuchEntity":
		return CauseRoleMissing
	case codeAccessDenied:
		return CauseDenied
	case codeInvalidToken:
		return CauseInvalidToken
	case codeExpiredToken:
		return CauseExpired
	case codeIDPCommunication, codeThrottling:
		return CauseTransient
	}
	return CauseOther
}

// tlsCause recognises TLS failures: a certificate that does not verify, or
// a plain-HTTP server behind an https:// URL.
func tlsCause(err error) Cause {
	if errors.Is(err, http.ErrSchemeMismatch) {
		return CausePlainHTTP
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return CausePlainHTTP
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return CauseTLS
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return CauseTLS
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return CauseTLS
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return CauseTLS
	}
	return ""
}

// transportReason is a short description of a failure without an AWS
// answer.
func transportReason(err error) string {
	if errors.Is(err, http.ErrSchemeMismatch) {
		return "it answered an https:// request with plain HTTP"
	}
	if ce, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return ce.Err.Error()
	}
	if de, ok := errors.AsType[*net.DNSError](err); ok {
		if de.IsNotFound {
			return "the host name " + de.Name + " does not resolve"
		}
		return "looking up " + de.Name + " failed: " + de.Err
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "connection refused (nothing listens there)"
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the connection was closed before an answer"
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return "no answer in time"
	}
	if re, ok := errors.AsType[*smithyhttp.ResponseError](err); ok {
		return fmt.Sprintf("HTTP %d: %v", re.HTTPStatusCode(), re.Err)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// hint is the usual fix for the cause.
func (e *ExchangeError) hint(src TokenSource) string {
	ep := ""
	if r := e.recordedEndpoint(); r != "" {
		ep = " --endpoint-url " + r
	}
	partition, account, roleName := splitRoleARN(e.RoleARN)
	switch e.Cause {
	case CauseRoleMissing:
		return fmt.Sprintf("check --role-arn: the role %s must exist in account %s of this STS with a trust policy that parses (aws iam get-role --role-name %s%s)", roleName, account, roleName, ep)
	case CauseTrust:
		return "the role's trust policy does not accept this token (the condition above): run the job from what the policy allows, or change the policy (aws iam update-assume-role-policy --role-name " + roleName + " --policy-document file://trust.json" + ep + ")"
	case CauseDenied:
		return "either the role does not exist, or its trust policy did not accept this token: compare its Principal.Federated (the OIDC provider for iss) and its sub/aud conditions with the claims above"
	case CauseAudience:
		aud, iss := "", ""
		if e.Claims != nil {
			aud, iss = strings.Join(e.Claims.Audience, ","), e.Claims.Issuer
		}
		if aud == "" || iss == "" {
			return "the token's aud is not a client ID of the OIDC provider for its iss: request the token for a registered client ID (--audience), or add the client ID to the provider"
		}
		provider := fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", partition, account, strings.TrimPrefix(strings.TrimPrefix(iss, "https://"), "http://"))
		return fmt.Sprintf("the token's aud %q is not a client ID of the OIDC provider %s: request the token for one of its client IDs (--audience for GitHub Actions and Buildkite), or add it: aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn %s --client-id %s%s",
			aud, provider, provider, aud, ep)
	case CauseNoProvider:
		if e.Claims != nil && e.Claims.Issuer != "" {
			return fmt.Sprintf("register the token's issuer in account %s: aws iam create-open-id-connect-provider --url %s --client-id-list %s%s",
				account, e.Claims.Issuer, strings.Join(e.Claims.Audience, ","), ep)
		}
		return "register the token's issuer as an OIDC provider in the role's account (aws iam create-open-id-connect-provider)"
	case CauseInvalidToken:
		return "the token was refused before the trust policy: check that the role's account has an OIDC provider for the token's iss whose client IDs include its aud"
	case CauseExpired:
		if !src.Refreshable() {
			return "the token from " + src.Describe() + " cannot be refreshed; run the exchange earlier in the job (CircleCI tokens last one hour), or use a source that re-requests tokens"
		}
		return "the CI system issued an expired token; check the clocks of the CI runner and of the STS server"
	case CauseDuration:
		secs := int64(e.Duration / time.Second)
		if secs == 0 {
			return "ask for a shorter session (--duration), or raise the role's MaxSessionDuration (aws iam update-role --role-name " + roleName + " --max-session-duration SECONDS" + ep + ")"
		}
		return fmt.Sprintf("--duration %d is more than the role's MaxSessionDuration (3600 unless raised): ask for less, or raise it: aws iam update-role --role-name %s --max-session-duration %d%s", secs, roleName, secs, ep)
	case CauseTransient:
		return "a transient failure persisted over all attempts; retry the job"
	case CauseUnreachable:
		return "check the endpoint (--endpoint-url, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL), that the server is running, and that this runner can reach it"
	case CauseNotFound:
		return "the URL is wrong: give the STS endpoint itself (for keyless, the server's base URL, scheme://host:port, with no path)"
	case CauseNotSTS:
		h := "the URL does not lead to an STS endpoint: check --endpoint-url (for keyless, the server's base URL)"
		if strings.HasPrefix(e.Endpoint, "http://") && e.StatusCode == http.StatusBadRequest {
			h += "; if the server serves HTTPS, use https://"
		}
		return h
	case CauseTLS:
		return "use an https URL whose host the server's certificate names, and make this machine trust the certificate's CA (AWS_CA_BUNDLE, or the system's CA store)"
	case CausePlainHTTP:
		return "the server does not serve TLS: use http:// (or enable TLS on the server)"
	}
	return ""
}

// splitRoleARN returns the partition, account and role name (without its
// path) of arn:PARTITION:iam::ACCOUNT:role/PATH/NAME; placeholders for
// parts it cannot find.
func splitRoleARN(arn string) (partition, account, name string) {
	partition, account, name = "aws", "ACCOUNT", "NAME"
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return
	}
	if parts[1] != "" {
		partition = parts[1]
	}
	if parts[4] != "" {
		account = parts[4]
	}
	if res, ok := strings.CutPrefix(parts[5], "role/"); ok && res != "" {
		name = res[strings.LastIndexByte(res, '/')+1:]
	}
	return
}
