package lint

// The guardrail's property, tested against an oracle that shares no code
// with the probe builder: for random scoped-looking GitHub trust
// policies, whenever the guardrail accepts, no token of another tenant
// that the oracle can think of is admitted by the evaluator (decided on
// the context oidc.ConditionValues builds, as the STS does); and whenever
// it refuses with a probe, the probe is admitted and is another tenant's.

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/policy"
)

// legitOwner is the only organisation the generated policies mean, with
// the ids of the organisation and its repository.
const (
	legitOwner   = "acme"
	legitOwnerID = "1001"
	legitRepoID  = "5001"
)

var genBase = map[string][]string{
	"sub": {
		"repo:acme/app:ref:refs/heads/main", "repo:acme/app:pull_request", "repo:acme/app:environment:prod",
		"repo:acme/*", "repo:acme/app:*", "repo:acme@1001/app@5001:ref:refs/heads/main",
		"job_workflow_ref:acme/wf/.github/workflows/d.yml@refs/heads/main", "repository_owner:acme",
		"repo:acme/app:ref:refs/tags/v1", "environment:prod",
	},
	"job_workflow_ref": {"acme/wf/.github/workflows/d.yml@refs/heads/main"},
	"repository":       {"acme/app"},
	"environment":      {"prod"},
	"aud":              {"sts.amazonaws.com"},
}

var genOps = []string{
	"StringLike", "StringLike", "StringLike", "StringEquals", "StringEquals", "StringEqualsIgnoreCase",
	"ForAnyValue:StringLike", "ForAllValues:StringLike", "StringLikeIfExists", "StringNotLike",
}

// mutate loosens a value the ways people do: a wildcard in place of a
// character, inserted, or ending a truncated value; rarely a variable.
func mutate(r *rand.Rand, v string) string {
	for range r.IntN(3) {
		if v == "" {
			break
		}
		i := r.IntN(len(v))
		switch r.IntN(7) {
		case 0, 1:
			v = v[:i] + "*" + v[i+1:]
		case 2:
			v = v[:i] + "?" + v[i+1:]
		case 3, 4:
			v = v[:i] + "*"
		case 5:
			v = v[:i] + "*" + v[i:]
		case 6:
			if r.IntN(4) == 0 {
				v = strings.Replace(v, legitOwner, "${token.actions.githubusercontent.com:actor}", 1)
			} else {
				v = strings.ToUpper(v[:i]) + v[i:]
			}
		}
	}
	return v
}

func genValue(r *rand.Rand, key string) string {
	base := genBase[key]
	v := base[r.IntN(len(base))]
	if r.IntN(3) > 0 {
		v = mutate(r, v)
	}
	return v
}

// genPolicy builds a trust policy of one to two Allow statements and
// sometimes a Deny, for the GitHub provider.
func genPolicy(r *rand.Rand) string {
	stmtFor := func(effect string) map[string]any {
		cond := map[string]map[string][]string{}
		for range 1 + r.IntN(3) {
			op := genOps[r.IntN(len(genOps))]
			key := "sub"
			if r.IntN(4) == 0 {
				keys := []string{"job_workflow_ref", "repository", "environment", "aud"}
				key = keys[r.IntN(len(keys))]
			}
			if effect == "Deny" {
				op = "StringLike"
			}
			if cond[op] == nil {
				cond[op] = map[string][]string{}
			}
			k := ghPfx + ":" + key
			for range 1 + r.IntN(2) {
				cond[op][k] = append(cond[op][k], genValue(r, key))
			}
		}
		return map[string]any{"Effect": effect, "Principal": map[string]any{"Federated": ghARN},
			"Action": "sts:AssumeRoleWithWebIdentity", "Condition": cond}
	}
	var stmts []any
	for range 1 + r.IntN(2) {
		stmts = append(stmts, stmtFor("Allow"))
	}
	if r.IntN(4) == 0 {
		stmts = append(stmts, stmtFor("Deny"))
	}
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// oracleTok is a token of a GitHub tenant in the oracle's own model.
type oracleTok struct {
	owner, repo, sub, ref, env, jwr string
}

// reGitHubSub reads a default subject, classic (repo:o/r:…) or immutable
// (repo:o@id/r@id:…).
var reGitHubSub = regexp.MustCompile(`^repo:([A-Za-z0-9-]+)(?:/([A-Za-z0-9._-]+)|@([0-9]+)/([A-Za-z0-9._-]+)@([0-9]+)):(?:ref:(refs/(?:heads|tags)/[^:*?\s@]+)|pull_request|environment:([^:*?]+))$`)

// oracleProbes are tokens of other tenants: unrelated and look-alike
// owners in every subject shape and in custom templates, and the policy's
// own patterns with their wildcards filled by pieces of other tenants'
// subjects.
func oracleProbes(r *rand.Rand, p *policy.Policy) []oracleTok {
	owners := []string{"zzq" + string(rune('a'+r.IntN(26))), "acme-evil", "acmeevil", "evilacme", "acne", "acm", "ACME-x"}
	repos := []string{"app", "wf"}
	var out []oracleTok
	for _, o := range owners {
		for _, repo := range repos {
			for _, ctx := range []string{"ref:refs/heads/main", "ref:refs/tags/v1", "pull_request", "environment:prod"} {
				out = append(out, fromSub("repo:"+o+"/"+repo+":"+ctx))
				out = append(out, fromSub("repo:"+o+"@42/"+repo+"@43:"+ctx))
			}
		}
		for _, s := range []string{"environment:prod", "ref:refs/heads/main", "repository_owner:" + o, "workflow:deploy", "job_workflow_ref:" + o + "/wf/.github/workflows/d.yml@refs/heads/main"} {
			out = append(out, oracleTok{owner: o, repo: "app", sub: s, ref: "refs/heads/main", env: strings.TrimPrefix(s, "environment:")})
		}
	}
	pieces := []string{"", "x", "-evil", "evil", "/app", "/wf", ":ref:refs/heads/main", "evil/app:ref:refs/heads/main",
		"repo:evil/app:ref:refs/heads/main", "epo:evil/app:pull_request", "-evil/app:pull_request", "app:environment:prod"}
	for _, st := range p.Statements {
		for _, c := range st.Condition {
			if !strings.EqualFold(c.Key, ghPfx+":sub") {
				continue
			}
			for _, v := range c.Values {
				if strings.Contains(v, "${") {
					continue
				}
				for range 12 {
					var b strings.Builder
					for _, ch := range v {
						switch ch {
						case '*':
							b.WriteString(pieces[r.IntN(len(pieces))])
						case '?':
							b.WriteByte("abcxe-/:"[r.IntN(8)])
						default:
							b.WriteRune(ch)
						}
					}
					if t := fromSub(b.String()); t.owner != "" {
						out = append(out, t)
					}
				}
			}
		}
	}
	var foreign []oracleTok
	for _, t := range out {
		if t.owner != "" && !strings.EqualFold(t.owner, legitOwner) {
			foreign = append(foreign, t)
		}
	}
	return foreign
}

func fromSub(sub string) oracleTok {
	m := reGitHubSub.FindStringSubmatch(sub)
	if m == nil {
		return oracleTok{}
	}
	if m[3] == legitOwnerID || m[5] == legitRepoID {
		// The ids are acme's: no other tenant's token carries them.
		return oracleTok{}
	}
	t := oracleTok{owner: m[1], repo: m[2] + m[4], sub: sub, ref: m[6], env: m[7]}
	if strings.HasSuffix(sub, ":pull_request") {
		t.ref = "refs/pull/1/merge"
	}
	if t.ref == "" {
		t.ref = "refs/heads/main"
	}
	t.jwr = t.owner + "/" + t.repo + "/.github/workflows/d.yml@" + t.ref
	return t
}

// admitsOracle evaluates p on the context the STS would build for t.
func admitsOracle(p *policy.Policy, t oracleTok, jwrRepo string) bool {
	claims := map[string]any{
		"sub": t.sub, "aud": "sts.amazonaws.com", "repository": t.owner + "/" + t.repo,
		"repository_owner_id": "42", "repository_id": "43", "ref": t.ref, "actor": t.owner, "actor_id": "44",
		"workflow": "deploy", "job_workflow_ref": t.owner + "/" + jwrRepo + "/.github/workflows/d.yml@refs/heads/main",
	}
	if t.env != "" && !strings.Contains(t.env, ":") {
		claims["environment"] = t.env
	}
	tok := &oidc.Token{Claims: claims, Subject: t.sub, Audience: "sts.amazonaws.com", OriginalAudience: []string{"sts.amazonaws.com"},
		Provider: &oidc.Provider{URL: "https://" + ghPfx}}
	c := policy.NewContext(32)
	for k, v := range oidc.ConditionValues(tok) {
		c.Set(k, v...)
	}
	now := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	c.SetTime("aws:CurrentTime", now)
	c.SetInt("aws:EpochTime", now.Unix())
	c.Set("aws:FederatedProvider", ghARN)
	c.Set("aws:PrincipalType", "WebIdentityUser")
	c.Set("sts:RoleSessionName", "s")
	c.Set("aws:RequestedRegion", "us-east-1")
	c.SetBool("aws:SecureTransport", false)
	set := policy.PolicySet{Resource: []*policy.Policy{p}}
	return set.Evaluate(&policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalFederated, ID: ghARN},
		Action:    "sts:AssumeRoleWithWebIdentity", Resource: "arn:aws:iam::111122223333:role/r", Context: c,
	}) == policy.Allowed
}

// checkProperty checks one generated policy; it reports whether the
// guardrail accepted it.
func checkProperty(t *testing.T, r *rand.Rand, doc string, seed byte) bool {
	t.Helper()
	p, err := policy.Parse(doc, policy.KindTrust)
	if err != nil {
		return false
	}
	fs := Guardrail(p, testOptions(seed))
	for _, f := range fs {
		if f.Probe == nil {
			continue
		}
		if !admitsContext(p, f.Probe) {
			t.Fatalf("finding's probe is not admitted:\n%s\n%+v", doc, f.Probe)
		}
		if strings.EqualFold(f.Probe.Tenant, legitOwner) {
			t.Fatalf("finding's probe is the policy's own tenant:\n%s\n%s", doc, f.Message)
		}
	}
	// Lint reports the same probes, each with a fix, and every probe it
	// reports is admitted.
	for _, f := range LintPolicy(p, testOptions(seed)) {
		if f.Probe != nil && !admitsContext(p, f.Probe) {
			t.Fatalf("Lint's probe is not admitted:\n%s\n%+v", doc, f.Probe)
		}
		if f.Fix == "" {
			t.Fatalf("Lint's finding has no fix:\n%s\n%+v", doc, f)
		}
	}
	if len(fs) > 0 {
		return false
	}
	for _, tok := range oracleProbes(r, p) {
		for _, jwrRepo := range []string{tok.repo, "wf"} {
			if admitsOracle(p, tok, jwrRepo) {
				t.Fatalf("guardrail accepted a policy that admits another tenant's token:\npolicy: %s\ntoken: %+v (job_workflow_ref repo %s)", doc, tok, jwrRepo)
			}
		}
	}
	return true
}

// TestGuardrailProperty runs the property on a fixed series of random
// policies (the fuzz target below explores further with -fuzz).
func TestGuardrailProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	n := 250
	if testing.Short() {
		n = 60
	}
	accepted, refused := 0, 0
	for i := range n {
		doc := genPolicy(r)
		if checkProperty(t, r, doc, byte(i)) {
			accepted++
		} else {
			refused++
		}
	}
	// The generator must exercise both sides.
	if accepted < n/10 || refused < n/10 {
		t.Fatalf("accepted %d, refused %d of %d", accepted, refused, n)
	}
	t.Logf("accepted %d, refused %d", accepted, refused)
}

// FuzzGuardrail: the same property, the generator seeded by the fuzzer.
func FuzzGuardrail(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], seed)
		r := rand.New(rand.NewPCG(seed, 7))
		checkProperty(t, r, genPolicy(r), b[0])
	})
}
