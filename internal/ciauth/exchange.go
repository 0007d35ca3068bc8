package ciauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Credentials are temporary AWS credentials. fmt and slog print them with
// the secret parts redacted; only the output writers see them in clear.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// Format redacts the secret key and session token for every fmt verb.
func (c Credentials) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{AccessKeyID:%s SecretAccessKey:[redacted] SessionToken:[redacted] Expiration:%s}",
		c.AccessKeyID, c.Expiration.UTC().Format(time.RFC3339))
}

// LogValue keeps secrets out of slog output.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", c.AccessKeyID), slog.Time("expiration", c.Expiration))
}

// Result is a successful AssumeRoleWithWebIdentity.
type Result struct {
	Credentials                 Credentials
	AssumedRoleARN              string
	AssumedRoleID               string
	SubjectFromWebIdentityToken string
	Audience                    string
	Provider                    string
	SourceIdentity              string
}

// AccountID is the account of the assumed role ("" if the ARN is odd).
func (r *Result) AccountID() string {
	parts := strings.SplitN(r.AssumedRoleARN, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// ExchangeRequest is what is asked of STS besides the token.
type ExchangeRequest struct {
	RoleARN     string
	SessionName string
	Duration    time.Duration // 0: the server's default (3600 s on AWS)
}

// Exchanger calls STS AssumeRoleWithWebIdentity (unsigned, as AWS defines
// it) with the retry policy AWS recommends for that call.
type Exchanger struct {
	// Endpoint is the STS endpoint URL (a keyless server); empty means
	// real AWS's regional endpoint for Region.
	Endpoint string
	Region   string // "us-east-1" when empty

	HTTPClient *http.Client // the SDK's default client when nil
	Backoff    Backoff
	Rand       io.Reader                                  // jitter; crypto/rand when nil
	Sleep      func(context.Context, time.Duration) error // timer-based when nil
	Logger     *slog.Logger                               // retries are reported here; silent when nil

	// DecodeCredentials, when set, are used to call
	// sts:DecodeAuthorizationMessage on an encoded failure message.
	DecodeCredentials aws.CredentialsProvider
}

// The STS error codes the exchange treats specially.
const (
	codeIDPCommunication = "IDPCommunicationError"
	codeThrottling       = "Throttling"
	codeExpiredToken     = "ExpiredTokenException"
	codeAccessDenied     = "AccessDenied"
	codeInvalidToken     = "InvalidIdentityToken"
)

func (x *Exchanger) region() string {
	if x.Region == "" {
		return "us-east-1"
	}
	return x.Region
}

// EndpointDescription names where requests go, for messages.
func (x *Exchanger) EndpointDescription() string {
	if x.Endpoint != "" {
		return x.Endpoint
	}
	return "https://sts." + x.region() + ".amazonaws.com"
}

func (x *Exchanger) client(creds aws.CredentialsProvider) *sts.Client {
	o := sts.Options{
		Region:      x.region(),
		Credentials: creds,
		// Our own loop retries (with a fresh token where possible); the
		// SDK's retryer would multiply attempts.
		Retryer: aws.NopRetryer{},
		AppID:   "keyless",
	}
	if x.Endpoint != "" {
		o.BaseEndpoint = aws.String(x.Endpoint)
	}
	if x.HTTPClient != nil {
		o.HTTPClient = x.HTTPClient
	}
	return sts.New(o)
}

// Exchange obtains a token from src and trades it for credentials.
// Retryable failures (IDPCommunicationError, Throttling, HTTP 5xx and 429,
// network errors) are retried with backoff; a refreshable source provides a
// new token for each retry, and an ExpiredTokenException is retried once
// with a new token. Every other error returns at once as an
// *ExchangeError.
func (x *Exchanger) Exchange(ctx context.Context, src TokenSource, req ExchangeRequest) (*Result, error) {
	if req.RoleARN == "" {
		return nil, errors.New("no role ARN: pass --role-arn or set AWS_ROLE_ARN")
	}
	client := x.client(aws.AnonymousCredentials{})
	var (
		tok           string
		attempts      int
		retriedExpiry bool
		out           *sts.AssumeRoleWithWebIdentityOutput
		tokenErr      error
	)
	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:         aws.String(req.RoleARN),
		RoleSessionName: aws.String(req.SessionName),
	}
	if req.Duration > 0 {
		in.DurationSeconds = aws.Int32(int32(req.Duration / time.Second))
	}
	onRetry := func(attempt int, wait time.Duration, err error) {
		if x.Logger != nil {
			x.Logger.Warn("STS call failed, retrying", "error", summarize(err, tok),
				"attempt", attempt, "wait", wait.Round(time.Millisecond).String())
		}
	}
	err := retryLoop(ctx, x.Backoff, x.Rand, x.Sleep, onRetry, func(ctx context.Context) (bool, error) {
		attempts++
		if tok == "" || src.Refreshable() {
			t, err := src.Token(ctx)
			if err != nil {
				tokenErr = err
				return false, err
			}
			tok = t
		}
		in.WebIdentityToken = aws.String(tok)
		var err error
		out, err = client.AssumeRoleWithWebIdentity(ctx, in)
		if err == nil {
			return false, nil
		}
		if apiCode(err) == codeExpiredToken && src.Refreshable() && !retriedExpiry {
			retriedExpiry = true
			return true, err
		}
		return retryable(err), err
	})
	if tokenErr != nil && errors.Is(err, tokenErr) {
		return nil, fmt.Errorf("getting the identity token from %s: %w", src.Describe(), err)
	}
	if err != nil {
		return nil, x.explain(ctx, err, tok, src, req, attempts)
	}
	return resultFrom(out)
}

func resultFrom(out *sts.AssumeRoleWithWebIdentityOutput) (*Result, error) {
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return nil, errors.New("STS answered without complete credentials")
	}
	r := &Result{
		Credentials: Credentials{
			AccessKeyID:     *c.AccessKeyId,
			SecretAccessKey: *c.SecretAccessKey,
			SessionToken:    *c.SessionToken,
			Expiration:      c.Expiration.UTC(),
		},
		SubjectFromWebIdentityToken: aws.ToString(out.SubjectFromWebIdentityToken),
		Audience:                    aws.ToString(out.Audience),
		Provider:                    aws.ToString(out.Provider),
		SourceIdentity:              aws.ToString(out.SourceIdentity),
	}
	if u := out.AssumedRoleUser; u != nil {
		r.AssumedRoleARN = aws.ToString(u.Arn)
		r.AssumedRoleID = aws.ToString(u.AssumedRoleId)
	}
	return r, nil
}

func apiCode(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	if re, ok := errors.AsType[*smithyhttp.ResponseError](err); ok {
		return re.HTTPStatusCode()
	}
	return 0
}

// retryable is AWS's advice for this call: IDPCommunicationError and
// Throttling are transient, as are server faults and failures to get any
// answer; everything else (bad token, denied, validation) would fail again.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch apiCode(err) {
	case codeIDPCommunication, codeThrottling, "ThrottlingException", "RequestLimitExceeded":
		return true
	}
	if s := httpStatus(err); s >= 500 || s == http.StatusTooManyRequests {
		return true
	}
	if _, ok := errors.AsType[*smithyhttp.RequestSendError](err); ok {
		return true
	}
	return false
}

// summarize is a one-line description of err for retry notices, with the
// token scrubbed in case a misbehaving server echoed it.
func summarize(err error, tok string) string {
	var s string
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		s = ae.ErrorCode() + ": " + ae.ErrorMessage()
	} else if se, ok := errors.AsType[*smithyhttp.RequestSendError](err); ok {
		s = se.Err.Error()
	} else {
		s = err.Error()
	}
	return redact(s, tok)
}

func redact(s, secret string) string {
	if len(secret) < minTokenLen {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted token]")
}

// ExchangeError is a failed exchange, with what the user needs to fix it.
type ExchangeError struct {
	Code       string // AWS error code; "" when no AWS answer was received
	Message    string // AWS error message (or the transport failure)
	StatusCode int
	RequestID  string
	Attempts   int
	Endpoint   string
	RoleARN    string
	Source     string  // where the token came from
	Claims     *Claims // the token's claims, unverified, when it is a JWT
	// Explanation is the decoded authorization failure message, when there
	// was one and it could be decoded.
	Explanation string
	Hint        string
	Err         error
}

func (e *ExchangeError) Error() string {
	var b strings.Builder
	if e.Code != "" {
		fmt.Fprintf(&b, "%s: %s", e.Code, e.Message)
	} else {
		fmt.Fprintf(&b, "calling STS failed: %s", e.Message)
	}
	fmt.Fprintf(&b, "\n  role:  %s", e.RoleARN)
	fmt.Fprintf(&b, "\n  token: from %s", e.Source)
	if e.Claims != nil {
		fmt.Fprintf(&b, "; unverified claims %s", e.Claims)
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
	if e.Explanation != "" {
		fmt.Fprintf(&b, "\n  explanation (decoded authorization message):\n%s", indent(e.Explanation, "    "))
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "\n  hint: %s", e.Hint)
	}
	return b.String()
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

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

var encodedMessageRE = regexp.MustCompile(`Encoded authorization failure message:\s*([A-Za-z0-9_\-+/=.~]+)`)

// EncodedAuthorizationMessage extracts the blob of an "Encoded
// authorization failure message: <blob>" error message, or "".
func EncodedAuthorizationMessage(msg string) string {
	if m := encodedMessageRE.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

func (x *Exchanger) explain(ctx context.Context, err error, tok string, src TokenSource, req ExchangeRequest, attempts int) error {
	e := &ExchangeError{
		Attempts: attempts,
		Endpoint: x.EndpointDescription(),
		RoleARN:  req.RoleARN,
		Source:   src.Describe(),
		Err:      err,
	}
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		e.Code, e.Message = ae.ErrorCode(), redact(ae.ErrorMessage(), tok)
	} else {
		e.Message = summarize(err, tok)
	}
	e.StatusCode = httpStatus(err)
	if re, ok := errors.AsType[*awshttp.ResponseError](err); ok {
		e.RequestID = re.ServiceRequestID()
	}
	if c, perr := ParseClaims(tok); perr == nil {
		e.Claims = &c
	}

	if blob := EncodedAuthorizationMessage(e.Message); blob != "" {
		howTo := "decode it with: aws sts decode-authorization-message --encoded-message " + blob
		if x.Endpoint != "" {
			howTo += " --endpoint-url " + x.Endpoint
		}
		howTo += " (needs credentials allowed sts:DecodeAuthorizationMessage)"
		if x.DecodeCredentials == nil {
			e.Hint = howTo
		} else if text, derr := x.decode(ctx, blob); derr != nil {
			e.Hint = "could not decode the authorization message with the credentials in the environment (" + summarize(derr, tok) + "); " + howTo
		} else {
			e.Explanation = redact(text, tok)
		}
	}
	if e.Hint == "" {
		e.Hint = hintFor(e, src)
	}
	return e
}

// hintFor suggests the usual fix for a code.
func hintFor(e *ExchangeError, src TokenSource) string {
	switch e.Code {
	case codeAccessDenied:
		return "the role's trust policy did not accept this token: compare its Principal.Federated (the OIDC provider for iss) and its sub/aud conditions with the claims above"
	case codeInvalidToken:
		return "the token was refused before the trust policy: check that the role's account has an OIDC provider for the token's iss whose client IDs include its aud"
	case codeExpiredToken:
		if !src.Refreshable() {
			return "the token from " + src.Describe() + " cannot be refreshed; run the exchange earlier in the job (CircleCI tokens last one hour), or use a source that re-requests tokens"
		}
		return "the CI system issued an expired token; check the clocks of the CI runner and of the STS server"
	case codeIDPCommunication, codeThrottling:
		return "a transient failure persisted over all attempts; retry the job"
	case "":
		return "no answer from STS: check the endpoint (--endpoint-url, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL) and that this runner can reach it"
	}
	return ""
}

// decode calls sts:DecodeAuthorizationMessage (signed with
// DecodeCredentials) and pretty-prints the JSON it holds.
func (x *Exchanger) decode(ctx context.Context, blob string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := x.client(aws.NewCredentialsCache(x.DecodeCredentials)).DecodeAuthorizationMessage(ctx,
		&sts.DecodeAuthorizationMessageInput{EncodedMessage: aws.String(blob)})
	if err != nil {
		return "", err
	}
	msg := aws.ToString(out.DecodedMessage)
	var pretty bytes.Buffer
	if json.Indent(&pretty, []byte(msg), "", "  ") == nil {
		return pretty.String(), nil
	}
	return msg, nil
}
