package issuer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keylessci/keyless/internal/awsquery"
)

// SigningService is the SigV4 service name token requests are signed for.
const SigningService = "sts"

// Client calls a keyless server's token endpoint (keyless token mint).
type Client struct {
	// Endpoint is the server's base URL, e.g. http://127.0.0.1:8400.
	Endpoint string
	// HTTPClient (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// Sign authenticates the request (SigV4Signer); nil sends it unsigned.
	Sign func(r *http.Request, body []byte) error
}

// ServerError is the token endpoint's error answer.
type ServerError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *ServerError) Error() string {
	if e.RequestID != "" {
		return fmt.Sprintf("%s: %s (HTTP %d, request id %s)", e.Code, e.Message, e.Status, e.RequestID)
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// Mint asks the server for a token of issuerID ("" for the caller's own or
// the default issuer).
func (c *Client) Mint(ctx context.Context, issuerID string, req MintRequest) (*MintResponse, error) {
	base, err := url.Parse(c.Endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("issuer: endpoint %q is not an http(s) URL", c.Endpoint)
	}
	if issuerID != "" && !idPattern.MatchString(issuerID) {
		return nil, fmt.Errorf("issuer: %q is not an issuer id", issuerID)
	}
	body, err := EncodeMintRequest(req)
	if err != nil {
		return nil, err
	}
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + TokenPath(issuerID)
	u.RawQuery, u.Fragment = "", ""
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.Sign != nil {
		if err := c.Sign(hr, body); err != nil {
			return nil, fmt.Errorf("issuer: sign request: %w", err)
		}
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("issuer: token request: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 2*MaxTokenChars+MaxRequestBytes))
	if err != nil {
		return nil, fmt.Errorf("issuer: token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &ServerError{Status: resp.StatusCode, RequestID: resp.Header.Get(awsquery.HeaderRequestID)}
		var er ErrorResponse
		if json.Unmarshal(data, &er) == nil && er.Type != "" {
			e.Code, e.Message = er.Type, er.Message
		} else {
			e.Code, e.Message = http.StatusText(resp.StatusCode), truncate(strings.TrimSpace(string(data)), 200)
		}
		return nil, e
	}
	var out MintResponse
	if err := json.Unmarshal(data, &out); err != nil || out.Token == "" {
		return nil, fmt.Errorf("issuer: token response is not a token answer (HTTP %d, %d bytes)", resp.StatusCode, len(data))
	}
	return &out, nil
}

// SigV4Signer signs token requests with AWS Signature Version 4 for the
// "sts" service, with credentials found as the AWS CLI finds them (pass
// aws.Config.Credentials from config.LoadDefaultConfig).
func SigV4Signer(creds aws.CredentialsProvider, region string, now func() time.Time) func(*http.Request, []byte) error {
	if now == nil {
		now = time.Now
	}
	if region == "" {
		region = "us-east-1"
	}
	signer := v4.NewSigner()
	return func(r *http.Request, body []byte) error {
		if creds == nil {
			return fmt.Errorf("no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)")
		}
		c, err := creds.Retrieve(r.Context())
		if err != nil {
			return fmt.Errorf("retrieve credentials: %w", err)
		}
		sum := sha256.Sum256(body)
		return signer.SignHTTP(r.Context(), c, r, hex.EncodeToString(sum[:]), SigningService, region, now())
	}
}
