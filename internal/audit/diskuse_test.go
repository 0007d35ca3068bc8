package audit

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// dirBytes is the size of every regular file under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			info, err := e.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestDiskCeiling: with max_disk_bytes set, events are accepted until the
// next one would pass the ceiling; the alarm and the shed state come first,
// then events are refused (ErrDiskFull, not a sticky journal failure),
// Ready reports the trail full, and the directory never passes the ceiling.
// A seal compresses the journal and recording resumes.
func TestDiskCeiling(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	probe := openTrail(t, filepath.Join(dir, "probe"), c, &memHead{}, nil)
	base := probe.DiskUse().Bytes
	const budget = 256 << 10
	reg := prometheus.NewRegistry()
	tr := openTrail(t, filepath.Join(dir, "trail"), c, &memHead{}, func(o *Options) {
		o.Disk = DiskLimits{MaxBytes: base + budget, AlarmRatio: 0.8, ShedRatio: 0.9}
		o.Registerer = reg
	})
	b := testBuilder(1, c)
	ctx := context.Background()
	alarmAt, shedAt, fullAt := -1, -1, -1
	for i := 0; i < 1000 && fullAt < 0; i++ {
		if alarmAt < 0 && gaugeValue(t, reg, "keyless_audit_disk_alarm") == 1 {
			alarmAt = i
		}
		if shedAt < 0 && tr.Shedding() {
			shedAt = i
		}
		err := tr.Record(ctx, callEvent(t, b, "GetCallerIdentity"), Durable())
		switch {
		case errors.Is(err, ErrDiskFull):
			fullAt = i
		case err != nil:
			t.Fatalf("event %d: %v", i, err)
		}
	}
	t.Logf("ceiling %d bytes: alarm at event %d, shedding at %d, refused from %d", base+budget, alarmAt, shedAt, fullAt)
	if fullAt < 0 || alarmAt < 0 || shedAt < 0 || !(alarmAt < shedAt && shedAt < fullAt) {
		t.Fatalf("want alarm < shed < refusal, got %d, %d, %d", alarmAt, shedAt, fullAt)
	}
	if got := dirBytes(t, tr.dir); got > base+budget {
		t.Errorf("trail is %d bytes, past its ceiling %d", got, base+budget)
	}
	if err := tr.Ready(); !errors.Is(err, ErrDiskFull) {
		t.Errorf("Ready = %v, want ErrDiskFull", err)
	}
	if tr.Stats().Failed {
		t.Error("the journal fail-stopped: the ceiling must not be sticky")
	}
	if v := gaugeValue(t, reg, "keyless_audit_disk_full"); v != 1 {
		t.Errorf("keyless_audit_disk_full = %v", v)
	}
	if v := gaugeValue(t, reg, "keyless_audit_disk_refused_total"); v != 1 {
		t.Errorf("keyless_audit_disk_refused_total = %v", v)
	}
	if got, want := gaugeValue(t, reg, "keyless_audit_disk_bytes"), float64(tr.DiskUse().Bytes); got != want || got < float64(base+budget-2048) {
		t.Errorf("keyless_audit_disk_bytes = %v (accounting %v, ceiling %d)", got, want, base+budget)
	}
	// Sealing compresses the journal: there is room again.
	if err := tr.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Ready(); err != nil {
		t.Errorf("Ready after seal: %v", err)
	}
	if err := tr.Record(ctx, callEvent(t, b, "GetCallerIdentity"), Durable()); err != nil {
		t.Errorf("Record after seal: %v", err)
	}
	if got, acc := dirBytes(t, tr.dir), tr.DiskUse().Bytes; got > acc+4096 || acc > got+4096 {
		t.Errorf("accounting %d bytes, directory %d", acc, got)
	}
}

// fakeFS is a filesystem whose free space a test sets.
type fakeFS struct {
	free, total atomic.Int64
	stats       atomic.Int64
}

func (f *fakeFS) statfs(string) (uint64, uint64, error) {
	f.stats.Add(1)
	return uint64(f.free.Load()), uint64(f.total.Load()), nil
}

// TestDiskReserve: events that would take the filesystem below
// min_free_bytes are refused; the free space is re-read at most once per
// StatInterval, and recording resumes once space is back.
func TestDiskReserve(t *testing.T) {
	c := newClock(t0)
	fsys := &fakeFS{}
	const reserve = 100 << 20
	fsys.total.Store(1 << 30)
	fsys.free.Store(reserve + 32<<10)
	tr := openTrail(t, t.TempDir(), c, &memHead{}, func(o *Options) {
		o.Disk = DiskLimits{MinFreeBytes: reserve, StatInterval: time.Second, Statfs: fsys.statfs}
	})
	if du := tr.DiskUse(); !du.Alarm || !du.Shedding || du.Fill < 0.99 {
		t.Errorf("a filesystem 32 KiB above its reserve: %+v", du)
	}
	if err := tr.Ready(); !errors.Is(err, ErrDiskFull) {
		t.Errorf("Ready = %v: under 64 KiB of headroom", err)
	}
	b := testBuilder(1, c)
	ctx := context.Background()
	n := 0
	for ; n < 100; n++ {
		err := tr.Record(ctx, callEvent(t, b, "GetCallerIdentity"), Durable())
		if errors.Is(err, ErrDiskFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n == 0 || n == 100 {
		t.Fatalf("%d events before the reserve", n)
	}
	stats := fsys.stats.Load()
	for range 50 {
		_ = tr.Record(ctx, callEvent(t, b, "GetCallerIdentity"))
	}
	if got := fsys.stats.Load(); got != stats {
		t.Errorf("%d statfs calls within one StatInterval", got-stats)
	}
	// The operator frees space; the next event after StatInterval sees it.
	fsys.free.Store(900 << 20)
	if err := tr.Record(ctx, callEvent(t, b, "GetCallerIdentity")); !errors.Is(err, ErrDiskFull) {
		t.Errorf("accepted before the free space was re-read: %v", err)
	}
	c.Advance(2 * time.Second)
	if err := tr.Record(ctx, callEvent(t, b, "GetCallerIdentity"), Durable()); err != nil {
		t.Errorf("after space came back: %v", err)
	}
	if du := tr.DiskUse(); du.Alarm || du.Shedding || du.Full {
		t.Errorf("after space came back: %+v", du)
	}
}

func TestDiskLimitsFill(t *testing.T) {
	tests := []struct {
		name              string
		limits            DiskLimits
		used, free, total int64
		want              float64
	}{
		{"no limits", DiskLimits{}, 1 << 30, 1 << 20, 1 << 40, 0},
		{"ceiling", DiskLimits{MaxBytes: 1000}, 800, 0, 0, 0.8},
		{"reserve", DiskLimits{MinFreeBytes: 100}, 0, 280, 1100, 0.82},
		{"larger of both", DiskLimits{MaxBytes: 1000, MinFreeBytes: 100}, 500, 280, 1100, 0.82},
		{"filesystem smaller than reserve", DiskLimits{MinFreeBytes: 100}, 0, 50, 90, 2},
	}
	for _, tt := range tests {
		d := &diskUse{limits: tt.limits}
		d.used.Store(tt.used)
		d.free.Store(tt.free)
		d.total.Store(tt.total)
		got := d.fillRatio()
		if got > 1 && tt.want > 1 {
			continue
		}
		if diff := got - tt.want; diff > 1e-9 || diff < -1e-9 {
			t.Errorf("%s: fill = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDiskCeilingConcurrent: events recorded together cannot pass the
// ceiling: each one's frame is reserved before it is queued.
func TestDiskCeilingConcurrent(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	probe := openTrail(t, filepath.Join(dir, "probe"), c, &memHead{}, nil)
	ceiling := probe.DiskUse().Bytes + 128<<10
	tr := openTrail(t, filepath.Join(dir, "trail"), c, &memHead{}, func(o *Options) {
		o.Disk = DiskLimits{MaxBytes: ceiling}
	})
	b := testBuilder(1, c)
	ev := callEvent(t, b, "GetCallerIdentity")
	ctx := context.Background()
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for g := range 32 {
		wg.Go(func() {
			for {
				var err error
				if g%2 == 0 {
					err = tr.Record(ctx, ev, Durable())
				} else {
					err = tr.Record(ctx, ev)
				}
				if errors.Is(err, ErrDiskFull) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	// The batched events are written (not necessarily synced) by now or
	// within FlushDelay.
	deadline := time.Now().Add(5 * time.Second)
	for tr.Stats().Events < uint64(accepted.Load()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := dirBytes(t, tr.dir); got > ceiling {
		t.Errorf("trail is %d bytes after %d concurrent events, ceiling %d", got, accepted.Load(), ceiling)
	}
	if p := tr.disk.pending.Load(); p != 0 {
		t.Errorf("%d bytes still reserved after every event was written", p)
	}
}
