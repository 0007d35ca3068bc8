package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const invictusDir = "../audit/testdata/real/invictus"

// loadInvictus returns the raw events of the real CloudTrail files, in
// file-name then record order.
func loadInvictus(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(invictusDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invictus files in %s: %v", invictusDir, err)
	}
	sort.Strings(files)
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Records []json.RawMessage }
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range doc.Records {
			out = append(out, []byte(r))
		}
	}
	return out
}

// decoded is an event as encoding/json reads it: the independent oracle.
type decoded struct {
	EventName    string `json:"eventName"`
	EventSource  string `json:"eventSource"`
	EventTime    string `json:"eventTime"`
	EventID      string `json:"eventID"`
	ErrorCode    string `json:"errorCode"`
	UserIdentity struct {
		Type string `json:"type"`
		Arn  string `json:"arn"`
	} `json:"userIdentity"`
}

func decodeAll(t testing.TB, evs [][]byte) []decoded {
	out := make([]decoded, len(evs))
	for i, e := range evs {
		if err := json.Unmarshal(e, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func mustRun(t testing.TB, src string, evs [][]byte, workers int) *Result {
	t.Helper()
	q, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	r, err := runEvents(q, evs, workers, 37, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInvictusCounts(t *testing.T) {
	evs := loadInvictus(t)
	dec := decodeAll(t, evs)
	if len(evs) != 2900 {
		t.Fatalf("%d invictus events, want 2900", len(evs))
	}
	var assumeRole, likeAssume, errors int64
	perSource := map[string]int{}
	users := map[string]bool{}
	for _, d := range dec {
		if d.EventName == "AssumeRole" {
			assumeRole++
		}
		if strings.Contains(d.EventName, "AssumeRole") {
			likeAssume++
		}
		if d.ErrorCode != "" {
			errors++
		}
		perSource[d.EventSource]++
		if d.UserIdentity.Arn != "" {
			users[d.UserIdentity.Arn] = true
		}
	}
	if assumeRole == 0 || likeAssume == 0 || errors == 0 {
		t.Fatalf("oracle found nothing: %d %d %d", assumeRole, likeAssume, errors)
	}

	r := mustRun(t, `filter eventName = "AssumeRole" | stats count(*) as n`, evs, 2)
	if got := r.Rows[0][0].String(); got != fmt.Sprint(assumeRole) {
		t.Errorf("AssumeRole count = %s, want %d", got, assumeRole)
	}
	r = mustRun(t, `filter eventName like "AssumeRole"`, evs, 2)
	if int64(len(r.Rows)) != likeAssume || r.Matched != likeAssume {
		t.Errorf("like AssumeRole: %d rows, matched %d; want %d", len(r.Rows), r.Matched, likeAssume)
	}
	r = mustRun(t, `filter ispresent(errorCode) | stats count(*)`, evs, 2)
	if got := r.Rows[0][0].String(); got != fmt.Sprint(errors) {
		t.Errorf("errors = %s, want %d", got, errors)
	}
	r = mustRun(t, `stats count_distinct(eventSource) as n, count_distinct(userIdentity.arn) as u`, evs, 2)
	if got := r.Rows[0][0].String(); got != fmt.Sprint(len(perSource)) {
		t.Errorf("distinct sources = %s, want %d", got, len(perSource))
	}
	if got := r.Rows[0][1].String(); got != fmt.Sprint(len(users)) {
		t.Errorf("distinct arns = %s, want %d", got, len(users))
	}
	r = mustRun(t, `stats count(*) as n by eventSource`, evs, 2)
	var want [][]string
	keys := make([]string, 0, len(perSource))
	for k := range perSource {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		want = append(want, []string{k, fmt.Sprint(perSource[k])})
	}
	if diff := cmp.Diff(want, render(r)); diff != "" {
		t.Errorf("count by eventSource (-want +got):\n%s", diff)
	}
	// sort | limit: the 5 newest events' IDs, ties by input order.
	idx := make([]int, len(dec))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return dec[idx[a]].EventTime > dec[idx[b]].EventTime })
	var newest [][]string
	for _, i := range idx[:5] {
		newest = append(newest, []string{dec[i].EventID})
	}
	r = mustRun(t, `fields eventID | sort @timestamp desc | limit 5`, evs, 2)
	if diff := cmp.Diff(newest, render(r)); diff != "" {
		t.Errorf("newest 5 (-want +got):\n%s", diff)
	}
}

var parallelQueries = []string{
	`filter eventName like "AssumeRole"`,
	`fields eventTime, eventName, userIdentity.arn | filter eventSource = "iam.amazonaws.com"`,
	`stats count(*) as n, count_distinct(eventName) as d, earliest(eventName) as e, latest(eventID) as l, pct(strlen(eventID), 50) as p by eventSource`,
	`stats count(*) by bin(1h), userIdentity.type`,
	`fields eventName, sourceIPAddress | sort eventName desc | limit 25`,
	`fields eventID | limit 13`,
	`fields eventName, awsRegion | sort awsRegion | dedup eventName`,
	`parse userAgent /(?<agent>[^\/ ]+)/ | stats count(*) by agent | sort agent`,
	`filter errorCode in ["AccessDenied", "NoSuchBucket"] or eventName =~ /^List/ | fields eventID, errorCode`,
}

func TestParallelEqualsSerial(t *testing.T) {
	evs := loadInvictus(t)
	for _, src := range parallelQueries {
		q, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		var base *Result
		for _, cfg := range []struct{ workers, batch int }{{1, 5000}, {2, 7}, {8, 1}, {8, 100}} {
			r, err := runEvents(q, evs, cfg.workers, cfg.batch, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if base == nil {
				base = r
				if len(r.Rows) == 0 {
					t.Errorf("%s: no rows", src)
				}
				continue
			}
			if diff := cmp.Diff(render(base), render(r)); diff != "" || base.Matched != r.Matched {
				t.Errorf("%s: workers=%d batch=%d differs from serial (matched %d vs %d):\n%s", src, cfg.workers, cfg.batch, base.Matched, r.Matched, diff)
			}
		}
	}
}

// TestRunOverFiles runs through audit.Scan: the real delivery files and the
// same events as one NDJSON file give the same answers.
func TestRunOverFiles(t *testing.T) {
	evs := loadInvictus(t)
	dir := t.TempDir()
	nd := filepath.Join(dir, "all.ndjson")
	var b bytes.Buffer
	for _, e := range evs {
		if err := json.Compact(&b, e); err != nil {
			t.Fatal(err)
		}
		b.WriteByte('\n')
	}
	if err := os.WriteFile(nd, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, src := range parallelQueries {
		q, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		mem, err := runEvents(q, evs, 1, 1000, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, paths := range [][]string{{invictusDir}, {nd}} {
			r, err := q.Run(context.Background(), paths, Options{})
			if err != nil {
				t.Fatalf("%s over %v: %v", src, paths, err)
			}
			if r.Stats.Records != int64(len(evs)) {
				t.Errorf("%v: scanned %d records, want %d", paths, r.Stats.Records, len(evs))
			}
			if diff := cmp.Diff(render(mem), render(r)); diff != "" || mem.Matched != r.Matched {
				t.Errorf("%s over %v differs from in-memory (matched %d vs %d):\n%s", src, paths, mem.Matched, r.Matched, diff)
			}
		}
	}
}
