package contract

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

// Issue 11 item 4: unauthenticated input cannot fill the disk.

// floodFederation is newFederation with a config file.
func floodFederation(t *testing.T, config string) *federation {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "keyless.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	iss := oidctest.NewServer(t, "/ci", oidctest.Options{})
	s := startServer(t, "", "--allow-loopback-http-issuers", "--config", cfgPath)
	prefix := strings.TrimPrefix(iss.URL(), "http://")
	f := &federation{srv: s, issuer: iss, prefix: prefix,
		roleARN: "arn:aws:iam::" + accountID + ":role/ci-deploy", provider: "arn:aws:iam::" + accountID + ":oidc-provider/" + prefix}
	c := s.iamClient(adminKeyID, adminSecret, "")
	ctx := context.Background()
	if _, err := c.CreateOpenIDConnectProvider(ctx, iamCreateProvider(iss.URL(), ciAudience)); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + f.provider + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + prefix + `:aud":"` + ciAudience + `"}}}]}`
	if _, err := c.CreateRole(ctx, iamCreateRole("ci-deploy", trust)); err != nil {
		t.Fatal(err)
	}
	return f
}

// clientFrom is an HTTP client whose connections come from ip (any
// 127.0.0.0/8 address reaches the server on Linux loopback).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}}
}

// junkExchangeBody is a ~25 KB AssumeRoleWithWebIdentity with a junk token:
// every caller-controlled parameter near its largest valid size.
func junkExchangeBody(roleARN string) string {
	form := url.Values{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn":          {roleARN + strings.Repeat("r", 2000)},
		"RoleSessionName":  {strings.Repeat("s", 64)},
		"WebIdentityToken": {"eyJhbGciOiJSUzI1NiIsImtpZCI6Imp1bmsifQ.eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZSJ9." + strings.Repeat("A", 400)},
		"Policy":           {`{"` + strings.Repeat("p", 2040) + `"}`},
	}
	for i := 1; i <= 10; i++ {
		form.Set("PolicyArns.member."+strconv.Itoa(i)+".arn", "arn:aws:iam::"+accountID+":policy/"+strings.Repeat("x", 2000))
	}
	return form.Encode()
}

// postExchange sends a form and returns the status and the error code ("" on
// success).
func postExchange(c *http.Client, base, body string) (int, string, error) {
	resp, err := c.Post(base+"/", "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	_, after, ok := strings.Cut(string(b), "<Code>")
	if !ok {
		return resp.StatusCode, "", nil
	}
	code, _, _ := strings.Cut(after, "</Code>")
	return resp.StatusCode, code, nil
}

// treeBytes is the size of every regular file under dir.
func treeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// metric scrapes one sample ("name" or `name{labels}`) from /metrics; -1
// when absent.
func (s *server) metric(t *testing.T, sample string) float64 {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == sample {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return v
		}
	}
	return -1
}

// trailEventsOf reads every event of a stopped server's trail.
func trailEventsOf(t *testing.T, dir string) []*audit.Event {
	t.Helper()
	var out []*audit.Event
	for e, err := range audit.Read(context.Background(), filepath.Join(dir, "audit"), audit.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Event)
	}
	return out
}

// TestJunkTokenFloodIsBounded floods a real keyless serve with 25 KB
// junk-token exchanges from one source for a few seconds: the source is
// throttled (the real AWS CLI sees Throttling), another source's valid
// exchange still succeeds and is durable, and the trail grows by a bounded
// number of bytes: capped refusal events up to the source's budget, then
// one report of the throttled requests.
func TestJunkTokenFloodIsBounded(t *testing.T) {
	t.Parallel()
	const burst, rate = 20, 1
	f := floodFederation(t, fmt.Sprintf(`
refusal_limit:
  burst: %d
  rate: %d
  exempt: []
  report_interval: 1h
`, burst, rate))
	srv := f.srv
	auditDir := filepath.Join(srv.Data, "audit")
	flooder := clientFrom("127.0.0.1") // the AWS CLI's source too
	other := clientFrom("127.0.0.3")

	// A source refused a few times, but within its budget, still gets
	// credentials (a CI fleet behind one NAT with a misconfigured job).
	for range 3 {
		if _, code, err := postExchange(flooder, srv.URL, junkExchangeBody(f.roleARN)); err != nil || code != "InvalidIdentityToken" {
			t.Fatalf("junk exchange: %s %v", code, err)
		}
	}
	env := awsEnv(t, "", "", "")
	ok := awsCLI(t, srv.URL, env, "sts", "assume-role-with-web-identity", "--role-arn", f.roleARN,
		"--role-session-name", "before-flood", "--web-identity-token", f.token(t, "repo:octo-org/app:ref:refs/heads/main"))
	if ok.Code != 0 {
		t.Fatalf("valid exchange within the budget: %s", ok.Stderr)
	}
	durableBefore := srv.metric(t, "keyless_audit_durable_events_total")
	fsyncsBefore := srv.metric(t, "keyless_audit_journal_fsyncs_total")
	bytesBefore := treeBytes(t, auditDir)

	// The flood: 8 connections for 3 seconds; meanwhile the real AWS CLI,
	// from the flooding source, sees Throttling.
	const conns, dur = 8, 3 * time.Second
	var sent, refused, throttled, other5xx atomic.Int64
	start := time.Now()
	stop := make(chan struct{})
	body := junkExchangeBody(f.roleARN)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, code, err := postExchange(flooder, srv.URL, body)
				sent.Add(1)
				switch {
				case err != nil || status >= 500:
					other5xx.Add(1)
				case code == "Throttling" && status == http.StatusBadRequest:
					throttled.Add(1)
				default:
					refused.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second)
	cli := awsCLI(t, srv.URL, env, "sts", "assume-role-with-web-identity", "--role-arn", f.roleARN,
		"--role-session-name", "flooder", "--web-identity-token", "junk.junk.junk")
	time.Sleep(time.Until(start.Add(dur)))
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	wantAWSError(t, cli, "Throttling")
	if !strings.Contains(cli.Stderr, "Rate exceeded") {
		t.Errorf("CLI message: %s", cli.Stderr)
	}
	throttled.Add(1)

	// Another source's valid exchange succeeds, durably.
	status, code, err := postExchange(other, srv.URL, url.Values{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {f.roleARN},
		"RoleSessionName": {"other-source"}, "WebIdentityToken": {f.token(t, "repo:octo-org/app:ref:refs/heads/main")},
	}.Encode())
	if err != nil || status != http.StatusOK {
		t.Fatalf("valid exchange from another source: %d %s %v", status, code, err)
	}
	if got := srv.metric(t, "keyless_audit_durable_events_total"); got != durableBefore+1 {
		t.Errorf("durable events %v → %v: want exactly the one valid exchange", durableBefore, got)
	}
	time.Sleep(400 * time.Millisecond) // the batched refusals' flush (FlushDelay 200ms)
	fsyncs := srv.metric(t, "keyless_audit_journal_fsyncs_total") - fsyncsBefore
	grown := treeBytes(t, auditDir) - bytesBefore
	if other5xx.Load() != 0 {
		t.Errorf("%d requests failed with a 5xx or a transport error", other5xx.Load())
	}
	if throttled.Load() == 0 {
		t.Fatal("the flooding source was never throttled")
	}
	// The budget: burst plus what the source earned back meanwhile (and
	// the in-flight requests that passed the check together).
	budget := int64(burst + rate*int(elapsed/time.Second+2) + conns)
	if r := refused.Load(); r > budget {
		t.Errorf("%d refusals recorded, budget %d", r, budget)
	}
	perRefusal := float64(grown) / float64(refused.Load())
	t.Logf("flood: %d requests of %d bytes in %s, %d refused and recorded, %d throttled; trail +%d bytes (%.0f bytes per recorded refusal, %.1f per request), %v fsyncs",
		sent.Load(), len(body), elapsed.Round(time.Millisecond), refused.Load(), throttled.Load(), grown, perRefusal, float64(grown)/float64(sent.Load()), fsyncs)
	if max := budget * (audit.UntrustedEventBytes + 64); grown > max {
		t.Errorf("trail grew by %d bytes during the flood, bound %d", grown, max)
	}
	if fsyncs > float64(refused.Load())/2+10 {
		t.Errorf("%v fsyncs for %d refusals: refusals are fsynced one by one", fsyncs, refused.Load())
	}

	// The trail: capped refusals, one report with every throttled request.
	srv.stop(t)
	var reports, recordedRefusals int
	for _, ev := range trailEventsOf(t, srv.Data) {
		switch {
		case ev.EventName == audit.EventNameRefusalReport:
			reports++
			if ev.SourceIPAddress != "127.0.0.1" || ev.ServiceEventDetails["throttledRequests"] != float64(throttled.Load()) {
				t.Errorf("report: %s %v, want 127.0.0.1 and %d throttled", ev.SourceIPAddress, ev.ServiceEventDetails, throttled.Load())
			}
		case ev.EventName == "AssumeRoleWithWebIdentity" && ev.ErrorCode != "":
			recordedRefusals++
			b, _ := json.Marshal(ev)
			if len(b) > audit.UntrustedEventBytes {
				t.Errorf("refused exchange event of %d bytes", len(b))
			}
		}
	}
	if reports != 1 || int64(recordedRefusals) != refused.Load()+3 {
		t.Errorf("%d reports and %d refusals in the trail, want 1 and %d", reports, recordedRefusals, refused.Load()+3)
	}
	verify := exec.Command(binary, "audit", "verify", auditDir)
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
}

// TestAuditDiskCeiling: with audit.max_disk_bytes set, valid exchanges
// fill the trail; the alarm metric fires first, then refusals before
// authentication are only counted, and at the ceiling the server refuses
// exchanges (ServiceUnavailable, no credentials) and /readyz says not ready,
// rather than passing the ceiling.
func TestAuditDiskCeiling(t *testing.T) {
	t.Parallel()
	const ceiling = 1 << 20
	f := floodFederation(t, fmt.Sprintf(`
audit:
  max_disk_bytes: %d
  seal_interval: 1h
`, ceiling))
	srv := f.srv
	client := clientFrom("127.0.0.1")
	token := f.token(t, "repo:octo-org/app:ref:refs/heads/main")
	valid := url.Values{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {f.roleARN},
		"RoleSessionName": {"fill"}, "WebIdentityToken": {token},
	}.Encode()
	alarmAt, shedAt, refusedAt := -1, -1, -1
	for i := 0; i < 2000 && refusedAt < 0; i++ {
		if alarmAt < 0 && srv.metric(t, "keyless_audit_disk_alarm") == 1 {
			alarmAt = i
		}
		if shedAt < 0 && srv.metric(t, "keyless_audit_disk_shedding") == 1 {
			shedAt = i
			// Refusals before authentication are now only counted.
			if _, code, err := postExchange(client, srv.URL, junkExchangeBody(f.roleARN)); err != nil || code != "InvalidIdentityToken" {
				t.Fatalf("junk exchange while shedding: %s %v", code, err)
			}
			if n := srv.metric(t, `keyless_api_unrecorded_refusals_total{action="AssumeRoleWithWebIdentity"}`); n != 1 {
				t.Errorf("unrecorded refusals = %v, want 1", n)
			}
		}
		status, code, err := postExchange(client, srv.URL, valid)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case status == http.StatusOK:
		case status == http.StatusServiceUnavailable && code == "ServiceUnavailable":
			refusedAt = i
		default:
			t.Fatalf("exchange %d: HTTP %d %s", i, status, code)
		}
	}
	t.Logf("ceiling %d bytes: alarm before exchange %d, shedding before %d, refused from %d", ceiling, alarmAt, shedAt, refusedAt)
	if refusedAt < 0 || alarmAt < 0 || shedAt < 0 || !(alarmAt < shedAt && shedAt < refusedAt) {
		t.Fatalf("want alarm < shedding < refusal, got %d, %d, %d", alarmAt, shedAt, refusedAt)
	}
	// It stays closed: more attempts are refused and the trail stays under
	// its ceiling.
	for range 20 {
		if status, _, _ := postExchange(client, srv.URL, valid); status != http.StatusServiceUnavailable {
			t.Fatalf("exchange at the ceiling: HTTP %d", status)
		}
	}
	if got := treeBytes(t, filepath.Join(srv.Data, "audit")); got > ceiling {
		t.Errorf("trail is %d bytes, ceiling %d", got, ceiling)
	}
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d at the ceiling", resp.StatusCode)
	}
	if v := srv.metric(t, "keyless_audit_disk_full"); v != 1 {
		t.Errorf("keyless_audit_disk_full = %v", v)
	}
}
