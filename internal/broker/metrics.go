package broker

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count brokered exchanges by outcome and time the upstream calls.
// Labels are the fixed outcomes only: no role, endpoint or caller data.
type metrics struct {
	total    *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keyless", Subsystem: "broker", Name: "upstream_total",
			Help: `Brokered exchanges by outcome: "success", the upstream's refusal (denied, invalid_token, expired_token, idp_error, throttled, region_disabled, rejected), a failed call (upstream_error, timeout, unreachable, canceled), or keyless's own refusal before the call (endpoint_refused, bad_upstream_role, mint_failed, not_recorded).`,
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "keyless", Subsystem: "broker", Name: "upstream_duration_seconds",
			Help:    "Time of the upstream AssumeRoleWithWebIdentity calls, whatever their outcome.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
	}
	for _, o := range outcomes {
		m.total.WithLabelValues(o)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.total, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("broker: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

// count records an exchange refused before the upstream call.
func (m *metrics) count(outcome string) { m.total.WithLabelValues(outcome).Inc() }

// observe records an upstream call.
func (m *metrics) observe(outcome string, d time.Duration) {
	m.total.WithLabelValues(outcome).Inc()
	m.duration.Observe(d.Seconds())
}
