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
// Buildkite, …) would be admitted. Lint and LintPolicy run every rule of
// trust-pitfalls.md §6 (Rules lists them): the guardrail's probes,
// duplicate JSON keys (TP019), the patterns within one tenant
// (rules_patterns.go), keys, audiences and statement shapes for every
// issuer (rules_keys.go, catalogue_tenants.go), and the CI-specific rules
// (rules_ci.go); each finding has a suggested fix. A rule is one function
// in LintPolicy's list.
//
// The package decides nothing by matching strings itself: candidate probes
// are built from the policy's own values (a small glob-intersection search
// finds a subject of another tenant that a pattern would match), and every
// verdict is policy.PolicySet.Evaluate on the request context the STS would
// build for that token. The probe builder may be imprecise; the evaluator
// is not.
package lint
