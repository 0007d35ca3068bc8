package iam

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/store"
)

func TestParseMaxTokenLifetime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration // 0: refused
		why  string        // part of the error
	}{
		{"1m", time.Minute, ""},
		{"60", time.Minute, ""},
		{"15m", 15 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"3600", time.Hour, ""},
		{"24h", 24 * time.Hour, ""},
		{"168h", 168 * time.Hour, ""},
		{"604800", 168 * time.Hour, ""},
		{"", 0, "empty"},
		{"0", 0, "outside"},
		{"0s", 0, "outside"},
		{"59s", 0, "outside"},
		{"59", 0, "outside"},
		{"168h0m1s", 0, "outside"},
		{"604801", 0, "more than"},
		{"99999999999999999999", 0, "more than"},
		{"7d", 0, "days are not a unit"},
		{"-1h", 0, "sign"},
		{"+1h", 0, "sign"},
		{"1h ", 0, "not a duration"},
		{" 1h", 0, "not a duration"},
		{"90.5s", 0, "whole number of seconds"},
		{"1h0.001s", 0, "whole number of seconds"},
		{"one hour", 0, "not a duration"},
		{"١٢٠", 0, "not a duration"}, // Arabic-Indic digits
		{"2562047h", 0, "outside"},
		{"9999999999h", 0, "not a duration"}, // overflows time.Duration
	} {
		got, err := ParseMaxTokenLifetime(tc.in)
		if tc.want != 0 {
			if err != nil || got != tc.want {
				t.Errorf("ParseMaxTokenLifetime(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrTokenLifetimeValue) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ParseMaxTokenLifetime(%q) = %s, %v; want an error about %q", tc.in, got, err, tc.why)
		}
	}
}

// FuzzParseMaxTokenLifetime: any string either parses to a whole number of
// seconds within [1m, 168h] or is refused with ErrTokenLifetimeValue;
// never a panic, never a value out of range.
func FuzzParseMaxTokenLifetime(f *testing.F) {
	for _, s := range []string{"1h", "60", "15m", "168h", "604800", "7d", "-1h", "1.5h", "90.5s", "", "0", "9223372036854775807", "1h1m1s1ms", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseMaxTokenLifetime(s)
		if err != nil {
			if !errors.Is(err, ErrTokenLifetimeValue) || d != 0 {
				t.Fatalf("%q: %s, %v", s, d, err)
			}
			return
		}
		if d < MinProviderTokenLifetime || d > MaxProviderTokenLifetime || d%time.Second != 0 {
			t.Fatalf("%q parsed to %s", s, d)
		}
	})
}

// TestProviderLifetimeTagChecked: CreateOpenIDConnectProvider and
// TagOpenIDConnectProvider refuse a keyless:max-token-lifetime value the
// STS could not use, and a key that differs from it only in case, with
// InvalidInput and a message that says what to write; valid values are
// stored.
func TestProviderLifetimeTagChecked(t *testing.T) {
	s := newService(t)
	const arn = "arn:aws:iam::123456789012:oidc-provider/token.example.com"
	create := func(u, key, value string) error {
		_, err := call(t, s, "CreateOpenIDConnectProvider", url.Values{"Url": {u}, "ClientIDList.member.1": {"sts.amazonaws.com"},
			"Tags.member.1.Key": {key}, "Tags.member.1.Value": {value}})
		return err
	}
	tag := func(key, value string) error {
		_, err := call(t, s, "TagOpenIDConnectProvider", url.Values{"OpenIDConnectProviderArn": {arn},
			"Tags.member.1.Key": {"team"}, "Tags.member.1.Value": {"ci"}, "Tags.member.2.Key": {key}, "Tags.member.2.Value": {value}})
		return err
	}
	wantInvalid := func(t *testing.T, err error, parts ...string) {
		t.Helper()
		e, ok := errors.AsType[*awsquery.Error](err)
		if !ok || e.Code != awsquery.CodeInvalidInput || e.HTTPStatus() != 400 {
			t.Fatalf("err = %v, want InvalidInput (400)", err)
		}
		for _, p := range parts {
			if !strings.Contains(e.Message, p) {
				t.Errorf("message %q lacks %q", e.Message, p)
			}
		}
	}
	stored := func(t *testing.T) map[string]string {
		t.Helper()
		p, err := s.st.Providers().Get(context.Background(), arn)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, tg := range p.Tags {
			m[tg.Key] = tg.Value
		}
		return m
	}

	wantInvalid(t, create("https://token.example.com", TagMaxTokenLifetime, "7d"),
		"keyless:max-token-lifetime", `"7d" is not`, "days are not a unit", "from 1m to 168h")
	wantInvalid(t, create("https://token.example.com", "Keyless:Max-Token-Lifetime", "1h"),
		"only in case", "Write the key as keyless:max-token-lifetime")
	if _, err := s.st.Providers().Get(context.Background(), arn); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused CreateOpenIDConnectProvider stored the provider: %v", err)
	}
	if err := create("https://token.example.com", TagMaxTokenLifetime, "2h"); err != nil {
		t.Fatal(err)
	}
	if got := stored(t)[TagMaxTokenLifetime]; got != "2h" {
		t.Fatalf("stored value %q", got)
	}

	for _, bad := range []struct{ value, why string }{
		{"30s", "outside 1m to 168h"},
		{"169h", "outside 1m to 168h"},
		{"", "empty"},
		{"1.5s", "whole number of seconds"},
		{"soon", "not a duration"},
	} {
		wantInvalid(t, tag(TagMaxTokenLifetime, bad.value), bad.why)
	}
	wantInvalid(t, tag("KEYLESS:MAX-TOKEN-LIFETIME", "1h"), "case-sensitive")
	if got := stored(t); got[TagMaxTokenLifetime] != "2h" || got["team"] != "" {
		t.Fatalf("a refused TagOpenIDConnectProvider changed the tags: %v", got)
	}
	if err := tag(TagMaxTokenLifetime, "900"); err != nil {
		t.Fatal(err)
	}
	if got := stored(t); got[TagMaxTokenLifetime] != "900" || got["team"] != "ci" {
		t.Fatalf("tags after TagOpenIDConnectProvider: %v", got)
	}
	p, _ := s.st.Providers().Get(context.Background(), arn)
	if d, v, ok, err := ProviderMaxTokenLifetime(p); d != 15*time.Minute || v != "900" || !ok || err != nil {
		t.Errorf("ProviderMaxTokenLifetime = %s %q %v %v", d, v, ok, err)
	}
	// Other tags, and other keyless-looking keys, are not this check's
	// business.
	if err := tag("keyless:max-token-age", "7d"); err != nil {
		t.Errorf("unrelated tag refused: %v", err)
	}
}

func TestProviderMaxTokenLifetimeStored(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tags   []store.Tag
		want   time.Duration
		ok     bool
		badVal bool
	}{
		{name: "no tags"},
		{name: "other tags", tags: []store.Tag{{Key: "team", Value: "ci"}}},
		{name: "valid", tags: []store.Tag{{Key: "team", Value: "ci"}, {Key: TagMaxTokenLifetime, Value: "48h"}}, want: 48 * time.Hour, ok: true},
		{name: "invalid value stored", tags: []store.Tag{{Key: TagMaxTokenLifetime, Value: "7d"}}, ok: true, badVal: true},
		{name: "key in another case is not the tag", tags: []store.Tag{{Key: "Keyless:max-token-lifetime", Value: "1h"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _, ok, err := ProviderMaxTokenLifetime(&store.Provider{Tags: tc.tags})
			if d != tc.want || ok != tc.ok || (err != nil) != tc.badVal {
				t.Errorf("= %s %v %v; want %s %v bad=%v", d, ok, err, tc.want, tc.ok, tc.badVal)
			}
		})
	}
}
