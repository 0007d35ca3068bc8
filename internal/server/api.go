package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sigv4"
)

// Authorizer decides whether an authenticated caller may call an action;
// it returns an AccessDenied *awsquery.Error when not.
type Authorizer func(ctx context.Context, r *awsquery.Request, a awsquery.Action) error

// Recorder is the one place every API call's audit event goes through.
// StartCall records call's event; when the event must be durable the
// returned Pending's Wait (called exactly once) reports when it is, so the
// response can be rendered in the meantime. The Pending is used only when
// the error is nil.
type Recorder interface {
	StartCall(ctx context.Context, call *Call) (audit.Pending, error)
}

// Call is everything known about one finished API call, for the audit
// trail.
type Call struct {
	Action  awsquery.Action
	Request *awsquery.Request
	Result  any
	Err     *awsquery.Error // nil on success
	// Durable is set when the event must be on disk before the response.
	Durable bool
}

// queryAPI is the AWS Query endpoint: POST / with a form body, or GET /
// with a query string, dispatched on Action.
type queryAPI struct {
	actions   map[string]awsquery.Action
	auth      *authenticator
	authorize Authorizer
	recorder  Recorder
	log       *slog.Logger
	now       func() time.Time
	rand      io.Reader
	region    string
	maxBody   int64
	metrics   *metrics
	trustXFF  bool
}

func (q *queryAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := q.now()
	reqID, err := awsquery.NewRequestID(q.rand)
	if err != nil {
		http.Error(w, "entropy unavailable", http.StatusServiceUnavailable)
		return
	}
	req := &awsquery.Request{RequestID: reqID, Time: start.UTC(), SourceIP: q.sourceIP(r), UserAgent: r.UserAgent(), Region: q.region}
	action, result, aerr := q.serve(r, req)
	ns := awsquery.NamespaceSTS
	if action.Service == "iam" {
		ns = awsquery.NamespaceIAM
	}
	render := func() awsquery.Rendered {
		if aerr != nil {
			return awsquery.RenderError(ns, reqID, aerr)
		}
		return awsquery.RenderResponse(ns, action.Name, reqID, result)
	}
	var resp awsquery.Rendered
	if action.Handle != nil && (req.Caller != nil || action.Unsigned) && q.recorder != nil {
		call := &Call{Action: action, Request: req, Result: result, Err: aerr, Durable: req.Note.Durable}
		pending, rerr := q.recorder.StartCall(r.Context(), call)
		if rerr == nil {
			// Render while the journal syncs; nothing is sent before the
			// event is durable.
			resp = render()
			rerr = pending.Wait(r.Context())
		}
		if rerr != nil {
			q.log.ErrorContext(r.Context(), "audit record failed", "request_id", reqID, "action", action.Name, "err", rerr)
			if req.Note.Durable {
				// Credentials must not leave the server unless their
				// issuance is on record.
				resp.Discard()
				resp = awsquery.Rendered{}
				aerr, result = awsquery.Internal(awsquery.CodeServiceUnavailable, rerr), nil
				aerr.Message = "The request could not be recorded in the audit trail. Retry the request."
			}
		}
	}
	if resp == (awsquery.Rendered{}) {
		resp = render()
	}
	resp.Write(w)
	q.finish(r, req, action, aerr, start)
}

// serve decodes, authenticates, authorizes and runs one call.
func (q *queryAPI) serve(r *http.Request, req *awsquery.Request) (awsquery.Action, any, *awsquery.Error) {
	var none awsquery.Action
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return none, nil, &awsquery.Error{Code: awsquery.CodeInvalidHTTPRequest, Status: http.StatusMethodNotAllowed,
			Message: "The HTTP method " + r.Method + " is not supported: send POST with a form body or GET with a query string."}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, q.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return none, nil, awsquery.Errorf(awsquery.CodeRequestEntityTooLarge, "The request body is larger than %d bytes.", q.maxBody)
		}
		return none, nil, awsquery.NewError(awsquery.CodeInvalidHTTPRequest, "The request body could not be read.").Wrap(err)
	}
	if len(body) > 0 {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/x-www-form-urlencoded" {
				return none, nil, awsquery.Errorf(awsquery.CodeInvalidHTTPRequest, "Unsupported Content-Type %q: the Query API takes application/x-www-form-urlencoded.", ct)
			}
		}
	}
	params, err := awsquery.ParseParams(body, apiQuery(r.URL.RawQuery))
	if err != nil {
		return none, nil, awsquery.AsError(err)
	}
	req.Params = params
	name, ok := params.Get("Action")
	if !ok || name == "" {
		return none, nil, awsquery.NewError(awsquery.CodeMissingAction, "The request must contain the parameter Action.")
	}
	action, known := q.actions[name]
	if !known || !action.Unsigned {
		service := action.Service
		if !known {
			service = "" // any allowed service: report the signature problem first
		}
		caller, sig, err := q.authenticateFor(r, body, service)
		if err != nil {
			// Name the action in logs and metrics, but an unauthenticated
			// call is not an audited call (CloudTrail does not record
			// requests whose signature fails either).
			return awsquery.Action{Name: action.Name, Service: action.Service}, nil, awsquery.AsError(err)
		}
		req.Caller = caller
		req.Region = sig.Region
	}
	if !known {
		return none, nil, awsquery.Errorf(awsquery.CodeInvalidAction, "Could not find operation %s for version %s", truncate(name, 64), truncate(params.String("Version"), 32))
	}
	req.Action = name
	version, ok := params.Get("Version")
	if !ok {
		return action, nil, awsquery.NewError(awsquery.CodeMissingParameter, "The request must contain the parameter Version.")
	}
	if version != awsquery.Version(action.Service) {
		return action, nil, awsquery.Errorf(awsquery.CodeInvalidAction, "Could not find operation %s for version %s", name, truncate(version, 32))
	}
	req.Version = version
	if req.Caller != nil && q.authorize != nil {
		if err := q.authorize(r.Context(), req, action); err != nil {
			return action, nil, awsquery.AsError(err)
		}
	}
	result, err := q.call(r.Context(), action, req)
	if err != nil {
		return action, nil, awsquery.AsError(err)
	}
	return action, result, nil
}

func (q *queryAPI) authenticateFor(r *http.Request, body []byte, service string) (*awsquery.Caller, *sigv4.Signature, error) {
	if service == "" {
		sig, err := q.auth.verifier.Parse(r)
		if err != nil {
			return nil, nil, err
		}
		service = sig.Service
	}
	return q.auth.authenticate(r.Context(), r, body, service)
}

// call runs a handler, turning a panic into an InternalFailure so that one
// bad request cannot take the server down or leak a stack to the client.
func (q *queryAPI) call(ctx context.Context, a awsquery.Action, req *awsquery.Request) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			q.log.ErrorContext(ctx, "handler panic", "action", a.Name, "request_id", req.RequestID, "panic", p)
			result, err = nil, awsquery.Internal(awsquery.CodeInternalFailure, errors.New("handler panic"))
		}
	}()
	return a.Handle(ctx, req)
}

func (q *queryAPI) finish(r *http.Request, req *awsquery.Request, a awsquery.Action, aerr *awsquery.Error, start time.Time) {
	elapsed := q.now().Sub(start)
	code, status := "", http.StatusOK
	if aerr != nil {
		code, status = aerr.Code, aerr.HTTPStatus()
	}
	name := a.Name
	if name == "" {
		name = "unknown"
	}
	q.metrics.observe(name, code, elapsed)
	attrs := []any{"request_id", req.RequestID, "action", name, "status", status, "duration_ms", float64(elapsed.Microseconds()) / 1000, "source_ip", req.SourceIP}
	if req.Caller != nil {
		attrs = append(attrs, "access_key_id", req.Caller.AccessKeyID)
	}
	if aerr == nil {
		q.log.DebugContext(r.Context(), "api call", attrs...)
		return
	}
	attrs = append(attrs, "error_code", code)
	if aerr.Err != nil {
		attrs = append(attrs, "cause", aerr.Err.Error())
	}
	if status >= 500 {
		q.log.ErrorContext(r.Context(), "api call failed", attrs...)
	} else {
		q.log.InfoContext(r.Context(), "api call refused", attrs...)
	}
}

// sourceIP is the client address. X-Forwarded-For is honoured only when the
// operator says a trusted proxy sets it.
func (q *queryAPI) sourceIP(r *http.Request) string {
	if q.trustXFF {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// apiQuery drops the SigV4 presigning parameters from a query string: they
// authenticate the call and are not API parameters.
func apiQuery(raw string) string {
	if !strings.Contains(raw, "X-Amz-") {
		return raw
	}
	parts := strings.Split(raw, "&")
	out := parts[:0]
	for _, p := range parts {
		if strings.HasPrefix(p, "X-Amz-") {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, "&")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
