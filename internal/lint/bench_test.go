package lint

import (
	"testing"

	"github.com/keylessci/keyless/internal/policy"
)

// BenchmarkGuardrail measures the guardrail on typical trust policies. An
// accepted policy is the worst case: every probe is built and evaluated.
// The budget is 1 ms (the guardrail runs at CreateRole and
// UpdateAssumeRolePolicy only).
func BenchmarkGuardrail(b *testing.B) {
	for _, bc := range []struct{ name, doc string }{
		{"accept exact", doc(stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:aud":"sts.amazonaws.com","`+ghPfx+`:sub":"repo:acme/payments-api:ref:refs/heads/main"}}`))},
		{"accept repo any context", doc(stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:aud":"sts.amazonaws.com"},"StringLike":{"`+ghPfx+`:sub":["repo:acme/app:*","repo:acme/infra:environment:prod"]}}`))},
		{"accept sub and job_workflow_ref", doc(stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:aud":"sts.amazonaws.com","`+ghPfx+`:job_workflow_ref":"acme/automation/.github/workflows/deploy.yml@refs/heads/main"},"StringLike":{"`+ghPfx+`:sub":"repo:acme/*:ref:refs/heads/main"}}`))},
		{"accept gitlab", doc(stmt(glARN, `{"StringEquals":{"gitlab.com:aud":"https://gitlab.com"},"StringLike":{"gitlab.com:sub":"project_path:acme/app:ref_type:branch:ref:main"}}`))},
		{"accept many wildcards", doc(stmt(ghARN, `{"StringEquals":{"`+ghPfx+`:aud":"sts.amazonaws.com"},"StringLike":{"`+ghPfx+`:sub":["repo:acme/app:ref:refs/heads/release-*","repo:acme/*:environment:prod*","repo:acme/infra-*:ref:refs/tags/v*"]}}`))},
		{"refuse look-alike", ghSub("StringLike", `"repo:acme*"`)},
		{"refuse repo star", ghSub("StringLike", `"repo:*"`)},
	} {
		p := policy.MustParse(bc.doc, policy.KindTrust)
		o := testOptions(1)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Guardrail(p, o)
			}
		})
	}
}
