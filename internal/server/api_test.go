package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/keylessci/keyless/internal/store"
)

// failingRecorder makes the audit trail fail at Start or at Wait.
type failingRecorder struct {
	inner  Recorder
	atWait bool
}

var errTrailDown = errors.New("journal failed: disk gone")

func (f failingRecorder) StartCall(ctx context.Context, call *Call) (audit.Pending, error) {
	if !f.atWait {
		return nil, errTrailDown
	}
	p, err := f.inner.StartCall(ctx, call)
	if err != nil {
		return nil, err
	}
	return failingPending{p}, nil
}

func (f failingRecorder) StartEvent(ctx context.Context, c audit.Call, durable bool) (audit.Pending, error) {
	if !f.atWait {
		return nil, errTrailDown
	}
	p, err := f.inner.StartEvent(ctx, c, durable)
	if err != nil {
		return nil, err
	}
	return failingPending{p}, nil
}

type failingPending struct{ p audit.Pending }

func (f failingPending) Wait(ctx context.Context) error {
	_ = f.p.Wait(ctx)
	return errTrailDown
}

// TestNoCredentialsWithoutAuditRecord: when the exchange's event cannot be
// made durable (refused at once, or the fsync fails after the response was
// rendered), the caller gets ServiceUnavailable and no credentials; a
// batched event's failure does not fail the call.
func TestNoCredentialsWithoutAuditRecord(t *testing.T) {
	s, ts := benchServer(t)
	iss := oidctest.NewServer(t, "/ci", oidctest.Options{})
	ctx := context.Background()
	provider := iam.ProviderARN(benchAcct, iss.URL())
	if err := s.store.Providers().Create(ctx, &store.Provider{ARN: provider, URL: iss.URL(), ClientIDs: []string{"sts.amazonaws.com"}, CreateDate: time.Now()}, 0); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + provider + `"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`
	roleARN := iam.RoleARN(benchAcct, "/", "ci")
	if err := s.store.Roles().Create(ctx, &store.Role{RoleID: "AROAEXAMPLEROLEID0001", Name: "ci", Path: "/", ARN: roleARN, TrustPolicy: trust, MaxSessionDuration: 3600, CreateDate: time.Now()}, 0); err != nil {
		t.Fatal(err)
	}
	exchange := func() (int, string) {
		tok := iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com")
		resp, err := http.PostForm(ts.URL+"/", url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
			"RoleArn": {roleARN}, "RoleSessionName": {"ci-run"}, "WebIdentityToken": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := exchange(); code != http.StatusOK || !strings.Contains(body, "<AccessKeyId>ASIA") {
		t.Fatalf("working trail: %d %s", code, body)
	}
	working := s.api.recorder
	for _, atWait := range []bool{false, true} {
		s.api.recorder = failingRecorder{inner: working, atWait: atWait}
		code, body := exchange()
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "<Code>ServiceUnavailable</Code>") ||
			!strings.Contains(body, "could not be recorded in the audit trail") {
			t.Errorf("atWait=%v: %d %s, want ServiceUnavailable", atWait, code, body)
		}
		for _, leak := range []string{"ASIA", "SessionToken", "SecretAccessKey", "disk gone"} {
			if strings.Contains(body, leak) {
				t.Errorf("atWait=%v: refusal holds %q: %s", atWait, leak, body)
			}
		}
		// A signed read is recorded batched: the trail's failure is logged,
		// the call still answers.
		resp, err := http.Get(presign(t, ts.URL, "iam", "Action=GetRole&Version=2010-05-08&RoleName=ci"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("atWait=%v: GetRole answered %d", atWait, resp.StatusCode)
		}
	}
}

// TestSourceIPTakesTheProxysEntry: behind a trusted proxy the source is the
// X-Forwarded-For entry the proxy appended, not one the client wrote.
func TestSourceIPTakesTheProxysEntry(t *testing.T) {
	q := &queryAPI{trustXFF: true}
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	r.RemoteAddr = "10.0.0.5:4000"
	r.Header.Add("X-Forwarded-For", "127.0.0.1, 192.0.2.1")
	r.Header.Add("X-Forwarded-For", "203.0.113.7")
	if got := q.sourceIP(r); got != "203.0.113.7" {
		t.Errorf("sourceIP = %s, want the proxy's entry 203.0.113.7", got)
	}
	q.trustXFF = false
	if got := q.sourceIP(r); got != "10.0.0.5" {
		t.Errorf("untrusted: sourceIP = %s, want the peer 10.0.0.5", got)
	}
}
