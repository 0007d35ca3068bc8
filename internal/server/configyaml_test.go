package server

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writeConfig(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyless.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigFileErrors: every error names the file, the line and the key
// path, in YAML's terms (never "JSON"); an unknown key says the nearest
// valid one; every problem of a file is reported; a file with errors
// changes nothing.
func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // the error's lines, "F" standing for the file
	}{
		{name: "top-level typo", yaml: "listn: 127.0.0.1:9000\n",
			want: []string{`config F:1: listn: unknown key; did you mean listen?`}},
		{name: "nested typo", yaml: "audit:\n  seal_interval: 1m\n  seal_intervl: 2m\n",
			want: []string{`config F:3: audit.seal_intervl: unknown key; did you mean seal_interval?`}},
		{name: "other case", yaml: "Account_ID: \"123456789012\"\n",
			want: []string{`config F:1: Account_ID: unknown key; did you mean account_id?`}},
		{name: "camel case", yaml: "audit:\n  sealInterval: 1m\n",
			want: []string{`config F:2: audit.sealInterval: unknown key; did you mean seal_interval?`}},
		{name: "nothing near", yaml: "tls:\n  zzzzzz: 1\n",
			want: []string{`config F:2: tls.zzzzzz: unknown key; valid keys here: cert_file, key_file`}},
		{name: "bad duration", yaml: "audit:\n  seal_interval: soon\n",
			want: []string{`config F:2: audit.seal_interval: invalid duration "soon" (use forms like 30s, 5m, 1h)`}},
		{name: "bare number duration", yaml: "sts:\n  clock_leeway: 30\n",
			want: []string{`config F:2: sts.clock_leeway: invalid duration "30" (use forms like 30s, 5m, 1h)`}},
		{name: "bad integer", yaml: "http:\n  max_body_bytes: 1MB\n",
			want: []string{`config F:2: http.max_body_bytes: want a whole number, got "1MB"`}},
		{name: "integer out of range", yaml: "limits:\n  roles: 99999999999999999999\n",
			want: []string{`config F:2: limits.roles: want a whole number in range, got "99999999999999999999"`}},
		{name: "bad float", yaml: "refusal_limit:\n  rate: fast\n",
			want: []string{`config F:2: refusal_limit.rate: want a number, got "fast"`}},
		{name: "bad boolean", yaml: "audit:\n  stdout: maybe\n",
			want: []string{`config F:2: audit.stdout: want true or false, got "maybe"`}},
		{name: "scalar for a list", yaml: "audit:\n  redact_claims: email\n",
			want: []string{`config F:2: audit.redact_claims: want a list (lines starting with "- ", or [a, b]), got "email"`}},
		{name: "scalar for a mapping", yaml: "audit: 5\n",
			want: []string{`config F:1: audit: want a mapping (key: value lines), got "5"`}},
		{name: "list for a value", yaml: "listen: [a, b]\n",
			want: []string{`config F:1: listen: want a single value, got a list`}},
		{name: "issuer typo", yaml: "issuers:\n  - id: a\n    url: https://a.example\n  - id: b\n    urll: https://b.example\n",
			want: []string{`config F:5: issuers[1].urll: unknown key; did you mean url?`}},
		{name: "given twice", yaml: "listen: a:1\nregion: x\nlisten: b:2\n",
			want: []string{`config F:3: listen: given twice (first on line 1)`}},
		{name: "every problem", yaml: "listn: x\naudit:\n  seal_interval: soon\nhttp:\n  max_body_bytes: lots\n",
			want: []string{
				`config F:1: listn: unknown key; did you mean listen?`,
				`config F:3: audit.seal_interval: invalid duration "soon" (use forms like 30s, 5m, 1h)`,
				`config F:5: http.max_body_bytes: want a whole number, got "lots"`,
			}},
		{name: "not a mapping", yaml: "- listen\n",
			want: []string{`config F:1: want a mapping (key: value lines), got a list`}},
		{name: "second document", yaml: "listen: a:1\n---\nregion: x\n",
			want: []string{`config F:2: a second YAML document (---): keep the configuration in one`}},
		{name: "merge key", yaml: "base: &b\n  cert_file: x\ntls:\n  <<: *b\n",
			want: []string{`config F:1: base: unknown key; valid keys here: ` + strings.Join(sortedKeys(configFields(reflect.TypeFor[Config]())), ", "),
				`config F:4: tls.<<: merge keys (<<) are not supported: write the keys out`}},
		{name: "syntax", yaml: "listen: [\n",
			want: []string{`config F: yaml: line 1: did not find expected node content`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.yaml)
			c := Defaults()
			err := c.LoadFile(p)
			if err == nil {
				t.Fatalf("no error for %q", tc.yaml)
			}
			got := strings.Split(strings.ReplaceAll(err.Error(), p, "F"), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if strings.Contains(strings.ToLower(err.Error()), "json") {
				t.Errorf("the error speaks of JSON: %v", err)
			}
			if diff := cmp.Diff(Defaults(), c); diff != "" {
				t.Errorf("a file with errors changed the configuration:\n%s", diff)
			}
		})
	}
}

// TestConfigFileValues: what a file may say and what it means.
func TestConfigFileValues(t *testing.T) {
	p := writeConfig(t, `
listen: 0.0.0.0:8400
account_id: 012345678901     # digits as written, not an octal number
allow_loopback_http_issuers: yes
issuers:
  - id: gh
    url: https://keyless.example.com/gh
    token_lifetime: 15m
  - &second
    id: gl
    url: https://keyless.example.com/gl
audit:
  seal_interval: 1m
  redact_claims: [email, actor]
  max_disk_bytes: 0x40000000
  disk_alarm_ratio: 0.75
refusal_limit:
  exempt: []
  max_sources: 016384
http:
  read_timeout:          # empty: the default stays
`)
	c := Defaults()
	if err := c.LoadFile(p); err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Listen = "0.0.0.0:8400"
	want.AccountID = "012345678901"
	want.AllowLoopbackHTTPIssuers = true
	want.Issuers = []IssuerConfig{{ID: "gh", URL: "https://keyless.example.com/gh", TokenLifetime: Duration(15 * time.Minute)}, {ID: "gl", URL: "https://keyless.example.com/gl"}}
	want.Audit.SealInterval = Duration(time.Minute)
	want.Audit.RedactClaims = []string{"email", "actor"}
	want.Audit.MaxDiskBytes = 1 << 30
	want.Audit.DiskAlarmRatio = 0.75
	want.RefusalLimit.Exempt = []string{}
	want.RefusalLimit.MaxSources = 16384
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	// JSON is YAML too.
	c = Defaults()
	if err := c.LoadFile(writeConfig(t, `{"listen": "127.0.0.1:1", "audit": {"stdout": true}}`)); err != nil || c.Listen != "127.0.0.1:1" || !c.Audit.Stdout {
		t.Errorf("JSON file: %v %+v", err, c)
	}
	// An empty file changes nothing.
	c = Defaults()
	if err := c.LoadFile(writeConfig(t, "# nothing\n")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Defaults(), c); diff != "" {
		t.Errorf("empty file changed:\n%s", diff)
	}
}

func TestParseBool(t *testing.T) {
	for _, s := range []string{"1", "true", "TRUE", "True", "yes", "Yes", "on", "ON", "t", "y", " true "} {
		if b, err := ParseBool(s); err != nil || !b {
			t.Errorf("ParseBool(%q) = %v, %v", s, b, err)
		}
	}
	for _, s := range []string{"0", "false", "FALSE", "no", "No", "off", "Off", "f", "n"} {
		if b, err := ParseBool(s); err != nil || b {
			t.Errorf("ParseBool(%q) = %v, %v", s, b, err)
		}
	}
	for _, s := range []string{"", "2", "enabled", "truee", "nope"} {
		if _, err := ParseBool(s); err == nil {
			t.Errorf("ParseBool(%q) accepted", s)
		}
	}
}

// TestApplyEnvBooleans: KEYLESS_* booleans take the usual spellings; any
// other value is an error naming the variable, not a silent false.
func TestApplyEnvBooleans(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    bool
		wantErr string
	}{
		{value: "1", want: true}, {value: "TRUE", want: true}, {value: "yes", want: true}, {value: "On", want: true},
		{value: "0", want: false}, {value: "False", want: false}, {value: "no", want: false}, {value: "OFF", want: false},
		{value: "enabled", wantErr: `KEYLESS_ALLOW_LOOPBACK_HTTP_ISSUERS="enabled": want true or false`},
	} {
		c := Defaults()
		c.AllowLoopbackHTTPIssuers = !tc.want
		err := c.ApplyEnv(func(k string) string {
			if k == "KEYLESS_ALLOW_LOOPBACK_HTTP_ISSUERS" {
				return tc.value
			}
			return ""
		})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err = %v, want %q", tc.value, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.AllowLoopbackHTTPIssuers != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.value, c.AllowLoopbackHTTPIssuers, err, tc.want)
		}
	}
}

// FuzzConfigFile: no input makes the decoder panic, and an accepted file
// validates or fails validation cleanly.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"listen: 127.0.0.1:1\n", "audit:\n  seal_interval: 1m\n", "issuers:\n  - id: a\n    url: https://a\n",
		"a: &x [1]\nb: *x\n", "listen: [\n", "- 1\n", "---\n---\n", "http: {max_body_bytes: 0x10}\n", "limits:\n  roles: -1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Defaults()
		if err := decodeConfigYAML("f.yaml", []byte(s), &c); err == nil {
			_ = c.Validate()
		}
	})
}

// TestConfigFileErrorCap: aliases cannot turn a small file into an
// unbounded list of errors.
func TestConfigFileErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("x: &m\n")
	for i := range 11 {
		fmt.Fprintf(&b, "  bad%d: 1\n", i)
	}
	b.WriteString("l: &l [" + strings.Repeat("*m, ", 999) + "*m]\nissuers: *l\n")
	c := Defaults()
	err := c.LoadFile(writeConfig(t, b.String()))
	if err == nil {
		t.Fatal("accepted")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != maxConfigErrors+1 || !strings.Contains(err.Error(), "more errors follow") {
		t.Errorf("%d error lines:\n%s", n, err)
	}
}
