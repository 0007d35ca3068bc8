package query

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keylessci/keyless/internal/audit"
)

// TestPrefilterEscapes: the raw-byte prefilter must not drop a record whose
// matching value is written with \u escapes (or other escapes).
func TestPrefilterEscapes(t *testing.T) {
	evs := eventsOf([]string{
		`{"eventTime":"2024-01-01T00:00:00Z","eventName":"\u0041ssumeRole","n":1}`,
		`{"eventTime":"2024-01-01T00:00:01Z","eventName":"AssumeRole","n":2}`,
		`{"eventTime":"2024-01-01T00:00:02Z","eventName":"GetObject","n":3}`,
		`{"eventTime":"2024-01-01T00:00:03Z","eventName":"Assume\/Role","n":4}`,
		`{"eventTime":"2024-01-01T00:00:04Z","eventName":"ListBuckets","note":"AssumeRole elsewhere","n":5}`,
	})
	for _, tc := range []struct {
		q         string
		prefilter bool
		want      [][]string
	}{
		{`filter eventName like "AssumeRole" | fields n`, true, [][]string{{"2"}, {"1"}}},
		{`filter eventName = "AssumeRole" | fields n`, true, [][]string{{"2"}, {"1"}}},
		{`filter eventName in ["AssumeRole", "Nope"] | fields n`, true, [][]string{{"2"}, {"1"}}},
		{`filter eventName like "Assume/Role" | fields n`, false, [][]string{{"4"}}},
		{`filter eventName = "Assume/Role" | fields n`, false, [][]string{{"4"}}},
		{`fields n, eventName | filter eventName like "AssumeRole"`, true, [][]string{{"2", "AssumeRole"}, {"1", "AssumeRole"}}},
		{`fields concat(n, "QQ") as eventName | filter eventName like "QQ" | display n`, false, [][]string{{"5"}, {"4"}, {"3"}, {"2"}, {"1"}}},
	} {
		q, err := Parse(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if p := q.compile(Options{}); (len(p.prefilter) > 0) != tc.prefilter {
			t.Errorf("%s: prefilter planned = %v, want %v", tc.q, len(p.prefilter) > 0, tc.prefilter)
		}
		r, err := runEvents(q, evs, 2, 1, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, render(r)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.q, diff)
		}
	}
}

// TestPrefilterNotOnNumbers: `n = "5"` compares numerically, so "5.0" in the
// record must still match; the prefilter must not be planned for it.
func TestPrefilterNotOnNumbers(t *testing.T) {
	evs := eventsOf([]string{`{"eventTime":"2024-01-01T00:00:00Z","n":5.0}`, `{"eventTime":"2024-01-01T00:00:00Z","n":{"a": 1}}`})
	for _, tc := range []struct{ q, want string }{
		{`filter n = "5" | stats count(*)`, "1"},
		{`filter n like ":1" | stats count(*)`, "1"}, // compact text of {"a": 1}
	} {
		q, _ := Parse(tc.q)
		r, err := runEvents(q, evs, 1, 1, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Rows[0][0].String(); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.q, got, tc.want)
		}
	}
}

// TestHotPathAllocs: no allocation per record for the benchmark shapes
// (records that do not match a filter, and stats into existing groups).
func TestHotPathAllocs(t *testing.T) {
	evs := loadInvictus(t)[:300]
	for _, src := range []string{
		`filter eventName like "AssumeRole"`,                       // prefilter rejects most
		`filter eventName like "NoSuchName" or eventName = "Nope"`, // no prefilter: extract and evaluate each
		`filter eventName like "Get" | stats count(*) by eventSource`,
		`stats count(*) by eventSource`,
		`stats count(*), sum(readOnly), min(eventTime) by eventSource, bin(1h)`,
		`filter userIdentity.sessionContext.sessionIssuer.arn like "role/" and eventName = "GetObject" | stats count(*)`,
	} {
		q, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		p := q.compile(Options{})
		w := newWorker(p)
		var sel []audit.RawRecord
		for i, e := range evs {
			// Without stats, matching records become rows (copied):
			// measure the others.
			if p.stats == nil && bytes.Contains(e, []byte("AssumeRole")) {
				continue
			}
			sel = append(sel, audit.RawRecord{Data: e, Index: int64(i)})
		}
		for i := range sel { // warm up: groups exist, scratch has grown
			w.record(&sel[i])
		}
		allocs := testing.AllocsPerRun(20, func() {
			for i := range sel {
				w.record(&sel[i])
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per pass over %d records, want 0", src, allocs, len(sel))
		}
		if p.stats == nil && len(w.rows) != 0 {
			t.Errorf("%s: %d rows kept from non-matching records", src, len(w.rows))
		}
	}
}

// genEvents makes n events with distinct IDs, spread over `groups` event
// names and an hour of time.
func genEvents(n, groups int) [][]byte {
	out := make([][]byte, n)
	for i := range n {
		out[i] = fmt.Appendf(nil, `{"eventTime":"2024-01-01T00:%02d:%02dZ","eventID":"id-%d","eventName":"Op%d","bytes":%d}`, (i/60)%60, i%60, i, i%groups, i)
	}
	return out
}

// TestStateSizes: stats state grows with the groups, sort|limit keeps N
// rows, whatever the input size.
func TestStateSizes(t *testing.T) {
	evs := genEvents(100_000, 7)
	recs := make([]audit.RawRecord, len(evs))
	for i, e := range evs {
		recs[i] = audit.RawRecord{Data: e, Index: int64(i)}
	}
	feed := func(src string) *worker {
		q, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		w := newWorker(q.compile(Options{}))
		for i := range recs {
			w.record(&recs[i])
		}
		return w
	}
	w := feed(`stats count(*), sum(bytes), avg(bytes), min(bytes), max(bytes), earliest(eventID) by eventName`)
	if len(w.stats.groups) != 7 || len(w.rows) != 0 {
		t.Errorf("stats kept %d groups and %d rows, want 7 and 0", len(w.stats.groups), len(w.rows))
	}
	w = feed(`fields eventID, bytes | sort bytes desc | limit 10`)
	if len(w.top.rows) != 10 || len(w.rows) != 0 {
		t.Errorf("sort|limit kept %d heap rows and %d rows, want 10 and 0", len(w.top.rows), len(w.rows))
	}
	w = feed(`fields eventID | limit 3`)
	if len(w.top.rows) != 3 {
		t.Errorf("limit kept %d rows, want 3", len(w.top.rows))
	}
	// And the answer is right: the 10 largest byte counts.
	q, _ := Parse(`fields bytes | sort bytes desc | limit 3`)
	r, err := runEvents(q, evs, 2, 1000, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"99999"}, {"99998"}, {"99997"}}, render(r)); diff != "" {
		t.Error(diff)
	}
	q, _ = Parse(`stats count(*) as n by eventName | filter eventName = "Op3"`)
	r, _ = runEvents(q, evs, 2, 1000, Options{})
	op3 := 0
	for i := range 100_000 {
		if i%7 == 3 {
			op3++
		}
	}
	if diff := cmp.Diff([][]string{{"Op3", strconv.Itoa(op3)}}, render(r)); diff != "" {
		t.Error(diff)
	}
}

func TestHasUnicodeEscape(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{"a":"b"}`, false},
		{`{"a":"\u0041"}`, true},
		{`{"a":"\\u0041"}`, false}, // an escaped backslash, then text
		{`{"a":"\\\u0041"}`, true},
		{`{"a":"\n","b":"\u00e9"}`, true},
		{`\`, false},
		{`x\`, false},
	} {
		if got := hasUnicodeEscape([]byte(tc.in)); got != tc.want {
			t.Errorf("hasUnicodeEscape(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestDuplicateKeys: a key met twice must not end the record's walk before
// the other fields are read; the last value wins, as in encoding/json.
func TestDuplicateKeys(t *testing.T) {
	evs := eventsOf([]string{`{"eventTime":"2024-01-01T00:00:00Z","a":1,"a":2,"b":"x"}`})
	q, _ := Parse(`fields a, b`)
	r, err := runEvents(q, evs, 1, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"2", "x"}}, render(r)); diff != "" {
		t.Error(diff)
	}
}
