package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
)

// What an anonymous client can make keyless spend: the query API's side of
// the refusal limiter (ratelimit.go), the bounded record of requests refused
// before authentication, and the periodic refusal reports.

// refusalGate is the query API's handle on the limiter.
type refusalGate struct {
	l        *refusalLimiter
	throttle bool // false when refusal_limit.disable: count only
	metrics  *metrics
	// last is when the previous report's period ended.
	last time.Time
}

// setupRefusalLimit builds the limiter, wires it into the query API and the
// audit recorder, and registers its metrics. The reports are written by
// reportRefusals (started by Serve) and once more when the server closes.
func (s *Server) setupRefusalLimit(cfg Config) error {
	l, err := newRefusalLimiter(cfg.RefusalLimit)
	if err != nil {
		return err
	}
	g := &refusalGate{l: l, throttle: !cfg.RefusalLimit.Disable, metrics: s.metrics, last: s.now()}
	s.api.limit = g
	if ar, ok := s.api.recorder.(*auditRecorder); ok {
		ar.unrecorded = g.unrecorded
	}
	if err := s.metrics.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "keyless", Name: "refusal_limit_sources", Help: "Sources (IPv4 addresses, IPv6 networks) the refusal limiter tracks.",
	}, func() float64 { return float64(l.sources()) })); err != nil {
		return err
	}
	s.closers = append(s.closers, func(context.Context) error {
		// After the HTTP server has stopped and before the trail closes:
		// the last period's counts are not lost.
		s.flushRefusalReports(context.Background())
		return nil
	})
	return nil
}

// checkThrottle answers whether req's source is over its refusal budget;
// the throttled request is counted for the source's report and the
// keyless_api_throttled_total metric.
func (g *refusalGate) checkThrottle(req *awsquery.Request, action string) bool {
	if g == nil || !g.throttle {
		return false
	}
	if !g.l.throttled(g.l.sourceOf(req.SourceIP), req.Time.UnixNano()) {
		return false
	}
	if action == "" {
		action = "unknown"
	}
	g.metrics.throttled.WithLabelValues(action).Inc()
	return true
}

// charge charges a refused request without an authenticated caller to
// its source. Server faults (5xx) and Throttling itself are not charged.
func (g *refusalGate) charge(req *awsquery.Request, aerr *awsquery.Error) {
	if g == nil || !g.throttle || aerr == nil || req.Caller != nil || aerr.HTTPStatus() >= 500 || errors.Is(aerr, errThrottled) {
		return
	}
	g.l.refused(g.l.sourceOf(req.SourceIP), req.Time.UnixNano())
}

// unrecorded counts a refusal the trail did not record individually.
func (g *refusalGate) unrecorded(req *awsquery.Request, action string) {
	g.l.unrecorded(g.l.sourceOf(req.SourceIP), req.Time.UnixNano())
	g.metrics.unrecorded.WithLabelValues(action).Inc()
}

// untrustedCall reports whether call was refused before its caller was
// authenticated: an unsigned call refused before its handler, or an
// exchange whose token did not validate.
func untrustedCall(call *Call) bool {
	r := call.Request
	if r.Caller != nil {
		return false
	}
	if x, ok := r.Note.Exchange.(*audit.Exchange); ok {
		return x.Unverified
	}
	return call.Err != nil
}

// shedUntrusted skips the event of an untrusted call while the trail's disk
// use is above its shed threshold, counting it for the source's report.
func (a *auditRecorder) shedUntrusted(call *Call) bool {
	if a.shed == nil || !untrustedCall(call) || !a.shed() {
		return false
	}
	if a.unrecorded != nil {
		a.unrecorded(call.Request, call.Action.Name)
	}
	return true
}

// untrustedParameters are the requestParameters of an untrusted call: the
// first parameters as sent, flat (the builder caps their size), instead of
// the structure requestParameters rebuilds from every parameter.
func untrustedParameters(p awsquery.Params) map[string]any {
	if p.Len() == 0 {
		return nil
	}
	const keep = 32
	out := map[string]any{}
	n := 0
	for _, name := range p.Names() {
		if name == "Action" || name == "Version" {
			continue
		}
		if n == keep {
			out[audit.KeyOmitted] = p.Len() - n
			break
		}
		out[lowerCamel(name)] = p.String(name)
		n++
	}
	return out
}

// donePending is the Pending of an event that needs no waiting.
type donePending struct{}

func (donePending) Wait(context.Context) error { return nil }

// reportRefusals writes the refusal reports every interval until ctx ends.
func (s *Server) reportRefusals(ctx context.Context) {
	if s.api.limit == nil {
		return
	}
	tick := time.NewTicker(s.cfg.RefusalLimit.ReportInterval.D())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.flushRefusalReports(ctx)
		}
	}
}

// flushRefusalReports writes one event per source with throttled or
// unrecorded refusals since the previous report (the busiest
// report_max_sources sources), and one for all the others together.
func (s *Server) flushRefusalReports(ctx context.Context) {
	g := s.api.limit
	ar, ok := s.api.recorder.(*auditRecorder)
	if g == nil || !ok {
		return
	}
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	now := s.now()
	reports, others, otherSources := g.l.drain(now.UnixNano())
	sources := len(reports) + otherSources
	start := g.last
	g.last = now
	total := func(r sourceReport) uint64 { return r.throttled + r.unrecorded }
	slices.SortFunc(reports, func(a, b sourceReport) int {
		if c := cmp.Compare(total(b), total(a)); c != 0 {
			return c
		}
		return a.key.Compare(b.key)
	})
	var events []audit.RefusalReport
	for i, r := range reports {
		if i >= s.cfg.RefusalLimit.ReportMaxSources {
			others.add(r.refusalCounts)
			otherSources++
			continue
		}
		ip := ""
		if r.key.IsValid() {
			ip = r.key.String()
		}
		events = append(events, audit.RefusalReport{Start: start, End: now, SourceIP: ip, SourcePrefix: g.l.prefix(r.key), Sources: 1,
			Throttled: r.throttled, Unrecorded: r.unrecorded})
	}
	if !others.zero() {
		events = append(events, audit.RefusalReport{Start: start, End: now, Sources: otherSources, Throttled: others.throttled, Unrecorded: others.unrecorded})
	}
	for _, r := range events {
		ev, err := ar.b.RefusalReport(r)
		if err == nil {
			err = ar.rec.Record(ctx, ev)
		}
		if err != nil {
			s.log.Error("audit record of a refusal report failed", "source", r.SourcePrefix, "throttled", r.Throttled, "unrecorded", r.Unrecorded, "err", err)
		}
	}
	if len(events) > 0 {
		s.log.Warn("requests refused before authentication were throttled or not recorded individually",
			"sources", sources, "reports", len(events))
	}
}

// diskLimits are the trail's disk limits from the configuration.
func diskLimits(c AuditConfig) audit.DiskLimits {
	return audit.DiskLimits{MaxBytes: c.MaxDiskBytes, MinFreeBytes: c.MinFreeBytes, AlarmRatio: c.DiskAlarmRatio, ShedRatio: c.DiskShedRatio}
}

// minDiskCeiling is the smallest audit.max_disk_bytes accepted: room for a
// few hundred events.
const minDiskCeiling = 1 << 20

func (c AuditConfig) validateDisk() error {
	var errs []error
	if c.MaxDiskBytes != 0 && c.MaxDiskBytes < minDiskCeiling {
		errs = append(errs, fmt.Errorf("audit.max_disk_bytes %d: want 0 (no ceiling) or at least %d", c.MaxDiskBytes, minDiskCeiling))
	}
	if c.MinFreeBytes < 0 {
		errs = append(errs, fmt.Errorf("audit.min_free_bytes %d: want 0 or more", c.MinFreeBytes))
	}
	if !(c.DiskAlarmRatio > 0 && c.DiskAlarmRatio <= c.DiskShedRatio && c.DiskShedRatio < 1) {
		errs = append(errs, fmt.Errorf("audit.disk_alarm_ratio %g and disk_shed_ratio %g: want 0 < alarm <= shed < 1", c.DiskAlarmRatio, c.DiskShedRatio))
	}
	return errors.Join(errs...)
}
