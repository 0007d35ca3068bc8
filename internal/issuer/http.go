package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
)

// Caller is who sent a token request, as the server's authenticator
// established it (SigV4, signing service "sts", any region).
type Caller struct {
	AccessKeyID string
	// Admin callers may mint for every issuer.
	Admin bool
	// IssuerScope is the one issuer an issuer-client key may mint for.
	IssuerScope string
}

// Authenticator verifies a token request's signature over body. Errors
// that are *awsquery.Error are answered as they are; others become 500.
type Authenticator func(r *http.Request, body []byte) (*Caller, error)

// Token endpoint paths. The second mints for the caller's own issuer
// (issuer-client keys) or the default issuer (administrators).
const (
	TokenPathPattern = "POST /keyless/v1/issuers/{id}/token"
	DefaultTokenPath = "/keyless/v1/token"
)

// TokenPath is the token endpoint path of issuerID ("" for the default).
func TokenPath(issuerID string) string {
	if issuerID == "" {
		return DefaultTokenPath
	}
	return "/keyless/v1/issuers/" + issuerID + "/token"
}

// Mount registers, for every issuer, its discovery document and JWKS under
// its URL path, and the token endpoint.
func (s *Service) Mount(mux *http.ServeMux) {
	for _, is := range s.order {
		mux.HandleFunc("GET "+is.path+discoverySuffix, func(w http.ResponseWriter, r *http.Request) { s.serveDiscovery(w, r, is) })
		mux.HandleFunc("GET "+is.path+jwksSuffix, func(w http.ResponseWriter, r *http.Request) { s.serveJWKS(w, r, is) })
	}
	mux.HandleFunc(TokenPathPattern, s.serveToken)
	mux.HandleFunc("POST "+DefaultTokenPath, s.serveToken)
}

// Handler is a ServeMux with only this service mounted.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Mount(mux)
	return mux
}

// discoveryDoc has the members CircleCI's issuers publish.
type discoveryDoc struct {
	Issuer                       string   `json:"issuer"`
	JWKSURI                      string   `json:"jwks_uri"`
	ResponseTypesSupported       []string `json:"response_types_supported"`
	SubjectTypesSupported        []string `json:"subject_types_supported"`
	IDTokenSigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported              []string `json:"scopes_supported"`
	ClaimsSupported              []string `json:"claims_supported"`
	RequestURIParameterSupported bool     `json:"request_uri_parameter_supported"`
	ServiceDocumentation         string   `json:"service_documentation,omitempty"`
}

// publicDocs are the discovery document and JWKS for one set of published
// keys, cached until the set changes.
type publicDocs struct {
	set                string
	nkeys              int
	jwks, discovery    []byte
	jwksETag, discETag string
}

// publicDocsAt returns the documents for the keys v publishes at now (v may
// be nil: no keys).
func (s *Service) publicDocsAt(is *issuer, v *keyView, now time.Time) *publicDocs {
	var pub []*key
	if v != nil {
		pub = v.published(now)
	}
	algs := []string{is.cfg.Algorithm}
	var set strings.Builder
	for _, k := range pub {
		set.WriteString(k.kid)
		set.WriteByte(',')
		if !slices.Contains(algs, k.alg) {
			algs = append(algs, k.alg)
		}
	}
	if c := is.docCache.Load(); c != nil && c.set == set.String() {
		return c
	}
	slices.Sort(algs)
	jwks := []byte(`{"keys":[`)
	for i, k := range pub {
		if i > 0 {
			jwks = append(jwks, ',')
		}
		jwks = append(jwks, k.jwk...)
	}
	jwks = append(jwks, "]}"...)
	disc, err := json.Marshal(discoveryDoc{
		Issuer:                       is.cfg.URL,
		JWKSURI:                      is.jwksURL,
		ResponseTypesSupported:       []string{"id_token"},
		SubjectTypesSupported:        []string{"public"},
		IDTokenSigningAlgs:           algs,
		ScopesSupported:              []string{"openid"},
		ClaimsSupported:              is.prof.supported(),
		RequestURIParameterSupported: false,
		ServiceDocumentation:         is.cfg.ServiceDocumentation,
	})
	if err != nil {
		panic(err) // only strings and bools: cannot fail
	}
	d := &publicDocs{set: set.String(), nkeys: len(pub), jwks: jwks, discovery: disc, jwksETag: etag(jwks), discETag: etag(disc)}
	is.docCache.Store(d)
	return d
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

func (s *Service) serveDiscovery(w http.ResponseWriter, r *http.Request, is *issuer) {
	// The discovery document does not depend on freshness beyond the
	// algorithm list, so it is served from whatever view this node has.
	d := s.publicDocsAt(is, is.view.Load(), s.now())
	writeCacheable(w, r, d.discovery, d.discETag, is.cfg.JWKSMaxAge)
}

func (s *Service) serveJWKS(w http.ResponseWriter, r *http.Request, is *issuer) {
	now := s.now()
	v := is.view.Load()
	if !v.fresh(now, s.timing) {
		// A stale view may lack a pre-published key; a verifier caching it
		// for max-age could then miss the next key. Refuse, uncacheably.
		s.writeError(w, r, unavailable(fmt.Errorf("%w: issuer %s", ErrStale, is.cfg.ID), "The issuer's keys could not be refreshed recently; retry later."))
		return
	}
	d := s.publicDocsAt(is, v, now)
	if d.nkeys == 0 {
		// Never let a verifier cache an empty key set.
		s.writeError(w, r, unavailable(fmt.Errorf("%w: issuer %s", ErrNoSigningKey, is.cfg.ID), "The issuer has no keys yet; retry later."))
		return
	}
	writeCacheable(w, r, d.jwks, d.jwksETag, is.cfg.JWKSMaxAge)
}

func writeCacheable(w http.ResponseWriter, r *http.Request, body []byte, tag string, maxAge time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(maxAge/time.Second), 10))
	h.Set("ETag", tag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}

// MintResponse is the JSON answer of the token endpoint.
type MintResponse struct {
	Token     string    `json:"token"`
	Issuer    string    `json:"issuer"`
	Subject   string    `json:"subject"`
	Audience  string    `json:"audience"`
	KeyID     string    `json:"kid"`
	JTI       string    `json:"jti,omitempty"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ErrorResponse is the JSON answer of the token endpoint when it fails:
// the AWS JSON protocols' error shape, also named in X-Amzn-ErrorType.
type ErrorResponse struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func (s *Service) serveToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// counted is the issuer the request is counted for: the one named in
	// the path until authorization resolves the caller's own.
	counted := r.PathValue("id")
	fail := func(e *awsquery.Error) {
		s.countMint(counted, e.Code)
		s.writeError(w, r, e)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			fail(tooLarge("The request body is larger than %d bytes.", MaxRequestBytes))
			return
		}
		fail(malformed("The request body could not be read."))
		return
	}
	if s.auth == nil {
		fail(accessDenied(fmt.Errorf("%w: no authenticator configured", ErrScope), "This server's token endpoint is not enabled."))
		return
	}
	caller, err := s.auth(r, body)
	if err != nil {
		fail(awsquery.AsError(err))
		return
	}
	if caller == nil {
		fail(awsquery.Internal("", errors.New("issuer: authenticator returned no caller")))
		return
	}
	id, aerr := s.authorize(caller, r.PathValue("id"))
	if aerr != nil {
		fail(aerr)
		return
	}
	counted = id
	req, err := DecodeMintRequest(body)
	if err != nil {
		fail(awsquery.AsError(err))
		return
	}
	tok, err := s.Mint(ctx, id, req)
	if err != nil {
		fail(awsquery.AsError(err))
		return
	}
	if s.log.Enabled(ctx, slog.LevelInfo) {
		s.log.LogAttrs(ctx, slog.LevelInfo, "issuer: minted token",
			slog.String("issuer", id), slog.String("access_key_id", caller.AccessKeyID),
			slog.String("profile", tok.Profile), slog.Any("token", tok),
			slog.String("token_sha256", tokenHash(tok.Raw)))
	}
	out, err := json.Marshal(MintResponse{
		Token: tok.Raw, Issuer: tok.Issuer, Subject: tok.Subject, Audience: tok.Audience,
		KeyID: tok.KeyID, JTI: tok.JTI, IssuedAt: tok.IssuedAt, ExpiresAt: tok.ExpiresAt,
	})
	if err != nil {
		fail(awsquery.Internal("", err))
		return
	}
	h := w.Header()
	s.requestID(h)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store") // the body is a credential
	h.Set("Content-Length", strconv.Itoa(len(out)))
	s.countMint(id, OutcomeSuccess)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// authorize applies the scope rule: administrators mint for any issuer,
// issuer-client keys only for their own. pathID "" (DefaultTokenPath)
// means the caller's own issuer, or the default one for administrators.
// Scope is checked before existence so a client key learns nothing about
// other issuers.
func (s *Service) authorize(c *Caller, pathID string) (string, *awsquery.Error) {
	id := pathID
	switch {
	case c.Admin:
		if id == "" {
			id = s.order[0].cfg.ID
		}
	case c.IssuerScope == "":
		return "", accessDenied(fmt.Errorf("%w: key %s has no issuer scope", ErrScope, c.AccessKeyID),
			fmt.Sprintf("Access key %s is not allowed to mint tokens.", c.AccessKeyID))
	default:
		if id == "" {
			id = c.IssuerScope
		}
		if id != c.IssuerScope {
			return "", accessDenied(fmt.Errorf("%w: key %s is scoped to issuer %q, asked for %q", ErrScope, c.AccessKeyID, c.IssuerScope, truncate(id, 64)),
				fmt.Sprintf("Access key %s may mint tokens only for issuer %q.", c.AccessKeyID, c.IssuerScope))
		}
	}
	if _, ok := s.issuers[id]; !ok {
		return "", noSuchIssuer(id)
	}
	return id, nil
}

func (s *Service) requestID(h http.Header) string {
	if id := h.Get(awsquery.HeaderRequestID); id != "" {
		return id
	}
	id, err := awsquery.NewRequestID(s.rand)
	if err != nil {
		id = "unknown"
	}
	h.Set(awsquery.HeaderRequestID, id)
	return id
}

func (s *Service) writeError(w http.ResponseWriter, r *http.Request, e *awsquery.Error) {
	h := w.Header()
	id := s.requestID(h)
	status := e.HTTPStatus()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(context.WithoutCancel(r.Context()), level, "issuer: request refused",
		slog.String("path", r.URL.Path), slog.String("request_id", id), slog.Int("status", status),
		slog.String("code", e.Code), slog.Any("cause", e.Err))
	body, _ := json.Marshal(ErrorResponse{Type: e.Code, Message: e.Message})
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Amzn-ErrorType", e.Code)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// tokenHash is what logs and audit records carry instead of a token.
func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}
