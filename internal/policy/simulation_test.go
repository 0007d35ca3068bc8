package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// issue11Policy is the issue's example: 50 statements, each with two
// actions, a resource and a condition.
func issue11Policy(t testing.TB, n int) *Policy {
	t.Helper()
	var st []string
	for i := range n {
		st = append(st, fmt.Sprintf(`{"Sid":"S%d","Effect":"Allow","Action":["svc%d:Get*","s3:List*"],"Resource":"arn:aws:s3:::b%d/*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"t%d"}}}`, i, i, i, i))
	}
	p, err := ParseWithOptions(`{"Version":"2012-10-17","Statement":[`+strings.Join(st, ",")+`]}`, KindIdentity, Options{MaxSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func names(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

func identityInput(p *Policy, actions, resources []string) SimulationInput {
	return SimulationInput{Policies: []SimPolicy{{ID: "p", Type: SourceNone, Layer: LayerIdentity, Policy: p}}, Actions: actions, Resources: resources}
}

// TestSimulationRefusesTheIssueExample: 300 actions × 300 resources × 50
// statements took 12 s and 1.28 GB before; it is now refused before any
// evaluation, with a message that says the limit and how to split.
func TestSimulationRefusesTheIssueExample(t *testing.T) {
	in := identityInput(issue11Policy(t, 50), names("s3:GetObject%d", 300), names("arn:aws:s3:::b%d/key", 300))
	var err error
	allocs := testing.AllocsPerRun(1, func() { _, err = NewSimulation(in, SimLimits{}) })
	pe, ok := errors.AsType[*Error](err)
	if !ok || !errors.Is(err, ErrSimulationTooLarge) || pe.Code != CodeInvalidInput {
		t.Fatalf("err = %v, want an InvalidInput *Error caused by ErrSimulationTooLarge", err)
	}
	for _, want := range []string{"300 actions x 300 resources x ", "for 50 policy statements", "the limit is 10000000 per request", "Split the request: at most ", " ActionNames per call with these 300 ResourceArns."} {
		if !strings.Contains(pe.Message, want) {
			t.Errorf("message %q lacks %q", pe.Message, want)
		}
	}
	// Pricing reads the compiled policies once, whatever the product: the
	// 90,000 results are never built.
	if allocs > 100 {
		t.Errorf("NewSimulation made %v allocations", allocs)
	}
}

func TestSimulationLimitMessages(t *testing.T) {
	p := issue11Policy(t, 50)
	perPair := func() int64 {
		s, err := NewSimulation(identityInput(p, []string{"s3:GetObject"}, []string{"arn:aws:s3:::b/k"}), SimLimits{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Cost().PerPair
	}()
	tests := []struct {
		name      string
		actions   int
		resources int
		limit     int64
		want      string
	}{
		{"fewer actions", 40, 4, perPair * 100, "Split the request: at most 25 ActionNames per call with these 4 ResourceArns."},
		{"fewer resources", 4, 40, perPair * 10, "Split the request: at most 10 ResourceArns per call, one action at a time."},
		{"policies alone", 1, 1, perPair - 1, "The policies alone exceed it: simulate fewer or smaller policies."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := identityInput(p, names("s3:Get%d", tc.actions), names("arn:aws:s3:::b/%d", tc.resources))
			_, err := NewSimulation(in, SimLimits{MaxChecks: tc.limit})
			pe, ok := errors.AsType[*Error](err)
			if !ok || !strings.HasSuffix(pe.Message, tc.want) {
				t.Fatalf("err = %v, want a message ending %q", err, tc.want)
			}
		})
	}
	// At the limit exactly, the simulation runs.
	in := identityInput(p, names("s3:Get%d", 10), names("arn:aws:s3:::b/%d", 10))
	if _, err := NewSimulation(in, SimLimits{MaxChecks: 100 * perPair}); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}

// TestSimulationPricesQuadraticPatterns: a wildcard pattern with '?' costs
// len(subject) × len(pattern) to match (about 5 ms for a 1000-character
// pattern on a 2048-character ARN); the price says so, so few pairs and
// statements can still be refused.
func TestSimulationPricesQuadraticPatterns(t *testing.T) {
	pat := `"arn:aws:s3:::*` + strings.Repeat("a", 1000) + `?b"`
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":[` + strings.Repeat(pat+",", 19) + pat + `]}]}`
	p, err := ParseWithOptions(doc, KindIdentity, Options{MaxSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	long := "arn:aws:s3:::" + strings.Repeat("a", 2030)
	_, err = NewSimulation(identityInput(p, []string{"s3:GetObject"}, []string{long, long + "b"}), SimLimits{})
	if !errors.Is(err, ErrSimulationTooLarge) {
		t.Fatalf("20 quadratic patterns × 2 long resources: err = %v, want ErrSimulationTooLarge", err)
	}
	// The same patterns on short resources are cheap.
	s, err := NewSimulation(identityInput(p, []string{"s3:GetObject"}, []string{"arn:aws:s3:::x/y"}), SimLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Cost(); c.PerPair > 2000 {
		t.Errorf("short resource: %d checks per pair", c.PerPair)
	}
}

func TestSimulationContextLimits(t *testing.T) {
	p := issue11Policy(t, 1)
	entry := func(key string, vals ...string) ContextEntry {
		return ContextEntry{Key: key, Type: ContextStringList, Values: vals}
	}
	var many []ContextEntry
	for i := range 101 {
		many = append(many, entry(fmt.Sprint("x:k", i), "v"))
	}
	tests := []struct {
		name string
		ctx  []ContextEntry
		want string
	}{
		{"entries", many, "The simulation has 101 context entries; the limit is 100."},
		{"values", []ContextEntry{entry("aws:TagKeys", names("t%d", 101)...)}, `Context key "aws:TagKeys" has 101 values; the limit is 100 per key.`},
		{"value length", []ContextEntry{entry("x:k", strings.Repeat("é", 2049))}, `A value of context key "x:k" has 2049 characters; the limit is 2048.`},
	}
	for _, tc := range tests {
		in := identityInput(p, []string{"s3:GetObject"}, nil)
		in.Context = tc.ctx
		_, err := NewSimulation(in, SimLimits{})
		pe, ok := errors.AsType[*Error](err)
		if !ok || !errors.Is(err, ErrSimulationTooLarge) || pe.Message != tc.want {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		// At the limit, accepted.
		in.Context = tc.ctx[:min(len(tc.ctx), 100)]
		if tc.name != "entries" {
			e := tc.ctx[0]
			e.Values = e.Values[:min(len(e.Values), 100)]
			e.Values[0] = e.Values[0][:min(len(e.Values[0]), 2048)]
			in.Context = []ContextEntry{e}
		}
		if _, err := NewSimulation(in, SimLimits{}); err != nil {
			t.Errorf("%s at the limit: %v", tc.name, err)
		}
	}
}

// TestSimulationPages: any paging of a simulation yields exactly the
// results of one big page, which agree with Explain.
func TestSimulationPages(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b1/*"},
		{"Effect":"Allow","Action":"s3:Get*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"ci"}}},
		{"Effect":"Deny","Action":"s3:Delete*","Resource":"arn:aws:s3:::b2/*"}]}`, KindIdentity)
	boundary := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:Get*","s3:Put*"],"Resource":"*"}}`, KindBoundary)
	in := SimulationInput{
		Policies: []SimPolicy{
			{ID: "p", Type: SourceUserManaged, Layer: LayerIdentity, Policy: p},
			{ID: "b", Type: SourceNone, Layer: LayerBoundary, Policy: boundary},
		},
		Actions:   []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "ec2:RunInstances"},
		Resources: []string{"arn:aws:s3:::b1/k", "arn:aws:s3:::b2/k", "arn:aws:s3:::b3/k"},
	}
	s, err := NewSimulation(in, SimLimits{})
	if err != nil {
		t.Fatal(err)
	}
	all, next, err := s.Page(context.Background(), 0, 1000)
	if err != nil || next != 15 || len(all) != 15 {
		t.Fatalf("one page: %d results, next %d, %v", len(all), next, err)
	}
	for i, r := range all {
		if diff := cmp.Diff(s.Explain(i), r, cmpopts.IgnoreFields(SimResult{}, "Trace")); diff != "" {
			t.Errorf("result %d differs from Explain (-explain +page):\n%s", i, diff)
		}
	}
	for _, size := range []int{1, 2, 4, 7, 14, 15} {
		var got []SimResult
		start := 0
		for start < s.Len() {
			page, next, err := s.Page(context.Background(), start, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) != min(size, s.Len()-start) || next != start+len(page) {
				t.Fatalf("size %d at %d: %d results, next %d", size, start, len(page), next)
			}
			got = append(got, page...)
			start = next
		}
		if diff := cmp.Diff(all, got); diff != "" {
			t.Errorf("pages of %d differ from one page:\n%s", size, diff)
		}
	}
	for _, tc := range []struct{ start, n, wantLen, wantNext int }{
		{15, 10, 0, 15}, {99, 10, 0, 15}, {-5, 2, 2, 2}, {3, 0, 0, 3},
	} {
		page, next, err := s.Page(context.Background(), tc.start, tc.n)
		if err != nil || len(page) != tc.wantLen || next != tc.wantNext || page == nil {
			t.Errorf("Page(%d, %d) = %d results (nil %v), next %d, %v; want %d, next %d", tc.start, tc.n, len(page), page == nil, next, err, tc.wantLen, tc.wantNext)
		}
	}
}

// TestSimulationPageEntriesEndAPage: a page ends early once its results
// hold MaxPageEntries matched statements and missing keys, never before
// its first result; the next page continues where it ended.
func TestSimulationPageEntriesEndAPage(t *testing.T) {
	var st []string
	for i := range 30 {
		st = append(st, fmt.Sprintf(`{"Sid":"A%d","Effect":"Allow","Action":"s3:*","Resource":"*"}`, i))
	}
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[`+strings.Join(st, ",")+`]}`, KindIdentity)
	s, err := NewSimulation(identityInput(p, names("s3:Get%d", 10), nil), SimLimits{MaxPageEntries: 50})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for start := 0; start < s.Len(); {
		page, next, err := s.Page(context.Background(), start, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if len(r.MatchedStatements) != 30 {
				t.Fatalf("result lists %d matched statements, want 30", len(r.MatchedStatements))
			}
		}
		sizes = append(sizes, len(page))
		start = next
	}
	if diff := cmp.Diff([]int{2, 2, 2, 2, 2}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
	s, _ = NewSimulation(identityInput(p, names("s3:Get%d", 3), nil), SimLimits{MaxPageEntries: 10})
	if page, next, _ := s.Page(context.Background(), 0, 1000); len(page) != 1 || next != 1 {
		t.Errorf("a page with more entries than the cap in its first result: %d results, next %d", len(page), next)
	}
}

// TestSimulationPageCostsOnlyThePage: the first page of a 1000 × 1000
// simulation costs what the first page of a 10 × 10 one costs: only the
// page is evaluated (before, every result was built and then sliced).
func TestSimulationPageCostsOnlyThePage(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::b1/*"}]}`, KindIdentity)
	allocs := func(n int) float64 {
		s, err := NewSimulation(identityInput(p, names("s3:GetObject%d", n), names("arn:aws:s3:::b%d/k", n)), SimLimits{MaxChecks: 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(5, func() {
			if page, _, err := s.Page(context.Background(), 0, 10); err != nil || len(page) != 10 {
				t.Fatalf("page: %d, %v", len(page), err)
			}
		})
	}
	small, big := allocs(10), allocs(1000)
	if big != small {
		t.Errorf("first page of 10 results: %v allocations for 1000 × 1000, %v for 10 × 10", big, small)
	}
}

// cancelAfter is a context whose Err reports Canceled from its n-th call
// on: a deterministic "client went away mid-request".
type cancelAfter struct {
	context.Context
	n, calls int
}

func (c *cancelAfter) Err() error {
	c.calls++
	if c.calls >= c.n {
		return context.Canceled
	}
	return nil
}

// TestSimulationStopsWhenCancelled: Page looks at its context every
// simCheckEvery checks and stops at the first look after cancellation,
// returning the context's error and no results.
func TestSimulationStopsWhenCancelled(t *testing.T) {
	s, err := NewSimulation(identityInput(issue11Policy(t, 50), names("s3:GetObject%d", 100), names("arn:aws:s3:::b%d/k", 100)), SimLimits{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if page, next, err := s.Page(ctx, 0, 1000); !errors.Is(err, context.Canceled) || page != nil || next != 0 {
		t.Errorf("cancelled before: %d results, next %d, %v", len(page), next, err)
	}
	// Cancelled after its third look: the page stops there, far from the
	// 1000 results it was asked for.
	cc := &cancelAfter{Context: context.Background(), n: 3}
	page, next, err := s.Page(cc, 0, 1000)
	if !errors.Is(err, context.Canceled) || page != nil {
		t.Fatalf("cancelled during: %d results, %v", len(page), err)
	}
	if cc.calls != 3 {
		t.Errorf("Err called %d times: the page went on after cancellation", cc.calls)
	}
	perPair := s.Cost().PerPair
	if maxNext := 3*simCheckEvery/int(perPair) + 1; next > maxNext {
		t.Errorf("stopped at result %d; the third look comes before result %d", next, maxNext)
	}
}

// TestSimulationStopsWithinAResult: one result whose policies cost more
// than simCheckEvery checks is interrupted between statements.
func TestSimulationStopsWithinAResult(t *testing.T) {
	p := issue11Policy(t, 600)
	in := identityInput(p, []string{"s3:GetObject"}, []string{"arn:aws:s3:::b/k"})
	for range 7 {
		in.Policies = append(in.Policies, in.Policies[0])
	}
	s, err := NewSimulation(in, SimLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Cost().PerPair < 3*simCheckEvery {
		t.Fatalf("per pair %d: too cheap for this test", s.Cost().PerPair)
	}
	cc := &cancelAfter{Context: context.Background(), n: 2}
	if _, _, err := s.Page(cc, 0, 1); !errors.Is(err, context.Canceled) || cc.calls != 2 {
		t.Errorf("err %v after %d looks", err, cc.calls)
	}
}

// BenchmarkSimulationPage is one page of 100 results of the issue's
// 50-statement policy, with the context key its conditions read.
func BenchmarkSimulationPage(b *testing.B) {
	in := identityInput(issue11Policy(b, 50), names("s3:GetObject%d", 300), names("arn:aws:s3:::b%d/key", 300))
	in.Context = []ContextEntry{{Key: "aws:PrincipalTag/team", Type: ContextString, Values: []string{"t7"}}}
	s, err := NewSimulation(in, SimLimits{MaxChecks: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Page(b.Context(), 0, 100); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSimulationCheck measures what one priced check costs on
// workloads that stress different parts of the price (ns/check is the
// figure to compare with the calibration in simulation_cost.go).
func BenchmarkSimulationCheck(b *testing.B) {
	long := strings.Repeat("a", 2030)
	quad := `"arn:aws:s3:::*` + strings.Repeat("a", 1000) + `?b"`
	many := func(format string, n int) string {
		var l []string
		for i := range n {
			l = append(l, fmt.Sprintf(format, i))
		}
		return strings.Join(l, ",")
	}
	doc := func(stmts string) string { return `{"Version":"2012-10-17","Statement":[` + stmts + `]}` }
	workloads := []struct {
		name      string
		doc       string
		actions   []string
		resources []string
		ctx       []ContextEntry
	}{
		{"issue-50-statements", "", names("s3:GetObject%d", 30), names("arn:aws:s3:::b%d/key", 30), nil},
		{"allow-all", doc(`{"Effect":"Allow","Action":"*","Resource":"*"}`), names("s3:GetObject%d", 100), names("arn:aws:s3:::b%d/key", 100), nil},
		{"1000-actions", doc(`{"Effect":"Allow","Action":[` + many(`"s3:Get%d*"`, 1000) + `],"Resource":"*"}`), names("s3:GetObject%d", 30), names("arn:aws:s3:::b%d/key", 3), nil},
		{"1000-resources", doc(`{"Effect":"Allow","Action":"*","Resource":[` + many(`"arn:aws:s3:::bucket%d/*/x"`, 1000) + `]}`), names("s3:GetObject%d", 3), names("arn:aws:s3:::b%d/key", 30), nil},
		{"quadratic-resource", doc(`{"Effect":"Allow","Action":"*","Resource":[` + quad + `]}`), []string{"s3:GetObject"}, []string{"arn:aws:s3:::" + long}, nil},
		{"quadratic-condition", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"x:k":"*` + strings.Repeat("a", 1000) + `?b*"}}}`), []string{"s3:GetObject"}, nil,
			[]ContextEntry{{Key: "x:k", Type: ContextString, Values: []string{long}}}},
	}
	for _, w := range workloads {
		b.Run(w.name, func(b *testing.B) {
			p := issue11Policy(b, 50)
			if w.doc != "" {
				var err error
				if p, err = ParseWithOptions(w.doc, KindIdentity, Options{MaxSize: -1}); err != nil {
					b.Fatal(err)
				}
			}
			in := identityInput(p, w.actions, w.resources)
			in.Context = w.ctx
			s, err := NewSimulation(in, SimLimits{MaxChecks: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, _, err := s.Page(b.Context(), 0, s.Len()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(s.Cost().Total), "ns/check")
		})
	}
}

// FuzzSimulationPages: for fuzzed policies, actions, resources and page
// sizes, every page agrees with Explain (the full trace) and the pages
// together are the results of one page; the price is positive and Page
// never evaluates more than it returns.
func FuzzSimulationPages(f *testing.F) {
	f.Add("s3:Get*", "arn:aws:s3:::b/${aws:username}/*", uint8(4), "alice", "s3:GetObject", "arn:aws:s3:::b/alice/x", uint8(3), uint8(2))
	f.Add("*", "*", uint8(7), "x", "sts:AssumeRoleWithWebIdentity", "*", uint8(1), uint8(0))
	f.Add("iam:*AccessKey?", "arn:aws:iam::*:user/*", uint8(13), "10.0.0.0/8", "IAM:CreateAccessKeys", "arn:aws:iam::1:user/d", uint8(5), uint8(9))
	f.Fuzz(func(t *testing.T, action, resource string, op uint8, value, reqAction, reqResource string, page, layers uint8) {
		operator := fuzzOperators[int(op)%len(fuzzOperators)]
		q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		effect := "Allow"
		if layers&0x80 != 0 {
			effect = "Deny"
		}
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"` + effect + `","Action":` + q(action) + `,"Resource":` + q(resource) +
			`,"Condition":{"` + operator + `":{"k":` + q(value) + `}}},{"Effect":"Allow","Action":"*","Resource":"*"}]}`
		p, err := ParseWithOptions(doc, KindIdentity, Options{MaxSize: -1})
		if err != nil {
			return
		}
		in := SimulationInput{Policies: []SimPolicy{{ID: "p", Layer: LayerIdentity, Policy: p}}}
		if layers&1 != 0 {
			in.Policies = append(in.Policies, SimPolicy{ID: "b", Layer: LayerBoundary, Policy: p})
		}
		if layers&2 != 0 {
			in.Context = []ContextEntry{{Key: "k", Type: ContextStringList, Values: []string{value, reqResource}}}
		}
		if layers&4 != 0 {
			in.Context = append(in.Context, ContextEntry{Key: "aws:username", Type: ContextString, Values: []string{"alice"}})
		}
		in.Actions = []string{reqAction, action, "s3:GetObject"}
		in.Resources = []string{reqResource, resource}
		s, err := NewSimulation(in, SimLimits{MaxPageEntries: 1 + int(layers>>3)&7})
		if err != nil {
			if !errors.Is(err, ErrSimulationTooLarge) && !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("NewSimulation: %v", err)
			}
			return
		}
		if s.Cost().PerPair <= 0 || s.Cost().Total < int64(s.Len()) {
			t.Fatalf("cost %+v for %d results", s.Cost(), s.Len())
		}
		size := 1 + int(page)%7
		var got []SimResult
		for start := 0; start < s.Len(); {
			res, next, err := s.Page(context.Background(), start, size)
			if err != nil || next <= start || next != start+len(res) || len(res) > size {
				t.Fatalf("Page(%d, %d) = %d results, next %d, %v", start, size, len(res), next, err)
			}
			got = append(got, res...)
			start = next
		}
		if len(got) != s.Len() {
			t.Fatalf("%d results, want %d", len(got), s.Len())
		}
		for i := range got {
			if diff := cmp.Diff(s.Explain(i), got[i], cmpopts.IgnoreFields(SimResult{}, "Trace")); diff != "" {
				t.Fatalf("result %d: Page and Explain differ (-explain +page):\n%s", i, diff)
			}
		}
	})
}
