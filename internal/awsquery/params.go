package awsquery

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Limits that keep a hostile request from costing more than it is worth.
const (
	// MaxParams bounds the number of parameters in one request. IAM's
	// largest legitimate request (100 client ids + 50 tags) stays far below.
	MaxParams = 2000
	// MaxListMembers bounds member.N indices.
	MaxListMembers = 1000
)

// Params is a decoded Query request: the form body and the URL query string,
// merged. Names are case-sensitive, as in AWS.
type Params struct {
	v url.Values
}

// ParseParams decodes a form body and a raw query string. A parameter given
// twice (in the body, the query string, or both) is refused: AWS clients never
// send duplicates, and accepting them invites parameter-pollution bugs
// between the signature check and the handler.
func ParseParams(body []byte, rawQuery string) (Params, error) {
	v := url.Values{}
	n := 0
	for _, src := range []string{rawQuery, string(body)} {
		for src != "" {
			var pair string
			pair, src, _ = strings.Cut(src, "&")
			if pair == "" {
				continue
			}
			n++
			if n > MaxParams {
				return Params{}, Errorf(CodeMalformedQueryString, "The request has more than %d parameters.", MaxParams)
			}
			rawName, rawVal, _ := strings.Cut(pair, "=")
			name, err := url.QueryUnescape(rawName)
			if err != nil {
				return Params{}, Errorf(CodeMalformedQueryString, "The parameter name %q is not correctly URL-encoded.", truncate(rawName, 64))
			}
			val, err := url.QueryUnescape(rawVal)
			if err != nil {
				return Params{}, Errorf(CodeMalformedQueryString, "The value of parameter %q is not correctly URL-encoded.", truncate(name, 64))
			}
			if name == "" {
				return Params{}, NewError(CodeMalformedQueryString, "The request has a parameter with an empty name.")
			}
			if _, dup := v[name]; dup {
				return Params{}, Errorf(CodeInvalidParameterValue, "The parameter %s was given more than once.", truncate(name, 64))
			}
			v[name] = []string{val}
		}
	}
	return Params{v: v}, nil
}

// ParamsFromValues wraps already-decoded values (tests, internal callers).
// Only the first value of each name is used.
func ParamsFromValues(v url.Values) Params {
	c := url.Values{}
	for k, vs := range v {
		if len(vs) > 0 {
			c[k] = vs[:1]
		}
	}
	return Params{v: c}
}

// Get returns the value of name and whether it was present.
func (p Params) Get(name string) (string, bool) {
	vs, ok := p.v[name]
	if !ok {
		return "", false
	}
	return vs[0], true
}

// String returns the value of name, or "" when absent.
func (p Params) String(name string) string {
	s, _ := p.Get(name)
	return s
}

// Has reports whether name is present.
func (p Params) Has(name string) bool { _, ok := p.v[name]; return ok }

// Names returns every parameter name, sorted (for audit and tests).
func (p Params) Names() []string {
	out := make([]string, 0, len(p.v))
	for k := range p.v {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Len is the number of parameters.
func (p Params) Len() int { return len(p.v) }

// List decodes a list serialized as name.member.1, name.member.2, ... The
// second result reports whether the list was given at all: botocore sends an
// empty list as a bare "name=" parameter, which is present but empty.
// Indices must run from 1 without gaps.
func (p Params) List(name string) ([]string, bool, error) {
	idx, present, err := p.memberIndices(name, "")
	if err != nil {
		return nil, false, err
	}
	out := make([]string, 0, len(idx))
	for i := 1; i <= len(idx); i++ {
		out = append(out, p.v[name+".member."+strconv.Itoa(i)][0])
	}
	return out, present, nil
}

// Structs decodes a list of structures serialized as
// name.member.N.Field. Every returned map holds the given fields that were
// present for that member.
func (p Params) Structs(name string, fields ...string) ([]map[string]string, bool, error) {
	prefix := name + ".member."
	seen := map[int]map[string]string{}
	present := p.Has(name)
	for k, vs := range p.v {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		present = true
		num, field, ok := strings.Cut(rest, ".")
		if !ok {
			return nil, false, Errorf(CodeInvalidParameterValue, "The parameter %s is not of the form %sN.Field.", truncate(k, 128), prefix)
		}
		i, err := parseIndex(num)
		if err != nil {
			return nil, false, Errorf(CodeInvalidParameterValue, "The parameter %s has an invalid list index.", truncate(k, 128))
		}
		known := false
		for _, f := range fields {
			if f == field {
				known = true
				break
			}
		}
		if !known {
			return nil, false, Errorf(CodeInvalidParameterValue, "The parameter %s has an unknown field %q.", truncate(k, 128), truncate(field, 64))
		}
		m := seen[i]
		if m == nil {
			m = map[string]string{}
			seen[i] = m
		}
		m[field] = vs[0]
	}
	out := make([]map[string]string, 0, len(seen))
	for i := 1; i <= len(seen); i++ {
		m, ok := seen[i]
		if !ok {
			return nil, false, Errorf(CodeInvalidParameterValue, "The list %s skips index %d: members must be numbered from 1 without gaps.", name, i)
		}
		out = append(out, m)
	}
	return out, present, nil
}

// Tag is one Key/Value pair of a Tags list.
type Tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// Tags decodes name.member.N.Key / name.member.N.Value.
func (p Params) Tags(name string) ([]Tag, bool, error) {
	ms, present, err := p.Structs(name, "Key", "Value")
	if err != nil {
		return nil, false, err
	}
	out := make([]Tag, 0, len(ms))
	for i, m := range ms {
		k, ok := m["Key"]
		if !ok {
			return nil, false, Errorf(CodeValidationError, "1 validation error detected: Value null at '%s.%d.member.key' failed to satisfy constraint: Member must not be null", lowerFirst(name), i+1)
		}
		out = append(out, Tag{Key: k, Value: m["Value"]})
	}
	return out, present, nil
}

func (p Params) memberIndices(name, suffix string) ([]int, bool, error) {
	prefix := name + ".member."
	present := p.Has(name)
	if present && p.String(name) != "" {
		return nil, false, Errorf(CodeInvalidParameterValue, "The parameter %s must be given as %s1, %s2, ...", name, prefix, prefix)
	}
	var idx []int
	for k := range p.v {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		present = true
		i, err := parseIndex(rest)
		if err != nil {
			return nil, false, Errorf(CodeInvalidParameterValue, "The parameter %s has an invalid list index.", truncate(k, 128))
		}
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for j, i := range idx {
		if i != j+1 {
			return nil, false, Errorf(CodeInvalidParameterValue, "The list %s skips index %d: members must be numbered from 1 without gaps.", name, j+1)
		}
	}
	return idx, present, nil
}

func parseIndex(s string) (int, error) {
	if s == "" || s[0] == '0' || len(s) > 4 {
		return 0, fmt.Errorf("bad index %q", s)
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 1 || i > MaxListMembers {
		return 0, fmt.Errorf("bad index %q", s)
	}
	return i, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
