package lint

// The subject grammars of the catalogue's issuers, as templates over
// slots (trust-pitfalls.md §2). A probe is one assignment of the slots;
// its claims are the templates of one shape filled in. Slots are the parts
// a CI tenant controls or owns: the owner's name (the tenant), the
// repository, the branch, the environment, … A tenant slot identifies the
// tenant: a probe stands for another tenant only while every tenant slot
// holds a name the policy does not spell out.

// slotDef is a slot of a model.
type slotDef struct {
	name string
	cs   *charset
	// def is the likely value tried first ("main", "app"): an attacker
	// picks the names the victim's policy expects. "" for none.
	def string
	// alias names the slot whose value this one takes by default: a
	// workflow's owner is the repository's owner unless the policy
	// wants another.
	alias string
	// tenant marks a slot that identifies the tenant; id marks one that
	// holds a numeric id (given a random default).
	tenant, id bool
	optional   bool // may be empty
}

// claimDef is one claim of a shape: its name and template.
type claimDef struct {
	name string
	tmpl string
}

// shapeDef is one form of token of the issuer.
type shapeDef struct {
	name string
	// kind is how a probe of this shape stands for another tenant.
	kind ProbeKind
	// claims overrides and extends the model's common claims.
	claims []claimDef
}

// model is an issuer's subject grammar.
type model struct {
	slots  []slotDef
	common []claimDef
	shapes []shapeDef
	// order is the order in which claims are fitted to the policy's
	// patterns: the claims of one free slot first (environment, ref:
	// they pin that slot), then the subject and the other claims that
	// carry the tenant, which see those slots fixed.
	order []string
	// optional are claims a token may lack.
	optional []string
	// seps split a policy value into the names it spells out (the tenant
	// names a probe must avoid); "" keeps each literal run whole.
	seps string
	// primary is the tenant slot a look-alike name goes into.
	primary string
}

// compiledModel is a model with its templates parsed.
type compiledModel struct {
	slots   []slotDef
	index   map[string]int8
	shapes  []compiledShape
	order   []string
	primary int8
	tenant  []int8
	seps    string
}

type compiledShape struct {
	name   string
	kind   ProbeKind
	claims []compiledClaim // in model order, then the rest
}

type compiledClaim struct {
	name     string
	src      string // the template as written
	t        template
	optional bool
	// slots are the slots the claim reads, with the slots they default
	// to (aliases): fitting claims that share none in either order gives
	// the same probes.
	slots uint64
}

func (m *model) compile() *compiledModel {
	cm := &compiledModel{slots: m.slots, index: map[string]int8{}, order: m.order, seps: m.seps}
	for i, s := range m.slots {
		cm.index[s.name] = int8(i)
		if s.tenant {
			cm.tenant = append(cm.tenant, int8(i))
		}
	}
	idx := func(name string) int8 {
		i, ok := cm.index[name]
		if !ok {
			panic("lint: template names unknown slot " + name)
		}
		return i
	}
	cm.primary = idx(m.primary)
	opt := map[string]bool{}
	for _, c := range m.optional {
		opt[c] = true
	}
	for _, sh := range m.shapes {
		cs := compiledShape{name: sh.name, kind: sh.kind}
		claims := map[string]string{}
		var names []string
		for _, c := range append(append([]claimDef(nil), m.common...), sh.claims...) {
			if _, seen := claims[c.name]; !seen {
				names = append(names, c.name)
			}
			claims[c.name] = c.tmpl
		}
		for _, name := range names {
			c := compiledClaim{name: name, src: claims[name], t: parseTemplate(claims[name], idx), optional: opt[name]}
			for _, part := range c.t {
				if part.slot >= 0 {
					c.slots |= 1 << part.slot
					if a := m.slots[part.slot].alias; a != "" {
						c.slots |= 1 << idx(a)
					}
				}
			}
			cs.claims = append(cs.claims, c)
		}
		cm.shapes = append(cm.shapes, cs)
	}
	return cm
}

// Character classes of the grammars.
var (
	ghName   = newCharset('x', "A-Za-z0-9-")   // GitHub user and organisation names
	ghRepo   = newCharset('x', "A-Za-z0-9._-") // repository names
	digits   = newCharset('7', "0-9")
	gitRef   = printableExcept('x', " ~^:?*[\\@") // git ref names (git check-ref-format; '@' left out)
	noColon  = printableExcept('x', ":")          // environment and project names
	wfPath   = newCharset('x', "A-Za-z0-9._-")    // a workflow file directly in .github/workflows
	anyText  = printableExcept('x', "")
	glName   = newCharset('x', "A-Za-z0-9_.-")
	glPath   = newCharset('x', "A-Za-z0-9_./-")
	lowerKey = newCharset('x', "a-z_")
	slugName = newCharset('x', "a-z0-9-")
	hexChars = newCharset('0', "0-9a-f")
	tfName   = newCharset('x', "A-Za-z0-9_-")
	noSpace  = printableExcept('x', " ")
)

// githubModel: GitHub Actions (trust-pitfalls.md §2.1). The default
// subject, the immutable one (owner@id/repo@id), and the custom templates
// an organisation can set for its own tokens: those led by an owner-bound
// claim stay anchored to the owner; environment:, ref: and workflow: are
// not, so any organisation can mint them (TP014); nor is job_workflow_ref:
// when it names a reusable workflow that other organisations' jobs call
// (a public one: any job anywhere).
var githubModel = (&model{
	slots: []slotDef{
		{name: "owner", cs: ghName, tenant: true},
		{name: "owner_id", cs: digits, tenant: true, id: true},
		{name: "repo", cs: ghRepo, def: "app"},
		{name: "repo_id", cs: digits, tenant: true, id: true},
		{name: "branch", cs: gitRef, def: "main"},
		{name: "tag", cs: gitRef, def: "v1"},
		{name: "pr", cs: digits, def: "1"},
		{name: "env", cs: noColon, def: "production"},
		{name: "wf_owner", cs: ghName, alias: "owner", tenant: true},
		{name: "wf_repo", cs: ghRepo, alias: "repo"},
		{name: "wf_file", cs: wfPath, def: "deploy.yml"},
		{name: "wf_ref", cs: gitRef, def: "heads/main"},
		{name: "workflow", cs: anyText, def: "deploy"},
		// The repository of a reusable workflow another organisation's
		// job calls: a public one can be called by anyone, so it names
		// no tenant (trust-cases-sample P-GH-25).
		{name: "called_owner", cs: ghName, def: "acme"},
		{name: "called_repo", cs: ghRepo, def: "automation"},
		{name: "actor", cs: ghName, alias: "owner"},
		{name: "actor_id", cs: digits, id: true},
		{name: "aud", cs: anyText, def: "sts.amazonaws.com"},
	},
	common: []claimDef{
		{"aud", "{aud}"},
		{"repository", "{owner}/{repo}"},
		{"repository_owner_id", "{owner_id}"},
		{"repository_id", "{repo_id}"},
		{"job_workflow_ref", "{wf_owner}/{wf_repo}/.github/workflows/{wf_file}@refs/{wf_ref}"},
		{"workflow", "{workflow}"},
		{"actor", "{actor}"},
		{"actor_id", "{actor_id}"},
		{"ref", "refs/heads/{branch}"},
	},
	shapes: []shapeDef{
		{"branch", KindOtherTenant, []claimDef{{"sub", "repo:{owner}/{repo}:ref:refs/heads/{branch}"}}},
		{"tag", KindOtherTenant, []claimDef{{"sub", "repo:{owner}/{repo}:ref:refs/tags/{tag}"}, {"ref", "refs/tags/{tag}"}}},
		{"pull_request", KindOtherTenant, []claimDef{{"sub", "repo:{owner}/{repo}:pull_request"}, {"ref", "refs/pull/{pr}/merge"}}},
		{"environment", KindOtherTenant, []claimDef{{"sub", "repo:{owner}/{repo}:environment:{env}"}, {"environment", "{env}"}}},
		{"immutable branch", KindOtherTenant, []claimDef{{"sub", "repo:{owner}@{owner_id}/{repo}@{repo_id}:ref:refs/heads/{branch}"}}},
		{"immutable pull_request", KindOtherTenant, []claimDef{{"sub", "repo:{owner}@{owner_id}/{repo}@{repo_id}:pull_request"}, {"ref", "refs/pull/{pr}/merge"}}},
		{"immutable environment", KindOtherTenant, []claimDef{{"sub", "repo:{owner}@{owner_id}/{repo}@{repo_id}:environment:{env}"}, {"environment", "{env}"}}},
		{"template repository_owner", KindOtherTenant, []claimDef{{"sub", "repository_owner:{owner}"}}},
		{"template repository_owner_id", KindOtherTenant, []claimDef{{"sub", "repository_owner_id:{owner_id}"}}},
		{"template job_workflow_ref", KindOtherTenant, []claimDef{{"sub", "job_workflow_ref:{wf_owner}/{wf_repo}/.github/workflows/{wf_file}@refs/{wf_ref}"}}},
		{"template environment", KindCustomTemplate, []claimDef{{"sub", "environment:{env}"}, {"environment", "{env}"}}},
		{"template ref", KindCustomTemplate, []claimDef{{"sub", "ref:refs/heads/{branch}"}}},
		{"template workflow", KindCustomTemplate, []claimDef{{"sub", "workflow:{workflow}"}}},
		{"template job_workflow_ref of a called workflow", KindCustomTemplate, []claimDef{
			{"sub", "job_workflow_ref:{called_owner}/{called_repo}/.github/workflows/{wf_file}@refs/{wf_ref}"},
			{"job_workflow_ref", "{called_owner}/{called_repo}/.github/workflows/{wf_file}@refs/{wf_ref}"}}},
	},
	order:    []string{"environment", "ref", "workflow", "aud", "sub", "job_workflow_ref", "repository", "repository_owner_id", "repository_id", "actor", "actor_id"},
	optional: []string{"environment"},
	seps:     ":/@",
	primary:  "owner",
}).compile()

// gitlabModel: gitlab.com (trust-pitfalls.md §2.2); the tenant is the
// top-level group. namespace_path is taken to be the top-level group
// (for a project in a subgroup it is group/subgroup).
var gitlabModel = (&model{
	slots: []slotDef{
		{name: "group", cs: glName, tenant: true},
		{name: "project", cs: glPath, def: "app"}, // subgroups/project
		{name: "ref_type", cs: lowerKey, def: "branch"},
		{name: "ref", cs: gitRef, def: "main"},
		{name: "project_id", cs: digits, tenant: true, id: true},
		{name: "namespace_id", cs: digits, tenant: true, id: true},
		{name: "pipeline_source", cs: lowerKey, def: "push"},
		{name: "ref_protected", cs: lowerKey, def: "true"},
		{name: "env", cs: noColon, def: "production"},
		{name: "aud", cs: anyText, def: "sts.amazonaws.com"},
	},
	common: []claimDef{
		{"sub", "project_path:{group}/{project}:ref_type:{ref_type}:ref:{ref}"},
		{"aud", "{aud}"},
		{"project_path", "{group}/{project}"},
		{"namespace_path", "{group}"},
		{"project_id", "{project_id}"},
		{"namespace_id", "{namespace_id}"},
		{"ref", "{ref}"},
		{"ref_type", "{ref_type}"},
		{"ref_protected", "{ref_protected}"},
		{"pipeline_source", "{pipeline_source}"},
		{"environment", "{env}"},
	},
	shapes:   []shapeDef{{"default", KindOtherTenant, nil}},
	order:    []string{"ref", "ref_type", "ref_protected", "pipeline_source", "environment", "aud", "sub", "project_path", "namespace_path", "project_id", "namespace_id"},
	optional: []string{"environment"},
	seps:     ":/@",
	primary:  "group",
}).compile()

// terraformModel: HCP Terraform (trust-pitfalls.md §2.4).
var terraformModel = (&model{
	slots: []slotDef{
		{name: "org", cs: tfName, tenant: true},
		{name: "project", cs: noColon, def: "Default Project"},
		{name: "workspace", cs: tfName, def: "prod"},
		{name: "phase", cs: lowerKey, def: "apply"},
		{name: "aud", cs: anyText, def: "aws.workload.identity"},
	},
	common: []claimDef{
		{"sub", "organization:{org}:project:{project}:workspace:{workspace}:run_phase:{phase}"},
		{"aud", "{aud}"},
	},
	shapes:  []shapeDef{{"default", KindOtherTenant, nil}},
	order:   []string{"aud", "sub"},
	seps:    ":/@",
	primary: "org",
}).compile()

// buildkiteModel: Buildkite (trust-pitfalls.md §2.6).
var buildkiteModel = (&model{
	slots: []slotDef{
		{name: "org", cs: slugName, tenant: true},
		{name: "pipeline", cs: slugName, def: "deploy"},
		{name: "ref", cs: gitRef, def: "refs/heads/main"},
		{name: "commit", cs: hexChars, def: "0123456789abcdef0123456789abcdef01234567"},
		{name: "step", cs: noColon, def: "deploy", optional: true},
		{name: "aud", cs: anyText, def: "sts.amazonaws.com"},
	},
	common: []claimDef{
		{"sub", "organization:{org}:pipeline:{pipeline}:ref:{ref}:commit:{commit}:step:{step}"},
		{"aud", "{aud}"},
	},
	shapes:  []shapeDef{{"default", KindOtherTenant, nil}},
	order:   []string{"aud", "sub"},
	seps:    ":/@",
	primary: "org",
}).compile()

// genericSubModel: the shared issuers whose subject grammar is not
// catalogued; the tenant is taken to be the first value of the subject
// ("label:tenant:…", "label:tenant/…", "label://tenant/…"), or the whole
// subject.
var genericSubModel = (&model{
	slots: []slotDef{
		{name: "label", cs: lowerKey, def: "account"},
		{name: "tenant", cs: glName, tenant: true},
		{name: "rest", cs: anyText, def: "x", optional: true},
		{name: "aud", cs: anyText, def: "sts.amazonaws.com"},
	},
	common: []claimDef{{"aud", "{aud}"}},
	shapes: []shapeDef{
		{"label:tenant:", KindOtherTenant, []claimDef{{"sub", "{label}:{tenant}:{rest}"}}},
		{"label:tenant/", KindOtherTenant, []claimDef{{"sub", "{label}:{tenant}/{rest}"}}},
		{"label://tenant/", KindOtherTenant, []claimDef{{"sub", "{label}://{tenant}/{rest}"}}},
		{"tenant", KindOtherTenant, []claimDef{{"sub", "{tenant}"}}},
	},
	order:   []string{"aud", "sub"},
	seps:    ":/@",
	primary: "tenant",
}).compile()

// audModel: the shared issuers whose tenant is the audience (Cognito
// identity pools, Pulumi organisations, Vercel teams).
var audModel = (&model{
	slots: []slotDef{
		{name: "tenant", cs: noSpace, tenant: true},
		{name: "subject", cs: noSpace, def: "user"},
		{name: "amr", cs: anyText, def: "authenticated"},
	},
	common: []claimDef{{"aud", "{tenant}"}, {"sub", "{subject}"}, {"amr", "{amr}"}},
	shapes: []shapeDef{{"default", KindOtherTenant, nil}},
	order:  []string{"aud", "sub", "amr"},
	// The whole audience is the tenant: names are not split.
	seps:     "",
	optional: []string{"amr"},
	primary:  "tenant",
}).compile()
