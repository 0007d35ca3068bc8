package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// ghTrustDoc is a typical three-statement CI trust policy, laid out on
// several lines so the golden traces show real positions.
const ghTrustDoc = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "MainBranch",
      "Effect": "Allow",
      "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/app:ref:refs/heads/main"}
      }
    },
    {
      "Sid": "Releases",
      "Effect": "Allow",
      "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/app:environment:prod*"}
      }
    },
    {
      "Sid": "NoPullRequests",
      "Effect": "Deny",
      "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "*:pull_request"}}
    }
  ]
}`

type traceScenario struct {
	name string
	set  func(t *testing.T) *PolicySet
	req  Request
	ctx  []kv
	want Decision
}

func ghReq() Request {
	return Request{
		Principal: Principal{Type: PrincipalFederated, ID: ghOIDC},
		Action:    "sts:AssumeRoleWithWebIdentity",
		Resource:  roleARN,
	}
}

func trustSet(t *testing.T) *PolicySet {
	return &PolicySet{Resource: []*Policy{mustParse(t, ghTrustDoc, KindTrust)}}
}

func mustParse(t testing.TB, doc string, kind Kind) *Policy {
	t.Helper()
	p, err := Parse(doc, kind)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

func traceScenarios() []traceScenario {
	const sub, aud = "token.actions.githubusercontent.com:sub", "token.actions.githubusercontent.com:aud"
	identity := func(docs ...string) func(t *testing.T) *PolicySet {
		return func(t *testing.T) *PolicySet {
			s := &PolicySet{}
			for _, d := range docs {
				s.Identity = append(s.Identity, mustParse(t, d, KindIdentity))
			}
			return s
		}
	}
	s3req := Request{Principal: Principal{Type: PrincipalAWS, ID: sessARN, ParentARN: roleARN}, Action: "s3:PutObject", Resource: "arn:aws:s3:::artifacts/build/1.tgz"}
	return []traceScenario{
		{name: "trust-allowed", set: trustSet, req: ghReq(), ctx: []kv{c(sub, "repo:acme/app:ref:refs/heads/main"), c(aud, "sts.amazonaws.com")}, want: Allowed},
		{name: "trust-wrong-repo", set: trustSet, req: ghReq(), ctx: []kv{c(sub, "repo:acme/app-fork:ref:refs/heads/main"), c(aud, "sts.amazonaws.com")}, want: ImplicitDeny},
		{name: "trust-missing-sub", set: trustSet, req: ghReq(), ctx: []kv{c(aud, "sts.amazonaws.com")}, want: ImplicitDeny},
		{name: "trust-wrong-provider", set: trustSet, req: Request{Principal: Principal{Type: PrincipalFederated, ID: "arn:aws:iam::123456789012:oidc-provider/gitlab.com"}, Action: "sts:AssumeRoleWithWebIdentity", Resource: roleARN}, ctx: []kv{c(sub, "repo:acme/app:ref:refs/heads/main")}, want: ImplicitDeny},
		{name: "trust-pull-request-denied", set: trustSet, req: ghReq(), ctx: []kv{c(sub, "repo:acme/app:pull_request"), c(aud, "sts.amazonaws.com")}, want: ExplicitDeny},
		{name: "trust-wrong-action", set: trustSet, req: Request{Principal: Principal{Type: PrincipalFederated, ID: ghOIDC}, Action: "sts:AssumeRole", Resource: roleARN}, ctx: []kv{c(sub, "repo:acme/app:ref:refs/heads/main"), c(aud, "sts.amazonaws.com")}, want: ImplicitDeny},
		{
			name: "session-boundary-limits",
			set: func(t *testing.T) *PolicySet {
				return &PolicySet{
					Identity: []*Policy{mustParse(t, allow(`"s3:*"`, `"arn:aws:s3:::artifacts/*"`), KindIdentity)},
					Boundary: []*Policy{mustParse(t, allow(`["s3:GetObject","s3:ListBucket"]`, `"*"`), KindBoundary)},
				}
			},
			req:  s3req,
			want: ImplicitDeny,
		},
		{
			name: "session-policy-limits",
			set: func(t *testing.T) *PolicySet {
				return &PolicySet{
					Identity: []*Policy{mustParse(t, allow(`"s3:*"`, `"*"`), KindIdentity)},
					Session:  []*Policy{mustParse(t, allow(`"s3:GetObject"`, `"arn:aws:s3:::artifacts/*"`), KindSession)},
				}
			},
			req:  s3req,
			want: ImplicitDeny,
		},
		{
			name: "identity-not-action-not-resource",
			set: identity(
				`{"Version":"2012-10-17","Statement":[{"Sid":"NotIAM","Effect":"Allow","NotAction":"s3:*","Resource":"*"},{"Sid":"NotSecrets","Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::artifacts/*"}]}`,
			),
			req:  s3req,
			want: ImplicitDeny,
		},
		{
			name: "variable-unresolved",
			set: identity(
				`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:PutObject","Resource":"*","Condition":{"StringLike":{"s3:prefix":["build/${aws:PrincipalTag/team}/*","shared/*"]}}}}`,
			),
			req:  s3req,
			ctx:  []kv{c("s3:prefix", "build/blue/1.tgz")},
			want: ImplicitDeny,
		},
		{
			name: "for-all-values-fails",
			set: identity(
				`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:PutObject","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}}}`,
			),
			req:  s3req,
			ctx:  []kv{c("aws:TagKeys", "team", "owner")},
			want: ImplicitDeny,
		},
		{
			name: "multivalued-key-single-operator",
			set: identity(
				`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:PutObject","Resource":"*","Condition":{"StringEquals":{"aws:CalledVia":"cloudformation.amazonaws.com"}}}}`,
			),
			req:  s3req,
			ctx:  []kv{c("aws:CalledVia", "cloudformation.amazonaws.com", "athena.amazonaws.com")},
			want: ImplicitDeny,
		},
		{
			name: "resource-policy-account-only",
			set: func(t *testing.T) *PolicySet {
				return &PolicySet{Resource: []*Policy{mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"s3:*","Resource":"arn:aws:s3:::artifacts/*"}}`, KindResource)}}
			},
			req:  s3req,
			want: ImplicitDeny,
		},
		{
			name: "identity-allowed-with-missing-keys",
			set: identity(
				`{"Version":"2012-10-17","Statement":{"Sid":"Put","Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::artifacts/${aws:PrincipalTag/team, 'shared'}/*","Condition":{"StringEqualsIfExists":{"s3:x-amz-acl":"private"},"Bool":{"aws:SecureTransport":"true"}}}}`,
			),
			req:  Request{Principal: s3req.Principal, Action: "s3:PutObject", Resource: "arn:aws:s3:::artifacts/shared/1.tgz"},
			ctx:  []kv{c("aws:SecureTransport", "true")},
			want: Allowed,
		},
	}
}

func TestGoldenTraces(t *testing.T) {
	for _, sc := range traceScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			set := sc.set(t)
			req := sc.req
			req.Context = NewContext(len(sc.ctx))
			for _, e := range sc.ctx {
				req.Context.Set(e.k, e.v...)
			}
			d, tr := set.Explain(&req)
			if d != sc.want {
				t.Fatalf("decision %v, want %v", d, sc.want)
			}
			if fast := set.Evaluate(&req); fast != d {
				t.Fatalf("Evaluate %v != Explain %v", fast, d)
			}
			got, err := json.MarshalIndent(tr, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "traces", sc.name+".golden.json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("trace differs from %s (-want +got):\n%s", path, cmp.Diff(string(want), string(got)))
			}
			// The trace is a stable format: it must decode into the same
			// value.
			var back Trace
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("trace does not decode: %v", err)
			}
			if diff := cmp.Diff(tr, &back); diff != "" {
				t.Errorf("trace JSON round trip differs (-orig +decoded):\n%s", diff)
			}
		})
	}
}

// TestTraceContent checks the facts a golden file could silently lose.
func TestTraceContent(t *testing.T) {
	const sub = "token.actions.githubusercontent.com:sub"
	set := trustSet(t)
	req := ghReq()
	req.Context = NewContext(2)
	req.Context.Set(sub, "repo:acme/app-fork:ref:refs/heads/main")
	_, tr := set.Explain(&req)
	if len(tr.Policies) != 1 || len(tr.Policies[0].Statements) != 3 {
		t.Fatalf("trace shape: %+v", tr)
	}
	st := tr.Policies[0].Statements[0]
	if st.Matched || st.Mismatch != "condition" || st.Condition == nil {
		t.Fatalf("statement 0: %+v", st)
	}
	// The first failed condition in document order is the aud key, which is
	// missing.
	want := &ConditionTrace{
		Operator:   "StringEquals",
		Key:        "token.actions.githubusercontent.com:aud",
		Expected:   []string{"sts.amazonaws.com"},
		KeyMissing: true,
		Reason:     "key missing from the request context",
	}
	if diff := cmp.Diff(want, st.Condition); diff != "" {
		t.Errorf("condition trace (-want +got):\n%s", diff)
	}
	if st.Start != (Position{Line: 4, Column: 5}) || st.End != (Position{Line: 13, Column: 6}) {
		t.Errorf("statement 0 span = %v..%v, want 4:5..13:6", st.Start, st.End)
	}
	if diff := cmp.Diff([]string{"token.actions.githubusercontent.com:aud"}, tr.MissingContextKeys); diff != "" {
		t.Errorf("missing keys (-want +got):\n%s", diff)
	}
}
