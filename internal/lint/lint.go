package lint

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/policy"
)

// Report is what Lint found in one trust policy.
type Report struct {
	// Rules are the rules that ran (the implemented subset of
	// trust-pitfalls.md §6), so that an empty Findings is read for what
	// it is: none of these rules fired.
	Rules []Rule
	// Findings are in statement order.
	Findings []Finding
}

// Rules returns the rules Lint runs, in id order.
func Rules() []Rule { return slices.Clone(rules[:]) }

// Lint checks a trust policy document with every implemented rule.
//
// The document is parsed by internal/policy as IAM reads a trust policy.
// A document with duplicate JSON keys (case variants included), which the
// parser refuses, is reported as a TP019 finding with the position of the
// second key rather than as an error. Any other document the parser
// refuses is an error wrapping the *policy.Error, which carries the
// position.
//
// Then, per Allow statement trusting a catalogued shared issuer, the
// probes of Guardrail decide TP001, TP002, TP005, TP010, TP011 and TP014:
// a finding's Probe is a token of another tenant that policy.Evaluate
// admits. Each finding carries a suggested Fix: the statement's Condition
// block tightened. Statements for per-tenant issuers, Google and any
// other OIDC provider are checked by RulesKeys (catalogue_tenants.go,
// rules_keys.go): TP001 by probes there too.
func Lint(doc []byte, o Options) (Report, error) {
	rep := Report{Rules: Rules()}
	p, err := policy.Parse(string(doc), policy.KindTrust)
	if err != nil {
		if errors.Is(err, policy.ErrMalformed) {
			if d, ok := findDuplicateKey(doc); ok {
				rep.Findings = []Finding{d.finding()}
				return rep, nil
			}
		}
		return rep, fmt.Errorf("the trust policy does not parse: %w", err)
	}
	rep.Findings = LintPolicy(p, o)
	return rep, nil
}

// checks are the rules' functions Lint runs on a parsed policy, in order.
// A rule is one more function here (and its entry in rules): it returns
// its findings, with a Fix when it has its own; LintPolicy adds the
// position, and for findings with a probe and no fix the tightened
// Condition.
var checks = [...]func(*policy.Policy, Options) []Finding{
	Guardrail,    // TP001, TP002, TP005, TP010, TP011, TP014
	RulesKeys,    // TP001 (per-tenant, Google, generic issuers), TP013, TP017, TP018, TP021, TP022, TP029, TP032, TP039
	PatternRules, // TP003, TP004, TP006, TP007, TP008, TP009, TP012, TP015, TP016, TP031
	RulesCI,      // TP023, TP024, TP025, TP026, TP033, TP034, TP037, TP038, TP040 (TP020: unionFindings, below)
}

// LintPolicy is Lint on a parsed policy.
func LintPolicy(p *policy.Policy, o Options) []Finding {
	var fs []Finding
	for _, check := range checks {
		fs = append(fs, check(p, o)...)
	}
	for i := range fs {
		f := &fs[i]
		st := &p.Statements[f.Statement]
		f.Line, f.Column = st.Start.Line, st.Start.Column
		if f.Probe != nil && f.Probe.Missing != "" {
			// TP011: the condition at fault is the one the token can
			// skip by leaving out the claim.
			if _, prefix, ok := issuerFor(f.Principal); ok {
				for _, c := range st.Condition {
					if keyClaim(c.Key, prefix) == f.Probe.Missing {
						f.Path = "$.Statement[" + strconv.Itoa(f.Statement) + "].Condition[" + strconv.Quote(c.Operator) + "][" + strconv.Quote(c.Key) + "]"
						break
					}
				}
			}
		}
		if f.Fix == "" {
			f.Fix = suggestFix(p, f, o)
		}
	}
	fs = append(fs, unionFindings(p, fs)...) // TP020: the weakest of several statements, on the findings above
	slices.SortStableFunc(fs, func(a, b Finding) int { return a.Statement - b.Statement })
	return fs
}

// maxFixRounds bounds the rounds of suggestFix.
const maxFixRounds = 4

// suggestFix returns the statement's Condition block tightened until the
// guardrail's probes find nothing in the statement any more: each round
// tightens what the last probe got through (fixConditions) and checks the
// result again, so that a list with several loose values is fixed whole.
// The last attempt is returned when the rounds run out.
func suggestFix(p *policy.Policy, f *Finding, o Options) string {
	cur, fin := p, *f
	fix := ""
	for range maxFixRounds {
		conds, ok := fixConditions(cur, &fin)
		if !ok {
			return fix
		}
		fix = conditionJSON(conds)
		next, err := withCondition(cur, fin.Statement, conds)
		if err != nil {
			return fix
		}
		again := -1
		gs := Guardrail(next, o)
		for k := range gs {
			if gs[k].Statement == fin.Statement {
				again = k
				break
			}
		}
		if again < 0 {
			return fix
		}
		cur, fin = next, gs[again]
	}
	return fix
}

// withCondition is p with statement si's Condition replaced.
func withCondition(p *policy.Policy, si int, conds []policy.Condition) (*policy.Policy, error) {
	np := &policy.Policy{Kind: p.Kind, Version: p.Version, ID: p.ID, Statements: slices.Clone(p.Statements)}
	np.Statements[si].Condition = conds
	return policy.Parse(np.String(), p.Kind)
}

// fixTemplate is the tight identity condition suggested for an issuer:
// the key (a claim), a value with upper-case placeholders; label is the
// text before the tenant's name in that value, tenant the tenant's
// placeholder, afterTenant the text that follows it (used when a
// pattern's tenant segment is rewritten).
type fixTemplate struct {
	claim, value               string
	label, tenant, afterTenant string
}

var fixTemplates = map[string]fixTemplate{
	"github":     {"sub", "repo:OWNER/REPO:ref:refs/heads/main", "repo:", "OWNER", "/REPO:ref:refs/heads/main"},
	"gitlab.com": {"sub", "project_path:GROUP/PROJECT:ref_type:branch:ref:main", "project_path:", "GROUP", "/PROJECT:ref_type:branch:ref:main"},
	"terraform":  {"sub", "organization:ORG:project:PROJECT:workspace:WORKSPACE:run_phase:apply", "organization:", "ORG", ":project:PROJECT:workspace:WORKSPACE:run_phase:apply"},
	"buildkite":  {"sub", "organization:ORG:pipeline:PIPELINE:ref:refs/heads/main:*", "organization:", "ORG", ":pipeline:PIPELINE:ref:refs/heads/main:*"},
}

func templateFor(iss *Issuer) fixTemplate {
	if t, ok := fixTemplates[iss.Name]; ok {
		return t
	}
	if iss.ControlClaims[0] == "aud" {
		return fixTemplate{claim: "aud", value: "YOUR-AUDIENCE"}
	}
	return fixTemplate{claim: "sub", value: "YOUR-SUBJECT"}
}

// fixConditions returns the statement's conditions tightened so that
// the finding's probe is no longer admitted: IfExists and ForAllValues:
// dropped from the identity conditions (a token must carry the claim);
// every identity value that matches the probe replaced (a wildcard in the
// tenant's name removed, a value open to every tenant replaced by the
// issuer's exact subject with placeholders); a positive identity
// condition added when none is left; for a GitHub custom template
// without an owner, the owner's immutable id pinned.
func fixConditions(p *policy.Policy, f *Finding) ([]policy.Condition, bool) {
	iss, prefix, ok := issuerFor(f.Principal)
	if !ok {
		return nil, false
	}
	st := &p.Statements[f.Statement]
	tmpl := templateFor(iss)
	var out []policy.Condition
	positive := false
	for _, c := range st.Condition {
		claim := keyClaim(c.Key, prefix)
		info, ok := policy.ParseOperator(c.Operator)
		if ok && f.Probe != nil && f.Probe.Missing != "" && claim == f.Probe.Missing && !info.Negated && (info.IfExists || info.Set == "ForAllValues") {
			// TP011: the token must carry the claim.
			out = append(out, policy.Condition{Operator: plainOperator(info), Key: c.Key, Values: slices.Clone(c.Values)})
			continue
		}
		if !ok || !slices.Contains(iss.TenantClaims, claim) || info.Type != "String" || info.Negated {
			out = append(out, policy.Condition{Operator: c.Operator, Key: c.Key, Values: slices.Clone(c.Values)})
			continue
		}
		values := make([]string, 0, len(c.Values))
		wild := false
		for _, v := range c.Values {
			nv := v
			if admitsValue(p, &c, info, v, f.Probe, claim) {
				nv = tightenValue(v, f, iss, tmpl, claim, info.Wildcards)
			}
			if !slices.Contains(values, nv) {
				values = append(values, nv)
			}
			wild = wild || info.Wildcards && hasWildcard(nv)
		}
		op := "StringEquals"
		switch {
		case info.Base == "StringEqualsIgnoreCase" && !wild:
			op = info.Base
		case wild:
			op = "StringLike"
		}
		if slices.Contains(iss.ControlClaims, claim) {
			positive = true
		}
		out = append(out, policy.Condition{Operator: op, Key: c.Key, Values: values})
	}
	if !positive {
		out = append(out, policy.Condition{Operator: "StringEquals", Key: prefix + ":" + tmpl.claim, Values: []string{tmpl.value}})
	}
	if f.Rule == "TP014" && iss.Name == "github" && !slices.ContainsFunc(out, func(c policy.Condition) bool {
		return keyClaim(c.Key, prefix) == "repository_owner_id"
	}) {
		out = append(out, policy.Condition{Operator: "StringEquals", Key: prefix + ":repository_owner_id", Values: []string{"OWNER-ID"}})
	}
	return distinctPairs(out), true
}

// distinctPairs keeps conditions that a rewrite gave the same operator
// and key apart (a Condition block holds one of each, and merging their
// values would OR what the policy ANDs): the later one is spelled with
// ForAnyValue:, which a single-valued key reads alike.
func distinctPairs(conds []policy.Condition) []policy.Condition {
	seen := map[string]bool{}
	for i := range conds {
		c := &conds[i]
		k := c.Operator + "\x00" + foldKey(c.Key)
		if seen[k] {
			if info, ok := policy.ParseOperator(c.Operator); ok && info.Set == "" {
				c.Operator = "ForAnyValue:" + c.Operator
				k = c.Operator + "\x00" + foldKey(c.Key)
			}
		}
		seen[k] = true
	}
	return conds
}

// plainOperator is the operator without IfExists and without a set
// qualifier.
func plainOperator(info policy.OperatorInfo) string { return info.Base }

// admitsValue reports whether the one value v of condition c matches the
// probe's claim (the value a matching token carries). Without a probe
// (a finding of AWS's control alone) a value blank or starting with "*"
// is the one at fault.
func admitsValue(p *policy.Policy, c *policy.Condition, info policy.OperatorInfo, v string, pb *Probe, claim string) bool {
	if pb == nil {
		return len(v) == 0 || v[0] == '*' || v[0] == ' '
	}
	got, ok := claimValue(pb, claim)
	if !ok {
		return false
	}
	pt := compilePattern(v, info.Wildcards, info.Variables && p.VariablesEnabled(), info.Base == "StringEqualsIgnoreCase")
	return pt.matches(got)
}

// tightenValue rewrites one identity value that admits another tenant:
// when the value spells the issuer's label and a wildcard in the tenant's
// segment, that segment becomes the name a look-alike imitated (the
// wildcard removed) or the tenant's placeholder, the rest of the value
// kept when it fits; any other value becomes the issuer's exact subject
// with placeholders.
func tightenValue(v string, f *Finding, iss *Issuer, tmpl fixTemplate, claim string, wildcards bool) string {
	if claim != tmpl.claim {
		// Another tenant claim (repository, job_workflow_ref, ids): the
		// placeholder of the value the owner means.
		return "YOUR-" + claim
	}
	if !wildcards || tmpl.label == "" || len(v) <= len(tmpl.label) || !strings.EqualFold(v[:len(tmpl.label)], tmpl.label) {
		return tmpl.value
	}
	rest := v[len(tmpl.label):]
	end := strings.IndexAny(rest, iss.model.seps)
	if end < 0 {
		end = len(rest)
	}
	seg, after := rest[:end], rest[end:]
	if !hasWildcard(seg) {
		return tmpl.value
	}
	name := tmpl.tenant
	if f.Probe != nil && f.Probe.Kind == KindLookalike && f.Probe.LookalikeOf != "" && strings.EqualFold(literalOf(seg), f.Probe.LookalikeOf) {
		name = literalOf(seg)
	}
	if after == "" || after[0] != tmpl.afterTenant[0] {
		after = tmpl.afterTenant
	}
	return v[:len(tmpl.label)] + name + after
}

func hasWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}

func literalOf(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '*' && s[i] != '?' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// conditionJSON renders conditions as a Condition block, operators in
// first-seen order, a single value as a string.
func conditionJSON(conds []policy.Condition) string {
	var ops []string
	byOp := map[string][]policy.Condition{}
	for _, c := range conds {
		if _, ok := byOp[c.Operator]; !ok {
			ops = append(ops, c.Operator)
		}
		byOp[c.Operator] = append(byOp[c.Operator], c)
	}
	var b []byte
	b = append(b, '{')
	for i, op := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, op)
		b = append(b, ':', '{')
		for k, c := range byOp[op] {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, c.Key)
			b = append(b, ':')
			if len(c.Values) == 1 {
				b = appendJSONString(b, c.Values[0])
			} else {
				vs, _ := json.Marshal(c.Values)
				b = append(b, vs...)
			}
		}
		b = append(b, '}')
	}
	return string(append(b, '}'))
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// matches reports whether s matches the pattern (a ${...} variable
// matches anything, as the probe builder reads it).
func (p pattern) matches(s string) bool {
	// Iterative glob match with one backtrack point.
	t := p.toks
	i, j := 0, 0
	star, mark := -1, 0
	for j < len(s) {
		switch {
		case i < len(t) && t[i].kind == pStar:
			star, mark = i, j
			i++
		case i < len(t) && (t[i].kind == pAny || t[i].b == s[j] || p.fold && foldEq(t[i].b, s[j])):
			i++
			j++
		case star >= 0:
			i = star + 1
			mark++
			j = mark
		default:
			return false
		}
	}
	for i < len(t) && t[i].kind == pStar {
		i++
	}
	return i == len(t)
}
