package lint

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/policy"
)

// Guardrail applies the server's shared-issuer guardrail to a trust
// policy, as CreateRole and UpdateAssumeRolePolicy do: for every Allow
// statement that trusts a shared issuer's provider (any account's),
//
//   - semantically: no token of another tenant may be admitted. Probes
//     of other tenants (an unrelated name, look-alikes of the names the
//     policy spells, other subject shapes, custom templates, optional
//     claims left out) are evaluated by policy.PolicySet.Evaluate with
//     the request context the STS builds; the first admitted one is the
//     finding's probe.
//   - and, for AWS compatibility, AWS's identity-provider control: one of
//     the issuer's control claims pinned with StringEquals, StringLike or
//     StringEqualsIgnoreCase (not negated, not IfExists) to values none of
//     which is blank or starts with "*". keyless reads every value where
//     AWS reads the first.
//
// Keyless therefore refuses at least what AWS refuses, and also policies
// AWS accepts although they admit other tenants: "repo:*", "?*",
// "${token.actions.githubusercontent.com:sub}", look-alike organisations
// ("repo:acme*" admits acme-x7k2).
//
// The result is nil when the policy passes; otherwise one finding per
// failing statement, each message starting with AWS's wording. It runs in
// well under a millisecond for a typical policy (BenchmarkGuardrail).
func Guardrail(p *policy.Policy, o Options) []Finding {
	var out []Finding
	var pr *prober
	done := map[int]bool{}
	for si := range p.Statements {
		st := &p.Statements[si]
		if st.Effect != policy.Allow || st.Principal == nil {
			continue
		}
		for _, fed := range st.Principal.Federated {
			iss, prefix, ok := issuerFor(fed)
			if !ok || !iss.Shared || done[si] {
				continue
			}
			if pr == nil {
				pr = newProber(p, o)
			}
			sp := pr.prepare(si, st, iss, prefix, fed)
			if sp.tooLong {
				done[si] = true
				out = append(out, shapeFinding(p, si, iss, prefix, fed, "TP001",
					fmt.Sprintf("keyless cannot verify a condition value longer than %d characters on %s's keys; shorten it.", maxValueLen, prefix)))
				continue
			}
			if pb := pr.search(sp); pb != nil {
				at := pr.admittedBy(sp)
				if !done[at] {
					done[at] = true
					out = append(out, probeFinding(p, at, iss, prefix, fed, pb))
				}
				if at == si {
					continue
				}
			}
			if !pinsClaim(st.Condition, prefix, iss.ControlClaims) {
				done[si] = true
				out = append(out, shapeFinding(p, si, iss, prefix, fed, shapeRule(st.Condition, prefix, iss.ControlClaims), ""))
			}
		}
	}
	return out
}

// awsMessage is IAM's wording for the control (trust-pitfalls.md §4.1;
// observed for GitHub, other issuers name their own keys).
func awsMessage(fed, prefix string, claims []string) string {
	keys := make([]string, len(claims))
	for i, c := range claims {
		keys[i] = prefix + ":" + c
	}
	return fmt.Sprintf("Trust policy with trusted principal %s must evaluate, using StringEquals, StringLike or StringEqualsIgnoreCase, %s which is not scoped to all.",
		fed, strings.Join(keys, " or "))
}

func shapeFinding(p *policy.Policy, si int, iss *Issuer, prefix, fed, rule, extra string) Finding {
	msg := awsMessage(fed, prefix, iss.ControlClaims)
	if extra != "" {
		msg += " " + extra
	}
	return newFinding(p, si, iss, prefix, fed, rule, msg, nil)
}

func probeFinding(p *policy.Policy, si int, iss *Issuer, prefix, fed string, pb *Probe) Finding {
	st := &p.Statements[si]
	rule := probeRule(st, prefix, iss, pb)
	var who string
	switch pb.Kind {
	case KindLookalike:
		who = fmt.Sprintf("look-alike tenant %q of %q", pb.Tenant, pb.LookalikeOf)
	case KindCustomTemplate:
		who = fmt.Sprintf("custom subject template (%s) that any tenant can set", pb.Shape)
	case KindMissingClaim:
		who = fmt.Sprintf("tenant %q, token without %s", pb.Tenant, pb.Missing)
	default:
		who = fmt.Sprintf("tenant %q", pb.Tenant)
	}
	msg := fmt.Sprintf("%s A token of another tenant is admitted by statement %d (%s, %s): %s.",
		awsMessage(fed, prefix, iss.ControlClaims), si, rule, who, probeSummary(st, prefix, iss, pb))
	return newFinding(p, si, iss, prefix, fed, rule, msg, pb)
}

// probeSummary shows the issuer's main tenant claim and the probe's
// claims the statement reads, tenant claims first:
// `sub="repo:acme-x7k2/app:ref:refs/heads/main"`.
func probeSummary(st *policy.Statement, prefix string, iss *Issuer, pb *Probe) string {
	var names []string
	add := func(n string) {
		if _, ok := pb.Claims[n]; ok && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	add(iss.TenantClaims[0])
	for _, c := range st.Condition {
		if n := keyClaim(c.Key, prefix); slices.Contains(iss.TenantClaims, n) {
			add(n)
		}
	}
	for _, c := range st.Condition {
		add(keyClaim(c.Key, prefix))
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Quote(pb.Claims[n])
	}
	if pb.Missing != "" {
		parts = append(parts, "no "+pb.Missing)
	}
	return strings.Join(parts, ", ")
}

func newFinding(p *policy.Policy, si int, iss *Issuer, prefix, fed, rule, msg string, pb *Probe) Finding {
	st := &p.Statements[si]
	f := Finding{Rule: rule, Statement: si, Sid: st.Sid, Principal: fed, Message: msg, Probe: pb,
		Path: "$.Statement[" + strconv.Itoa(si) + "]"}
	if r, ok := RuleByID(rule); ok {
		f.Severity = r.Severity
		// A GitHub Enterprise issuer (token.actions.githubusercontent.com/
		// <slug>) is shared by the enterprise's organisations only: one
		// level lower (trust-cases-sample P-GH-40: TP001 HIGH).
		if prefix != iss.Host && f.Severity > SeverityInfo {
			f.Severity--
		}
	}
	for _, c := range st.Condition {
		if slices.Contains(iss.ControlClaims, keyClaim(c.Key, prefix)) {
			f.Path += ".Condition[" + strconv.Quote(c.Operator) + "][" + strconv.Quote(c.Key) + "]"
			break
		}
	}
	return f
}

// probeRule names the rule an admitted probe proves (trust-pitfalls.md
// §6): a look-alike TP005, a custom template TP014, a missing optional
// claim TP011; another tenant TP002 when the statement has a positive
// identity condition (it matches too much), TP010 when it has only
// negated ones, TP001 when it has none.
func probeRule(st *policy.Statement, prefix string, iss *Issuer, pb *Probe) string {
	switch pb.Kind {
	case KindLookalike:
		return "TP005"
	case KindCustomTemplate:
		return "TP014"
	case KindMissingClaim:
		return "TP011"
	}
	positive, negated := false, false
	for _, c := range st.Condition {
		if !slices.Contains(iss.TenantClaims, keyClaim(c.Key, prefix)) {
			continue
		}
		info, ok := policy.ParseOperator(c.Operator)
		if !ok || info.Type != "String" {
			continue
		}
		switch {
		case info.Negated:
			negated = true
		case !info.IfExists:
			positive = true
		}
	}
	switch {
	case positive:
		return "TP002"
	case negated:
		return "TP010"
	}
	return "TP001"
}

// shapeRule names the rule of a statement refused by AWS's control alone:
// TP002 when a pinned value is blank or starts with "*", else TP001.
func shapeRule(conds []policy.Condition, prefix string, claims []string) string {
	for _, c := range conds {
		if slices.Contains(claims, keyClaim(c.Key, prefix)) {
			for _, v := range c.Values {
				if t := strings.TrimSpace(v); t == "" || strings.HasPrefix(t, "*") {
					return "TP002"
				}
			}
		}
	}
	return "TP001"
}

// pinsClaim is AWS's control: some condition pins one of the claims with
// StringEquals, StringLike or StringEqualsIgnoreCase (ForAnyValue: and
// ForAllValues: forms included, as AWS accepts them; not negated, not
// IfExists) to values that are all scoped: none blank or starting with
// "*" (AWS refuses "*" even under StringEquals, where it is literal). An
// empty list matches nothing and is accepted, as AWS does.
func pinsClaim(conds []policy.Condition, prefix string, claims []string) bool {
	for _, c := range conds {
		op, ok := policy.ParseOperator(c.Operator)
		if !ok || op.IfExists || op.Negated {
			continue
		}
		switch op.Base {
		case "StringEquals", "StringLike", "StringEqualsIgnoreCase":
		default:
			continue
		}
		if !slices.Contains(claims, keyClaim(c.Key, prefix)) {
			continue
		}
		scoped := true
		for _, v := range c.Values {
			if t := strings.TrimSpace(v); t == "" || strings.HasPrefix(t, "*") {
				scoped = false
			}
		}
		if scoped {
			return true
		}
	}
	return false
}
