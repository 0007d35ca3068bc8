package contract

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Bounded work per request through a real keyless serve (issue 11, item
// 5): a read-only session allowed iam:Simulate* cannot make one request
// cost seconds of CPU or gigabytes of memory, and a simulation stops when
// its client goes away.

// simulateOnlyPolicy is the session's permission policy.
const simulateOnlyPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:Simulate*","Resource":"*"}]}`

// simulateForm is a SimulateCustomPolicy request.
func simulateForm(policy string, actions, resources []string) url.Values {
	v := url.Values{"Action": {"SimulateCustomPolicy"}, "Version": {"2010-05-08"}, "PolicyInputList.member.1": {policy}}
	for i, a := range actions {
		v.Set("ActionNames.member."+strconv.Itoa(i+1), a)
	}
	for i, r := range resources {
		v.Set("ResourceArns.member."+strconv.Itoa(i+1), r)
	}
	return v
}

func seq(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// procStatus reads a "Name:   N kB" line of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int, name string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return 0
}

// cpuTicks is the process's user + system CPU time, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14 and stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return utime + stime
}

// issueStatements is the issue's 50-statement policy.
func issueStatements() string {
	var st []string
	for i := range 50 {
		st = append(st, fmt.Sprintf(`{"Sid":"S%d","Effect":"Allow","Action":["svc%d:Get*","s3:List*"],"Resource":"arn:aws:s3:::b%d/*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"t%d"}}}`, i, i, i, i))
	}
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(st, ",") + `]}`
}

// TestSimulateIssueExampleRefused: the issue's 300 actions × 300
// resources × 50 statements from a session allowed only iam:Simulate*
// (12 s and 1.28 GB before) is refused at once with InvalidInput saying
// the limit and how to split, and the server's peak memory stays small.
// A request within the limit still works, a page at a time.
func TestSimulateIssueExampleRefused(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	c := f.sessionFor(t, simulateOnlyPolicy)
	pid := f.srv.cmd.Process.Pid

	start := time.Now()
	res, err := postIAM(context.Background(), t, f.srv.URL, c, simulateForm(issueStatements(), seq("s3:GetObject%d", 300), seq("arn:aws:s3:::b%d/key", 300)))
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusBadRequest || res.Code != "InvalidInput" {
		t.Fatalf("answer %d %s: %.300s", res.Status, res.Code, res.Body)
	}
	for _, want := range []string{"300 actions x 300 resources x", "for 50 policy statements", "the limit is 10000000 per request", "Split the request: at most"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("message %q lacks %q", res.Message, want)
		}
	}
	if elapsed > 3*time.Second {
		t.Errorf("the refusal took %v", elapsed)
	}
	hwm := procStatus(t, pid, "VmHWM")
	t.Logf("refused in %v; server peak RSS %d MB", elapsed, hwm>>20)
	if hwm > 256<<20 {
		t.Errorf("server peak RSS %d MB: the refused simulation was built anyway", hwm>>20)
	}

	// Within the limit: 30 × 30 against the same policy, 100 results a
	// page (AWS's default MaxItems), the rest behind the Marker.
	res, err = postIAM(context.Background(), t, f.srv.URL, c, simulateForm(issueStatements(), seq("s3:GetObject%d", 30), seq("arn:aws:s3:::b%d/key", 30)))
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Results   []string `xml:"SimulateCustomPolicyResult>EvaluationResults>member>EvalDecision"`
		Truncated bool     `xml:"SimulateCustomPolicyResult>IsTruncated"`
		Marker    string   `xml:"SimulateCustomPolicyResult>Marker"`
	}
	if res.Status != http.StatusOK {
		t.Fatalf("30 x 30: %d %s %s", res.Status, res.Code, res.Message)
	}
	if err := xml.Unmarshal([]byte(res.Body), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Results) != 100 || !page.Truncated || page.Marker != "100" {
		t.Errorf("30 x 30: %d results, truncated %v, marker %q", len(page.Results), page.Truncated, page.Marker)
	}
}

// TestSimulateStopsWhenClientLeaves: a simulation within the limit but
// slow by construction (19 statements whose Resource is a 1000-character
// wildcard pattern with '?', against a 2048-character ARN: ~5 ms per
// statement) stops when its client disconnects. Ten clients that leave
// after 15 ms cost the server a fraction of ten complete simulations, and
// each cancelled call ends (in the server's log) well before a complete
// one would.
func TestSimulateStopsWhenClientLeaves(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	c := f.sessionFor(t, simulateOnlyPolicy)
	pid := f.srv.cmd.Process.Pid

	var st []string
	for i := range 19 {
		st = append(st, fmt.Sprintf(`{"Sid":"Q%d","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::*%s?%d"}`, i, strings.Repeat("a", 1000), i))
	}
	slow := simulateForm(`{"Version":"2012-10-17","Statement":[`+strings.Join(st, ",")+`]}`, []string{"s3:GetObject"}, []string{"arn:aws:s3:::" + strings.Repeat("a", 2030)})

	// Complete simulations: what each one costs.
	const full = 3
	before := cpuTicks(t, pid)
	var fullTime time.Duration
	for range full {
		start := time.Now()
		res, err := postIAM(context.Background(), t, f.srv.URL, c, slow)
		fullTime += time.Since(start)
		if err != nil || res.Status != http.StatusOK {
			t.Fatalf("complete simulation: %v %d %s %s", err, res.Status, res.Code, res.Message)
		}
	}
	perFull := float64(cpuTicks(t, pid)-before) / full
	fullTime /= full

	// Clients that leave after 15 ms.
	const left = 10
	before = cpuTicks(t, pid)
	for range left {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Millisecond)
		_, err := postIAM(ctx, t, f.srv.URL, c, slow)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a client that leaves after 15 ms got an answer: %v", err)
		}
	}
	// The server notices within one statement; wait for the last call's
	// log line before reading its CPU time.
	// On a loaded machine a client may leave before its request reaches
	// the handler at all: that call costs nothing and is not logged. So:
	// every call that did reach the handler stopped (none completed), and
	// most of them did reach it.
	var cancelled []map[string]any
	completed := 0
	deadline := time.Now().Add(5 * time.Second)
	for {
		cancelled = nil
		for _, l := range f.srv.logLines("api call failed") {
			if l["action"] == "SimulateCustomPolicy" && l["error_code"] == "ServiceUnavailable" {
				cancelled = append(cancelled, l)
			}
		}
		completed = 0
		for _, l := range f.srv.logLines("api call") {
			if l["action"] == "SimulateCustomPolicy" && l["status"] == float64(http.StatusOK) {
				completed++
			}
		}
		if len(cancelled) == left || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	perLeft := float64(cpuTicks(t, pid)-before) / left
	t.Logf("complete simulation: %v wall, %.1f CPU ticks; cancelled: %.1f CPU ticks each; %d of %d logged as stopped", fullTime, perFull, perLeft, len(cancelled), left)
	if completed != full {
		t.Fatalf("%d simulations completed, want only the %d complete ones: a client that left got its simulation run to the end", completed, full)
	}
	if len(cancelled) < left/2 {
		t.Fatalf("%d of %d cancelled simulations were logged as stopped (ServiceUnavailable)", len(cancelled), left)
	}
	if perFull < 5 {
		t.Fatalf("a complete simulation took %.1f CPU ticks: too fast for this test to tell", perFull)
	}
	if perLeft > perFull/2 {
		t.Errorf("a cancelled simulation cost %.1f CPU ticks, a complete one %.1f: the work went on after the client left", perLeft, perFull)
	}
	for _, l := range cancelled {
		if d, _ := l["duration_ms"].(float64); time.Duration(d*float64(time.Millisecond)) > fullTime/2 {
			t.Errorf("a cancelled simulation ran %.0f ms; a complete one takes %v", d, fullTime)
		}
	}
}
