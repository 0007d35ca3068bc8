package oidctest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Server is an Issuer served by an httptest server on loopback.
type Server struct {
	*Issuer
	HTTP *httptest.Server
	// TLS chain, for NewTLSServer: the server presents Leaf and
	// Intermediate; Root is only in RootPool.
	Root, Intermediate, Leaf *x509.Certificate
}

// NewServer starts a plain-HTTP issuer on 127.0.0.1; its URL is
// http://127.0.0.1:PORT + path (path "" or like "/oidc"). The server is
// closed when the test ends.
func NewServer(tb testing.TB, path string, opts Options) *Server {
	tb.Helper()
	s := &Server{}
	var iss *Issuer
	s.HTTP = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { iss.ServeHTTP(w, r) }))
	tb.Cleanup(s.HTTP.Close)
	// The issuer exists before the server serves: its handler reads iss
	// (a request from another process would otherwise race with it).
	iss, err := NewIssuer(withHost("http://"+s.HTTP.Listener.Addr().String(), opts.Host)+path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	s.HTTP.Start()
	s.Issuer = iss
	return s
}

// NewTLSServer starts an HTTPS issuer on 127.0.0.1 with a freshly generated
// chain root → intermediate → leaf (leaf valid for 127.0.0.1, ::1 and
// localhost). The server presents leaf and intermediate, so the
// intermediate is "the last certificate" whose SHA-1 is the AWS thumbprint.
func NewTLSServer(tb testing.TB, path string, opts Options) *Server {
	tb.Helper()
	s := &Server{}
	chain, err := NewChain(time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	s.Root, s.Intermediate, s.Leaf = chain.Root, chain.Intermediate, chain.Leaf
	var iss *Issuer
	s.HTTP = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { iss.ServeHTTP(w, r) }))
	s.HTTP.TLS = &tls.Config{Certificates: []tls.Certificate{chain.TLSCertificate()}}
	// Handshakes refused by the client (the thumbprint tests) are expected.
	s.HTTP.Config.ErrorLog = log.New(io.Discard, "", 0)
	tb.Cleanup(s.HTTP.Close)
	iss, err = NewIssuer(withHost("https://"+s.HTTP.Listener.Addr().String(), opts.Host)+path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	s.HTTP.StartTLS()
	s.Issuer = iss
	return s
}

func withHost(serverURL, host string) string {
	if host == "" {
		return serverURL
	}
	return strings.Replace(serverURL, "127.0.0.1", host, 1)
}

// RootPool is a pool holding only the generated root.
func (s *Server) RootPool() *x509.CertPool {
	p := x509.NewCertPool()
	if s.Root != nil {
		p.AddCert(s.Root)
	}
	return p
}

// Thumbprint is the AWS-style thumbprint of the server: the hex SHA-1 of
// the last certificate it presents (the intermediate).
func (s *Server) Thumbprint() string { return Thumbprint(s.Intermediate) }

// Thumbprint returns the lower-case hex SHA-1 of a certificate.
func Thumbprint(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Chain is a generated certificate chain.
type Chain struct {
	Root, Intermediate, Leaf *x509.Certificate
	LeafKey                  *ecdsa.PrivateKey
}

// TLSCertificate is the leaf with its intermediate, as a server presents it.
func (c *Chain) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Leaf.Raw, c.Intermediate.Raw}, PrivateKey: c.LeafKey, Leaf: c.Leaf}
}

// NewChain generates root → intermediate → leaf, valid from an hour before
// now for a day, with P-256 keys.
func NewChain(now time.Time) (*Chain, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notBefore, notAfter := now.Add(-time.Hour), now.Add(24*time.Hour)
	ca := func(cn string, serial int64) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: notBefore, NotAfter: notAfter,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true, IsCA: true,
		}
	}
	rootT := ca("oidctest root", 1)
	rootDER, err := x509.CreateCertificate(rand.Reader, rootT, rootT, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}
	interT := ca("oidctest intermediate", 2)
	interDER, err := x509.CreateCertificate(rand.Reader, interT, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	inter, err := x509.ParseCertificate(interDER)
	if err != nil {
		return nil, err
	}
	leafT := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, inter, &leafKey.PublicKey, interKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, err
	}
	return &Chain{Root: root, Intermediate: inter, Leaf: leaf, LeafKey: leafKey}, nil
}

// Transport is an http.RoundTripper that serves every request in-process
// with handler, whatever its host, without any network. Under
// testing/synctest this keeps the whole exchange inside the bubble, so that
// delays and timeouts run on the fake clock. The handler sees the
// request's context and runs in its own goroutine; a request whose context
// ends before the handler answers fails with the context's error.
type Transport struct {
	Handler http.Handler
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Give the handler a server-side copy of the request.
		sreq := req.Clone(req.Context())
		sreq.RequestURI = req.URL.RequestURI()
		sreq.Body = http.NoBody
		if sreq.Host == "" {
			sreq.Host = req.URL.Host
		}
		t.Handler.ServeHTTP(rec, sreq)
	}()
	select {
	case <-done:
	case <-req.Context().Done():
		return nil, fmt.Errorf("oidctest: in-process round trip: %w", context.Cause(req.Context()))
	}
	resp := rec.Result()
	resp.Request = req
	if req.URL.Scheme == "https" {
		// Stands for a verified TLS connection.
		resp.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}
