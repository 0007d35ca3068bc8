package brokersetup

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/tfhcl"
)

// ProviderLabel is the Terraform name of the OIDC provider resource.
const ProviderLabel = "keyless"

// RoleLabel is the Terraform name of the upstream role resource: the role
// name with what Terraform identifiers cannot hold replaced by "_".
func (p *Plan) RoleLabel() string {
	var b strings.Builder
	for _, r := range p.Upstream.Name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s[0] >= '0' && s[0] <= '9' {
		s = "role_" + s
	}
	return s
}

// WriteTerraform writes the Terraform (HashiCorp AWS provider): the IAM
// OIDC provider, the upstream role and their ARNs as outputs. The text is
// in terraform fmt's canonical form.
func (p *Plan) WriteTerraform(w io.Writer) error {
	var b strings.Builder
	for _, l := range p.header("terraform") {
		b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
	}
	role := p.RoleLabel()
	providerRef := "aws_iam_openid_connect_provider." + ProviderLabel
	fmt.Fprintf(&b, `#
# One IAM OIDC provider per AWS account serves every keyless role: keep a single
# aws_iam_openid_connect_provider for this issuer. If the account has it already:
#   terraform import %s %s

resource "aws_iam_openid_connect_provider" %s {
`, providerRef, p.ProviderARN, tfhcl.Quote(ProviderLabel))
	attrs := [][2]string{{"url", tfhcl.Quote(p.Issuer.URL)}, {"client_id_list", hclList([]string{Audience})}}
	if tps := p.thumbprintValues(); len(tps) > 0 {
		attrs = append(attrs, [2]string{"thumbprint_list", hclList(tps)})
	}
	writeAttrs(&b, "  ", attrs)
	fmt.Fprintf(&b, `}

# The AWS role keyless brokers to. Its trust policy admits only ID tokens of
# keyless's issuer for the keyless role's subject; attach what the role may
# do in AWS (aws_iam_role_policy_attachment, aws_iam_role_policy).
resource "aws_iam_role" %s {
%s
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "KeylessBroker"
      Effect    = "Allow"
      Principal = { Federated = %s.arn }
      Action    = %s
      Condition = {
        StringEquals = {
          %s = %s
          %s = %s
        }
      }
    }]
  })
}
`, tfhcl.Quote(role), alignedAttrs("  ", [][2]string{
		{"name", tfhcl.Quote(p.Upstream.Name)},
		{"path", tfhcl.Quote(p.Upstream.Path)},
		{"description", tfhcl.Quote(p.description())},
		{"max_session_duration", itoa(p.MaxSessionDuration)},
	}),
		providerRef, hclList(trustActions),
		tfhcl.Quote(p.audKey()), tfhcl.Quote(Audience),
		tfhcl.Quote(p.subKey()), tfhcl.Quote(p.Subject))
	// The two condition keys differ in their last letters only: equal
	// lengths, so terraform fmt aligns nothing more.
	if !p.Tagged {
		fmt.Fprintf(&b, `
# Then link the keyless role to this role, in keyless (with keyless
# administrator credentials):
#   %s
`, strings.Join(p.tagCommand(), " "))
	}
	fmt.Fprintf(&b, `
output "keyless_oidc_provider_arn" {
  value = %s.arn
}

output %s {
  value = aws_iam_role.%s.arn
}
`, providerRef, tfhcl.Quote(role+"_role_arn"), role)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAttrs writes one attribute per line, their "=" aligned as terraform
// fmt aligns a run of one-line attributes.
func writeAttrs(b *strings.Builder, indent string, attrs [][2]string) {
	b.WriteString(alignedAttrs(indent, attrs))
}

func alignedAttrs(indent string, attrs [][2]string) string {
	width := 0
	for _, a := range attrs {
		width = max(width, len(a[0]))
	}
	var b strings.Builder
	for _, a := range attrs {
		fmt.Fprintf(&b, "%s%-*s = %s\n", indent, width, a[0], a[1])
	}
	return b.String()
}

// hclList is a one-line HCL list of strings.
func hclList(ss []string) string {
	quoted := make([]string, len(ss))
	for i, s := range ss {
		quoted[i] = tfhcl.Quote(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// itoa is strconv.Itoa for int32.
func itoa(n int32) string { return strconv.Itoa(int(n)) }
