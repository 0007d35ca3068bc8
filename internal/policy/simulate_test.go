package policy

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestSimulate(t *testing.T) {
	identity := mustParse(t, `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"},
    {"Sid": "Write", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::artifacts/*",
     "Condition": {"StringEquals": {"aws:PrincipalTag/team": "build"}}},
    {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::secrets/*"}
  ]
}`, KindIdentity)
	boundary := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}}`, KindBoundary)
	in := SimulationInput{
		Policies: []SimPolicy{
			{ID: "ci-permissions", Type: SourceUserManaged, Layer: LayerIdentity, Policy: identity},
			{ID: "ci-boundary", Type: SourceNone, Layer: LayerBoundary, Policy: boundary},
		},
		Actions:   []string{"s3:GetObject", "s3:PutObject", "s3:ListBucket"},
		Resources: []string{"arn:aws:s3:::artifacts/a.tgz", "arn:aws:s3:::secrets/key"},
		Context:   []ContextEntry{{Key: "aws:SecureTransport", Type: ContextBoolean, Values: []string{"true"}}},
	}
	got, err := simulate(t, in)
	if err != nil {
		t.Fatal(err)
	}
	read := MatchedStatement{SourcePolicyID: "ci-permissions", SourcePolicyType: SourceUserManaged, StartPosition: Position{Line: 4, Column: 5}, EndPosition: Position{Line: 4, Column: 101}}
	deny := MatchedStatement{SourcePolicyID: "ci-permissions", SourcePolicyType: SourceUserManaged, StartPosition: Position{Line: 7, Column: 5}, EndPosition: Position{Line: 7, Column: 99}}
	bnd := MatchedStatement{SourcePolicyID: "ci-boundary", SourcePolicyType: SourceNone, StartPosition: Position{Line: 1, Column: 37}, EndPosition: Position{Line: 1, Column: 111}}
	yes, no := &BoundaryDecisionDetail{AllowedByPermissionsBoundary: true}, &BoundaryDecisionDetail{AllowedByPermissionsBoundary: false}
	want := []SimResult{
		{Action: "s3:GetObject", Resource: "arn:aws:s3:::artifacts/a.tgz", Decision: Allowed, MatchedStatements: []MatchedStatement{read, bnd}, MissingContextValues: []string{}, PermissionsBoundaryDecisionDetail: yes},
		{Action: "s3:GetObject", Resource: "arn:aws:s3:::secrets/key", Decision: ExplicitDeny, MatchedStatements: []MatchedStatement{deny}, MissingContextValues: []string{}, PermissionsBoundaryDecisionDetail: yes},
		{Action: "s3:PutObject", Resource: "arn:aws:s3:::artifacts/a.tgz", Decision: ImplicitDeny, MatchedStatements: []MatchedStatement{}, MissingContextValues: []string{"aws:PrincipalTag/team"}, PermissionsBoundaryDecisionDetail: yes},
		{Action: "s3:PutObject", Resource: "arn:aws:s3:::secrets/key", Decision: ExplicitDeny, MatchedStatements: []MatchedStatement{deny}, MissingContextValues: []string{}, PermissionsBoundaryDecisionDetail: yes},
		{Action: "s3:ListBucket", Resource: "arn:aws:s3:::artifacts/a.tgz", Decision: ImplicitDeny, MatchedStatements: []MatchedStatement{}, MissingContextValues: []string{}, PermissionsBoundaryDecisionDetail: no},
		{Action: "s3:ListBucket", Resource: "arn:aws:s3:::secrets/key", Decision: ExplicitDeny, MatchedStatements: []MatchedStatement{deny}, MissingContextValues: []string{}, PermissionsBoundaryDecisionDetail: no},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(SimResult{}, "Trace")); diff != "" {
		t.Errorf("Simulate (-want +got):\n%s", diff)
	}
	for _, r := range got {
		if r.Trace == nil || r.Trace.Decision != r.Decision {
			t.Errorf("%s on %s: trace missing or inconsistent", r.Action, r.Resource)
		}
	}
}

func TestSimulateResourcePolicyAndDefaults(t *testing.T) {
	bucket := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"s3:GetObject","Resource":"*"}}`, KindResource)
	in := SimulationInput{
		Policies: []SimPolicy{{ID: "bucket-policy", Type: SourceResource, Layer: LayerResource, Policy: bucket}},
		Actions:  []string{"s3:GetObject"},
		Caller:   Principal{Type: PrincipalAWS, ID: "arn:aws:iam::123456789012:user/alice"},
	}
	got, err := simulate(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Resource != "*" || got[0].Decision != Allowed || len(got[0].MatchedStatements) != 1 ||
		got[0].MatchedStatements[0].SourcePolicyType != SourceResource || got[0].PermissionsBoundaryDecisionDetail != nil {
		t.Errorf("got %+v", got)
	}
	in.Caller.ID = "arn:aws:iam::123456789012:user/bob"
	if got, _ := simulate(t, in); got[0].Decision != ImplicitDeny {
		t.Errorf("bob: %v", got[0].Decision)
	}
}

func TestSimulateContextTypes(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*","Condition":{
		"NumericLessThan":{"ec2:count":"5"},"DateLessThan":{"aws:CurrentTime":"2030-01-01"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},
		"ForAnyValue:StringEquals":{"aws:TagKeys":"team"},"BinaryEquals":{"x:bin":"QQ=="},"Bool":{"x:flags":"true"}}}}`, KindIdentity)
	base := []ContextEntry{
		{Key: "ec2:count", Type: ContextNumeric, Values: []string{"3"}},
		{Key: "aws:CurrentTime", Type: ContextDate, Values: []string{"2025-06-01T00:00:00Z"}},
		{Key: "aws:SourceIp", Type: ContextIP, Values: []string{"10.1.2.3"}},
		{Key: "aws:TagKeys", Type: ContextStringList, Values: []string{"owner", "team"}},
		{Key: "x:bin", Type: ContextBinary, Values: []string{"QQ=="}},
		{Key: "x:flags", Type: ContextBoolean, Values: []string{"true"}},
	}
	run := func(ctx []ContextEntry) ([]SimResult, error) {
		return simulate(t, SimulationInput{Policies: []SimPolicy{{ID: "p", Type: SourceNone, Layer: LayerIdentity, Policy: p}}, Actions: []string{"ec2:RunInstances"}, Context: ctx})
	}
	got, err := run(base)
	if err != nil || got[0].Decision != Allowed {
		t.Fatalf("typed context: %v %v", got, err)
	}
	for _, tc := range []struct {
		name  string
		entry ContextEntry
	}{
		{"bad number", ContextEntry{Key: "n", Type: ContextNumeric, Values: []string{"x"}}},
		{"bad date", ContextEntry{Key: "d", Type: ContextDateList, Values: []string{"2024-01-01", "soon"}}},
		{"bad ip", ContextEntry{Key: "i", Type: ContextIP, Values: []string{"10.0.0.0/8"}}},
		{"bad bool", ContextEntry{Key: "b", Type: ContextBooleanList, Values: []string{"yes"}}},
		{"bad binary", ContextEntry{Key: "x", Type: ContextBinary, Values: []string{"***"}}},
		{"two values for a single type", ContextEntry{Key: "s", Type: ContextString, Values: []string{"a", "b"}}},
		{"no value for a single type", ContextEntry{Key: "s", Type: ContextString}},
		{"unknown type", ContextEntry{Key: "s", Type: "text", Values: []string{"a"}}},
		{"no key", ContextEntry{Type: ContextString, Values: []string{"a"}}},
	} {
		_, err := run(append(append([]ContextEntry{}, base...), tc.entry))
		pe, ok := errors.AsType[*Error](err)
		if !ok || !errors.Is(err, ErrInvalidInput) || pe.Code != CodeInvalidInput {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	if _, err := simulate(t, SimulationInput{Policies: []SimPolicy{{ID: "p", Layer: "scp", Policy: p}}}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("unknown layer: %v", err)
	}
	if _, err := simulate(t, SimulationInput{Policies: []SimPolicy{{ID: "p", Layer: LayerIdentity}}}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("nil policy: %v", err)
	}
}

// simulate runs every result of a simulation through Page and checks that
// each agrees with Explain (the full trace), whose Trace it keeps.
func simulate(t *testing.T, in SimulationInput) ([]SimResult, error) {
	t.Helper()
	s, err := NewSimulation(in, SimLimits{})
	if err != nil {
		return nil, err
	}
	got, next, err := s.Page(context.Background(), 0, s.Len())
	if err != nil || next != s.Len() || len(got) != s.Len() {
		t.Fatalf("Page = %d results, next %d, %v; want %d", len(got), next, err, s.Len())
	}
	for i := range got {
		ex := s.Explain(i)
		if diff := cmp.Diff(ex, got[i], cmpopts.IgnoreFields(SimResult{}, "Trace")); diff != "" {
			t.Errorf("result %d: Page and Explain differ (-explain +page):\n%s", i, diff)
		}
		got[i].Trace = ex.Trace
	}
	return got, nil
}
