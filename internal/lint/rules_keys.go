package lint

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/policy"
)

// Rule group 2 (trust-pitfalls.md §6): the issuer's keys, audiences and
// the statement's shape.
//
//   - TP001 for per-tenant, Google and generic issuers (the guardrail
//     decides it for the shared ones): no positive identity condition,
//     and a token of another subject of the same tenant (another
//     CircleCI project, Bitbucket repository, self-managed GitLab
//     project, …) or of another tenant (Google, generic) is admitted.
//   - TP017: no aud condition, and a token minted for another relying
//     party is admitted (probe).
//   - TP018: an aud pattern or an aud list with a generic value admits a
//     token for another audience (probe).
//   - TP032: a Google trust pinned only on a generic aud that any Google
//     account can request (probe).
//   - TP013 (a key the issuer does not expose, a wrong prefix), TP021
//     (principal form), TP022 (action form), TP029 (a policy variable in
//     an identity value), TP039 (an empty value list): the policy's
//     shape, Probe nil.

// KindOtherAudience: a token minted for another relying party (another
// aud) that the policy admits.
const KindOtherAudience ProbeKind = "other-audience"

// genericAudiences are audiences any tenant of an issuer can request or
// gets by default (trust-pitfalls.md §2.1, §2.4, §2.7).
var genericAudiences = [...]string{"sts.amazonaws.com", "https://sts.amazonaws.com", "sts.amazonaws.com.cn", "aws.workload.identity"}

func isGenericAudience(v string) bool {
	for _, g := range genericAudiences {
		if strings.EqualFold(v, g) {
			return true
		}
	}
	return false
}

// nonIdentityClaims are the keys TP001 drops: they never name who runs.
var nonIdentityClaims = [...]string{"aud", "oaud", "amr"}

// federatedStatement is an Allow statement's Federated principal whose
// issuer Lint recognises.
type federatedStatement struct {
	si     int
	st     *policy.Statement
	iss    *Issuer
	prefix string
	fed    string
}

// federatedStatements lists, per Allow statement granting web identity,
// its first recognised Federated principal.
func federatedStatements(p *policy.Policy, o Options) []federatedStatement {
	var out []federatedStatement
	for si := range p.Statements {
		st := &p.Statements[si]
		if st.Effect != policy.Allow || st.Principal == nil || !grantsWebIdentity(st) {
			continue
		}
		for _, fed := range st.Principal.Federated {
			if iss, prefix, ok := issuerForOpts(fed, o); ok {
				out = append(out, federatedStatement{si, st, iss, prefix, fed})
				break
			}
		}
	}
	return out
}

// grantsWebIdentity reports a statement whose Action (or NotAction)
// covers sts:AssumeRoleWithWebIdentity.
func grantsWebIdentity(st *policy.Statement) bool {
	if len(st.NotAction) > 0 {
		return !slices.ContainsFunc(st.NotAction, actionCovers)
	}
	return slices.ContainsFunc(st.Action, actionCovers)
}

func actionCovers(a string) bool {
	return compilePattern(a, true, false, true).matches(actionWebIdentity)
}

// lowered is sev one level lower for a per-tenant issuer, at least INFO.
func lowered(sev Severity, iss *Issuer) Severity {
	if iss != nil && perTenant(iss) && sev > SeverityInfo {
		return sev - 1
	}
	return sev
}

func statementPath(si int) string { return "$.Statement[" + strconv.Itoa(si) + "]" }

func conditionPath(si int, c *policy.Condition) string {
	return statementPath(si) + ".Condition[" + strconv.Quote(c.Operator) + "][" + strconv.Quote(c.Key) + "]"
}

func keyFinding(p *policy.Policy, si int, fed, rule string, sev Severity, path, msg string, pb *Probe, fix string) Finding {
	return Finding{Rule: rule, Severity: sev, Statement: si, Sid: p.Statements[si].Sid, Path: path,
		Principal: fed, Message: msg, Probe: pb, Fix: fix}
}

// positiveOn reports a condition that a token must satisfy by carrying
// the claim: a string operator, not negated, not IfExists, not
// ForAllValues, with at least one value.
func positiveOn(c *policy.Condition) (policy.OperatorInfo, bool) {
	info, ok := policy.ParseOperator(c.Operator)
	if !ok || info.Type != "String" || info.Negated || info.IfExists || info.Set == "ForAllValues" || len(c.Values) == 0 {
		return info, false
	}
	return info, true
}

// identityCondition is TP001's "effective positive identity constraint":
// a positive condition on a key the issuer exposes other than aud, oaud
// and amr.
func identityCondition(st *policy.Statement, prefix string) bool {
	keys := ConditionKeyNames(prefix)
	for i := range st.Condition {
		c := &st.Condition[i]
		claim := keyClaim(c.Key, prefix)
		if claim == "" || slices.Contains(nonIdentityClaims[:], claim) || !slices.Contains(keys, claim) {
			continue
		}
		if _, ok := positiveOn(c); ok {
			return true
		}
	}
	return false
}

// audienceConditions are the statement's positive conditions on aud or
// oaud.
func audienceConditions(st *policy.Statement, prefix string) []*policy.Condition {
	var out []*policy.Condition
	for i := range st.Condition {
		c := &st.Condition[i]
		if claim := keyClaim(c.Key, prefix); claim == "aud" || claim == "oaud" {
			if _, ok := positiveOn(c); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

// RulesKeys runs group 2's rules: TP001 (per-tenant, Google, generic
// issuers), TP013, TP017, TP018, TP021, TP022, TP029, TP032, TP039.
func RulesKeys(p *policy.Policy, o Options) []Finding {
	var out []Finding
	fs := federatedStatements(p, o)
	out = append(out, ruleTP001Tenants(p, o, fs)...)
	out = append(out, ruleTP013(p, o)...)
	out = append(out, ruleAudience(p, o, fs)...)
	out = append(out, ruleTP021(p, o)...)
	out = append(out, ruleTP022(p, o)...)
	out = append(out, ruleTP029(p, fs)...)
	out = append(out, ruleTP039(p, o)...)
	return out
}

// ruleTP001Tenants is TP001 (and TP032 for Google) for the issuers the
// guardrail does not check: a statement without a positive identity
// condition, and a probe of another subject that the evaluator admits.
func ruleTP001Tenants(p *policy.Policy, o Options, fs []federatedStatement) []Finding {
	var out []Finding
	var pr *prober
	for _, s := range fs {
		if s.iss.Shared || identityCondition(s.st, s.prefix) {
			continue
		}
		if pr == nil {
			pr = newProber(p, o)
		}
		sp := pr.prepare(s.si, s.st, s.iss, s.prefix, s.fed)
		if sp.tooLong {
			continue
		}
		pb := pr.search(sp)
		if pb == nil || pr.admittedBy(sp) != s.si {
			continue
		}
		auds := audienceConditions(s.st, s.prefix)
		if s.iss.Name == IssuerGoogle && len(auds) > 0 && isGenericAudience(pb.Claims["aud"]) {
			r, _ := RuleByID("TP032")
			msg := fmt.Sprintf("Statement %d trusts %s on the audience %q alone, which any Google account can request: another account's token is admitted (sub=%q). Pin the service account's numeric id on %s:sub.",
				s.si, s.fed, pb.Claims["aud"], pb.Claims["sub"], s.prefix)
			out = append(out, keyFinding(p, s.si, s.fed, "TP032", r.Severity, conditionPath(s.si, auds[0]), msg, pb,
				identityFix(p, s, "SERVICE-ACCOUNT-UNIQUE-ID")))
			continue
		}
		r, _ := RuleByID("TP001")
		who := "another subject of the same tenant"
		if !perTenant(s.iss) {
			who = "another tenant's token"
		}
		msg := fmt.Sprintf("Statement %d trusts %s (%s issuer) without a positive condition on an identity key (%s:sub or another key it exposes besides aud): %s is admitted (sub=%q).",
			s.si, s.fed, s.iss.Name, s.prefix, who, pb.Claims["sub"])
		out = append(out, keyFinding(p, s.si, s.fed, "TP001", lowered(r.Severity, s.iss), statementPath(s.si), msg, pb,
			identityFix(p, s, identityPlaceholder(s))))
	}
	return out
}

// identityPlaceholder is the exact subject a tight policy pins for the
// issuer, with upper-case placeholders.
func identityPlaceholder(s federatedStatement) string {
	switch s.iss.Name {
	case IssuerCircleCI:
		org := s.prefix[strings.LastIndexByte(s.prefix, '/')+1:]
		return "org/" + org + "/project/PROJECT-ID/user/*"
	case IssuerBitbucket:
		return "{REPOSITORY-UUID}:{ENVIRONMENT-UUID}:*"
	case IssuerGoogle:
		return "SERVICE-ACCOUNT-UNIQUE-ID"
	case IssuerGitLabSelfManaged:
		return fixTemplates["gitlab.com"].value
	case IssuerTerraformEnterprise:
		return fixTemplates["terraform"].value
	case IssuerKeyless:
		// The subject grammar of the issuer's profile.
		switch s.iss.model {
		case githubModel:
			return fixTemplates["github"].value
		case gitlabModel:
			return fixTemplates["gitlab.com"].value
		}
		for _, c := range s.iss.model.shapes[0].claims {
			if c.name == "sub" && strings.HasPrefix(c.src, "org/") {
				org, _, _ := strings.Cut(strings.TrimPrefix(c.src, "org/"), "/")
				return "org/" + org + "/project/PROJECT-ID/user/*"
			}
		}
	}
	return "YOUR-SUBJECT"
}

// identityFix is the statement's Condition block with a positive sub
// condition added (StringLike when the value has a wildcard).
func identityFix(p *policy.Policy, s federatedStatement, value string) string {
	conds := slices.Clone(s.st.Condition)
	op := "StringEquals"
	if hasWildcard(value) {
		op = "StringLike"
	}
	conds = append(conds, policy.Condition{Operator: op, Key: s.prefix + ":sub", Values: []string{value}})
	return conditionJSON(distinctPairs(conds))
}

// retargeted is iss with aud as its only tenant claim: a probe of it is
// a token of the policy's own identity minted for another audience.
// ok is false when aud already names the tenant (Cognito, Pulumi,
// Vercel: the guardrail's business) or the model has no aud slot.
func retargeted(iss *Issuer) (*Issuer, bool) {
	if slices.Contains(iss.ControlClaims, "aud") || len(iss.model.shapes) == 0 {
		return nil, false
	}
	aud := int8(-1)
	for _, c := range iss.model.shapes[0].claims {
		if c.name == "aud" && len(c.t) == 1 && c.t[0].slot >= 0 {
			aud = c.t[0].slot
		}
	}
	if aud < 0 {
		return nil, false
	}
	m := *iss.model
	m.slots = slices.Clone(m.slots)
	for i := range m.slots {
		s := &m.slots[i]
		if s.tenant && !s.id && s.def == "" {
			s.def = "acme"
		}
		s.tenant = false
		if int8(i) == aud {
			s.tenant, s.alias = true, ""
		}
	}
	m.tenant, m.primary, m.seps = []int8{aud}, aud, ""
	c := *iss
	c.TenantClaims, c.model = []string{"aud"}, &m
	return &c, true
}

// ruleAudience is TP017 and TP018: a token of the statement's own
// identity minted for another audience is admitted.
func ruleAudience(p *policy.Policy, o Options, fs []federatedStatement) []Finding {
	var out []Finding
	var pr *prober
	for _, s := range fs {
		riss, ok := retargeted(s.iss)
		if !ok {
			continue
		}
		auds := audienceConditions(s.st, s.prefix)
		var wild, generic *policy.Condition
		for _, c := range auds {
			info, _ := policy.ParseOperator(c.Operator)
			for _, v := range c.Values {
				if info.Wildcards && hasWildcard(v) && wild == nil {
					wild = c
				}
			}
			if len(c.Values) > 1 && generic == nil && slices.ContainsFunc(c.Values, isGenericAudience) &&
				slices.ContainsFunc(c.Values, func(v string) bool { return !isGenericAudience(v) }) {
				generic = c
			}
		}
		if len(auds) > 0 && wild == nil && generic == nil {
			continue
		}
		if pr == nil {
			pr = newProber(p, o)
		}
		sp := pr.prepare(s.si, s.st, riss, s.prefix, s.fed)
		if sp.tooLong {
			continue
		}
		if wild == nil && generic != nil {
			// A generic value next to a specific one: the token for the
			// generic audience is the one that should not get in.
			for _, v := range generic.Values {
				if isGenericAudience(v) {
					delete(sp.names, strings.ToLower(v))
				}
			}
		}
		pb := pr.search(sp)
		if pb == nil || pr.admittedBy(sp) != s.si {
			continue
		}
		pb.Kind, pb.Tenant = KindOtherAudience, ""
		aud := pb.Claims["aud"]
		sev := func(id string) Severity { r, _ := RuleByID(id); return lowered(r.Severity, s.iss) }
		switch {
		case len(auds) == 0:
			msg := fmt.Sprintf("Statement %d has no condition on %s:aud: a token minted for another relying party (aud=%q) is admitted whenever the provider's client-id list holds more than one audience. Pin the audience with StringEquals.",
				s.si, s.prefix, aud)
			out = append(out, keyFinding(p, s.si, s.fed, "TP017", sev("TP017"), statementPath(s.si), msg, pb, audienceFix(s, nil)))
		case wild != nil:
			msg := fmt.Sprintf("Statement %d matches %s with a wildcard: a token for another audience (aud=%q) is admitted. Pin the exact audience with StringEquals.",
				s.si, wild.Key, aud)
			out = append(out, keyFinding(p, s.si, s.fed, "TP018", sev("TP018"), conditionPath(s.si, wild), msg, pb, audienceFix(s, wild)))
		default:
			msg := fmt.Sprintf("Statement %d lists the generic audience %q in %s next to a specific one: any token for the generic audience is admitted, so the specific value adds nothing. Keep only the audience unique to you.",
				s.si, aud, generic.Key)
			out = append(out, keyFinding(p, s.si, s.fed, "TP018", sev("TP018"), conditionPath(s.si, generic), msg, pb, audienceFix(s, generic)))
		}
	}
	return out
}

// audienceFor is the audience a tight policy pins for the issuer.
func audienceFor(s federatedStatement) string {
	switch s.iss.Name {
	case IssuerCircleCI:
		return s.prefix[strings.LastIndexByte(s.prefix, '/')+1:]
	case IssuerBitbucket:
		return "ari:cloud:bitbucket::workspace/WORKSPACE-UUID"
	case IssuerGoogle:
		return "YOUR-CLIENT-ID"
	case "gitlab.com", IssuerGitLabSelfManaged:
		return "YOUR-AUDIENCE"
	case "terraform", IssuerTerraformEnterprise:
		return "aws.workload.identity"
	}
	return "sts.amazonaws.com"
}

// audienceFix is the statement's Condition block with the aud condition
// bad replaced (or, when nil, added): StringEquals on the specific
// values it keeps, or on the issuer's audience.
func audienceFix(s federatedStatement, bad *policy.Condition) string {
	var conds []policy.Condition
	var keep []string
	if bad != nil {
		for _, v := range bad.Values {
			if !hasWildcard(v) && !isGenericAudience(v) {
				keep = append(keep, v)
			}
		}
	}
	if len(keep) == 0 {
		keep = []string{audienceFor(s)}
	}
	for _, c := range s.st.Condition {
		if bad != nil && c.Operator == bad.Operator && c.Key == bad.Key {
			continue
		}
		conds = append(conds, c)
	}
	conds = append(conds, policy.Condition{Operator: "StringEquals", Key: s.prefix + ":aud", Values: keep})
	return conditionJSON(distinctPairs(conds))
}

// ruleTP013 reports conditions of statements trusting an OIDC provider
// that name a key no trusted provider exposes: a key of the issuer's
// prefix outside oidc.ConditionKeyNames, or a key whose prefix is no
// trusted provider's (a typo, another issuer's). The STS never fills
// such a key: a positive condition on it never holds (the role is
// broken, and looks restricted), a negated, IfExists or ForAllValues one
// always holds (fail-open). In a Deny statement the two swap.
func ruleTP013(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for si := range p.Statements {
		st := &p.Statements[si]
		if st.Principal == nil || !grantsWebIdentity(st) {
			continue
		}
		type trusted struct {
			fed, prefix string
			iss         *Issuer
		}
		var ts []trusted
		for _, fed := range st.Principal.Federated {
			if iss, prefix, ok := issuerForOpts(fed, o); ok {
				ts = append(ts, trusted{fed, prefix, iss})
			}
		}
		if len(ts) == 0 {
			continue
		}
		for ci := range st.Condition {
			c := &st.Condition[ci]
			colon := strings.LastIndexByte(c.Key, ':')
			if colon <= 0 {
				continue
			}
			kp, name := c.Key[:colon], c.Key[colon+1:]
			if !strings.ContainsAny(kp, "./") {
				continue // a global or service key: aws:, sts:, …
			}
			var at *trusted
			exposed := false
			for i := range ts {
				if strings.EqualFold(kp, ts[i].prefix) {
					at = &ts[i]
					exposed = slices.ContainsFunc(ConditionKeyNames(ts[i].prefix), func(k string) bool { return strings.EqualFold(k, name) })
					break
				}
			}
			if exposed {
				continue
			}
			t := ts[0]
			if at != nil {
				t = *at
			}
			failOpen := false
			if info, ok := policy.ParseOperator(c.Operator); ok {
				failOpen = info.Negated || info.IfExists || info.Set == "ForAllValues" ||
					info.Type == "Null" && slices.ContainsFunc(c.Values, func(v string) bool { return strings.EqualFold(v, "true") })
			}
			if st.Effect == policy.Deny {
				failOpen = !failOpen
			}
			sev := SeverityMedium
			effect := "never holds: the statement never applies and only looks restrictive"
			if failOpen {
				sev = SeverityHigh
				effect = "always holds: it restricts nothing (fail-open)"
			}
			var msg, fix string
			keys := ConditionKeyNames(t.prefix)
			if at != nil {
				msg = fmt.Sprintf("Condition key %s is not one the %s issuer exposes (%s:%s), so the condition %s.",
					c.Key, t.iss.Name, t.prefix, strings.Join(keys, ", :"), effect)
				fix = "Remove the condition: AWS and keyless never fill " + c.Key + "; express the restriction through " + t.prefix + ":sub or another exposed key."
				if t.iss.Name == IssuerCircleCI && strings.EqualFold(name, claimCircleCISSHRerun) {
					fix = "Remove the condition (ssh-rerun is not a condition key) and disable SSH reruns on the projects whose jobs may assume this role."
				}
			} else {
				msg = fmt.Sprintf("Condition key %s has the prefix %q, which is no provider this statement trusts (%s), so the condition %s.",
					c.Key, kp, t.prefix, effect)
				fix = "Remove the condition or spell its key with the trusted provider's prefix."
				if slices.ContainsFunc(keys, func(k string) bool { return strings.EqualFold(k, name) }) {
					conds := slices.Clone(st.Condition)
					conds[ci] = policy.Condition{Operator: c.Operator, Key: t.prefix + ":" + name, Values: c.Values}
					fix = conditionJSON(distinctPairs(conds))
				}
			}
			// Not lowered for per-tenant issuers: a key the issuer does not
			// expose breaks the role (or fails open) whoever the tenants
			// are (trust-cases-sample P-CC-04: MEDIUM on CircleCI).
			out = append(out, keyFinding(p, si, t.fed, "TP013", sev, conditionPath(si, c), msg, nil, fix))
		}
	}
	return out
}

// builtinProviders are the Federated names AWS accepts besides provider
// ARNs.
var builtinProviders = [...]string{"accounts.google.com", "cognito-identity.amazonaws.com", "graph.facebook.com", "www.amazon.com"}

// ruleTP021 reports an Allow statement granting web identity to everyone
// ("*", {"AWS": "*"}) or to a Federated principal that is not an OIDC
// provider ARN (of Options.Account, when set) or a built-in provider.
func ruleTP021(p *policy.Policy, o Options) []Finding {
	var out []Finding
	sev := func() Severity { r, _ := RuleByID("TP021"); return r.Severity }()
	for si := range p.Statements {
		st := &p.Statements[si]
		if st.Effect != policy.Allow || st.Principal == nil || !grantsWebIdentity(st) {
			continue
		}
		path := statementPath(si) + ".Principal"
		if st.Principal.Wildcard || slices.Contains(st.Principal.AWS, "*") {
			msg := fmt.Sprintf("Statement %d grants sts:AssumeRoleWithWebIdentity to every principal (\"*\"): name the OIDC provider as a Federated principal.", si)
			out = append(out, keyFinding(p, si, "*", "TP021", sev, path, msg, nil,
				`Principal: {"Federated": "arn:aws:iam::`+accountOr(o)+`:oidc-provider/ISSUER-HOST"}, with a condition on its sub.`))
			continue
		}
		for _, fed := range st.Principal.Federated {
			if slices.ContainsFunc(builtinProviders[:], func(b string) bool { return strings.EqualFold(b, fed) }) {
				continue
			}
			problem := ""
			acct, ok := oidcProviderAccount(fed)
			switch {
			case !ok:
				problem = "is not an OIDC provider ARN (arn:aws:iam::ACCOUNT:oidc-provider/HOST)"
			case o.Account != "" && acct != o.Account:
				problem = fmt.Sprintf("is a provider of account %s, not of this role's account %s", acct, o.Account)
			default:
				continue
			}
			msg := fmt.Sprintf("Statement %d grants sts:AssumeRoleWithWebIdentity to Federated principal %q, which %s.", si, fed, problem)
			out = append(out, keyFinding(p, si, fed, "TP021", sev, path, msg, nil,
				`Principal: {"Federated": "arn:aws:iam::`+accountOr(o)+`:oidc-provider/ISSUER-HOST"}: the provider registered in this account.`))
		}
	}
	return out
}

func accountOr(o Options) string {
	if o.Account != "" {
		return o.Account
	}
	return "ACCOUNT"
}

// oidcProviderAccount parses arn:PARTITION:iam::ACCOUNT:oidc-provider/HOST.
func oidcProviderAccount(fed string) (string, bool) {
	parts := strings.SplitN(fed, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || parts[3] != "" ||
		!strings.HasPrefix(parts[5], "oidc-provider/") || len(parts[5]) == len("oidc-provider/") {
		return "", false
	}
	acct := parts[4]
	if len(acct) != 12 || strings.Trim(acct, "0123456789") != "" {
		return "", false
	}
	return acct, true
}

// ruleTP022 reports a statement with a Federated principal whose Action
// is a wildcard covering sts:AssumeRoleWithWebIdentity (sts:*,
// sts:AssumeRole*, *) or that uses NotAction.
func ruleTP022(p *policy.Policy, o Options) []Finding {
	var out []Finding
	r, _ := RuleByID("TP022")
	for si := range p.Statements {
		st := &p.Statements[si]
		if st.Effect != policy.Allow || st.Principal == nil || len(st.Principal.Federated) == 0 {
			continue
		}
		fed := st.Principal.Federated[0]
		iss, _, _ := issuerForOpts(fed, o)
		fix := `"Action": "sts:AssumeRoleWithWebIdentity"`
		if len(st.NotAction) > 0 {
			msg := fmt.Sprintf("Statement %d uses NotAction with a Federated principal: it grants every action it does not list. Name the action.", si)
			out = append(out, keyFinding(p, si, fed, "TP022", lowered(r.Severity, iss), statementPath(si)+".NotAction", msg, nil, fix))
			continue
		}
		for _, a := range st.Action {
			if hasWildcard(a) && actionCovers(a) {
				msg := fmt.Sprintf("Statement %d grants %q to a Federated principal: AWS rejects a wildcard here; name sts:AssumeRoleWithWebIdentity.", si, a)
				out = append(out, keyFinding(p, si, fed, "TP022", lowered(r.Severity, iss), statementPath(si)+".Action", msg, nil, fix))
				break
			}
		}
	}
	return out
}

// ruleTP029 reports a ${…} policy variable in a value of a condition on
// an issuer key other than aud, oaud and amr: on AWS no variable
// resolves there for web identity (the value matches nothing); keyless
// resolves it from the request, so ${…:sub} matches every subject.
func ruleTP029(p *policy.Policy, fs []federatedStatement) []Finding {
	var out []Finding
	r, _ := RuleByID("TP029")
	for _, s := range fs {
		for ci := range s.st.Condition {
			c := &s.st.Condition[ci]
			claim := keyClaim(c.Key, s.prefix)
			if claim == "" || slices.Contains(nonIdentityClaims[:], claim) {
				continue
			}
			if info, ok := policy.ParseOperator(c.Operator); !ok || info.Type != "String" {
				continue
			}
			if !slices.ContainsFunc(c.Values, func(v string) bool { return strings.Contains(v, "${") }) {
				continue
			}
			conds := slices.Clone(s.st.Condition)
			vals := make([]string, 0, len(c.Values))
			for _, v := range c.Values {
				if strings.Contains(v, "${") {
					v = "YOUR-" + strings.ToUpper(claim)
					if claim == "sub" {
						v = identityPlaceholder(s)
					}
				}
				if !slices.Contains(vals, v) {
					vals = append(vals, v)
				}
			}
			conds[ci] = policy.Condition{Operator: c.Operator, Key: c.Key, Values: vals}
			msg := fmt.Sprintf("Condition %s holds a policy variable (${…}): AWS resolves none for web identity, so the value never matches there, and a variable naming the token's own claim would match every token. Spell the value out.", c.Key)
			out = append(out, keyFinding(p, s.si, s.fed, "TP029", lowered(r.Severity, s.iss), conditionPath(s.si, c), msg, nil, conditionJSON(distinctPairs(conds))))
		}
	}
	return out
}

// ruleTP039 reports an empty value list in a statement trusting an OIDC
// provider: AWS's control accepts it, and it matches nothing (a
// positive operator) or everything (a negated one).
func ruleTP039(p *policy.Policy, o Options) []Finding {
	var out []Finding
	r, _ := RuleByID("TP039")
	for si := range p.Statements {
		st := &p.Statements[si]
		if st.Principal == nil || !grantsWebIdentity(st) {
			continue
		}
		var iss *Issuer
		fed := ""
		for _, f := range st.Principal.Federated {
			if i, _, ok := issuerForOpts(f, o); ok {
				iss, fed = i, f
				break
			}
		}
		if iss == nil {
			continue
		}
		for ci := range st.Condition {
			c := &st.Condition[ci]
			if len(c.Values) > 0 {
				continue
			}
			msg := fmt.Sprintf("Condition %s %s has an empty value list: it passes AWS's control but matches no token (or, negated, every token). Give the value(s) it means.", c.Operator, c.Key)
			conds := slices.Clone(st.Condition)
			conds[ci] = policy.Condition{Operator: c.Operator, Key: c.Key, Values: []string{"YOUR-VALUE"}}
			out = append(out, keyFinding(p, si, fed, "TP039", lowered(r.Severity, iss), conditionPath(si, c), msg, nil, conditionJSON(conds)))
		}
	}
	return out
}
