package sts

import (
	"fmt"
	"strings"

	"github.com/keylessci/keyless/internal/policy"
)

// describeDenial turns a trust-policy trace into one paragraph a CI user
// can act on: which statement could have allowed the token and which
// condition did not hold, with the expected and the actual values.
func describeDenial(tr *policy.Trace) string {
	if tr == nil {
		return ""
	}
	var parts []string
	for _, pt := range tr.Policies {
		for _, st := range pt.Statements {
			name := fmt.Sprintf("statement %d", st.Index)
			if st.Sid != "" {
				name += fmt.Sprintf(" (%s)", st.Sid)
			}
			switch {
			case st.Matched && st.Effect == policy.Deny:
				parts = append(parts, name+" explicitly denies the request")
			case st.Matched:
				// An Allow that matched: nothing to explain.
			case st.Effect == policy.Deny:
				// A Deny that did not apply: not why the request failed.
			case st.Mismatch == "condition" && st.Condition != nil:
				parts = append(parts, name+": "+describeCondition(st.Condition))
			case st.Mismatch != "":
				// The trace's detail already names the element ("principal
				// … is not named by Principal").
				detail := st.Detail
				if detail == "" {
					detail = st.Mismatch + " does not match"
				}
				parts = append(parts, name+": "+detail)
			}
		}
	}
	if len(parts) == 0 {
		return tr.Reason
	}
	return "The trust policy does not allow this token: " + strings.Join(parts, "; ") + "."
}

func describeCondition(c *policy.ConditionTrace) string {
	expected := c.Expected
	if len(c.Resolved) > 0 {
		expected = c.Resolved
	}
	if c.KeyMissing {
		return fmt.Sprintf("condition %s on %s expects %s, but the token provides no %s", c.Operator, c.Key, quoteList(expected), c.Key)
	}
	return fmt.Sprintf("condition %s on %s expects %s, but the token has %s", c.Operator, c.Key, quoteList(expected), quoteList(c.Actual))
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return "one of [" + strings.Join(q, ", ") + "]"
}
