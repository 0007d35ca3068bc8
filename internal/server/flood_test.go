package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/audit"
)

// floodServer is a server (not listening) with the given refusal budget.
func floodServer(t *testing.T, burst int) *Server {
	t.Helper()
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.AccountID = benchAcct
	cfg.RefusalLimit.Burst = burst
	cfg.RefusalLimit.Rate = 0.001
	s, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// junkBody is an AssumeRoleWithWebIdentity of about 25 KB whose token is
// junk: every caller-controlled field at its largest.
func junkBody() string {
	form := url.Values{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn":          {"arn:aws:iam::123456789012:role/" + strings.Repeat("r", 2000)},
		"RoleSessionName":  {strings.Repeat("s", 64)},
		"WebIdentityToken": {"eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("A", 1000) + ".sig"},
		"Policy":           {`{"` + strings.Repeat("p", 2040) + `"}`},
	}
	for i := 1; i <= 10; i++ {
		form.Set("PolicyArns.member."+strconv.Itoa(i)+".arn", "arn:aws:iam::123456789012:policy/"+strings.Repeat("x", 2000))
	}
	return form.Encode()
}

func postFrom(h http.Handler, ip, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "http://keyless/", strings.NewReader(body))
	req.RemoteAddr = net.JoinHostPort(ip, "40000")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", strings.Repeat("u", 3000))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	body := rec.Body.String()
	_, after, ok := strings.Cut(body, "<Code>")
	if !ok {
		t.Fatalf("HTTP %d without an error code: %s", rec.Code, body)
	}
	code, _, _ := strings.Cut(after, "</Code>")
	return code
}

// floodTrailEvents reads every event of a closed server's trail.
func floodTrailEvents(t *testing.T, s *Server) []map[string]any {
	t.Helper()
	var out []map[string]any
	for e, err := range audit.Read(context.Background(), AuditDir(s.cfg.Data), audit.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(e.Event)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestJunkTokenFlood: refusals before authentication are charged to their
// source, which gets Throttling ("Rate exceeded", HTTP 400) once over its
// burst; another source is unaffected; refused events are size-capped and
// not fsynced one by one; the throttled requests are recorded as one report
// per source when the server closes.
func TestJunkTokenFlood(t *testing.T) {
	const burst = 5
	s := floodServer(t, burst)
	h := s.Handler()
	body := junkBody()
	for i := range burst {
		rec := postFrom(h, "192.0.2.7", body)
		if code := errorCode(t, rec); code != "InvalidIdentityToken" {
			t.Fatalf("refusal %d: %s, want InvalidIdentityToken", i+1, code)
		}
	}
	for range 7 {
		rec := postFrom(h, "192.0.2.7", body)
		if rec.Code != http.StatusBadRequest || errorCode(t, rec) != "Throttling" || !strings.Contains(rec.Body.String(), "<Message>Rate exceeded</Message>") {
			t.Fatalf("over the burst: HTTP %d %s", rec.Code, rec.Body.String())
		}
	}
	if code := errorCode(t, postFrom(h, "192.0.2.8", body)); code != "InvalidIdentityToken" {
		t.Fatalf("another source: %s", code)
	}
	if st := s.trail.Stats(); st.DurableEvents != 0 {
		t.Errorf("%d refused exchanges were fsynced one by one", st.DurableEvents)
	}
	metrics := httptest.NewRecorder()
	h.ServeHTTP(metrics, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(metrics.Body.String(), `keyless_api_throttled_total{action="AssumeRoleWithWebIdentity"} 7`) {
		t.Errorf("metrics lack the throttled count:\n%s", grepLines(metrics.Body.String(), "throttled"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var refused, reports int
	for _, ev := range floodTrailEvents(t, s) {
		b, _ := json.Marshal(ev)
		switch ev["eventName"] {
		case "AssumeRoleWithWebIdentity":
			refused++
			if len(b) > audit.UntrustedEventBytes {
				t.Errorf("refused exchange event of %d bytes", len(b))
			}
		case audit.EventNameRefusalReport:
			reports++
			d := ev["serviceEventDetails"].(map[string]any)
			if ev["sourceIPAddress"] != "192.0.2.7" || d["throttledRequests"] != float64(7) || d["sourcePrefix"] != "192.0.2.7/32" {
				t.Errorf("report = %s", b)
			}
		default:
			t.Errorf("unexpected event %s", b)
		}
	}
	if refused != burst+1 || reports != 1 {
		t.Errorf("%d refused exchanges and %d reports recorded, want %d and 1", refused, reports, burst+1)
	}
}

// TestRefusalsShedAboveThreshold: while the trail is above its shed ratio,
// refusals before authentication are not recorded one by one but counted
// in the source's report; refusals of authenticated callers still are.
func TestRefusalsShedAboveThreshold(t *testing.T) {
	s := floodServer(t, 1000)
	s.api.recorder.(*auditRecorder).shed = func() bool { return true }
	h := s.Handler()
	for range 20 {
		postFrom(h, "2001:db8:7:7::1", junkBody())
	}
	// Unsigned, refused before the handler: counted too.
	var junk strings.Builder
	junk.WriteString("Action=AssumeRoleWithWebIdentity")
	for i := range 100 {
		junk.WriteString("&Junk" + strconv.Itoa(i) + "=x")
	}
	postFrom(h, "2001:db8:7:7::2", junk.String())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	evs := floodTrailEvents(t, s)
	if len(evs) != 1 || evs[0]["eventName"] != audit.EventNameRefusalReport {
		t.Fatalf("events = %v", evs)
	}
	d := evs[0]["serviceEventDetails"].(map[string]any)
	if d["unrecordedRefusals"] != float64(21) || d["sourcePrefix"] != "2001:db8:7:7::/64" || evs[0]["sourceIPAddress"] != "2001:db8:7:7::" {
		t.Errorf("report = %v", evs[0])
	}
}

// TestUntrustedCallCapped: an unsigned call refused before its handler
// (here: no Version) with a megabyte of parameters records a capped event.
func TestUntrustedCallCapped(t *testing.T) {
	s := floodServer(t, 1000)
	var b strings.Builder
	b.WriteString("Action=AssumeRoleWithWebIdentity")
	for i := range 500 {
		b.WriteString("&P" + strconv.Itoa(i) + strings.Repeat("k", i%50) + "=" + strings.Repeat("v", 1500))
	}
	rec := postFrom(s.Handler(), "192.0.2.9", b.String())
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("HTTP %d", rec.Code)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	evs := floodTrailEvents(t, s)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	enc, _ := json.Marshal(evs[0])
	if len(enc) > audit.UntrustedEventBytes || evs[0]["additionalEventData"].(map[string]any)[audit.KeyInputCapped] != true {
		t.Errorf("event of %d bytes: %.600s", len(enc), enc)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
