package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// benchEvents pre-builds events so the benchmarks measure the journal.
func benchEvents(b *testing.B, n int) []*Event {
	bl := testBuilder(61, newClock(t0))
	evs := make([]*Event, n)
	for i := range evs {
		evs[i] = callEvent(b, bl, fmt.Sprint("Bench", i%100))
	}
	return evs
}

// BenchmarkJournalDurable64: 64 concurrent writers, every event durable
// (real fsync on the test's temp directory). ns/op is per event.
func BenchmarkJournalDurable64(b *testing.B) {
	b.ReportAllocs()
	tr := openTrail(b, b.TempDir(), newClock(t0), &memHead{}, nil)
	evs := benchEvents(b, 1024)
	jobs := make(chan *Event, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for ev := range jobs {
				if err := tr.Record(context.Background(), ev, Durable()); err != nil {
					b.Error(err)
				}
			}
		})
	}
	start := time.Now()
	before := tr.Stats()
	i := 0
	for b.Loop() {
		jobs <- evs[i%len(evs)]
		i++
	}
	close(jobs)
	wg.Wait()
	st := tr.Stats()
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(float64(st.Events-before.Events)/elapsed, "events/s")
	b.ReportMetric(float64(st.Fsyncs-before.Fsyncs)/elapsed, "fsyncs/s")
	b.ReportMetric(float64(st.Events-before.Events)/float64(max(1, st.Fsyncs-before.Fsyncs)), "events/fsync")
	tr.crash()
}

// BenchmarkJournalBatched: one writer, batched (non-durable) events.
func BenchmarkJournalBatched(b *testing.B) {
	b.ReportAllocs()
	tr := openTrail(b, b.TempDir(), newClock(t0), &memHead{}, func(o *Options) { o.EnqueueTimeout = time.Minute })
	evs := benchEvents(b, 1024)
	start := time.Now()
	i := 0
	for b.Loop() {
		if err := tr.Record(context.Background(), evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	tr.crash()
}

// BenchmarkSeal10k: sealing 10,000 journal events into a delivery file (read
// segments, build, hash, gzip, index, fsync, state) per op.
func BenchmarkSeal10k(b *testing.B) {
	b.ReportAllocs()
	evs := benchEvents(b, 10000)
	c := newClock(t0)
	tr := openTrail(b, b.TempDir(), c, &memHead{}, func(o *Options) { o.EnqueueTimeout = time.Minute })
	for b.Loop() {
		b.StopTimer()
		for _, ev := range evs {
			if err := tr.Record(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
		}
		// A durable no-op barrier: everything queued is written.
		if err := tr.Record(context.Background(), evs[0], Durable()); err != nil {
			b.Fatal(err)
		}
		c.Advance(time.Minute)
		b.StartTimer()
		if err := tr.Seal(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	st := tr.Stats()
	b.ReportMetric(float64(st.SealedEvents)/float64(b.N), "events/op")
	tr.crash()
}
