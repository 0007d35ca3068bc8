// Package tfhcl owns the one piece of HCL writing keyless's Terraform
// outputs share (the broker's aws-setup and policy generate): quoting a
// string as an HCL literal whose value is exactly the string.
package tfhcl

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Quote returns s as an HCL string literal whose value is s: quotes,
// backslashes and control characters escaped, and the template sequences
// ${ and %{ doubled ($${, %%{) so that Terraform keeps them as text (IAM
// policy variables such as ${aws:username} stay policy variables).
// Invalid UTF-8 bytes come out as \ufffd.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case (r == '$' || r == '%') && strings.HasPrefix(s[i+size:], "{"):
			b.WriteRune(r)
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}
