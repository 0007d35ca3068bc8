package oidc

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics exposes the key caches and validation outcomes. Issuer labels
// only ever carry registered provider URLs (unknown issuers never reach
// the cache), so their number is bounded by the providers configured.
type metrics struct {
	fetches      *prometheus.CounterVec
	fetchSeconds *prometheus.HistogramVec
	keys         *prometheus.GaugeVec
	lastSuccess  *prometheus.GaugeVec
	stale        *prometheus.GaugeVec
	staleServed  *prometheus.CounterVec
	unknownKID   *prometheus.CounterVec
	validations  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keyless", Subsystem: "oidc", Name: "jwks_fetches_total",
			Help: "Refreshes of a provider's discovery document and JWKS, by result (ok, timeout, network, tls, refused, too_large, http_status, invalid_document).",
		}, []string{"issuer", "result"}),
		fetchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "keyless", Subsystem: "oidc", Name: "jwks_fetch_duration_seconds",
			Help:    "Duration of provider key refreshes.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10},
		}, []string{"issuer"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "keyless", Subsystem: "oidc", Name: "jwks_keys",
			Help: "Usable keys cached for a provider after the last successful refresh.",
		}, []string{"issuer"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "keyless", Subsystem: "oidc", Name: "jwks_last_success_timestamp_seconds",
			Help: "Unix time of the last successful key refresh of a provider.",
		}, []string{"issuer"}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "keyless", Subsystem: "oidc", Name: "jwks_stale",
			Help: "1 while a provider's keys are served past their TTL (issuer unreachable or refresh pending).",
		}, []string{"issuer"}),
		staleServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keyless", Subsystem: "oidc", Name: "jwks_stale_served_total",
			Help: "Tokens verified with keys past their TTL.",
		}, []string{"issuer"}),
		unknownKID: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keyless", Subsystem: "oidc", Name: "unknown_kid_total",
			Help: "Tokens whose kid was not cached, by outcome (refreshed, rate_limited, negative_cached).",
		}, []string{"issuer", "outcome"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keyless", Subsystem: "oidc", Name: "token_validations_total",
			Help: "Web identity token validations, by result (ok or the AWS error code).",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.fetches, m.fetchSeconds, m.keys, m.lastSuccess, m.stale, m.staleServed, m.unknownKID, m.validations} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("oidc: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) forget(issuer string) {
	l := prometheus.Labels{"issuer": issuer}
	m.fetches.DeletePartialMatch(l)
	m.fetchSeconds.DeletePartialMatch(l)
	m.keys.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
	m.stale.DeletePartialMatch(l)
	m.staleServed.DeletePartialMatch(l)
	m.unknownKID.DeletePartialMatch(l)
}
