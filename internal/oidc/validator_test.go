package oidc

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewValidatorOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
		want func(*Validator) bool
	}{
		{name: "defaults", ok: true, want: func(v *Validator) bool {
			o := v.opts
			return o.Leeway == time.Minute && o.MaxTokenAge == 24*time.Hour && o.UnknownKIDRefreshInterval == 30*time.Second &&
				o.FetchTimeout == 5*time.Second && o.MaxStale == 24*time.Hour && o.MaxTokenLifetime == 24*time.Hour
		}},
		{name: "negative leeway means none", opts: Options{Leeway: -1}, ok: true, want: func(v *Validator) bool { return v.opts.Leeway == 0 }},
		{name: "leeway of 5 minutes", opts: Options{Leeway: 5 * time.Minute}, ok: true},
		{name: "leeway over 5 minutes", opts: Options{Leeway: 5*time.Minute + time.Second}},
		{name: "negative lifetime disables the check", opts: Options{MaxTokenLifetime: -time.Second}, ok: true,
			want: func(v *Validator) bool { return v.opts.MaxTokenLifetime < 0 }},
		{name: "negative fetch timeout", opts: Options{FetchTimeout: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewValidator(tc.opts)
			if (err == nil) != tc.ok {
				t.Fatalf("NewValidator = %v, want ok=%v", err, tc.ok)
			}
			if tc.want != nil && !tc.want(v) {
				t.Errorf("options %+v", v.opts)
			}
		})
	}
}

func TestMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewValidator(Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewValidator(Options{Registerer: reg}); err == nil {
		t.Error("a second validator registered the same metrics")
	}
}
