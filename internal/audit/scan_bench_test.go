package audit

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// The scan benchmarks read data made from the invictus records, replicated
// with fresh eventIDs, from b.TempDir() (in the page cache after the first
// iteration). b.SetBytes is the uncompressed JSON size, so MB/s is JSON
// scanned per second. The trivial fn only counts.

func benchScan(b *testing.B, paths []string, size int64, want int64) {
	b.Helper()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		st, err := Scan(context.Background(), paths, ScanOptions{Workers: 2}, func(int, []RawRecord) error { return nil })
		if err != nil || st.Records != want {
			b.Fatalf("%v, stats %+v, want %d records", err, st, want)
		}
	}
}

// BenchmarkScanNDJSON: one ~260 MB NDJSON file.
func BenchmarkScanNDJSON(b *testing.B) {
	recs, _ := invictusRecords(b)
	const n = 200_000
	data := ndjson(replicate(recs, n))
	p := write(b, filepath.Join(b.TempDir(), "big.ndjson"), data)
	benchScan(b, []string{p}, int64(len(data)), n)
}

// BenchmarkScanGzFiles: 300 gzipped delivery files of 300 events each.
func BenchmarkScanGzFiles(b *testing.B) {
	recs, _ := invictusRecords(b)
	const files, per = 300, 300
	all := replicate(recs, files*per)
	dir := b.TempDir()
	var size int64
	for i := range files {
		doc := []byte(`{"Records":[` + string(bytes.Join(all[i*per:(i+1)*per], []byte(","))) + `]}`)
		size += int64(len(doc))
		write(b, filepath.Join(dir, fmt.Sprintf("218007301253_CloudTrail_us-east-1_20230710T%02d%02dZ_f%04d.json.gz", i/60%24, i%60, i)), gz(b, doc))
	}
	benchScan(b, []string{dir}, size, files*per)
}

func bigDocument(b *testing.B) []byte {
	recs, _ := invictusRecords(b)
	return []byte(`{"Records":[` + string(bytes.Join(replicate(recs, 100_000), []byte(","))) + `]}`)
}

// BenchmarkScanBigDocument: one 100,000-event Records document.
func BenchmarkScanBigDocument(b *testing.B) {
	doc := bigDocument(b)
	p := write(b, filepath.Join(b.TempDir(), "big.json"), doc)
	benchScan(b, []string{p}, int64(len(doc)), 100_000)
}

// BenchmarkScanBigDocumentGz: the same, gzipped.
func BenchmarkScanBigDocumentGz(b *testing.B) {
	doc := bigDocument(b)
	p := write(b, filepath.Join(b.TempDir(), "big.json.gz"), gz(b, doc))
	benchScan(b, []string{p}, int64(len(doc)), 100_000)
}

// BenchmarkValidator: the splitter alone, on one core.
func BenchmarkValidator(b *testing.B) {
	recs, _ := invictusRecords(b)
	data := bytes.Join(recs, []byte("\n"))
	b.SetBytes(int64(len(data)))
	var v validator
	for b.Loop() {
		for i := 0; i < len(data); {
			end, err := v.value(data, i)
			if err != nil {
				b.Fatal(err)
			}
			i = skipSpace(data, end)
		}
	}
}
