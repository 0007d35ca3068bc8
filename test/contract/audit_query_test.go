package contract

// Tests of `keyless audit query` (CONTRACT.md §4, issue 15) through the
// built binary: a differential test against jq on the 2,900 real events of
// the Invictus dataset, the same answers from every input format, flat
// memory over 1 GB streamed through stdin, and the exit codes.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/testenv"
)

// realEventsDir is the directory of the Invictus delivery files: the
// redacted copy in the repository, else the dataset itself.
func realEventsDir(t *testing.T) string {
	t.Helper()
	for _, d := range []string{
		filepath.Join("..", "..", "internal", "audit", "testdata", "real", "invictus"),
		filepath.Join(os.Getenv("KEYLESS_CLOUDTRAIL_DATASET"), "CloudTrail"),
		"/work/shared/data/cloudtrail/invictus-aws-dataset/CloudTrail",
	} {
		if m, _ := filepath.Glob(filepath.Join(d, "*.json")); len(m) > 0 {
			abs, err := filepath.Abs(d)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	testenv.Missing(t, "the Invictus CloudTrail files", "internal/audit/testdata/real/invictus has no .json")
	return ""
}

// realRecords returns every record of the delivery files in dir, compacted,
// in file name order.
func realRecords(t *testing.T, dir string) []json.RawMessage {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	slices.Sort(files)
	var out []json.RawMessage
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
			var c bytes.Buffer
			if err := json.Compact(&c, r); err != nil {
				t.Fatal(err)
			}
			out = append(out, c.Bytes())
		}
	}
	return out
}

type queryRun struct {
	stdout, stderr string
	code           int
	maxRSSKB       int64
}

// runQuery runs `keyless audit query` with args, stdin from in (nil: none).
func runQuery(t *testing.T, in io.Reader, args ...string) queryRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"audit", "query"}, args...)...)
	cmd.Stdin = in
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := queryRun{stdout: out.String(), stderr: errb.String()}
	if cmd.ProcessState == nil {
		t.Fatalf("keyless audit query %q: %v", args, err)
	}
	r.code = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSSKB = int64(ru.Maxrss)
	}
	return r
}

// runQueryPeak is runQuery with the child's own peak RSS: VmHWM of
// /proc/PID/status, read every 20 ms while it runs. The rusage of wait4
// will not do: Go starts children with vfork (CLONE_VM), and Linux counts
// the parent's high-water RSS at exec in the child's ru_maxrss, so a
// large test binary would be blamed on keyless.
func runQueryPeak(t *testing.T, in io.Reader, args ...string) queryRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"audit", "query"}, args...)...)
	cmd.Stdin = in
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peakKB atomic.Int64
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if b, err := os.ReadFile(status); err == nil {
				for line := range strings.Lines(string(b)) {
					if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						var kb int64
						if _, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb); err == nil && kb > peakKB.Load() {
							peakKB.Store(kb)
						}
					}
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(stop)
	<-polled
	r := queryRun{stdout: out.String(), stderr: errb.String(), maxRSSKB: peakKB.Load()}
	if cmd.ProcessState == nil {
		t.Fatalf("keyless audit query %q: %v", args, err)
	}
	r.code = cmd.ProcessState.ExitCode()
	return r
}

// queryRows runs a query with --output json and returns its rows, each value
// as text (so a count printed as 3 or "3" compares equal; a null or absent
// field is absent).
func queryRows(t *testing.T, in io.Reader, query string, paths ...string) []map[string]string {
	t.Helper()
	r := runQuery(t, in, append([]string{"--output", "json", query}, paths...)...)
	if r.code != 0 {
		t.Fatalf("keyless audit query %q: exit %d\n%s", query, r.code, r.stderr)
	}
	return jsonRows(t, r.stdout)
}

// jsonRows decodes a stream of JSON objects into rows of text values.
func jsonRows(t *testing.T, s string) []map[string]string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	rows := []map[string]string{}
	for {
		var m map[string]any
		if err := d.Decode(&m); err == io.EOF {
			return rows
		} else if err != nil {
			t.Fatalf("not a JSON object stream: %v\n%.2000s", err, s)
		}
		row := map[string]string{}
		for k, v := range m {
			switch v := v.(type) {
			case nil:
			case string:
				row[k] = v
			case json.Number:
				row[k] = v.String()
			default:
				b, _ := json.Marshal(v)
				row[k] = string(b)
			}
		}
		rows = append(rows, row)
	}
}

// sortedRows orders rows by their canonical JSON, for queries whose order
// is not defined.
func sortedRows(rows []map[string]string) []map[string]string {
	rows = slices.Clone(rows)
	key := func(m map[string]string) string { b, _ := json.Marshal(m); return string(b) }
	slices.SortFunc(rows, func(a, b map[string]string) int { return strings.Compare(key(a), key(b)) })
	return rows
}

// jqRows runs a jq program over every record of the delivery files in dir
// (`[inputs.Records[]]` is bound to $all) and decodes its output like
// queryRows.
func jqRows(t *testing.T, jq, dir, program string) []map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	slices.Sort(files)
	args := append([]string{"-c", "-n", "[inputs.Records[]] as $all | " + program}, files...)
	out, err := exec.Command(jq, args...).Output()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			t.Fatalf("jq %s: %v\n%s", program, err, ee.Stderr)
		}
		t.Fatalf("jq %s: %v", program, err)
	}
	return jsonRows(t, string(out))
}

// TestAuditQueryDifferentialJQ compares keyless audit query with jq, as
// data, on the 2,900 real events.
func TestAuditQueryDifferentialJQ(t *testing.T) {
	t.Parallel()
	jq, err := exec.LookPath("jq")
	if err != nil {
		testenv.Missing(t, "jq", "the differential test of audit query compares with jq")
	}
	dir := realEventsDir(t)
	// jq helpers: fields of a row, dropping nulls as Logs Insights does.
	const row = `with_entries(select(.value != null))`
	// natkey is a sort key whose jq order is Logs Insights' natural order
	// of strings: a digit run compares with a digit run by length, then
	// value, and with anything else as a digit's code point.
	const natkey = `def natkey: [scan("[0-9]+|[^0-9]") | if test("^[0-9]") then [48, length, .] else [explode[0]] end]; `
	cases := []struct {
		name, query, jq string
		ordered         bool
	}{
		{"equals", `filter eventName = "AssumeRole" | fields eventID, eventTime, userIdentity.arn`,
			`$all[] | select(.eventName == "AssumeRole") | {eventID, eventTime, "userIdentity.arn": .userIdentity.arn} | ` + row, false},
		{"like and", `filter eventName like "Describe" and eventSource = "ec2.amazonaws.com" | fields eventID, eventName`,
			`$all[] | select((.eventName | contains("Describe")) and .eventSource == "ec2.amazonaws.com") | {eventID, eventName}`, false},
		{"like regex", `filter eventName like /^(Get|List)[A-Z]/ | fields eventID, eventName, eventSource`,
			`$all[] | select(.eventName | test("^(Get|List)[A-Z]")) | {eventID, eventName, eventSource}`, false},
		{"in and not", `filter eventSource in ["iam.amazonaws.com", "sts.amazonaws.com"] and not (eventName like "List") | fields eventID, eventSource, eventName`,
			`$all[] | select((.eventSource == "iam.amazonaws.com" or .eventSource == "sts.amazonaws.com") and (.eventName | contains("List") | not)) | {eventID, eventSource, eventName}`, false},
		{"or nested field", `filter userIdentity.type = "AssumedRole" or sourceIPAddress = "AWS Internal" | fields eventID, userIdentity.sessionContext.sessionIssuer.userName`,
			`$all[] | select(.userIdentity.type == "AssumedRole" or .sourceIPAddress == "AWS Internal") | {eventID, "userIdentity.sessionContext.sessionIssuer.userName": .userIdentity.sessionContext.sessionIssuer.userName} | ` + row, false},
		{"ispresent", `filter ispresent(errorCode) | fields eventID, errorCode, errorMessage`,
			`$all[] | select(.errorCode != null) | {eventID, errorCode, errorMessage} | ` + row, false},
		{"array index", `filter ispresent(resources.0.ARN) | fields eventID, resources.0.ARN`,
			`$all[] | select(.resources[0].ARN? != null) | {eventID, "resources.0.ARN": .resources[0].ARN}`, false},
		{"stats by one", `stats count(*) as n by eventSource`,
			`$all | group_by(.eventSource)[] | {eventSource: .[0].eventSource, n: length}`, false},
		{"stats by two", `stats count(*) as n by eventSource, eventName`,
			`$all | group_by([.eventSource, .eventName])[] | {eventSource: .[0].eventSource, eventName: .[0].eventName, n: length}`, false},
		{"filter then stats", `filter eventName like "AssumeRole" | stats count(*) as n by userIdentity.type`,
			`$all | map(select(.eventName | contains("AssumeRole"))) | group_by(.userIdentity.type)[] | {"userIdentity.type": .[0].userIdentity.type, n: length} | ` + row, false},
		{"count_distinct", `stats count_distinct(userIdentity.arn) as arns by eventSource`,
			`$all | group_by(.eventSource)[] | {eventSource: .[0].eventSource, arns: (map(.userIdentity.arn | select(. != null)) | unique | length)}`, false},
		// sort orders strings "naturally", as Logs Insights does: digit runs
		// by length then value, anything else by code point (natkey).
		{"sort desc limit", `fields eventTime, eventID, eventName | sort eventTime desc, eventID desc | limit 25`,
			natkey + `$all | sort_by([(.eventTime | natkey), (.eventID | natkey)]) | reverse | .[:25][] | {eventTime, eventID, eventName}`, true},
		{"sort asc limit", `fields eventTime, eventID | sort eventTime asc, eventID asc | limit 300`,
			natkey + `$all | sort_by([(.eventTime | natkey), (.eventID | natkey)]) | .[:300][] | {eventTime, eventID}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := queryRows(t, nil, c.query, dir)
			want := jqRows(t, jq, dir, c.jq)
			if len(want) == 0 {
				t.Fatalf("jq found nothing for %q: the case proves nothing", c.jq)
			}
			if !c.ordered {
				got, want = sortedRows(got), sortedRows(want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: keyless (+) differs from jq (-):\n%s", c.query, diff)
			}
		})
	}
}

// TestAuditQueryFormatsAgree runs the same queries over the real events as
// a directory, the .json files, .json.gz copies, one NDJSON file and NDJSON
// on stdin: the answers are identical.
func TestAuditQueryFormatsAgree(t *testing.T) {
	t.Parallel()
	dir := realEventsDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	slices.Sort(files)
	tmp := t.TempDir()
	if err := os.Mkdir(filepath.Join(tmp, "gz"), 0o755); err != nil {
		t.Fatal(err)
	}
	var gzFiles []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(tmp, "gz", filepath.Base(f)+".gz")
		gzipTo(t, p, b)
		gzFiles = append(gzFiles, p)
	}
	var nd bytes.Buffer
	for _, r := range realRecords(t, dir) {
		nd.Write(r)
		nd.WriteByte('\n')
	}
	ndPath := filepath.Join(tmp, "events.ndjson")
	if err := os.WriteFile(ndPath, nd.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`stats count(*) as n by eventSource, eventName`,
		`filter eventName like "Create" or ispresent(errorCode) | fields eventID, eventTime, eventName, userIdentity.arn, errorCode`,
		`fields eventTime, eventID | sort eventTime asc, eventID asc | limit 40`,
	} {
		want := sortedRows(queryRows(t, nil, q, dir))
		if len(want) == 0 {
			t.Fatalf("%s: no rows over the directory", q)
		}
		for name, got := range map[string][]map[string]string{
			".json files": queryRows(t, nil, q, files...),
			".json.gz":    queryRows(t, nil, q, gzFiles...),
			"gz dir":      queryRows(t, nil, q, filepath.Join(tmp, "gz")),
			"NDJSON":      queryRows(t, nil, q, ndPath),
			"stdin":       queryRows(t, bytes.NewReader(nd.Bytes()), q, "-"),
		} {
			if diff := cmp.Diff(want, sortedRows(got)); diff != "" {
				t.Errorf("%s over %s (+) differs from the directory (-):\n%s", q, name, diff)
			}
		}
	}
}

// ndjsonStream writes at least size bytes of NDJSON to w: the real records
// repeated, each repetition with its own eventIDs (the first 8 hex digits
// of each ID replaced by the repetition number). It returns the number of
// events per eventSource it wrote.
func ndjsonStream(w io.Writer, records []json.RawMessage, size int64) (map[string]int, error) {
	var block bytes.Buffer
	var idAt []int
	perBlock := map[string]int{}
	for _, r := range records {
		i := bytes.Index(r, []byte(`"eventID":"`))
		if i < 0 {
			return nil, fmt.Errorf("record without eventID: %.200s", r)
		}
		idAt = append(idAt, block.Len()+i+len(`"eventID":"`))
		var ev struct{ EventSource string }
		if err := json.Unmarshal(r, &ev); err != nil {
			return nil, err
		}
		perBlock[ev.EventSource]++
		block.Write(r)
		block.WriteByte('\n')
	}
	b := block.Bytes()
	reps := 0
	for written := int64(0); written < size; written += int64(len(b)) {
		tag := fmt.Sprintf("%08x", reps)
		for _, at := range idAt {
			copy(b[at:at+8], tag)
		}
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
		reps++
	}
	want := map[string]int{}
	for k, v := range perBlock {
		want[k] = v * reps
	}
	return want, nil
}

// TestAuditQueryMemoryFlat streams 1 GB of NDJSON through stdin into a
// stats query: the answer is exact and the peak RSS stays under 150 MB.
func TestAuditQueryMemoryFlat(t *testing.T) {
	t.Parallel()
	records := realRecords(t, realEventsDir(t))
	const size = 1 << 30
	// An OS pipe, not io.Pipe: the child reads it directly, with no copying
	// goroutine in this (race-instrumented) test binary.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		want map[string]int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		want, err := ndjsonStream(pw, records, size)
		pw.Close()
		done <- result{want, err}
	}()
	began := time.Now()
	r := runQueryPeak(t, pr, "--output", "json", "stats count(*) as n by eventSource", "-")
	elapsed := time.Since(began)
	pr.Close() // a generator still writing (the child died early) gets EPIPE
	gen := <-done
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if gen.err != nil {
		t.Fatalf("generator: %v", gen.err)
	}
	got := map[string]int{}
	for _, row := range jsonRows(t, r.stdout) {
		var n int
		if _, err := fmt.Sscan(row["n"], &n); err != nil {
			t.Fatalf("row %v: %v", row, err)
		}
		got[row["eventSource"]] = n
	}
	if diff := cmp.Diff(gen.want, got); diff != "" {
		t.Errorf("counts by eventSource over 1 GiB (-want +got):\n%s", diff)
	}
	t.Logf("1 GiB through stdin in %s (%.0f MB/s), peak RSS %d MB", elapsed.Round(time.Millisecond),
		float64(size)/1e6/elapsed.Seconds(), r.maxRSSKB/1024)
	if r.maxRSSKB == 0 {
		t.Fatal("no peak RSS reported for the child")
	}
	if r.maxRSSKB >= 150*1024 {
		t.Errorf("peak RSS %d MB scanning 1 GiB, want < 150 MB", r.maxRSSKB/1024)
	}
}

// TestAuditQueryExitCodes: a syntax error exits 2 with a caret under the
// column; a truncated .gz exits 1 naming the file and the byte offset, or
// with --skip-bad exits 0 and is counted in the summary.
func TestAuditQueryExitCodes(t *testing.T) {
	t.Parallel()
	dir := realEventsDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	slices.Sort(files)

	t.Run("syntax error", func(t *testing.T) {
		r := runQuery(t, nil, "fields eventName | filter eventName = ", files[0])
		if r.code != 2 {
			t.Fatalf("exit %d, want 2\n%s", r.code, r.stderr)
		}
		if !regexp.MustCompile(`(?m)^\s*\^`).MatchString(r.stderr) {
			t.Errorf("no caret line on stderr:\n%s", r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("stdout not empty: %q", r.stdout)
		}
	})

	tmp := t.TempDir()
	var total, badEvents int
	var paths []string
	for i, f := range files[:5] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Records []json.RawMessage }
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		total += len(doc.Records)
		p := filepath.Join(tmp, filepath.Base(f)+".gz")
		if i == 2 {
			badEvents = len(doc.Records)
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(b)
			zw.Close()
			if err := os.WriteFile(p, z.Bytes()[:z.Len()/2], 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			gzipTo(t, p, b)
		}
		paths = append(paths, p)
	}
	bad := paths[2]
	const q = "stats count(*) as n"

	t.Run("truncated gz", func(t *testing.T) {
		r := runQuery(t, nil, append([]string{"--output", "json", q}, paths...)...)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, filepath.Base(bad)) {
			t.Errorf("stderr does not name %s:\n%s", bad, r.stderr)
		}
		if !regexp.MustCompile(`(?i)(offset|byte)\D{0,12}\d+`).MatchString(r.stderr) {
			t.Errorf("stderr gives no byte offset:\n%s", r.stderr)
		}
	})

	t.Run("skip bad", func(t *testing.T) {
		r := runQuery(t, nil, append([]string{"--output", "json", "--skip-bad", q}, paths...)...)
		if r.code != 0 {
			t.Fatalf("exit %d, want 0\n%s", r.code, r.stderr)
		}
		rows := jsonRows(t, r.stdout)
		if len(rows) != 1 {
			t.Fatalf("rows %v, want one", rows)
		}
		var n int
		fmt.Sscan(rows[0]["n"], &n)
		// The truncated file's events before the cut may or may not count;
		// the other files' must, and nothing more.
		if n < total-badEvents || n > total {
			t.Errorf("count %d, want between %d and %d", n, total-badEvents, total)
		}
		if !regexp.MustCompile(`(?i)(skipped|bad|unreadable)`).MatchString(r.stderr) {
			t.Errorf("the summary does not count the bad file:\n%s", r.stderr)
		}
	})
}
