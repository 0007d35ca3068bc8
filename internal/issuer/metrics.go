package issuer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Mint outcomes besides the AWS error code of a refused request.
const (
	// OutcomeSuccess: the token endpoint signed a token and answered with it.
	OutcomeSuccess = "success"
	// OutcomeWithheld: a signed token the server then did not deliver
	// because its audit record could not be written (see CountWithheld).
	OutcomeWithheld = "withheld"
	// unknownIssuer labels requests refused before an issuer this server
	// serves was named (unauthenticated, or an issuer id it does not
	// have): the label stays bounded by the configuration.
	unknownIssuer = "unknown"
)

// mintMetrics count token-endpoint requests.
type mintMetrics struct {
	mints *prometheus.CounterVec
}

func newMintMetrics(reg prometheus.Registerer, issuerIDs []string) (*mintMetrics, error) {
	m := &mintMetrics{
		mints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keyless", Subsystem: "issuer", Name: "mints_total",
			Help: `Token endpoint requests by issuer id ("unknown" when refused before an issuer of this server was named) and outcome: "success" (a token was signed), "withheld" (a signed token not delivered because its audit record could not be written), else the error code answered.`,
		}, []string{"issuer", "outcome"}),
	}
	// Every issuer's success series exists from the start, so a rate
	// over it is 0 rather than absent before the first mint.
	for _, id := range issuerIDs {
		m.mints.WithLabelValues(id, OutcomeSuccess)
	}
	if reg != nil {
		if err := reg.Register(m.mints); err != nil {
			return nil, fmt.Errorf("issuer: registering metrics: %w", err)
		}
	}
	return m, nil
}

// label is the issuer label of a request: the id when this service has
// that issuer, else "unknown".
func (s *Service) label(id string) string {
	if _, ok := s.issuers[id]; ok {
		return id
	}
	return unknownIssuer
}

func (s *Service) countMint(id, outcome string) {
	s.metrics.mints.WithLabelValues(s.label(id), outcome).Inc()
}

// CountWithheld records that a token the endpoint signed for the issuer
// with this URL (MintResponse.Issuer) was not delivered: the server holds
// the answer until the mint's audit record is durable, and answers 503
// without the token when it cannot be written.
func (s *Service) CountWithheld(issuerURL string) {
	for _, is := range s.order {
		if is.cfg.URL == issuerURL {
			s.countMint(is.cfg.ID, OutcomeWithheld)
			return
		}
	}
	s.countMint("", OutcomeWithheld)
}
