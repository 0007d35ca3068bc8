package awsquery

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Validator collects constraint violations and renders them with AWS's
// grammar: "2 validation errors detected: Value 'x' at 'roleName' failed to
// satisfy constraint: Member must ...; Value ...". Member names are the
// model's lower-camel-case names (roleName, durationSeconds).
//
// The count is exact; at most MaxListedViolations are listed, so a request
// with a thousand bad list members gets (and the audit trail records) a
// message of a few KB, not of the request's size.
type Validator struct {
	errs []string
	n    int
}

// MaxListedViolations is how many violations a ValidationError lists.
const MaxListedViolations = 10

func (v *Validator) add(value *string, member, constraint string) {
	shown := "null"
	if value != nil {
		shown = "'" + truncate(*value, 256) + "'"
	}
	v.addShown("Value "+shown+" at", member, constraint)
}

func (v *Validator) addShown(prefix, member, constraint string) {
	v.n++
	if len(v.errs) < MaxListedViolations {
		v.errs = append(v.errs, fmt.Sprintf("%s '%s' failed to satisfy constraint: Member must %s", prefix, member, constraint))
	}
}

// Required records a violation when the parameter is absent.
func (v *Validator) Required(p Params, name string) (string, bool) {
	s, ok := p.Get(name)
	if !ok {
		v.add(nil, lowerFirst(name), "not be null")
	}
	return s, ok
}

// Length checks a string length in characters (AWS counts characters).
func (v *Validator) Length(name, value string, min, max int) bool {
	return v.length(name, "Value '"+truncate(value, 256)+"' at", utf8.RuneCountInString(value), min, max)
}

// SensitiveLength is Length for a secret-bearing member (an ID token): the
// message leaves the value out, as AWS's does for sensitive members.
func (v *Validator) SensitiveLength(name, value string, min, max int) bool {
	return v.length(name, "Value at", utf8.RuneCountInString(value), min, max)
}

func (v *Validator) length(name, prefix string, n, min, max int) bool {
	ok := true
	if n < min {
		v.addShown(prefix, lowerFirst(name), "have length greater than or equal to "+strconv.Itoa(min))
		ok = false
	}
	if max > 0 && n > max {
		v.addShown(prefix, lowerFirst(name), "have length less than or equal to "+strconv.Itoa(max))
		ok = false
	}
	return ok
}

// Pattern checks value against re, whose source text is shown to the user
// as AWS shows the model's pattern.
func (v *Validator) Pattern(name, value string, re *regexp.Regexp, shown string) bool {
	if !re.MatchString(value) {
		v.add(&value, lowerFirst(name), "satisfy regular expression pattern: "+shown)
		return false
	}
	return true
}

// Int parses an optional integer parameter and checks its range. It
// returns def when absent.
func (v *Validator) Int(p Params, name string, def, min, max int) int {
	s, ok := p.Get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		v.add(&s, lowerFirst(name), "be an integer")
		return def
	}
	if n < min {
		v.add(&s, lowerFirst(name), "have value greater than or equal to "+strconv.Itoa(min))
	}
	if n > max {
		v.add(&s, lowerFirst(name), "have value less than or equal to "+strconv.Itoa(max))
	}
	return n
}

// Count checks the number of members of a list.
func (v *Validator) Count(name string, n, max int) bool {
	if n > max {
		s := strconv.Itoa(n) + " members"
		v.add(&s, lowerFirst(name), "have length less than or equal to "+strconv.Itoa(max))
		return false
	}
	return true
}

// Add records a free-form violation in AWS's grammar.
func (v *Validator) Add(name, value, constraint string) {
	v.add(&value, lowerFirst(name), constraint)
}

// OK reports whether no violation was recorded.
func (v *Validator) OK() bool { return v.n == 0 }

// Err returns the ValidationError for the recorded violations, or nil.
func (v *Validator) Err() error {
	switch v.n {
	case 0:
		return nil
	case 1:
		return NewError(CodeValidationError, "1 validation error detected: "+v.errs[0])
	}
	msg := strconv.Itoa(v.n) + " validation errors detected: " + strings.Join(v.errs, "; ")
	if more := v.n - len(v.errs); more > 0 {
		msg += "; and " + strconv.Itoa(more) + " more"
	}
	return NewError(CodeValidationError, msg)
}
