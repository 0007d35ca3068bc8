package contract

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/audit/audittest"
)

const emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func payloadSHA256(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}

// httpResult is a plain HTTP answer.
type httpResult struct {
	status int
	body   string
}

func httpDo(t *testing.T, req *http.Request) httpResult {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpResult{resp.StatusCode, string(b)}
}

func httpGet(t *testing.T, u string) httpResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return httpDo(t, req)
}

// presignGetCallerIdentity presigns GetCallerIdentity with session
// credentials the way aws-sdk-go-v2 does (EKS-style tokens, Vault's AWS
// auth): the session token travels as the X-Amz-Security-Token query
// parameter.
func presignGetCallerIdentity(t *testing.T, base string, c issuedCreds) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/?Action=GetCallerIdentity&Version=2011-06-15", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.Secret, SessionToken: c.SessionToken},
		req, emptyPayloadSHA256, "sts", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPresignedEncodedNamesKeepTokenOutOfTrail (issue 11 item 10), through
// a real keyless serve: a GetCallerIdentity URL presigned with session
// credentials, replayed with its X-Amz-* parameter names percent-encoded
// in every way audittest knows (as AWS does, each one authenticates), is
// recorded in the trail without the session token; the same parameter in
// two encodings, in another case, or in a form body is refused. Nothing on
// disk or in the log holds the token or the secret key, in any encoding.
func TestPresignedEncodedNamesKeepTokenOutOfTrail(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	s := f.srv
	c, code, err := exchangeHTTP(http.DefaultClient, s.URL, f.roleARN, "leak-check", f.token(t, "repo:octo-org/app:ref:refs/heads/main"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("exchange: %d %v", code, err)
	}

	encodings := audittest.NameEncodings()
	for _, enc := range encodings {
		u := enc.Apply(presignGetCallerIdentity(t, s.URL, c))
		r := httpGet(t, u)
		if r.status != http.StatusOK || !strings.Contains(r.body, "assumed-role/ci-deploy/leak-check") {
			t.Errorf("%s: %d %s", enc.Name, r.status, r.body)
		}
	}

	refused := map[string]string{
		"token raw and encoded": presignGetCallerIdentity(t, s.URL, c) + "&X%2DAmz%2DSecurity%2DToken=" + url.QueryEscape(c.SessionToken),
		"token name in lower case": strings.Replace(presignGetCallerIdentity(t, s.URL, c),
			"X-Amz-Security-Token=", "x-amz-security-token=", 1),
	}
	for name, u := range refused {
		r := httpGet(t, u)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "<Code>IncompleteSignature</Code>") {
			t.Errorf("%s: %d %s, want 400 IncompleteSignature", name, r.status, r.body)
		}
	}
	// A header-signed call whose form body carries the token as a
	// parameter: SigV4 never reads authentication from a body, so it would
	// only have been recorded.
	body := "Action=GetCallerIdentity&Version=2011-06-15&X%2DAmz%2DSecurity%2DToken=" + url.QueryEscape(c.SessionToken)
	req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if err := v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.Secret, SessionToken: c.SessionToken},
		req, payloadSHA256(body), "sts", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := httpDo(t, req); r.status != http.StatusBadRequest || !strings.Contains(r.body, "<Code>IncompleteSignature</Code>") {
		t.Errorf("token in the form body: %d %s, want 400 IncompleteSignature", r.status, r.body)
	}

	s.stop(t) // seals the journal into delivery files

	// Every replay is in the trail, as the session's call, without any
	// X-Amz-* request parameter.
	recorded := 0
	for e, err := range audit.Read(context.Background(), filepath.Join(s.Data, "audit"), audit.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		ev := e.Event
		if ev.EventName != "GetCallerIdentity" || ev.UserIdentity == nil || ev.UserIdentity.AccessKeyID != c.AccessKeyID {
			continue
		}
		recorded++
		for k := range ev.RequestParameters {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
				t.Errorf("event %s records request parameter %q", ev.EventID, k)
			}
		}
	}
	if recorded != len(encodings) {
		t.Errorf("%d GetCallerIdentity events of the session in the trail, want %d (one per encoding)", recorded, len(encodings))
	}
	audittest.AssertNoSecrets(t, s.Data, c.SessionToken, c.Secret)
	logDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(logDir, "server.log"), []byte(s.logs.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	audittest.AssertNoSecrets(t, logDir, c.SessionToken, c.Secret)
}

// TestRootGetRevealsNoAccount (issue 11 item 13a, issue 12 item 1): an
// unauthenticated GET / gets AWS's answer — 302 Found to the product's
// page, no body — and nothing about the deployment.
func TestRootGetRevealsNoAccount(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", "--region", "eu-west-3")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://github.com/keylessci/keyless" || len(body) != 0 {
		t.Fatalf("GET / = %d, Location %q, body %q; want 302 to the project page, no body", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var head strings.Builder
	_ = resp.Header.Write(&head)
	for _, secret := range []string{accountID, "eu-west-3", adminKeyID} {
		if strings.Contains(head.String(), secret) {
			t.Errorf("GET / reveals %q:\n%s", secret, head.String())
		}
	}
}
