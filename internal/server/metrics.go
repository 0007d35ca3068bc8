package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series; every package that exposes
// metrics registers on the same private registry.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// throttled and unrecorded count requests refused before
	// authentication that were answered Throttling, or not recorded
	// individually while the trail's disk use was above its shed threshold.
	throttled  *prometheus.CounterVec
	unrecorded *prometheus.CounterVec
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keyless", Name: "api_requests_total", Help: "Query API calls by action and outcome: code is \"ok\" on success, else the AWS error code answered.",
		}, []string{"action", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "keyless", Name: "api_request_duration_seconds", Help: "Query API latency by action.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"action"}),
	}
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keyless", Name: "api_throttled_total", Help: "Requests answered Throttling because their source was refused too often before authentication, by action.",
	}, []string{"action"})
	m.unrecorded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "keyless", Name: "api_unrecorded_refusals_total", Help: "Refusals before authentication not recorded individually (audit disk use above its shed threshold; counted in refusal reports), by action.",
	}, []string{"action"})
	reg.MustRegister(m.requests, m.latency, m.throttled, m.unrecorded)
	return m
}

// codeOK is the code label of a successful call: an empty label value is
// the same as an absent label to Prometheus, so `code=""` could not be
// selected for, nor told apart from a series without the label.
const codeOK = "ok"

func (m *metrics) observe(action, code string, d time.Duration) {
	if code == "" {
		code = codeOK
	}
	m.requests.WithLabelValues(action, code).Inc()
	m.latency.WithLabelValues(action).Observe(d.Seconds())
}
