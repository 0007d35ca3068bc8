package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const invictusDir = "testdata/real/invictus"

// invictusRecords returns the records of the committed invictus files in
// delivery order, compact, and the file paths.
func invictusRecords(t testing.TB) ([][]byte, []string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(invictusDir, "*.json"))
	if err != nil || len(files) != 55 {
		t.Fatalf("want the 55 invictus files, got %d (%v)", len(files), err)
	}
	slices.Sort(files)
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := rawRecords(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, compactJSON(t, r))
		}
	}
	if len(out) != 2900 {
		t.Fatalf("invictus has %d records, want 2900", len(out))
	}
	return out, files
}

func compactJSON(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact %.80q: %v", b, err)
	}
	return buf.Bytes()
}

type scanned struct {
	File  int
	Index int64
	Data  string
}

// scanAll scans and returns every record (compact) in (File, Index) order.
func scanAll(t testing.TB, paths []string, opts ScanOptions) ([]scanned, ScanStats, error) {
	t.Helper()
	var mu sync.Mutex
	var out []scanned
	st, err := Scan(context.Background(), paths, opts, func(w int, batch []RawRecord) error {
		if w < 0 || w >= max(opts.Workers, 1) && opts.Workers > 0 {
			return fmt.Errorf("worker %d out of range", w)
		}
		local := make([]scanned, 0, len(batch))
		for _, r := range batch {
			if r.Data[0] != '{' {
				return fmt.Errorf("record %d/%d is not a JSON object: %.80q", r.File, r.Index, r.Data)
			}
			local = append(local, scanned{r.File, r.Index, string(compactJSON(t, r.Data))}) // json.Compact validates
		}
		mu.Lock()
		out = append(out, local...)
		mu.Unlock()
		return nil
	})
	slices.SortFunc(out, func(a, b scanned) int {
		if a.File != b.File {
			return a.File - b.File
		}
		return int(a.Index - b.Index)
	})
	return out, st, err
}

func sortedData(recs []scanned) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Data
	}
	slices.Sort(out)
	return out
}

func sortedBytes(recs [][]byte) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r)
	}
	slices.Sort(out)
	return out
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	b, err := gzipBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t testing.TB, p string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ndjson(recs [][]byte) []byte {
	var b bytes.Buffer
	for i, r := range recs {
		b.Write(r)
		b.WriteByte('\n')
		if i == 7 {
			b.WriteString("  \r\n\n") // blank lines are skipped
		}
	}
	return b.Bytes()
}

// TestScanFormats: the same events whatever shape the invictus files are
// read in.
func TestScanFormats(t *testing.T) {
	recs, files := invictusRecords(t)
	want := sortedBytes(recs)
	tmp := t.TempDir()

	var gzFiles []string
	var catGz []byte // cat *.json.gz: gzip members, each a document
	for _, f := range files {
		data, _ := os.ReadFile(f)
		gzFiles = append(gzFiles, write(t, filepath.Join(tmp, "gz", filepath.Base(f)+".gz"), gz(t, data)))
		catGz = append(catGz, gz(t, data)...)
		// The S3 layout, with a digest folder and digest file that would
		// fail if read.
		write(t, filepath.Join(tmp, "s3/AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10", filepath.Base(f)+".gz"), gz(t, data))
	}
	write(t, filepath.Join(tmp, "s3/AWSLogs/218007301253/CloudTrail-Digest/us-east-1/2023/07/10/x.json.gz"), []byte("not a log"))
	write(t, filepath.Join(tmp, "s3/AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/218007301253_CloudTrail-Digest_us-east-1_x.json"), []byte("not a log"))
	write(t, filepath.Join(tmp, "s3/AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/README.md"), []byte("not a log"))

	nd := write(t, filepath.Join(tmp, "all.ndjson"), ndjson(recs))
	ndgz := write(t, filepath.Join(tmp, "all.ndjson.gz"), gz(t, ndjson(recs)))

	var lookup bytes.Buffer
	lookup.WriteString(`{"Events": [`)
	for i, r := range recs {
		if i > 0 {
			lookup.WriteString(",\n")
		}
		s, _ := json.Marshal(string(r))
		fmt.Fprintf(&lookup, `{"EventId": "%d", "EventName": "x", "CloudTrailEvent": %s}`, i, s)
	}
	lookup.WriteString(`], "NextToken": "abc"}`)
	lk := write(t, filepath.Join(tmp, "lookup.json"), lookup.Bytes())

	// An array of events, pretty-printed, with another top-level key.
	var arr bytes.Buffer
	arr.WriteString("[\n")
	for i, r := range recs {
		if i > 0 {
			arr.WriteString(" ,\n")
		}
		json.Indent(&arr, r, "  ", "  ")
	}
	arr.WriteString("\n]\n")
	ar := write(t, filepath.Join(tmp, "array.json"), arr.Bytes())
	doc := write(t, filepath.Join(tmp, "doc.json"), []byte(`{"Records":[`+string(bytes.Join(recs, []byte(",")))+`], "Other": {"a": [1, "}"]}}`))

	for _, c := range []struct {
		name  string
		paths []string
		stdin []byte
	}{
		{"directory", []string{invictusDir}, nil},
		{"each json", files, nil},
		{"each json.gz", gzFiles, nil},
		{"cat of the json.gz", []string{write(t, filepath.Join(tmp, "cat.json.gz"), catGz)}, nil},
		{"ndjson", []string{nd}, nil},
		{"ndjson.gz", []string{ndgz}, nil},
		{"stdin ndjson", []string{"-"}, ndjson(recs)},
		{"stdin gzipped document", []string{"-"}, gz(t, []byte(`{"Records":[`+string(bytes.Join(recs, []byte(",")))+`]}`))},
		{"lookup-events", []string{lk}, nil},
		{"array", []string{ar}, nil},
		{"document with other keys", []string{doc}, nil},
		{"s3 layout", []string{filepath.Join(tmp, "s3")}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Small blocks put records across every kind of block boundary.
			for _, bs := range []int{0, 3000} {
				got, st, err := scanAll(t, c.paths, ScanOptions{Stdin: bytes.NewReader(c.stdin), blockSize: bs})
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(want, sortedData(got)); d != "" {
					t.Fatalf("block size %d: events differ (-invictus +scanned):\n%.2000s", bs, d)
				}
				if st.Records != 2900 || st.BadFiles != 0 || st.BadRecords != 0 {
					t.Errorf("block size %d: stats %+v", bs, st)
				}
			}
		})
	}
}

// replicate returns n records made from recs, each with a fresh eventID.
func replicate(recs [][]byte, n int) [][]byte {
	out := make([][]byte, 0, n)
	for i := range n {
		r := recs[i%len(recs)]
		j := bytes.Index(r, []byte(`"eventID":"`))
		if j < 0 {
			out = append(out, r)
			continue
		}
		j += len(`"eventID":"`)
		k := j + bytes.IndexByte(r[j:], '"')
		rec := make([]byte, 0, len(r)+4)
		rec = append(rec, r[:j]...)
		rec = fmt.Appendf(rec, "%08x-0000-4000-8000-%012x", i, i)
		out = append(out, append(rec, r[k:]...))
	}
	return out
}

// TestScanBigDocument: a 100,000-event Records document is cut into many
// blocks at record boundaries, each event once and in order.
func TestScanBigDocument(t *testing.T) {
	recs, _ := invictusRecords(t)
	big := replicate(recs, 100_000)
	doc := []byte(`{"Records":[` + string(bytes.Join(big, []byte(",\n"))) + `]}`)
	p := write(t, filepath.Join(t.TempDir(), "big.json"), doc)
	seen := make([]atomic.Bool, len(big))
	// The records are compact and valid: comparing bytes checks both.
	st, err := Scan(context.Background(), []string{p}, ScanOptions{Workers: 2}, func(_ int, batch []RawRecord) error {
		for _, r := range batch {
			if r.File != 0 || r.Index < 0 || r.Index >= int64(len(big)) || !bytes.Equal(r.Data, big[r.Index]) {
				return fmt.Errorf("record %d/%d: %.100q", r.File, r.Index, r.Data)
			}
			if seen[r.Index].Swap(true) {
				return fmt.Errorf("record %d twice", r.Index)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != int64(len(big)) || st.Bytes != int64(len(doc)) {
		t.Fatalf("stats %+v; want %d records of %d bytes", st, len(big), len(doc))
	}
}

// TestScanOrderDeterministic: (File, Index) name the same record whatever
// the number of workers, and Index counts each file's records from 0.
func TestScanOrderDeterministic(t *testing.T) {
	recs, files := invictusRecords(t)
	nd := write(t, filepath.Join(t.TempDir(), "big.ndjson"), ndjson(replicate(recs, 12_000))) // ~15 MB: several blocks
	paths := append([]string{nd}, files[:5]...)
	var first []scanned
	for _, w := range []int{1, 2, 8} {
		got, _, err := scanAll(t, paths, ScanOptions{Workers: w})
		if err != nil {
			t.Fatal(err)
		}
		next := map[int]int64{}
		for _, r := range got {
			if r.Index != next[r.File] {
				t.Fatalf("workers %d: file %d index %d, want %d", w, r.File, r.Index, next[r.File])
			}
			next[r.File]++
		}
		if next[0] != 12_000 || len(next) != 6 {
			t.Fatalf("workers %d: records per file %v", w, next)
		}
		if first == nil {
			first = got
		} else if !slices.Equal(first, got) {
			t.Fatalf("workers %d: a different (File, Index) order than with 1 worker", w)
		}
	}
}

// TestScanKeylessTrail: sealed files and journal, each event once, also
// while the trail is sealed under the scan; a data directory works too.
func TestScanKeylessTrail(t *testing.T) {
	// parent holds a data dir, as a folder of nodes' data dirs or a backup
	// does: the walk must read the trail as a trail, not its journal and
	// seal state as log files.
	parent := t.TempDir()
	data := filepath.Join(parent, "node-a")
	dir := filepath.Join(data, "audit")
	c := newClock(t0)
	tr := openTrail(t, dir, c, &memHead{}, nil)
	b := testBuilder(44, c)
	var mu sync.Mutex
	var acked []string
	record := func(i int) {
		ev := callEvent(t, b, fmt.Sprint("E", i))
		if err := tr.Record(context.Background(), ev, Durable()); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		acked = append(acked, ev.EventID)
		mu.Unlock()
	}
	for i := range 25 {
		record(i)
		if i%10 == 9 {
			c.Advance(7 * time.Minute)
			if err := tr.Seal(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	ids := func(got []scanned) []string {
		var out []string
		for _, r := range got {
			var ev struct{ EventID string }
			if err := json.Unmarshal([]byte(r.Data), &ev); err != nil {
				t.Fatal(err)
			}
			out = append(out, ev.EventID)
		}
		return out
	}
	for _, p := range []string{dir, data, parent} {
		got, st, err := scanAll(t, []string{p}, ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(acked, ids(got)); d != "" {
			t.Fatalf("%s: events (-recorded +scanned):\n%s", p, d)
		}
		if st.Files < 3 {
			t.Errorf("%s: stats %+v: want sealed files and a segment", p, st)
		}
	}

	// Concurrent seals.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 25; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			record(i)
			if i%10 == 9 {
				c.Advance(7 * time.Minute)
				tr.Seal(context.Background())
			}
		}
	})
	for range 20 {
		mu.Lock()
		before := slices.Clone(acked)
		mu.Unlock()
		got, _, err := scanAll(t, []string{data}, ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, id := range ids(got) {
			if seen[id] {
				t.Fatalf("event %s scanned twice", id)
			}
			seen[id] = true
		}
		for _, id := range before {
			if !seen[id] {
				t.Fatalf("acknowledged event %s missing from a later scan", id)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// TestScanTimePruning: files outside Start/End are not opened.
func TestScanTimePruning(t *testing.T) {
	recs, _ := invictusRecords(t)
	tmp := t.TempDir()
	good := []byte(`{"Records":[` + string(recs[0]) + `]}`)
	garbage := []byte("\x00 this would fail if it were opened")
	name := func(ts string) string { return "218007301253_CloudTrail_us-east-1_" + ts + "_abc.json" }
	day := func(d string) string {
		return filepath.Join(tmp, "AWSLogs/218007301253/CloudTrail/us-east-1/2023/07", d)
	}
	write(t, filepath.Join(day("10"), name("20230710T1144Z")), garbage) // holds events < 11:45
	write(t, filepath.Join(day("10"), name("20230710T1145Z")), good)    // may hold 11:45
	write(t, filepath.Join(day("10"), name("20230710T1300Z")), good)    // within End + 1h
	write(t, filepath.Join(day("10"), name("20230710T1301Z")), garbage) // after End + 1h
	write(t, filepath.Join(day("09"), name("20230709T2359Z")), garbage) // a day before Start's
	write(t, filepath.Join(day("12"), "x.json"), garbage)               // two days after End's
	write(t, filepath.Join(day("11"), "noname.json"), good)             // End's day + 1: read
	opts := ScanOptions{
		Start: time.Date(2023, 7, 10, 11, 45, 0, 0, time.UTC),
		End:   time.Date(2023, 7, 10, 12, 0, 0, 0, time.UTC),
	}
	got, st, err := scanAll(t, []string{tmp}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || st.Files != 3 || st.FilesSkipped != 4 {
		t.Fatalf("%d records, stats %+v; want 3 files read, 4 skipped", len(got), st)
	}
	// Without a range everything is opened: the garbage fails.
	if _, _, err := scanAll(t, []string{tmp}, ScanOptions{}); err == nil {
		t.Fatal("the garbage files were not read without a time range")
	}
	// A file named on the command line is pruned too.
	_, st, err = scanAll(t, []string{filepath.Join(day("10"), name("20230710T1144Z"))}, opts)
	if err != nil || st.FilesSkipped != 1 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

// TestScanBadInputs: each bad input names the file and the byte offset.
func TestScanBadInputs(t *testing.T) {
	recs, _ := invictusRecords(t)
	tmp := t.TempDir()
	doc := []byte(`{"Records":[` + string(bytes.Join(recs[:50], []byte(","))) + `]}`)
	gzDoc := gz(t, doc)
	nd := ndjson(recs[:20]) // 20 records, blank lines after the 8th
	badLine := `{"eventID":"x", "oops"}`
	ndBad := slices.Concat(ndjson(recs[:10]), []byte(badLine+"\n"), ndjson(recs[10:20]))
	notObject := slices.Concat(ndjson(recs[:2]), []byte("[1,2]\n"), ndjson(recs[2:4]))
	pos := func(b []byte, sub string) int64 { return int64(bytes.Index(b, []byte(sub))) }
	for _, c := range []struct {
		name    string
		data    []byte
		dir     bool // a link to a directory, named like a log file
		symlink bool
		offset  int64
		msg     string
		// With SkipBad:
		records    int
		badRecords int64
		badFiles   int
	}{
		{name: "truncated.json.gz", data: gzDoc[:len(gzDoc)/2], offset: -1, msg: "gunzip: unexpected EOF (truncated file?)", records: -1, badFiles: 1},
		{name: "truncated.json", data: doc[:len(doc)-1000], offset: int64(len(doc) - 1000), msg: "unexpected end of JSON input (truncated file?)", records: -1, badFiles: 1},
		{name: "garbage.json", data: []byte("\x00\x01\x02binary"), offset: 0, msg: `invalid character '\x00'`, badFiles: 1},
		{name: "text.json", data: []byte("hello, world\n"), offset: 0, msg: `invalid character 'h'`, badFiles: 1},
		{name: "badline.ndjson", data: ndBad, offset: pos(ndBad, badLine) + int64(len(badLine)) - 1, msg: `invalid character '}' after object key`, records: 20, badRecords: 1},
		{name: "notobject.ndjson", data: notObject, offset: pos(notObject, "[1,2]"), msg: "record is not a JSON object", records: 4, badRecords: 1},
		{name: "empty.json", data: nil, offset: -2, records: 0},
		{name: "ok.ndjson", data: nd, offset: -2, records: 20},
		{name: "one-line.ndjson", data: recs[0], offset: -2, records: 1}, // no newline at the end
		{name: "adir.json", dir: true, offset: 0, msg: "is a directory", badFiles: 1},
		{name: "dangling.json", symlink: true, offset: 0, msg: "no such file or directory", badFiles: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(tmp, c.name+".d")
			p := filepath.Join(dir, c.name)
			switch {
			case c.dir:
				os.MkdirAll(filepath.Join(tmp, "target", "sub"), 0o755)
				os.MkdirAll(dir, 0o755)
				if err := os.Symlink(filepath.Join(tmp, "target"), p); err != nil {
					t.Fatal(err)
				}
			case c.symlink:
				os.MkdirAll(dir, 0o755)
				if err := os.Symlink(filepath.Join(tmp, "nowhere"), p); err != nil {
					t.Fatal(err)
				}
			default:
				write(t, p, c.data)
			}
			// The file given directly, and found in a directory walk.
			for _, in := range []string{p, dir} {
				_, st, err := scanAll(t, []string{in}, ScanOptions{})
				if c.offset == -2 {
					if err != nil || st.Records != int64(c.records) {
						t.Fatalf("%s: %v, stats %+v", in, err, st)
					}
					continue
				}
				se, ok := errors.AsType[*ScanError](err)
				if !ok {
					t.Fatalf("%s: error %v, want a *ScanError", in, err)
				}
				if se.File != p || c.offset >= 0 && se.Offset != c.offset || !strings.Contains(se.Error(), c.msg) {
					t.Errorf("%s: error %q (file %s, offset %d), want file %s, offset %d, %q", in, se, se.File, se.Offset, p, c.offset, c.msg)
				}
				want := fmt.Sprintf("audit: %s: byte %d: ", p, se.Offset)
				if _, isPath := errors.AsType[*fs.PathError](se.Err); isPath && se.Offset == 0 {
					want = "audit: " + se.Err.Error() // no byte to point at; the path is in it
				}
				if !strings.HasPrefix(se.Error(), want) {
					t.Errorf("message %q, want it to start with %q", se, want)
				}
			}
			got, st, err := scanAll(t, []string{p}, ScanOptions{SkipBad: true})
			if err != nil {
				t.Fatalf("SkipBad: %v", err)
			}
			if c.records >= 0 && len(got) != c.records || st.BadRecords != c.badRecords || st.BadFiles != c.badFiles {
				t.Errorf("SkipBad: %d records, stats %+v; want %d records, %d bad records, %d bad files", len(got), st, c.records, c.badRecords, c.badFiles)
			}
		})
	}
}

// TestScanStops: fn's error is returned and ends the scan; so does ctx.
func TestScanStops(t *testing.T) {
	recs, files := invictusRecords(t)
	nd := write(t, filepath.Join(t.TempDir(), "big.ndjson"), ndjson(replicate(recs, 20_000)))
	paths := append([]string{nd}, files...)
	boom := errors.New("boom")
	var calls atomic.Int64
	st, err := Scan(context.Background(), paths, ScanOptions{Workers: 2}, func(int, []RawRecord) error {
		calls.Add(1)
		return boom
	})
	if !errors.Is(err, boom) || calls.Load() > 4 || st.Records >= 20_000 {
		t.Fatalf("err %v after %d calls, stats %+v", err, calls.Load(), st)
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls.Store(0)
	start := time.Now()
	st, err = Scan(ctx, paths, ScanOptions{Workers: 2}, func(int, []RawRecord) error {
		if calls.Add(1) == 1 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls.Load() > 4 || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %d calls, %v, stats %+v", err, calls.Load(), time.Since(start), st)
	}
}

// FuzzScanNDJSON: any input either yields valid objects or is counted bad,
// line for line; nothing panics or hangs.
func FuzzScanNDJSON(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n\n{\"b\":[2]}\r\n"))
	f.Add([]byte("{\"Records\":[{\"a\":1},{\"b\":2}]}"))
	f.Add([]byte("{\"Events\":[{\"CloudTrailEvent\":\"{\\\"a\\\":1}\"}]}"))
	f.Add([]byte("[{\"a\":1} , {}]"))
	f.Add([]byte("{\"a\":1}\n{\"a\":\n"))
	f.Add([]byte("{\"a\":\"\x01\"}\n{}"))
	f.Add([]byte("{\"Records\":[{\"a\":1}]} {\"Records\":[{}, {\"b\":\"]}\"}], \"x\": null}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var mu sync.Mutex
		var got []string
		// Blocks of 1 to 64 bytes: records cross block boundaries.
		bs := 1 + len(in)%64
		st, err := Scan(context.Background(), []string{"-"}, ScanOptions{Stdin: bytes.NewReader(in), SkipBad: true, Workers: 2, blockSize: bs},
			func(_ int, batch []RawRecord) error {
				for _, r := range batch {
					if !json.Valid(r.Data) || r.Data[0] != '{' {
						return fmt.Errorf("invalid record %q", r.Data)
					}
					mu.Lock()
					got = append(got, string(compactJSON(t, r.Data)))
					mu.Unlock()
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		// Records documents, one after another: the events encoding/json
		// finds, each once.
		if want, ok := refDocuments(in); ok {
			slices.Sort(got)
			if d := cmp.Diff(want, got); d != "" || st.BadFiles != 0 {
				t.Fatalf("%q: stats %+v, records (-encoding/json +scan):\n%s", in, st, d)
			}
		}
		if st.Records != int64(len(got)) {
			t.Fatalf("stats %+v, %d records seen", st, len(got))
		}
		// NDJSON (not a document): every non-blank line is a record or bad.
		if i := skipSpace(in, 0); i < len(in) && in[i] == '{' && st.BadFiles == 0 {
			var doc bool
			if e := structEnd(in, skipSpace(in, i+1)); e > 0 && in[skipSpace(in, i+1)] == '"' {
				k := string(in[skipSpace(in, i+1):e])
				doc = k == `"Records"` || k == `"Events"`
			}
			if !doc {
				if lines := countLines(in); st.Records+st.BadRecords != lines {
					t.Fatalf("%d lines, stats %+v", lines, st)
				}
			}
		}
	})
}

// refDocuments returns the records of a sequence of {"Records":[...]}
// documents (Records first, each record an object), compact and sorted, as
// encoding/json reads them; false for any other input.
func refDocuments(in []byte) ([]string, bool) {
	dec := json.NewDecoder(bytes.NewReader(in))
	var out []string
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, false
		}
		first := json.NewDecoder(bytes.NewReader(raw))
		if tok, _ := first.Token(); tok != json.Delim('{') {
			return nil, false
		}
		if !bytes.HasPrefix(bytes.TrimLeft(raw[1:], " \t\r\n"), []byte(`"Records"`)) {
			return nil, false
		}
		// One Records key (encoding/json matches keys without case), no
		// Events.
		for n := 0; first.More(); {
			key, _ := first.Token()
			if k, _ := key.(string); strings.EqualFold(k, "records") || strings.EqualFold(k, "events") {
				if n++; n > 1 || k != "Records" {
					return nil, false
				}
			}
			var skip json.RawMessage
			if first.Decode(&skip) != nil {
				return nil, false
			}
		}
		var doc struct{ Records []json.RawMessage }
		if err := json.Unmarshal(raw, &doc); err != nil || doc.Records == nil {
			return nil, false
		}
		for _, r := range doc.Records {
			if r[0] != '{' {
				return nil, false
			}
			var b bytes.Buffer
			json.Compact(&b, r)
			out = append(out, b.String())
		}
	}
	slices.Sort(out)
	return out, len(out) > 0
}

// TestScanProgress: Progress reports running totals while fn is busy.
func TestScanProgress(t *testing.T) {
	var mu sync.Mutex
	var reports []ScanStats
	var once sync.Once
	st, err := Scan(context.Background(), []string{invictusDir}, ScanOptions{
		Workers:  1,
		Progress: func(s ScanStats) { mu.Lock(); reports = append(reports, s); mu.Unlock() },
	}, func(int, []RawRecord) error {
		once.Do(func() { time.Sleep(600 * time.Millisecond) })
		return nil
	})
	if err != nil || st.Records != 2900 {
		t.Fatalf("%v, stats %+v", err, st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) == 0 || reports[0].Records == 0 || reports[0].Files == 0 {
		t.Fatalf("progress reports %+v", reports)
	}
}
