package lint

import (
	"crypto/rand"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/policy"
)

// Options configures probing.
type Options struct {
	// Account is the account of the role whose trust policy is checked;
	// probes ask to assume arn:aws:iam::Account:role/… (trust statements
	// have no Resource, so it rarely matters).
	Account string
	// Now is the time of the probes' aws:CurrentTime; nil means time.Now.
	Now func() time.Time
	// Rand draws the names of other tenants and the look-alike suffixes,
	// so that a policy cannot be written to let exactly the probes out;
	// nil means crypto/rand.
	Rand io.Reader
	// OwnIssuers are keyless's own issuers (the server's issuer URLs and
	// their claim profiles): a provider with one of these URLs is
	// recognised as keyless's (catalogue_tenants.go).
	OwnIssuers []OwnIssuer
	// Baseline is the previous version of the trust policy document
	// (nil: none). TP040 reports what the checked document admits that
	// the baseline did not: a new subject value, statement or looser
	// operator (rules_ci.go).
	Baseline []byte
}

const (
	actionWebIdentity = "sts:AssumeRoleWithWebIdentity"
	// maxValueLen is the longest condition value on an issuer key the
	// probe builder analyses; a trust policy is at most a few KB
	// (ACLSizePerRole), so a longer value is refused, not skipped.
	maxValueLen = 1024
	// maxLookalikes bounds the look-alike names per statement, and
	// maxLookalikesPerValue those drawn from one value.
	maxLookalikes         = 48
	maxLookalikesPerValue = 12
	// maxNameLen bounds a look-alike name (GitHub's are at most 39
	// characters).
	maxNameLen = 64
)

// callerKeys are request keys the caller of AssumeRoleWithWebIdentity
// chooses freely, with the value a probe uses when the policy does not
// constrain them (the STS fills them from the request: trustContext in
// internal/sts/assume.go).
var callerKeys = [...]struct{ key, def string }{
	{"sts:RoleSessionName", "probe"},
	{"aws:RequestedRegion", "us-east-1"},
	{"aws:UserAgent", "aws-cli/2"},
}

// callerKeysLower are callerKeys' keys in lower case.
var callerKeysLower = [...]string{"sts:rolesessionname", "aws:requestedregion", "aws:useragent"}

// prober evaluates probes of one policy.
type prober struct {
	p       *policy.Policy
	set     policy.PolicySet
	roleARN string
	now     time.Time
	rand    io.Reader
	sc      scratch
	ctx     *policy.Context
	// foreign is the random name of "another tenant" for this check.
	foreign string
	// randomFills: the policy has a Deny statement or a negated
	// operator, which a probe's likely values may happen to meet, so
	// probes are also built with random values.
	randomFills bool
	// nowText and epochText are aws:CurrentTime and aws:EpochTime.
	nowText, epochText string
}

func newProber(p *policy.Policy, o Options) *prober {
	pr := &prober{p: p, set: policy.PolicySet{Resource: []*policy.Policy{p}}, rand: o.Rand, ctx: policy.NewContext(32)}
	if pr.rand == nil {
		pr.rand = rand.Reader
	}
	acct := o.Account
	if acct == "" {
		acct = "123456789012"
	}
	pr.roleARN = "arn:aws:iam::" + acct + ":role/keyless-guardrail-probe"
	if o.Now != nil {
		pr.now = o.Now()
	} else {
		pr.now = time.Now()
	}
	pr.foreign = pr.randomName(8)
	pr.nowText = pr.now.UTC().Format(time.RFC3339)
	pr.epochText = strconv.FormatInt(pr.now.Unix(), 10)
	for _, st := range p.Statements {
		if st.Effect == policy.Deny {
			pr.randomFills = true
		}
		for _, c := range st.Condition {
			if info, ok := policy.ParseOperator(c.Operator); ok && info.Negated {
				pr.randomFills = true
			}
		}
	}
	return pr
}

// randomName is n lower-case letters and digits, starting with a letter:
// valid in every catalogued tenant-name grammar.
func (pr *prober) randomName(n int) string {
	const letters, alnum = "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz0123456789"
	b := pr.randomBytes(n)
	out := make([]byte, n)
	for i, c := range b {
		if i == 0 {
			out[i] = letters[int(c)%len(letters)]
		} else {
			out[i] = alnum[int(c)%len(alnum)]
		}
	}
	return string(out)
}

// randomDigits is a decimal id of n digits.
func (pr *prober) randomDigits(n int) string {
	b := pr.randomBytes(n)
	out := make([]byte, n)
	for i, c := range b {
		out[i] = '0' + c%10
		if i == 0 && out[i] == '0' {
			out[i] = '9'
		}
	}
	return string(out)
}

// randomFor is a random value of class cs (letters and digits it holds).
func (pr *prober) randomFor(cs *charset) string {
	var pool []byte
	for c := byte('a'); c <= 'z'; c++ {
		if cs.has(c) {
			pool = append(pool, c)
		}
	}
	for c := byte('0'); c <= '9'; c++ {
		if cs.has(c) {
			pool = append(pool, c)
		}
	}
	if len(pool) == 0 {
		return string(cs.fill)
	}
	b := pr.randomBytes(6)
	for i := range b {
		b[i] = pool[int(b[i])%len(pool)]
	}
	return string(b)
}

// randomBytes reads n bytes of randomness. A failing reader degrades to a
// fixed sequence: the check still runs, only the names are predictable.
func (pr *prober) randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(pr.rand, b); err != nil {
		for i := range b {
			b[i] = byte(31*i + 7)
		}
	}
	return b
}

// stmtProbe is what the probe builder knows of one statement trusting
// one shared provider.
type stmtProbe struct {
	index  int
	st     *policy.Statement
	iss    *Issuer
	prefix string // condition-key prefix
	fed    string // the Federated principal as written
	// pats are the patterns of the statement's positive string conditions
	// per claim name.
	pats map[string][]pattern
	// names are the (case-folded) names the policy's Allow statements
	// spell in the issuer's tenant claims: a probe whose tenant slots hold
	// one of them is not another tenant.
	names map[string]bool
	// lookalikes extend names the statement spells next to a wildcard.
	lookalikes []lookalike
	// request holds the caller-chosen request keys, fitted to the
	// statement's patterns.
	request map[string]string
	// tooLong reports a value longer than maxValueLen on an issuer key.
	tooLong bool
	// fits remembers the searches of fitClaim.
	fits map[string]fitResult
	// keyNames are the issuer's condition-key names; keys the same keys
	// with the prefix, lower-cased (a Context compares keys ignoring
	// case; lower-case keys spare it the folding).
	keyNames, keys []string
}

type lookalike struct{ name, of string }

// keyClaim returns the claim name of a condition key with the given
// prefix ("" when the key is not the issuer's). Keys compare ignoring
// case, as the evaluator compares them.
func keyClaim(key, prefix string) string {
	if len(key) <= len(prefix)+1 || key[len(prefix)] != ':' || !strings.EqualFold(key[:len(prefix)], prefix) {
		return ""
	}
	return strings.ToLower(key[len(prefix)+1:])
}

// positiveString reports a condition whose values a matching token must
// contain (a string operator that is not negated), and compiles its
// values as the operator reads them.
func positiveString(p *policy.Policy, c *policy.Condition) ([]pattern, bool) {
	info, ok := policy.ParseOperator(c.Operator)
	if !ok || info.Type != "String" || info.Negated {
		return nil, false
	}
	vars := info.Variables && p.VariablesEnabled()
	fold := info.Base == "StringEqualsIgnoreCase"
	out := make([]pattern, 0, len(c.Values))
	for _, v := range c.Values {
		out = append(out, compilePattern(v, info.Wildcards, vars, fold))
	}
	return out, true
}

// prepare gathers the statement's patterns, the policy's names and the
// look-alikes.
func (pr *prober) prepare(index int, st *policy.Statement, iss *Issuer, prefix, fed string) *stmtProbe {
	sp := &stmtProbe{index: index, st: st, iss: iss, prefix: prefix, fed: fed,
		pats: map[string][]pattern{}, names: map[string]bool{}, request: map[string]string{}, fits: map[string]fitResult{}}
	sp.keyNames = ConditionKeyNames(prefix)
	for _, name := range sp.keyNames {
		sp.keys = append(sp.keys, strings.ToLower(prefix+":"+name))
	}
	m := iss.model
	tenantClaim := map[string]bool{}
	for _, c := range iss.TenantClaims {
		tenantClaim[c] = true
	}
	// Names from every Allow statement.
	for i := range pr.p.Statements {
		s := &pr.p.Statements[i]
		if s.Effect != policy.Allow {
			continue
		}
		for ci := range s.Condition {
			c := &s.Condition[ci]
			if !tenantClaim[keyClaim(c.Key, prefix)] {
				continue
			}
			pats, ok := positiveString(pr.p, c)
			if !ok {
				continue
			}
			for _, pt := range pats {
				segments(pt, m.seps, func(seg []ptok) {
					// Each literal run, and the segment without its
					// wildcards ("acm*e" spells acme).
					var run, all []byte
					for _, t := range seg {
						if t.kind == pLit {
							run = append(run, t.b)
							all = append(all, t.b)
							continue
						}
						if len(run) > 0 {
							sp.names[strings.ToLower(string(run))] = true
						}
						run = run[:0]
					}
					for _, r := range [][]byte{run, all} {
						if len(r) > 0 {
							sp.names[strings.ToLower(string(r))] = true
						}
					}
				})
			}
		}
	}
	// The statement's own patterns and look-alikes.
	var perPattern [][]lookalike
	primary := m.slots[m.primary].cs
	for ci := range st.Condition {
		c := &st.Condition[ci]
		for _, ck := range callerKeys {
			if strings.EqualFold(c.Key, ck.key) {
				if pats, ok := positiveString(pr.p, c); ok {
					for _, pt := range pats {
						if _, done := sp.request[ck.key]; !done {
							if v, ok := pr.fitFree(pt, ck.def); ok {
								sp.request[ck.key] = v
							}
						}
					}
				}
			}
		}
		claim := keyClaim(c.Key, prefix)
		if claim == "" {
			continue
		}
		pats, ok := positiveString(pr.p, c)
		if !ok {
			continue
		}
		for _, v := range c.Values {
			if len(v) > maxValueLen {
				sp.tooLong = true
			}
		}
		sp.pats[claim] = append(sp.pats[claim], pats...)
		if !tenantClaim[claim] {
			continue
		}
		for _, pt := range pats {
			var ls []lookalike
			segments(pt, m.seps, func(seg []ptok) {
				for _, n := range pr.lookalikeNames(seg) {
					if len(ls) < maxLookalikesPerValue && len(n) <= maxNameLen && !sp.names[strings.ToLower(n)] && allIn(n, primary) {
						ls = append(ls, lookalike{name: n, of: literalPart(seg)})
					}
				}
			})
			perPattern = append(perPattern, ls)
		}
	}
	// Take the values' look-alikes in turn, so that one value with many
	// wildcards does not crowd out another's.
	seen := map[string]bool{}
	for k := 0; k < maxLookalikesPerValue; k++ {
		for _, ls := range perPattern {
			if k < len(ls) && !seen[ls[k].name] && len(sp.lookalikes) < maxLookalikes {
				seen[ls[k].name] = true
				sp.lookalikes = append(sp.lookalikes, ls[k])
			}
		}
	}
	for _, ck := range callerKeys {
		if _, ok := sp.request[ck.key]; !ok {
			sp.request[ck.key] = ck.def
		}
	}
	return sp
}

// segments calls fn for each part of pt between separators.
func segments(pt pattern, seps string, fn func(seg []ptok)) {
	start := 0
	for i, t := range pt.toks {
		if t.kind == pLit && strings.IndexByte(seps, t.b) >= 0 {
			fn(pt.toks[start:i])
			start = i + 1
		}
	}
	fn(pt.toks[start:])
}

// literalPart is a segment without its wildcards: the name it spells.
func literalPart(seg []ptok) string {
	var b []byte
	for _, t := range seg {
		if t.kind == pLit {
			b = append(b, t.b)
		}
	}
	return string(b)
}

// lookalikeNames extends the names a segment spells next to its wildcards
// ("acme*", "*acme", "acm*e", "ac?e") with random text: names of other
// tenants that the segment admits and anyone can register (acme →
// acme-x7k2, acmex7k2, x7k2acme). A segment with no literal text is the
// random tenant's business.
func (pr *prober) lookalikeNames(seg []ptok) []string {
	lits, wild := 0, false
	for _, t := range seg {
		if t.kind == pLit {
			lits++
		} else {
			wild = true
		}
	}
	if lits == 0 || !wild {
		return nil
	}
	var out []string
	// A run of text next to a wildcard, extended on that side: for
	// "repository_owner*acme", whose tenant part is not a segment of its
	// own, x7k2acme.
	var run []byte
	before := false
	for i := 0; i <= len(seg); i++ {
		if i < len(seg) && seg[i].kind == pLit {
			run = append(run, seg[i].b)
			continue
		}
		after := i < len(seg)
		if len(run) > 0 {
			r := string(run)
			if after {
				if alnum(r[len(r)-1]) {
					out = append(out, r+"-"+pr.randomName(4))
				}
				out = append(out, r+pr.randomName(4))
			}
			if before {
				out = append(out, pr.randomName(4)+r)
				if alnum(r[0]) {
					out = append(out, pr.randomName(4)+"-"+r)
				}
			}
		}
		run, before = run[:0], true
	}
	// The whole segment with its wildcards filled: acm*e → acm-x7k2e.
	for _, hyphen := range [2]bool{true, false} {
		var b []byte
		for i, t := range seg {
			switch t.kind {
			case pLit:
				b = append(b, t.b)
			case pAny:
				b = append(b, pr.randomName(1)...)
			case pStar:
				if hyphen && i > 0 && len(b) > 0 && alnum(b[len(b)-1]) {
					b = append(b, '-')
				}
				b = append(b, pr.randomName(4)...)
			}
		}
		out = append(out, string(b))
	}
	return out
}

func alnum(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' }

func allIn(s string, cs *charset) bool {
	for i := 0; i < len(s); i++ {
		if !cs.has(s[i]) {
			return false
		}
	}
	return s != ""
}

// fitFree fits a free text value (a caller-chosen request key) to a
// pattern, preferring def.
func (pr *prober) fitFree(pt pattern, def string) (string, bool) {
	t := template{{slot: 0}}
	specs := []slotSpec{{cs: anyText, def: def}}
	start := pr.sc.compile(t, []string{""}, []bool{false}, specs)
	vals, got := []string{""}, []bool{false}
	w, ok, _ := pr.sc.witness(pt, start, 1, vals, got)
	return w, ok
}

// choice is the tenant a series of probes stands for: a random name
// (look == nil) or a look-alike.
type choice struct{ look *lookalike }

// maxFits bounds the slot assignments tried per tenant choice, shape and
// fill mode.
const maxFits = 16

// build yields the probes of one shape for one tenant choice: slot
// assignments that fit the claims the statement constrains to its
// patterns, and that still stand for another tenant. Claims are fitted
// one after another, each seeing the slots the earlier ones fixed; every
// value of an ORed list that fits is tried (cheapest first: the one that
// keeps most likely values), and the claims are fitted in two orders
// (single-slot claims first, then last), since a slot fixed early can
// make a later claim fail. It returns false when yield asked to stop.
func (pr *prober) build(sp *stmtProbe, ch choice, sh *compiledShape, defs []string, yield func(*Probe) bool) bool {
	m := sp.iss.model
	n := len(m.slots)
	// The claims to fit, in the model's order, and reversed.
	claims := constrainedClaims(sp, sh)
	// A claim none of whose values can start like the claim does with
	// the choice's fixed tenant ends the series at once (most look-alike
	// names in most shapes).
	{
		vals, set := make([]string, n), make([]bool, n)
		if ch.look != nil {
			vals[m.primary], set[m.primary] = ch.look.name, true
		}
		for _, c := range claims {
			if c.optional {
				continue
			}
			open := false
			for _, pt := range sp.pats[c.name] {
				if !prefixClash(pt, c.t, vals, set) {
					open = true
					break
				}
			}
			if !open {
				return true
			}
		}
	}
	orders := [][]*compiledClaim{claims}
	shared := false
	var seenSlots uint64
	for _, c := range claims {
		shared = shared || seenSlots&c.slots != 0
		seenSlots |= c.slots
	}
	if shared {
		rev := slices.Clone(claims)
		slices.Reverse(rev)
		orders = append(orders, rev)
	}
	seen := map[string]bool{}
	leaves := 0
	var dfs func(list []*compiledClaim, k int, vals []string, set []bool) bool
	dfs = func(list []*compiledClaim, k int, vals []string, set []bool) bool {
		if leaves >= maxFits {
			return true
		}
		if k == len(list) {
			leaves++
			specs := slotSpecs(m, defs, vals, set)
			final := slices.Clone(vals)
			for i := range final {
				if !set[i] {
					final[i] = specs[i].def
				}
			}
			key := strings.Join(final, "\x00")
			if seen[key] {
				return true
			}
			seen[key] = true
			pb, ok := pr.materialize(sp, ch, sh, final)
			return !ok || yield(pb)
		}
		type fit struct {
			cost int32
			vals []string
			got  []bool
		}
		var fits []fit
		specs := slotSpecs(m, defs, vals, set)
	pats:
		for pi, pt := range sp.pats[list[k].name] {
			if prefixClash(pt, list[k].t, vals, set) {
				continue
			}
			f := fit{vals: make([]string, n), got: make([]bool, n)}
			if !pr.fitClaim(sp, list[k], pi, pt, vals, set, specs, f.vals, f.got, &f.cost) {
				continue
			}
			// A value that only a name the policy spells can match
			// leads to the policy's own tenant, not another.
			for _, t := range m.tenant {
				if f.got[t] && sp.names[strings.ToLower(f.vals[t])] {
					continue pats
				}
			}
			fits = append(fits, f)
		}
		if len(fits) == 0 {
			if !list[k].optional {
				// No value of the claim's conditions matches a token of
				// another tenant with these slots: every probe from here
				// fails the statement (the search is exact for a
				// pattern, taking a ${...} variable for anything).
				return true
			}
			// The token may lack the claim (IfExists, ForAllValues).
			return dfs(list, k+1, vals, set)
		}
		slices.SortStableFunc(fits, func(a, b fit) int { return int(a.cost - b.cost) })
		for _, f := range fits {
			nv, ns := slices.Clone(vals), slices.Clone(set)
			for i := range f.got {
				if f.got[i] {
					nv[i], ns[i] = f.vals[i], true
				}
			}
			if !dfs(list, k+1, nv, ns) {
				return false
			}
		}
		return true
	}
	for _, list := range orders {
		vals, set := make([]string, n), make([]bool, n)
		if ch.look != nil {
			vals[m.primary], set[m.primary] = ch.look.name, true
		}
		if !dfs(list, 0, vals, set) {
			return false
		}
	}
	return true
}

// defaults are the values of the model's slots where the policy does not
// constrain them: the other tenant's name and random ids, and the likely
// values ("main", "app") or random ones.
func (pr *prober) defaults(m *compiledModel, random bool) []string {
	defs := make([]string, len(m.slots))
	for i, s := range m.slots {
		switch {
		case s.id:
			defs[i] = pr.randomDigits(9)
		case s.tenant && s.alias == "":
			defs[i] = pr.foreign
		case random && s.alias == "" && !s.tenant:
			defs[i] = pr.randomFor(s.cs)
		default:
			defs[i] = s.def
		}
	}
	return defs
}

// fitKey identifies one search of fitClaim: the same claim template,
// pattern, fixed slots and defaults give the same witness, and the
// tenant choices, shapes and orders of a statement repeat many.
func fitKey(c *compiledClaim, pattern int, vals []string, set []bool, specs []slotSpec) string {
	var b strings.Builder
	b.WriteString(c.src)
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(pattern))
	for _, part := range c.t {
		if part.slot < 0 {
			continue
		}
		b.WriteByte(0)
		if set[part.slot] {
			b.WriteByte('=')
			b.WriteString(vals[part.slot])
		} else {
			b.WriteByte('~')
			b.WriteString(specs[part.slot].def)
		}
	}
	return b.String()
}

// fitResult is a remembered search.
type fitResult struct {
	ok   bool
	cost int32
	vals []string
	got  []bool
}

// fitClaim fits claim c to pattern pt (index pi of the claim's
// patterns) given the slots fixed so far: it fills out/got with the free
// slots' values and reports whether a witness exists.
func (pr *prober) fitClaim(sp *stmtProbe, c *compiledClaim, pi int, pt pattern, vals []string, set []bool, specs []slotSpec, out []string, got []bool, cost *int32) bool {
	key := fitKey(c, pi, vals, set, specs)
	if r, ok := sp.fits[key]; ok {
		copy(out, r.vals)
		copy(got, r.got)
		*cost = r.cost
		return r.ok
	}
	start := pr.sc.compile(c.t, vals, set, specs)
	_, ok, tooLarge := pr.sc.witness(pt, start, len(out), out, got)
	if tooLarge {
		// Not searched: fit nothing, so that the claim keeps its
		// defaults, and let the evaluator decide.
		clear(got)
		ok = true
	}
	*cost = pr.sc.cost
	sp.fits[key] = fitResult{ok: ok, cost: pr.sc.cost, vals: slices.Clone(out), got: slices.Clone(got)}
	return ok
}

// materialize renders a full slot assignment as a probe, when it still
// stands for another tenant: no tenant slot holds a name the policy
// spells.
func (pr *prober) materialize(sp *stmtProbe, ch choice, sh *compiledShape, vals []string) (*Probe, bool) {
	m := sp.iss.model
	for _, t := range m.tenant {
		if sp.names[strings.ToLower(vals[t])] {
			return nil, false
		}
	}
	pb := &Probe{Kind: sh.kind, Shape: sh.name, Tenant: vals[m.primary], Provider: sp.fed, Claims: make(map[string]string, len(sh.claims))}
	if ch.look != nil {
		pb.Kind, pb.LookalikeOf = KindLookalike, ch.look.of
		if sh.kind == KindCustomTemplate {
			pb.Kind = KindCustomTemplate
		}
	}
	renderClaims(sh, vals, pb.Claims)
	return pb, true
}

// slotSpecs are the search specs of the model's slots: an alias slot
// defaults to its target's value when that is fixed (set), else to the
// target's default.
func slotSpecs(m *compiledModel, defs, vals []string, set []bool) []slotSpec {
	specs := make([]slotSpec, len(m.slots))
	for i, s := range m.slots {
		d := defs[i]
		if s.alias != "" {
			if a := m.index[s.alias]; set[a] {
				d = vals[a]
			} else {
				d = defs[a]
			}
		}
		specs[i] = slotSpec{cs: s.cs, def: d, optional: s.optional}
	}
	return specs
}

// constrainedClaims are the claims of shape sh the statement has positive
// patterns for, in the model's order.
func constrainedClaims(sp *stmtProbe, sh *compiledShape) []*compiledClaim {
	var claims []*compiledClaim
	for _, name := range sp.iss.model.order {
		if len(sp.pats[name]) == 0 {
			continue
		}
		for k := range sh.claims {
			if sh.claims[k].name == name {
				claims = append(claims, &sh.claims[k])
			}
		}
	}
	return claims
}

// renderClaims writes the claims of shape sh for a full slot assignment
// into out.
func renderClaims(sh *compiledShape, vals []string, out map[string]string) {
	var b strings.Builder
	for _, c := range sh.claims {
		b.Reset()
		for _, part := range c.t {
			if part.slot < 0 {
				b.WriteString(part.lit)
			} else {
				b.WriteString(vals[part.slot])
			}
		}
		out[c.name] = b.String()
	}
}

// claimValue is the value the STS gives condition key name for the probe
// (oidc.ConditionValues): aud is the effective audience, oaud the aud
// values as sent, sub the subject, every other key the claim's value.
func claimValue(pb *Probe, name string) (string, bool) {
	switch name {
	case "oaud":
		name = "aud"
	case "aud", "sub":
		return pb.Claims[name], true
	}
	v, ok := pb.Claims[name]
	return v, ok
}

// fill puts into pr.ctx the request context the STS would build for the
// probe (trustContext in internal/sts/assume.go). aws:SourceIp is left
// out: the caller does not choose its address freely.
func (pr *prober) fill(sp *stmtProbe, pb *Probe) {
	c := pr.ctx
	c.Reset()
	for i, name := range sp.keyNames {
		if v, ok := claimValue(pb, name); ok {
			c.Set(sp.keys[i], v)
		}
	}
	c.Set("aws:currenttime", pr.nowText)
	c.Set("aws:epochtime", pr.epochText)
	c.Set("aws:federatedprovider", sp.fed)
	c.Set("aws:principaltype", "WebIdentityUser")
	for i, ck := range callerKeys {
		c.Set(callerKeysLower[i], sp.request[ck.key])
	}
	c.Set("aws:securetransport", "false")
}

// globalKeys spell the global keys fill sets, as AWS does.
var globalKeys = [...]string{"aws:CurrentTime", "aws:EpochTime", "aws:FederatedProvider", "aws:PrincipalType",
	"aws:SecureTransport", "sts:RoleSessionName", "aws:RequestedRegion", "aws:UserAgent"}

// contextOf reads back the context fill built for the probe, with AWS's
// spelling of the keys, for a finding: exactly what the evaluator saw.
func (pr *prober) contextOf(sp *stmtProbe, pb *Probe) map[string][]string {
	pr.fill(sp, pb)
	spell := map[string]string{}
	for i, name := range sp.keyNames {
		spell[sp.keys[i]] = sp.prefix + ":" + name
	}
	for _, k := range globalKeys {
		spell[strings.ToLower(k)] = k
	}
	out := make(map[string][]string, pr.ctx.Len())
	for _, k := range pr.ctx.Keys() {
		v, _ := pr.ctx.Get(k)
		if s, ok := spell[k]; ok {
			k = s
		}
		out[k] = slices.Clone(v)
	}
	return out
}

// admitted asks the evaluator whether the policy admits the probe.
func (pr *prober) admitted(sp *stmtProbe, pb *Probe) bool {
	pr.fill(sp, pb)
	req := policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalFederated, ID: sp.fed},
		Action:    actionWebIdentity, Resource: pr.roleARN, Context: pr.ctx,
	}
	return pr.set.Evaluate(&req) == policy.Allowed
}

// admittedBy returns the index of the Allow statement that admitted the
// probe whose context is in pr.ctx.
func (pr *prober) admittedBy(sp *stmtProbe) int {
	req := policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalFederated, ID: sp.fed},
		Action:    actionWebIdentity, Resource: pr.roleARN, Context: pr.ctx,
	}
	_, tr := pr.set.Explain(&req)
	for _, pt := range tr.Policies {
		for _, s := range pt.Statements {
			if s.Matched && s.Effect == policy.Allow {
				return s.Index
			}
		}
	}
	return sp.index
}

// search looks for a probe of another tenant that the policy admits.
func (pr *prober) search(sp *stmtProbe) *Probe {
	for pb := range pr.probes(sp) {
		if pr.admitted(sp, pb) {
			pb.Context = pr.contextOf(sp, pb)
			return pb
		}
	}
	return nil
}

// probes yields the probes of a statement: each tenant choice (a random
// name, then the look-alikes), each shape of the issuer's tokens, the
// likely values first and random ones second, each also without each
// optional claim the statement reads.
func (pr *prober) probes(sp *stmtProbe) iter.Seq[*Probe] {
	return func(yield func(*Probe) bool) {
		m := sp.iss.model
		choices := []choice{{}}
		for i := range sp.lookalikes {
			choices = append(choices, choice{look: &sp.lookalikes[i]})
		}
		referenced := map[string]bool{}
		for _, c := range sp.st.Condition {
			if name := keyClaim(c.Key, sp.prefix); name != "" {
				referenced[name] = true
			}
		}
		// The slots' defaults: likely values, and random ones.
		fills := [][]string{pr.defaults(m, false)}
		if pr.randomFills {
			fills = append(fills, pr.defaults(m, true))
		}
		for _, ch := range choices {
			for si := range m.shapes {
				sh := &m.shapes[si]
				for _, defs := range fills {
					more := pr.build(sp, ch, sh, defs, func(pb *Probe) bool {
						if !yield(pb) {
							return false
						}
						for _, c := range sh.claims {
							if !c.optional || !referenced[c.name] {
								continue
							}
							drop := *pb
							drop.Claims = make(map[string]string, len(pb.Claims))
							for k, v := range pb.Claims {
								if k != c.name {
									drop.Claims[k] = v
								}
							}
							drop.Kind, drop.Missing = KindMissingClaim, c.name
							if !yield(&drop) {
								return false
							}
						}
						return true
					})
					if !more {
						return
					}
				}
			}
		}
	}
}
