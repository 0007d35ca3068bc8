// Package issuertest runs a real keyless OIDC issuer on an httptest server
// for tests of verifying code (the STS, package oidc): discovery, JWKS and
// minting exactly as production serves them, over a throwaway SQLite store.
package issuertest

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keylessci/keyless/internal/issuer"
	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

// Server is a running issuer.
type Server struct {
	// URL is the issuer URL (the iss claim); discovery is at
	// URL/.well-known/openid-configuration.
	URL string
	// ID is the issuer id.
	ID string
	// HTTP is the underlying test server (its Client trusts it).
	HTTP    *httptest.Server
	Service *issuer.Service
}

// New starts an issuer. cfg.URL may be empty (the server URL + "/oidc") or
// a path ("/org/<id>"), which is appended to the server URL; cfg.ID
// defaults to "test". opts adjust the service options (clock, logger...).
// Everything stops when the test ends.
func New(t testing.TB, cfg issuer.Config, opts ...func(*issuer.Options)) *Server {
	t.Helper()
	var mu sync.RWMutex
	var h http.Handler = http.NotFoundHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		hh := h
		mu.RUnlock()
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	switch {
	case cfg.URL == "":
		cfg.URL = srv.URL + "/oidc"
	case strings.HasPrefix(cfg.URL, "/"):
		cfg.URL = srv.URL + cfg.URL
	}
	if cfg.ID == "" {
		cfg.ID = "test"
	}
	text, err := keyring.GenerateMasterKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	master, err := keyring.ParseMaster(text)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyless.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o := issuer.Options{
		Keys: st.KeyMaterial(), Master: master, Issuers: []issuer.Config{cfg},
		Authenticate: func(*http.Request, []byte) (*issuer.Caller, error) {
			return &issuer.Caller{AccessKeyID: "AKIAISSUERTEST", Admin: true}, nil
		},
	}
	for _, opt := range opts {
		opt(&o)
	}
	svc, err := issuer.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	h = svc.Handler()
	mu.Unlock()
	return &Server{URL: cfg.URL, ID: cfg.ID, HTTP: srv, Service: svc}
}

// Mint returns a signed token or fails the test.
func (s *Server) Mint(t testing.TB, req issuer.MintRequest) string {
	t.Helper()
	tok, err := s.Service.Mint(context.Background(), s.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Raw
}

// Rotate starts a rotation (see issuer.Service.Rotate) or fails the test.
func (s *Server) Rotate(t testing.TB) *issuer.Rotation {
	t.Helper()
	r, err := s.Service.Rotate(context.Background(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
