package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sigv4"
	"github.com/keylessci/keyless/internal/store"
)

// Authorizer decides whether an authenticated caller may call an action
// on its target (the resource it acts on and the request's condition
// keys); it returns an AccessDenied *awsquery.Error when not.
type Authorizer func(ctx context.Context, r *awsquery.Request, a awsquery.Action, t awsquery.Target) error

// Recorder is the one place every API call's audit event goes through.
// StartCall records call's event; when the event must be durable the
// returned Pending's Wait (called exactly once) reports when it is, so the
// response can be rendered in the meantime. The Pending is used only when
// the error is nil.
type Recorder interface {
	StartCall(ctx context.Context, call *Call) (audit.Pending, error)
	// StartEvent records an event of keyless's own (not a Query API call,
	// e.g. a token mint) the same way.
	StartEvent(ctx context.Context, c audit.Call, durable bool) (audit.Pending, error)
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
	// limit throttles sources refused too often before authentication
	// (flood.go); nil in tests that build a queryAPI by hand.
	limit *refusalGate
}

func (q *queryAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := q.now()
	reqID, err := awsquery.NewRequestID(q.rand)
	if err != nil {
		http.Error(w, "entropy unavailable", http.StatusServiceUnavailable)
		return
	}
	req := &awsquery.Request{RequestID: reqID, Time: start.UTC(), SourceIP: q.sourceIP(r), UserAgent: r.UserAgent(), Region: q.region, SecureTransport: q.secureTransport(r)}
	action, result, aerr, commit := q.serve(r, req)
	record := action.Handle != nil && (req.Caller != nil || action.Unsigned) && q.recorder != nil
	if commit != nil && commit.fired {
		switch {
		case commit.err != nil:
			// The change was rolled back: its record could not be written.
			q.log.ErrorContext(r.Context(), "audit record failed; change not applied", "request_id", reqID, "action", action.Name, "err", commit.err)
			aerr, result = awsquery.Internal(awsquery.CodeServiceUnavailable, commit.err), nil
			aerr.Message = "The change was not applied because it could not be recorded in the audit trail. Retry the request."
			record = false
		case aerr == nil:
			record = false // recorded, durably, before the change committed
		}
	}
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
	if record {
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
	maps.Copy(w.Header(), req.ResponseHeader)
	resp.Write(w)
	q.limit.charge(req, aerr)
	q.finish(r, req, action, aerr, start)
}

// serve decodes, authenticates, authorizes and runs one call. A mutating
// call runs with a store commit hook that records its event durably before
// the change commits; the returned commitRecord says whether it fired.
func (q *queryAPI) serve(r *http.Request, req *awsquery.Request) (awsquery.Action, any, *awsquery.Error, *commitRecord) {
	var none awsquery.Action
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return none, nil, &awsquery.Error{Code: awsquery.CodeInvalidHTTPRequest, Status: http.StatusMethodNotAllowed,
			Message: "The HTTP method " + r.Method + " is not supported: send POST with a form body or GET with a query string."}, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, q.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return none, nil, awsquery.Errorf(awsquery.CodeRequestEntityTooLarge, "The request body is larger than %d bytes.", q.maxBody), nil
		}
		return none, nil, awsquery.NewError(awsquery.CodeInvalidHTTPRequest, "The request body could not be read.").Wrap(err), nil
	}
	if len(body) > 0 {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/x-www-form-urlencoded" {
				return none, nil, awsquery.Errorf(awsquery.CodeInvalidHTTPRequest, "Unsupported Content-Type %q: the Query API takes application/x-www-form-urlencoded.", ct), nil
			}
		}
	}
	// ParseParams decodes the query once and keeps the SigV4 query
	// authentication parameters (however their names are encoded) out of the
	// API parameters, and so out of handlers and the audit trail.
	params, err := awsquery.ParseParams(body, r.URL.RawQuery)
	if err != nil {
		return none, nil, awsquery.AsError(err), nil
	}
	req.Params = params
	name, ok := params.Get("Action")
	if !ok || name == "" {
		return none, nil, awsquery.NewError(awsquery.CodeMissingAction, "The request must contain the parameter Action."), nil
	}
	action, known := q.actions[name]
	if q.limit.checkThrottle(req, action.Name) {
		// Before any validation work; not an audited call (its source's
		// throttled requests are reported together).
		return awsquery.Action{Name: action.Name, Service: action.Service}, nil, throttlingError(), nil
	}
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
			return awsquery.Action{Name: action.Name, Service: action.Service}, nil, awsquery.AsError(err), nil
		}
		req.Caller = caller
		req.Region = sig.Region
	}
	if !known {
		return none, nil, awsquery.Errorf(awsquery.CodeInvalidAction, "Could not find operation %s for version %s", truncate(name, 64), truncate(params.String("Version"), 32)), nil
	}
	req.Action = name
	version, ok := params.Get("Version")
	if !ok {
		return action, nil, awsquery.NewError(awsquery.CodeMissingParameter, "The request must contain the parameter Version."), nil
	}
	if version != awsquery.Version(action.Service) {
		return action, nil, awsquery.Errorf(awsquery.CodeInvalidAction, "Could not find operation %s for version %s", name, truncate(version, 32)), nil
	}
	req.Version = version
	if err := action.Input.CheckParams(name, params); err != nil {
		return action, nil, awsquery.AsError(err), nil
	}
	ctx := r.Context()
	mutating := !action.ReadOnly && req.Caller != nil && q.recorder != nil
	var target awsquery.Target
	if req.Caller != nil && (mutating || req.Caller.Kind == awsquery.CallerSession) {
		t, err := targetOf(ctx, action, req)
		if err != nil {
			return action, nil, awsquery.AsError(err), nil
		}
		target = t
	}
	if req.Caller != nil && q.authorize != nil {
		if err := q.authorize(ctx, req, action, target); err != nil {
			return action, nil, awsquery.AsError(err), nil
		}
	}
	var commit *commitRecord
	if mutating {
		commit = &commitRecord{recorder: q.recorder, action: action, req: req, target: target}
		ctx = store.WithCommitHook(ctx, commit.hook)
	}
	result, err := q.call(ctx, action, req)
	if err != nil {
		return action, nil, awsquery.AsError(err), commit
	}
	return action, result, nil, commit
}

// targetOf is what a call is authorized against: the action's own table
// (Action.Target), or the action itself on "*".
func targetOf(ctx context.Context, a awsquery.Action, r *awsquery.Request) (awsquery.Target, error) {
	if a.Target == nil {
		return awsquery.Target{Action: a.Service + ":" + a.Name, Resource: "*"}, nil
	}
	return a.Target(ctx, r)
}

// errNotRecorded marks a change refused because its audit record could not
// be written.
var errNotRecorded = errors.New("the audit record of the change could not be written")

// commitRecord records a mutating call's event from the store's commit
// hook: durably, before the change commits, so that nothing changes without
// its record and a change whose record fails is rolled back.
type commitRecord struct {
	recorder Recorder
	action   awsquery.Action
	req      *awsquery.Request
	target   awsquery.Target
	fired    bool
	err      error
}

func (c *commitRecord) hook(ctx context.Context) error {
	if c.fired {
		// One call, one event: a handler's later writes belong to the
		// call already on record (or refused with it).
		return c.err
	}
	c.fired = true
	if len(c.req.Note.Resources) == 0 && c.target.ResourceType != "" {
		c.req.Note.Resources = []awsquery.Resource{{ARN: c.target.Resource, AccountID: arnAccount(c.target.Resource), Type: c.target.ResourceType}}
	}
	pending, err := c.recorder.StartCall(ctx, &Call{Action: c.action, Request: c.req, Durable: true})
	if err == nil {
		err = pending.Wait(ctx)
	}
	if err != nil {
		c.err = fmt.Errorf("%w: %w", errNotRecorded, err)
	}
	return c.err
}

// arnAccount is the account field of an ARN ("" when it has none).
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// secureTransport reports whether the request came over TLS, or through a
// trusted proxy that terminated TLS (X-Forwarded-Proto, honoured only with
// the same trust as X-Forwarded-For).
func (q *queryAPI) secureTransport(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return q.trustXFF && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
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
	switch {
	case status >= 500:
		q.log.ErrorContext(r.Context(), "api call failed", attrs...)
	case errors.Is(aerr, errThrottled):
		// A line per throttled request would move a flood from the trail
		// to the log's disk: the refusal reports and metrics count them.
		q.log.DebugContext(r.Context(), "api call throttled", attrs...)
	default:
		q.log.InfoContext(r.Context(), "api call refused", attrs...)
	}
}

// sourceIP is the client address. X-Forwarded-For is honoured only when the
// operator says a trusted proxy sets it, and then only its last entry: the
// one that proxy appended. Earlier entries are whatever the client sent, and
// the source address feeds aws:SourceIp and the refusal limiter.
func (q *queryAPI) sourceIP(r *http.Request) string {
	if q.trustXFF {
		if vals := r.Header.Values("X-Forwarded-For"); len(vals) > 0 {
			xff := vals[len(vals)-1]
			last := xff[strings.LastIndexByte(xff, ',')+1:]
			if ip := net.ParseIP(strings.TrimSpace(last)); ip != nil {
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
