package oidc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

// TestIssuerThumbprints runs IssuerThumbprints against HTTPS issuers on
// loopback with generated chains root → intermediate → leaf: the
// thumbprint is the SHA-1 of the last certificate the host sends (the
// intermediate; the leaf itself when it sends only that), of the JWKS host
// first and of the discovery host when it is another one.
func TestIssuerThumbprints(t *testing.T) {
	kr := keys(t)
	opts := oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}}
	noProxy := func(*http.Request) (*url.URL, error) { return nil, nil }

	t.Run("one host, trusted", func(t *testing.T) {
		s := oidctest.NewTLSServer(t, "/oidc", opts)
		got, err := IssuerThumbprints(context.Background(), s.URL(), ThumbprintOptions{Roots: s.RootPool(), Proxy: noProxy})
		if err != nil {
			t.Fatal(err)
		}
		want := []HostThumbprint{{Host: s.HTTP.Listener.Addr().String(), Thumbprint: oidctest.Thumbprint(s.Intermediate), Subject: "CN=oidctest intermediate", Trusted: true}}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(HostThumbprint{}, "TrustError")); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		if len(got[0].Thumbprint) != 40 || strings.ToLower(got[0].Thumbprint) != got[0].Thumbprint {
			t.Errorf("thumbprint %q is not 40 lowercase hex", got[0].Thumbprint)
		}
	})

	t.Run("untrusted chain: same thumbprint, not trusted", func(t *testing.T) {
		s := oidctest.NewTLSServer(t, "", opts)
		got, err := IssuerThumbprints(context.Background(), s.URL(), ThumbprintOptions{Roots: x509.NewCertPool(), Proxy: noProxy})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Thumbprint != s.Thumbprint() || got[0].Trusted || got[0].TrustError == nil {
			t.Errorf("got %+v, want the intermediate's thumbprint %s, untrusted", got, s.Thumbprint())
		}
	})

	t.Run("JWKS on another host: both, JWKS host first", func(t *testing.T) {
		disc := oidctest.NewTLSServer(t, "/oidc", opts)
		keysHost := oidctest.NewTLSServer(t, "", opts)
		disc.SetDiscovery(map[string]any{"jwks_uri": keysHost.JWKSURL()})
		roots := disc.RootPool()
		roots.AddCert(keysHost.Root)
		got, err := IssuerThumbprints(context.Background(), disc.URL(), ThumbprintOptions{Roots: roots, Proxy: noProxy})
		if err != nil {
			t.Fatal(err)
		}
		var tps []string
		for _, h := range got {
			tps = append(tps, h.Thumbprint)
		}
		if diff := cmp.Diff([]string{keysHost.Thumbprint(), disc.Thumbprint()}, tps); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})

	t.Run("a host sending only its certificate", func(t *testing.T) {
		chain, err := oidctest.NewChain(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		iss := oidctest.NewServer(t, "", opts) // the documents, served below over TLS
		hs := httptest.NewUnstartedServer(iss)
		hs.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{chain.Leaf.Raw}, PrivateKey: chain.LeafKey}}}
		hs.Config.ErrorLog = log.New(io.Discard, "", 0)
		hs.StartTLS()
		t.Cleanup(hs.Close)
		// The issuer's documents name the plain-HTTP server: rewrite them.
		iss.SetDiscovery(map[string]any{"issuer": hs.URL, "jwks_uri": hs.URL + "/.well-known/jwks.json"})
		got, err := IssuerThumbprints(context.Background(), hs.URL, ThumbprintOptions{Roots: x509.NewCertPool(), Proxy: noProxy})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Thumbprint != oidctest.Thumbprint(chain.Leaf) {
			t.Errorf("got %+v, want the leaf's thumbprint %s", got, oidctest.Thumbprint(chain.Leaf))
		}
	})

	t.Run("plain http with AllowHTTP: checked, no thumbprint", func(t *testing.T) {
		s := oidctest.NewServer(t, "/oidc", opts)
		got, err := IssuerThumbprints(context.Background(), s.URL(), ThumbprintOptions{AllowHTTP: true, Proxy: noProxy})
		if err != nil || len(got) != 0 {
			t.Errorf("got %+v, %v; want no thumbprint and no error", got, err)
		}
		if _, err := IssuerThumbprints(context.Background(), s.URL(), ThumbprintOptions{Proxy: noProxy}); !errors.Is(err, ErrNotHTTPS) {
			t.Errorf("without AllowHTTP: err = %v, want ErrNotHTTPS", err)
		}
		s.SetDiscovery(map[string]any{"issuer": "http://elsewhere/oidc"})
		if _, err := IssuerThumbprints(context.Background(), s.URL(), ThumbprintOptions{AllowHTTP: true, Proxy: noProxy}); !errors.Is(err, ErrDiscovery) {
			t.Errorf("http issuer naming another: err = %v, want ErrDiscovery", err)
		}
	})

	for _, tc := range []struct {
		name  string
		setup func(s *oidctest.Server) string // returns the URL to ask for
		want  error
	}{
		{name: "http issuer", setup: func(*oidctest.Server) string { return "http://127.0.0.1:1/oidc" }, want: ErrNotHTTPS},
		{name: "discovery names another issuer", setup: func(s *oidctest.Server) string {
			s.SetDiscovery(map[string]any{"issuer": s.URL() + "/"})
			return s.URL()
		}, want: ErrDiscovery},
		{name: "issuer URL with a trailing slash the document lacks", setup: func(s *oidctest.Server) string { return s.URL() + "/" }, want: ErrDiscovery},
		{name: "jwks_uri over http", setup: func(s *oidctest.Server) string {
			s.SetDiscovery(map[string]any{"jwks_uri": "http://127.0.0.1:1/jwks"})
			return s.URL()
		}, want: ErrNotHTTPS},
		{name: "JWKS not a key set", setup: func(s *oidctest.Server) string {
			s.SetRawJWKS([]byte(`{"keys":"none"}`))
			return s.URL()
		}, want: ErrJWKS},
		{name: "discovery missing", setup: func(s *oidctest.Server) string { return s.URL() + "/nothing" }, want: ErrHTTPStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := oidctest.NewTLSServer(t, "/oidc", opts)
			_, err := IssuerThumbprints(context.Background(), tc.setup(s), ThumbprintOptions{Roots: s.RootPool(), Proxy: noProxy})
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestThumbprintIsOfTheLastCertificate pins Thumbprint to the last
// certificate of the chain, whatever its length, and refuses an empty one.
func TestThumbprintIsOfTheLastCertificate(t *testing.T) {
	chain, err := oidctest.NewChain(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		want  string
	}{
		{"leaf and intermediate", []*x509.Certificate{chain.Leaf, chain.Intermediate}, oidctest.Thumbprint(chain.Intermediate)},
		{"with the root", []*x509.Certificate{chain.Leaf, chain.Intermediate, chain.Root}, oidctest.Thumbprint(chain.Root)},
		{"leaf alone", []*x509.Certificate{chain.Leaf}, oidctest.Thumbprint(chain.Leaf)},
	} {
		got, err := Thumbprint(tc.chain)
		if err != nil || got != tc.want {
			t.Errorf("%s: Thumbprint = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := Thumbprint(nil); err == nil {
		t.Error("Thumbprint(nil) succeeded")
	}
}
