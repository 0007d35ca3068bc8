package lint

// Rule group "CI specifics": rules about runs of the policy's OWN tenant
// that a trust policy admits and should not (an HCP Terraform plan run, a
// GitLab merge-request pipeline, a GitHub follow-up run, a CircleCI SSH
// rerun), pins that break on the next run (a Buildkite commit, a
// Bitbucket step, a classic GitHub subject), several Allow statements
// whose union is the weakest (TP020), and drift from a baseline (TP040).
//
// The tokens are built by fitting the issuer's subject grammar (models.go)
// to the statement's own values with some slots fixed (run_phase=plan,
// pipeline_source=merge_request_event, …), and every verdict is
// policy.PolicySet.Evaluate on the context the STS builds (prober.fill).

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/policy"
)

// KindRunVariant: a token of the policy's own tenant from a kind of run
// the policy should not admit (a plan run, a merge-request pipeline, an
// SSH rerun, a follow-up run, a self-hosted runner, another workflow).
const KindRunVariant ProbeKind = "run-variant"

// KindDrift: a token the policy admits and its baseline did not (TP040).
const KindDrift ProbeKind = "drift"

// ciShape is the model's shape called name (nil when it has none).
func ciShape(m *compiledModel, name string) *compiledShape {
	for i := range m.shapes {
		if m.shapes[i].name == name {
			return &m.shapes[i]
		}
	}
	return nil
}

// fitRun assigns the model's slots for a token of shape sh: the fixed
// slots as given, every claim the statement constrains with positive
// string conditions fitted to the cheapest of its values (in the model's
// order, each seeing the slots fixed before it), the rest defs. The
// token may be of the policy's own tenant: nothing here avoids the names
// the policy spells. ok is false when some constrained claim fits no
// value (the evaluator would refuse such a token).
func (pr *prober) fitRun(sp *stmtProbe, sh *compiledShape, fixed map[string]string, defs []string) ([]string, bool) {
	m := sp.iss.model
	n := len(m.slots)
	vals, set := make([]string, n), make([]bool, n)
	for name, v := range fixed {
		i, ok := m.index[name]
		if !ok {
			return nil, false
		}
		vals[i], set[i] = v, true
	}
	for _, name := range m.order {
		pats := sp.pats[name]
		if len(pats) == 0 {
			continue
		}
		var c *compiledClaim
		for k := range sh.claims {
			if sh.claims[k].name == name {
				c = &sh.claims[k]
			}
		}
		if c == nil {
			continue
		}
		specs := slotSpecs(m, defs, vals, set)
		var bestVals []string
		var bestGot []bool
		bestCost := int32(-1)
		for _, pt := range pats {
			if prefixClash(pt, c.t, vals, set) {
				continue
			}
			out, got := make([]string, n), make([]bool, n)
			start := pr.sc.compile(c.t, vals, set, specs)
			if _, ok, _ := pr.sc.witness(pt, start, n, out, got); !ok {
				continue
			}
			if bestCost < 0 || pr.sc.cost < bestCost {
				bestCost, bestVals, bestGot = pr.sc.cost, out, got
			}
		}
		if bestCost < 0 {
			if c.optional {
				continue
			}
			return nil, false
		}
		for i := range bestGot {
			if bestGot[i] && !set[i] {
				vals[i], set[i] = bestVals[i], true
			}
		}
	}
	specs := slotSpecs(m, defs, vals, set)
	for i := range vals {
		if !set[i] {
			vals[i] = specs[i].def
		}
	}
	return vals, true
}

// runProbe renders a slot assignment of shape sh as a probe.
func runProbe(sp *stmtProbe, sh *compiledShape, vals []string, kind ProbeKind, shape string) *Probe {
	m := sp.iss.model
	pb := &Probe{Kind: kind, Shape: shape, Tenant: vals[m.primary], Provider: sp.fed, Claims: make(map[string]string, len(sh.claims)+2)}
	renderClaims(sh, vals, pb.Claims)
	return pb
}

// ciTrust is one Allow statement trusting a catalogued issuer's
// provider, prepared for probing.
type ciTrust struct {
	pr *prober
	sp *stmtProbe
}

// ciTrusts yields the Allow statements of p that trust a catalogued issuer
// accepted by want, one provider each (the first catalogued one).
func ciTrusts(p *policy.Policy, o Options, want func(*Issuer) bool) []ciTrust {
	var out []ciTrust
	var pr *prober
	for si := range p.Statements {
		st := &p.Statements[si]
		if st.Effect != policy.Allow || st.Principal == nil {
			continue
		}
		for _, fed := range st.Principal.Federated {
			iss, prefix, ok := issuerForOpts(fed, o)
			if !ok || iss.model == nil || !want(iss) {
				continue
			}
			if pr == nil {
				pr = newProber(p, o)
			}
			sp := pr.prepare(si, st, iss, prefix, fed)
			if sp.tooLong {
				break
			}
			out = append(out, ciTrust{pr: pr, sp: sp})
			break
		}
	}
	return out
}

// ciWithModel selects the issuers whose tokens follow one of the models
// (keyless's own issuers with that profile included).
func ciWithModel(ms ...*compiledModel) func(*Issuer) bool {
	return func(iss *Issuer) bool { return slices.Contains(ms, iss.model) }
}

// isCircleCI selects CircleCI issuers (and keyless's own with the
// circleci profile): their model has SSH-rerun shapes.
func isCircleCI(iss *Issuer) bool {
	return iss.model != nil && ciShape(iss.model, "ssh-rerun v1") != nil
}

// admittedHere reports that the policy admits pb and that the statement
// probed is one that admits it (a probe another statement admits is that
// statement's finding).
func (t ciTrust) admittedHere(pb *Probe) bool {
	if !t.pr.admitted(t.sp, pb) {
		return false
	}
	return t.pr.admittedBy(t.sp) == t.sp.index
}

// prove fills the probe's Context (what the evaluator saw).
func (t ciTrust) prove(pb *Probe) *Probe {
	pb.Context = t.pr.contextOf(t.sp, pb)
	return pb
}

// ciLower is one severity level down for a per-tenant issuer
// (trust-pitfalls.md §6: the blast radius is one tenant).
func ciLower(s Severity, iss *Issuer) Severity {
	if !perTenant(iss) || s <= SeverityInfo {
		return s
	}
	return s - 1
}

// ciFinding is a finding of statement t with the condition of claim at
// fault as its path (the statement when the statement has none).
func ciFinding(p *policy.Policy, t ciTrust, rule string, sev Severity, claim, msg string, pb *Probe) Finding {
	si := t.sp.index
	st := &p.Statements[si]
	f := Finding{Rule: rule, Severity: sev, Statement: si, Sid: st.Sid, Principal: t.sp.fed, Message: msg, Probe: pb,
		Path: "$.Statement[" + strconv.Itoa(si) + "]"}
	if claim != "" {
		for _, c := range st.Condition {
			if keyClaim(c.Key, t.sp.prefix) == claim {
				f.Path += ".Condition[" + strconv.Quote(c.Operator) + "][" + strconv.Quote(c.Key) + "]"
				break
			}
		}
	}
	return f
}

// ciCloneConds copies a statement's conditions.
func ciCloneConds(cs []policy.Condition) []policy.Condition {
	out := make([]policy.Condition, len(cs))
	for i, c := range cs {
		out[i] = policy.Condition{Operator: c.Operator, Key: c.Key, Values: slices.Clone(c.Values)}
	}
	return out
}

// ciRewrite rewrites the values of the positive string conditions on
// claim with fn; an operator left without wildcards in its values
// becomes StringEquals (StringEqualsIgnoreCase stays), one with
// wildcards StringLike.
func ciRewrite(conds []policy.Condition, prefix, claim string, fn func(string) string) []policy.Condition {
	for i := range conds {
		c := &conds[i]
		info, ok := policy.ParseOperator(c.Operator)
		if !ok || info.Type != "String" || info.Negated || keyClaim(c.Key, prefix) != claim {
			continue
		}
		wild := false
		var vs []string
		for _, v := range c.Values {
			nv := fn(v)
			if !slices.Contains(vs, nv) {
				vs = append(vs, nv)
			}
			wild = wild || hasWildcard(nv)
		}
		c.Values = vs
		switch {
		case wild:
			c.Operator = "StringLike"
		case info.Base != "StringEqualsIgnoreCase":
			c.Operator = "StringEquals"
		}
	}
	return distinctPairs(conds)
}

// ciPin adds StringEquals claim = value unless a positive condition on
// the claim already holds exactly that value.
func ciPin(conds []policy.Condition, prefix, claim, value string) []policy.Condition {
	for _, c := range conds {
		info, ok := policy.ParseOperator(c.Operator)
		if ok && !info.Negated && !info.IfExists && keyClaim(c.Key, prefix) == claim && slices.Equal(c.Values, []string{value}) {
			return conds
		}
	}
	return distinctPairs(append(conds, policy.Condition{Operator: "StringEquals", Key: prefix + ":" + claim, Values: []string{value}}))
}

// ciSegmentAfter replaces the text after label in v, up to the next ':'
// (or the end), with repl; v without label is returned as is.
func ciSegmentAfter(v, label, repl string) (string, bool) {
	i := strings.Index(v, label)
	if i < 0 {
		return v, false
	}
	rest := v[i+len(label):]
	end := strings.IndexByte(rest, ':')
	if end < 0 {
		end = len(rest)
	}
	return v[:i+len(label)] + repl + rest[end:], true
}

// ciRandomHex is n lower-case hex digits.
func (pr *prober) ciRandomHex(n int) string {
	const hex = "0123456789abcdef"
	b := pr.randomBytes(n)
	for i := range b {
		b[i] = hex[b[i]&15]
	}
	return string(b)
}

// --- TP024: HCP Terraform run_phase -----------------------------------

// ruleTP024: an HCP Terraform trust admits a plan run (run_phase:plan),
// which speculative plans from pull requests get: run_phase wildcarded or
// not pinned.
func ruleTP024(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for _, t := range ciTrusts(p, o, ciWithModel(terraformModel)) {
		m := t.sp.iss.model
		sh := &m.shapes[0]
		defs := t.pr.defaults(m, false)
		vals, ok := t.pr.fitRun(t.sp, sh, map[string]string{"phase": "plan"}, defs)
		if !ok {
			continue
		}
		pb := runProbe(t.sp, sh, vals, KindRunVariant, "plan run")
		if !t.admittedHere(pb) {
			continue
		}
		msg := fmt.Sprintf("HCP Terraform plan runs get this role: the subject %q (run_phase:plan) is admitted, and speculative plans run for pull requests; pin run_phase:apply here and give plans a separate read-only role.", pb.Claims["sub"])
		f := ciFinding(p, t, "TP024", ciLower(SeverityHigh, t.sp.iss), "sub", msg, t.prove(pb))
		conds := ciRewrite(ciCloneConds(t.sp.st.Condition), t.sp.prefix, "sub", func(v string) string {
			if nv, ok := ciSegmentAfter(v, ":run_phase:", "apply"); ok {
				return nv
			}
			return strings.TrimRight(v, "*?:") + ":run_phase:apply"
		})
		f.Fix = conditionJSON(conds)
		out = append(out, f)
	}
	return out
}

// --- TP025: GitLab ref_type, ref_protected, merge requests --------------

// ruleTP025: a gitlab.com trust admits a merge-request pipeline, a run on
// an unprotected ref, or a tag where a branch is meant (ref_type:*).
func ruleTP025(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for _, t := range ciTrusts(p, o, ciWithModel(gitlabModel)) {
		m := t.sp.iss.model
		sh := &m.shapes[0]
		defs := t.pr.defaults(m, false)
		branch := "feature-" + t.pr.randomName(4)
		type try struct {
			fixed map[string]string
			ref   string // default of the ref slot
			shape string
			msg   string
		}
		tries := []try{
			{map[string]string{"pipeline_source": "merge_request_event", "ref_protected": "false"}, branch, "merge request pipeline",
				"merge-request pipelines get this role: a pipeline_source=merge_request_event token on an unprotected branch (sub %q) is admitted; pin ref_protected to \"true\" (and the exact ref_type:branch:ref: in sub)."},
			{map[string]string{"pipeline_source": "push", "ref_protected": "false", "ref_type": "tag"}, "", "unprotected tag",
				"an unprotected tag gets this role: sub %q with ref_protected=false is admitted; pin ref_type:branch in sub and ref_protected to \"true\"."},
			{map[string]string{"pipeline_source": "push", "ref_protected": "false"}, "", "unprotected branch",
				"a pipeline on an unprotected branch gets this role: sub %q with ref_protected=false is admitted; pin ref_protected to \"true\"."},
		}
		var found *Probe
		msg := ""
		protectable := slices.Contains(t.sp.keyNames, "ref_protected")
		if !protectable {
			// Self-managed GitLab: ref_protected and pipeline_source are
			// not condition keys; only ref_type can be pinned (in sub).
			tries = nil
		}
		for _, tr := range tries {
			d := slices.Clone(defs)
			if tr.ref != "" {
				d[m.index["ref"]] = tr.ref
			}
			vals, ok := t.pr.fitRun(t.sp, sh, tr.fixed, d)
			if !ok {
				continue
			}
			if tr.ref != "" && vals[m.index["ref"]] != tr.ref {
				// The policy pins the branch: a merge request from it is
				// not the case here; an unprotected ref is (below).
				continue
			}
			pb := runProbe(t.sp, sh, vals, KindRunVariant, tr.shape)
			if t.admittedHere(pb) {
				found, msg = pb, fmt.Sprintf(tr.msg, pb.Claims["sub"])
				break
			}
		}
		if found == nil {
			// ref_type:*: a protected tag named like the branch the
			// policy means.
			fixed := map[string]string{"pipeline_source": "push", "ref_protected": "true", "ref_type": "branch"}
			if !protectable {
				fixed = map[string]string{"ref_type": "branch"}
			}
			vals, ok := t.pr.fitRun(t.sp, sh, fixed, defs)
			if ok {
				branchPb := runProbe(t.sp, sh, vals, KindRunVariant, "branch")
				tagVals := slices.Clone(vals)
				tagVals[m.index["ref_type"]] = "tag"
				tagPb := runProbe(t.sp, sh, tagVals, KindRunVariant, "tag named like the branch")
				if t.admittedHere(branchPb) && t.admittedHere(tagPb) {
					found = tagPb
					msg = fmt.Sprintf("ref_type is not pinned: a tag named like the branch (sub %q) is admitted as the branch is; pin ref_type:branch in sub.", tagPb.Claims["sub"])
				}
			}
		}
		if found == nil {
			continue
		}
		f := ciFinding(p, t, "TP025", ciLower(SeverityHigh, t.sp.iss), "sub", msg, t.prove(found))
		conds := ciRewrite(ciCloneConds(t.sp.st.Condition), t.sp.prefix, "sub", func(v string) string {
			nv, _ := ciSegmentAfter(v, ":ref_type:", "branch")
			return nv
		})
		if protectable {
			conds = ciPin(conds, t.sp.prefix, "ref_protected", "true")
		}
		f.Fix = conditionJSON(conds)
		out = append(out, f)
	}
	return out
}

// --- TP033, TP034, TP037, TP026: GitHub ---------------------------------

// ghOwnShapes are the GitHub shapes of a run of the policy's own tenant
// that TP033/TP034/TP026 try, in order.
var ghOwnShapes = [...]string{"branch", "environment", "tag", "immutable branch", "immutable environment"}

// ghOwnToken is the first token of the statement's own tenant in one of
// ghOwnShapes (fixed slots as given) that the statement admits.
func ghOwnToken(t ciTrust, fixed map[string]string, defs []string, shapes []string, kind ProbeKind, label string) *Probe {
	m := t.sp.iss.model
	for _, name := range shapes {
		sh := ciShape(m, name)
		if sh == nil {
			continue
		}
		fx := fixed
		if !strings.Contains(name, "branch") {
			fx = map[string]string{}
			for k, v := range fixed {
				if k != "branch" {
					fx[k] = v
				}
			}
		}
		vals, ok := t.pr.fitRun(t.sp, sh, fx, defs)
		if !ok {
			continue
		}
		pb := runProbe(t.sp, sh, vals, kind, label+" ("+name+")")
		if t.admittedHere(pb) {
			return pb
		}
	}
	return nil
}

// ruleTP033: a GitHub trust pinned to the default branch also admits the
// runs of any other workflow on that branch: workflow_run, schedule and
// workflow_dispatch follow-ups, which may process fork artifacts.
func ruleTP033(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for _, t := range ciTrusts(p, o, ciWithModel(githubModel)) {
		m := t.sp.iss.model
		defs := t.pr.defaults(m, false)
		defs[m.index["wf_file"]] = "followup-" + t.pr.randomName(4) + ".yml"
		defs[m.index["workflow"]] = "followup-" + t.pr.randomName(4)
		// Another workflow of the repository: its file and name are not
		// the policy's to choose.
		other := map[string]string{"wf_file": defs[m.index["wf_file"]], "workflow": defs[m.index["workflow"]]}
		var pb *Probe
		for _, branch := range []string{"main", "master"} {
			other["branch"] = branch
			if pb = ghOwnToken(t, other, defs, []string{"branch", "immutable branch"}, KindRunVariant, "workflow_run on the default branch"); pb != nil {
				break
			}
		}
		if pb == nil {
			continue
		}
		pb.Claims["event_name"] = "workflow_run"
		msg := fmt.Sprintf("any workflow on the default branch gets this role, including workflow_run, schedule and workflow_dispatch runs (job_workflow_ref %q is admitted); pin job_workflow_ref to the deploying workflow.", pb.Claims["job_workflow_ref"])
		f := ciFinding(p, t, "TP033", SeverityInfo, "sub", msg, t.prove(pb))
		repo := pb.Claims["repository"]
		if repo == "" {
			repo = "OWNER/REPO"
		}
		f.Fix = conditionJSON(ciPin(ciCloneConds(t.sp.st.Condition), t.sp.prefix, "job_workflow_ref", repo+"/.github/workflows/deploy.yml@refs/heads/main"))
		out = append(out, f)
	}
	return out
}

// ruleTP034: a GitHub trust cannot exclude self-hosted runners:
// runner_environment is not a condition key, so a job on a runner the
// repository's admins registered gets the role as a GitHub-hosted one
// does. Reported once per provider, on the first statement that admits
// a run of its own tenant.
func ruleTP034(p *policy.Policy, o Options) []Finding {
	var out []Finding
	done := map[string]bool{}
	for _, t := range ciTrusts(p, o, ciWithModel(githubModel)) {
		if done[t.sp.fed] {
			continue
		}
		m := t.sp.iss.model
		pb := ghOwnToken(t, nil, t.pr.defaults(m, false), ghOwnShapes[:], KindRunVariant, "self-hosted runner")
		if pb == nil {
			continue
		}
		done[t.sp.fed] = true
		pb.Claims["runner_environment"] = "self-hosted"
		msg := "self-hosted runners cannot be excluded: runner_environment is not a condition key, so a job on any runner registered to the repository or organisation gets this role; restrict the environment or the branch to GitHub-hosted runners in GitHub (runner groups), and keep deploy roles on protected environments."
		f := ciFinding(p, t, "TP034", SeverityInfo, "sub", msg, t.prove(pb))
		f.Fix = "No condition excludes self-hosted runners on AWS: restrict which runners can take this repository's deploy jobs (runner groups limited to selected repositories and workflows)."
		out = append(out, f)
	}
	return out
}

// ruleTP037: a classic, name-based GitHub subject pin stops matching when
// the repository moves to the immutable subject
// (repo:OWNER@ID/REPO@ID:…, the default for repositories created or
// renamed after 2026-07-15): the same run, in the immutable form, is
// refused. Decided by the evaluator; the finding carries no probe (the
// token at stake is refused, not admitted).
func ruleTP037(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for _, t := range ciTrusts(p, o, ciWithModel(githubModel)) {
		m := t.sp.iss.model
		if len(t.sp.pats["sub"]) == 0 {
			continue
		}
		defs := t.pr.defaults(m, false)
		for _, name := range []string{"branch", "environment", "tag"} {
			sh := ciShape(m, name)
			vals, ok := t.pr.fitRun(t.sp, sh, nil, defs)
			if !ok {
				continue
			}
			classic := runProbe(t.sp, sh, vals, KindRunVariant, name)
			if !t.admittedHere(classic) {
				continue
			}
			// The same run with the immutable subject: owner, repository
			// and context kept, the ids whatever the policy allows.
			ish := ciShape(m, "immutable "+name)
			if ish == nil {
				// No immutable form of this shape in the model (tags):
				// nothing to compare.
				continue
			}
			fixed := map[string]string{}
			for _, s := range []string{"owner", "repo", "branch", "tag", "env", "wf_owner", "wf_repo", "wf_file", "wf_ref", "workflow", "actor", "actor_id", "aud"} {
				fixed[s] = vals[m.index[s]]
			}
			ivals, ok := t.pr.fitRun(t.sp, ish, fixed, defs)
			if ok && t.pr.admitted(t.sp, runProbe(t.sp, ish, ivals, KindRunVariant, ish.name)) {
				break
			}
			if !ok {
				ivals = slices.Clone(vals)
			}
			imm := runProbe(t.sp, ish, ivals, KindRunVariant, ish.name)
			msg := fmt.Sprintf("the classic subject %q is pinned by name: when the repository gets the immutable subject (repositories created or renamed after 2026-07-15), the same run arrives as %q and is refused; add the immutable form (repo:OWNER@OWNER_ID/REPO@REPO_ID:…) to the values.", classic.Claims["sub"], imm.Claims["sub"])
			f := ciFinding(p, t, "TP037", SeverityInfo, "sub", msg, nil)
			owner, repo := vals[m.index["owner"]], vals[m.index["repo"]]
			ownerID, repoID := ciPinnedValue(t, "repository_owner_id", "OWNER_ID"), ciPinnedValue(t, "repository_id", "REPO_ID")
			immVal := strings.Replace(classic.Claims["sub"], "repo:"+owner+"/"+repo+":", "repo:"+owner+"@"+ownerID+"/"+repo+"@"+repoID+":", 1)
			conds := ciCloneConds(t.sp.st.Condition)
			for i := range conds {
				c := &conds[i]
				info, ok := policy.ParseOperator(c.Operator)
				if ok && info.Type == "String" && !info.Negated && keyClaim(c.Key, t.sp.prefix) == "sub" {
					if !slices.Contains(c.Values, immVal) {
						c.Values = append(c.Values, immVal)
					}
					break
				}
			}
			f.Fix = conditionJSON(conds)
			out = append(out, f)
			break
		}
	}
	return out
}

// ciPinnedValue is the one value a StringEquals condition of the
// statement pins claim to, or def.
func ciPinnedValue(t ciTrust, claim, def string) string {
	for _, c := range t.sp.st.Condition {
		if c.Operator == "StringEquals" && keyClaim(c.Key, t.sp.prefix) == claim && len(c.Values) == 1 {
			return c.Values[0]
		}
	}
	return def
}

// ruleTP026GitHub: job_workflow_ref pinned at a movable ref: a tag (any
// repository's: tags can be moved), or a branch of another repository
// than the one the token is for (that repository's writers decide what
// runs). A new commit there is a new job_workflow_sha, which is not a
// condition key, so the policy admits whatever code the ref points to.
func ruleTP026GitHub(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for _, t := range ciTrusts(p, o, ciWithModel(githubModel)) {
		if len(t.sp.pats["job_workflow_ref"]) == 0 {
			continue
		}
		m := t.sp.iss.model
		pb := ghOwnToken(t, nil, t.pr.defaults(m, false), ghOwnShapes[:], KindRunVariant, "new commit at the pinned workflow ref")
		if pb == nil {
			continue
		}
		jwr := pb.Claims["job_workflow_ref"]
		path, ref, _ := strings.Cut(jwr, "@")
		parts := strings.SplitN(path, "/", 3)
		if len(parts) < 3 {
			continue
		}
		wfRepo := parts[0] + "/" + parts[1]
		var why string
		switch {
		case strings.HasPrefix(ref, "refs/tags/"):
			why = "a tag, which can be moved to another commit"
		case strings.HasPrefix(ref, "refs/heads/") && !strings.EqualFold(wfRepo, pb.Claims["repository"]):
			why = "a branch of " + wfRepo + ", whose writers are not " + pb.Claims["repository"] + "'s"
		default:
			continue
		}
		pb.Claims["job_workflow_sha"] = t.pr.ciRandomHex(40)
		msg := fmt.Sprintf("job_workflow_ref pins the reusable workflow %q at %s: any commit it comes to point to runs with this role; pin it at a commit SHA (…@<40-hex sha>).", jwr, why)
		f := ciFinding(p, t, "TP026", ciLower(SeverityMedium, t.sp.iss), "job_workflow_ref", msg, t.prove(pb))
		conds := ciRewrite(ciCloneConds(t.sp.st.Condition), t.sp.prefix, "job_workflow_ref", func(v string) string {
			w, r, ok := strings.Cut(v, "@")
			if !ok || !strings.HasPrefix(r, "refs/") {
				return v
			}
			return w + "@COMMIT-SHA"
		})
		f.Fix = conditionJSON(conds)
		out = append(out, f)
	}
	return out
}

// --- TP038: volatile segments pinned ------------------------------------

// volatileSlots are, per issuer, the subject slot that changes on every
// run, what it is called, and the fix of a subject value that pins it.
var volatileSlots = map[string]struct {
	slot, what string
	fix        func(string) string
}{
	"buildkite": {"commit", "Buildkite commit", func(v string) string {
		nv, _ := ciSegmentAfter(v, ":commit:", "*")
		return nv
	}},
	IssuerBitbucket: {"step", "Bitbucket stepUuid", func(v string) string {
		// {repo}:{step} or {repo}:{env}:{step}: the last segment.
		if i := strings.LastIndexByte(v, ':'); i >= 0 {
			return v[:i+1] + "*"
		}
		return v
	}},
}

// ruleTP038: a subject pin fixes a segment that changes on every run (a
// Buildkite commit, a Bitbucket step): the run that the policy admits
// today is the only one; the next run is refused. Decided by the
// evaluator on the same run with that segment changed; no probe (the
// token at stake is refused).
func ruleTP038(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for _, t := range ciTrusts(p, o, func(iss *Issuer) bool { _, ok := volatileSlots[iss.Name]; return ok }) {
		vs := volatileSlots[t.sp.iss.Name]
		m := t.sp.iss.model
		si, ok := m.index[vs.slot]
		if !ok || len(t.sp.pats["sub"]) == 0 {
			continue
		}
		defs := t.pr.defaults(m, false)
		for _, sh := range m.shapes {
			vals, ok := t.pr.fitRun(t.sp, &sh, nil, defs)
			if !ok {
				continue
			}
			now := runProbe(t.sp, &sh, vals, KindRunVariant, sh.name)
			if !t.admittedHere(now) {
				continue
			}
			next := slices.Clone(vals)
			next[si] = t.pr.ciRandomHex(40)
			if m.slots[si].cs.has('{') {
				// A Bitbucket UUID, braces included.
				h := t.pr.ciRandomHex(32)
				next[si] = "{" + h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:] + "}"
			}
			if !allIn(next[si], m.slots[si].cs) {
				next[si] = t.pr.randomFor(m.slots[si].cs)
			}
			np := runProbe(t.sp, &sh, next, KindRunVariant, sh.name)
			if t.pr.admitted(t.sp, np) {
				break
			}
			msg := fmt.Sprintf("the %s is pinned in the subject: the next run (sub %q) is refused, so the role works once; pin the stable segments and leave the %s out (StringLike with *).", vs.what, np.Claims["sub"], vs.what)
			f := ciFinding(p, t, "TP038", SeverityLow, "sub", msg, nil)
			conds := ciRewrite(ciCloneConds(t.sp.st.Condition), t.sp.prefix, "sub", vs.fix)
			f.Fix = conditionJSON(conds)
			out = append(out, f)
			break
		}
	}
	return out
}

// --- TP023, TP026: CircleCI ---------------------------------------------

// ruleTP023: a CircleCI trust admits SSH-rerun sessions. ssh-rerun is a
// claim, not a condition key, so no condition excludes them: whoever may
// rerun a job with SSH gets the role in an interactive shell. HIGH when
// any user of the project is admitted, MEDIUM when the subject pins one
// user (trust-pitfalls.md §6: the rule is CircleCI's own, so its
// severities are taken as written for that per-tenant issuer).
func ruleTP023(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for _, t := range ciTrusts(p, o, isCircleCI) {
		m := t.sp.iss.model
		ui, ok := m.index["user"]
		if !ok {
			continue
		}
		defs := t.pr.defaults(m, false)
		for _, name := range []string{"ssh-rerun v2", "ssh-rerun v1"} {
			sh := ciShape(m, name)
			vals, ok := t.pr.fitRun(t.sp, sh, nil, defs)
			if !ok {
				continue
			}
			pb := runProbe(t.sp, sh, vals, KindRunVariant, name)
			if !t.admittedHere(pb) {
				continue
			}
			sev, who := SeverityMedium, "the one user the subject pins"
			other := slices.Clone(vals)
			other[ui] = t.pr.randomDigits(9)
			if ob := runProbe(t.sp, sh, other, KindRunVariant, name+", another user"); t.pr.admitted(t.sp, ob) {
				sev, who, pb = SeverityHigh, "any user of the project", ob
			}
			msg := fmt.Sprintf("SSH reruns get this role: a token with %s=true (sub %q) is admitted, and ssh-rerun is not a condition key, so %s can use the role interactively; disable SSH reruns for the project's jobs that assume it.", claimCircleCISSHRerun, pb.Claims["sub"], who)
			f := ciFinding(p, t, "TP023", sev, "sub", msg, t.prove(pb))
			f.Fix = "No condition excludes SSH reruns (oidc.circleci.com/ssh-rerun is not a condition key): disable \"Rerun job with SSH\" for this project (or for the jobs that assume the role), and pin sub to org/<ORG>/project/<PROJECT>/user/<USER> or the V2 …/vcs-ref/refs/heads/main form to narrow who can."
			out = append(out, f)
			break
		}
	}
	return out
}

// ruleTP026CircleCI: the subject pins the V2 form (…/vcs-origin/…/
// vcs-ref/…), which only $CIRCLE_OIDC_TOKEN_V2 carries: the same job
// with the V1 token ($CIRCLE_OIDC_TOKEN) is refused. Decided by the
// evaluator on the V1 twin of an admitted V2 token; no probe (the token
// at stake is refused).
func ruleTP026CircleCI(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for _, t := range ciTrusts(p, o, isCircleCI) {
		m := t.sp.iss.model
		v1, v2 := ciShape(m, "v1"), ciShape(m, "v2")
		if v1 == nil || v2 == nil || len(t.sp.pats["sub"]) == 0 {
			continue
		}
		defs := t.pr.defaults(m, false)
		vals, ok := t.pr.fitRun(t.sp, v2, nil, defs)
		if !ok {
			continue
		}
		if !t.admittedHere(runProbe(t.sp, v2, vals, KindRunVariant, "v2")) {
			continue
		}
		tw := runProbe(t.sp, v1, vals, KindRunVariant, "v1")
		if t.pr.admitted(t.sp, tw) {
			continue
		}
		msg := fmt.Sprintf("the subject pins the V2 form (vcs-ref), which only $CIRCLE_OIDC_TOKEN_V2 carries: the same job with $CIRCLE_OIDC_TOKEN (sub %q) is refused; use the V2 token in every job that assumes the role.", tw.Claims["sub"])
		f := ciFinding(p, t, "TP026", SeverityLow, "sub", msg, nil)
		f.Fix = "Request the V2 token ($CIRCLE_OIDC_TOKEN_V2) in every job that assumes this role; V1 tokens carry no vcs-ref, and widening the subject to the V1 form (…/user/*) would drop the branch pin."
		out = append(out, f)
	}
	return out
}

// ruleTP026 is TP026 for both issuers it applies to.
func ruleTP026(p *policy.Policy, o Options) []Finding {
	return append(ruleTP026GitHub(p, o), ruleTP026CircleCI(p, o)...)
}

// --- TP020: the union of several Allow statements ------------------------

// unionFindings is TP020, on the findings of the other rules: when
// several Allow statements trust the same Federated principal, the role
// admits their union, so the weakest statement decides whatever the
// others pin. For each such principal whose statements have a finding
// with a probe (above INFO), one TP020 finding on the statement of the
// most severe one, with its severity and its probe (trust-pitfalls.md §6:
// "inherits the weakest"). It runs after the other rules (LintPolicy).
func unionFindings(p *policy.Policy, fs []Finding) []Finding {
	byFed := map[string][]int{}
	var feds []string
	for si := range p.Statements {
		st := &p.Statements[si]
		if st.Effect != policy.Allow || st.Principal == nil {
			continue
		}
		for _, fed := range st.Principal.Federated {
			if !slices.Contains(byFed[fed], si) {
				if byFed[fed] == nil {
					feds = append(feds, fed)
				}
				byFed[fed] = append(byFed[fed], si)
			}
		}
	}
	var out []Finding
	for _, fed := range feds {
		stmts := byFed[fed]
		if len(stmts) < 2 {
			continue
		}
		w := -1
		for k := range fs {
			f := &fs[k]
			if f.Probe == nil || f.Severity <= SeverityInfo || f.Rule == "TP020" || f.Rule == "TP040" ||
				f.Principal != fed || !slices.Contains(stmts, f.Statement) {
				continue
			}
			if w < 0 || f.Severity > fs[w].Severity {
				w = k
			}
		}
		if w < 0 {
			continue
		}
		weak := fs[w]
		st := &p.Statements[weak.Statement]
		others := make([]string, 0, len(stmts)-1)
		for _, si := range stmts {
			if si != weak.Statement {
				others = append(others, strconv.Itoa(si))
			}
		}
		pb := *weak.Probe
		f := Finding{Rule: "TP020", Severity: weak.Severity, Statement: weak.Statement, Sid: st.Sid, Path: weak.Path,
			Principal: fed, Probe: &pb, Line: st.Start.Line, Column: st.Start.Column,
			Message: fmt.Sprintf("%d Allow statements trust %s and the role admits their union: statement %d (%s) lets in what the others (statement %s) keep out, whatever they pin: %s",
				len(stmts), fed, weak.Statement, weak.Rule, strings.Join(others, ", "), weak.Message)}
		switch {
		case strings.HasPrefix(weak.Fix, "{"):
			f.Fix = weak.Fix
		case weak.Fix != "":
			f.Fix = fmt.Sprintf("Tighten or remove statement %d: %s", weak.Statement, weak.Fix)
		default:
			f.Fix = fmt.Sprintf("Remove statement %d, or tighten it as far as the statement %s.", weak.Statement, others[0])
		}
		out = append(out, f)
	}
	return out
}

// --- TP040: drift from a baseline ----------------------------------------

// ruleTP040 compares the policy with Options.Baseline (the previous
// document): for every Allow statement trusting an OIDC provider, tokens
// fitted to its values (each value on its own, in every shape of the
// issuer's tokens) that the policy admits and the baseline refused. One
// finding per statement, INFO (an alert: a new subject value, statement
// or looser operator is how a backdoor is added, trust-pitfalls.md W15),
// with that token as its probe and the baseline's condition as the fix.
func ruleTP040(p *policy.Policy, o Options) []Finding {
	if o.Baseline == nil || len(p.Statements) == 0 {
		return nil
	}
	base, err := policy.Parse(string(o.Baseline), policy.KindTrust)
	if err != nil {
		return []Finding{{Rule: "TP040", Severity: SeverityInfo, Statement: 0, Sid: p.Statements[0].Sid, Path: "$",
			Message: fmt.Sprintf("the baseline does not parse, so drift is not checked: %v", err),
			Fix:     "Give the previous version of this trust policy as the baseline."}}
	}
	bpr := newProber(base, o)
	var out []Finding
	for _, t := range ciTrusts(p, o, func(*Issuer) bool { return true }) {
		pb := t.driftProbe(bpr)
		if pb == nil {
			continue
		}
		si := t.sp.index
		st := &p.Statements[si]
		bst := baselineStatement(base, st, si)
		what, path, fix := driftOf(t, bst)
		f := ciFinding(p, t, "TP040", SeverityInfo, "", "", t.prove(pb))
		if path != "" {
			f.Path = path
		}
		f.Message = fmt.Sprintf("drift from the baseline: statement %d admits a token the baseline refused (sub %q): %s; check that this change was meant.", si, pb.Claims["sub"], what)
		f.Fix = fix
		out = append(out, f)
	}
	return out
}

// driftProbe is a token fitted to the statement's values that the policy
// admits (through this statement) and the baseline, evaluated by bpr on
// the same context, refuses.
func (t ciTrust) driftProbe(bpr *prober) *Probe {
	m := t.sp.iss.model
	fills := [][]string{t.pr.defaults(m, false), t.pr.defaults(m, true)}
	try := func(sp *stmtProbe) *Probe {
		for _, defs := range fills {
			for si := range m.shapes {
				sh := &m.shapes[si]
				vals, ok := t.pr.fitRun(sp, sh, nil, defs)
				if !ok {
					continue
				}
				pb := runProbe(t.sp, sh, vals, KindDrift, sh.name)
				if t.admittedHere(pb) && !bpr.admitted(t.sp, pb) {
					return pb
				}
			}
		}
		return nil
	}
	// Each value of each claim on its own (a new value among old ones is
	// never the cheapest fit), then all of them.
	claims := make([]string, 0, len(t.sp.pats))
	for c := range t.sp.pats {
		claims = append(claims, c)
	}
	slices.Sort(claims)
	for _, c := range claims {
		pats := t.sp.pats[c]
		if len(pats) < 2 {
			continue
		}
		for k := range pats {
			one := *t.sp
			one.pats = make(map[string][]pattern, len(t.sp.pats))
			for c2, ps := range t.sp.pats {
				one.pats[c2] = ps
			}
			one.pats[c] = pats[k : k+1]
			if pb := try(&one); pb != nil {
				return pb
			}
		}
	}
	return try(t.sp)
}

// baselineStatement is the baseline's statement that st replaces: the
// one with the same Sid, else the one at the same index (nil: st is new).
func baselineStatement(base *policy.Policy, st *policy.Statement, si int) *policy.Statement {
	if st.Sid != "" {
		for i := range base.Statements {
			if base.Statements[i].Sid == st.Sid {
				return &base.Statements[i]
			}
		}
		return nil
	}
	if si < len(base.Statements) && base.Statements[si].Sid == "" {
		return &base.Statements[si]
	}
	return nil
}

// driftOf says what changed in statement t against its baseline bst: a
// new statement, a new value, an operator changed, a condition removed;
// the JSON path of the condition concerned; and the fix (the baseline's
// Condition block, or a sentence for a new statement).
func driftOf(t ciTrust, bst *policy.Statement) (what, path, fix string) {
	si := t.sp.index
	if bst == nil {
		return "the statement is new", "", fmt.Sprintf("Remove statement %d unless its addition was reviewed.", si)
	}
	fix = conditionJSON(bst.Condition)
	condPath := func(c policy.Condition) string {
		return "$.Statement[" + strconv.Itoa(si) + "].Condition[" + strconv.Quote(c.Operator) + "][" + strconv.Quote(c.Key) + "]"
	}
	for _, c := range t.sp.st.Condition {
		var sameKey []policy.Condition
		for _, b := range bst.Condition {
			if strings.EqualFold(b.Key, c.Key) {
				sameKey = append(sameKey, b)
			}
		}
		for _, b := range sameKey {
			if b.Operator != c.Operator {
				continue
			}
			for _, v := range c.Values {
				if !slices.Contains(b.Values, v) {
					return fmt.Sprintf("new value %q on %s %s", v, c.Operator, c.Key), condPath(c), fix
				}
			}
		}
		if len(sameKey) > 0 && !slices.ContainsFunc(sameKey, func(b policy.Condition) bool { return b.Operator == c.Operator }) {
			return fmt.Sprintf("operator %s became %s on %s", sameKey[0].Operator, c.Operator, c.Key), condPath(c), fix
		}
	}
	for _, b := range bst.Condition {
		if !slices.ContainsFunc(t.sp.st.Condition, func(c policy.Condition) bool {
			return c.Operator == b.Operator && strings.EqualFold(c.Key, b.Key)
		}) {
			return fmt.Sprintf("condition %s %s was removed", b.Operator, b.Key), "", fix
		}
	}
	return "the statement admits more than before", "", fix
}

// RulesCI runs the rules of this file that decide per statement: TP023,
// TP024, TP025, TP026, TP033, TP034, TP037, TP038 and TP040 (with
// Options.Baseline). TP020 reads the other rules' findings
// (unionFindings, called by LintPolicy after them).
func RulesCI(p *policy.Policy, o Options) []Finding {
	var out []Finding
	for _, rule := range [...]func(*policy.Policy, Options) []Finding{
		ruleTP023, ruleTP024, ruleTP025, ruleTP026, ruleTP033, ruleTP034, ruleTP037, ruleTP038, ruleTP040,
	} {
		out = append(out, rule(p, o)...)
	}
	return out
}
