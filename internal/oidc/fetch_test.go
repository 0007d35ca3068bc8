package oidc

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/prometheus/client_golang/prometheus"
)

// These tests go through the real network stack: loopback httptest
// servers, the guarded dialler, TLS with the trust store and thumbprints.

func lookupOf(p *Provider) func(string) (*Provider, bool) {
	return func(iss string) (*Provider, bool) {
		if iss == p.URL {
			return p, true
		}
		return nil, false
	}
}

func newServerValidator(t *testing.T, opts Options) (*Validator, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	v, err := NewValidator(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v, reg
}

func serverToken(t *testing.T, s *oidctest.Server) string {
	t.Helper()
	return s.Mint(t, baseSubj, clientID)
}

func TestLoopbackHTTPIssuer(t *testing.T) {
	kr := keys(t)
	s := oidctest.NewServer(t, "/oidc", oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}})
	p := &Provider{URL: s.URL(), ClientIDs: []string{clientID}}

	t.Run("allowed", func(t *testing.T) {
		v, _ := newServerValidator(t, Options{AllowLoopbackHTTP: true})
		tok, err := v.Validate(context.Background(), serverToken(t, s), lookupOf(p))
		if err != nil {
			t.Fatal(err)
		}
		if tok.VerificationMethod != VerifiedPlainHTTP {
			t.Errorf("method %q", tok.VerificationMethod)
		}
		prefix := strings.TrimPrefix(s.URL(), "http://")
		if got := ConditionValues(tok)[prefix+":sub"]; !slices.Equal(got, []string{baseSubj}) {
			t.Errorf("%s:sub = %q", prefix, got)
		}
	})
	t.Run("refused without AllowLoopbackHTTP", func(t *testing.T) {
		s.ResetRequests()
		v, _ := newServerValidator(t, Options{})
		_, err := v.Validate(context.Background(), serverToken(t, s), lookupOf(p))
		wantCode(t, err, CodeIDPCommunicationError, msgNoKey, ErrDestinationRefused)
		if got := s.Requests(); got != (oidctest.Counts{}) {
			t.Errorf("requests %+v", got)
		}
	})
}

func TestTLSTrustStoreAndThumbprints(t *testing.T) {
	kr := keys(t)
	s := oidctest.NewTLSServer(t, "", oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}})
	rootThumb := oidctest.Thumbprint(s.Root)
	for _, tc := range []struct {
		name        string
		roots       *x509.CertPool
		extra       []*x509.Certificate
		thumbprints []string
		wantMethod  string
		wantMsg     string
	}{
		{name: "trusted root", roots: s.RootPool(), wantMethod: VerifiedByTrustStore},
		{name: "extra root added to the store", roots: x509.NewCertPool(), extra: []*x509.Certificate{s.Root}, wantMethod: VerifiedByTrustStore},
		{name: "trust store wins over a thumbprint", roots: s.RootPool(), thumbprints: []string{s.Thumbprint()}, wantMethod: VerifiedByTrustStore},
		{name: "untrusted, intermediate thumbprint", roots: x509.NewCertPool(), thumbprints: []string{"0000000000000000000000000000000000000000", s.Thumbprint()}, wantMethod: VerifiedByThumbprint},
		{name: "untrusted, thumbprint in upper case", roots: x509.NewCertPool(), thumbprints: []string{strings.ToUpper(s.Thumbprint())}, wantMethod: VerifiedByThumbprint},
		{name: "untrusted, root thumbprint (not presented)", roots: x509.NewCertPool(), thumbprints: []string{rootThumb}, wantMsg: msgThumbprint},
		{name: "untrusted, wrong thumbprint", roots: x509.NewCertPool(), thumbprints: []string{"990f4193972f2becf12ddeda5237f9c952f20d9e"}, wantMsg: msgThumbprint},
		{name: "untrusted, no thumbprints", roots: x509.NewCertPool(), wantMsg: msgThumbprint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, reg := newServerValidator(t, Options{AllowLoopbackHTTP: true, RootCAs: tc.roots, ExtraRootCAs: tc.extra})
			p := &Provider{URL: s.URL(), ClientIDs: []string{clientID}, Thumbprints: tc.thumbprints}
			tok, err := v.Validate(context.Background(), serverToken(t, s), lookupOf(p))
			if tc.wantMsg != "" {
				wantCode(t, err, CodeInvalidIdentityToken, tc.wantMsg, ErrThumbprintMismatch)
				if v := metricValue(t, reg, "keyless_oidc_jwks_fetches_total", map[string]string{"issuer": p.URL, "result": "tls"}); v != 1 {
					t.Errorf("tls failures = %v", v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.VerificationMethod != tc.wantMethod {
				t.Errorf("method %q, want %q", tok.VerificationMethod, tc.wantMethod)
			}
		})
	}
}

// staticResolver maps names to addresses and records lookups.
type staticResolver map[string][]netip.Addr

func (r staticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// recordingDialer records what it is asked to dial; it connects loopback
// addresses for real and fails everything else.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().IsLoopback() {
		var nd net.Dialer
		return nd.DialContext(ctx, network, addr)
	}
	return nil, errors.New("recordingDialer: not dialling " + addr)
}

func (d *recordingDialer) dialled() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.addrs)
}

func TestThumbprintDoesNotSkipHostNameCheck(t *testing.T) {
	kr := keys(t)
	// The certificate is for 127.0.0.1 and localhost; the issuer is named
	// issuer.test, which the test resolver maps to 127.0.0.1.
	s := oidctest.NewTLSServer(t, "", oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}, Host: "issuer.test"})
	d := &recordingDialer{}
	v, _ := newServerValidator(t, Options{
		AllowLoopbackHTTP: true, RootCAs: x509.NewCertPool(),
		Resolver:    staticResolver{"issuer.test": {netip.MustParseAddr("127.0.0.1")}},
		DialContext: d.dial,
	})
	p := &Provider{URL: s.URL(), ClientIDs: []string{clientID}, Thumbprints: []string{s.Thumbprint()}}
	_, err := v.Validate(context.Background(), serverToken(t, s), lookupOf(p))
	wantCode(t, err, CodeInvalidIdentityToken, msgThumbprint, ErrThumbprintMismatch)
	if len(d.dialled()) == 0 {
		t.Error("the server was never dialled")
	}
}

func TestDestinationPolicy(t *testing.T) {
	kr := keys(t)
	mustAddrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		addrs      []netip.Addr
		private    bool
		wantDialed []string
		wantErr    error
	}{
		{name: "metadata IPv4", addrs: mustAddrs("169.254.169.254"), private: true, wantErr: ErrDestinationRefused},
		{name: "metadata IPv6", addrs: mustAddrs("fd00:ec2::254"), private: true, wantErr: ErrDestinationRefused},
		{name: "metadata as IPv4-mapped IPv6", addrs: mustAddrs("::ffff:169.254.169.254"), private: true, wantErr: ErrDestinationRefused},
		{name: "metadata behind NAT64", addrs: mustAddrs("64:ff9b::a9fe:a9fe"), private: true, wantErr: ErrDestinationRefused},
		{name: "RFC 1918 by default", addrs: mustAddrs("10.0.0.5"), wantErr: ErrDestinationRefused},
		{name: "RFC 1918 allowed", addrs: mustAddrs("10.0.0.5"), private: true, wantDialed: []string{"10.0.0.5:443"}},
		{name: "ULA by default", addrs: mustAddrs("fd12::1"), wantErr: ErrDestinationRefused},
		{name: "loopback without AllowLoopbackHTTP", addrs: mustAddrs("127.0.0.1"), private: true, wantErr: ErrDestinationRefused},
		{name: "public and private mixed (rebinding)", addrs: mustAddrs("93.184.216.34", "10.0.0.5"), wantErr: ErrDestinationRefused},
		{name: "public", addrs: mustAddrs("93.184.216.34"), wantDialed: []string{"93.184.216.34:443"}},
		{name: "public IPv6, then IPv4", addrs: mustAddrs("2606:2800:220:1::1", "93.184.216.34"),
			wantDialed: []string{"[2606:2800:220:1::1]:443", "93.184.216.34:443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &recordingDialer{}
			v, _ := newServerValidator(t, Options{
				AllowPrivateNetworks: tc.private,
				Resolver:             staticResolver{"idp.example": tc.addrs},
				DialContext:          d.dial,
			})
			p := &Provider{URL: "https://idp.example", ClientIDs: []string{clientID}}
			iss, err := oidctest.NewIssuer(p.URL, oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Validate(context.Background(), iss.Mint(t, baseSubj, clientID), lookupOf(p))
			wantCode(t, err, CodeIDPCommunicationError, msgNoKey, tc.wantErr)
			if got := d.dialled(); !slices.Equal(got, tc.wantDialed) {
				t.Errorf("dialled %q, want %q", got, tc.wantDialed)
			}
		})
	}
}

func TestJWKSURIPolicy(t *testing.T) {
	kr := keys(t)
	for _, tc := range []struct {
		name    string
		jwksURI string
		wantErr error
	}{
		{name: "metadata over http", jwksURI: "http://169.254.169.254/latest/meta-data/", wantErr: ErrDestinationRefused},
		{name: "name resolving to metadata over https", jwksURI: "https://metadata.test/jwks", wantErr: ErrDestinationRefused},
		{name: "private name over https", jwksURI: "https://intranet.test/jwks", wantErr: ErrDestinationRefused},
		{name: "file scheme", jwksURI: "file:///etc/passwd", wantErr: ErrDestinationRefused},
		{name: "user info", jwksURI: "https://user:pw@idp.example/jwks", wantErr: ErrDestinationRefused},
		{name: "relative", jwksURI: "/jwks", wantErr: ErrDiscovery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := oidctest.NewServer(t, "", oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}})
			s.SetDiscovery(map[string]any{"jwks_uri": tc.jwksURI})
			d := &recordingDialer{}
			v, _ := newServerValidator(t, Options{
				AllowLoopbackHTTP: true,
				Resolver: staticResolver{
					"metadata.test": {netip.MustParseAddr("169.254.169.254")},
					"intranet.test": {netip.MustParseAddr("192.168.1.10")},
				},
				DialContext: d.dial,
			})
			p := &Provider{URL: s.URL(), ClientIDs: []string{clientID}}
			_, err := v.Validate(context.Background(), serverToken(t, s), lookupOf(p))
			wantCode(t, err, CodeIDPCommunicationError, msgNoKey, tc.wantErr)
			for _, a := range d.dialled() {
				if ap := netip.MustParseAddrPort(a); !ap.Addr().IsLoopback() {
					t.Errorf("dialled %s", a)
				}
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	kr := keys(t)
	other := oidctest.NewServer(t, "", oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}})
	for _, tc := range []struct {
		name    string
		target  func(s *oidctest.Server) string
		wantErr error
	}{
		{name: "same origin", target: func(s *oidctest.Server) string { return s.JWKSURL() + "?moved" }},
		{name: "other host", target: func(*oidctest.Server) string { return other.JWKSURL() }, wantErr: ErrRedirectRefused},
		{name: "same address, other host name", target: func(s *oidctest.Server) string {
			return strings.Replace(s.JWKSURL(), "127.0.0.1", "localhost", 1)
		}, wantErr: ErrRedirectRefused},
		{name: "redirect loop", target: func(s *oidctest.Server) string { return s.JWKSURL() + "#again" }, wantErr: ErrRedirectRefused},
		{name: "to the metadata service", target: func(*oidctest.Server) string { return "http://169.254.169.254/latest/meta-data/" }, wantErr: ErrRedirectRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := oidctest.NewServer(t, "", oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}})
			s.RedirectJWKS(tc.target(s))
			other.ResetRequests()
			v, _ := newServerValidator(t, Options{AllowLoopbackHTTP: true})
			p := &Provider{URL: s.URL(), ClientIDs: []string{clientID}}
			_, err := v.Validate(context.Background(), serverToken(t, s), lookupOf(p))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, CodeIDPCommunicationError, msgNoKey, tc.wantErr)
			if got := other.Requests(); got != (oidctest.Counts{}) {
				t.Errorf("redirect target contacted: %+v", got)
			}
		})
	}
}

func TestResponseSizeCaps(t *testing.T) {
	kr := keys(t)
	padTo := func(doc string, size int) []byte {
		return []byte(doc[:len(doc)-1] + strings.Repeat(" ", size-len(doc)) + "}")
	}
	for _, tc := range []struct {
		name    string
		setup   func(s *oidctest.Server)
		wantErr error
	}{
		{name: "discovery exactly 64 KiB", setup: func(s *oidctest.Server) {
			s.SetRawDiscovery(padTo(fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q}`, s.URL(), s.JWKSURL()), 64<<10))
		}},
		{name: "discovery 64 KiB + 1", setup: func(s *oidctest.Server) {
			s.SetRawDiscovery(padTo(fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q}`, s.URL(), s.JWKSURL()), 64<<10+1))
		}, wantErr: ErrResponseTooLarge},
		{name: "JWKS exactly 1 MiB", setup: func(s *oidctest.Server) {
			s.SetRawJWKS(padTo(jwksJSON(t, s), 1<<20))
		}},
		{name: "JWKS 1 MiB + 1", setup: func(s *oidctest.Server) {
			s.SetRawJWKS(padTo(jwksJSON(t, s), 1<<20+1))
		}, wantErr: ErrResponseTooLarge},
		{name: "JWKS not JSON", setup: func(s *oidctest.Server) { s.SetRawJWKS([]byte("<html>")) }, wantErr: ErrJWKS},
		{name: "JWKS without keys", setup: func(s *oidctest.Server) { s.SetRawJWKS([]byte(`{"kids":[]}`)) }, wantErr: ErrJWKS},
		{name: "JWKS with duplicate members", setup: func(s *oidctest.Server) {
			s.SetRawJWKS([]byte(`{"keys":[],"keys":[]}`))
		}, wantErr: ErrJSONDuplicateMember},
		{name: "discovery not JSON", setup: func(s *oidctest.Server) { s.SetRawDiscovery([]byte("{")) }, wantErr: ErrDiscovery},
		{name: "JWKS 404", setup: func(s *oidctest.Server) { s.SetDiscovery(map[string]any{"jwks_uri": s.URL() + "/nope"}) }, wantErr: ErrHTTPStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := oidctest.NewServer(t, "", oidctest.Options{PublishKeys: []*oidctest.Key{kr.rsa}})
			tc.setup(s)
			v, _ := newServerValidator(t, Options{AllowLoopbackHTTP: true})
			p := &Provider{URL: s.URL(), ClientIDs: []string{clientID}}
			_, err := v.Validate(context.Background(), serverToken(t, s), lookupOf(p))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, CodeIDPCommunicationError, msgNoKey, tc.wantErr)
		})
	}
}

func jwksJSON(t *testing.T, s *oidctest.Server) string {
	t.Helper()
	b, err := json.Marshal(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
