package audit

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counters are the trail's live figures; Stats copies them, and the
// Prometheus collectors read them, so both always agree.
type counters struct {
	events        atomic.Uint64
	durableEvents atomic.Uint64
	batches       atomic.Uint64
	fsyncs        atomic.Uint64
	backpressure  atomic.Uint64
	rejected      atomic.Uint64
	tornTails     atomic.Uint64
	sealedEvents  atomic.Uint64
	sealedFiles   atomic.Uint64
	digests       atomic.Uint64
	sealErrors    atomic.Uint64
	checkpoints   atomic.Uint64
}

// Stats is a snapshot of a trail's activity since Open.
type Stats struct {
	QueueDepth    int    // events waiting for the journal writer
	QueueCapacity int    // Options.QueueSize
	Events        uint64 // events written to the journal
	DurableEvents uint64 // of which recorded with Durable
	Batches       uint64 // journal writes (one per group)
	Fsyncs        uint64 // journal fsyncs (group commits and flushes)
	Backpressure  uint64 // Record calls that found the queue full and waited
	Rejected      uint64 // Record calls that gave up (timeout or context)
	TornTails     uint64 // torn journal tails truncated at Open
	SealedEvents  uint64
	SealedFiles   uint64
	Digests       uint64
	SealErrors    uint64 // background seals (and checkpoints) that failed
	Checkpoints   uint64 // authenticated heads saved (checkpoints, seals, digests)
	Failed        bool   // the journal is fail-stopped (see Ready)
}

// Stats returns a snapshot of the trail's counters.
func (t *Trail) Stats() Stats {
	c := &t.stats
	return Stats{
		QueueDepth:    len(t.reqs),
		QueueCapacity: cap(t.reqs),
		Events:        c.events.Load(),
		DurableEvents: c.durableEvents.Load(),
		Batches:       c.batches.Load(),
		Fsyncs:        c.fsyncs.Load(),
		Backpressure:  c.backpressure.Load(),
		Rejected:      c.rejected.Load(),
		TornTails:     c.tornTails.Load(),
		SealedEvents:  c.sealedEvents.Load(),
		SealedFiles:   c.sealedFiles.Load(),
		Digests:       c.digests.Load(),
		SealErrors:    c.sealErrors.Load(),
		Checkpoints:   c.checkpoints.Load(),
		Failed:        t.failure() != nil,
	}
}

type metrics struct {
	reg          prometheus.Registerer
	collectors   []prometheus.Collector
	fsyncSeconds prometheus.Histogram
}

// newMetrics registers the trail's collectors (names keyless_audit_*).
func newMetrics(t *Trail, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{reg: reg}
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyless_audit_" + name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	c := &t.stats
	m.fsyncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "keyless_audit_journal_fsync_seconds",
		Help:    "Duration of journal fsyncs.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
	})
	m.collectors = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyless_audit_queue_depth", Help: "Events waiting for the journal writer."},
			func() float64 { return float64(len(t.reqs)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyless_audit_queue_capacity", Help: "Capacity of the journal queue."},
			func() float64 { return float64(cap(t.reqs)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyless_audit_journal_failed", Help: "1 when the journal has fail-stopped."},
			func() float64 {
				if t.failure() != nil {
					return 1
				}
				return 0
			}),
		counter("events_total", "Events written to the journal.", &c.events),
		counter("durable_events_total", "Events written with Durable.", &c.durableEvents),
		counter("journal_writes_total", "Journal write batches.", &c.batches),
		counter("journal_fsyncs_total", "Journal fsyncs.", &c.fsyncs),
		counter("backpressure_total", "Record calls that waited for queue space.", &c.backpressure),
		counter("rejected_total", "Record calls that gave up waiting.", &c.rejected),
		counter("sealed_events_total", "Events sealed into delivery files.", &c.sealedEvents),
		counter("sealed_files_total", "Delivery files written.", &c.sealedFiles),
		counter("digests_total", "Digest files written.", &c.digests),
		counter("seal_errors_total", "Background seals and checkpoints that failed.", &c.sealErrors),
		counter("head_saves_total", "Authenticated heads (journal checkpoints) saved to the head store.", &c.checkpoints),
		m.fsyncSeconds,
	}
	if t.disk != nil {
		m.collectors = append(m.collectors, t.disk.collectors()...)
	}
	for i, col := range m.collectors {
		if err := reg.Register(col); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("audit: metrics already registered (one Trail per registry): %w", err)
			}
			return nil, fmt.Errorf("audit: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
