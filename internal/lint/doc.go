// Package lint owns keyless's trust-policy analysis: the catalogue of OIDC
// issuers (which are shared by many tenants, which claim identifies the
// tenant, which condition keys AWS exposes for each), the probe builder
// that turns a trust statement into claim sets of other tenants, and the
// rules that decide by asking the one evaluator, internal/policy, whether
// such a probe is admitted. A finding carries the probe that proves it.
//
// Guardrail is the server's shared-issuer guardrail: CreateRole and
// UpdateAssumeRolePolicy refuse a trust policy when a token of another
// tenant of a shared issuer (GitHub Actions, gitlab.com, HCP Terraform,
// Buildkite, …) would be admitted. Lint is the linter behind `keyless
// policy lint`: the same probes (rules TP001, TP002, TP005, TP010, TP011,
// TP014), duplicate JSON keys (TP019), and a suggested fix per finding,
// re-checked by the probes. Rules returns what runs; the other rules of
// TP001–TP040 (trust-pitfalls.md §6) grow from the same Finding, Probe
// and catalogue types: one more function per rule, called from
// LintPolicy.
//
// The package decides nothing by matching strings itself: candidate probes
// are built from the policy's own values (a small glob-intersection search
// finds a subject of another tenant that a pattern would match), and every
// verdict is policy.PolicySet.Evaluate on the request context the STS would
// build for that token. The probe builder may be imprecise; the evaluator
// is not.
package lint
