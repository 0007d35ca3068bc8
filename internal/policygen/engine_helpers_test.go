package policygen

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/policy"
)

const (
	tAcct   = "111122223333"
	tRole   = "arn:aws:iam::111122223333:role/ci/deploy"
	tRegion = "eu-west-1"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// ev is an event being built for a synthetic trail.
type ev map[string]any

// webExchange is a keyless-shaped AssumeRoleWithWebIdentity event.
func webExchange(at time.Time, role, sub, repo, key, session string) ev {
	roleName := role[strings.LastIndexByte(role, '/')+1:]
	return ev{
		"eventVersion": "1.11",
		"userIdentity": map[string]any{"type": "WebIdentityUser", "userName": sub,
			"principalId":      "arn:aws:iam::" + tAcct + ":oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:" + sub,
			"identityProvider": "arn:aws:iam::" + tAcct + ":oidc-provider/token.actions.githubusercontent.com"},
		"eventTime": at.Format(time.RFC3339), "eventSource": "sts.amazonaws.com", "eventName": "AssumeRoleWithWebIdentity",
		"awsRegion":         tRegion,
		"requestParameters": map[string]any{"roleArn": role, "roleSessionName": session},
		"responseElements": map[string]any{
			"credentials":                 map[string]any{"accessKeyId": key, "expiration": "Mar 1, 2026, 11:00:00 AM"},
			"assumedRoleUser":             map[string]any{"arn": "arn:aws:sts::" + tAcct + ":assumed-role/" + roleName + "/" + session},
			"subjectFromWebIdentityToken": sub,
		},
		"additionalEventData": map[string]any{"webIdentityTokenClaims": map[string]any{
			"sub": sub, "repository": repo, "run_attempt": "1", "aud": "sts.amazonaws.com"}},
		"readOnly":           true,
		"resources":          []any{map[string]any{"ARN": role, "accountId": tAcct, "type": "AWS::IAM::Role"}},
		"eventType":          "AwsApiCall",
		"recipientAccountId": tAcct,
	}
}

// roleCall is an API call made with a role session's credentials.
func roleCall(at time.Time, role, session, key, source, name string, req map[string]any, readOnly bool) ev {
	roleName := role[strings.LastIndexByte(role, '/')+1:]
	id := map[string]any{
		"type":        "AssumedRole",
		"principalId": "AROAEXAMPLE:" + session,
		"arn":         "arn:aws:sts::" + tAcct + ":assumed-role/" + roleName + "/" + session,
		"accountId":   tAcct,
		"sessionContext": map[string]any{"sessionIssuer": map[string]any{
			"type": "Role", "arn": role, "accountId": tAcct, "userName": roleName}},
	}
	if key != "" {
		id["accessKeyId"] = key
	}
	e := ev{
		"eventVersion": "1.11", "userIdentity": id, "eventTime": at.Format(time.RFC3339),
		"eventSource": source, "eventName": name, "awsRegion": tRegion,
		"requestParameters": req, "responseElements": nil,
		"readOnly": readOnly, "eventType": "AwsApiCall", "recipientAccountId": tAcct,
	}
	return e
}

func (e ev) with(k string, v any) ev { e[k] = v; return e }

// via marks a call as made by a service with the session's credentials.
func (e ev) via(service string) ev {
	e["userIdentity"].(map[string]any)["invokedBy"] = service
	return e
}

// writeTrail writes events as NDJSON in a new file and returns its path.
func writeTrail(t testing.TB, evs ...ev) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range evs {
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	p := filepath.Join(t.TempDir(), "trail.ndjson")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func generate(t testing.TB, paths []string, opts Options) *Report {
	t.Helper()
	opts.keepCalls = true
	rep, err := Generate(context.Background(), paths, opts)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return rep
}

// findPolicy returns the policy of role and binding ("" with bound false:
// the binding-less one).
func findPolicy(t testing.TB, rep *Report, role string, binding *string) *RolePolicy {
	t.Helper()
	for i := range rep.Policies {
		p := &rep.Policies[i]
		if p.Role == role && ((p.Binding == nil && binding == nil) || (p.Binding != nil && binding != nil && *p.Binding == *binding)) {
			return p
		}
	}
	t.Fatalf("no policy for %s binding %v; have %s", role, deref(binding), policyNames(rep))
	return nil
}

func policyNames(rep *Report) string {
	var s []string
	for _, p := range rep.Policies {
		s = append(s, p.Role+"|"+deref(p.Binding))
	}
	return strings.Join(s, ", ")
}

func strp(s string) *string { return &s }

// actionSet returns "action" or "action via SERVICE" of each ActionUse.
func actionSet(p *RolePolicy) []string {
	var out []string
	for _, a := range p.Actions {
		s := a.Action
		if a.ViaService != "" {
			s += " via " + a.ViaService
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// parsed parses a generated document as keyless's policy engine does.
func parsed(t testing.TB, doc json.RawMessage, limit int) *policy.Policy {
	t.Helper()
	p, err := policy.ParseWithOptions(string(doc), policy.KindIdentity, policy.Options{MaxSize: limit, RequireVersion2012: true})
	if err != nil {
		t.Fatalf("policy.Parse: %v\n%s", err, doc)
	}
	return p
}

// policySet is the identity policy set of a RolePolicy: its document, or
// its split parts (each within the managed policy limit).
func policySet(t testing.TB, rp *RolePolicy) *policy.PolicySet {
	t.Helper()
	if len(rp.Policies) == 0 {
		return &policy.PolicySet{Identity: []*policy.Policy{parsed(t, rp.Policy, 0)}}
	}
	ps := &policy.PolicySet{}
	for _, d := range rp.Policies {
		ps.Identity = append(ps.Identity, parsed(t, d, 0))
	}
	parsed(t, rp.Policy, -1) // the whole is valid too
	return ps
}

func request(rp *RolePolicy, action, resource, viaService string) *policy.Request {
	sess := "arn:aws:sts::" + tAcct + ":assumed-role/" + roleName(rp.Role) + "/s"
	req := &policy.Request{Action: action, Resource: resource,
		Principal: policy.Principal{Type: policy.PrincipalAWS, ID: sess, ParentARN: rp.Role}}
	if viaService != "" {
		req.Context = policy.NewContext(1)
		req.Context.Set("kms:ViaService", viaService)
	}
	return req
}

// neighbourActions are, per service, actions a CI policy generated from
// ordinary calls never grants: one of them not used is "another action of
// the same service".
var neighbourActions = map[string][]string{
	"s3":             {"s3:DeleteBucket", "s3:PutBucketPolicy"},
	"ec2":            {"ec2:TerminateInstances", "ec2:CreateVpc"},
	"ssm":            {"ssm:DeleteParameter", "ssm:SendCommand"},
	"ecr":            {"ecr:DeleteRepository"},
	"dynamodb":       {"dynamodb:DeleteTable"},
	"lambda":         {"lambda:DeleteFunction"},
	"kms":            {"kms:ScheduleKeyDeletion"},
	"secretsmanager": {"secretsmanager:DeleteSecret"},
	"sqs":            {"sqs:DeleteQueue"},
	"sns":            {"sns:DeleteTopic"},
	"iam":            {"iam:CreateUser"},
	"sts":            {"sts:AssumeRole"},
	"logs":           {"logs:DeleteLogGroup"},
	"cloudformation": {"cloudformation:DeleteStack"},
	"organizations":  {"organizations:DeleteOrganization"},
}

// neighbourResources are ARNs next to r that a least-privilege grant of r
// must not cover: another bucket, another object prefix, another name.
func neighbourResources(r string) []string {
	if r == "*" || strings.HasSuffix(r, ":*") {
		return nil
	}
	if b, ok := strings.CutPrefix(r, "arn:aws:s3:::"); ok {
		bucket, key, isObj := strings.Cut(b, "/")
		out := []string{"arn:aws:s3:::" + bucket + "-other" + strings.TrimPrefix(b, bucket)}
		if isObj {
			out = append(out, "arn:aws:s3:::"+bucket+"/zz-other-prefix/"+strings.TrimSuffix(key, "*")+"x")
		}
		return out
	}
	base := strings.TrimSuffix(r, "/*")
	base = strings.TrimSuffix(base, "-??????")
	return []string{base + "-other"}
}

// checkAllowsInputsDeniesNeighbours evaluates every policy of rep with
// keyless's policy engine: each call of its input is allowed; a neighbour
// resource of each and another action of the same service are not.
func checkAllowsInputsDeniesNeighbours(t *testing.T, rep *Report) {
	t.Helper()
	for i := range rep.Policies {
		rp := &rep.Policies[i]
		ps := policySet(t, rp)
		if len(rp.calls) == 0 {
			t.Errorf("%s: no calls kept", rp.Role)
		}
		granted := map[string]bool{}
		for _, a := range rp.Actions {
			granted[strings.ToLower(a.Action)] = true
		}
		for _, c := range rp.calls {
			if d := ps.Evaluate(request(rp, c.action, c.resource, c.viaService)); d != policy.Allowed {
				t.Errorf("%s|%s: %s on %s (via %q) is %v, want allowed\n%s", rp.Role, deref(rp.Binding), c.action, c.resource, c.viaService, d, rp.Policy)
			}
			for _, n := range neighbourResources(c.resource) {
				if slices.ContainsFunc(rp.calls, func(o call) bool { return o.action == c.action && o.resource == n }) {
					continue
				}
				if d := ps.Evaluate(request(rp, c.action, n, c.viaService)); d == policy.Allowed {
					t.Errorf("%s|%s: neighbour %s on %s is allowed\n%s", rp.Role, deref(rp.Binding), c.action, n, rp.Policy)
				}
			}
			svc, _, _ := strings.Cut(c.action, ":")
			cands := neighbourActions[svc]
			if len(cands) == 0 {
				t.Errorf("no neighbour action for service %s: add one to neighbourActions", svc)
			}
			for _, na := range cands {
				if granted[strings.ToLower(na)] {
					continue
				}
				if d := ps.Evaluate(request(rp, na, c.resource, c.viaService)); d == policy.Allowed {
					t.Errorf("%s|%s: another action %s on %s is allowed\n%s", rp.Role, deref(rp.Binding), na, c.resource, rp.Policy)
				}
				break
			}
			if c.viaService != "" {
				// The FAS grant holds only through that service.
				if d := ps.Evaluate(request(rp, c.action, c.resource, "")); d == policy.Allowed &&
					!slices.ContainsFunc(rp.calls, func(o call) bool { return o.action == c.action && o.resource == c.resource && o.viaService == "" }) {
					t.Errorf("%s: %s on %s allowed without kms:ViaService", rp.Role, c.action, c.resource)
				}
			}
		}
	}
}
