package sigv4_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sigv4"
)

// verifyingServer answers every request after checking its signature with v
// against the one known key pair, the way keyless's server wires the package.
type verifyingServer struct {
	v       *sigv4.Verifier
	akid    string
	secret  string
	token   string
	mu      sync.Mutex
	last    *sigv4.Signature
	lastErr error
}

func (s *verifyingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	sig, err := s.v.Parse(r)
	if err == nil {
		switch {
		case sig.AccessKeyID != s.akid || sig.SessionToken != s.token:
			err = sigv4.InvalidClientTokenID(errors.New("unknown key"))
		default:
			err = sig.Verify(r, body, s.secret)
		}
	}
	s.mu.Lock()
	s.last, s.lastErr = sig, err
	s.mu.Unlock()
	if err != nil {
		e := awsquery.AsError(err)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.HTTPStatus())
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>r</RequestId></ErrorResponse>`,
			e.Type(), e.Code, "redacted-in-test")
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	if sig.Service == "iam" {
		io.WriteString(w, `<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult><IsTruncated>false</IsTruncated><Roles/></ListRolesResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListRolesResponse>`)
		return
	}
	io.WriteString(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/ci/s</Arn><UserId>AROAEXAMPLE:s</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
}

func (s *verifyingServer) result() (*sigv4.Signature, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.lastErr
}

// TestRealSDKClients drives the unmodified STS and IAM clients of
// aws-sdk-go-v2 (with their real middleware: retries headers, user agent,
// invocation id) against a server that verifies with this package.
func TestRealSDKClients(t *testing.T) {
	srv := &verifyingServer{v: &sigv4.Verifier{}, akid: testAKID, secret: testSecret, token: testToken}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(testAKID, testSecret, testToken)

	t.Run("sts GetCallerIdentity", func(t *testing.T) {
		c := sts.New(sts.Options{Region: "eu-west-1", Credentials: creds, BaseEndpoint: aws.String(ts.URL)})
		out, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			_, verr := srv.result()
			t.Fatalf("GetCallerIdentity: %v (server: %v)", err, verr)
		}
		if aws.ToString(out.Account) != "123456789012" {
			t.Errorf("account %q", aws.ToString(out.Account))
		}
		sig, _ := srv.result()
		if sig.Service != "sts" || sig.Region != "eu-west-1" || sig.Presigned {
			t.Errorf("signature %+v", fieldsOf(sig))
		}
	})
	t.Run("iam ListRoles", func(t *testing.T) {
		c := iam.New(iam.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(ts.URL + "/iam-prefix/")})
		if _, err := c.ListRoles(ctx, &iam.ListRolesInput{PathPrefix: aws.String("/ci/")}); err != nil {
			_, verr := srv.result()
			t.Fatalf("ListRoles: %v (server: %v)", err, verr)
		}
		if sig, _ := srv.result(); sig.Service != "iam" {
			t.Errorf("service %q", sig.Service)
		}
	})
	t.Run("sts presigned GetCallerIdentity", func(t *testing.T) {
		c := sts.New(sts.Options{Region: "us-west-2", Credentials: creds, BaseEndpoint: aws.String(ts.URL)})
		p, err := sts.NewPresignClient(c).PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(p.Method, p.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range p.SignedHeader {
			if k != "Host" {
				req.Header[k] = vs
			}
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		sig, verr := srv.result()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %v", resp.StatusCode, verr)
		}
		if !sig.Presigned || sig.SessionToken != testToken {
			t.Errorf("signature %+v", fieldsOf(sig))
		}
	})
	t.Run("wrong secret is SignatureDoesNotMatch", func(t *testing.T) {
		bad := credentials.NewStaticCredentialsProvider(testAKID, testSecret[:39]+"X", testToken)
		c := sts.New(sts.Options{Region: "eu-west-1", Credentials: bad, BaseEndpoint: aws.String(ts.URL),
			RetryMaxAttempts: 1})
		_, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "SignatureDoesNotMatch" {
			t.Fatalf("err = %v", err)
		}
	})
}
