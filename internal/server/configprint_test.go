package server

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// TestPrintConfigRoundTrip: what --print-config prints is YAML that
// LoadFile reads back into the same configuration.
func TestPrintConfigRoundTrip(t *testing.T) {
	c := Defaults()
	c.AccountID = "012345678901"
	c.AddIssuerURL("https://keyless.example.com/oidc")
	c.Issuers[0].TokenLifetime = Duration(15 * time.Minute)
	c.Audit.RedactClaims = []string{"email", "yes", "true", "0123"}
	c.Audit.DiskAlarmRatio = 0.75
	c.HTTP.IdleTimeout = Duration(90 * time.Minute)
	c.OIDC.ConnectTo = []string{"a.example:443=10.0.0.1:8443"}
	var out strings.Builder
	if err := PrintConfig(&out, c, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	got := Config{}
	if err := decodeConfigYAML("printed", []byte(out.String()), &got); err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, out.String())
	}
	if diff := cmp.Diff(c, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-printed +loaded):\n%s\n%s", diff, out.String())
	}
	for _, want := range []string{"idle_timeout: 1h30m\n", "seal_interval: 5m\n", "account_id: \"012345678901\"\n", "token_lifetime: 15m\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPrintConfigMasksSecrets: secret-valued settings never appear: the
// environment-only ones are reported as set, and a field tagged secret is
// masked.
func TestPrintConfigMasksSecrets(t *testing.T) {
	env := map[string]string{
		"KEYLESS_MASTER_KEY":              "c2VjcmV0LW1hc3Rlci1rZXktc2VjcmV0LW1hc3Rlci0=",
		"KEYLESS_ADMIN_ACCESS_KEY_ID":     "AKIAPRINTCONFIGADMIN",
		"KEYLESS_ADMIN_SECRET_ACCESS_KEY": "admin-secret-admin-secret",
	}
	var out strings.Builder
	if err := PrintConfig(&out, Defaults(), func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, secret := range []string{env["KEYLESS_MASTER_KEY"], env["KEYLESS_ADMIN_SECRET_ACCESS_KEY"]} {
		if strings.Contains(s, secret) {
			t.Errorf("a secret is printed:\n%s", s)
		}
	}
	for _, want := range []string{"#   KEYLESS_MASTER_KEY: ******** (set)", "#   KEYLESS_ADMIN_SECRET_ACCESS_KEY: ******** (set)", "#   KEYLESS_ADMIN_ACCESS_KEY_ID: AKIAPRINTCONFIGADMIN"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	type withSecret struct {
		Name  string `json:"name"`
		Token string `json:"token" secret:"true"`
		Empty string `json:"empty" secret:"true"`
	}
	b, err := yaml.Marshal(configNode(reflect.ValueOf(withSecret{Name: "n", Token: "hunter2"}), "", false))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "name: n\ntoken: '********'\nempty: \"\"\n"; got != want {
		t.Errorf("secret field printed as\n%s\nwant\n%s", got, want)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", time.Hour: "1h", 90 * time.Minute: "1h30m", 5 * time.Minute: "5m", 2 * time.Millisecond: "2ms", 61 * time.Second: "1m1s", 24 * time.Hour: "24h"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
