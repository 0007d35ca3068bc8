package awsquery

import (
	"strconv"
	"strings"
)

// Shape is the input shape of a Query API operation as far as parameter
// names go: a structure (Fields), a list (List, serialized Name.member.N) or
// a scalar (neither). The tables are generated from the AWS API models
// (shapegen) so that a request naming a parameter its operation does not
// define is refused instead of silently ignored: a handler that ignores a
// parameter while authorization reads it is how a resource check goes
// wrong.
type Shape struct {
	// Fields are a structure's members by name.
	Fields map[string]*Shape
	// List is the member shape of a list.
	List *Shape
}

func (s *Shape) isScalar() bool { return s.Fields == nil && s.List == nil }

// CheckParams refuses a parameter that the operation's input shape does
// not define, with a ValidationError naming it. Action and Version are the
// protocol's own. An empty list may be sent as the bare list name with an
// empty value, as botocore does.
func (s *Shape) CheckParams(action string, p Params) error {
	for name, vals := range p.v {
		if name == "Action" || name == "Version" {
			continue
		}
		if !s.defines(name, len(vals) > 0 && vals[0] == "") {
			return Errorf(CodeValidationError, "The parameter %s is not defined for action %s: remove it, or check its spelling against the API reference.", truncate(name, 128), action)
		}
	}
	return nil
}

// defines reports whether name (dot-separated) is a path through s that
// ends at a scalar, or at a list when the value is empty.
func (s *Shape) defines(name string, empty bool) bool {
	cur := s
	rest := name
	for {
		part, tail, more := strings.Cut(rest, ".")
		switch {
		case cur.Fields != nil:
			f, ok := cur.Fields[part]
			if !ok {
				return false
			}
			cur = f
		case cur.List != nil:
			if part != "member" || !more {
				return false
			}
			var idx string
			idx, tail, more = strings.Cut(tail, ".")
			if !validIndex(idx) {
				return false
			}
			cur = cur.List
		default:
			return false // a scalar has no children
		}
		if !more {
			return cur.isScalar() || (cur.List != nil && empty)
		}
		rest = tail
	}
}

// validIndex reports whether s is a list index as SDKs write it: 1…MaxListMembers, no sign, no leading zero.
func validIndex(s string) bool {
	if s == "" || s[0] == '0' || len(s) > 4 {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= MaxListMembers
}
