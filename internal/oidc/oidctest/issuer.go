// Package oidctest is a test OpenID Connect issuer for keyless's tests: it
// serves a discovery document and a JWKS (in-process, over plain HTTP on
// loopback, or over TLS with a generated root → intermediate → leaf chain),
// holds RSA and EC keys of several sizes, rotates them, misbehaves on
// request (outages, timeouts, slow answers, malformed or oversized
// documents, redirects), counts the requests it receives, and mints tokens
// with any header, payload bytes, encoding or signature, including the
// malicious ones a validator must refuse.
//
// It is the issuer side of internal/oidc's tests and of the STS's
// end-to-end token cases; it imports nothing from keyless.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// KeyType names the kinds of signing key the issuer can hold.
type KeyType string

// Key types. RSA1024 exists to test that weak keys are refused.
const (
	RSA1024 KeyType = "RSA-1024"
	RSA2048 KeyType = "RSA-2048"
	RSA4096 KeyType = "RSA-4096"
	ECP256  KeyType = "EC-P256"
	ECP384  KeyType = "EC-P384"
	ECP521  KeyType = "EC-P521"
)

// Key is one signing key of the issuer.
type Key struct {
	KID  string
	Type KeyType
	// Alg is the algorithm tokens signed with this key use by default.
	Alg    string
	Signer crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey
}

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.Signer.Public() }

// PublicKeyPEM returns the public key as a PEM "PUBLIC KEY" block, the
// usual "secret" in RS256→HS256 confusion attacks.
func (k *Key) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		panic(err) // only fails for unsupported key types, which Key never holds
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// JWK returns the key's public JWK as the issuer publishes it before any
// override: kty, kid, use "sig", alg and the key parameters.
func (k *Key) JWK() map[string]any {
	m := map[string]any{"kid": k.KID, "use": "sig", "alg": k.Alg}
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(pub.N.Bytes())
		m["e"] = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		m["kty"] = "EC"
		size := (pub.Curve.Params().BitSize + 7) / 8
		raw, err := pub.Bytes() // 0x04 ‖ X ‖ Y
		if err != nil {
			panic(err)
		}
		m["crv"] = pub.Curve.Params().Name
		m["x"] = b64(raw[1 : 1+size])
		m["y"] = b64(raw[1+size:])
	}
	return m
}

// GenerateKey makes a key of type t with the given kid.
func GenerateKey(t KeyType, kid string) (*Key, error) {
	k := &Key{KID: kid, Type: t}
	var err error
	switch t {
	case RSA1024, RSA2048, RSA4096:
		bits := map[KeyType]int{RSA1024: 1024, RSA2048: 2048, RSA4096: 4096}[t]
		k.Alg = "RS256"
		k.Signer, err = rsa.GenerateKey(rand.Reader, bits)
	case ECP256:
		k.Alg = "ES256"
		k.Signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECP384:
		k.Alg = "ES384"
		k.Signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case ECP521:
		k.Alg = "ES512"
		k.Signer, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		return nil, fmt.Errorf("oidctest: unknown key type %q", t)
	}
	if err != nil {
		return nil, fmt.Errorf("oidctest: generating %s key: %w", t, err)
	}
	return k, nil
}

// Failure makes the issuer misbehave. The zero value is a healthy issuer.
type Failure struct {
	// Status, when non-zero, is answered instead of the document.
	Status int
	// Delay postpones the answer (the request's context still ends it).
	Delay time.Duration
	// Hang blocks until the client gives up.
	Hang bool
	// DiscoveryOnly or JWKSOnly limit the failure to one document.
	DiscoveryOnly, JWKSOnly bool
}

// Counts is the number of requests served, by document.
type Counts struct {
	Discovery int
	JWKS      int
	Other     int
}

// Issuer is an in-memory OIDC issuer and an http.Handler serving its
// discovery document and JWKS. All methods are safe for concurrent use.
type Issuer struct {
	url  string
	path string
	now  func() time.Time

	mu             sync.Mutex
	keys           []*Key // published, in order
	current        *Key
	overrides      map[string]map[string]any // kid → JWK member overrides
	extraJWKs      []map[string]any
	rawJWKS        []byte
	rawDiscovery   []byte
	discoveryExtra map[string]any
	jwksRedirect   string
	cacheControl   string
	failure        Failure
	counts         Counts
	hosts          []string
	kidSeq         int
}

// Options configures an Issuer.
type Options struct {
	// Now is the clock for minted tokens (default time.Now).
	Now func() time.Time
	// Keys are generated at start; the first is the current signing key.
	// Default: one RSA-2048 key, unless PublishKeys is set.
	Keys []KeyType
	// PublishKeys are existing keys to publish (key generation is slow, so
	// tests share keys between issuers); the first is the current signing
	// key unless Keys is also set.
	PublishKeys []*Key
	// CacheControl is sent with the JWKS (default "max-age=3600").
	CacheControl string
	// Host, for NewServer and NewTLSServer, replaces 127.0.0.1 in the
	// issuer URL (the port is kept), e.g. "localhost" or a name a test
	// resolver maps to 127.0.0.1.
	Host string
}

// NewIssuer returns an issuer whose identifier is issuerURL. It serves the
// discovery document at <path of issuerURL>/.well-known/openid-configuration
// and the JWKS at <path>/.well-known/jwks.json.
func NewIssuer(issuerURL string, opts Options) (*Issuer, error) {
	i := &Issuer{url: issuerURL, now: opts.Now, cacheControl: opts.CacheControl, overrides: map[string]map[string]any{}}
	if i.now == nil {
		i.now = time.Now
	}
	if i.cacheControl == "" {
		i.cacheControl = "max-age=3600"
	}
	if _, rest, ok := strings.Cut(issuerURL, "://"); ok {
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			i.path = strings.TrimSuffix(rest[j:], "/")
		}
	}
	for _, k := range opts.PublishKeys {
		i.PublishKey(k)
	}
	if len(opts.PublishKeys) > 0 {
		i.current = opts.PublishKeys[0]
	}
	types := opts.Keys
	if len(types) == 0 && len(opts.PublishKeys) == 0 {
		types = []KeyType{RSA2048}
	}
	for n, t := range types {
		k, err := i.AddKey(t, "")
		if err != nil {
			return nil, err
		}
		if n == 0 {
			i.current = k
		}
	}
	return i, nil
}

// URL is the issuer identifier, the iss of minted tokens.
func (i *Issuer) URL() string { return i.url }

// DiscoveryPath and JWKSPath are where the documents are served.
func (i *Issuer) DiscoveryPath() string { return i.path + "/.well-known/openid-configuration" }

// JWKSPath is the path of the JWKS.
func (i *Issuer) JWKSPath() string { return i.path + "/.well-known/jwks.json" }

// JWKSURL is the jwks_uri the discovery document announces by default.
func (i *Issuer) JWKSURL() string { return strings.TrimSuffix(i.url, "/") + "/.well-known/jwks.json" }

// AddKey generates and publishes a key; kid "" picks a fresh one. The
// current signing key is unchanged.
func (i *Issuer) AddKey(t KeyType, kid string) (*Key, error) {
	i.mu.Lock()
	if kid == "" {
		i.kidSeq++
		kid = fmt.Sprintf("key-%d-%s", i.kidSeq, strings.ToLower(string(t)))
	}
	i.mu.Unlock()
	k, err := GenerateKey(t, kid)
	if err != nil {
		return nil, err
	}
	i.PublishKey(k)
	return k, nil
}

// PublishKey adds an existing key to the JWKS.
func (i *Issuer) PublishKey(k *Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, k)
}

// Rotate publishes a new key of type t and makes it the signing key; old
// keys stay published until Unpublish.
func (i *Issuer) Rotate(t KeyType) (*Key, error) {
	k, err := i.AddKey(t, "")
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	i.current = k
	i.mu.Unlock()
	return k, nil
}

// RotateTo publishes k (if it is not yet) and makes it the signing key.
func (i *Issuer) RotateTo(k *Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	published := false
	for _, p := range i.keys {
		published = published || p == k
	}
	if !published {
		i.keys = append(i.keys, k)
	}
	i.current = k
}

// Unpublish removes a key from the JWKS (it can still sign).
func (i *Issuer) Unpublish(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for n, k := range i.keys {
		if k.KID == kid {
			i.keys = append(i.keys[:n:n], i.keys[n+1:]...)
			return
		}
	}
}

// CurrentKey is the key tokens are signed with by default.
func (i *Issuer) CurrentKey() *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.current
}

// Key returns a published key by kid, or nil.
func (i *Issuer) Key(kid string) *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.KID == kid {
			return k
		}
	}
	return nil
}

// KeyOfType returns the first published key of type t, generating and
// publishing one if there is none.
func (i *Issuer) KeyOfType(t KeyType) (*Key, error) {
	i.mu.Lock()
	for _, k := range i.keys {
		if k.Type == t {
			i.mu.Unlock()
			return k, nil
		}
	}
	i.mu.Unlock()
	return i.AddKey(t, "")
}

// OverrideJWK replaces members of one published JWK (nil deletes a
// member): {"use": "enc"}, {"e": "AQ"}, {"alg": "RS512"}, {"crv": "P-384"}.
func (i *Issuer) OverrideJWK(kid string, members map[string]any) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.overrides[kid] == nil {
		i.overrides[kid] = map[string]any{}
	}
	maps.Copy(i.overrides[kid], members)
}

// AddRawJWK publishes an arbitrary JWK object after the keys.
func (i *Issuer) AddRawJWK(m map[string]any) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.extraJWKs = append(i.extraJWKs, m)
}

// SetRawJWKS serves body verbatim as the JWKS (nil restores the real one).
func (i *Issuer) SetRawJWKS(body []byte) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rawJWKS = body
}

// SetRawDiscovery serves body verbatim as the discovery document.
func (i *Issuer) SetRawDiscovery(body []byte) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rawDiscovery = body
}

// SetDiscovery overrides members of the discovery document, such as
// "issuer" or "jwks_uri" (nil deletes a member).
func (i *Issuer) SetDiscovery(members map[string]any) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.discoveryExtra = maps.Clone(members)
}

// RedirectJWKS answers JWKS requests with a 302 to location ("" stops),
// except requests for location itself, which get the JWKS: redirecting to
// JWKSPath()+"?moved" makes a same-origin redirect that succeeds.
func (i *Issuer) RedirectJWKS(location string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.jwksRedirect = location
}

// SetCacheControl sets the JWKS Cache-Control header ("" sends none).
func (i *Issuer) SetCacheControl(v string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cacheControl = v
}

// SetFailure makes the issuer misbehave; Failure{} heals it.
func (i *Issuer) SetFailure(f Failure) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.failure = f
}

// Requests returns the requests served so far.
func (i *Issuer) Requests() Counts {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.counts
}

// Hosts returns the Host of every request received, in order.
func (i *Issuer) Hosts() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.hosts...)
}

// ResetRequests zeroes the counters.
func (i *Issuer) ResetRequests() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.counts = Counts{}
	i.hosts = nil
}

// JWKS returns the JWK set as served (without raw overrides).
func (i *Issuer) JWKS() map[string]any {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwksLocked()
}

func (i *Issuer) jwksLocked() map[string]any {
	keys := make([]any, 0, len(i.keys)+len(i.extraJWKs))
	for _, k := range i.keys {
		m := k.JWK()
		for name, v := range i.overrides[k.KID] {
			if v == nil {
				delete(m, name)
			} else {
				m[name] = v
			}
		}
		keys = append(keys, m)
	}
	for _, m := range i.extraJWKs {
		keys = append(keys, m)
	}
	return map[string]any{"keys": keys}
}

// ServeHTTP serves the discovery document and the JWKS.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	i.hosts = append(i.hosts, r.Host)
	var isDiscovery, isJWKS bool
	switch r.URL.Path {
	case i.DiscoveryPath():
		i.counts.Discovery++
		isDiscovery = true
	case i.JWKSPath():
		i.counts.JWKS++
		isJWKS = true
	default:
		i.counts.Other++
	}
	f := i.failure
	i.mu.Unlock()
	if !isDiscovery && !isJWKS {
		http.NotFound(w, r)
		return
	}
	applies := !(f.DiscoveryOnly && !isDiscovery) && !(f.JWKSOnly && !isJWKS)
	if applies {
		if f.Hang {
			<-r.Context().Done()
			return
		}
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if f.Status != 0 {
			http.Error(w, http.StatusText(f.Status), f.Status)
			return
		}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if isDiscovery {
		if i.rawDiscovery != nil {
			w.Write(i.rawDiscovery)
			return
		}
		doc := map[string]any{
			"issuer":                                i.url,
			"jwks_uri":                              i.JWKSURL(),
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "ES384", "ES512"},
		}
		for k, v := range i.discoveryExtra {
			if v == nil {
				delete(doc, k)
			} else {
				doc[k] = v
			}
		}
		json.NewEncoder(w).Encode(doc)
		return
	}
	if i.jwksRedirect != "" && i.jwksRedirect != requestURL(r) {
		http.Redirect(w, r, i.jwksRedirect, http.StatusFound)
		return
	}
	if i.cacheControl != "" {
		w.Header().Set("Cache-Control", i.cacheControl)
	}
	if i.rawJWKS != nil {
		w.Write(i.rawJWKS)
		return
	}
	json.NewEncoder(w).Encode(i.jwksLocked())
}

// HostMux routes requests to issuers by Host, for tests with several
// issuers behind one Transport. Requests to unknown hosts get 404 and are
// recorded in Unrouted.
type HostMux struct {
	mu       sync.Mutex
	handlers map[string]http.Handler
	unrouted []string
}

// Handle serves host (as in the URL, with port if any) with h.
func (m *HostMux) Handle(host string, h http.Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.handlers == nil {
		m.handlers = map[string]http.Handler{}
	}
	m.handlers[host] = h
}

// Unrouted lists the URLs of requests no handler took.
func (m *HostMux) Unrouted() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.unrouted...)
}

// ServeHTTP implements http.Handler.
func (m *HostMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	h := m.handlers[r.Host]
	if h == nil {
		m.unrouted = append(m.unrouted, r.Host+r.URL.Path)
	}
	m.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// requestURL reconstructs the absolute URL a request was sent to.
func requestURL(r *http.Request) string {
	if r.URL.IsAbs() { // in-process Transport: the client's URL
		return r.URL.String()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
