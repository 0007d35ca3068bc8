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
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := MarshalResponse(buf, ns, action, requestID, result); err != nil {
		// Encoding our own types can only fail on a programming error;
		// answer with the envelope rather than half a document.
		return WriteError(w, ns, requestID, Internal(CodeInternalFailure, err))
	}
	writeXML(w, http.StatusOK, requestID, buf.Bytes())
	return nil
}

// WriteError writes the ErrorResponse envelope with the status for e.
func WriteError(w http.ResponseWriter, ns, requestID string, e *Error) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := MarshalError(buf, ns, requestID, e); err != nil {
		return err
	}
	writeXML(w, e.HTTPStatus(), requestID, buf.Bytes())
	return nil
}

func writeXML(w http.ResponseWriter, status int, requestID string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(HeaderRequestID, requestID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
