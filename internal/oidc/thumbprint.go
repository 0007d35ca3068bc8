package oidc

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNotHTTPS is returned for an issuer URL that is not https: a
// thumbprint is the hash of a TLS certificate, and AWS registers https
// providers only.
var ErrNotHTTPS = errors.New("not an https URL")

// Thumbprint is the thumbprint AWS keeps for an OIDC provider: the
// lowercase hex SHA-1 of the last certificate of the chain as the server
// sends it (the top intermediate CA; the certificate itself when the
// server sends only one).
func Thumbprint(chain []*x509.Certificate) (string, error) {
	if len(chain) == 0 {
		return "", fmt.Errorf("%w: no certificate presented", ErrThumbprintMismatch)
	}
	sum := sha1.Sum(chain[len(chain)-1].Raw)
	return hex.EncodeToString(sum[:]), nil
}

// HostThumbprint is the thumbprint of one host an issuer is served from.
type HostThumbprint struct {
	// Host is the URL's host (with its port when it has one).
	Host string
	// Thumbprint is [Thumbprint] of the chain the host sent.
	Thumbprint string
	// Subject names the certificate hashed.
	Subject string
	// Trusted says whether the chain verifies for the host name against
	// the trust store; AWS then does not need the thumbprint (it still
	// keeps it). TrustError says why not.
	Trusted    bool
	TrustError error
}

// ThumbprintOptions configure [IssuerThumbprints]. The zero value uses the
// system trust store, the environment's proxy settings and a 15 s timeout.
type ThumbprintOptions struct {
	Roots   *x509.CertPool   // trust store for Trusted; nil: the system's
	Now     func() time.Time // for certificate validity; nil: time.Now
	Timeout time.Duration    // for the whole look-up; 0: 15 s
	// Proxy chooses the proxy of each request; nil: http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
	// DialContext dials the TCP connections; nil: a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// AllowHTTP reads plain-http documents too (a loopback test issuer,
	// whose caller has checked it is one): they are checked the same way
	// and give no thumbprint.
	AllowHTTP bool
}

// IssuerThumbprints reads the issuer's discovery document and then its
// JWKS over HTTPS, as AWS does, and returns the thumbprint of each host
// that served them: the JWKS host first (the one AWS documents), then the
// discovery host when it is another one with another thumbprint (AWS asks
// for both then). The
// discovery document's issuer must equal issuer exactly, and the JWKS must
// be a usable key set: a provider registered for anything else would
// refuse every token.
//
// The chains are recorded whether or not the trust store vouches for
// them (a thumbprint matters exactly for chains it does not), so the
// result says what the hosts sent, not that they are who they claim:
// check an untrusted thumbprint out of band.
func IssuerThumbprints(ctx context.Context, issuer string, o ThumbprintOptions) ([]HostThumbprint, error) {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("issuer URL %q: not an absolute URL", truncate(issuer, 128))
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !o.AllowHTTP) {
		return nil, fmt.Errorf("issuer URL %q: %w", truncate(issuer, 128), ErrNotHTTPS)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Proxy == nil {
		o.Proxy = http.ProxyFromEnvironment
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	discoveryURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	body, discoveryChain, err := o.fetch(ctx, discoveryURL, maxDiscoveryBytes)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	ju, err := discoveryJWKSURI(body, issuer)
	if err != nil {
		return nil, err
	}
	jwksURI := ju.String()
	if ju.Host == "" {
		return nil, fmt.Errorf("discovery: %w: jwks_uri %q is not an absolute URL", ErrDiscovery, truncate(jwksURI, 128))
	}
	if ju.Scheme != "https" && (ju.Scheme != "http" || !o.AllowHTTP) {
		return nil, fmt.Errorf("discovery: %w: jwks_uri %q: %w", ErrDiscovery, truncate(jwksURI, 128), ErrNotHTTPS)
	}
	body, jwksChain, err := o.fetch(ctx, jwksURI, maxJWKSBytes)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if _, err := parseJWKS(body); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}

	var out []HostThumbprint
	if jwksChain != nil {
		h, err := o.hostThumbprint(ju.Host, jwksChain)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	if discoveryChain != nil && (len(out) == 0 || !strings.EqualFold(u.Host, ju.Host)) {
		h, err := o.hostThumbprint(u.Host, discoveryChain)
		if err != nil {
			return nil, err
		}
		if len(out) == 0 || h.Thumbprint != out[0].Thumbprint {
			out = append(out, h)
		}
	}
	return out, nil
}

// fetch GETs rawURL and returns its body and the certificate chain the
// server sent, unverified (IssuerThumbprints reports trust itself).
func (o ThumbprintOptions) fetch(ctx context.Context, rawURL string, limit int64) ([]byte, []*x509.Certificate, error) {
	var chain []*x509.Certificate
	client := &http.Client{
		CheckRedirect: checkRedirect,
		Transport: &http.Transport{
			Proxy:       o.Proxy,
			DialContext: o.DialContext,
			TLSClientConfig: &tls.Config{
				MinVersion: tls.VersionTLS12,
				// The chain is recorded, not trusted: hostThumbprint
				// says whether the trust store vouches for it.
				InsecureSkipVerify: true,
				VerifyConnection: func(cs tls.ConnectionState) error {
					chain = cs.PeerCertificates
					return nil
				},
			},
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: 32 << 10,
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "keyless-thumbprint")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, fmt.Errorf("%w: %w", ErrFetchTimeout, err)
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%w: %s from %s", ErrHTTPStatus, resp.Status, req.URL.Redacted())
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", req.URL.Redacted(), err)
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrResponseTooLarge, req.URL.Redacted(), limit)
	}
	if resp.TLS == nil {
		// Plain http, allowed by the caller (checkRedirect keeps the
		// scheme, and a proxy tunnels https rather than ending it).
		return body, nil, nil
	}
	if len(chain) == 0 {
		return nil, nil, fmt.Errorf("%s: no TLS certificate", req.URL.Redacted())
	}
	return body, chain, nil
}

func (o ThumbprintOptions) hostThumbprint(host string, chain []*x509.Certificate) (HostThumbprint, error) {
	tp, err := Thumbprint(chain)
	if err != nil {
		return HostThumbprint{}, fmt.Errorf("%s: %w", host, err)
	}
	h := HostThumbprint{Host: host, Thumbprint: tp, Subject: chain[len(chain)-1].Subject.String()}
	name := host
	if hn, _, err := net.SplitHostPort(host); err == nil {
		name = hn
	}
	opts := x509.VerifyOptions{
		DNSName:       strings.Trim(name, "[]"),
		Roots:         o.Roots,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   o.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, h.TrustError = chain[0].Verify(opts)
	h.Trusted = h.TrustError == nil
	return h, nil
}
