package brokersetup

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/iam"
)

// RevokePolicyName is the name AWS gives the inline policy of its "revoke
// active sessions" action; a role has at most one, replaced on each
// revocation.
const RevokePolicyName = "AWSRevokeOlderSessions"

// RevokeTime is the cut-off a revocation asked at now uses: now rounded up
// to the next whole second. aws:TokenIssueTime has whole seconds and the
// policy compares with DateLessThan, so a session issued earlier in the
// same second as the revocation is revoked too (as is one issued later in
// that second: at most one second of new sessions, rather than an old one
// that survives).
func RevokeTime(now time.Time) time.Time {
	t := now.UTC().Truncate(time.Second)
	if t.Before(now) {
		t = t.Add(time.Second)
	}
	return t
}

// RevokePolicy is AWS's documented AWSRevokeOlderSessions policy: deny
// every action on every resource to sessions whose token was issued before
// t.
func RevokePolicy(t time.Time) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],` +
		`"Condition":{"DateLessThan":{"aws:TokenIssueTime":"` + t.UTC().Format(time.RFC3339) + `"}}}]}`
}

// RevokedBefore reads the cut-off of an AWSRevokeOlderSessions policy
// document (as GetRolePolicy returns it: URL-encoded, or plain JSON), so
// that a revocation never moves an existing cut-off back. ok is false for a
// document of another shape.
func RevokedBefore(doc string) (t time.Time, ok bool) {
	if strings.HasPrefix(doc, "%7B") || strings.HasPrefix(doc, "%7b") {
		d, err := url.PathUnescape(doc)
		if err != nil {
			return time.Time{}, false
		}
		doc = d
	}
	var p struct {
		Statement []struct {
			Effect    string
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil || len(p.Statement) != 1 || p.Statement[0].Effect != "Deny" {
		return time.Time{}, false
	}
	v, _ := p.Statement[0].Condition["DateLessThan"]["aws:TokenIssueTime"].(string)
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// RevokeNote is what revoke-older says about the sessions it cannot reach.
func RevokeNote(role string, t time.Time) string {
	return fmt.Sprintf("AWS now denies every request of a session of %s whose token was issued before %s. "+
		"This is the only way to stop AWS sessions already issued: otherwise they live until they expire (at most the role's maximum session duration). "+
		"New sessions keyless brokers from now on are not affected; to stop those too, remove the keyless role's %q tag, tighten its trust policy or delete it.",
		role, t.UTC().Format(time.RFC3339), iam.TagUpstreamRoleARN)
}
