// Package server wires keyless together: configuration, the embedded
// store, keys, the IAM and STS Query API behind SigV4, the OIDC issuer, the
// audit trail, health and metrics endpoints, request ids, limits, logging
// and graceful shutdown. Domain logic lives in the packages it wires.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/issuer"
	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/sigv4"
	"github.com/keylessci/keyless/internal/store"
	"github.com/keylessci/keyless/internal/sts"
)

// Options are the injected dependencies of a Server.
type Options struct {
	Logger *slog.Logger
	Getenv func(string) string
	Now    func() time.Time
	Rand   io.Reader
	// Listener, when set, is used instead of listening on Config.Listen.
	Listener net.Listener
	// Build identifies the binary in /metrics and the start-up log line.
	Build BuildInfo
	// LogLevel, when set, is the level of Logger's handler: Reload
	// changes it when log.level changes.
	LogLevel *slog.LevelVar
}

// Server is a running keyless.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	store   store.Store
	master  *keyring.Master
	account string
	keys    *iam.KeyManager
	iam     *iam.Service
	sts     *sts.Service
	ring    *sts.RingManager
	trail   *audit.Trail
	issuer  *issuer.Service
	// trust keeps keyless_trust_findings (trustfindings.go).
	trust   *trustFindings
	api     *queryAPI
	metrics *metrics
	mux     *http.ServeMux
	http    *http.Server
	ln      net.Listener
	closers []func(context.Context) error
	// reportMu serialises refusal reports (the ticker and the last one at
	// close).
	reportMu sync.Mutex

	// metricsEP serves /metrics (see MetricsConfig).
	metricsEP *metricsEndpoint
	// start is what the start-up log line reports (buildinfo.go).
	start startInfo

	// cert is the TLS key pair new connections get (nil without TLS);
	// logLevel and reload are what Reload changes (reload.go).
	cert     *certificate
	logLevel *slog.LevelVar
	reload   reloadState
}

// DBPath is where the embedded store lives in a data dir.
func DBPath(dataDir string) string { return filepath.Join(dataDir, "keyless.db") }

// MasterKeyPath is the default master key file of a data dir.
func MasterKeyPath(dataDir string) string { return filepath.Join(dataDir, "master.key") }

// OpenData opens the store and master key of a data dir. A directory that
// holds no store (no keyless.db) is refused with a *NoStoreError naming
// nearby data dirs unless initDir is true; then the store is created, and the
// master key file too unless KEYLESS_MASTER_KEY is set (a key from the
// environment is never written). KEYLESS_MASTER_KEY and an existing key
// file must agree. keyless serve passes initDir (it creates on first start);
// the CLI's offline commands pass their --init flag.
func OpenData(ctx context.Context, cfg Config, getenv func(string) string, rnd io.Reader, initDir bool) (*Data, error) {
	return openData(ctx, cfg, getenv, rnd, initDir)
}

// AccountID returns the account of a data dir: the configured one, or the
// one generated on first start.
func AccountID(ctx context.Context, st store.Store, configured string, rnd io.Reader) (string, error) {
	want := configured
	if want == "" {
		n, err := rand.Int(rnd, big.NewInt(1e12))
		if err != nil {
			return "", err
		}
		want = fmt.Sprintf("%012d", n.Int64())
	}
	got, err := st.Meta().PutIfAbsent(ctx, "account-id", want)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	if configured != "" && got != configured {
		return "", fmt.Errorf("this data dir belongs to account %s; --account-id %s differs (ARNs already issued would break)", got, configured)
	}
	return got, nil
}

// New builds a server from a validated configuration. It opens the store
// and keys but does not listen yet.
func New(ctx context.Context, cfg Config, o Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	data, err := OpenData(ctx, cfg, o.Getenv, o.Rand, true)
	if err != nil {
		return nil, err
	}
	st, master := data.Store, data.Master
	if data.Created {
		logCreatedDataDir(o.Logger, cfg, data)
	}
	s := &Server{cfg: cfg, log: o.Logger, now: o.Now, store: st, master: master, metrics: newMetrics(), ln: o.Listener, logLevel: o.LogLevel}
	s.reload.cfg = cfg
	s.start = startInfo{build: o.Build.withDefaults(), bootstrapAdmin: o.Getenv("KEYLESS_ADMIN_ACCESS_KEY_ID") != ""}
	s.metrics.registerBuildInfo(s.start.build)
	s.closers = append(s.closers, func(context.Context) error { return st.Close() })
	fail := func(err error) (*Server, error) {
		s.closeAll(context.Background())
		return nil, err
	}
	if cfg.TLS.CertFile != "" {
		pair, err := loadKeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return fail(err)
		}
		s.cert = &certificate{}
		s.cert.pair.Store(pair)
	}
	if s.account, err = AccountID(ctx, st, cfg.AccountID, o.Rand); err != nil {
		return fail(err)
	}
	s.keys, err = iam.NewKeyManager(iam.KeyManagerOptions{
		Store: st, Master: master, Account: s.account, Now: o.Now, Rand: o.Rand,
		BootstrapAccessKeyID: o.Getenv("KEYLESS_ADMIN_ACCESS_KEY_ID"), BootstrapSecretAccessKey: o.Getenv("KEYLESS_ADMIN_SECRET_ACCESS_KEY"),
	})
	if err != nil {
		return fail(err)
	}
	s.trust = newTrustFindings(s.metrics.reg, o.Logger.With("component", "guardrail"), o.Now)
	s.closers = append(s.closers, func(context.Context) error { s.trust.stop(); return nil })
	s.iam = iam.New(iam.Options{
		Store: st, Account: s.account, Limits: cfg.Limits, Now: o.Now, Rand: o.Rand,
		AllowLoopbackHTTP: cfg.AllowLoopbackHTTPIssuers, SkipSharedIssuerControls: cfg.IAM.SkipSharedIssuerControls,
		AllowedSTSEndpoints: cfg.Broker.AllowedSTSEndpoints, Guardrail: cfg.GuardrailMode(), TrustObserver: s.trust,
		Logger: o.Logger.With("component", "guardrail"), OwnIssuers: ownIssuers(cfg),
	})
	s.trust.lint = s.iam.LintTrustPolicy
	warnGuardrail(o.Logger, cfg)
	vopts := oidc.Options{
		Now: o.Now, Rand: o.Rand, Logger: o.Logger.With("component", "oidc"), Registerer: s.metrics.reg,
		Leeway: cfg.STS.ClockLeeway.D(), MaxTokenAge: cfg.STS.MaxTokenAge.D(), MaxTokenLifetime: cfg.STS.MaxTokenLifetime.D(),
		AllowLoopbackHTTP: cfg.AllowLoopbackHTTPIssuers, AllowPrivateNetworks: cfg.AllowPrivateNetworkIssuers,
	}
	if err := oidcNetwork(cfg.OIDC, &vopts); err != nil {
		return fail(err)
	}
	validator, err := oidc.NewValidator(vopts)
	if err != nil {
		return fail(err)
	}
	s.ring, err = sts.NewRingManager(ctx, st.KeyMaterial(), master, o.Now, o.Rand, 0)
	if err != nil {
		return fail(err)
	}
	s.sts = sts.New(sts.Options{
		Store: st, Account: s.account, Region: cfg.Region, Ring: s.ring, Validator: validator,
		Now: o.Now, Rand: o.Rand, Logger: o.Logger.With("component", "sts"),
	})
	actions := map[string]awsquery.Action{}
	for _, a := range append(s.iam.Actions(), s.sts.Actions()...) {
		if a.Input == nil {
			// Without its shape an action could not refuse parameters it
			// does not define: a programming error, caught at start.
			return fail(fmt.Errorf("action %s has no input shape", a.Name))
		}
		if a.Name == "CreateOpenIDConnectProvider" {
			a = warnProviderPort(a, o.Logger)
		}
		actions[a.Name] = a
	}
	s.api = &queryAPI{
		actions:   actions,
		auth:      &authenticator{verifier: &sigv4.Verifier{Now: o.Now}, keys: s.keys, sessions: s.sts},
		authorize: s.authorize,
		log:       o.Logger,
		now:       o.Now,
		rand:      o.Rand,
		region:    cfg.Region,
		maxBody:   cfg.HTTP.MaxBodyBytes,
		metrics:   s.metrics,
	}
	if err := s.openAudit(ctx, cfg, o); err != nil {
		return fail(err)
	}
	if err := s.setupRefusalLimit(cfg); err != nil {
		return fail(err)
	}
	if err := s.openIssuer(ctx, cfg, o); err != nil {
		return fail(err)
	}
	if err := s.openBroker(cfg, o); err != nil {
		return fail(err)
	}
	s.warnIssuerPorts(cfg)
	s.mux = http.NewServeMux()
	if s.issuer != nil {
		s.issuer.Mount(s.mux)
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if s.metricsEP, err = s.newMetricsEndpoint(cfg.Metrics); err != nil {
		return fail(err)
	}
	if s.metricsEP.addr == "" {
		s.mux.Handle("GET /metrics", s.metricsEP.handler)
	}
	s.mux.Handle("POST /{$}", s.api)
	s.mux.Handle("GET /{$}", s.rootGet())
	return s, nil
}

// authorize decides whether an authenticated caller may call an action:
// administrators may call everything; sessions are evaluated against their
// role's permission policies (intersected with session policies and the
// permissions boundary) for the call's target — the resource the action
// acts on, from the action's own row of the authorization table, and the
// request's condition keys; issuer-client keys may only ask who they are.
// GetCallerIdentity needs no permission, as in AWS.
func (s *Server) authorize(ctx context.Context, r *awsquery.Request, a awsquery.Action, t awsquery.Target) error {
	if a.Name == "GetCallerIdentity" {
		return nil
	}
	switch r.Caller.Kind {
	case awsquery.CallerAdmin:
		return nil
	case awsquery.CallerSession:
		return s.sts.AuthorizeSession(ctx, r, t)
	default:
		return awsquery.Errorf(awsquery.CodeAccessDenied, "User: %s is not authorized to perform: %s:%s", r.Caller.ARN, a.Service, a.Name)
	}
}

// rootGet serves GET / : a Query API call when a query string is present.
// A bare GET / is unauthenticated: it gets AWS's answer, a redirect to the
// product's page (redirectRoot, unserved.go), and nothing about this
// deployment (no account id, region, version or endpoints): the account id
// is what GetCallerIdentity tells a signed caller, and an ARN's account is
// the first thing an attacker needs.
func (s *Server) rootGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			s.api.ServeHTTP(w, r)
			return
		}
		redirectRoot(w)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", "component", "store", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "store not ready\n")
		return
	}
	if err := s.trail.Ready(); err != nil {
		s.log.WarnContext(ctx, "not ready", "component", "audit", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "audit trail not ready\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// Account is the account id of this deployment.
func (s *Server) Account() string { return s.account }

// Listen binds the configured address (":0" picks a free port).
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address after Listen.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler is the whole HTTP surface (for tests with httptest).
func (s *Server) Handler() http.Handler { return s.auditMints(s.unservedFallback(s.mux)) }

// Serve serves until ctx is done, then shuts down gracefully: stop
// accepting, finish in-flight requests, flush and seal the audit trail,
// close the store. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	if err := s.metricsEP.listen(); err != nil {
		s.closeAll(context.Background())
		return err
	}
	h := s.cfg.HTTP
	// Requests run under a context the server cancels when the shutdown
	// timeout runs out, so work still in flight then (a long simulation)
	// stops instead of running on against a closing store and trail.
	reqCtx, stopRequests := context.WithCancel(context.Background())
	defer stopRequests()
	s.http = &http.Server{
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		Handler:           s.auditMints(s.unservedFallback(s.mux)),
		ReadHeaderTimeout: h.ReadHeaderTimeout.D(),
		ReadTimeout:       h.ReadTimeout.D(),
		WriteTimeout:      h.WriteTimeout.D(),
		IdleTimeout:       h.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if s.cert != nil {
			// The pair comes from s.cert on every handshake, so a reload
			// (SIGHUP) reaches new connections without a restart.
			s.http.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.cert.get}
			err = s.http.ServeTLS(s.ln, "", "")
		} else {
			err = s.http.Serve(s.ln)
		}
		errc <- err
	}()
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	if s.cfg.DebugListen != "" {
		s.serveDebug(bg)
	}
	s.metricsEP.serve(bg, func(err error) { s.log.Error("metrics listener failed", "addr", s.cfg.Metrics.Listen, "err", err) })
	go s.ring.Run(bg, time.Minute)
	go s.sts.RunBrokeredPurge(bg, time.Minute)
	go s.reportRefusals(bg)
	s.trust.start(bg, s.store.Roles())
	if s.issuer != nil {
		if err := s.issuer.Start(bg); err != nil {
			return err
		}
	}
	s.logStart(ctx)
	select {
	case err := <-errc:
		s.closeAll(context.Background())
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), h.ShutdownTimeout.D())
	defer cancel()
	err := s.http.Shutdown(sctx)
	if err != nil {
		s.log.Warn("shutdown timeout: cancelling requests still in flight", "err", err)
		stopRequests()
	}
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	err = errors.Join(err, s.closeAll(sctx))
	if err == nil {
		s.log.Info("stopped cleanly")
	}
	return err
}

// Close releases everything without serving (for a server never served).
func (s *Server) Close() error { return s.closeAll(context.Background()) }

func (s *Server) closeAll(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i](ctx))
	}
	s.closers = nil
	return errors.Join(errs...)
}

// serveDebug serves pprof on the debug address until ctx ends.
func (s *Server) serveDebug(ctx context.Context) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Addr: s.cfg.DebugListen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("debug listener failed", "addr", s.cfg.DebugListen, "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
}
