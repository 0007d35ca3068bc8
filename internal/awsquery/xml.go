package awsquery

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strconv"
	"sync"
)

// XML namespaces of the two services, from their service models.
const (
	NamespaceSTS = "https://sts.amazonaws.com/doc/2011-06-15/"
	NamespaceIAM = "https://iam.amazonaws.com/doc/2010-05-08/"
)

// API versions.
const (
	VersionSTS = "2011-06-15"
	VersionIAM = "2010-05-08"
)

// HeaderRequestID is the response header carrying the request id; AWS sends
// the same value in the body.
const HeaderRequestID = "x-amzn-RequestId"

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// XMLAppender is implemented by hot-path results that render their own
// XML (the same bytes encoding/xml would write, without its reflection).
type XMLAppender interface {
	AppendXML(dst []byte) []byte
}

// AppendEscaped appends s with XML's special characters escaped, as
// encoding/xml's EscapeText does.
func AppendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if s[i] < 0x20 || s[i] >= 0x80 {
				// Control bytes and non-ASCII: let encoding/xml decide
				// (it replaces invalid characters).
				var b bytes.Buffer
				_ = xml.EscapeText(&b, []byte(s[last:]))
				return append(dst, b.Bytes()...)
			}
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}

// MarshalResponse renders the success envelope:
//
//	<ActionResponse xmlns=ns><ActionResult>result</ActionResult>
//	<ResponseMetadata><RequestId>id</RequestId></ResponseMetadata></ActionResponse>
//
// A nil result omits the Result element, as AWS does for actions without
// output (DeleteRole, TagRole, ...).
func MarshalResponse(buf *bytes.Buffer, ns, action, requestID string, result any) error {
	enc := xml.NewEncoder(buf)
	root := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ns}}}
	if err := enc.EncodeToken(root); err != nil {
		return err
	}
	if a, ok := result.(XMLAppender); ok {
		if err := enc.Flush(); err != nil {
			return err
		}
		b := buf.AvailableBuffer()
		b = append(b, "<"+action+"Result>"...)
		b = a.AppendXML(b)
		b = append(b, "</"+action+"Result>"...)
		buf.Write(b)
	} else if result != nil {
		if err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
			return err
		}
	}
	meta := struct {
		RequestID string `xml:"RequestId"`
	}{requestID}
	if err := enc.EncodeElement(meta, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}); err != nil {
		return err
	}
	if err := enc.EncodeToken(root.End()); err != nil {
		return err
	}
	return enc.Flush()
}

type errorEnvelope struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// MarshalError renders the ErrorResponse envelope.
func MarshalError(buf *bytes.Buffer, ns, requestID string, e *Error) error {
	var env errorEnvelope
	env.Xmlns = ns
	env.Error.Type = e.Type()
	env.Error.Code = e.Code
	env.Error.Message = e.Message
	env.RequestID = requestID
	return xml.NewEncoder(buf).Encode(env)
}

// WriteResponse writes a success response with AWS's headers.
func WriteResponse(w http.ResponseWriter, ns, action, requestID string, result any) error {
	RenderResponse(ns, action, requestID, result).Write(w)
	return nil
}

// WriteError writes an error response with AWS's headers.
func WriteError(w http.ResponseWriter, ns, requestID string, e *Error) error {
	RenderError(ns, requestID, e).Write(w)
	return nil
}

// Rendered is a response rendered ahead of writing it, so that a handler can
// build it while it waits for something else (the audit trail's fsync) and
// then only copy bytes. Write (or Discard) must be called exactly once.
type Rendered struct {
	status    int
	requestID string
	buf       *bytes.Buffer
}

// RenderResponse renders a success response.
func RenderResponse(ns, action, requestID string, result any) Rendered {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if err := MarshalResponse(buf, ns, action, requestID, result); err != nil {
		// Encoding our own types can only fail on a programming error;
		// answer with the envelope rather than half a document.
		bufPool.Put(buf)
		return RenderError(ns, requestID, Internal(CodeInternalFailure, err))
	}
	return Rendered{status: http.StatusOK, requestID: requestID, buf: buf}
}

// RenderError renders an error response.
func RenderError(ns, requestID string, e *Error) Rendered {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if err := MarshalError(buf, ns, requestID, e); err != nil {
		// The envelope holds only strings; encoding/xml cannot fail on it
		// short of a broken writer, so a bare status is the fallback.
		buf.Reset()
	}
	return Rendered{status: e.HTTPStatus(), requestID: requestID, buf: buf}
}

// Write sends the rendered response.
func (r Rendered) Write(w http.ResponseWriter) {
	writeXML(w, r.status, r.requestID, r.buf.Bytes())
	r.Discard()
}

// Discard releases a rendered response that will not be sent.
func (r Rendered) Discard() {
	if r.buf != nil {
		bufPool.Put(r.buf)
	}
}

func writeXML(w http.ResponseWriter, status int, requestID string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(HeaderRequestID, requestID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
