package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// FuzzSignedCalls drives every IAM and STS action with arbitrary
// parameters, signed by an administrator: whatever the input, the answer is
// a well-formed AWS response or a client error — never a 5xx, never a
// panic.
func FuzzSignedCalls(f *testing.F) {
	cfg := Defaults()
	cfg.Data = f.TempDir()
	cfg.AccountID = benchAcct
	env := map[string]string{"KEYLESS_ADMIN_ACCESS_KEY_ID": benchKeyID, "KEYLESS_ADMIN_SECRET_ACCESS_KEY": benchSecret}
	s, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(k string) string { return env[k] }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	h := s.Handler()
	var names []string
	for name := range s.api.actions {
		names = append(names, name)
	}
	seeds := []string{
		"RoleName=r&AssumeRolePolicyDocument=%7B%7D",
		"Url=https%3A%2F%2Fx.example&ClientIDList.member.1=a&Tags.member.1.Key=k",
		"RoleName=r&PolicyName=p&PolicyDocument=%7B%22Version%22%3A%222012-10-17%22%7D",
		"PolicyArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fx&VersionId=v1",
		"PolicyInputList.member.1=%7B%7D&ActionNames.member.1=s3%3AGetObject&ContextEntries.member.1.ContextKeyName=k",
		"RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s&WebIdentityToken=a.b.c",
		"EncodedMessage=AAAA&AccessKeyId=AKIAXXXXXXXXXXXXXXXX",
		"MaxItems=0&Marker=m1.eA&PathPrefix=%2F",
	}
	for i, seed := range seeds {
		f.Add(uint8(i), seed)
	}
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: benchKeyID, SecretAccessKey: benchSecret}
	f.Fuzz(func(t *testing.T, which uint8, params string) {
		name := names[int(which)%len(names)]
		service := s.api.actions[name].Service
		body := "Action=" + name + "&Version=" + url.QueryEscape(map[string]string{"iam": "2010-05-08", "sts": "2011-06-15"}[service])
		if params != "" {
			body += "&" + params
		}
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		sum := sha256.Sum256([]byte(body))
		if err := signer.SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		req.Body = httpBody(body)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: HTTP %d\n%s", name, params, rec.Code, rec.Body.String())
		}
		if !bytes.HasPrefix(rec.Body.Bytes(), []byte("<")) || rec.Header().Get("x-amzn-RequestId") == "" {
			t.Fatalf("%s %q: not an AWS response: %q", name, params, rec.Body.String())
		}
	})
}

type bodyReader struct{ *strings.Reader }

func (bodyReader) Close() error { return nil }

func httpBody(s string) bodyReader { return bodyReader{strings.NewReader(s)} }
