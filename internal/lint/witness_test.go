package lint

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/policy"
)

func TestCompilePattern(t *testing.T) {
	str := func(p pattern) string {
		var b strings.Builder
		for _, t := range p.toks {
			switch t.kind {
			case pStar:
				b.WriteString("<*>")
			case pAny:
				b.WriteString("<?>")
			default:
				b.WriteByte(t.b)
			}
		}
		return b.String()
	}
	for _, tc := range []struct {
		in         string
		wild, vars bool
		want       string
	}{
		{"repo:acme*", true, true, "repo:acme<*>"},
		{"a**b??", true, true, "a<*>b<?><?>"},
		{"a*b?", false, true, "a*b?"}, // StringEquals: wildcards are literal
		{"${token.actions.githubusercontent.com:sub}", true, true, "<*>"},
		{"${token.actions.githubusercontent.com:sub}", true, false, "${token.actions.githubusercontent.com:sub}"}, // Version 2008
		{"x${*}y${?}z${$}", true, true, "x*y?z$"},
		{"${aws:username, 'a'}*", true, true, "<*>"},
		{"${unclosed", true, true, "${unclosed"},
	} {
		if got := str(compilePattern(tc.in, tc.wild, tc.vars, false)); got != tc.want {
			t.Errorf("compilePattern(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// ghBranch is the GitHub branch shape's subject template.
func ghBranch(t *testing.T) (template, *compiledModel) {
	t.Helper()
	m := githubModel
	for _, sh := range m.shapes {
		if sh.name == "branch" {
			for _, c := range sh.claims {
				if c.name == "sub" {
					return c.t, m
				}
			}
		}
	}
	t.Fatal("no branch shape")
	return nil, nil
}

// witnessFor fits a subject pattern to the branch template with the owner
// defaulting to "other", the other slots free with their defaults.
func witnessFor(t *testing.T, sc *scratch, pat pattern, fixed map[string]string) (string, map[string]string, bool) {
	tmpl, m := ghBranch(t)
	n := len(m.slots)
	vals, set, specs := make([]string, n), make([]bool, n), make([]slotSpec, n)
	for i, s := range m.slots {
		specs[i] = slotSpec{cs: s.cs, def: s.def, optional: s.optional}
		if s.name == "owner" {
			specs[i].def = "other"
		}
		if v, ok := fixed[s.name]; ok {
			vals[i], set[i] = v, true
		}
	}
	if prefixClash(pat, tmpl, vals, set) {
		return "", nil, false
	}
	start := sc.compile(tmpl, vals, set, specs)
	out, got := make([]string, n), make([]bool, n)
	w, ok, _ := sc.witness(pat, start, n, out, got)
	slots := map[string]string{}
	for i := range got {
		if got[i] {
			slots[m.slots[i].name] = out[i]
		}
	}
	return w, slots, ok
}

func TestWitness(t *testing.T) {
	var sc scratch
	like := func(v string) pattern { return compilePattern(v, true, true, false) }
	for _, tc := range []struct {
		name  string
		pat   pattern
		fixed map[string]string
		want  string // "" for none
	}{
		{"defaults kept", like("repo:*"), nil, "repo:other/app:ref:refs/heads/main"},
		{"question star", like("?*"), nil, "repo:other/app:ref:refs/heads/main"},
		{"pattern picks the branch", like("repo:*:ref:refs/heads/release-*"), nil, "repo:other/app:ref:refs/heads/release-"},
		{"owner forced", like("repo:acme/app:*"), nil, "repo:acme/app:ref:refs/heads/main"},
		{"owner fixed, no match", like("repo:acme/app:*"), map[string]string{"owner": "evil"}, ""},
		{"look-alike owner fixed", like("repo:acme*"), map[string]string{"owner": "acme-x1"}, "repo:acme-x1/app:ref:refs/heads/main"},
		{"suffix", like("*owned"), nil, "repo:other/app:ref:refs/heads/owned"},
		{"not a branch subject", like("repo:acme/app:pull_request"), nil, ""},
		{"class refuses", like("repo:ac me/*"), nil, ""},
		{"literal under StringEquals", compilePattern("repo:*", false, true, false), nil, ""},
		{"ignore case", compilePattern("REPO:ACME/APP:REF:REFS/HEADS/MAIN", false, false, true), nil, "repo:ACME/app:ref:refs/heads/main"},
		{"variable is anything", like("${token.actions.githubusercontent.com:sub}"), nil, "repo:other/app:ref:refs/heads/main"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _, ok := witnessFor(t, &sc, tc.pat, tc.fixed)
			if tc.want == "" {
				if ok {
					t.Fatalf("witness %q, want none", w)
				}
				return
			}
			if !ok || w != tc.want {
				t.Fatalf("witness %q (%v), want %q", w, ok, tc.want)
			}
		})
	}
}

// TestWitnessTooLarge: a search beyond maxStates is refused, not run.
func TestWitnessTooLarge(t *testing.T) {
	var sc scratch
	tmpl, m := ghBranch(t)
	n := len(m.slots)
	specs := make([]slotSpec, n)
	for i, s := range m.slots {
		specs[i] = slotSpec{cs: s.cs, def: s.def}
	}
	start := sc.compile(tmpl, make([]string, n), make([]bool, n), specs)
	pat := compilePattern(strings.Repeat("?", maxStates/len(sc.nodes)+1), true, false, false)
	if _, ok, tooLarge := sc.witness(pat, start, n, make([]string, n), make([]bool, n)); ok || !tooLarge {
		t.Fatalf("ok %v tooLarge %v", ok, tooLarge)
	}
}

// FuzzWitness: whatever the pattern, a witness the search returns is
// matched by the pattern according to the evaluator, its slot values are
// in their classes, and the template filled with them is the witness.
func FuzzWitness(f *testing.F) {
	for _, s := range []string{"repo:*", "?*", "repo:acme*", "*owned", "repo:a?me/*:ref:refs/heads/ma*", "", "*", "repo:acme/app:ref:refs/heads/main", "r*:*/*:*:*/*/*"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, value string, fixOwner bool) {
		if len(value) > 200 || strings.ContainsAny(value, "\"\\\x00") || !policy.ValidChars(`"`+value+`"`) {
			return
		}
		var fixed map[string]string
		if fixOwner {
			fixed = map[string]string{"owner": "zz9"}
		}
		var sc scratch
		w, slots, ok := witnessFor(t, &sc, compilePattern(value, true, false, false), fixed)
		if !ok {
			return
		}
		doc := `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + ghARN + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"k:sub":` + strconv.Quote(value) + `}}}]}`
		p, err := policy.Parse(doc, policy.KindTrust)
		if err != nil {
			return
		}
		c := policy.NewContext(1)
		c.Set("k:sub", w)
		set := policy.PolicySet{Resource: []*policy.Policy{p}}
		if d := set.Evaluate(&policy.Request{Principal: policy.Principal{Type: policy.PrincipalFederated, ID: ghARN}, Action: "sts:AssumeRoleWithWebIdentity", Resource: "*", Context: c}); d != policy.Allowed {
			t.Fatalf("witness %q of %q is not matched by the evaluator", w, value)
		}
		tmpl, m := ghBranch(t)
		var b strings.Builder
		for _, part := range tmpl {
			if part.slot < 0 {
				b.WriteString(part.lit)
				continue
			}
			s := m.slots[part.slot]
			v, ok := slots[s.name]
			if !ok {
				v = fixed[s.name]
			}
			if !ok && v == "" {
				t.Fatalf("slot %s has no value", s.name)
			}
			for i := 0; i < len(v); i++ {
				if !s.cs.has(v[i]) {
					t.Fatalf("slot %s = %q is outside its class", s.name, v)
				}
			}
			b.WriteString(v)
		}
		if diff := cmp.Diff(w, b.String()); diff != "" {
			t.Fatalf("template filled with the slots differs from the witness:\n%s", diff)
		}
	})
}
