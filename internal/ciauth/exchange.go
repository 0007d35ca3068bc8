package ciauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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

// Brokered reports whether the credentials are AWS's, obtained by a keyless
// server in broker mode for roleARN: the upstream STS then names the
// subject keyless's broker token carries, keyless:<account>:role/<name>
// for the keyless role asked for (keyless's issuer mints that subject only
// for itself). Such credentials are for AWS: outputs must not point the
// AWS SDKs at keyless's endpoint.
func (r *Result) Brokered(roleARN string) bool {
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) < 6 || !strings.HasPrefix(parts[5], "role/") {
		return false
	}
	name := parts[5][strings.LastIndexByte(parts[5], '/')+1:]
	return name != "" && r.SubjectFromWebIdentityToken == "keyless:"+parts[4]+":role/"+name
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
		// A certificate that does not verify, or https:// to a plain
		// HTTP server, fails the same way every time.
		return tlsCause(err) == ""
	}
	return false
}

// summarize is a one-line description of err for retry notices, with the
// token scrubbed in case a misbehaving server echoed it.
func summarize(err error, tok string) string {
	var s string
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		s = ae.ErrorCode() + ": " + withoutEncodedMessage(ae.ErrorMessage())
	} else {
		s = transportReason(err)
	}
	return redact(s, tok)
}

func redact(s, secret string) string {
	if len(secret) < minTokenLen {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted token]")
}

// decode calls sts:DecodeAuthorizationMessage, signed with creds, and
// returns the decoded message (JSON).
func (x *Exchanger) decode(ctx context.Context, creds aws.Credentials, blob string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	static := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	out, err := x.client(static).DecodeAuthorizationMessage(ctx,
		&sts.DecodeAuthorizationMessageInput{EncodedMessage: aws.String(blob)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.DecodedMessage), nil
}
