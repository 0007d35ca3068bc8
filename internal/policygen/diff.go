package policygen

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/keylessci/keyless/internal/policy"
)

// GrantedPolicy is one permission policy a role holds, compared by Diff
// with what the role's sessions used.
type GrantedPolicy struct {
	// Name says where the document comes from: a file name, "inline NAME"
	// or a managed policy's ARN.
	Name     string `json:"name"`
	Document string `json:"-"`
}

// ErrNotAPolicy is returned by ReadGrantedPolicies for JSON that is
// neither a policy document nor an IAM API answer holding one.
var ErrNotAPolicy = errors.New("not a policy document, nor aws iam get-role-policy or get-policy-version output")

// ReadGrantedPolicies reads the file given to --diff: a policy document
// ({"Statement":...}), the output of `aws iam get-role-policy`
// ({"RoleName","PolicyName","PolicyDocument"}) or of `aws iam
// get-policy-version` ({"PolicyVersion":{"Document",...}}). The document
// may be a JSON object (the AWS CLI decodes it) or a string, URL-encoded
// as the IAM API returns it or not. It must be a valid identity policy
// (keyless's parser; size quota not applied).
func ReadGrantedPolicies(name string, b []byte) ([]GrantedPolicy, error) {
	gs, err := readGranted(name, b)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		if _, err := policy.ParseWithOptions(g.Document, policy.KindIdentity, policy.Options{MaxSize: -1}); err != nil {
			return nil, fmt.Errorf("%s: %w", g.Name, err)
		}
	}
	return gs, nil
}

func readGranted(name string, b []byte) ([]GrantedPolicy, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var raw json.RawMessage
	switch {
	case top["Statement"] != nil:
		return []GrantedPolicy{{Name: name, Document: string(bytes.TrimSpace(b))}}, nil
	case top["PolicyDocument"] != nil:
		raw = top["PolicyDocument"]
		var pn string
		if json.Unmarshal(top["PolicyName"], &pn) == nil && pn != "" {
			name += " (inline " + pn + ")"
		}
	case top["PolicyVersion"] != nil:
		var pv struct {
			Document  json.RawMessage
			VersionID string `json:"VersionId"`
		}
		if err := json.Unmarshal(top["PolicyVersion"], &pv); err != nil {
			return nil, fmt.Errorf("%s: PolicyVersion: %w", name, err)
		}
		if pv.Document == nil {
			return nil, fmt.Errorf("%s: PolicyVersion has no Document: %w", name, ErrNotAPolicy)
		}
		raw = pv.Document
		if pv.VersionID != "" {
			name += " (" + pv.VersionID + ")"
		}
	default:
		return nil, fmt.Errorf("%s: %w", name, ErrNotAPolicy)
	}
	doc, err := documentText(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return []GrantedPolicy{{Name: name, Document: doc}}, nil
}

// documentText is a policy document given as an object or as a string.
func documentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		return string(raw), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("the policy document is neither an object nor a string: %w", ErrNotAPolicy)
	}
	return DecodePolicyDocument(s)
}

// DecodePolicyDocument returns a policy document as IAM's API returns it
// (URL-encoded) in clear; a document already in clear is returned as is.
func DecodePolicyDocument(s string) (string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") {
		return t, nil
	}
	d, err := url.PathUnescape(t)
	if err != nil {
		return "", fmt.Errorf("the policy document is not JSON nor URL-encoded JSON: %w", err)
	}
	return strings.TrimSpace(d), nil
}

// DiffOptions tune Diff.
type DiffOptions struct {
	// Catalog lists IAM's actions (IAM's spelling) of one service prefix
	// ("s3"), or of every service for "". Nil: the IAM action list built
	// into this package. It is how wildcard grants are expanded.
	Catalog func(service string) []string
	// ListUnusedUpTo is how many unused actions of a wildcard grant are
	// listed by name; beyond it only their number is given. 0 means 25.
	ListUnusedUpTo int
}

// PolicyDiff compares what a role (or one binding of it) was granted with
// what its sessions did in the window.
type PolicyDiff struct {
	Role    string   `json:"role"`
	Binding *string  `json:"binding"`
	Granted []string `json:"granted"` // the policies compared, by name
	// Unused are the grants no call used in the window, one entry per
	// Action element value of an Allow statement. A wildcard grant is kept
	// as written, with how many IAM actions it covers, those used, and the
	// unused ones by name when few (see DiffOptions.ListUnusedUpTo).
	Unused []UnusedGrant `json:"unused"`
	// NotGranted are actions used successfully in the window that the
	// granted policies do not allow on the resource used (the trail
	// predates the policy, or another policy granted them).
	NotGranted []DiffCall `json:"notGranted"`
	// Denied are calls the trail shows denied (AccessDenied and the like):
	// the role would need them. Listed apart; never counted as used.
	Denied []DiffCall `json:"denied"`
	// Used are the actions used, read-only, write and failed kept apart.
	Used UsedSummary `json:"used"`
	// Notes say what the comparison could not do (NotAction statements,
	// actions unknown to the IAM list).
	Notes []string `json:"notes,omitempty"`
}

// UnusedGrant is one Action value of an Allow statement that no call used.
type UnusedGrant struct {
	Grant     string `json:"grant"`     // as written: "s3:GetObject", "s3:Get*"
	Policy    string `json:"policy"`    // GrantedPolicy.Name
	Statement string `json:"statement"` // the Sid, or "#N" (1-based)
	// Actions is how many IAM actions the grant covers (1 for a plain
	// action); Unused how many of them were not used.
	Actions       int      `json:"actions"`
	Unused        int      `json:"unused"`
	Used          []string `json:"used,omitempty"`          // of a wildcard's actions, the ones used
	UnusedActions []string `json:"unusedActions,omitempty"` // by name, when at most ListUnusedUpTo
}

// DiffCall is an action on a resource, with a count.
type DiffCall struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Count    int64  `json:"count"`
}

// UsedSummary lists used actions by kind.
type UsedSummary struct {
	ReadOnly []ActionCount `json:"readOnly"`
	Write    []ActionCount `json:"write"`
	Failed   []ActionCount `json:"failed"` // calls that failed for another reason than a denial
}

// ActionCount is an action and its number of calls.
type ActionCount struct {
	Action string `json:"action"`
	Count  int64  `json:"count"`
}

// Diff compares granted with what one generated policy's sessions used
// (used.Actions: successful and failed calls) and with the calls of the
// same role and binding among denied. Granted documents are parsed with
// keyless's policy parser; which actions a grant covers and whether a used
// call is allowed are decided by keyless's policy engine, so Diff agrees
// with what keyless enforces. A call a service made with the role's
// credentials (ActionUse.ViaService) is evaluated with kms:ViaService set
// to <service>.<region>.amazonaws.com, the region taken from the resource
// ARN.
func Diff(granted []GrantedPolicy, used RolePolicy, denied []DeniedCall, opts DiffOptions) (*PolicyDiff, error) {
	if opts.Catalog == nil {
		opts.Catalog = catalogActions
	}
	if opts.ListUnusedUpTo == 0 {
		opts.ListUnusedUpTo = 25
	}
	d := &PolicyDiff{Role: used.Role, Binding: used.Binding, Granted: []string{}, Unused: []UnusedGrant{}, NotGranted: []DiffCall{}, Denied: []DiffCall{},
		Used: UsedSummary{ReadOnly: []ActionCount{}, Write: []ActionCount{}, Failed: []ActionCount{}}}
	set := &policy.PolicySet{}
	for _, g := range granted {
		p, err := policy.ParseWithOptions(g.Document, policy.KindIdentity, policy.Options{MaxSize: -1})
		if err != nil {
			return nil, fmt.Errorf("policygen: %s: %w", g.Name, err)
		}
		set.Identity = append(set.Identity, p)
		d.Granted = append(d.Granted, g.Name)
	}

	usedNames := map[string]string{} // lower case -> as used
	for _, u := range used.Actions {
		lc := strings.ToLower(u.Action)
		if u.Count > 0 {
			usedNames[lc] = u.Action
			if u.ReadOnly {
				d.Used.ReadOnly = addCount(d.Used.ReadOnly, u.Action, u.Count)
			} else {
				d.Used.Write = addCount(d.Used.Write, u.Action, u.Count)
			}
		}
		if u.Failed > 0 {
			d.Used.Failed = addCount(d.Used.Failed, u.Action, u.Failed)
		}
		if u.Count == 0 {
			continue
		}
		resources := u.Resources
		if len(resources) == 0 {
			resources = []string{"*"}
		}
		for _, r := range resources {
			req := &policy.Request{Action: u.Action, Resource: r}
			if via := viaServiceKey(u.ViaService, r); via != "" {
				req.Context = policy.NewContext(1)
				req.Context.Set("kms:ViaService", via)
			}
			if set.Evaluate(req) != policy.Allowed {
				d.NotGranted = append(d.NotGranted, DiffCall{Action: u.Action, Resource: r, Count: u.Count})
			}
		}
	}
	for _, dc := range denied {
		if dc.Role == used.Role && sameBinding(dc.Binding, used.Binding) {
			d.Denied = append(d.Denied, DiffCall{Action: dc.Action, Resource: dc.Resource, Count: dc.Count})
		}
	}

	m := &actionMatcher{catalog: opts.Catalog}
	for gi, g := range granted {
		p := set.Identity[gi]
		for si, st := range p.Statements {
			if st.Effect != policy.Allow {
				continue
			}
			sid := st.Sid
			if sid == "" {
				sid = "#" + strconv.Itoa(si+1)
			}
			if len(st.NotAction) > 0 {
				d.Notes = append(d.Notes, fmt.Sprintf("%s statement %s allows every action but %s (NotAction): not expanded", g.Name, sid, strings.Join(st.NotAction, ", ")))
				continue
			}
			for _, a := range st.Action {
				ug, note := m.unused(a, usedNames, opts.ListUnusedUpTo)
				if note != "" {
					d.Notes = append(d.Notes, fmt.Sprintf("%s statement %s: %s", g.Name, sid, note))
				}
				if ug != nil {
					ug.Policy, ug.Statement = g.Name, sid
					d.Unused = append(d.Unused, *ug)
				}
			}
		}
	}
	sortCalls := func(cs []DiffCall) {
		slices.SortFunc(cs, func(a, b DiffCall) int {
			return cmp.Or(strings.Compare(a.Action, b.Action), strings.Compare(a.Resource, b.Resource))
		})
	}
	sortCalls(d.NotGranted)
	sortCalls(d.Denied)
	for _, l := range []*[]ActionCount{&d.Used.ReadOnly, &d.Used.Write, &d.Used.Failed} {
		slices.SortFunc(*l, func(a, b ActionCount) int { return strings.Compare(a.Action, b.Action) })
	}
	return d, nil
}

// catalogIndex is the IAM action list by service prefix (and every action
// under ""), sorted; built once from the action map's tables.
var catalogIndex = sync.OnceValue(func() map[string][]string {
	idx := map[string][]string{}
	for _, ai := range theTables().actions {
		prefix, _, _ := strings.Cut(ai.Name, ":")
		prefix = strings.ToLower(prefix)
		idx[prefix] = append(idx[prefix], ai.Name)
		idx[""] = append(idx[""], ai.Name)
	}
	for _, l := range idx {
		slices.Sort(l)
	}
	return idx
})

// catalogActions lists the IAM actions of a service prefix, or all of
// them for "". The slice is shared: do not modify it.
func catalogActions(service string) []string {
	return catalogIndex()[strings.ToLower(service)]
}

func sameBinding(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// viaServiceKey is the kms:ViaService value of a call service made (a
// service principal, "s3.amazonaws.com") on resource (an ARN with a
// region); "" when it cannot be known ("AWS Internal", no region).
func viaServiceKey(service, resource string) string {
	name, ok := strings.CutSuffix(service, ".amazonaws.com")
	if !ok || name == "" {
		return ""
	}
	parts := strings.SplitN(resource, ":", 5)
	if len(parts) < 5 || parts[3] == "" {
		return ""
	}
	return name + "." + parts[3] + ".amazonaws.com"
}

func addCount(l []ActionCount, action string, n int64) []ActionCount {
	for i := range l {
		if strings.EqualFold(l[i].Action, action) {
			l[i].Count += n
			return l
		}
	}
	return append(l, ActionCount{Action: action, Count: n})
}

// actionMatcher expands Action patterns against the IAM action list with
// keyless's policy engine (a one-statement policy per pattern), so a
// pattern covers exactly the actions keyless would allow with it.
type actionMatcher struct {
	catalog func(service string) []string
}

// unused returns the grant's entry when some action it covers was not
// used (nil when all were), and a note when the pattern covers nothing
// IAM knows.
func (m *actionMatcher) unused(pattern string, used map[string]string, listUpTo int) (*UnusedGrant, string) {
	if !strings.ContainsAny(pattern, "*?") {
		if _, ok := used[strings.ToLower(pattern)]; ok {
			return nil, ""
		}
		return &UnusedGrant{Grant: pattern, Actions: 1, Unused: 1}, ""
	}
	service, _, _ := strings.Cut(pattern, ":")
	service = strings.ToLower(service) // IAM prefixes are lower case; matching ignores case
	if strings.ContainsAny(service, "*?") {
		service = ""
	}
	doc, err := json.Marshal(map[string]any{"Version": policy.Version2012,
		"Statement": []any{map[string]any{"Effect": "Allow", "Action": pattern, "Resource": "*"}}})
	if err != nil {
		return nil, err.Error()
	}
	p, err := policy.ParseWithOptions(string(doc), policy.KindIdentity, policy.Options{MaxSize: -1})
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", pattern, err)
	}
	set := &policy.PolicySet{Identity: []*policy.Policy{p}}
	ug := &UnusedGrant{Grant: pattern}
	var unused []string
	for _, a := range m.catalog(service) {
		if set.Evaluate(&policy.Request{Action: a, Resource: "*"}) != policy.Allowed {
			continue
		}
		ug.Actions++
		if u, ok := used[strings.ToLower(a)]; ok {
			ug.Used = append(ug.Used, u)
		} else {
			unused = append(unused, a)
		}
	}
	// Used actions the list does not know still count as covered.
	for lc, u := range used {
		if set.Evaluate(&policy.Request{Action: u, Resource: "*"}) == policy.Allowed && !slices.ContainsFunc(ug.Used, func(x string) bool { return strings.ToLower(x) == lc }) {
			ug.Actions++
			ug.Used = append(ug.Used, u)
		}
	}
	slices.Sort(ug.Used)
	if ug.Actions == 0 {
		return nil, fmt.Sprintf("%s covers no action of the IAM action list", pattern)
	}
	ug.Unused = len(unused)
	if ug.Unused == 0 {
		return nil, ""
	}
	if len(unused) <= listUpTo {
		slices.Sort(unused)
		ug.UnusedActions = unused
	}
	return ug, ""
}
