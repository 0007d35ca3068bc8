package sigv4

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
)

// The canonical request is built with append-style helpers into a caller's
// buffer (usually on the stack), so verifying a typical request allocates
// nothing here.

const upperHex = "0123456789ABCDEF"

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isUnreserved is RFC 3986's unreserved set, which SigV4 never encodes.
func isUnreserved(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// isTokenChar is RFC 9110's tchar: what a header name may contain.
func isTokenChar(c byte) bool {
	if isAlnum(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// appendURIEncode is SigV4's UriEncode: every byte outside the unreserved set
// becomes %XX (uppercase hex); '/' is kept when keepSlash.
func appendURIEncode(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || keepSlash && c == '/' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

// requestPath returns the path exactly as it came on the wire: from
// RequestURI for server requests (net/url would re-escape it), otherwise from
// the URL the way the SDK signer reads it.
func requestPath(r *http.Request) string {
	if u := r.RequestURI; u != "" {
		if u[0] != '/' {
			// absolute-form: scheme://authority/path?query
			i := strings.Index(u, "://")
			if i < 0 {
				return "/"
			}
			u = u[i+3:]
			j := strings.IndexByte(u, '/')
			if j < 0 {
				return "/"
			}
			u = u[j:]
		}
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return u
	}
	if o := r.URL.Opaque; o != "" {
		// The SDK's pre-escaped form: "//host/path".
		if i := strings.IndexByte(o, '?'); i >= 0 {
			o = o[:i]
		}
		o = strings.TrimPrefix(o, "//")
		if i := strings.IndexByte(o, '/'); i >= 0 {
			return o[i:]
		}
		return "/"
	}
	if p := r.URL.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// normalizePath removes "." and ".." segments and empty segments (repeated
// slashes), as the SigV4 spec asks for every service but S3 and as botocore
// does. The aws-sdk-go-v2 signer does not normalise, so Verify also accepts
// the path as sent when the two differ. Returns p itself when unchanged.
func normalizePath(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") && p[0] != '.' {
		return p
	}
	segs := strings.Split(p, "/")
	out := segs[:0]
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	var b strings.Builder
	if p[0] == '/' {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(out, "/"))
	if p[len(p)-1] == '/' && len(out) > 0 {
		b.WriteByte('/')
	}
	return b.String()
}

// isCanonicalComponent reports whether a raw query name or value already is
// in SigV4's encoding: only unreserved bytes and uppercase %XX escapes of
// bytes that must be escaped. Such components are used as they are.
func isCanonicalComponent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			continue
		}
		if c != '%' || i+2 >= len(s) {
			return false
		}
		h, ok1 := unhex(s[i+1])
		l, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 || s[i+1] >= 'a' || s[i+2] >= 'a' || isUnreserved(h<<4|l) {
			return false
		}
		i += 2
	}
	return true
}

// queryUnescape decodes a query component with awsquery's decoder, the one
// the API parameters are decoded with ('+' is a space), so that the
// signature check and the handlers can never read a name differently. A
// '%' not followed by two hex digits stays a literal '%', so a malformed
// query is judged by the signature (and refused by the query decoder)
// rather than rejected here with an invented error.
func queryUnescape(s string) string {
	d, _ := awsquery.UnescapeComponent(s)
	return d
}

// canonicalComponent re-encodes one query name or value: decode, then
// UriEncode with '/' encoded too.
func canonicalComponent(s string) string {
	if isCanonicalComponent(s) {
		return s
	}
	return string(appendURIEncode(nil, queryUnescape(s), false))
}

type queryPair struct{ name, value string }

// appendCanonicalQuery sorts the encoded pairs by name, then value ("the
// sorting occurs after encoding"); a name without '=' gets an empty value.
// Empty segments ("a=1&&b=2") are skipped, as Go's and the SDK's query parsers
// skip them. For presigned requests X-Amz-Signature is left out.
func appendCanonicalQuery(dst []byte, raw string, presigned, redact bool) []byte {
	if raw == "" {
		return dst
	}
	var arr [16]queryPair
	pairs := arr[:0]
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		if seg == "" {
			continue
		}
		k, v, _ := strings.Cut(seg, "=")
		k = canonicalComponent(k)
		if presigned && k == paramSignature {
			continue
		}
		pairs = append(pairs, queryPair{k, canonicalComponent(v)})
	}
	slices.SortFunc(pairs, func(a, b queryPair) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.name...)
		dst = append(dst, '=')
		if redact && strings.EqualFold(p.name, paramToken) {
			dst = append(dst, redacted...)
			continue
		}
		dst = append(dst, p.value...)
	}
	return dst
}

// redacted stands for the session token in error messages: AWS echoes it, but
// here tokens never reach a message or a log in clear.
const redacted = "REDACTED"

// appendCanonicalHeaders writes "name:value\n" for each signed header, in the
// signed order (already checked sorted). Values are trimmed and inner runs of
// spaces collapsed, exactly as aws-sdk-go-v2 does; several values of one
// header are joined with ','. Parse has checked every signed header is
// present.
func appendCanonicalHeaders(dst []byte, r *http.Request, signed string, redact bool) []byte {
	for list := signed; list != ""; {
		var name string
		name, list, _ = strings.Cut(list, ";")
		dst = append(dst, name...)
		dst = append(dst, ':')
		switch {
		case redact && name == tokenHeader:
			dst = append(dst, redacted...)
		case name == "host":
			dst = appendHeaderValue(dst, r.Host)
		default:
			vals := headerValues(r.Header, name)
			if len(vals) == 0 {
				dst = appendMovedHeader(dst, r, name)
			}
			for i, v := range vals {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendHeaderValue(dst, v)
			}
		}
		dst = append(dst, '\n')
	}
	return dst
}

// appendMovedHeader covers headers net/http keeps outside Header on requests
// built by a client (Content-Length, Transfer-Encoding).
func appendMovedHeader(dst []byte, r *http.Request, name string) []byte {
	switch name {
	case "content-length":
		if r.ContentLength > 0 {
			dst = strconv.AppendInt(dst, r.ContentLength, 10)
		}
	case "transfer-encoding":
		for i, te := range r.TransferEncoding {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, te...)
		}
	}
	return dst
}

// appendHeaderValue trims surrounding white space and collapses runs of
// spaces. (botocore also folds tabs; no STS/IAM client sends any.)
func appendHeaderValue(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		dst = append(dst, v[i])
	}
	return dst
}

// headerValues finds a header by its lowercase name, without allocating for
// names up to 64 bytes. net/http's server stores every valid name in
// canonical MIME form, so the direct lookup always hits for requests read off
// the network; only requests built by hand may hold other spellings, which
// are then merged (sorted, for a stable result).
func headerValues(h http.Header, name string) []string {
	var kb [64]byte
	key := kb[:0]
	if len(name) > len(kb) {
		key = make([]byte, 0, len(name))
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		key = append(key, c)
		upper = c == '-'
	}
	if v, ok := h[string(key)]; ok {
		return v
	}
	var keys []string
	for k := range h {
		if strings.EqualFold(k, name) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	var vals []string
	for _, k := range keys {
		vals = append(vals, h[k]...)
	}
	return vals
}
