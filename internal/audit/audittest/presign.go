package audittest

import (
	"fmt"
	"strings"
)

// NameEncoding is one way of writing the SigV4 authentication parameter
// names of a presigned URL. AWS decodes parameter names before it reads
// them, so every encoding here authenticates exactly as the plain one does;
// a server that recognises the parameters by their raw spelling would
// instead pass them on as API data and write the session token into the
// trail. Leak tests replay a presigned request in each encoding.
type NameEncoding struct {
	Name   string
	encode func(name string) string
	only   string // when set, only this parameter is rewritten
}

// NameEncodings are the encodings leak tests cover: the hyphens escaped
// (upper- and lowercase hex), every byte escaped, the first byte escaped,
// only the last hyphen escaped (X-Amz%2DCredential), and the session token's
// name alone escaped, the others plain.
func NameEncodings() []NameEncoding {
	return []NameEncoding{
		{Name: "hyphens escaped", encode: func(n string) string { return strings.ReplaceAll(n, "-", "%2D") }},
		{Name: "hyphens escaped, lowercase hex", encode: func(n string) string { return strings.ReplaceAll(n, "-", "%2d") }},
		{Name: "every byte escaped", encode: escapeAll},
		{Name: "first byte escaped", encode: func(n string) string { return fmt.Sprintf("%%%02X", n[0]) + n[1:] }},
		{Name: "last hyphen escaped", encode: func(n string) string {
			i := strings.LastIndexByte(n, '-')
			return n[:i] + "%2D" + n[i+1:]
		}},
		{Name: "token name alone escaped", only: "X-Amz-Security-Token", encode: func(n string) string { return strings.ReplaceAll(n, "-", "%2D") }},
	}
}

// Apply rewrites the names of the X-Amz-* parameters of a presigned URL
// (or of a bare query string); values, other parameters and their order
// are kept byte for byte.
func (e NameEncoding) Apply(presigned string) string {
	base, query, hasQuery := strings.Cut(presigned, "?")
	if !hasQuery {
		base, query = "", presigned
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		name, value, hasValue := strings.Cut(p, "=")
		if !strings.HasPrefix(name, "X-Amz-") || (e.only != "" && name != e.only) {
			continue
		}
		parts[i] = e.encode(name)
		if hasValue {
			parts[i] += "=" + value
		}
	}
	out := strings.Join(parts, "&")
	if hasQuery {
		return base + "?" + out
	}
	return out
}

func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}
