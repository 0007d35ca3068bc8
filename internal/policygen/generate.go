package policygen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/audit"
)

// Options tune Generate.
type Options struct {
	// Scan is passed to audit.Scan; Start and End also filter events by
	// eventTime (inclusive start, exclusive end).
	Scan audit.ScanOptions
	// Role limits the output to one role, by name or ARN; "" = every role.
	Role string
	// By is "role" (the default: one policy per role), "subject" (one per
	// OIDC subject of the exchange) or "claim:NAME" (one per value of the
	// claim NAME keyless recorded at the exchange).
	By string
	// IncludeDenied adds the actions of denied calls to the policies (they
	// are always listed in Report.Denied).
	IncludeDenied bool
	// CollapseAfter: more than this many ARNs of one action under one path
	// prefix collapse to prefix/*. 0 means DefaultCollapseAfter; a negative
	// value never collapses.
	CollapseAfter int

	// keepCalls keeps in each RolePolicy the concrete calls it must allow
	// (tests evaluate the policy against them).
	keepCalls bool
}

// DefaultCollapseAfter is Options.CollapseAfter's default.
const DefaultCollapseAfter = 10

// ErrBadOption reports an Options value Generate cannot use.
var ErrBadOption = errors.New("policygen: bad option")

// Report is Generate's result.
type Report struct {
	Policies []RolePolicy `json:"policies"`
	// Excluded counts the events that do not widen any policy, by reason
	// (see the Excluded* constants).
	Excluded map[string]int64 `json:"excluded"`
	// Denied lists the calls refused for lack of permission: used but
	// denied. They are in the policies only with Options.IncludeDenied.
	Denied []DeniedCall `json:"denied"`
	// Unknown lists the eventSource/eventName pairs the action map does not
	// know (counted in Excluded[ExcludedUnknownAction]).
	Unknown []UnknownCall `json:"unknown,omitempty"`
	Stats   Stats         `json:"stats"`
}

// Reasons an event is excluded (Report.Excluded keys).
const (
	ExcludedOutsideWindow     = "outsideWindow"      // eventTime outside Start/End
	ExcludedServiceEvent      = "awsServiceEvent"    // eventType AwsServiceEvent
	ExcludedConsoleSignIn     = "consoleSignIn"      // eventType AwsConsoleSignIn
	ExcludedInsight           = "insight"            // eventType AwsCloudTrailInsight (or an Insights record)
	ExcludedOtherEventType    = "otherEventType"     // any eventType but AwsApiCall (AwsVpceEvent ...)
	ExcludedServiceIdentity   = "awsServiceIdentity" // userIdentity.type AWSService: a service's own identity
	ExcludedFailedExchange    = "failedExchange"     // AssumeRoleWithWebIdentity that failed
	ExcludedOtherPrincipal    = "otherPrincipal"     // a principal that is not a role session (IAM user, root ...)
	ExcludedServiceLinkedRole = "serviceLinkedRole"  // a session of a service-linked role (its policy is AWS's)
	ExcludedOtherRole         = "otherRole"          // a session of another role than Options.Role
	ExcludedUnknownAction     = "unknownAction"      // a call the action map does not know
	ExcludedNoPermission      = "noPermission"       // a call that needs no IAM permission (sts:GetCallerIdentity ...)
	ExcludedMalformed         = "malformed"          // a record without eventSource/eventName
)

// RolePolicy is the policy of one role, or of one binding of a role.
type RolePolicy struct {
	Role string `json:"role"` // role ARN
	// Binding is null for --by role; otherwise the subject or the claim's
	// value, and null for the calls of sessions not linked to an exchange.
	Binding *string `json:"binding"`
	// Policy is the identity policy document (Version 2012-10-17). When it
	// is larger than a managed policy may be (6,144 characters, the target:
	// generated policies are meant to be attached as managed policies),
	// Policies holds it split in documents that each fit, and Policy still
	// holds the whole.
	Policy   json.RawMessage   `json:"policy"`
	Policies []json.RawMessage `json:"split,omitempty"`
	Actions  []ActionUse       `json:"actions"`
	Notes    []string          `json:"notes,omitempty"`

	calls []call // with Options.keepCalls
}

// call is one (action, concrete resource) a policy must allow, with the
// kms:ViaService value of a forward access session's KMS call.
type call struct{ action, resource, viaService string }

// ActionUse is how one action was used, as granted by the policy.
type ActionUse struct {
	Action string `json:"action"`
	// Resources are the ARNs granted (after collapsing); "*" when the
	// action has no resource-level permission or the ARN could not be
	// known (Note says which).
	Resources []string `json:"resources"`
	// ReadOnly is from the events' readOnly field (all of the calls were
	// read-only), else from the action's name.
	ReadOnly bool  `json:"readOnly"`
	Count    int64 `json:"count"`            // successful calls
	Failed   int64 `json:"failed,omitempty"` // calls that failed for another reason than a denial
	Denied   int64 `json:"denied,omitempty"` // denied calls, counted here with Options.IncludeDenied
	// ViaService names the service that made the calls with the role's
	// credentials (forward access sessions): "secretsmanager.amazonaws.com",
	// or "AWS Internal".
	ViaService string    `json:"viaService,omitempty"`
	Events     []string  `json:"events"` // the eventSource:eventName pairs that needed it
	FirstSeen  time.Time `json:"firstSeen"`
	LastSeen   time.Time `json:"lastSeen"`
	Note       string    `json:"note,omitempty"`
}

// DeniedCall is a call refused for lack of permission.
type DeniedCall struct {
	Role      string    `json:"role"`
	Binding   *string   `json:"binding"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource"`
	Event     string    `json:"event"` // eventSource:eventName
	ErrorCode string    `json:"errorCode"`
	Count     int64     `json:"count"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
}

// UnknownCall is an eventSource/eventName pair the action map does not know.
type UnknownCall struct {
	EventSource string `json:"eventSource"`
	EventName   string `json:"eventName"`
	Count       int64  `json:"count"`
}

// Stats are the totals of a generation. Every event scanned is counted in
// exactly one of Used, Failed, Denied, Exchanges and the exclusions.
type Stats struct {
	Events    int64 `json:"events"`    // events scanned
	Used      int64 `json:"used"`      // successful calls that went into a policy
	Failed    int64 `json:"failed"`    // calls that failed for another reason than a denial (in the policies)
	Denied    int64 `json:"denied"`    // denied calls
	Exchanges int64 `json:"exchanges"` // successful AssumeRoleWithWebIdentity events
	// Sessions are the role sessions that made calls (by access key id, or
	// by session ARN for calls without one); Linked of them were linked to
	// an exchange in the window, Unlinked were not.
	Sessions         int64 `json:"sessions"`
	SessionsLinked   int64 `json:"sessionsLinked"`
	SessionsUnlinked int64 `json:"sessionsUnlinked"`
	// CallsUnlinked are the calls (successful, failed, denied) of unlinked
	// sessions, attributed to the role only.
	CallsUnlinked int64 `json:"callsUnlinked"`
	Files         int   `json:"files"`
	Bytes         int64 `json:"bytes"`
	BadFiles      int   `json:"badFiles,omitempty"`
	BadRecords    int64 `json:"badRecords,omitempty"`
	Duplicates    int64 `json:"duplicates,omitempty"`
}

// byMode is Options.By parsed.
type byMode struct {
	kind  byte // 'r' role, 's' subject, 'c' claim
	claim string
}

func parseBy(s string) (byMode, error) {
	switch {
	case s == "" || s == "role":
		return byMode{kind: 'r'}, nil
	case s == "subject":
		return byMode{kind: 's'}, nil
	case strings.HasPrefix(s, "claim:") && len(s) > len("claim:"):
		return byMode{kind: 'c', claim: s[len("claim:"):]}, nil
	}
	return byMode{}, fmt.Errorf("%w: --by %q: want role, subject or claim:NAME", ErrBadOption, s)
}

// Generate reads the events of paths (as audit.Scan does) and returns the
// least-privilege policies they show: one per role, or per binding with
// Options.By.
func Generate(ctx context.Context, paths []string, opts Options) (*Report, error) {
	by, err := parseBy(opts.By)
	if err != nil {
		return nil, err
	}
	if opts.CollapseAfter == 0 {
		opts.CollapseAfter = DefaultCollapseAfter
	}
	workers := opts.Scan.Workers
	if workers <= 0 {
		workers = defaultWorkers()
	}
	opts.Scan.Workers = workers
	f := newFilter(opts, by)
	states := make([]*workerState, workers)
	for i := range states {
		states[i] = newWorkerState(f)
	}
	st, err := audit.Scan(ctx, paths, opts.Scan, func(w int, batch []audit.RawRecord) error {
		s := states[w]
		for i := range batch {
			s.record(batch[i].Data)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	merged := mergeStates(states)
	rep := resolve(merged, opts, by)
	rep.Stats.Files = st.Files
	rep.Stats.Bytes = st.Bytes
	rep.Stats.BadFiles = st.BadFiles
	rep.Stats.BadRecords = st.BadRecords
	rep.Stats.Duplicates = st.Duplicates
	return rep, nil
}
