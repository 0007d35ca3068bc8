package policy

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MarshalJSON returns the canonical form of the policy (see String).
func (p *Policy) MarshalJSON() ([]byte, error) {
	return []byte(p.String()), nil
}

// String returns the canonical JSON form of the policy: compact, with
// elements in a fixed order (Version, Id, Statement; in a statement Sid,
// Effect, Principal/NotPrincipal, Action/NotAction, Resource/NotResource,
// Condition), Statement always an array, one-element lists as a plain
// string, and condition values as strings. Operators and keys keep their
// document order and spelling. Parsing the canonical form gives back an
// equal policy (positions aside), so it is what keyless stores and
// returns.
func (p *Policy) String() string {
	var w strings.Builder
	w.WriteByte('{')
	sep := ""
	if p.Version != "" {
		w.WriteString(`"Version":`)
		writeJSONString(&w, p.Version)
		sep = ","
	}
	if p.ID != "" {
		w.WriteString(sep + `"Id":`)
		writeJSONString(&w, p.ID)
		sep = ","
	}
	w.WriteString(sep + `"Statement":[`)
	for i := range p.Statements {
		if i > 0 {
			w.WriteByte(',')
		}
		writeStatement(&w, &p.Statements[i])
	}
	w.WriteString("]}")
	return w.String()
}

func writeStatement(w *strings.Builder, st *Statement) {
	w.WriteByte('{')
	if st.Sid != "" {
		w.WriteString(`"Sid":`)
		writeJSONString(w, st.Sid)
		w.WriteByte(',')
	}
	w.WriteString(`"Effect":`)
	writeJSONString(w, st.Effect.String())
	if st.Principal != nil {
		w.WriteString(`,"Principal":`)
		writePrincipals(w, st.Principal)
	}
	if st.NotPrincipal != nil {
		w.WriteString(`,"NotPrincipal":`)
		writePrincipals(w, st.NotPrincipal)
	}
	if len(st.NotAction) > 0 {
		w.WriteString(`,"NotAction":`)
		writeList(w, st.NotAction)
	} else {
		w.WriteString(`,"Action":`)
		writeList(w, st.Action)
	}
	if st.Resource != nil {
		w.WriteString(`,"Resource":`)
		writeList(w, st.Resource)
	}
	if st.NotResource != nil {
		w.WriteString(`,"NotResource":`)
		writeList(w, st.NotResource)
	}
	if len(st.Condition) > 0 {
		w.WriteString(`,"Condition":{`)
		// Conditions are stored flat in document order; operators are
		// regrouped in order of first appearance.
		done := make([]bool, len(st.Condition))
		firstOp := true
		for i := range st.Condition {
			if done[i] {
				continue
			}
			op := st.Condition[i].Operator
			if !firstOp {
				w.WriteByte(',')
			}
			firstOp = false
			writeJSONString(w, op)
			w.WriteString(":{")
			firstKey := true
			for j := i; j < len(st.Condition); j++ {
				if done[j] || st.Condition[j].Operator != op {
					continue
				}
				done[j] = true
				if !firstKey {
					w.WriteByte(',')
				}
				firstKey = false
				writeJSONString(w, st.Condition[j].Key)
				w.WriteByte(':')
				writeList(w, st.Condition[j].Values)
			}
			w.WriteByte('}')
		}
		w.WriteByte('}')
	}
	w.WriteByte('}')
}

func writePrincipals(w *strings.Builder, p *Principals) {
	if p.Wildcard {
		w.WriteString(`"*"`)
		return
	}
	w.WriteByte('{')
	sep := ""
	for _, e := range []struct {
		name string
		vals []string
	}{{"AWS", p.AWS}, {"CanonicalUser", p.CanonicalUser}, {"Federated", p.Federated}, {"Service", p.Service}} {
		if len(e.vals) == 0 {
			continue
		}
		w.WriteString(sep)
		writeJSONString(w, e.name)
		w.WriteByte(':')
		writeList(w, e.vals)
		sep = ","
	}
	w.WriteByte('}')
}

// writeList writes one value as a string and anything else (including an
// empty list) as an array.
func writeList(w *strings.Builder, l []string) {
	if len(l) == 1 {
		writeJSONString(w, l[0])
		return
	}
	w.WriteByte('[')
	for i, s := range l {
		if i > 0 {
			w.WriteByte(',')
		}
		writeJSONString(w, s)
	}
	w.WriteByte(']')
}

// writeJSONString writes s as a JSON string, escaping only what JSON
// requires (and U+2028/U+2029 for JavaScript consumers).
func writeJSONString(w *strings.Builder, s string) {
	w.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				w.WriteByte('\\')
				w.WriteByte(c)
			case c == '\n':
				w.WriteString(`\n`)
			case c == '\r':
				w.WriteString(`\r`)
			case c == '\t':
				w.WriteString(`\t`)
			case c < 0x20:
				w.WriteString(`\u00`)
				w.WriteByte("0123456789abcdef"[c>>4])
				w.WriteByte("0123456789abcdef"[c&0xF])
			default:
				w.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			w.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			w.WriteString(`\u` + strconv.FormatInt(int64(r), 16))
		default:
			w.WriteString(s[i : i+size])
		}
		i += size
	}
	w.WriteByte('"')
}
