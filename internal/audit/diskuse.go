package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DiskLimits bound the disk space a trail may use ([Options].Disk).
//
// The fill of a trail is the larger of its size over MaxBytes and the share
// of its filesystem in use above the MinFreeBytes reserve
// ((total−free)/(total−reserve)). From AlarmRatio the alarm gauge
// (keyless_audit_disk_alarm) is 1 and a warning is logged; from ShedRatio
// [Trail.Shedding] reports true, and callers stop recording events they
// may summarise instead (requests refused before authentication); at the
// limit itself — an event that would take the trail past MaxBytes or the
// filesystem below MinFreeBytes — Record and Start fail with ErrDiskFull,
// so that whoever needs a record (credentials, changes) refuses instead of
// acting unrecorded, and [Trail.Ready] reports the trail not ready.
//
// The accounting is cheap: the trail's size is measured by walking its
// directory at Open and after each seal, and grows by the bytes the journal
// writes in between; the filesystem's free space is read at most once per
// StatInterval. Sealing itself is not refused at the limit (it shrinks the
// journal into compressed files), so the trail may pass MaxBytes by about
// one seal's delivery files.
type DiskLimits struct {
	// MaxBytes is the ceiling of the trail directory's size (0: none).
	MaxBytes int64
	// MinFreeBytes is the free space left on the trail's filesystem
	// (0: none).
	MinFreeBytes int64
	// AlarmRatio is the fill that raises the alarm (default 0.8).
	AlarmRatio float64
	// ShedRatio is the fill from which Shedding reports true (default
	// 0.9).
	ShedRatio float64
	// StatInterval is how often the filesystem's free space is re-read
	// (default 1s).
	StatInterval time.Duration
	// Statfs reports the free (available to unprivileged users) and total
	// bytes of dir's filesystem; default the operating system's. Tests
	// inject a fake filesystem.
	Statfs func(dir string) (free, total uint64, err error)
}

// ErrDiskFull reports an event refused because recording it would take the
// trail past its disk ceiling or its filesystem below its reserve. Unlike
// ErrJournalFailed it is not sticky: recording resumes when space is back.
var ErrDiskFull = errors.New("audit: disk limit reached")

// readyHeadroom is the space below which Ready reports the trail full.
const readyHeadroom = 64 << 10

func (l *DiskLimits) fill() {
	if l.AlarmRatio <= 0 {
		l.AlarmRatio = 0.8
	}
	if l.ShedRatio <= 0 {
		l.ShedRatio = 0.9
	}
	if l.StatInterval <= 0 {
		l.StatInterval = time.Second
	}
	if l.Statfs == nil {
		l.Statfs = statfs
	}
}

// diskUse tracks a trail's disk use against its limits.
type diskUse struct {
	limits DiskLimits
	dir    string
	now    func() time.Time
	log    *slog.Logger

	used     atomic.Int64 // bytes under dir: last scan plus written since
	free     atomic.Int64 // filesystem free bytes: last stat minus written since
	pending  atomic.Int64 // bytes admitted but not yet written
	total    atomic.Int64 // filesystem size (0: unknown)
	lastStat atomic.Int64 // Unix ns of the last stat
	statMu   sync.Mutex   // one stat at a time
	noStat   bool         // the filesystem cannot be asked: reserve not enforced

	refused  atomic.Uint64 // events refused at the limit
	alarmed  atomic.Bool   // last logged state, for transitions
	atLimit  atomic.Bool
	shedding atomic.Bool
}

func newDiskUse(dir string, limits DiskLimits, now func() time.Time, log *slog.Logger) (*diskUse, error) {
	limits.fill()
	d := &diskUse{limits: limits, dir: dir, now: now, log: log}
	if _, _, err := limits.Statfs(dir); errors.Is(err, errStatfsUnsupported) {
		d.noStat = true
		if limits.MinFreeBytes > 0 {
			log.Warn("audit: free space cannot be read on this platform; min_free_bytes is not enforced")
		}
	}
	if err := d.rescan(); err != nil {
		return nil, err
	}
	return d, nil
}

// rescan measures the trail directory and the filesystem again.
func (d *diskUse) rescan() error {
	var size int64
	err := filepath.WalkDir(d.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile (a sealed segment)
			}
			return err
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				size += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: measure trail size: %w", err)
	}
	d.used.Store(size)
	d.stat(true)
	return nil
}

// stat re-reads the filesystem's free space when it is older than
// StatInterval (or when forced).
func (d *diskUse) stat(force bool) {
	if d.noStat {
		return
	}
	now := d.now().UnixNano()
	if !force && now-d.lastStat.Load() < int64(d.limits.StatInterval) {
		return
	}
	if !d.statMu.TryLock() {
		return // another goroutine is reading it
	}
	defer d.statMu.Unlock()
	free, total, err := d.limits.Statfs(d.dir)
	if err != nil {
		if !errors.Is(err, errStatfsUnsupported) {
			d.log.Warn("audit: reading the filesystem's free space failed", "err", err)
		}
		return
	}
	d.free.Store(clampInt64(free))
	d.total.Store(clampInt64(total))
	d.lastStat.Store(now)
	d.levels()
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// fillRatio is the fill described at DiskLimits.
func (d *diskUse) fillRatio() float64 {
	f := 0.0
	if m := d.limits.MaxBytes; m > 0 {
		f = float64(d.used.Load()) / float64(m)
	}
	if r := d.limits.MinFreeBytes; r > 0 && !d.noStat {
		if total := d.total.Load(); total > 0 {
			usable := total - r
			if usable <= 0 {
				return math.Inf(1)
			}
			f = max(f, float64(total-d.free.Load())/float64(usable))
		}
	}
	return f
}

// headroom is how many more bytes may be admitted before the limit, or
// math.MaxInt64 when there is no limit.
func (d *diskUse) headroom() int64 { return d.headroomWith(d.pending.Load()) }

func (d *diskUse) headroomWith(pending int64) int64 {
	h := int64(math.MaxInt64)
	if m := d.limits.MaxBytes; m > 0 {
		h = m - d.used.Load() - pending
	}
	if r := d.limits.MinFreeBytes; r > 0 && !d.noStat && d.total.Load() > 0 {
		h = min(h, d.free.Load()-pending-r)
	}
	return h
}

// admit reserves the n bytes of an event's frame before it is queued, so
// that events in flight together cannot pass the limit; the writer's wrote
// (or release, when the event is not queued after all) settles it.
func (d *diskUse) admit(n int) error {
	if d == nil {
		return nil
	}
	for restat := true; ; {
		p := d.pending.Load()
		if d.headroomWith(p) >= int64(n) {
			if d.pending.CompareAndSwap(p, p+int64(n)) {
				return nil
			}
			continue
		}
		if !restat {
			break
		}
		// Space may have come back (files moved away by the operator):
		// read the filesystem again before refusing.
		restat = false
		d.stat(false)
	}
	d.refused.Add(1)
	d.levels()
	return fmt.Errorf("%w: an event of %d bytes does not fit (trail %d bytes of max_disk_bytes %d; filesystem %d bytes free, reserve %d)",
		ErrDiskFull, n, d.used.Load(), d.limits.MaxBytes, d.free.Load(), d.limits.MinFreeBytes)
}

// release returns the reservation of an admitted event that was not
// queued.
func (d *diskUse) release(n int) {
	if d != nil {
		d.pending.Add(-int64(n))
	}
}

// wrote accounts for n bytes of admitted frames the journal wrote.
func (d *diskUse) wrote(n int) {
	if d == nil {
		return
	}
	d.used.Add(int64(n))
	d.free.Add(-int64(n))
	d.pending.Add(-int64(n))
	d.stat(false)
	d.levels()
}

// ready reports ErrDiskFull when less than readyHeadroom remains.
func (d *diskUse) ready() error {
	if d == nil {
		return nil
	}
	if d.headroom() < readyHeadroom {
		d.stat(false)
	}
	if h := d.headroom(); h < readyHeadroom {
		return fmt.Errorf("%w: %d bytes left before the limit", ErrDiskFull, max(h, 0))
	}
	return nil
}

// levels logs the transitions of the alarm, shed and limit states.
func (d *diskUse) levels() {
	f := d.fillRatio()
	transition := func(state *atomic.Bool, on bool, up func(), down string) {
		if state.CompareAndSwap(!on, on) {
			if on {
				up()
			} else {
				d.log.Info(down, "fill", f)
			}
		}
	}
	attrs := func() []any {
		return []any{"fill", f, "trail_bytes", d.used.Load(), "max_disk_bytes", d.limits.MaxBytes,
			"fs_free_bytes", d.free.Load(), "min_free_bytes", d.limits.MinFreeBytes}
	}
	transition(&d.alarmed, f >= d.limits.AlarmRatio, func() {
		d.log.Warn("audit disk use above the alarm threshold", append(attrs(), "alarm_ratio", d.limits.AlarmRatio)...)
	}, "audit disk use back below the alarm threshold")
	transition(&d.shedding, f >= d.limits.ShedRatio, func() {
		d.log.Warn("audit disk use above the shed threshold: requests refused before authentication are only counted", append(attrs(), "shed_ratio", d.limits.ShedRatio)...)
	}, "audit disk use back below the shed threshold")
	transition(&d.atLimit, d.headroom() < readyHeadroom, func() {
		d.log.Error("audit disk limit reached: less than 64 KiB left, events that do not fit are refused (no credentials or changes without a record)", attrs()...)
	}, "audit disk use back below the limit")
}

func (d *diskUse) collectors() []prometheus.Collector {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyless_audit_" + name, Help: help}, f)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	return []prometheus.Collector{
		gauge("disk_bytes", "Bytes of the trail directory (measured at start and after each seal, plus journal writes).",
			func() float64 { return float64(d.used.Load()) }),
		gauge("disk_limit_bytes", "audit.max_disk_bytes (0: no ceiling).",
			func() float64 { return float64(d.limits.MaxBytes) }),
		gauge("fs_free_bytes", "Free bytes of the trail's filesystem (available to unprivileged users).",
			func() float64 { return float64(d.free.Load()) }),
		gauge("fs_min_free_bytes", "audit.min_free_bytes: the filesystem reserve the trail leaves.",
			func() float64 { return float64(d.limits.MinFreeBytes) }),
		gauge("disk_fill_ratio", "Fill of the trail's disk limits: the larger of size/max_disk_bytes and the filesystem's used share above its reserve.",
			func() float64 { return d.fillRatio() }),
		gauge("disk_alarm", "1 when the disk fill is at or above audit.disk_alarm_ratio.",
			func() float64 { return flag(d.fillRatio() >= d.limits.AlarmRatio) }),
		gauge("disk_shedding", "1 when the disk fill is at or above audit.disk_shed_ratio: refusals before authentication are only counted.",
			func() float64 { return flag(d.fillRatio() >= d.limits.ShedRatio) }),
		gauge("disk_full", "1 when the trail refuses events at its disk limit.",
			func() float64 { return flag(d.headroom() < readyHeadroom) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyless_audit_disk_refused_total", Help: "Events refused at the disk limit."},
			func() float64 { return float64(d.refused.Load()) }),
	}
}

// Shedding reports whether the trail's disk use is at or above its shed
// ratio: events that may be summarised instead should not be recorded one
// by one. See [DiskLimits].
func (t *Trail) Shedding() bool {
	return t.disk != nil && t.disk.fillRatio() >= t.disk.limits.ShedRatio
}

// DiskUse is a snapshot of a trail's disk accounting.
type DiskUse struct {
	Bytes     int64   // trail directory size
	FreeBytes int64   // filesystem free bytes (0 when unknown)
	Fill      float64 // see DiskLimits
	Alarm     bool    // Fill >= AlarmRatio
	Shedding  bool    // Fill >= ShedRatio
	Full      bool    // events are refused
	Refused   uint64  // events refused at the limit so far
}

// DiskUse returns the trail's disk accounting.
func (t *Trail) DiskUse() DiskUse {
	d := t.disk
	if d == nil {
		return DiskUse{}
	}
	f := d.fillRatio()
	return DiskUse{Bytes: d.used.Load(), FreeBytes: d.free.Load(), Fill: f, Alarm: f >= d.limits.AlarmRatio,
		Shedding: f >= d.limits.ShedRatio, Full: d.headroom() < readyHeadroom, Refused: d.refused.Load()}
}

// sealed measures the trail again after a seal turned journal segments
// into delivery files.
func (d *diskUse) sealed() {
	if d == nil {
		return
	}
	if err := d.rescan(); err != nil {
		d.log.Warn("audit: measuring the trail after a seal failed", "err", err)
	}
}
