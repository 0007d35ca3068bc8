package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsConfig decides where GET /metrics is served and who may read it.
type MetricsConfig struct {
	// Listen, when set, serves /metrics (plain HTTP) on this address only,
	// and no longer on the main listener: put it on loopback or a private
	// network that only the Prometheus server reaches.
	Listen string `json:"listen"`
	// BearerTokenFile, when set, names a file holding a token (at least 16
	// bytes; surrounding white space is ignored) that a scraper must send
	// as "Authorization: Bearer <token>" (Prometheus: authorization.
	// credentials_file). It is read once at start and compared in constant
	// time. Over plain HTTP the token crosses the network in clear: use it
	// with TLS on the main listener, or on a private metrics listener.
	BearerTokenFile string `json:"bearer_token_file"`
}

// minMetricsToken is the shortest bearer token accepted: guessing 16
// random bytes is out of reach, and shorter ones are likely typos.
const minMetricsToken = 16

func (m MetricsConfig) validate(mainListen string) []error {
	var errs []error
	if m.Listen != "" {
		if _, _, err := net.SplitHostPort(m.Listen); err != nil {
			errs = append(errs, fmt.Errorf("metrics.listen %q: want host:port (for example 127.0.0.1:9400)", m.Listen))
		} else if m.Listen == mainListen {
			errs = append(errs, fmt.Errorf("metrics.listen %q: must differ from listen (leave it empty to serve /metrics on the main listener)", m.Listen))
		}
	}
	return errs
}

// metricsEndpoint is the /metrics handler and, with metrics.listen, its
// own listener.
type metricsEndpoint struct {
	handler http.Handler
	addr    string // metrics.listen; "" when served on the main listener
	ln      net.Listener
}

// newMetricsEndpoint builds the handler, reading the bearer token file.
func (s *Server) newMetricsEndpoint(cfg MetricsConfig) (*metricsEndpoint, error) {
	h := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	if cfg.BearerTokenFile != "" {
		b, err := os.ReadFile(cfg.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("metrics.bearer_token_file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < minMetricsToken {
			return nil, fmt.Errorf("metrics.bearer_token_file %s: the token must be at least %d bytes (for example: openssl rand -hex 32)", cfg.BearerTokenFile, minMetricsToken)
		}
		h = requireBearer(tok, h)
	}
	return &metricsEndpoint{handler: h, addr: cfg.Listen}, nil
}

// requireBearer answers 401 unless the request carries the token. Both
// sides are hashed first, so the comparison takes the same time whatever
// the length or content of the guess.
func requireBearer(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearerToken(r)
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyless metrics"`)
			http.Error(w, "unauthorized: send Authorization: Bearer <token from metrics.bearer_token_file>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken reads the one Authorization header's Bearer credentials.
func bearerToken(r *http.Request) (string, bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// listen binds metrics.listen, when configured and not bound yet.
func (m *metricsEndpoint) listen() error {
	if m == nil || m.addr == "" || m.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		return fmt.Errorf("metrics.listen %s: %w", m.addr, err)
	}
	m.ln = ln
	return nil
}

// serve serves /metrics on the bound separate listener until ctx ends.
func (m *metricsEndpoint) serve(ctx context.Context, onErr func(error)) {
	if m == nil || m.ln == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			onErr(err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
}
