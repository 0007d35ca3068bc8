package server

import (
	"encoding/json"
	"encoding/xml"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
)

// What keyless answers a request meant for an AWS service it does not serve
// (a profile whose endpoint_url points every service at keyless, then
// `aws s3 sync`): an error in the protocol the client speaks, naming the
// service and saying where such calls belong, with status 501 (AWS's status
// for NotImplemented, which no SDK retries). Never a 404 page or a banner
// that the SDK cannot parse.

// ProjectURL is where a bare GET / is redirected: AWS's STS and IAM
// endpoints answer it with a 302 to their product page, and this is
// keyless's. It names no account, region or version.
const ProjectURL = "https://github.com/keylessci/keyless"

// codeNotImplemented is the code of the REST and JSON answers (S3's code
// for functionality the endpoint does not implement).
const codeNotImplemented = "NotImplemented"

// wireProtocol is how a client expects its error: the AWS protocol of the
// service it called.
type wireProtocol int

const (
	protoREST  wireProtocol = iota // S3 and other REST services: an XML (or JSON) Error document
	protoJSON                      // X-Amz-Target / application/x-amz-json-1.x: {"__type", "message"}
	protoQuery                     // Action=...: the ErrorResponse envelope
)

// foreignRequest is a request addressed to a service keyless does not serve.
type foreignRequest struct {
	// service is the SigV4 signing name of the credential scope, or the
	// X-Amz-Target prefix of an unsigned JSON-protocol call.
	service  string
	protocol wireProtocol
	// jsonBody: answer a REST call in JSON (a REST-JSON service, or the
	// client sent JSON).
	jsonBody bool
}

// servedService reports whether keyless answers a SigV4 signing name.
func servedService(name string) bool { return name == "sts" || name == "iam" }

// classifyForeign reports the service r is addressed to when keyless does
// not serve it. It only reads headers and the query string (never the
// body), so it costs next to nothing on the requests keyless does serve.
func classifyForeign(r *http.Request) (foreignRequest, bool) {
	target := r.Header.Get("X-Amz-Target")
	service := signingService(r)
	switch {
	case service != "":
		if servedService(service) {
			return foreignRequest{}, false
		}
	case target != "":
		prefix, _, _ := strings.Cut(target, ".")
		// STS's JSON-protocol target is STS: not another service.
		if !validTargetPrefix(prefix) || strings.HasPrefix(prefix, "AWSSecurityTokenService") {
			return foreignRequest{}, false
		}
		service = prefix
	default:
		return foreignRequest{}, false
	}
	f := foreignRequest{service: service}
	mt := mediaType(r.Header.Get("Content-Type"))
	switch {
	case target != "" || strings.HasPrefix(mt, "application/x-amz-json-"):
		f.protocol = protoJSON
	case queryHasAction(r.URL.RawQuery) || (r.Method == http.MethodPost && mt == "application/x-www-form-urlencoded"):
		f.protocol = protoQuery
	default:
		f.protocol = protoREST
		f.jsonBody = mt == "application/json" || !restXMLService(service)
	}
	return f, true
}

// restXMLService reports whether a REST service's errors are XML (S3,
// Route 53, CloudFront); the other REST services (Lambda, API Gateway, ...)
// answer JSON, and their SDKs read the code from X-Amzn-ErrorType.
func restXMLService(name string) bool {
	switch name {
	case "s3", "s3-object-lambda", "s3-outposts", "s3express", "route53", "cloudfront":
		return true
	}
	return false
}

// signingService is the service of the SigV4 (or SigV4a) credential scope
// in the Authorization header, else in the X-Amz-Credential query
// parameter; "" when there is none or it is malformed.
func signingService(r *http.Request) string {
	var cred string
	if h := r.Header.Get("Authorization"); h != "" {
		_, rest, ok := strings.Cut(h, "Credential=")
		if !ok {
			return ""
		}
		if i := strings.IndexAny(rest, ", "); i >= 0 {
			rest = rest[:i]
		}
		cred = rest
	} else if strings.Contains(r.URL.RawQuery, "Credential") {
		cred = queryValue(r.URL.RawQuery, "X-Amz-Credential")
	}
	// AKID/DATE/REGION/SERVICE/aws4_request (SigV4a: AKID/DATE/SERVICE/aws4_request).
	scope, ok := strings.CutSuffix(cred, "/aws4_request")
	if !ok {
		return ""
	}
	i := strings.LastIndexByte(scope, '/')
	if i < 0 {
		return ""
	}
	if name := scope[i+1:]; validSigningName(name) {
		return name
	}
	return ""
}

// validSigningName: AWS signing names are short lowercase words
// ("s3", "execute-api", "s3-outposts").
func validSigningName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}

// validTargetPrefix: a JSON-protocol target's service part
// ("DynamoDB_20120810", "AmazonSQS").
func validTargetPrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// queryHasAction reports whether a raw query string carries Action=.
func queryHasAction(raw string) bool {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if strings.HasPrefix(kv, "Action=") {
			return true
		}
	}
	return false
}

// unservedMessage is what the client reads: which service, what keyless
// serves, and where such a call belongs.
func unservedMessage(service string) string {
	return "This endpoint is keyless, which serves STS and IAM only: " + service + " is not implemented here. " +
		"Credentials issued by keyless are valid only against keyless; to call " + service + " on AWS, " +
		"get credentials from AWS STS for a role that trusts your CI's OIDC issuer (or keyless's built-in issuer). " +
		"AWS credentials keyless brokered (broker mode) are AWS's: send this call to AWS, not to keyless (set AWS_ENDPOINT_URL_STS, not AWS_ENDPOINT_URL)."
}

// unservedFallback answers requests for services keyless does not serve
// before they reach the mux: calls that would land on the Query API
// (POST /, GET /) or on no route at all. Routes of keyless's own
// (health, metrics, issuer) are left as they are.
func (s *Server) unservedFallback(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := classifyForeign(r)
		if ok {
			switch _, pattern := s.mux.Handler(r); pattern {
			case "", "POST /{$}", "GET /{$}":
			default:
				ok = false
			}
		}
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		s.writeUnserved(w, r, f)
	})
}

// s3Error is the REST-XML error document (S3's shape).
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
}

// jsonError is the AWS JSON protocols' error shape.
type jsonError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func (s *Server) writeUnserved(w http.ResponseWriter, r *http.Request, f foreignRequest) {
	reqID, err := awsquery.NewRequestID(s.api.rand)
	if err != nil {
		http.Error(w, "entropy unavailable", http.StatusServiceUnavailable)
		return
	}
	s.log.DebugContext(r.Context(), "request for a service keyless does not serve",
		"request_id", reqID, "service", f.service, "method", r.Method, "source_ip", s.api.sourceIP(r))
	msg := unservedMessage(f.service)
	if f.protocol == protoQuery {
		awsquery.RenderError("", reqID, &awsquery.Error{Code: awsquery.CodeInvalidAction, Message: msg, Status: http.StatusNotImplemented}).Write(w)
		return
	}
	h := w.Header()
	h.Set(awsquery.HeaderRequestID, reqID)
	h.Set("X-Amzn-ErrorType", codeNotImplemented)
	var body []byte
	switch {
	case f.protocol == protoJSON:
		ct := mediaType(r.Header.Get("Content-Type"))
		if !strings.HasPrefix(ct, "application/x-amz-json-") {
			ct = "application/x-amz-json-1.0"
		}
		h.Set("Content-Type", ct)
		body, _ = json.Marshal(jsonError{Type: codeNotImplemented, Message: msg})
	case f.jsonBody:
		h.Set("Content-Type", "application/json")
		body, _ = json.Marshal(jsonError{Type: codeNotImplemented, Message: msg})
	default:
		h.Set("Content-Type", "application/xml")
		h.Set("x-amz-request-id", reqID)
		body, _ = xml.Marshal(s3Error{Code: codeNotImplemented, Message: msg, RequestID: reqID})
		body = append([]byte(xml.Header), body...)
	}
	w.WriteHeader(http.StatusNotImplemented)
	_, _ = w.Write(body)
}

// redirectRoot answers a bare GET / (and HEAD /) the way AWS's STS and IAM
// endpoints do: 302 Found to the product's page, with no body. It is
// unauthenticated, so it tells nothing about the deployment (no account
// id, region, version or endpoints).
func redirectRoot(w http.ResponseWriter) {
	w.Header().Set("Location", ProjectURL)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusFound)
}

// queryValue is the first value of the query parameter name in raw,
// decoded; names are compared after decoding. Unlike url.ParseQuery it
// decodes nothing else: a presigned request carries a session token of
// about a kilobyte, and every request passes here.
func queryValue(raw, name string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != name {
			if !strings.ContainsRune(k, '%') {
				continue
			}
			if dk, err := url.QueryUnescape(k); err != nil || dk != name {
				continue
			}
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return ""
		}
		return dv
	}
	return ""
}
