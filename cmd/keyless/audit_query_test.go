package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 7, 23, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: "", want: time.Time{}},
		{in: "now", want: now},
		{in: "-2h", want: now.Add(-2 * time.Hour)},
		{in: "-90m", want: now.Add(-90 * time.Minute)},
		{in: "-7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "-1w", want: now.Add(-7 * 24 * time.Hour)},
		{in: "-1.5d", want: now.Add(-36 * time.Hour)},
		{in: "-1h30m", want: now.Add(-90 * time.Minute)},
		{in: "2023-07-10T11:45:00Z", want: time.Date(2023, 7, 10, 11, 45, 0, 0, time.UTC)},
		{in: "2023-07-10T13:45:00+02:00", want: time.Date(2023, 7, 10, 11, 45, 0, 0, time.UTC)},
		{in: "2023-07-10T11:45:00.250Z", want: time.Date(2023, 7, 10, 11, 45, 0, 250e6, time.UTC)},
		{in: "2023-07-10", want: time.Date(2023, 7, 10, 0, 0, 0, 0, time.UTC)},
		{in: "2023-07-10T11:45", want: time.Date(2023, 7, 10, 11, 45, 0, 0, time.UTC)},
		{in: "yesterday", err: "want an RFC 3339 time"},
		{in: "-2x", err: "such as -2h"},
		{in: "--2h", err: "such as -2h"},
		{in: "2023-13-10", err: "want an RFC 3339 time"},
	} {
		got, err := parseWhen(tc.in, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseWhen(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestGrouped(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 358858: "358,858", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := grouped(n); got != want {
			t.Errorf("grouped(%d) = %q, want %q", n, got, want)
		}
	}
}
