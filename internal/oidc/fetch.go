package oidc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Response size caps (V16). A discovery document is a few KiB (Google's is
// 1.5 KiB, Keycloak's about 6 KiB); a JWKS of 100 RSA-4096 and 100 P-521 keys
// is about 120 KiB. The caps leave an order of magnitude of room.
const (
	maxDiscoveryBytes = 64 << 10
	maxJWKSBytes      = 1 << 20
	maxRedirects      = 3
)

// How the TLS connection to the provider was verified, for the audit trail
// (CloudTrail additionalEventData.identityProviderConnectionVerificationMethod).
const (
	VerifiedByTrustStore = "IAMTrustStore"
	VerifiedByThumbprint = "Thumbprint"
	// VerifiedPlainHTTP marks keys fetched over plain http from a loopback
	// issuer (--allow-loopback-http-issuers); AWS has no such value.
	VerifiedPlainHTTP = "PlainHTTP"
)

// fetchResult is the outcome of one successful refresh.
type fetchResult struct {
	keys   *keySet
	ttl    time.Duration
	method string
	size   int
}

// methodRecorder collects how each TLS connection of one refresh was
// verified; the weakest one is reported.
type methodRecorder struct {
	mu      sync.Mutex
	methods []string
}

func (r *methodRecorder) add(m string) {
	r.mu.Lock()
	r.methods = append(r.methods, m)
	r.mu.Unlock()
}

func (r *methodRecorder) result() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case slices.Contains(r.methods, VerifiedPlainHTTP):
		return VerifiedPlainHTTP
	case slices.Contains(r.methods, VerifiedByThumbprint):
		return VerifiedByThumbprint
	case len(r.methods) > 0:
		return VerifiedByTrustStore
	}
	return ""
}

// fetchKeys reads the provider's discovery document and then its JWKS. ctx
// bounds the whole refresh (FetchTimeout, 5 s by default as AWS).
func (v *Validator) fetchKeys(ctx context.Context, issuer string, thumbprints []string) (*fetchResult, error) {
	rec := &methodRecorder{}
	client := v.fetchClient(thumbprints, rec)

	discoveryURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	body, _, err := v.get(ctx, client, discoveryURL, maxDiscoveryBytes, rec)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	ju, err := discoveryJWKSURI(body, issuer)
	if err != nil {
		return nil, err
	}
	body, hdr, err := v.get(ctx, client, ju.String(), maxJWKSBytes, rec)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	ks, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return &fetchResult{keys: ks, ttl: v.jitter(keyTTL(hdr.Get("Cache-Control"))), method: rec.result(), size: len(body)}, nil
}

// get performs one bounded GET.
func (v *Validator) get(ctx context.Context, client *http.Client, rawURL string, limit int64, rec *methodRecorder) ([]byte, http.Header, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrDestinationRefused, err)
	}
	if err := v.policy.checkFetchURL(u); err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	// Ask intermediaries (CDNs) for a fresh copy: we refresh rarely and
	// usually because a key is missing.
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", "keyless-oidc")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, fmt.Errorf("%w: %w", ErrFetchTimeout, err)
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	if v.opts.Transport != nil {
		// The injected transport did its own TLS; report what it says.
		if resp.TLS != nil {
			rec.add(VerifiedByTrustStore)
		} else {
			rec.add(VerifiedPlainHTTP)
		}
	} else if resp.Request != nil && resp.Request.URL.Scheme == "http" {
		rec.add(VerifiedPlainHTTP)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%w: %s from %s", ErrHTTPStatus, resp.Status, u.Redacted())
	}
	if resp.ContentLength > limit {
		return nil, nil, fmt.Errorf("%w: Content-Length %d exceeds %d bytes", ErrResponseTooLarge, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, fmt.Errorf("%w: reading body: %w", ErrFetchTimeout, err)
		}
		return nil, nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("%w: body exceeds %d bytes", ErrResponseTooLarge, limit)
	}
	return body, resp.Header, nil
}

// fetchClient builds the HTTP client for one refresh. A fresh transport per
// refresh (refreshes are rare) with keep-alives off means every connection
// goes through the guarded dialler and the TLS check below, and the
// verification method can be attributed to this refresh.
func (v *Validator) fetchClient(thumbprints []string, rec *methodRecorder) *http.Client {
	client := &http.Client{CheckRedirect: checkRedirect}
	if v.opts.Transport != nil {
		client.Transport = v.opts.Transport
		return client
	}
	client.Transport = &http.Transport{
		// Never a proxy from the environment: it would dial on our behalf
		// and bypass the destination policy.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return v.policy.guardedDial(ctx, v.resolver, v.dial, network, addr, true)
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := v.policy.guardedDial(ctx, v.resolver, v.dial, network, addr, false)
			if err != nil {
				return nil, err
			}
			host, _, _ := net.SplitHostPort(addr)
			cfg := &tls.Config{
				ServerName: host,
				MinVersion: tls.VersionTLS12,
				NextProtos: []string{"http/1.1"},
				// Verification is done in VerifyConnection so that the
				// thumbprint fallback can run when the trust store fails.
				InsecureSkipVerify: true,
				VerifyConnection: func(cs tls.ConnectionState) error {
					m, err := v.verifyPeer(cs.PeerCertificates, host, thumbprints)
					if err != nil {
						return err
					}
					rec.add(m)
					return nil
				},
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 32 << 10,
	}
	return client
}

// checkRedirect allows a few redirects on the same scheme and host only: a
// provider must not send us to another host (SSRF, OIDC Discovery §4.3).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrRedirectRefused, maxRedirects)
	}
	orig := via[0].URL
	if req.URL.Scheme != orig.Scheme || !strings.EqualFold(req.URL.Host, orig.Host) {
		return fmt.Errorf("%w: from %s://%s to another origin %s://%s", ErrRedirectRefused, orig.Scheme, orig.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// verifyPeer checks the provider's certificate chain the way AWS describes
// (aws-sts-iam.md §2.2): first against the trust store; when that fails,
// against the provider's thumbprints, which are the SHA-1 of the last
// certificate the server presents (the top intermediate CA). In thumbprint
// mode the pinned certificate becomes the only trust anchor and the chain
// and host name must still verify against it, so a thumbprint cannot be
// satisfied by a chain that merely ends in the right certificate.
func (v *Validator) verifyPeer(certs []*x509.Certificate, host string, thumbprints []string) (string, error) {
	if len(certs) == 0 {
		return "", fmt.Errorf("%w: no certificate presented", ErrThumbprintMismatch)
	}
	leaf := certs[0]
	opts := x509.VerifyOptions{
		DNSName:       host,
		Roots:         v.roots,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   v.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, trustErr := leaf.Verify(opts)
	if trustErr == nil {
		return VerifiedByTrustStore, nil
	}
	top := certs[len(certs)-1]
	got, _ := Thumbprint(certs) // certs is not empty
	if !slices.ContainsFunc(thumbprints, func(t string) bool { return strings.EqualFold(t, got) }) {
		return "", fmt.Errorf("%w: not trusted (%w) and the top certificate's thumbprint %s is not configured", ErrThumbprintMismatch, trustErr, got)
	}
	opts.Roots = x509.NewCertPool()
	opts.Roots.AddCert(top)
	opts.Intermediates = x509.NewCertPool()
	for _, c := range certs[1 : len(certs)-1] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return "", fmt.Errorf("%w: thumbprint %s matches but the chain does not verify to it: %w", ErrThumbprintMismatch, got, err)
	}
	return VerifiedByThumbprint, nil
}

// fetchErrorClass is the bounded label used for metrics and logs.
func fetchErrorClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrFetchTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrThumbprintMismatch):
		return "tls"
	case errors.Is(err, ErrDestinationRefused), errors.Is(err, ErrRedirectRefused):
		return "refused"
	case errors.Is(err, ErrResponseTooLarge):
		return "too_large"
	case errors.Is(err, ErrHTTPStatus):
		return "http_status"
	case errors.Is(err, ErrDiscovery), errors.Is(err, ErrJWKS):
		return "invalid_document"
	}
	return "network"
}

// discoveryJWKSURI reads a discovery document: its issuer must be exactly
// the URL it was fetched for (OIDC Discovery §4.3; otherwise one issuer
// could impersonate another), and its jwks_uri an absolute URL (where it
// may be fetched from is the fetcher's policy).
func discoveryJWKSURI(body []byte, issuer string) (*url.URL, error) {
	doc, err := parseJSONObject(body, maxJSONDepth)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w: %w", ErrDiscovery, err)
	}
	if got, _ := doc["issuer"].(string); got != issuer {
		return nil, fmt.Errorf("discovery: %w: issuer %q does not equal the issuer URL %q", ErrDiscovery, truncate(got, 128), issuer)
	}
	jwksURI, _ := doc["jwks_uri"].(string)
	u, err := url.Parse(jwksURI)
	if err != nil || !u.IsAbs() {
		return nil, fmt.Errorf("discovery: %w: jwks_uri %q is not an absolute URL", ErrDiscovery, truncate(jwksURI, 128))
	}
	return u, nil
}
