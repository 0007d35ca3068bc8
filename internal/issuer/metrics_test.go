package issuer

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylessci/keyless/internal/awsquery"
)

// mintCounts reads keyless_issuer_mints_total as "issuer/outcome" → value.
func mintCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "keyless_issuer_mints_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out[l["issuer"]+"/"+l["outcome"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestMintCounters (issue 12 item 7): every token-endpoint answer is
// counted by issuer and outcome, success included, with a label set bounded
// by the configuration (an issuer id this server does not have, or a
// request refused before one is named, counts as "unknown").
func TestMintCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, goldenIssuers(), func(o *Options) { o.Registerer = reg })
	h := f.svc.Handler()

	if got := mintCounts(t, reg); got["ci/success"] != 0 || len(got) != 4 {
		t.Errorf("before any mint: %v, want a zero success series per issuer", got)
	}
	ok := `{"subject":"s","audience":"a"}`
	for _, step := range []struct {
		caller *Caller
		path   string
		body   string
		status int
	}{
		{nil, TokenPath("ci"), ok, http.StatusOK},
		{nil, TokenPath("ci"), ok, http.StatusOK},
		{nil, TokenPath(""), ok, http.StatusOK}, // the default issuer is "ci"
		{nil, TokenPath("ci"), `{"subject":`, http.StatusBadRequest},
		{nil, TokenPath("nope"), ok, http.StatusNotFound},
		{&Caller{AccessKeyID: "AKIACLIENT", IssuerScope: "gh"}, TokenPath("ci"), ok, http.StatusForbidden},
		{&Caller{AccessKeyID: "AKIANOSCOPE"}, TokenPath(""), ok, http.StatusForbidden},
	} {
		f.caller = step.caller
		if status, _, out := postToken(t, h, step.path, step.body); status != step.status {
			t.Fatalf("%s %s: %d %v, want %d", step.path, step.body, status, out, step.status)
		}
	}
	f.svc.CountWithheld("https://keyless.example.com/gh")

	want := map[string]float64{
		"ci/success": 3, "circle/success": 0, "gh/success": 0, "gl/success": 0,
		"ci/" + awsquery.CodeValidationError:   1,
		"ci/" + awsquery.CodeAccessDenied:      1, // a client key of gh asking for ci
		"unknown/" + awsquery.CodeNoSuchEntity: 1,
		"unknown/" + awsquery.CodeAccessDenied: 1, // no scope: refused before an issuer is named
		"gh/withheld":                          1,
	}
	if diff := cmp.Diff(want, mintCounts(t, reg)); diff != "" {
		t.Errorf("keyless_issuer_mints_total (-want +got):\n%s", diff)
	}
}
