package audit

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestReadOrder: sealed files in delivery order, then pending files, then
// the journal in sequence order.
func TestReadOrder(t *testing.T) {
	dir := t.TempDir()
	head, ids := buildTrail(t, dir)
	c := newClock(t0.Add(5 * time.Hour))
	tr := openTrail(t, dir, c, &memHead{h: head}, nil)
	b := testBuilder(41, c)
	for i := range 8 {
		ev := callEvent(t, b, fmt.Sprint("Window", i))
		if err := tr.Record(context.Background(), ev, Durable()); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.EventID)
		if i == 4 {
			c.Advance(time.Minute)
			if err := tr.Seal(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	tr.crash()
	entries := readAll(t, dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Event.EventID)
	}
	if d := cmp.Diff(ids, got); d != "" {
		t.Fatalf("read order (-recorded +read):\n%s", d)
	}
	// The last three come from the journal with their sequence numbers.
	for i, e := range entries {
		journal := i >= len(entries)-3
		if journal != (e.Seq != 0) || journal != (e.Index == -1) {
			t.Errorf("entry %d: path %s index %d seq %d", i, e.Path, e.Index, e.Seq)
		}
	}
	if e := entries[len(entries)-1]; e.Seq != 48 || filepath.Dir(e.Path) != journalDir {
		t.Errorf("last entry %+v, want journal seq 48", e)
	}
}

// TestReadForeignDirectory reads real CloudTrail files that are not a
// keyless trail (no seal state), gzipped or not.
func TestReadForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("testdata", "real", "invictus-sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "111111111111_CloudTrail_us-east-1_20230710T1145Z_a.json"), raw, 0o644)
	writeGzip(t, filepath.Join(dir, "111111111111_CloudTrail_us-east-1_20230710T1150Z_b.json.gz"), raw)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a log"), 0o644)
	var n int
	var files []string
	for e, err := range Read(context.Background(), dir, ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if len(files) == 0 || files[len(files)-1] != e.Path {
			files = append(files, e.Path)
		}
	}
	if n != 82 || len(files) != 2 || files[0] > files[1] {
		t.Fatalf("read %d events from %v", n, files)
	}
}

// TestFollow tails a trail while it is written and sealed (with digests):
// every event arrives exactly once, in record order.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	tr := openTrail(t, dir, c, &memHead{}, nil)
	b := testBuilder(42, c)
	const total = 300
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var ids []string
	var mu sync.Mutex
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := range total {
			ev := callEvent(t, b, fmt.Sprint("E", i))
			if err := tr.Record(ctx, ev, Durable()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids = append(ids, ev.EventID)
			mu.Unlock()
			if i%25 == 24 {
				c.Advance(17 * time.Minute)
				if err := tr.Seal(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()

	var got []string
	timeout := time.After(20 * time.Second)
	next, stop := iter.Pull2(Read(ctx, dir, ReadOptions{Follow: true, PollInterval: 2 * time.Millisecond}))
	defer stop()
	for len(got) < total {
		select {
		case <-timeout:
			t.Fatalf("followed %d of %d events", len(got), total)
		default:
		}
		e, err, ok := next()
		if !ok {
			t.Fatal("Follow ended early")
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Event.EventID)
	}
	<-writerDone
	mu.Lock()
	defer mu.Unlock()
	if d := cmp.Diff(ids, got); d != "" {
		t.Fatalf("followed events differ (-recorded +followed):\n%s", d)
	}
	if st := tr.Stats(); st.SealedFiles < 10 || st.Digests < 3 {
		t.Errorf("the test did not exercise sealing enough: %+v", st)
	}
	// Nothing more arrives: no duplicates after the last seal either.
	if err := tr.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	extra := make(chan Entry, 1)
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		if e, err, ok := next(); ok && err == nil {
			extra <- e
		}
	}()
	select {
	case e := <-extra:
		t.Fatalf("Follow yielded %s again", e.Event.EventID)
	case <-time.After(100 * time.Millisecond):
	}
	cancel() // ends the follow; next returns, then stop may run
	<-pulled
}

// TestReadConcurrentWithSeal: snapshots taken while the trail is sealed
// under them never duplicate an event and never miss one acknowledged
// before the read started.
func TestReadConcurrentWithSeal(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	tr := openTrail(t, dir, c, &memHead{}, nil)
	b := testBuilder(43, c)
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ev := callEvent(t, b, fmt.Sprint("E", i))
			if err := tr.Record(context.Background(), ev, Durable()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acked = append(acked, ev.EventID)
			mu.Unlock()
			if i%10 == 9 {
				c.Advance(7 * time.Minute)
				tr.Seal(context.Background())
			}
		}
	})
	for range 30 {
		mu.Lock()
		before := slices.Clone(acked)
		mu.Unlock()
		seen := map[string]bool{}
		for e, err := range Read(context.Background(), dir, ReadOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			if seen[e.Event.EventID] {
				t.Fatalf("event %s read twice", e.Event.EventID)
			}
			seen[e.Event.EventID] = true
		}
		for _, id := range before {
			if !seen[id] {
				t.Fatalf("acknowledged event %s missing from a later read", id)
			}
		}
	}
	close(stop)
	wg.Wait()
}
