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
// twice (in the body, the query string, or both, whatever its encoding) is
// refused: AWS clients never send duplicates, and accepting them invites
// parameter-pollution bugs between the signature check and the handler.
//
// This is the one place a request's names and values are decoded, with
// UnescapeComponent, and classified by their decoded name with ClassifyName
// (sigv4 reads the authentication parameters with the same two functions):
//
//   - the SigV4 query authentication parameters (X-Amz-Algorithm,
//     X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders,
//     X-Amz-Security-Token, X-Amz-Signature) authenticate the request and
//     are never API parameters, so they never reach a handler or the audit
//     trail's requestParameters, however the client encoded their names;
//   - a case variant of one of them (x-amz-security-token) is refused:
//     AWS's names are case-sensitive, so it is not authentication, and
//     passing it on as data would record a credential in clear;
//   - any other X-Amz-* name (any case) is transport metadata some SDKs add
//     to presigned URLs, and is dropped;
//   - in a form body, where SigV4 never carries authentication, an X-Amz-*
//     name that is (a case variant of) an authentication parameter is
//     refused, and other X-Amz-* names are dropped.
func ParseParams(body []byte, rawQuery string) (Params, error) {
	v := url.Values{}
	var others map[string]bool // names that are not API parameters, for the duplicate check
	n := 0
	for i, src := range []string{rawQuery, string(body)} {
		inBody := i == 1
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
			name, ok := UnescapeComponent(rawName)
			if !ok {
				return Params{}, Errorf(CodeMalformedQueryString, "The parameter name %q is not correctly URL-encoded.", truncate(rawName, 64))
			}
			val, ok := UnescapeComponent(rawVal)
			if !ok {
				return Params{}, Errorf(CodeMalformedQueryString, "The value of parameter %q is not correctly URL-encoded.", truncate(name, 64))
			}
			if name == "" {
				return Params{}, NewError(CodeMalformedQueryString, "The request has a parameter with an empty name.")
			}
			class := ClassifyName(name)
			var dup bool
			if class == NameAPI {
				_, dup = v[name]
			} else {
				if others == nil {
					others = map[string]bool{}
				}
				dup, others[name] = others[name], true
			}
			if dup {
				if class == NameSigV4 {
					return Params{}, Errorf(CodeIncompleteSignature, "AWS query-string parameter '%s' must appear only once. Re-examine the query-string parameters.", name)
				}
				return Params{}, Errorf(CodeInvalidParameterValue, "The parameter %s was given more than once.", truncate(name, 64))
			}
			switch {
			case class == NameAPI:
				v[name] = []string{val}
			case class == NameSigV4Variant || inBody && class == NameSigV4:
				want := canonicalSigV4Name(name)
				where := "AWS query-string parameter names are case-sensitive"
				if inBody {
					where = "SigV4 authentication parameters are read from the query string or the headers, never from the request body"
				}
				return Params{}, Errorf(CodeIncompleteSignature, "The parameter '%s' is not accepted: %s (%s). Re-examine the request parameters.", truncate(name, 64), where, want)
			}
			// NameSigV4 in the query string authenticates the request
			// (sigv4 reads it); NameAmz is transport metadata. Neither is
			// an API parameter.
		}
	}
	return Params{v: v}, nil
}

// NameClass is what a decoded query parameter name is to the server.
type NameClass uint8

const (
	// NameAPI is an API parameter: handed to the action, recorded in the
	// audit trail.
	NameAPI NameClass = iota
	// NameSigV4 is a SigV4 query authentication parameter, spelled exactly
	// as AWS spells it.
	NameSigV4
	// NameSigV4Variant is a case variant of a SigV4 authentication
	// parameter (x-amz-security-token): refused.
	NameSigV4Variant
	// NameAmz is any other X-Amz-* name (any case): neither API parameter
	// nor authentication.
	NameAmz
)

// sigV4Names are the SigV4 query authentication parameters.
var sigV4Names = [...]string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders",
	"X-Amz-Date", "X-Amz-Expires", "X-Amz-Security-Token",
}

// ClassifyName sorts a decoded parameter name; see ParseParams for what
// happens to each class. It does not allocate.
func ClassifyName(name string) NameClass {
	const prefix = "x-amz-"
	if len(name) < len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
		return NameAPI
	}
	for _, s := range sigV4Names {
		if name == s {
			return NameSigV4
		}
		if strings.EqualFold(name, s) {
			return NameSigV4Variant
		}
	}
	return NameAmz
}

// canonicalSigV4Name is AWS's spelling of a (case variant of a) SigV4
// authentication parameter.
func canonicalSigV4Name(name string) string {
	for _, s := range sigV4Names {
		if strings.EqualFold(name, s) {
			return s
		}
	}
	return name
}

// UnescapeComponent decodes one name or value of a query string or form
// body: '+' is a space and %XX the byte XX (either case of hex digit). It is
// the single decoder of request parameters (ParseParams and sigv4 both use
// it). ok is false when a '%' is not followed by two hex digits; decoded then
// keeps such a '%' as a literal, which is what SigV4 canonicalisation
// re-encodes (ParseParams refuses the request instead). It allocates only
// when s holds a '%' or a '+'.
func UnescapeComponent(s string) (decoded string, ok bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	ok = true
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b = append(b, ' ')
		case c == '%':
			if i+2 < len(s) {
				h, ok1 := unhex(s[i+1])
				l, ok2 := unhex(s[i+2])
				if ok1 && ok2 {
					b = append(b, h<<4|l)
					i += 2
					continue
				}
			}
			ok = false
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return string(b), ok
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
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
