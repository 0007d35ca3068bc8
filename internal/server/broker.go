package server

import (
	"context"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/broker"
	"github.com/keylessci/keyless/internal/iam"
)

// openBroker turns broker mode on when the server has a built-in issuer to
// sign the upstream tokens; without one, exchanges for roles tagged
// keyless:upstream-role-arn are refused with an explanation (package sts).
func (s *Server) openBroker(cfg Config, o Options) error {
	if s.issuer == nil {
		return nil
	}
	id := cfg.Broker.Issuer
	if id == "" {
		id = s.issuer.Issuers()[0].ID
	}
	envEndpoint, fips := broker.FromEnv(o.Getenv)
	b, err := broker.New(broker.Options{
		Minter: s.issuer, IssuerID: id, Region: cfg.Region,
		Endpoint: cfg.Broker.STSEndpoint, EnvEndpoint: envEndpoint, FIPS: fips, AllowedEndpoints: cfg.Broker.AllowedSTSEndpoints,
		Timeout: cfg.Broker.Timeout.D(), TokenLifetime: cfg.Broker.TokenLifetime.D(), OmitClaims: cfg.Audit.RedactClaims,
		Record: s.recordBrokerEvent, Now: o.Now,
		Logger: o.Logger.With("component", "broker"), Registerer: s.metrics.reg,
	})
	if err != nil {
		return err
	}
	s.sts.SetBroker(b)
	ep, from := b.DefaultUpstream()
	s.log.Info("broker mode available for roles tagged "+iam.TagUpstreamRoleARN, "issuer", id, "upstream_sts", ep, "upstream_sts_from", from)
	return nil
}

// recordBrokerEvent records a broker event durably: the broker sends its
// token only after this returns nil.
func (s *Server) recordBrokerEvent(ctx context.Context, c audit.Call) error {
	if s.api.recorder == nil {
		return nil // a benchmark build without an audit trail
	}
	p, err := s.api.recorder.StartEvent(ctx, c, true)
	if err != nil {
		return err
	}
	return p.Wait(ctx)
}
