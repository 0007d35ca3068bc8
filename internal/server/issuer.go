package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/issuer"
)

// The built-in OIDC issuer: discovery and JWKS under each issuer's URL
// path, and the token endpoint, authenticated with SigV4 (service sts) by
// an administrator or an issuer-client key.

func (s *Server) openIssuer(ctx context.Context, cfg Config, o Options) error {
	if len(cfg.Issuers) == 0 {
		return nil
	}
	svc, err := issuer.New(issuer.Options{
		Keys: s.store.KeyMaterial(), Master: s.master, Issuers: cfg.IssuerConfigs(),
		Now: o.Now, Rand: o.Rand, Logger: o.Logger.With("component", "issuer"),
		Authenticate: s.authenticateMint, Registerer: s.metrics.reg,
	})
	if err != nil {
		return err
	}
	if err := svc.Sync(ctx); err != nil {
		return err
	}
	s.issuer = svc
	return nil
}

// authenticateMint verifies a token request's SigV4 signature.
func (s *Server) authenticateMint(r *http.Request, body []byte) (*issuer.Caller, error) {
	caller, _, err := s.api.auth.authenticate(r.Context(), r, body, "sts")
	if err != nil {
		return nil, err
	}
	c := &issuer.Caller{AccessKeyID: caller.AccessKeyID}
	switch caller.Kind {
	case awsquery.CallerAdmin:
		c.Admin = true
	case awsquery.CallerIssuerClient:
		c.IssuerScope = caller.Scope
	}
	// Record who asked, for the audit event of this request.
	if rec, ok := r.Context().Value(mintCallerKey{}).(*mintRecord); ok {
		rec.caller = caller
	}
	return c, nil
}

type mintCallerKey struct{}

// mintRecord collects what the audit event of one mint needs.
type mintRecord struct {
	caller *awsquery.Caller
}

// heldResponse holds a response back from the client: the token endpoint's
// answer is written only once its audit record is durable.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *heldResponse) Header() http.Header { return w.header }

func (w *heldResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *heldResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// release writes the held response to the client.
func (w *heldResponse) release(to http.ResponseWriter) {
	h := to.Header()
	for k, v := range w.header {
		h[k] = v
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	to.WriteHeader(w.status)
	_, _ = to.Write(w.body.Bytes())
}

// auditMints wraps the token endpoint so every mint, granted or refused,
// is in the trail: eventSource issuer.keyless, eventName MintIdToken, the
// request's audience/subject/profile/claim names, and the token's SHA-256 —
// never the token. A minted token leaves the server only after its event is
// durable; when it cannot be recorded the client gets ServiceUnavailable
// and no token.
func (s *Server) auditMints(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/keyless/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		start := s.now()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, issuer.MaxRequestBytes+1))
		if err != nil {
			body = nil
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &mintRecord{}
		r = r.WithContext(context.WithValue(r.Context(), mintCallerKey{}, rec))
		held := &heldResponse{header: http.Header{}}
		next.ServeHTTP(held, r)
		if rec.caller == nil || s.api.recorder == nil {
			held.release(w) // unauthenticated: not an audited call, and no token
			return
		}
		var req struct {
			Audience string         `json:"audience"`
			Subject  string         `json:"subject"`
			Profile  string         `json:"profile"`
			Claims   map[string]any `json:"claims"`
		}
		_ = json.Unmarshal(body, &req)
		params := map[string]any{"path": r.URL.Path}
		if req.Audience != "" {
			params["audience"] = req.Audience
		}
		if req.Subject != "" {
			params["subject"] = req.Subject
		}
		if req.Profile != "" {
			params["profile"] = req.Profile
		}
		if len(req.Claims) > 0 {
			names := make([]string, 0, len(req.Claims))
			for k := range req.Claims {
				names = append(names, k)
			}
			sort.Strings(names)
			params["claimNames"] = names
		}
		c := audit.Call{
			Time: start.UTC(), Source: "issuer.keyless", Name: "MintIdToken", Region: s.cfg.Region,
			SourceIP: s.api.sourceIP(r), UserAgent: r.UserAgent(), RequestID: held.header.Get(awsquery.HeaderRequestID),
			Identity: (&auditRecorder{}).identity(rec.caller), RequestParameters: params,
		}
		minted := held.status == http.StatusOK
		if minted {
			var resp issuer.MintResponse
			if json.Unmarshal(held.body.Bytes(), &resp) == nil {
				c.ResponseElements = map[string]any{
					"issuer": resp.Issuer, "subject": resp.Subject, "audience": resp.Audience, "kid": resp.KeyID, "jti": resp.JTI,
					"expiration": resp.ExpiresAt.UTC().Format(time.RFC3339), "tokenSHA256": audit.SHA256Hex(resp.Token),
				}
			}
		} else {
			var e issuer.ErrorResponse
			_ = json.Unmarshal(held.body.Bytes(), &e)
			c.ErrorCode, c.ErrorMessage = e.Type, e.Message
			if c.ErrorCode == "" {
				c.ErrorCode = http.StatusText(held.status)
			}
		}
		pending, err := s.api.recorder.StartEvent(r.Context(), c, minted)
		if err == nil {
			err = pending.Wait(r.Context())
		}
		if err != nil {
			s.log.Error("audit record of a mint failed", "err", err, "minted", minted)
			if minted {
				url, _ := c.ResponseElements["issuer"].(string)
				s.issuer.CountWithheld(url)
				held.body.Reset()
				writeMintUnavailable(w, held.header.Get(awsquery.HeaderRequestID))
				return
			}
		}
		held.release(w)
	})
}

// writeMintUnavailable answers a mint whose record could not be written,
// in the token endpoint's error shape, without the token.
func writeMintUnavailable(w http.ResponseWriter, requestID string) {
	body, _ := json.Marshal(issuer.ErrorResponse{Type: awsquery.CodeServiceUnavailable,
		Message: "The token was not issued because it could not be recorded in the audit trail. Retry the request."})
	h := w.Header()
	if requestID != "" {
		h.Set(awsquery.HeaderRequestID, requestID)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Amzn-ErrorType", awsquery.CodeServiceUnavailable)
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(body)
}
