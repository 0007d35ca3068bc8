package iam

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keylessci/keyless/internal/awsquery"
)

// simulateWith runs SimulateCustomPolicy's handler with ctx and returns
// its result.
func simulateWith(t *testing.T, ctx context.Context, s *Service, params url.Values) (simulateResult, error) {
	t.Helper()
	r := &awsquery.Request{Action: "SimulateCustomPolicy", Params: awsquery.ParamsFromValues(params)}
	res, err := s.simulateCustomPolicy(ctx, r)
	if err != nil {
		return simulateResult{}, err
	}
	return res.(simulateResult), nil
}

// simRequest builds a SimulateCustomPolicy request: policies, then n
// actions and m resources.
func simRequest(policies []string, n, m int) url.Values {
	v := url.Values{}
	for i, p := range policies {
		v.Set("PolicyInputList.member."+strconv.Itoa(i+1), p)
	}
	for i := range n {
		v.Set("ActionNames.member."+strconv.Itoa(i+1), fmt.Sprintf("s3:GetObject%d", i))
	}
	for i := range m {
		v.Set("ResourceArns.member."+strconv.Itoa(i+1), fmt.Sprintf("arn:aws:s3:::b%d/key", i))
	}
	return v
}

// statements50 is the issue's policy: 50 statements.
func statements50() string {
	var st []string
	for i := range 50 {
		st = append(st, fmt.Sprintf(`{"Sid":"S%d","Effect":"Allow","Action":["svc%d:Get*","s3:List*"],"Resource":"arn:aws:s3:::b%d/*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"t%d"}}}`, i, i, i, i))
	}
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(st, ",") + `]}`
}

// TestSimulateRefusesTheIssueExample: 300 actions × 300 resources × 50
// statements (12 s and 1.28 GB before) is refused up front with
// InvalidInput, the only client error the simulate actions declare.
func TestSimulateRefusesTheIssueExample(t *testing.T) {
	s := newService(t)
	start := time.Now()
	_, err := simulateWith(t, context.Background(), s, simRequest([]string{statements50()}, 300, 300))
	e, ok := errors.AsType[*awsquery.Error](err)
	if !ok || e.Code != awsquery.CodeInvalidInput || e.HTTPStatus() != 400 {
		t.Fatalf("err = %v, want InvalidInput (400)", err)
	}
	if !strings.HasPrefix(e.Message, "The simulation needs ") || !strings.Contains(e.Message, "300 actions x 300 resources") || !strings.Contains(e.Message, "Split the request") {
		t.Errorf("message = %q", e.Message)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusal took %v", d)
	}
}

// TestSimulatePaging: MaxItems defaults to 100 (AWS's documented default,
// 1000 before); the pages, followed by Marker, equal one big page.
func TestSimulatePaging(t *testing.T) {
	s := newService(t)
	req := simRequest([]string{perm}, 50, 3) // 150 results
	first, err := simulateWith(t, context.Background(), s, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.EvaluationResults) != 100 || !first.IsTruncated || first.Marker != "100" {
		t.Fatalf("default page: %d results, truncated %v, marker %q", len(first.EvaluationResults), first.IsTruncated, first.Marker)
	}
	req.Set("Marker", first.Marker)
	second, err := simulateWith(t, context.Background(), s, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.EvaluationResults) != 50 || second.IsTruncated || second.Marker != "" {
		t.Fatalf("second page: %d results, truncated %v, marker %q", len(second.EvaluationResults), second.IsTruncated, second.Marker)
	}
	req.Del("Marker")
	req.Set("MaxItems", "1000")
	all, err := simulateWith(t, context.Background(), s, req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all.EvaluationResults, append(first.EvaluationResults, second.EvaluationResults...)); diff != "" {
		t.Errorf("pages differ from one page:\n%s", diff)
	}
	if all.EvaluationResults[0].EvalActionName != "s3:GetObject0" || all.EvaluationResults[0].EvalResourceName != "arn:aws:s3:::b0/key" ||
		all.EvaluationResults[1].EvalResourceName != "arn:aws:s3:::b1/key" || all.EvaluationResults[3].EvalActionName != "s3:GetObject1" {
		t.Errorf("results are not action-major: %+v", all.EvaluationResults[:4])
	}
	req.Set("Marker", "150")
	if end, err := simulateWith(t, context.Background(), s, req); err != nil || len(end.EvaluationResults) != 0 || end.IsTruncated {
		t.Errorf("marker at the end: %+v, %v", end, err)
	}
}

// TestSimulateCancelled: a caller that went away stops the simulation;
// the handler answers at once instead of computing the page.
func TestSimulateCancelled(t *testing.T) {
	s := newService(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := simulateWith(t, ctx, s, simRequest([]string{statements50()}, 100, 100))
	e, ok := errors.AsType[*awsquery.Error](err)
	if !ok || e.Code != awsquery.CodeServiceUnavailable || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ServiceUnavailable caused by context.Canceled", err)
	}
}

func TestSimulateInputLimits(t *testing.T) {
	s := newService(t)
	withCtx := func(n, values int, key string) url.Values {
		v := simRequest([]string{perm}, 1, 1)
		for i := 1; i <= n; i++ {
			p := "ContextEntries.member." + strconv.Itoa(i) + "."
			v.Set(p+"ContextKeyName", fmt.Sprintf(key, i))
			v.Set(p+"ContextKeyType", "stringList")
			for j := 1; j <= values; j++ {
				v.Set(p+"ContextKeyValues.member."+strconv.Itoa(j), "v")
			}
		}
		return v
	}
	twoBoundaries := simRequest([]string{perm}, 1, 1)
	twoBoundaries.Set("PermissionsBoundaryPolicyInputList.member.1", perm)
	twoBoundaries.Set("PermissionsBoundaryPolicyInputList.member.2", perm)
	longMarker := simRequest([]string{perm}, 1, 1)
	longMarker.Set("Marker", "99999999999999999999")
	tests := []struct {
		name   string
		params url.Values
		code   string
		msg    string
	}{
		{"two boundaries", twoBoundaries, "InvalidInput", "PermissionsBoundaryPolicyInputList has 2 policies: you can input only one permissions boundary."},
		{"101 context entries", withCtx(101, 1, "x:key%d"), "InvalidInput", "The simulation has 101 context entries; the limit is 100."},
		{"101 values", withCtx(1, 101, "aws:TagKeys%d"), "InvalidInput", `Context key "aws:TagKeys1" has 101 values; the limit is 100 per key.`},
		{"short key name", withCtx(1, 1, "k%d"), "ValidationError", "1 validation error detected: Value 'k1' at 'contextEntries.1.member.contextKeyName' failed to satisfy constraint: Member must have length greater than or equal to 5"},
		{"marker out of range", longMarker, "InvalidInput", "Invalid Marker: pass the Marker returned by the previous call unchanged."},
	}
	for _, tc := range tests {
		_, err := simulateWith(t, context.Background(), s, tc.params)
		e, ok := errors.AsType[*awsquery.Error](err)
		if !ok || e.Code != tc.code || e.Message != tc.msg {
			t.Errorf("%s: err = %v\nwant %s: %s", tc.name, err, tc.code, tc.msg)
		}
	}
	// At the limits, accepted.
	if _, err := simulateWith(t, context.Background(), s, withCtx(100, 1, "x:key%d")); err != nil {
		t.Errorf("100 context entries: %v", err)
	}
	if _, err := simulateWith(t, context.Background(), s, withCtx(1, 100, "aws:TagKeys%d")); err != nil {
		t.Errorf("100 values: %v", err)
	}
}

// BenchmarkSimulateCustomPolicyPage is the handler's default page (100
// results) of the issue's 50-statement policy.
func BenchmarkSimulateCustomPolicyPage(b *testing.B) {
	var s Service // SimulateCustomPolicy reads no state
	params := awsquery.ParamsFromValues(simRequest([]string{statements50()}, 100, 30))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.simulateCustomPolicy(b.Context(), &awsquery.Request{Action: "SimulateCustomPolicy", Params: params}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzSimulateParams: whatever the ContextEntries members, Marker and
// MaxItems, the handler answers with results or a client error — never a
// panic or a server error.
func FuzzSimulateParams(f *testing.F) {
	f.Add("ContextEntries.member.1.ContextKeyName", "aws:TagKeys", "ContextEntries.member.1.ContextKeyValues.member.1", "a", "stringList", "7", "3")
	f.Add("ContextEntries.member.2.ContextKeyType", "ip", "ContextEntries.member.1.ContextKeyValues.member.1000", "10.0.0.1", "ip", "", "1000")
	f.Add("ContextEntries.member.0.ContextKeyName", "x", "ContextEntries.member.1.Other", "", "date", "-1", "0")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, typ, marker, maxItems string) {
		params := simRequest([]string{perm}, 3, 2)
		params.Set("ContextEntries.member.1.ContextKeyName", "aws:PrincipalTag/team")
		params.Set("ContextEntries.member.1.ContextKeyType", typ)
		params.Set(n1, v1)
		params.Set(n2, v2)
		if marker != "" {
			params.Set("Marker", marker)
		}
		if maxItems != "" {
			params.Set("MaxItems", maxItems)
		}
		var s Service
		res, err := s.simulateCustomPolicy(context.Background(), &awsquery.Request{Action: "SimulateCustomPolicy", Params: awsquery.ParamsFromValues(params)})
		if err != nil {
			e, ok := errors.AsType[*awsquery.Error](err)
			if !ok || e.HTTPStatus() >= 500 {
				t.Fatalf("err = %v", err)
			}
			return
		}
		if r := res.(simulateResult); len(r.EvaluationResults) > 6 || r.IsTruncated != (r.Marker != "") {
			t.Fatalf("result = %+v", r)
		}
	})
}
