package issuer

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keylessci/keyless/internal/awsquery"
)

// oracleAuthenticator accepts requests signed for service "sts" with the
// given key pair: it re-signs what it received with the SDK's signer and
// compares (the test stands in for the server's SigV4 verifier).
func oracleAuthenticator(t *testing.T, akid, secret string, c *Caller) Authenticator {
	return func(r *http.Request, body []byte) (*Caller, error) {
		auth := r.Header.Get("Authorization")
		cred, _, _ := strings.Cut(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 Credential="), ",")
		parts := strings.Split(cred, "/")
		if len(parts) != 5 || parts[0] != akid || parts[3] != SigningService {
			return nil, &awsquery.Error{Code: awsquery.CodeIncompleteSignature, Message: "bad credential scope " + cred}
		}
		at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil {
			return nil, &awsquery.Error{Code: awsquery.CodeIncompleteSignature, Message: "no X-Amz-Date"}
		}
		_, signed, _ := strings.Cut(auth, "SignedHeaders=")
		signed, _, _ = strings.Cut(signed, ",")
		re, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
		for _, h := range strings.Split(signed, ";") {
			if h != "host" && h != "x-amz-date" {
				re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		sum := sha256Hex(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, re, sum, SigningService, parts[2], at); err != nil {
			t.Error(err)
		}
		if re.Header.Get("Authorization") != auth {
			return nil, &awsquery.Error{Code: awsquery.CodeSignatureDoesNotMatch, Message: "The request signature we calculated does not match the signature you provided."}
		}
		return c, nil
	}
}

func sha256Hex(b []byte) string { return tokenHash(string(b)) }

func TestClientMintsThroughSigV4(t *testing.T) {
	srv, setHandler := lateServer(t)
	f := newFixture(t, []Config{
		{ID: "ci", URL: srv.URL + "/oidc", Profile: ProfileGitLab, Algorithm: ES256},
		{ID: "other", URL: srv.URL + "/other", Algorithm: ES256},
	})
	const akid, secret = "AKIAISSUERCLIENT0001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	f.svc.auth = oracleAuthenticator(t, akid, secret, &Caller{AccessKeyID: akid, IssuerScope: "ci"})
	setHandler(f.svc.Handler())
	ctx := context.Background()

	good := credentials.NewStaticCredentialsProvider(akid, secret, "")
	c := &Client{Endpoint: srv.URL, HTTPClient: srv.Client(), Sign: SigV4Signer(good, "eu-west-3", f.clock.Now)}
	req := MintRequest{Audience: "sts.amazonaws.com", Lifetime: 15 * time.Minute, Claims: map[string]any{
		"project_path": "acme/app", "ref": "main", "ref_type": "branch",
	}}
	for _, id := range []string{"ci", ""} {
		out, err := c.Mint(ctx, id, req)
		if err != nil {
			t.Fatalf("issuer %q: %v", id, err)
		}
		_, payload := decodeJWT(t, out.Token)
		if payload["sub"] != "project_path:acme/app:ref_type:branch:ref:main" || out.ExpiresAt.Sub(out.IssuedAt) != 15*time.Minute {
			t.Errorf("issuer %q: %+v %v", id, out, payload)
		}
	}

	// Refusals come back as *ServerError with the server's code.
	_, err := c.Mint(ctx, "other", req)
	if se, ok := errors.AsType[*ServerError](err); !ok || se.Code != "AccessDenied" || se.Status != 403 || se.RequestID == "" {
		t.Errorf("minting for another issuer: %v", err)
	}
	bad := &Client{Endpoint: srv.URL, HTTPClient: srv.Client(), Sign: SigV4Signer(credentials.NewStaticCredentialsProvider(akid, "wrong", ""), "", nil)}
	_, err = bad.Mint(ctx, "ci", req)
	if se, ok := errors.AsType[*ServerError](err); !ok || se.Code != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error repeats the secret: %v", err)
	}
	for _, ep := range []string{"", "ftp://x", "http://"} {
		if _, err := (&Client{Endpoint: ep}).Mint(ctx, "ci", req); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
	if _, err := c.Mint(ctx, "../admin", req); err == nil {
		t.Error("an issuer id with a path escape was sent")
	}
}
