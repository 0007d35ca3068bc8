package brokersetup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/keylessci/keyless/internal/iam"
)

// trustActions are the actions the upstream role's trust policy allows.
// Besides the exchange: the broker's token carries the session tags and
// the source identity of the CI token (https://aws.amazon.com/tags,
// source_identity), which keyless's own trust policy for the keyless role
// has already admitted; AWS refuses such a token unless its trust policy
// allows sts:TagSession and sts:SetSourceIdentity too.
var trustActions = []string{"sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"}

// TrustPolicy is the upstream role's trust policy: ID tokens of keyless's
// issuer (the provider ARN) whose aud is sts.amazonaws.com and whose sub
// is exactly the keyless role's subject, indented JSON.
func (p *Plan) TrustPolicy() []byte {
	type condition struct {
		StringEquals map[string]string
	}
	type statement struct {
		Sid       string
		Effect    string
		Principal struct{ Federated string }
		Action    []string
		Condition condition
	}
	st := statement{Sid: "KeylessBroker", Effect: "Allow", Action: trustActions,
		Condition: condition{StringEquals: map[string]string{p.audKey(): Audience, p.subKey(): p.Subject}}}
	st.Principal.Federated = p.ProviderARN
	doc := struct {
		Version   string
		Statement []statement
	}{"2012-10-17", []statement{st}}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		panic(err) // strings and maps of strings always encode
	}
	return b.Bytes()
}

// tagCommand is the AWS CLI command that links the keyless role to the
// upstream role, at keyless.
func (p *Plan) tagCommand() []string {
	tags, _ := json.Marshal([]map[string]string{{"Key": iam.TagUpstreamRoleARN, "Value": p.Upstream.ARN}})
	return []string{"aws", "iam", "tag-role", "--endpoint-url", shellQuote(p.KeylessEndpoint),
		"--role-name", shellQuote(p.KeylessRole.Name), "--tags", shellQuote(string(tags))}
}

// WriteCLI writes the AWS CLI commands, a POSIX shell script: the OIDC
// provider (created, or given the audience when the account has it), the
// trust policy written to trust.json by a heredoc, the role, and, when the
// keyless role is not linked yet, the tag-role command for keyless.
func (p *Plan) WriteCLI(w io.Writer) error {
	var b strings.Builder
	for _, l := range p.header("cli") {
		b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
	}
	fmt.Fprintf(&b, `#
# Run it with credentials of AWS account %s allowed to create IAM OIDC
# providers and roles (the AWS CLI's environment or profile), and with no
# AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_IAM pointing at keyless.
set -eu

# 1. keyless's issuer as an IAM OIDC provider. One provider per account serves
#    every keyless role: when the account has it, only the audience is added.
provider_arn=%s
if aws iam get-open-id-connect-provider --open-id-connect-provider-arn "$provider_arn" >/dev/null 2>&1; then
  aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn "$provider_arn" \
    --client-id %s
else
  aws iam create-open-id-connect-provider --url %s \
    --client-id-list %s`, p.Upstream.Account, shellQuote(p.ProviderARN), shellQuote(Audience), shellQuote(p.Issuer.URL), shellQuote(Audience))
	if tps := p.thumbprintValues(); len(tps) > 0 {
		fmt.Fprintf(&b, " \\\n    --thumbprint-list %s", strings.Join(tps, " "))
	}
	fmt.Fprintf(&b, `
fi

# 2. The AWS role keyless brokers to, trusting only the keyless role's subject.
cat > trust.json <<'EOF'
%sEOF
aws iam create-role --role-name %s --path %s \
  --max-session-duration %d \
  --description %s \
  --assume-role-policy-document file://trust.json
`, p.TrustPolicy(), shellQuote(p.Upstream.Name), shellQuote(p.Upstream.Path), p.MaxSessionDuration, shellQuote(p.description()))
	if !p.Tagged {
		c := p.tagCommand()
		fmt.Fprintf(&b, `
# 3. Link the keyless role to the AWS role, in keyless (with keyless
#    administrator credentials).
%s \
  %s \
  %s
`, strings.Join(c[:5], " "), strings.Join(c[5:7], " "), strings.Join(c[7:], " "))
	}
	fmt.Fprintf(&b, `
# Then give the role what it may do in AWS, for example:
#   aws iam attach-role-policy --role-name %s --policy-arn arn:%s:iam::aws:policy/ReadOnlyAccess
`, shellQuote(p.Upstream.Name), p.Upstream.Partition)
	_, err := io.WriteString(w, b.String())
	return err
}

var reShellSafe = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_-]+$`)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if reShellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
