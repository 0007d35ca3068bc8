package policygen

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/policy"
)

// SizeLimit is the size a generated document must fit: a managed policy's
// (generated policies are meant to be attached as managed policies; an
// inline policy may be larger, up to policy.InlineRolePolicyAggregateMax
// for all of a role's inline policies together).
const SizeLimit = policy.ManagedPolicySizeMax

// statement is one statement of a generated document.
type statement struct {
	Sid       string                         `json:"Sid"`
	Effect    string                         `json:"Effect"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

type document struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

// assemble turns a policy's aggregated actions into its RolePolicy.
func assemble(pb *polBuilder, opts Options, by byMode) RolePolicy {
	rp := RolePolicy{Role: pb.key.role}
	type group struct {
		service, class, via string
		conds, res          []string
		actions             []string
	}
	groups := map[string]*group{}
	var notes []string
	for _, ab := range pb.acts {
		u := ab.use
		u.Resources = collapse(slices.Collect(maps.Keys(ab.res)), opts.CollapseAfter)
		u.Events = slices.Sorted(maps.Keys(ab.events))
		u.Note = strings.Join(slices.Sorted(maps.Keys(ab.notes)), "; ")
		u.FirstSeen, u.LastSeen = utc(ab.first), utc(ab.last)
		switch {
		case ab.readKnown == 0:
			u.ReadOnly = readOnlyName(u.Action)
		default:
			u.ReadOnly = ab.readOnly == ab.calls && ab.readKnown == ab.calls
		}
		rp.Actions = append(rp.Actions, u)

		svc, _, _ := strings.Cut(u.Action, ":")
		class := "Write"
		if u.ReadOnly {
			class = "Read"
		}
		conds := slices.Sorted(maps.Keys(ab.conds))
		via := ""
		if u.ViaService != "" {
			via = u.ViaService
		}
		gk := strings.Join([]string{svc, class, via, strings.Join(conds, ","), strings.Join(u.Resources, ",")}, "\x00")
		g := groups[gk]
		if g == nil {
			g = &group{service: svc, class: class, via: via, conds: conds, res: u.Resources}
			groups[gk] = g
		}
		g.actions = append(g.actions, u.Action)
		if u.Note != "" {
			notes = append(notes, u.Action+": "+u.Note)
		}
		if u.ViaService != "" && len(conds) == 0 {
			notes = append(notes, fmt.Sprintf("%s is used through %s (forward access session): kept without a condition, since kms:ViaService, the key AWS documents for this, applies to KMS only",
				u.Action, u.ViaService))
		}
	}
	slices.SortFunc(rp.Actions, func(a, b ActionUse) int {
		return cmp.Or(strings.Compare(a.Action, b.Action), strings.Compare(a.ViaService, b.ViaService))
	})
	slices.Sort(notes) // they were made in map order

	gs := slices.Collect(maps.Values(groups))
	slices.SortFunc(gs, func(a, b *group) int {
		return cmp.Or(strings.Compare(a.service, b.service), strings.Compare(a.class, b.class),
			strings.Compare(a.via, b.via), slices.Compare(a.res, b.res), slices.Compare(a.conds, b.conds))
	})
	sids := map[string]int{}
	var stmts []statement
	for _, g := range gs {
		st := statement{Effect: "Allow", Action: slices.Compact(slices.Sorted(slices.Values(g.actions))), Resource: escapeVars(g.res)}
		sid := sidWord(g.service) + g.class
		if g.via != "" {
			sid += "Via" + sidWord(strings.TrimSuffix(g.via, ".amazonaws.com"))
		}
		sids[sid]++
		if n := sids[sid]; n > 1 {
			sid += strconv.Itoa(n)
		}
		st.Sid = sid
		if len(g.conds) > 0 {
			st.Condition = map[string]map[string][]string{"StringEquals": {"kms:ViaService": g.conds}}
		}
		stmts = append(stmts, st)
	}

	doc := marshalDoc(stmts)
	rp.Policy = doc
	if policy.Size(string(doc)) > SizeLimit {
		parts := split(stmts)
		for _, p := range parts {
			rp.Policies = append(rp.Policies, marshalDoc(p))
		}
		notes = append(notes, fmt.Sprintf("the policy is %d characters, more than a managed policy's %d: split in %d documents (split) that each fit",
			policy.Size(string(doc)), SizeLimit, len(parts)))
	}
	for _, d := range append([]json.RawMessage{rp.Policy}, rp.Policies...) {
		if _, err := policy.ParseWithOptions(string(d), policy.KindIdentity, policy.Options{MaxSize: -1, RequireVersion2012: true}); err != nil {
			notes = append(notes, "BUG: keyless's policy parser rejects this document: "+err.Error())
		}
	}
	rp.Notes = append(pb.unlinkedNotes(by), notes...)
	return rp
}

func marshalDoc(stmts []statement) json.RawMessage {
	if stmts == nil {
		stmts = []statement{}
	}
	b, err := json.Marshal(document{Version: policy.Version2012, Statement: stmts})
	if err != nil {
		panic(err) // strings and slices only: cannot fail
	}
	return b
}

// split packs statements into documents that each fit SizeLimit, cutting a
// statement's resources when it alone does not fit.
func split(stmts []statement) [][]statement {
	empty := policy.Size(string(marshalDoc(nil)))
	size := func(st statement) int {
		b, _ := json.Marshal(st)
		return policy.Size(string(b)) + 1 // the comma
	}
	var pieces []statement
	for _, st := range stmts {
		if empty+size(st) <= SizeLimit {
			pieces = append(pieces, st)
			continue
		}
		// Cut the resources in chunks that fit.
		part := 1
		for rest := st.Resource; len(rest) > 0; part++ {
			c := st
			c.Sid = st.Sid + "Part" + strconv.Itoa(part)
			n := 1
			for n < len(rest) {
				c.Resource = rest[:n+1]
				if empty+size(c) > SizeLimit {
					break
				}
				n++
			}
			c.Resource = rest[:n]
			pieces = append(pieces, c)
			rest = rest[n:]
		}
	}
	var docs [][]statement
	var cur []statement
	used := empty
	for _, st := range pieces {
		s := size(st)
		if len(cur) > 0 && used+s > SizeLimit {
			docs = append(docs, cur)
			cur, used = nil, empty
		}
		cur = append(cur, st)
		used += s
	}
	if len(cur) > 0 {
		docs = append(docs, cur)
	}
	return docs
}

// collapse sorts and dedups ARNs, and replaces the ARNs under a path
// prefix by prefix/* when there are more than n of them, choosing the
// deepest such prefixes, repeatedly ("*" covers everything; n < 0 never
// collapses).
func collapse(arns []string, n int) []string {
	if slices.Contains(arns, "*") {
		return []string{"*"}
	}
	set := map[string]struct{}{}
	for _, a := range arns {
		set[a] = struct{}{}
	}
	for n >= 0 {
		count := map[string]int{}
		for a := range set {
			forAncestors(a, func(p string) { count[p]++ })
		}
		var cands []string
		for p, c := range count {
			if c > n {
				cands = append(cands, p)
			}
		}
		if len(cands) == 0 {
			break
		}
		// The deepest first; a prefix above a chosen one waits for the
		// next round (its count then sees the wildcard as one).
		slices.SortFunc(cands, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
		var chosen []string
		for _, p := range cands {
			if !slices.ContainsFunc(chosen, func(q string) bool { return strings.HasPrefix(q, p+"/") }) {
				chosen = append(chosen, p)
			}
		}
		for a := range set {
			s := strings.TrimSuffix(a, "/*")
			for _, p := range chosen {
				if strings.HasPrefix(s, p+"/") {
					delete(set, a)
					break
				}
			}
		}
		for _, p := range chosen {
			set[p+"/*"] = struct{}{}
		}
	}
	out := slices.Collect(maps.Keys(set))
	slices.Sort(out)
	return out
}

// forAncestors calls f with each path prefix an ARN (or a prefix/* it
// collapsed to) is under: up to each '/' of its resource part.
func forAncestors(a string, f func(string)) {
	s := strings.TrimSuffix(a, "/*")
	// The resource part starts after the fifth colon.
	colons, j := 0, 0
	for ; j < len(s) && colons < 5; j++ {
		if s[j] == ':' {
			colons++
		}
	}
	if colons < 5 {
		return
	}
	for i := j; i < len(s); i++ {
		if s[i] == '/' {
			f(s[:i])
		}
	}
}

// escapeVars writes a literal "$" of an ARN as IAM's ${$}, so that a name
// holding "${...}" is not read as a policy variable (a "*" or "?" in a name
// stays a wildcard: it can only widen the grant to names that differ there).
func escapeVars(arns []string) []string {
	out := arns
	for i, a := range arns {
		if strings.Contains(a, "$") {
			if &out[0] == &arns[0] {
				out = slices.Clone(arns)
			}
			out[i] = strings.ReplaceAll(a, "$", "${$}")
		}
	}
	return out
}

// readOnlyName guesses from an action's name whether it only reads, for
// events without a readOnly field.
func readOnlyName(action string) bool {
	_, name, _ := strings.Cut(action, ":")
	for _, p := range []string{"Get", "List", "Describe", "Head", "BatchGet", "Query", "Scan", "Search", "Lookup", "View", "Check"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// sidWord turns a service prefix into a Sid word: "cloudformation" ->
// "Cloudformation", "resource-groups" -> "ResourceGroups".
func sidWord(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			if up {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			up = false
		case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			up = false
		default:
			up = true
		}
	}
	return b.String()
}
