package server

import (
	"context"
	"log/slog"
	"net/url"

	"github.com/keylessci/keyless/internal/awsquery"
)

// Warnings about settings that work in keyless but not in real AWS.

// awsRefusesPort reports whether raw is an https URL with an explicit port.
// AWS's CreateOpenIDConnectProvider refuses any port in a provider URL
// ("a port number is not allowed"), and a token's iss must equal the
// registered URL exactly, so an issuer whose URL has a port cannot be
// registered in real AWS (":443" included: the iss would not match the
// URL without it).
func awsRefusesPort(raw string) (port string, refused bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Port() == "" {
		return "", false
	}
	return u.Port(), true
}

const portAdvice = "AWS refuses a port in an OIDC provider URL, so this issuer cannot be registered in real AWS as it is: serve it on the default https port 443 (for example behind a reverse proxy) or publish it as static files (keyless issuer publish) at a URL without a port"

// warnIssuerPorts logs, at start, every built-in issuer whose URL AWS
// would refuse.
func (s *Server) warnIssuerPorts(cfg Config) {
	for _, is := range cfg.Issuers {
		if port, refused := awsRefusesPort(is.URL); refused {
			s.log.Warn("issuer URL has a port: "+portAdvice, "issuer", is.ID, "url", is.URL, "port", port)
		}
	}
}

// warnProviderPort wraps CreateOpenIDConnectProvider: a provider whose
// https URL has a port (accepted for loopback hosts with
// --allow-loopback-http-issuers) is logged once created, since the same
// URL is refused by AWS.
func warnProviderPort(a awsquery.Action, log *slog.Logger) awsquery.Action {
	handle := a.Handle
	a.Handle = func(ctx context.Context, r *awsquery.Request) (any, error) {
		out, err := handle(ctx, r)
		if err == nil {
			raw := r.Params.String("Url")
			if port, refused := awsRefusesPort(raw); refused {
				log.WarnContext(ctx, "OIDC provider URL has a port: "+portAdvice, "url", raw, "port", port, "request_id", r.RequestID)
			}
		}
		return out, err
	}
	return a
}
