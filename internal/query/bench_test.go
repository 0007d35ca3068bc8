package query

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/keylessci/keyless/internal/audit"
)

// benchRecords replicates the real invictus events (fresh eventIDs) to
// about 64 MB, in memory.
func benchRecords(b *testing.B) ([]audit.RawRecord, int64) {
	b.Helper()
	evs := loadInvictus(b)
	var recs []audit.RawRecord
	var total int64
	for rep := 0; total < 64<<20; rep++ {
		for i, e := range evs {
			id := []byte(`"eventID":"`)
			j := bytes.Index(e, id)
			var d []byte
			if j < 0 {
				d = e
			} else {
				k := j + len(id) + bytes.IndexByte(e[j+len(id):], '"')
				d = append(append(append([]byte{}, e[:j+len(id)]...), fmt.Sprintf("r%d-%d", rep, i)...), e[k:]...)
			}
			recs = append(recs, audit.RawRecord{Data: d, File: rep, Index: int64(i)})
			total += int64(len(d))
		}
	}
	return recs, total
}

func benchQuery(b *testing.B, src string) {
	recs, total := benchRecords(b)
	q, err := Parse(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("1core", func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		for b.Loop() {
			w := newWorker(q.compile(Options{}))
			for i := range recs {
				w.record(&recs[i])
			}
		}
		b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("parallel", func(b *testing.B) {
		evs := make([][]byte, len(recs))
		for i := range recs {
			evs[i] = recs[i].Data
		}
		b.SetBytes(total)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := runEvents(q, evs, runtime.GOMAXPROCS(0), 512, Options{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

func BenchmarkQueryFilterLike(b *testing.B) { benchQuery(b, `filter eventName like "AssumeRole"`) }

func BenchmarkQueryFilterLikeNoPrefilter(b *testing.B) {
	benchQuery(b, `filter eventName like "AssumeRole" or eventName like "AssumeRole"`)
}

func BenchmarkQueryStatsBy(b *testing.B) { benchQuery(b, `stats count(*) by eventSource`) }

func BenchmarkQuerySortLimit(b *testing.B) {
	benchQuery(b, `fields eventTime, eventName, userIdentity.arn | sort eventName desc | limit 20`)
}

func BenchmarkQueryDeepField(b *testing.B) {
	benchQuery(b, `filter userIdentity.sessionContext.sessionIssuer.arn like "role/" | stats count(*) by userIdentity.sessionContext.sessionIssuer.userName`)
}

// BenchmarkRunNDJSON is the whole pipeline: audit.Scan over an NDJSON file
// of the replicated events, then the query.
func BenchmarkRunNDJSON(b *testing.B) {
	recs, total := benchRecords(b)
	var buf bytes.Buffer
	for _, r := range recs {
		buf.Write(r.Data)
		buf.WriteByte('\n')
	}
	path := b.TempDir() + "/events.ndjson"
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, src := range []string{`filter eventName like "AssumeRole"`, `stats count(*) by eventSource`} {
		q, err := Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src, func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.Run(context.Background(), []string{path}, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
