package policygen

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/policy"

	"github.com/keylessci/keyless/internal/tfhcl"
)

// WriteTerraform writes every policy of ps as a Terraform
// `data "aws_iam_policy_document"` block, in the layout `terraform fmt`
// produces (so `terraform fmt -check` accepts it): one block per policy, or
// one per part (name_1, name_2, ...) when the policy had to be split. Each
// block is preceded by a comment naming the role and the binding. Block
// names are the role's name and the binding, reduced to a Terraform
// identifier and made unique. The policy's notes follow as comments.
func WriteTerraform(w io.Writer, ps []RolePolicy) error {
	var b strings.Builder
	used := map[string]bool{}
	for i, p := range ps {
		base := terraformName(p.Role, p.Binding)
		docs := p.Policies
		if len(docs) == 0 {
			docs = []json.RawMessage{p.Policy}
		}
		for j, doc := range docs {
			name := base
			if len(docs) > 1 {
				name = fmt.Sprintf("%s_%d", base, j+1)
			}
			name = uniqueName(name, used)
			if i > 0 || j > 0 {
				b.WriteByte('\n')
			}
			b.WriteString("# role: " + commentSafe(p.Role))
			if p.Binding != nil {
				b.WriteString(", binding: " + commentSafe(*p.Binding))
			}
			if len(docs) > 1 {
				fmt.Fprintf(&b, " (part %d of %d)", j+1, len(docs))
			}
			b.WriteByte('\n')
			if j == 0 {
				for _, n := range p.Notes {
					b.WriteString("# note: " + commentSafe(n) + "\n")
				}
			}
			block, err := TerraformPolicyDocument(name, doc)
			if err != nil {
				return fmt.Errorf("policygen: terraform for %s: %w", p.Role, err)
			}
			b.WriteString(block)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TerraformPolicyDocument renders one identity policy document (JSON) as a
// `data "aws_iam_policy_document" "<name>"` block whose meaning is the
// document's: a statement block per statement (sid, effect, actions or
// not_actions, resources or not_resources) and a condition block per
// (operator, key) pair, in document order. Strings are escaped for HCL, so
// an IAM policy variable ${aws:username} is written $${aws:username} and
// reaches the rendered policy unchanged. name must be a valid Terraform
// identifier (see WriteTerraform for names made from roles).
func TerraformPolicyDocument(name string, doc []byte) (string, error) {
	if !validIdentifier(name) {
		return "", fmt.Errorf("%q is not a Terraform identifier", name)
	}
	p, err := policy.ParseWithOptions(string(doc), policy.KindIdentity, policy.Options{MaxSize: -1})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(`data "aws_iam_policy_document" ` + tfhcl.Quote(name) + " {\n")
	var top []hclAttr
	if p.Version != "" {
		top = append(top, hclAttr{"version", tfhcl.Quote(p.Version)})
	}
	if p.ID != "" {
		top = append(top, hclAttr{"policy_id", tfhcl.Quote(p.ID)})
	}
	writeAttrs(&b, "  ", top)
	for i := range p.Statements {
		if i > 0 || len(top) > 0 {
			b.WriteByte('\n')
		}
		writeStatementHCL(&b, &p.Statements[i])
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// hclAttr is one attribute line: name = value (value already HCL).
type hclAttr struct{ name, value string }

// writeAttrs writes consecutive attributes with their = aligned, as
// terraform fmt does.
func writeAttrs(b *strings.Builder, indent string, attrs []hclAttr) {
	width := 0
	for _, a := range attrs {
		width = max(width, len(a.name))
	}
	for _, a := range attrs {
		b.WriteString(indent + a.name + strings.Repeat(" ", width-len(a.name)) + " = " + a.value + "\n")
	}
}

func writeStatementHCL(b *strings.Builder, st *policy.Statement) {
	b.WriteString("  statement {\n")
	var attrs []hclAttr
	if st.Sid != "" {
		attrs = append(attrs, hclAttr{"sid", tfhcl.Quote(st.Sid)})
	}
	attrs = append(attrs, hclAttr{"effect", tfhcl.Quote(st.Effect.String())})
	if len(st.NotAction) > 0 {
		attrs = append(attrs, hclAttr{"not_actions", hclList(st.NotAction)})
	} else {
		attrs = append(attrs, hclAttr{"actions", hclList(st.Action)})
	}
	if st.Resource != nil {
		attrs = append(attrs, hclAttr{"resources", hclList(st.Resource)})
	}
	if st.NotResource != nil {
		attrs = append(attrs, hclAttr{"not_resources", hclList(st.NotResource)})
	}
	writeAttrs(b, "    ", attrs)
	for _, c := range st.Condition {
		b.WriteString("\n    condition {\n")
		writeAttrs(b, "      ", []hclAttr{
			{"test", tfhcl.Quote(c.Operator)},
			{"variable", tfhcl.Quote(c.Key)},
			{"values", hclList(c.Values)},
		})
		b.WriteString("    }\n")
	}
	b.WriteString("  }\n")
}

// hclList is a one-line list of strings.
func hclList(vs []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tfhcl.Quote(v))
	}
	b.WriteByte(']')
	return b.String()
}

// commentSafe keeps a comment on one line.
func commentSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// terraformName makes an identifier from a role ARN (or name) and a
// binding: lower case, runs of other characters turned into one "_", a
// leading digit prefixed.
func terraformName(role string, binding *string) string {
	name := role
	if i := strings.LastIndex(role, ":role/"); i >= 0 {
		name = role[i+len(":role/"):]
	}
	if j := strings.LastIndexByte(name, '/'); j >= 0 {
		name = name[j+1:]
	}
	if binding != nil && *binding != "" {
		name += "_" + *binding
	}
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	out := strings.TrimRight(b.String(), "_")
	if out == "" {
		out = "policy"
	}
	if out[0] >= '0' && out[0] <= '9' {
		out = "p_" + out
	}
	return out
}

// uniqueName returns name, or name_2, name_3 ... the first not used yet.
func uniqueName(name string, used map[string]bool) string {
	n := name
	for i := 2; used[n]; i++ {
		n = name + "_" + strconv.Itoa(i)
	}
	used[n] = true
	return n
}

// validIdentifier reports whether s is a Terraform identifier: a letter
// or underscore, then letters, digits, underscores and dashes.
func validIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && (r == '-' || r >= '0' && r <= '9'):
		default:
			return false
		}
	}
	return true
}
