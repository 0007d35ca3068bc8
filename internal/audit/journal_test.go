package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// countingSync counts fsyncs of journal segments and can slow them down.
type countingSync struct {
	delay    time.Duration
	segSyncs atomic.Int64
}

func (c *countingSync) Sync(f *os.File) error {
	if filepath.Ext(f.Name()) == segmentExt {
		c.segSyncs.Add(1)
		if c.delay > 0 {
			time.Sleep(c.delay)
		}
	}
	return f.Sync()
}

// TestGroupCommit: 64 concurrent durable writers share far fewer fsyncs
// than events, and every acknowledged event is in the journal.
func TestGroupCommit(t *testing.T) {
	const writers, perWriter = 64, 20
	cs := &countingSync{delay: 3 * time.Millisecond}
	tr := openTrail(t, t.TempDir(), newClock(t0), &memHead{}, func(o *Options) { o.Sync = cs.Sync })
	b := testBuilder(2, tr.clock)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				ev := callEvent(t, b, fmt.Sprintf("W%dE%d", w, i))
				if err := tr.Record(context.Background(), ev, Durable()); err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, ev.EventID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st := tr.Stats()
	total := writers * perWriter
	if st.DurableEvents != uint64(total) || st.Events != uint64(total) {
		t.Fatalf("stats %+v, want %d durable events", st, total)
	}
	// Without group commit there would be one fsync per event (1280).
	// With 64 writers blocked behind each 3 ms fsync, batches hold tens of
	// events; allow a generous bound so a loaded machine does not flake.
	if limit := uint64(total / 8); st.Fsyncs > limit {
		t.Errorf("%d fsyncs for %d durable events, want at most %d", st.Fsyncs, total, limit)
	}
	if got := cs.segSyncs.Load(); got != int64(st.Fsyncs) {
		t.Errorf("injected sync saw %d segment fsyncs, stats say %d", got, st.Fsyncs)
	}
	t.Logf("%d durable events, %d fsyncs (%.1f events per fsync), %d write batches", total, st.Fsyncs, float64(total)/float64(st.Fsyncs), st.Batches)

	tr.crash()
	ids := journalIDs(t, tr.dir)
	slices.Sort(acked)
	if !slices.Equal(ids, acked) {
		t.Fatalf("journal holds %d events, %d acknowledged", len(ids), len(acked))
	}
}

// TestGroupCommitWindowOnlyUnderLoad: a long window is not waited for by a
// lone caller or a couple of concurrent ones (their groups stay small), and
// is used when many callers share each fsync.
func TestGroupCommitWindowOnlyUnderLoad(t *testing.T) {
	const window = 300 * time.Millisecond
	run := func(t *testing.T, writers, perWriter int, delay time.Duration) (time.Duration, Stats) {
		cs := &countingSync{delay: delay}
		tr := openTrail(t, t.TempDir(), newClock(t0), &memHead{}, func(o *Options) {
			o.Sync = cs.Sync
			o.GroupCommitWindow = window
		})
		defer tr.crash()
		b := testBuilder(3, tr.clock)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprintf("W%dE%d", w, i)), Durable()); err != nil {
						t.Errorf("Record: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start), tr.Stats()
	}
	// 2 writers behind a 2 ms fsync, 10 events each (about 1,000 events/s):
	// with the window each round would take 300 ms (3 s in all); without
	// it, a few milliseconds each.
	if took, _ := run(t, 2, 10, 2*time.Millisecond); took > 1500*time.Millisecond {
		t.Errorf("light load took %s: the window was waited for", took)
	}
	// 64 writers behind a 5 ms fsync (about 12,000 events/s): from the
	// third fsync on the window gathers every writer into each fsync.
	_, st := run(t, 64, 4, 5*time.Millisecond)
	if perSync := float64(st.DurableEvents) / float64(st.Fsyncs); perSync < 32 {
		t.Errorf("%.1f events per fsync under load, want the window to gather most of the 64 writers", perSync)
	}
}

// journalIDs returns the sorted eventIDs found in a directory's journal.
func journalIDs(t testing.TB, dir string) []string {
	t.Helper()
	var ids []string
	for e, err := range Read(context.Background(), dir, ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.Event.EventID)
	}
	slices.Sort(ids)
	return ids
}

// gateSync blocks segment fsyncs until released.
type gateSync struct {
	entered chan struct{}
	release chan struct{}
}

func newGateSync() *gateSync {
	return &gateSync{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gateSync) Sync(f *os.File) error {
	if filepath.Ext(f.Name()) == segmentExt {
		g.entered <- struct{}{}
		<-g.release
	}
	return nil
}

// TestDurableWaitsForFsync: a durable Record does not return before its
// fsync completes; a batched one returns at once.
func TestDurableWaitsForFsync(t *testing.T) {
	g := newGateSync()
	tr := openTrail(t, t.TempDir(), newClock(t0), &memHead{}, func(o *Options) { o.Sync = g.Sync; o.FlushDelay = time.Hour })
	b := testBuilder(3, tr.clock)

	if err := tr.Record(context.Background(), callEvent(t, b, "Batched")); err != nil {
		t.Fatalf("batched Record: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- tr.Record(context.Background(), callEvent(t, b, "Durable"), Durable()) }()
	<-g.entered // the writer is inside fsync
	select {
	case err := <-done:
		t.Fatalf("durable Record returned (%v) while its fsync was still running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("durable Record: %v", err)
	}
}

// TestBatchedFlushDelay: batched events reach the disk within FlushDelay,
// with one fsync for the whole burst.
func TestBatchedFlushDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := &countingSync{}
		tr := openTrail(t, t.TempDir(), newClock(t0), &memHead{}, func(o *Options) {
			o.Sync = cs.Sync
			o.FlushDelay = 200 * time.Millisecond
			o.Now = time.Now
		})
		b := testBuilder(4, tr.clock)
		for i := range 50 {
			if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprint("E", i))); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if n := cs.segSyncs.Load(); n != 0 {
			t.Fatalf("%d fsyncs before the flush delay", n)
		}
		time.Sleep(199 * time.Millisecond)
		synctest.Wait()
		if n := cs.segSyncs.Load(); n != 0 {
			t.Fatalf("%d fsyncs before the flush delay elapsed", n)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if n := cs.segSyncs.Load(); n != 1 {
			t.Fatalf("%d fsyncs after the flush delay, want 1", n)
		}
		if st := tr.Stats(); st.Events != 50 || st.DurableEvents != 0 {
			t.Fatalf("stats %+v", st)
		}
		tr.crash()
	})
}

// TestBackpressure: with a stalled disk the queue fills, then Record fails
// with ErrBackpressure after EnqueueTimeout (or with the context's error),
// holding at most QueueSize events in memory.
func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGateSync()
		tr := openTrail(t, t.TempDir(), newClock(t0), &memHead{}, func(o *Options) {
			o.Sync = g.Sync
			o.QueueSize = 4
			o.EnqueueTimeout = 3 * time.Second
			o.Now = time.Now
		})
		b := testBuilder(5, tr.clock)
		ctx := context.Background()
		errs := make(chan error, 10)
		// One durable event takes the writer into the stalled fsync.
		go func() { errs <- tr.Record(ctx, callEvent(t, b, "First"), Durable()) }()
		<-g.entered
		// Four more fill the queue.
		for i := range 4 {
			go func() { errs <- tr.Record(ctx, callEvent(t, b, fmt.Sprint("Q", i)), Durable()) }()
		}
		synctest.Wait()
		if d := tr.Stats().QueueDepth; d != 4 {
			t.Fatalf("queue depth %d, want 4", d)
		}
		start := time.Now()
		err := tr.Record(ctx, callEvent(t, b, "Overflow"))
		if !errors.Is(err, ErrBackpressure) {
			t.Fatalf("Record on a full queue: %v, want ErrBackpressure", err)
		}
		if waited := time.Since(start); waited != 3*time.Second {
			t.Errorf("waited %v, want the 3s EnqueueTimeout", waited)
		}
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err = tr.Record(cctx, callEvent(t, b, "Deadline"))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Record with a deadline: %v, want DeadlineExceeded", err)
		}
		st := tr.Stats()
		if st.Backpressure != 2 || st.Rejected != 2 || st.QueueDepth != 4 {
			t.Errorf("stats %+v", st)
		}
		close(g.release) // the disk recovers
		for range 5 {
			if err := <-errs; err != nil {
				t.Errorf("queued durable Record: %v", err)
			}
		}
		if err := tr.Record(ctx, callEvent(t, b, "After"), Durable()); err != nil {
			t.Fatalf("Record after recovery: %v", err)
		}
		tr.crash()
	})
}

// TestFsyncFailureIsFailStop: after an fsync error no event is acknowledged.
func TestFsyncFailureIsFailStop(t *testing.T) {
	boom := errors.New("EIO")
	var fail atomic.Bool
	tr := openTrail(t, t.TempDir(), newClock(t0), &memHead{}, func(o *Options) {
		o.Sync = func(f *os.File) error {
			if fail.Load() && filepath.Ext(f.Name()) == segmentExt {
				return boom
			}
			return f.Sync()
		}
	})
	b := testBuilder(6, tr.clock)
	if err := tr.Record(context.Background(), callEvent(t, b, "Ok"), Durable()); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	err := tr.Record(context.Background(), callEvent(t, b, "Fails"), Durable())
	if !errors.Is(err, ErrJournalFailed) || !errors.Is(err, boom) {
		t.Fatalf("Record during fsync failure: %v", err)
	}
	fail.Store(false)
	if err := tr.Record(context.Background(), callEvent(t, b, "Later")); !errors.Is(err, ErrJournalFailed) {
		t.Fatalf("Record after failure: %v, want ErrJournalFailed", err)
	}
	if err := tr.Ready(); !errors.Is(err, ErrJournalFailed) {
		t.Fatalf("Ready: %v", err)
	}
	if !tr.Stats().Failed {
		t.Error("Stats.Failed false")
	}
}

func TestRecordValidation(t *testing.T) {
	tr := openTrail(t, t.TempDir(), newClock(t0), &memHead{}, func(o *Options) { o.MaxEventBytes = 2048 })
	b := testBuilder(7, tr.clock)
	ctx := context.Background()
	big := callEvent(t, b, "Big")
	big.RequestParameters = map[string]any{"policy": string(bytes.Repeat([]byte("x"), 4096))}
	for name, tc := range map[string]struct {
		ev   *Event
		want error
	}{
		"nil":        {nil, ErrInvalidEvent},
		"no eventID": {&Event{EventTime: t0}, ErrInvalidEvent},
		"no time":    {&Event{EventID: "x"}, ErrInvalidEvent},
		"too large":  {big, ErrEventTooLarge},
	} {
		if err := tr.Record(ctx, tc.ev); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Record(ctx, callEvent(t, b, "Late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close: %v", err)
	}
	if err := tr.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	openTrail(t, dir, newClock(t0), &memHead{}, nil)
	_, err := Open(context.Background(), testOptions(t, dir, newClock(t0), &memHead{}))
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

// TestTornTail writes damaged data after the last good frame, reopens, and
// checks that exactly the good frames survive and the trail verifies.
func TestTornTail(t *testing.T) {
	frame := appendFrame(nil, 999, &chainHash{}, []byte(`{"eventID":"torn","eventTime":"2025-01-01T00:00:00Z"}`))
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, seg string)
		lost   int // acknowledged-looking frames lost with the tail
	}{
		{"partial header", func(t *testing.T, seg string) { appendBytes(t, seg, frame[:7]) }, 0},
		{"partial payload", func(t *testing.T, seg string) { appendBytes(t, seg, frame[:frameHeaderSize+9]) }, 0},
		{"garbage", func(t *testing.T, seg string) {
			appendBytes(t, seg, []byte("\x13\x37garbage that is not a frame\xff\xfe"))
		}, 0},
		{"zeros", func(t *testing.T, seg string) { appendBytes(t, seg, make([]byte, 4096)) }, 0},
		{"huge length", func(t *testing.T, seg string) { appendBytes(t, seg, []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4}) }, 0},
		{"bad checksum in last frame", func(t *testing.T, seg string) {
			b, _ := os.ReadFile(seg)
			b[len(b)-3] ^= 0x40
			if err := os.WriteFile(seg, b, 0o640); err != nil {
				t.Fatal(err)
			}
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := newClock(t0)
			head := &memHead{}
			tr := openTrail(t, dir, c, head, nil)
			b := testBuilder(8, c)
			var ids []string
			for i := range 5 {
				ev := callEvent(t, b, fmt.Sprint("E", i))
				if err := tr.Record(context.Background(), ev, Durable()); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, ev.EventID)
			}
			tr.crash()
			segs := segments(t, dir)
			last := segs[len(segs)-1]
			before, _ := os.Stat(last)
			tc.damage(t, last)

			tr2 := openTrail(t, dir, c, head, nil)
			if n := tr2.Stats().TornTails; n != 1 {
				t.Fatalf("TornTails = %d, want 1", n)
			}
			after, _ := os.Stat(last)
			if tc.lost == 0 && after.Size() != before.Size() {
				t.Errorf("segment is %d bytes after truncation, was %d before the damage", after.Size(), before.Size())
			}
			ids = ids[:len(ids)-tc.lost]
			ev := callEvent(t, b, "AfterReopen")
			if err := tr2.Record(context.Background(), ev, Durable()); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ev.EventID)
			c.Advance(time.Minute)
			if err := tr2.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			slices.Sort(ids)
			if got := journalIDs(t, dir); !slices.Equal(got, ids) {
				t.Errorf("events after reopen = %v, want %v", got, ids)
			}
			if rep := verifyTrail(t, dir, head.get()); !rep.Intact {
				t.Errorf("trail does not verify:\n%s", rep)
			}
		})
	}
}

func appendBytes(t *testing.T, p string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptionBeforeValidFramesRefusesOpen: damage followed by valid
// frames is not a torn write; truncating would drop acknowledged events.
func TestCorruptionBeforeValidFramesRefusesOpen(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	tr := openTrail(t, dir, c, &memHead{}, nil)
	b := testBuilder(9, c)
	for i := range 3 {
		if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprint("E", i)), Durable()); err != nil {
			t.Fatal(err)
		}
	}
	tr.crash()
	seg := segments(t, dir)[0]
	data, _ := os.ReadFile(seg)
	data[len(segMagic)+frameHeaderSize+5] ^= 1 // inside the first frame's payload
	if err := os.WriteFile(seg, data, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), testOptions(t, dir, c, &memHead{}))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
	rep := verifyTrail(t, dir, nil)
	if !hasProblem(rep, ProblemJournalCorrupt, "journal/"+filepath.Base(seg)) {
		t.Errorf("verify does not report the corrupt journal:\n%s", rep)
	}
}

// TestEmptySegmentsRemoved: segments created but never written (a crash
// right after a rotation) are removed on open.
func TestEmptySegmentsRemoved(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	tr := openTrail(t, dir, c, &memHead{}, nil)
	if err := tr.Record(context.Background(), callEvent(t, testBuilder(1, c), "E"), Durable()); err != nil {
		t.Fatal(err)
	}
	tr.crash()
	// The crash left the initial segment with one frame; add an empty one
	// and one with only part of the magic.
	for name, content := range map[string]string{segmentName(2): "", segmentName(3): segMagic[:3]} {
		if err := os.WriteFile(filepath.Join(dir, journalDir, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	tr2 := openTrail(t, dir, c, &memHead{}, nil)
	segs := segments(t, dir)
	if len(segs) != 2 || filepath.Base(segs[1]) != segmentName(2) {
		t.Fatalf("segments after open: %v", segs)
	}
	if err := tr2.Record(context.Background(), callEvent(t, testBuilder(2, c), "F"), Durable()); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr := openTrail(t, t.TempDir(), newClock(t0), &memHead{}, func(o *Options) { o.Registerer = reg })
	b := testBuilder(10, tr.clock)
	for i := range 3 {
		if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprint("E", i)), Durable()); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			got[mf.GetName()] = m.Counter.GetValue()
		case m.Gauge != nil:
			got[mf.GetName()] = m.Gauge.GetValue()
		case m.Histogram != nil:
			got[mf.GetName()] = float64(m.Histogram.GetSampleCount())
		}
	}
	st := tr.Stats()
	for name, want := range map[string]float64{
		"keyless_audit_events_total":          3,
		"keyless_audit_durable_events_total":  3,
		"keyless_audit_journal_fsyncs_total":  float64(st.Fsyncs),
		"keyless_audit_journal_fsync_seconds": float64(st.Fsyncs),
		"keyless_audit_queue_capacity":        8192,
		"keyless_audit_journal_failed":        0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Close unregisters, so a new trail can use the same registry.
	openTrail(t, t.TempDir(), newClock(t0), &memHead{}, func(o *Options) { o.Registerer = reg })
}

func hasProblem(rep *Report, kind ProblemKind, path string) bool {
	for _, p := range rep.Problems {
		if p.Kind == kind && (path == "" || p.Path == path) {
			return true
		}
	}
	return false
}
