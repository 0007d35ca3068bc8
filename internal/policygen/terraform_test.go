package policygen

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/testenv"

	"github.com/keylessci/keyless/internal/tfhcl"
)

// terraformCases are policies the renderer must carry over: conditions,
// several keys under one operator, policy variables, NotAction and
// NotResource, Id, escapes.
var terraformCases = []string{
	`{"Version":"2012-10-17","Statement":[{"Sid":"S3Read","Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::artifacts","arn:aws:s3:::artifacts/builds/*"]}]}`,
	`{"Version":"2012-10-17","Id":"gen-1","Statement":[
	  {"Sid":"KMSViaS3","Effect":"Allow","Action":"kms:GenerateDataKey","Resource":"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
	   "Condition":{"StringEquals":{"kms:ViaService":["s3.us-east-1.amazonaws.com","secretsmanager.us-east-1.amazonaws.com"],"aws:RequestedRegion":"us-east-1"},"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"s3:max-keys":10}}},
	  {"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}`,
	`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*","Condition":{"StringLike":{"s3:prefix":["%{x}","a\"b\\c","${aws:userid}"]}}}]}`,
	`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotAction":["iam:*"],"NotResource":"arn:aws:iam::123456789012:role/ci-*"}]}`,
	`{"Statement":{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}}`,
}

// terraformFmtCheck runs terraform fmt -check on hcl.
func terraformFmtCheck(t *testing.T, hcl []byte) {
	t.Helper()
	bin := testenv.RequireCommand(t, "terraform")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "fmt", "-check", "-diff", "-")
	cmd.Stdin = bytes.NewReader(hcl)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("terraform fmt -check: %v\n%s%s\ninput:\n%s", err, stdout.String(), stderr.String(), hcl)
	}
}

// TestTerraformOnRealEvents renders the policies generated from the 2,900
// real events: terraform fmt accepts them and each block reads back as
// its JSON policy.
func TestTerraformOnRealEvents(t *testing.T) {
	rep, err := Generate(context.Background(), []string{"../audit/testdata/real/invictus"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Policies) == 0 {
		t.Fatal("no policy from the real events")
	}
	var out bytes.Buffer
	if err := WriteTerraform(&out, rep.Policies); err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(out.String(), "\n# role: ")
	if len(blocks) != len(rep.Policies) {
		t.Fatalf("%d blocks for %d policies", len(blocks), len(rep.Policies))
	}
	for i, p := range rep.Policies {
		hcl := blocks[i]
		if i > 0 {
			hcl = "# role: " + hcl
		}
		want := sortedConditions(policy.MustParse(string(p.Policy), policy.KindIdentity))
		if diff := gocmp.Diff(want, sortedConditions(policy.MustParse(hclToPolicyJSON(t, hcl), policy.KindIdentity))); diff != "" {
			t.Errorf("%s: meaning differs (-json +terraform):\n%s", p.Role, diff)
		}
	}
	terraformFmtCheck(t, out.Bytes())
}

func TestTerraformFmtCheck(t *testing.T) {
	ps := []RolePolicy{}
	bind := "repo:octo-org/app:ref:refs/heads/main"
	for i, doc := range terraformCases {
		p := RolePolicy{Role: "arn:aws:iam::123456789012:role/ci-deploy", Policy: json.RawMessage(doc), Notes: []string{"a note\nover two lines"}}
		if i%2 == 1 {
			p.Binding = &bind
		}
		ps = append(ps, p)
	}
	ps = append(ps, RolePolicy{Role: "arn:aws:iam::123456789012:role/path/9-split", Policies: []json.RawMessage{json.RawMessage(terraformCases[0]), json.RawMessage(terraformCases[3])}})
	var out bytes.Buffer
	if err := WriteTerraform(&out, ps); err != nil {
		t.Fatal(err)
	}
	names := blockNames(t, out.String())
	want := []string{"ci_deploy", "ci_deploy_repo_octo_org_app_ref_refs_heads_main", "ci_deploy_2", "ci_deploy_repo_octo_org_app_ref_refs_heads_main_2", "ci_deploy_3", "p_9_split_1", "p_9_split_2"}
	if diff := gocmp.Diff(want, names); diff != "" {
		t.Errorf("block names (-want +got):\n%s", diff)
	}
	terraformFmtCheck(t, out.Bytes())
}

// TestTerraformMeansTheJSON reads the written blocks back (hclReader
// below) and compares each, as a policy, with the JSON it came from:
// keyless's parser's canonical forms must be equal.
func TestTerraformMeansTheJSON(t *testing.T) {
	for i, doc := range terraformCases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			hcl, err := TerraformPolicyDocument("p", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			back := hclToPolicyJSON(t, hcl)
			want := sortedConditions(policy.MustParse(doc, policy.KindIdentity))
			got, err := policy.Parse(back, policy.KindIdentity)
			if err != nil {
				t.Fatalf("read back %s: %v\nfrom:\n%s", back, err, hcl)
			}
			if diff := gocmp.Diff(want, sortedConditions(got)); diff != "" {
				t.Errorf("meaning differs (-json +terraform):\n%s\nterraform:\n%s", diff, hcl)
			}
		})
	}
}

// sortedConditions is p's canonical form with each statement's
// conditions in (operator, key) order: a Condition element is a JSON
// object, its order carries no meaning.
func sortedConditions(p *policy.Policy) string {
	q := &policy.Policy{Kind: p.Kind, Version: p.Version, ID: p.ID}
	for _, st := range p.Statements {
		st.Condition = slices.Clone(st.Condition)
		slices.SortFunc(st.Condition, func(a, b policy.Condition) int {
			return cmp.Or(strings.Compare(a.Operator, b.Operator), strings.Compare(a.Key, b.Key))
		})
		q.Statements = append(q.Statements, st)
	}
	return q.String()
}

func TestTerraformRefusals(t *testing.T) {
	if _, err := TerraformPolicyDocument("1bad", []byte(terraformCases[0])); err == nil {
		t.Error("a name starting with a digit was accepted")
	}
	if _, err := TerraformPolicyDocument("ok", []byte(`{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`)); err == nil {
		t.Error("a policy without Resource was rendered")
	}
}

func FuzzHCLString(f *testing.F) {
	for _, s := range []string{"", "a", "${aws:username}", "%{if}", "$${", "\"\\\n\t\r", "\x00\x7f", "é€", "$", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		q := tfhcl.Quote(s)
		r := &hclReader{src: q}
		got, err := r.str()
		if err != nil || r.pos != len(q) {
			t.Fatalf("%q -> %s: %v", s, q, err)
		}
		if got != s {
			t.Fatalf("%q -> %s -> %q", s, q, got)
		}
		if strings.ContainsAny(q[1:len(q)-1], "\n\r") {
			t.Fatalf("%s spans lines", q)
		}
	})
}

// blockNames lists the data blocks' names.
func blockNames(t *testing.T, hcl string) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(hcl, "\n") {
		if rest, ok := strings.CutPrefix(line, `data "aws_iam_policy_document" "`); ok {
			names = append(names, strings.TrimSuffix(rest, `" {`))
		}
	}
	return names
}

// hclReader reads the subset of HCL the renderer writes: blocks with
// quoted labels, attributes whose value is a string or a one-line list of
// strings, # comments. It is the test's independent reading of the output.
type hclReader struct {
	src string
	pos int
}

type hclBlock struct {
	typ    string
	labels []string
	attrs  map[string][]string // a string value is a one-element list
	blocks []*hclBlock
}

func (r *hclReader) space() {
	for r.pos < len(r.src) {
		switch c := r.src[r.pos]; {
		case c == ' ' || c == '\t' || c == '\n':
			r.pos++
		case c == '#':
			for r.pos < len(r.src) && r.src[r.pos] != '\n' {
				r.pos++
			}
		default:
			return
		}
	}
}

func (r *hclReader) ident() string {
	start := r.pos
	for r.pos < len(r.src) {
		c := r.src[r.pos]
		if c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			r.pos++
			continue
		}
		break
	}
	return r.src[start:r.pos]
}

func (r *hclReader) str() (string, error) {
	if r.pos >= len(r.src) || r.src[r.pos] != '"' {
		return "", fmt.Errorf("byte %d: want a string", r.pos)
	}
	r.pos++
	var b strings.Builder
	for r.pos < len(r.src) {
		c := r.src[r.pos]
		switch {
		case c == '"':
			r.pos++
			return b.String(), nil
		case c == '\\':
			if r.pos+1 >= len(r.src) {
				return "", fmt.Errorf("byte %d: cut escape", r.pos)
			}
			e := r.src[r.pos+1]
			r.pos += 2
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\':
				b.WriteByte(e)
			case 'u':
				if r.pos+4 > len(r.src) {
					return "", fmt.Errorf("byte %d: cut \\u", r.pos)
				}
				v, err := strconv.ParseUint(r.src[r.pos:r.pos+4], 16, 32)
				if err != nil {
					return "", err
				}
				b.WriteRune(rune(v))
				r.pos += 4
			default:
				return "", fmt.Errorf("byte %d: unknown escape \\%c", r.pos, e)
			}
		case (c == '$' || c == '%') && strings.HasPrefix(r.src[r.pos+1:], string(c)+"{"):
			b.WriteString(string(c) + "{")
			r.pos += 3
		case (c == '$' || c == '%') && strings.HasPrefix(r.src[r.pos+1:], "{"):
			return "", fmt.Errorf("byte %d: a template sequence in a literal", r.pos)
		case c == '\n':
			return "", fmt.Errorf("byte %d: newline in a string", r.pos)
		default:
			b.WriteByte(c)
			r.pos++
		}
	}
	return "", fmt.Errorf("unterminated string")
}

// body reads attributes and blocks up to "}" or the end.
func (r *hclReader) body(b *hclBlock) error {
	for {
		r.space()
		if r.pos >= len(r.src) || r.src[r.pos] == '}' {
			return nil
		}
		name := r.ident()
		if name == "" {
			return fmt.Errorf("byte %d: want a name", r.pos)
		}
		r.space()
		if r.pos < len(r.src) && r.src[r.pos] == '=' {
			r.pos++
			r.space()
			var vals []string
			if r.pos < len(r.src) && r.src[r.pos] == '[' {
				r.pos++
				for {
					r.space()
					if r.pos < len(r.src) && r.src[r.pos] == ']' {
						r.pos++
						break
					}
					s, err := r.str()
					if err != nil {
						return err
					}
					vals = append(vals, s)
					r.space()
					if r.pos < len(r.src) && r.src[r.pos] == ',' {
						r.pos++
					}
				}
			} else {
				s, err := r.str()
				if err != nil {
					return err
				}
				vals = []string{s}
			}
			if _, dup := b.attrs[name]; dup {
				return fmt.Errorf("attribute %s twice", name)
			}
			b.attrs[name] = vals
			continue
		}
		child := &hclBlock{typ: name, attrs: map[string][]string{}}
		for r.pos < len(r.src) && r.src[r.pos] == '"' {
			l, err := r.str()
			if err != nil {
				return err
			}
			child.labels = append(child.labels, l)
			r.space()
		}
		if r.pos >= len(r.src) || r.src[r.pos] != '{' {
			return fmt.Errorf("byte %d: want {", r.pos)
		}
		r.pos++
		if err := r.body(child); err != nil {
			return err
		}
		if r.pos >= len(r.src) {
			return fmt.Errorf("unclosed block %s", name)
		}
		r.pos++
		b.blocks = append(b.blocks, child)
	}
}

// hclToPolicyJSON reads one data "aws_iam_policy_document" block back
// into the policy JSON it stands for (as the AWS provider builds it).
func hclToPolicyJSON(t *testing.T, hcl string) string {
	t.Helper()
	root := &hclBlock{attrs: map[string][]string{}}
	r := &hclReader{src: hcl}
	if err := r.body(root); err != nil || r.pos != len(hcl) {
		t.Fatalf("reading back: %v (at %d)\n%s", err, r.pos, hcl)
	}
	if len(root.blocks) != 1 || root.blocks[0].typ != "data" || root.blocks[0].labels[0] != "aws_iam_policy_document" {
		t.Fatalf("want one data block:\n%s", hcl)
	}
	d := root.blocks[0]
	doc := map[string]any{}
	if v, ok := d.attrs["version"]; ok {
		doc["Version"] = v[0]
	}
	if v, ok := d.attrs["policy_id"]; ok {
		doc["Id"] = v[0]
	}
	var sts []any
	keys := map[string]string{"sid": "Sid", "effect": "Effect", "actions": "Action", "not_actions": "NotAction", "resources": "Resource", "not_resources": "NotResource"}
	for _, sb := range d.blocks {
		if sb.typ != "statement" {
			t.Fatalf("unexpected block %s", sb.typ)
		}
		st := map[string]any{}
		for k, v := range sb.attrs {
			jk, ok := keys[k]
			if !ok {
				t.Fatalf("unexpected attribute %s", k)
			}
			if k == "sid" || k == "effect" {
				st[jk] = v[0]
			} else {
				st[jk] = v
			}
		}
		cond := map[string]map[string][]string{}
		for _, cb := range sb.blocks {
			op, key := cb.attrs["test"][0], cb.attrs["variable"][0]
			if cond[op] == nil {
				cond[op] = map[string][]string{}
			}
			cond[op][key] = append(cond[op][key], cb.attrs["values"]...)
		}
		if len(cond) > 0 {
			st["Condition"] = cond
		}
		sts = append(sts, st)
	}
	doc["Statement"] = sts
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
