package oidc

import (
	"testing"
	"time"
)

func TestKeyTTL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", time.Hour},
		{"max-age=3600", time.Hour},
		{"public, max-age=7200, must-revalidate", 2 * time.Hour},
		{"MAX-AGE=600", 10 * time.Minute},
		{`max-age="900"`, 15 * time.Minute},
		{"max-age=0", 5 * time.Minute},
		{"max-age=10", 5 * time.Minute},
		{"max-age=86401", 24 * time.Hour},
		{"max-age=99999999999999999999999", 24 * time.Hour},
		{"max-age=-5", time.Hour},
		{"max-age=abc", time.Hour},
		{"max-age=+600", 10 * time.Minute},
		{"max-age=600, max-age=7200", 10 * time.Minute},
		{"no-cache", 5 * time.Minute},
		{"no-store, max-age=7200", 5 * time.Minute},
		{"private", time.Hour},
		{"s-maxage=7200", time.Hour},
		{" , ,max-age=1200,", 20 * time.Minute},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := keyTTL(tc.in); got != tc.want {
				t.Errorf("keyTTL(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzKeyTTL(f *testing.F) {
	for _, s := range []string{"", "max-age=60", "no-store", "max-age=1e9", `max-age="5"`, "max-age=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := keyTTL(s); got < minKeyTTL || got > maxKeyTTL {
			t.Fatalf("keyTTL(%q) = %s, outside [%s, %s]", s, got, minKeyTTL, maxKeyTTL)
		}
	})
}
