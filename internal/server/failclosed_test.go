package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/issuer"
)

// Nothing changes and no token leaves without its record (issue 11, item
// 3): a mutating IAM call whose audit event cannot be written durably is
// refused and not applied; a minted ID token is written to the client only
// after its event is durable.

// getAdmin calls the Query API as the administrator (a presigned GET).
func getAdmin(t *testing.T, base, service, query string) (int, string) {
	t.Helper()
	resp, err := http.Get(presign(t, base, service, query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// trailEvents returns the events of the server's trail named name.
func trailEvents(t *testing.T, s *Server, name string) []*audit.Event {
	t.Helper()
	var out []*audit.Event
	for e, err := range audit.Read(context.Background(), AuditDir(s.cfg.Data), audit.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Event.EventName == name {
			out = append(out, e.Event)
		}
	}
	return out
}

func TestMutationNotAppliedWithoutRecord(t *testing.T) {
	s, ts := benchServer(t)
	const trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
	create := func(name string) (int, string) {
		return getAdmin(t, ts.URL, "iam", "Action=CreateRole&Version=2010-05-08&RoleName="+name+"&AssumeRolePolicyDocument="+url.QueryEscape(trust))
	}
	working := s.api.recorder
	for _, atWait := range []bool{false, true} {
		s.api.recorder = failingRecorder{inner: working, atWait: atWait}
		name := "refused-" + map[bool]string{false: "start", true: "wait"}[atWait]
		code, body := create(name)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "<Code>ServiceUnavailable</Code>") ||
			!strings.Contains(body, "not applied because it could not be recorded") {
			t.Errorf("atWait=%v: CreateRole answered %d %s, want ServiceUnavailable", atWait, code, body)
		}
		if strings.Contains(body, "disk gone") {
			t.Errorf("atWait=%v: the internal cause reached the client: %s", atWait, body)
		}
		s.api.recorder = working
		if _, err := s.store.Roles().Get(context.Background(), name); err == nil {
			t.Errorf("atWait=%v: the role was created although its record failed", atWait)
		}
	}
	// With a working trail the change is applied and recorded once, with
	// the resource it created.
	code, body := create("recorded")
	if code != http.StatusOK {
		t.Fatalf("CreateRole: %d %s", code, body)
	}
	evs := trailEvents(t, s, "CreateRole")
	var mine []*audit.Event
	for _, ev := range evs {
		if strings.Contains(string(mustJSON(t, ev.RequestParameters)), `"recorded"`) {
			mine = append(mine, ev)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("CreateRole of 'recorded' has %d events, want 1", len(mine))
	}
	if mine[0].ErrorCode != "" || len(mine[0].Resources) != 1 || mine[0].Resources[0].ARN != "arn:aws:iam::"+benchAcct+":role/recorded" {
		t.Errorf("event: error %q resources %+v", mine[0].ErrorCode, mine[0].Resources)
	}
	// A refused change (validation) changes nothing and is still recorded.
	if code, _ := create("recorded"); code != http.StatusConflict {
		t.Errorf("second CreateRole: %d, want 409", code)
	}
	// Its event is batched, not fsynced: wait for the writer's next flush.
	deadline := time.Now().Add(5 * time.Second)
	for n := len(trailEvents(t, s, "CreateRole")); n != len(evs)+1; n = len(trailEvents(t, s, "CreateRole")) {
		if time.Now().After(deadline) {
			t.Fatalf("the refused CreateRole was not recorded: %d events, want %d", n, len(evs)+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMintNotIssuedWithoutRecord(t *testing.T) {
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.AccountID = benchAcct
	cfg.Issuers = []IssuerConfig{{ID: "ci", URL: "https://ci.example.com/oidc", Profile: "generic"}}
	s, ts := serverWith(t, cfg)
	client := &issuer.Client{Endpoint: ts.URL, Sign: issuer.SigV4Signer(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: benchKeyID, SecretAccessKey: benchSecret}, nil
	}), "us-east-1", nil)}
	mint := func() (*issuer.MintResponse, error) {
		return client.Mint(context.Background(), "ci", issuer.MintRequest{Audience: "sts.amazonaws.com", Subject: "job-1"})
	}
	if _, err := mint(); err != nil {
		t.Fatalf("working trail: %v", err)
	}
	working := s.api.recorder
	for _, atWait := range []bool{false, true} {
		s.api.recorder = failingRecorder{inner: working, atWait: atWait}
		resp, err := mint()
		se, ok := errors.AsType[*issuer.ServerError](err)
		if resp != nil || !ok || se.Status != http.StatusServiceUnavailable || se.Code != "ServiceUnavailable" {
			t.Errorf("atWait=%v: mint = %v, %v; want ServiceUnavailable and no token", atWait, resp, err)
		}
	}
	s.api.recorder = working
	mints := trailEvents(t, s, "MintIdToken")
	if len(mints) < 1 {
		t.Fatalf("no MintIdToken event")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
