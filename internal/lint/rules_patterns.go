package lint

// Rule group 1 of trust-pitfalls.md §6: what the identity patterns of a
// statement admit inside the policy's own tenant, on the shared issuers
// whose subject grammar the catalogue models (GitHub, gitlab.com, HCP
// Terraform, Buildkite). The guardrail's probes stand for other tenants;
// these stand for the policy's own tenant doing something the policy did
// not mean: another repository (TP004), a repository or branch whose name
// extends the one pinned (TP006), a pull-request or merge-request run
// (TP007), any branch (TP008), the same names after they were deleted and
// registered again (TP015, TP016), an environment whose name collides
// with the pinned one (TP031); and one loose value of a list (TP003).
// Each is a claim set built by the probe builder's search (the slots the
// attack moves fixed, the others fitted to the statement's patterns) and
// reported only when policy.PolicySet.Evaluate admits it. TP009 and
// TP012 are about the operator's form and decide on the parsed policy.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/policy"
)

const (
	// KindSameTenant: a token of the policy's own tenant that the
	// policy did not mean (another repository, branch, a pull request).
	KindSameTenant ProbeKind = "same-tenant"
	// KindRecycled: a token carrying the names the policy pins, minted
	// after those names were deleted and registered again by someone
	// else: the same names, new immutable ids.
	KindRecycled ProbeKind = "recycled-name"
)

// patternModel names the slots of an issuer's model that the group-1
// probes move, and the exact subject a fix suggests.
type patternModel struct {
	owner, ownerID string // the tenant's name and id slots
	unit, unitID   string // the repository-level slot and its id
	unitWord       string // "repository", "project", …
	branch         string // the branch slot ("" when the subject has none)
	branchPrefix   string // text a branch value starts with in that slot
	env            string // the environment slot
	// unitShapes are the shapes a unit, branch or recycling probe takes;
	// prShapes those of a pull-request probe, with prPreset.
	unitShapes, branchShapes, envShapes, prShapes []string
	prPreset, branchPreset                        map[string]string
	// recycle are the id slots a recycled name gets new values in.
	recycle []string
	// exact is the subject a fix pins, over the model's slots; unitTail
	// and branchTail complete a value cut after the unit or the branch.
	exact, unitTail, branchTail string
	// idPins are the keys and placeholders that pin the immutable ids
	// (TP015's fix); none when AWS exposes none for the issuer.
	idPins [][2]string
	// recycleSeverityExact is TP015's severity for an exact pin.
	recycleSeverityExact Severity
}

var patternModels = map[string]*patternModel{
	"github": {
		owner: "owner", ownerID: "owner_id", unit: "repo", unitID: "repo_id", unitWord: "repository",
		branch: "branch", env: "env",
		unitShapes:   []string{"branch", "environment", "tag", "immutable branch", "immutable environment", "template repository_owner", "template repository_owner_id"},
		branchShapes: []string{"branch", "immutable branch"},
		envShapes:    []string{"environment", "immutable environment"},
		prShapes:     []string{"pull_request", "immutable pull_request"},
		recycle:      []string{"owner_id", "repo_id"},
		exact:        "repo:{owner}/{repo}:ref:refs/heads/main", unitTail: ":ref:refs/heads/main",
		idPins:               [][2]string{{"repository_owner_id", "OWNER-ID"}, {"repository_id", "REPO-ID"}},
		recycleSeverityExact: SeverityLow,
	},
	"gitlab.com": {
		owner: "group", ownerID: "namespace_id", unit: "project", unitID: "project_id", unitWord: "project",
		branch: "ref", env: "env",
		unitShapes: []string{"default"}, branchShapes: []string{"default"}, envShapes: []string{"default"}, prShapes: []string{"default"},
		prPreset:     map[string]string{"pipeline_source": "merge_request_event", "ref_type": "branch", "ref_protected": "false"},
		branchPreset: map[string]string{"ref_type": "branch", "ref_protected": "false"},
		recycle:      []string{"namespace_id", "project_id"},
		exact:        "project_path:{group}/{project}:ref_type:branch:ref:main", unitTail: ":ref_type:branch:ref:main",
		idPins: [][2]string{{"namespace_id", "NAMESPACE-ID"}, {"project_id", "PROJECT-ID"}},
		// Astrix's Sub:jugation re-registered deleted gitlab.com paths
		// and HCP Terraform names against exact pins (trust-cases
		// P-GL-06, P-TF-06 grade them MEDIUM).
		recycleSeverityExact: SeverityMedium,
	},
	"terraform": {
		owner: "org", unit: "workspace", unitWord: "workspace",
		unitShapes: []string{"default"},
		exact:      "organization:{org}:project:{project}:workspace:{workspace}:run_phase:apply", unitTail: ":run_phase:apply",
		recycleSeverityExact: SeverityMedium,
	},
	"buildkite": {
		owner: "org", unit: "pipeline", unitWord: "pipeline",
		branch: "ref", branchPrefix: "refs/heads/",
		unitShapes: []string{"default"}, branchShapes: []string{"default"},
		exact:    "organization:{org}:pipeline:{pipeline}:ref:refs/heads/main:*",
		unitTail: ":ref:refs/heads/main:*", branchTail: ":*",
		recycleSeverityExact: SeverityLow,
	},
}

// PatternRules reports rules TP003, TP004, TP006, TP007, TP008, TP009,
// TP012, TP015, TP016 and TP031 for the Allow statements trusting GitHub,
// gitlab.com, HCP Terraform or Buildkite.
func PatternRules(p *policy.Policy, o Options) []Finding {
	var out []Finding
	var pr *prober
	for si := range p.Statements {
		st := &p.Statements[si]
		if st.Effect != policy.Allow || st.Principal == nil {
			continue
		}
		for _, fed := range st.Principal.Federated {
			iss, prefix, ok := issuerFor(fed)
			if !ok {
				continue
			}
			if iss.Name == IssuerBitbucket {
				if pr == nil {
					pr = newProber(p, o)
				}
				out = append(out, pr.bitbucketAnyBranch(pr.prepare(si, st, iss, prefix, fed))...)
				continue
			}
			pm := patternModels[iss.Name]
			if pm == nil {
				continue
			}
			out = append(out, shapeRules(p, si, iss, prefix, fed)...)
			if pr == nil {
				pr = newProber(p, o)
			}
			sp := pr.prepare(si, st, iss, prefix, fed)
			if sp.tooLong {
				continue // the guardrail reports it
			}
			fs, _ := pr.patternFindings(sp, pm)
			for i := range fs {
				completeFix(p, &fs[i], iss, prefix, fed, pm, o)
			}
			out = append(out, fs...)
			out = append(out, tp003(p, si, iss, prefix, fed, pm, o)...)
		}
	}
	return out
}

// patternFindings runs the probe rules of one statement; tenantWide
// reports TP004.
func (pr *prober) patternFindings(sp *stmtProbe, pm *patternModel) (fs []Finding, tenantWide bool) {
	m := sp.iss.model
	whole := pr.wholeNames(sp)
	own := func(vals []string) bool {
		if whole[strings.ToLower(vals[m.primary])] {
			return true
		}
		if pm.ownerID != "" {
			i := m.index[pm.ownerID]
			return whole[strings.ToLower(vals[i])]
		}
		return false
	}
	// TP004: another repository of the tenant.
	randUnit := pr.randomName(6)
	preset := map[string]string{pm.unit: randUnit}
	if pm.unitID != "" {
		preset[pm.unitID] = pr.randomDigits(9)
	}
	if pb, vals := pr.ownProbe(sp, pm.unitShapes, preset, own); pb != nil {
		tenantWide = true
		owner := vals[m.primary]
		fs = append(fs, pr.finding(sp, pm, "TP004", SeverityHigh, pb,
			fmt.Sprintf("statement %d admits every %s of %q: %s; pin the %s.", sp.index, pm.unitWord, owner, summary(sp, pb), pm.unitWord),
			func(v string) string { return pm.render(vals, map[string]string{pm.unit: strings.ToUpper(pm.unit)}) }))
	}
	// TP007: a pull request (merge request) of the tenant's repository.
	if len(pm.prShapes) > 0 {
		preset := map[string]string{}
		for k, v := range pm.prPreset {
			preset[k] = v
		}
		if pm.branch != "" && pm.prPreset != nil {
			preset[pm.branch] = pm.branchPrefix + pr.randomName(6)
		}
		if pb, vals := pr.ownProbe(sp, pm.prShapes, preset, own); pb != nil {
			what := "a pull-request run (pull_request_target shares the subject)"
			if pm.prPreset != nil {
				what = "a merge-request pipeline of any branch"
			}
			fs = append(fs, pr.finding(sp, pm, "TP007", SeverityHigh, pb,
				fmt.Sprintf("statement %d admits %s: %s; pin a protected branch or environment.", sp.index, what, summary(sp, pb)),
				func(v string) string { return pm.render(vals, nil) }, pm.prFix()...))
		}
	}
	// TP011 within the tenant: a positive ...IfExists condition on a claim
	// the issuer's tokens may lack (GitHub's environment) lets the
	// tenant's own runs without the claim in ("only the production
	// environment" also admits every job with no environment:
	// trust-cases-sample P-GH-19). The guardrail's TP011 is about other
	// tenants; LintPolicy writes the fix (the condition without IfExists).
	if sp.iss.Name == "github" {
		for _, c := range sp.st.Condition {
			claim := keyClaim(c.Key, sp.prefix)
			info, ok := policy.ParseOperator(c.Operator)
			if claim != "environment" || !ok || !info.IfExists || info.Negated || info.Type != "String" {
				continue
			}
			if pb, _ := pr.ownProbe(sp, []string{"branch", "immutable branch"}, nil, own); pb != nil {
				pb.Kind, pb.Missing = KindMissingClaim, claim
				f := newFinding(pr.p, sp.index, sp.iss, sp.prefix, sp.fed, "TP011",
					fmt.Sprintf("statement %d: %s on %s passes when the token has no %s claim, so every run of the repository without one gets in: %s; drop IfExists.",
						sp.index, c.Operator, c.Key, claim, summary(sp, pb)), pb)
				f.Severity = SeverityHigh
				f.Path = "$.Statement[" + strconv.Itoa(sp.index) + "].Condition[" + strconv.Quote(c.Operator) + "][" + strconv.Quote(c.Key) + "]"
				fs = append(fs, f)
			}
			break
		}
	}
	// TP008: any branch.
	anyBranch := false
	if pm.branch != "" && !tenantWide {
		preset := map[string]string{pm.branch: pm.branchPrefix + pr.randomName(5) + "/" + pr.randomName(4)}
		for k, v := range pm.branchPreset {
			preset[k] = v
		}
		if pb, vals := pr.ownProbe(sp, pm.branchShapes, preset, own); pb != nil {
			anyBranch = true
			fs = append(fs, pr.finding(sp, pm, "TP008", SeverityMedium, pb,
				fmt.Sprintf("statement %d admits any branch (a * spans /): %s; pin the branch.", sp.index, summary(sp, pb)),
				func(v string) string { return pm.render(vals, nil) }))
		}
	}
	// TP006: a name that extends a partial one next to a wildcard.
	type target struct {
		slot, word, tail string
		shapes           []string
		sev              Severity
		prefix           string
		preset           map[string]string
	}
	var targets []target
	if !tenantWide {
		targets = append(targets, target{pm.unit, pm.unitWord, pm.unitTail, pm.unitShapes, SeverityHigh, "", nil})
	}
	if pm.branch != "" && !tenantWide && !anyBranch {
		targets = append(targets, target{pm.branch, "branch", pm.branchTail, pm.branchShapes, SeverityMedium, pm.branchPrefix, pm.branchPreset})
	}
	if pm.env != "" && !tenantWide {
		targets = append(targets, target{pm.env, "environment", "", pm.envShapes, SeverityMedium, "", nil})
	}
	partials := pr.partialNames(sp)
tp006:
	for _, tg := range targets {
		// The slot's value in the statement's own token: a partial name
		// is this slot's only when that value spells it ("repo:acme/app*"
		// extends the repository, not the environment its * also spans).
		_, base := pr.ownProbe(sp, tg.shapes, tg.preset, own)
		if base == nil {
			continue
		}
		mine := base[m.index[tg.slot]]
		// A slot any name fits is open wider than a partial name: the
		// rules of the wider opening (TP004, TP007, TP008) say so.
		{
			preset := map[string]string{tg.slot: tg.prefix + pr.randomName(7)}
			for k, v := range tg.preset {
				preset[k] = v
			}
			if tg.slot == pm.unit && pm.unitID != "" {
				preset[pm.unitID] = pr.randomDigits(9)
			}
			if pb, _ := pr.ownProbe(sp, tg.shapes, preset, own); pb != nil {
				continue
			}
		}
		for _, look := range partials {
			if !strings.Contains(mine, look.of) {
				continue
			}
			preset := map[string]string{tg.slot: tg.prefix + look.name}
			for k, v := range tg.preset {
				preset[k] = v
			}
			if tg.slot == pm.unit && pm.unitID != "" {
				preset[pm.unitID] = pr.randomDigits(9)
			}
			pb, _ := pr.ownProbe(sp, tg.shapes, preset, own)
			if pb == nil {
				continue
			}
			of, tail := look.of, tg.tail
			fs = append(fs, pr.targetedFinding(sp, "TP006", tg.sev, pb,
				fmt.Sprintf("statement %d admits the %s %q, not only %q: %s; end the %s name without a wildcard.", sp.index, tg.word, look.name, of, summary(sp, pb), tg.word),
				func(v string) string { return cutWildcardAfter(v, of, tail, m.seps) }))
			continue tp006
		}
	}
	// TP015 and TP016: the names recycled (new ids), or the immutable
	// ids wildcarded, or the withdrawn hyphen form.
	fs = append(fs, pr.recycling(sp, pm, own, tenantWide)...)
	// TP031: an environment pin with %3A.
	if sp.iss.Name == "github" {
		if pb, vals := pr.ownProbe(sp, pm.envShapes, nil, own); pb != nil {
			env := vals[m.index["env"]]
			if i := strings.Index(strings.ToUpper(env), "%3A"); i >= 0 {
				decoded := env[:i] + ":" + env[i+3:]
				fs = append(fs, pr.finding(sp, pm, "TP031", SeverityMedium, pb,
					fmt.Sprintf("statement %d pins environment %q in sub, which an environment named %q and one named %q both produce (GitHub does not escape %%): %s; pin the environment key as well.", sp.index, decoded, decoded, env, summary(sp, pb)),
					nil, [2]string{"environment", decoded}))
			}
		}
	}
	return fs, tenantWide
}

// maxPatternFixRounds bounds completeFix's rounds.
const maxPatternFixRounds = 4

// completeFix checks the finding's fix: the statement with the fix in
// place is probed again, and while the rule still fires there (another
// value of a list admits the same kind of token) its fix on the fixed
// policy is taken instead.
func completeFix(p *policy.Policy, f *Finding, iss *Issuer, prefix, fed string, pm *patternModel, o Options) {
	cur := p
	for range maxPatternFixRounds {
		if !strings.HasPrefix(f.Fix, "{") {
			return
		}
		conds, err := parseConditionBlock(f.Fix)
		if err != nil {
			return
		}
		next, err := withCondition(cur, f.Statement, conds)
		if err != nil {
			return
		}
		npr := newProber(next, o)
		fs, _ := npr.patternFindings(npr.prepare(f.Statement, &next.Statements[f.Statement], iss, prefix, fed), pm)
		again := slices.IndexFunc(fs, func(g Finding) bool { return g.Rule == f.Rule })
		if again < 0 {
			return
		}
		cur, f.Fix = next, fs[again].Fix
	}
}

// parseConditionBlock reads a Condition block as conditionJSON writes it.
func parseConditionBlock(block string) ([]policy.Condition, error) {
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/example.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":` + block + `}]}`
	p, err := policy.Parse(doc, policy.KindTrust)
	if err != nil {
		return nil, err
	}
	return p.Statements[0].Condition, nil
}

// wholeNames are the (case-folded) names the policy's Allow statements
// spell as a whole segment, without a wildcard, in the issuer's tenant
// claims: "acme" in "repo:acme/*", not "cme" in "repo:*cme/*". A probe
// whose owner is one of them is the policy's own tenant; any other owner
// is the guardrail's business (another tenant, a look-alike).
func (pr *prober) wholeNames(sp *stmtProbe) map[string]bool {
	out := map[string]bool{}
	for i := range pr.p.Statements {
		s := &pr.p.Statements[i]
		if s.Effect != policy.Allow {
			continue
		}
		for ci := range s.Condition {
			c := &s.Condition[ci]
			if !slices.Contains(sp.iss.TenantClaims, keyClaim(c.Key, sp.prefix)) {
				continue
			}
			pats, ok := positiveString(pr.p, c)
			if !ok {
				continue
			}
			for _, pt := range pats {
				segments(pt, sp.iss.model.seps, func(seg []ptok) {
					for _, t := range seg {
						if t.kind != pLit {
							return
						}
					}
					if len(seg) > 0 {
						out[strings.ToLower(literalPart(seg))] = true
					}
				})
			}
		}
	}
	return out
}

// bitbucketAnyBranch is TP008 for Bitbucket Pipelines: the branch is not
// a condition key there, so only a deployment environment restricted to
// protected branches limits the branches; a subject that admits a plain
// step of the repository, or any deployment environment, admits every
// branch. Graded MEDIUM as for a shared issuer (trust-cases P-BB-02): the
// blast radius is the repository's branches either way.
func (pr *prober) bitbucketAnyBranch(sp *stmtProbe) []Finding {
	if sp.tooLong {
		return nil
	}
	m := sp.iss.model
	whole := pr.wholeNames(sp)
	own := func(vals []string) bool { return whole[strings.ToLower(vals[m.primary])] }
	pb, vals := pr.ownProbe(sp, []string{"step"}, nil, own)
	what := "a plain step"
	if pb == nil {
		pb, vals = pr.ownProbe(sp, []string{"deployment"}, map[string]string{"env": "{" + pr.randomName(8) + "}"}, own)
		what = "a step of any deployment environment"
	}
	if pb == nil {
		return nil
	}
	repo := vals[m.primary]
	return []Finding{pr.finding(sp, nil, "TP008", SeverityMedium, pb,
		fmt.Sprintf("statement %d admits %s of repository %s, so any branch (the branch is not a condition key on Bitbucket): %s; pin a deployment environment restricted to protected branches.", sp.index, what, repo, summary(sp, pb)),
		func(string) string { return repo + ":{DEPLOYMENT-ENVIRONMENT-UUID}:*" })}
}

// recycling decides TP015 and TP016.
func (pr *prober) recycling(sp *stmtProbe, pm *patternModel, own func([]string) bool, tenantWide bool) []Finding {
	m := sp.iss.model
	preset := map[string]string{}
	for _, s := range pm.recycle {
		preset[s] = pr.randomDigits(9)
	}
	var classic, immutable []string
	for _, sh := range m.shapes {
		if sh.kind != KindOtherTenant {
			continue
		}
		if strings.HasPrefix(sh.name, "immutable ") {
			immutable = append(immutable, sh.name)
		} else {
			classic = append(classic, sh.name)
		}
	}
	if sp.iss.Name == "github" {
		// The withdrawn preview form owner-<id>/repo-<id>: an ordinary
		// organisation of that name mints the classic subject.
		if pb, vals := pr.ownProbe(sp, []string{"branch", "environment", "pull_request", "tag"}, preset, own); pb != nil {
			owner, repo := vals[m.index["owner"]], vals[m.index["repo"]]
			if on, oid, ok := hyphenID(owner); ok {
				if rn, rid, ok := hyphenID(repo); ok {
					pb.Kind = KindOtherTenant
					return []Finding{pr.targetedFinding(sp, "TP016", SeverityCritical, pb,
						fmt.Sprintf("statement %d pins %q, the withdrawn preview form of an immutable subject: the organisation named %q (anyone can register it) gets in: %s; use the @ form repo:%s@%s/%s@%s.", sp.index, owner+"/"+repo, owner, summary(sp, pb), on, oid, rn, rid),
						func(v string) string {
							v = strings.Replace(v, owner+"/", on+"@"+oid+"/", 1)
							return strings.Replace(v, "/"+repo, "/"+rn+"@"+rid, 1)
						})}
				}
			}
		}
	}
	pb, _ := pr.ownProbe(sp, classic, preset, own)
	if pb == nil && sp.iss.Name == "github" {
		var vals []string
		pb, vals = pr.ownProbe(sp, immutable, preset, own)
		if pb != nil && immutableWildcard(sp) {
			repo := vals[m.index["repo"]]
			// The classic subject is refused, the immutable one with its
			// ids wildcarded (repo:acme@*/app@*) lets new ids in.
			pb.Kind = KindRecycled
			return []Finding{pr.targetedFinding(sp, "TP016", SeverityMedium, pb,
				fmt.Sprintf("statement %d wildcards the immutable ids of the subject: a re-registered owner or repository of the same name gets in: %s; pin the ids.", sp.index, summary(sp, pb)),
				func(v string) string { return pinIDs(v, repo) })}
		}
	}
	if pb == nil {
		return nil
	}
	pb.Kind = KindRecycled
	sev := pm.recycleSeverityExact
	if tenantWide {
		sev = SeverityMedium
	}
	msg := fmt.Sprintf("statement %d pins names only: once they are deleted or renamed, whoever registers them again gets in: %s;", sp.index, summary(sp, pb))
	if len(pm.idPins) == 0 {
		f := pr.finding(sp, pm, "TP015", sev, pb, msg+" AWS exposes no immutable id for this issuer, so keep the role in step with the names' lifecycle.", nil)
		f.Fix = fmt.Sprintf("No condition fixes it: %s exposes only sub and aud; delete or update this role when the organisation, project or %s it names is deleted or renamed.", sp.prefix, pm.unitWord)
		return []Finding{f}
	}
	keys := make([]string, len(pm.idPins))
	for i, k := range pm.idPins {
		keys[i] = k[0]
	}
	return []Finding{pr.finding(sp, pm, "TP015", sev, pb, msg+" pin "+strings.Join(keys, " and ")+".", nil, pm.idPins...)}
}

// pinIDs replaces the wildcarded id segments of an immutable subject
// (after "@", up to "/" or ":") with the placeholders OWNER-ID and
// REPO-ID, completing a value cut after the owner's id with the probe's
// repository.
func pinIDs(v, repo string) string {
	var b strings.Builder
	n := 0
	for {
		at := strings.IndexByte(v, '@')
		if at < 0 {
			b.WriteString(v)
			break
		}
		end := strings.IndexAny(v[at+1:], "/:")
		if end < 0 {
			end = len(v) - at - 1
		}
		seg := v[at+1 : at+1+end]
		b.WriteString(v[:at+1])
		if hasWildcard(seg) {
			seg = [2]string{"OWNER-ID", "REPO-ID"}[min(n, 1)]
		}
		b.WriteString(seg)
		n++
		v = v[at+1+end:]
	}
	out := b.String()
	if n == 1 && strings.HasSuffix(out, "@OWNER-ID") {
		out += "/" + repo + "@REPO-ID:ref:refs/heads/main"
	}
	return out
}

// immutableWildcard reports a positive sub value of the statement that
// spells the immutable form ("@") with a wildcard.
func immutableWildcard(sp *stmtProbe) bool {
	for _, c := range sp.st.Condition {
		if keyClaim(c.Key, sp.prefix) != "sub" {
			continue
		}
		if info, ok := policy.ParseOperator(c.Operator); !ok || info.Negated || !info.Wildcards {
			continue
		}
		for _, v := range c.Values {
			if strings.Contains(v, "@") && hasWildcard(v) {
				return true
			}
		}
	}
	return false
}

// hyphenID splits "name-1234" into the name and the id (at least four
// digits, as GitHub's ids are, so that "web-3" is a name).
func hyphenID(s string) (name, id string, ok bool) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || len(s)-i-1 < 4 {
		return "", "", false
	}
	for k := i + 1; k < len(s); k++ {
		if s[k] < '0' || s[k] > '9' {
			return "", "", false
		}
	}
	return s[:i], s[i+1:], true
}

// prFix is TP007's added pins: on gitlab.com the protected ref.
func (pm *patternModel) prFix() [][2]string {
	if pm.prPreset != nil {
		return [][2]string{{"ref_protected", "true"}}
	}
	return nil
}

// render fills the exact subject with the probe's slot values, some
// replaced by placeholders.
func (pm *patternModel) render(vals []string, over map[string]string) string {
	return fillExact(pm.exact, vals, over, pm)
}

// partialNames are names extending a partial one written next to a
// wildcard in the statement's values (app* → app-x7k2).
func (pr *prober) partialNames(sp *stmtProbe) []lookalike {
	var out []lookalike
	seen := map[string]bool{}
	for _, pats := range sp.pats {
		for _, pt := range pats {
			segments(pt, sp.iss.model.seps, func(seg []ptok) {
				for _, n := range pr.lookalikeNames(seg) {
					if len(out) < 16 && !seen[n] && len(n) <= maxNameLen {
						seen[n] = true
						out = append(out, lookalike{name: n, of: literalPart(seg)})
					}
				}
			})
		}
	}
	return out
}

// ownProbe searches the given shapes for a token whose slots in preset
// hold those values and whose other slots fit the statement's patterns,
// that accept takes (the policy's own tenant) and the policy admits. It
// returns the probe, with the context the evaluator saw, and its slots.
func (pr *prober) ownProbe(sp *stmtProbe, shapes []string, preset map[string]string, accept func([]string) bool) (*Probe, []string) {
	m := sp.iss.model
	defs := pr.defaults(m, false)
	only := statementAlone(pr.p, sp.index)
	var found *Probe
	var foundVals []string
	for si := range m.shapes {
		sh := &m.shapes[si]
		if !slices.Contains(shapes, sh.name) {
			continue
		}
		pr.fitOwn(sp, sh, defs, preset, func(vals []string) bool {
			if !accept(vals) {
				return true
			}
			pb := pr.render(sp, sh, vals)
			if !pr.admitted(sp, pb) || !statementAdmits(only, sp, pr.ctx) {
				return true
			}
			pb.Context = pr.contextOf(sp, pb)
			found, foundVals = pb, vals
			return false
		})
		if found != nil {
			return found, foundVals
		}
	}
	return nil, nil
}

// statementAlone is the policy with statement si as its only Allow
// statement (its Deny statements kept), so that a probe is blamed on the
// statement that admits it; nil when it does not parse back.
func statementAlone(p *policy.Policy, si int) *policy.Policy {
	np := &policy.Policy{Kind: p.Kind, Version: p.Version, ID: p.ID}
	for i, st := range p.Statements {
		if i == si || st.Effect == policy.Deny {
			np.Statements = append(np.Statements, st)
		}
	}
	if len(np.Statements) == len(p.Statements) {
		return p
	}
	out, err := policy.Parse(np.String(), p.Kind)
	if err != nil {
		return nil
	}
	return out
}

// statementAdmits evaluates the context pr.fill built on only.
func statementAdmits(only *policy.Policy, sp *stmtProbe, ctx *policy.Context) bool {
	if only == nil {
		return false
	}
	set := policy.PolicySet{Resource: []*policy.Policy{only}}
	return set.Evaluate(&policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalFederated, ID: sp.fed},
		Action:    actionWebIdentity, Resource: "arn:aws:iam::123456789012:role/keyless-guardrail-probe", Context: ctx,
	}) == policy.Allowed
}

// fitOwn enumerates slot assignments of shape sh with the preset slots
// fixed that fit every claim the statement constrains (one of its
// patterns each; an optional claim may stay unfitted), up to maxFits.
func (pr *prober) fitOwn(sp *stmtProbe, sh *compiledShape, defs []string, preset map[string]string, visit func([]string) bool) {
	m := sp.iss.model
	n := len(m.slots)
	vals, set := make([]string, n), make([]bool, n)
	for name, v := range preset {
		if i, ok := m.index[name]; ok {
			vals[i], set[i] = v, true
		}
	}
	claims := constrainedClaims(sp, sh)
	leaves := 0
	var dfs func(k int, vals []string, set []bool) bool
	dfs = func(k int, vals []string, set []bool) bool {
		if leaves >= maxFits {
			return false
		}
		if k == len(claims) {
			leaves++
			specs := slotSpecs(m, defs, vals, set)
			final := slices.Clone(vals)
			for i := range final {
				if !set[i] {
					final[i] = specs[i].def
				}
			}
			return visit(final)
		}
		c := claims[k]
		specs := slotSpecs(m, defs, vals, set)
		fitted := false
		for pi, pt := range sp.pats[c.name] {
			if prefixClash(pt, c.t, vals, set) {
				continue
			}
			out, got := make([]string, n), make([]bool, n)
			var cost int32
			if !pr.fitClaim(sp, c, pi, pt, vals, set, specs, out, got, &cost) {
				continue
			}
			fitted = true
			nv, ns := slices.Clone(vals), slices.Clone(set)
			for i := range got {
				if got[i] {
					nv[i], ns[i] = out[i], true
				}
			}
			if !dfs(k+1, nv, ns) {
				return false
			}
		}
		if !fitted && c.optional {
			return dfs(k+1, vals, set)
		}
		return true
	}
	dfs(0, vals, set)
}

// render is the probe of a full slot assignment of shape sh.
func (pr *prober) render(sp *stmtProbe, sh *compiledShape, vals []string) *Probe {
	m := sp.iss.model
	pb := &Probe{Kind: KindSameTenant, Shape: sh.name, Tenant: vals[m.primary], Provider: sp.fed, Claims: make(map[string]string, len(sh.claims))}
	renderClaims(sh, vals, pb.Claims)
	return pb
}

// fillExact replaces {slot} in s.
func fillExact(s string, vals []string, over map[string]string, pm *patternModel) string {
	m := modelOf(pm)
	var b strings.Builder
	for {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.IndexByte(s[open:], '}')
		b.WriteString(s[:open])
		name := s[open+1 : open+end]
		switch v, ok := over[name]; {
		case ok:
			b.WriteString(v)
		default:
			if i, ok := m.index[name]; ok && int(i) < len(vals) {
				b.WriteString(vals[i])
			}
		}
		s = s[open+end+1:]
	}
}

// modelOf is the catalogue model a patternModel belongs to.
func modelOf(pm *patternModel) *compiledModel {
	for name, x := range patternModels {
		if x == pm {
			for i := range sharedIssuers {
				if sharedIssuers[i].Name == name {
					return sharedIssuers[i].model
				}
			}
		}
	}
	return nil
}

// summary is the probe's claims the statement reads.
func summary(sp *stmtProbe, pb *Probe) string {
	return "the token with " + probeSummary(sp.st, sp.prefix, sp.iss, pb) + " gets in"
}

// finding builds a probe finding: the path is the identity condition
// whose value admits the probe (sub first); the fix rewrites the values
// of that condition that admit it with rewrite (nil: keep them) and adds
// the pins (claim, value) given.
func (pr *prober) finding(sp *stmtProbe, pm *patternModel, rule string, sev Severity, pb *Probe, msg string, rewrite func(string) string, pins ...[2]string) Finding {
	return pr.findingAt(sp, rule, sev, pb, msg, false, rewrite, pins...)
}

// targetedFinding is finding for a rewrite that changes only the values at
// fault (a partial name, a wildcarded id): the condition whose admitting
// value it changes is the one at fault, whatever its key.
func (pr *prober) targetedFinding(sp *stmtProbe, rule string, sev Severity, pb *Probe, msg string, rewrite func(string) string) Finding {
	return pr.findingAt(sp, rule, sev, pb, msg, true, rewrite)
}

func (pr *prober) findingAt(sp *stmtProbe, rule string, sev Severity, pb *Probe, msg string, targeted bool, rewrite func(string) string, pins ...[2]string) Finding {
	p := pr.p
	f := newFinding(p, sp.index, sp.iss, sp.prefix, sp.fed, rule, msg, pb)
	f.Severity = sev
	at := -1
	// The condition at fault: one whose admitting value the fix
	// rewrites, else the sub condition, else another tenant claim's.
	for pass := 0; pass < 3 && at < 0; pass++ {
		for ci, c := range sp.st.Condition {
			claim := keyClaim(c.Key, sp.prefix)
			switch {
			case claim == "":
				continue
			case pass == 0 && !targeted:
				continue
			case pass == 1 && claim != "sub", pass == 2 && !slices.Contains(sp.iss.TenantClaims, claim):
				continue
			}
			info, ok := policy.ParseOperator(c.Operator)
			if !ok || info.Type != "String" || info.Negated {
				continue
			}
			for _, v := range c.Values {
				if admitsValue(p, &sp.st.Condition[ci], info, v, pb, claim) && (pass > 0 || rewrite(v) != v) {
					at = ci
					break
				}
			}
			if at >= 0 {
				break
			}
		}
	}
	if at >= 0 {
		c := sp.st.Condition[at]
		f.Path = condPath(sp.index, c)
	}
	// The fix.
	conds := make([]policy.Condition, 0, len(sp.st.Condition)+len(pins))
	for ci, c := range sp.st.Condition {
		nc := policy.Condition{Operator: c.Operator, Key: c.Key, Values: slices.Clone(c.Values)}
		if ci == at && rewrite != nil {
			info, _ := policy.ParseOperator(c.Operator)
			claim := keyClaim(c.Key, sp.prefix)
			nc.Values = nc.Values[:0]
			wild := false
			for _, v := range c.Values {
				nv := v
				if admitsValue(p, &sp.st.Condition[ci], info, v, pb, claim) {
					nv = rewrite(v)
				}
				if !slices.Contains(nc.Values, nv) {
					nc.Values = append(nc.Values, nv)
				}
				wild = wild || hasWildcard(nv)
			}
			if !wild && info.Set == "" && !info.Negated {
				nc.Operator = freeOperator(sp.st.Condition, ci, c.Key, "StringEquals", c.Operator)
			}
		}
		conds = append(conds, nc)
	}
	for _, pin := range pins {
		key := sp.prefix + ":" + pin[0]
		if !slices.ContainsFunc(conds, func(c policy.Condition) bool {
			return c.Operator == "StringEquals" && strings.EqualFold(c.Key, key)
		}) {
			conds = append(conds, policy.Condition{Operator: "StringEquals", Key: key, Values: []string{pin[1]}})
		}
	}
	f.Fix = conditionJSON(distinctPairs(conds))
	return f
}

func condPath(si int, c policy.Condition) string {
	return "$.Statement[" + strconv.Itoa(si) + "].Condition[" + strconv.Quote(c.Operator) + "][" + strconv.Quote(c.Key) + "]"
}

// cutWildcardAfter removes the wildcards from the segments of v (split
// at seps) that spell the partial name of ("repo:acme/app*" →
// "repo:acme/app", "a*p" → "ap"), completing the value with tail when a
// wildcard ended it.
func cutWildcardAfter(v, of, tail, seps string) string {
	var b strings.Builder
	start := 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) && strings.IndexByte(seps, v[i]) < 0 {
			continue
		}
		piece := v[start:i]
		if hasWildcard(piece) && literalOf(piece) == of {
			b.WriteString(of)
			if i == len(v) && (piece[len(piece)-1] == '*' || piece[len(piece)-1] == '?') {
				b.WriteString(tail)
			}
		} else {
			b.WriteString(piece)
		}
		if i < len(v) {
			b.WriteByte(v[i])
		}
		start = i + 1
	}
	return b.String()
}

// tp003 reports a list of identity values where one value is loose
// (TP002, TP005 or TP004 taken on its own) and another is tight: the
// loosest value decides. Each value is checked alone, by the guardrail's
// probes and TP004's, in a copy of the policy; the probe is re-checked on
// the policy itself.
func tp003(p *policy.Policy, si int, iss *Issuer, prefix, fed string, pm *patternModel, o Options) []Finding {
	st := &p.Statements[si]
	var out []Finding
	for ci, c := range st.Condition {
		claim := keyClaim(c.Key, prefix)
		info, ok := policy.ParseOperator(c.Operator)
		if len(c.Values) < 2 || !slices.Contains(iss.TenantClaims, claim) || !ok || info.Type != "String" || info.Negated || info.Set == "ForAllValues" {
			continue
		}
		var loose []int
		var probe *Probe
		tight := false
		for k, v := range c.Values {
			conds := slices.Clone(st.Condition)
			conds[ci] = policy.Condition{Operator: c.Operator, Key: c.Key, Values: []string{v}}
			np, err := withCondition(p, si, conds)
			if err != nil {
				continue
			}
			var pb *Probe
			for _, g := range Guardrail(np, o) {
				if g.Statement == si && g.Probe != nil && (g.Rule == "TP002" || g.Rule == "TP005") {
					pb = g.Probe
					break
				}
			}
			if pb == nil {
				npr := newProber(np, o)
				nsp := npr.prepare(si, &np.Statements[si], iss, prefix, fed)
				if fs, wide := npr.patternFindings(nsp, pm); wide {
					for _, f := range fs {
						if f.Rule == "TP004" {
							pb = f.Probe
						}
					}
				}
			}
			if pb != nil && admitsProbe(p, pb) {
				loose = append(loose, k)
				if probe == nil {
					probe = pb
				}
			} else if pb == nil {
				tight = true
			}
		}
		if len(loose) == 0 || !tight {
			continue
		}
		var bad, keep []string
		for k, v := range c.Values {
			if slices.Contains(loose, k) {
				bad = append(bad, strconv.Quote(v))
			} else {
				keep = append(keep, v)
			}
		}
		f := newFinding(p, si, iss, prefix, fed, "TP003",
			fmt.Sprintf("statement %d lists %s among tighter values of %s: values are ORed, so the loosest decides (%s gets in); remove it.", si, strings.Join(bad, ", "), c.Key, strconv.Quote(probe.Claims[claim])), probe)
		f.Severity = SeverityCritical
		f.Path = condPath(si, c)
		conds := slices.Clone(st.Condition)
		conds[ci] = policy.Condition{Operator: c.Operator, Key: c.Key, Values: keep}
		f.Fix = conditionJSON(conds)
		out = append(out, f)
	}
	return out
}

// admitsProbe evaluates p on the probe's recorded context.
func admitsProbe(p *policy.Policy, pb *Probe) bool {
	c := policy.NewContext(len(pb.Context))
	for k, v := range pb.Context {
		c.Set(k, v...)
	}
	set := policy.PolicySet{Resource: []*policy.Policy{p}}
	return set.Evaluate(&policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalFederated, ID: pb.Provider},
		Action:    actionWebIdentity, Resource: "arn:aws:iam::123456789012:role/keyless-guardrail-probe", Context: c,
	}) == policy.Allowed
}

// shapeRules are TP009 and TP012, decided on the parsed conditions.
func shapeRules(p *policy.Policy, si int, iss *Issuer, prefix, fed string) []Finding {
	st := &p.Statements[si]
	var out []Finding
	for ci, c := range st.Condition {
		claim := keyClaim(c.Key, prefix)
		if claim == "" {
			continue
		}
		info, ok := policy.ParseOperator(c.Operator)
		if !ok || info.Type != "String" {
			continue
		}
		if !info.Wildcards && !info.Negated && (info.Base == "StringEquals" || info.Base == "StringEqualsIgnoreCase") {
			var dead []string
			for _, v := range c.Values {
				if hasWildcard(v) {
					dead = append(dead, v)
				}
			}
			if len(dead) > 0 {
				f := newFinding(p, si, iss, prefix, fed, "TP009",
					fmt.Sprintf("statement %d: %q under %s is compared literally, so no token matches it (a dead condition); write the exact value rather than switching to StringLike.", si, dead[0], c.Operator), nil)
				f.Severity = SeverityLow
				f.Path = condPath(si, c)
				tmpl := templateFor(iss)
				nv := "YOUR-" + claim
				if claim == tmpl.claim {
					nv = tmpl.value
				}
				op := c.Operator
				if hasWildcard(nv) {
					// The issuer's pin is a pattern (Buildkite's any
					// commit and step).
					op = freeOperator(st.Condition, ci, c.Key, strings.Replace(op, info.Base, "StringLike", 1), op)
				}
				vals := slices.Clone(c.Values)
				for _, v := range dead {
					vals = replaceValue(vals, v, nv)
				}
				conds := slices.Clone(st.Condition)
				conds[ci] = policy.Condition{Operator: op, Key: c.Key, Values: vals}
				f.Fix = conditionJSON(conds)
				out = append(out, f)
			}
		}
		if info.Set == "ForAllValues" && claim != "amr" {
			sev := SeverityMedium
			if optionalClaim(iss.model, claim) {
				sev = SeverityHigh
			}
			f := newFinding(p, si, iss, prefix, fed, "TP012",
				fmt.Sprintf("statement %d: ForAllValues: on the single-valued key %s is true when the token lacks the claim; use %s.", si, c.Key, info.Base), nil)
			f.Severity = sev
			f.Path = condPath(si, c)
			conds := slices.Clone(st.Condition)
			// ForAnyValue: reads a single-valued key as the plain
			// operator does, and is false when the claim is absent.
			op := freeOperator(st.Condition, ci, c.Key, plainOperator(info), "ForAnyValue:"+info.Base, c.Operator)
			conds[ci] = policy.Condition{Operator: op, Key: c.Key, Values: slices.Clone(c.Values)}
			f.Fix = conditionJSON(conds)
			if op == c.Operator {
				f.Fix = fmt.Sprintf("Write this condition with %s: the statement already uses %s and ForAnyValue:%s on %s, so split it into two statements or merge what the conditions mean into one.", info.Base, info.Base, info.Base, c.Key)
			}
			out = append(out, f)
		}
	}
	return out
}

// freeOperator is the first of ops that no condition but conds[self]
// uses with key (a Condition block holds one of each pair); the last of
// ops when all are taken.
func freeOperator(conds []policy.Condition, self int, key string, ops ...string) string {
next:
	for _, op := range ops {
		for i, c := range conds {
			if i != self && c.Operator == op && strings.EqualFold(c.Key, key) {
				continue next
			}
		}
		return op
	}
	return ops[len(ops)-1]
}

func replaceValue(vs []string, old, nv string) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if v == old {
			v = nv
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// optionalClaim reports a claim some token of the issuer lacks: marked
// optional, or missing from a shape.
func optionalClaim(m *compiledModel, claim string) bool {
	for _, sh := range m.shapes {
		found := false
		for _, c := range sh.claims {
			if c.name == claim {
				found = true
				if c.optional {
					return true
				}
			}
		}
		if !found {
			return true
		}
	}
	return false
}
