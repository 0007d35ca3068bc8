package policy

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// ciContext is what the STS puts in the context for a GitHub Actions token:
// about ten keys.
func ciContext(sub string) *Context {
	const p = "token.actions.githubusercontent.com:"
	c := NewContext(12)
	c.Set(p+"sub", sub)
	c.Set(p+"aud", "sts.amazonaws.com")
	c.Set(p+"amr", "github")
	c.Set(p+"repository", "acme/app")
	c.Set(p+"repository_id", "123456")
	c.Set(p+"repository_owner_id", "654321")
	c.Set(p+"ref", "refs/heads/main")
	c.Set(p+"environment", "production")
	c.Set("aws:CurrentTime", "2026-10-01T12:00:00Z")
	c.Set("aws:SourceIp", "192.0.2.10")
	c.Set("aws:FederatedProvider", ghOIDC)
	return c
}

// permissionPolicy20 is a 20-statement permission policy; the request in
// the benchmark matches only its 19th statement.
func permissionPolicy20() string {
	var st []string
	for i := 0; i < 18; i++ {
		st = append(st, fmt.Sprintf(`{"Sid":"S%d","Effect":"Allow","Action":["svc%d:Get*","svc%d:List*"],"Resource":"arn:aws:svc%d:us-east-1:123456789012:thing/%d/*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"t%d"}}}`, i, i, i, i, i, i))
	}
	st = append(st,
		`{"Sid":"Artifacts","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::artifacts/${aws:PrincipalTag/team}/*","Condition":{"Bool":{"aws:SecureTransport":"true"},"IpAddress":{"aws:SourceIp":["192.0.2.0/24","198.51.100.0/24"]}}}`,
		`{"Sid":"NoDeletes","Effect":"Deny","Action":"s3:Delete*","Resource":"*"}`)
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(st, ",") + `]}`
}

func benchTrust(b testing.TB) (*PolicySet, *Request) {
	p := mustParse(b, ghTrustDoc, KindTrust)
	req := ghReq()
	req.Context = ciContext("repo:acme/app:environment:production")
	return &PolicySet{Resource: []*Policy{p}}, &req
}

func benchPermission(b testing.TB) (*PolicySet, *Request) {
	p := mustParse(b, permissionPolicy20(), KindIdentity)
	ctx := NewContext(4)
	ctx.Set("aws:PrincipalTag/team", "blue")
	ctx.Set("aws:SecureTransport", "true")
	ctx.Set("aws:SourceIp", "198.51.100.7")
	ctx.Set("aws:CurrentTime", "2026-10-01T12:00:00Z")
	return &PolicySet{Identity: []*Policy{p}}, &Request{
		Principal: Principal{Type: PrincipalAWS, ID: sessARN, ParentARN: roleARN},
		Action:    "s3:PutObject",
		Resource:  "arn:aws:s3:::artifacts/blue/build.tgz",
		Context:   ctx,
	}
}

func BenchmarkEvaluateTrustPolicy(b *testing.B) {
	set, req := benchTrust(b)
	if set.Evaluate(req) != Allowed {
		b.Fatal("benchmark request is not allowed")
	}
	b.ReportAllocs()
	for b.Loop() {
		set.Evaluate(req)
	}
}

func BenchmarkEvaluatePermissionPolicy20(b *testing.B) {
	set, req := benchPermission(b)
	if set.Evaluate(req) != Allowed {
		b.Fatal("benchmark request is not allowed")
	}
	b.ReportAllocs()
	for b.Loop() {
		set.Evaluate(req)
	}
}

func BenchmarkExplainTrustPolicy(b *testing.B) {
	set, req := benchTrust(b)
	b.ReportAllocs()
	for b.Loop() {
		set.Explain(req)
	}
}

func BenchmarkParseTrustPolicy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(ghTrustDoc, KindTrust); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildContext(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ciContext("repo:acme/app:ref:refs/heads/main")
	}
}

// TestEvaluateDoesNotAllocate guards the hot path's zero-allocation claim.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	for name, build := range map[string]func(testing.TB) (*PolicySet, *Request){"trust": benchTrust, "permission": benchPermission} {
		set, req := build(t)
		if got := testing.AllocsPerRun(200, func() { set.Evaluate(req) }); got != 0 {
			t.Errorf("%s: Evaluate allocates %v times per call", name, got)
		}
	}
}

func TestEvaluateNilContextAndEmptySet(t *testing.T) {
	var empty PolicySet
	if d := empty.Evaluate(&Request{Action: "s3:GetObject"}); d != ImplicitDeny {
		t.Errorf("empty set: %v", d)
	}
	set := &PolicySet{Identity: []*Policy{mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}","Condition":{"StringNotEquals":{"k":"v"}}}}`, KindIdentity), nil}}
	if d := set.Evaluate(&Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/x"}); d != ImplicitDeny {
		t.Errorf("nil context: %v", d)
	}
	if d, tr := set.Explain(&Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/x"}); d != ImplicitDeny || tr.Policies[0].Statements[0].Mismatch != "resource" {
		t.Errorf("nil context explain: %v %+v", d, tr)
	}
}

// TestConcurrentEvaluate shares policies and a context between goroutines;
// run with -race.
func TestConcurrentEvaluate(t *testing.T) {
	set, req := benchTrust(t)
	pset, preq := benchPermission(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if set.Evaluate(req) != Allowed || pset.Evaluate(preq) != Allowed {
					t.Error("unexpected decision")
					return
				}
				if d, _ := set.Explain(req); d != Allowed {
					t.Error("unexpected explain decision")
					return
				}
			}
		})
	}
	wg.Wait()
}
