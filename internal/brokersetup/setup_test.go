package brokersetup

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/testenv"

	"github.com/keylessci/keyless/internal/tfhcl"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	tpTrusted   = "0123456789abcdef0123456789abcdef01234567"
	tpUntrusted = "fedcba9876543210fedcba9876543210fedcba98"
)

// plans are the setups the golden files show.
var plans = []struct {
	name string
	in   Input
}{
	{"tagged", Input{
		KeylessRoleARN: "arn:aws:iam::111111111111:role/ci-deploy", MaxSessionDuration: 3600,
		UpstreamRoleARN: "arn:aws:iam::222222222222:role/ci-deploy", Tagged: true,
		IssuerURL:   "https://keyless.example.com/oidc",
		Thumbprints: []Thumbprint{{Host: "keyless.example.com", Value: tpTrusted, Trusted: true}},
	}},
	{"untagged-path", Input{
		KeylessRoleARN: "arn:aws:iam::111111111111:role/teams/web.deploy@prod", MaxSessionDuration: 7200,
		UpstreamRoleARN: "arn:aws:iam::222222222222:role/brokered/web.deploy@prod",
		KeylessEndpoint: "https://keyless.internal:8400",
		IssuerURL:       "https://oidc.example.com/ci",
		Thumbprints: []Thumbprint{
			{Host: "keys.example.com", Value: tpUntrusted},
			{Host: "oidc.example.com", Value: tpTrusted, Trusted: true},
		},
	}},
	{"loopback", Input{
		KeylessRoleARN: "arn:aws:iam::111111111111:role/ci-deploy", MaxSessionDuration: 43200,
		UpstreamRoleARN: "arn:aws:iam::222222222222:role/ci-deploy",
		KeylessEndpoint: "http://127.0.0.1:8400",
		IssuerURL:       "http://127.0.0.1:8400/oidc",
	}},
}

// TestGolden renders each plan as Terraform and as AWS CLI commands and
// compares with testdata/<name>.{tf,sh} (go test -update rewrites them).
// The Terraform must be in terraform fmt's canonical form (terraform fmt
// -check, when terraform is installed; required under CI=true), and the
// script must parse (sh -n).
func TestGolden(t *testing.T) {
	for _, tc := range plans {
		p, err := NewPlan(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, form := range []struct {
			ext   string
			write func(*Plan, *bytes.Buffer) error
		}{
			{"tf", func(p *Plan, b *bytes.Buffer) error { return p.WriteTerraform(b) }},
			{"sh", func(p *Plan, b *bytes.Buffer) error { return p.WriteCLI(b) }},
		} {
			t.Run(tc.name+"."+form.ext, func(t *testing.T) {
				var b bytes.Buffer
				if err := form.write(p, &b); err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join("testdata", tc.name+"."+form.ext), b.Bytes())
			})
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// TestTerraformFmt runs terraform fmt -check on the Terraform of every
// plan.
func TestTerraformFmt(t *testing.T) {
	bin := testenv.RequireCommand(t, "terraform")
	dir := t.TempDir()
	for _, tc := range plans {
		p, err := NewPlan(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := p.WriteTerraform(&b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, tc.name+".tf"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "fmt", "-check", "-diff", "-no-color", dir)
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("terraform fmt -check: %v\n%s", err, out)
	}
}

// TestScriptParses checks every CLI script with sh -n.
func TestScriptParses(t *testing.T) {
	sh := testenv.RequireCommand(t, "sh")
	for _, tc := range plans {
		p, err := NewPlan(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := p.WriteCLI(&b); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = &b
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", tc.name, err, out)
		}
	}
}

// TestTrustPolicy checks the trust policy's meaning rather than its text:
// exactly one statement, the provider of the upstream account, StringEquals
// on the issuer's :aud and :sub with the keyless role's subject.
func TestTrustPolicy(t *testing.T) {
	p, err := NewPlan(plans[1].in)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(p.TrustPolicy(), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid": "KeylessBroker", "Effect": "Allow",
			"Principal": map[string]any{"Federated": "arn:aws:iam::222222222222:oidc-provider/oidc.example.com/ci"},
			"Action":    []any{"sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"},
			"Condition": map[string]any{"StringEquals": map[string]any{
				"oidc.example.com/ci:aud": "sts.amazonaws.com",
				"oidc.example.com/ci:sub": "keyless:111111111111:role/web.deploy@prod",
			}},
		}},
	}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestCheckIssuer(t *testing.T) {
	for _, tc := range []struct {
		url      string
		prefix   string
		loopback bool
		bad      bool
	}{
		{url: "https://keyless.example.com/oidc", prefix: "keyless.example.com/oidc"},
		{url: "https://auth.example.com/", prefix: "auth.example.com/"},
		{url: "https://oidc.example.com", prefix: "oidc.example.com"},
		{url: "http://127.0.0.1:8400/oidc", prefix: "127.0.0.1:8400/oidc", loopback: true},
		{url: "http://localhost:9/x", prefix: "localhost:9/x", loopback: true},
		{url: "http://[::1]:9/x", prefix: "[::1]:9/x", loopback: true},
		{url: "https://127.0.0.1:8443/oidc", prefix: "127.0.0.1:8443/oidc", loopback: true},
		{url: "https://127.0.0.1/oidc", prefix: "127.0.0.1/oidc"}, // https, no port: as AWS would see it
		{url: "http://keyless.example.com/oidc", bad: true},
		{url: "https://keyless.example.com:8443/oidc", bad: true},
		{url: "https://keyless.example.com:443/oidc", bad: true},
		{url: "https://keyless.example.com/oidc?x=1", bad: true},
		{url: "https://keyless.example.com/oidc#f", bad: true},
		{url: "https://u@keyless.example.com/oidc", bad: true},
		{url: "ftp://keyless.example.com/oidc", bad: true},
		{url: "keyless.example.com/oidc", bad: true},
		{url: "", bad: true},
		{url: "https://" + strings.Repeat("a", 250) + ".com", bad: true},
	} {
		got, err := CheckIssuer(tc.url)
		if tc.bad {
			if !errors.Is(err, ErrInput) {
				t.Errorf("CheckIssuer(%q) = %+v, %v; want ErrInput", tc.url, got, err)
			}
			continue
		}
		if err != nil || got.Prefix != tc.prefix || got.Loopback != tc.loopback {
			t.Errorf("CheckIssuer(%q) = %+v, %v; want prefix %q loopback %v", tc.url, got, err, tc.prefix, tc.loopback)
		}
	}
}

func TestNewPlanRefuses(t *testing.T) {
	base := plans[0].in
	for _, tc := range []struct {
		name string
		edit func(*Input)
	}{
		{"keyless role not an ARN", func(in *Input) { in.KeylessRoleARN = "ci-deploy" }},
		{"upstream role not a role ARN", func(in *Input) { in.UpstreamRoleARN = "arn:aws:iam::222222222222:user/x" }},
		{"upstream account short", func(in *Input) { in.UpstreamRoleARN = "arn:aws:iam::2222:role/x" }},
		{"session duration too long", func(in *Input) { in.MaxSessionDuration = 43201 }},
		{"session duration unset", func(in *Input) { in.MaxSessionDuration = 0 }},
		{"https issuer without thumbprint", func(in *Input) { in.Thumbprints = nil }},
		{"thumbprint in upper case", func(in *Input) { in.Thumbprints = []Thumbprint{{Value: strings.ToUpper(tpTrusted)}} }},
		{"six thumbprints", func(in *Input) { in.Thumbprints = make([]Thumbprint, 6) }},
		{"untagged without a keyless endpoint", func(in *Input) { in.Tagged = false; in.KeylessEndpoint = "" }},
		{"issuer with a port", func(in *Input) { in.IssuerURL = "https://keyless.example.com:8443/oidc" }},
	} {
		in := base
		tc.edit(&in)
		if _, err := NewPlan(in); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", tc.name, err)
		}
	}
}

func TestParseRoleARN(t *testing.T) {
	for _, tc := range []struct {
		arn  string
		want RoleARN
		bad  bool
	}{
		{arn: "arn:aws:iam::222222222222:role/ci", want: RoleARN{Partition: "aws", Account: "222222222222", Path: "/", Name: "ci"}},
		{arn: "arn:aws:iam::222222222222:role/a/b/ci", want: RoleARN{Partition: "aws", Account: "222222222222", Path: "/a/b/", Name: "ci"}},
		{arn: "arn:aws-cn:iam::222222222222:role/x+=,.@-_", want: RoleARN{Partition: "aws-cn", Account: "222222222222", Path: "/", Name: "x+=,.@-_"}},
		{arn: "arn:aws:iam::222222222222:role/", bad: true},
		{arn: "arn:aws:iam::222222222222:role/a/", bad: true},
		{arn: "arn:aws:iam::222222222222:role/" + strings.Repeat("n", 65), bad: true},
		{arn: "arn:aws:sts::222222222222:assumed-role/x/y", bad: true},
		{arn: "arn:aws:iam::22222222222a:role/x", bad: true},
		{arn: "arn:aws:iam::222222222222:role/a b", bad: true},
	} {
		got, err := ParseRoleARN(tc.arn)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseRoleARN(%q) = %+v, want an error", tc.arn, got)
			}
			continue
		}
		tc.want.ARN = tc.arn
		if err != nil || got != tc.want {
			t.Errorf("ParseRoleARN(%q) = %+v, %v; want %+v", tc.arn, got, err, tc.want)
		}
	}
}

func TestHCLStringAndShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:       `"plain"`,
		`a"b\c`:       `"a\"b\\c"`,
		"${x} %{y} $": `"$${x} %%{y} $"`,
		"l\nr\tz\x01": `"l\nr\tz\u0001"`,
	} {
		if got := tfhcl.Quote(in); got != want {
			t.Errorf("tfhcl.Quote(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"arn:aws:iam::1:role/a@b": "arn:aws:iam::1:role/a@b",
		"it's (x)":                `'it'\''s (x)'`,
		`[{"Key":"k"}]`:           `'[{"Key":"k"}]'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRevokePolicy(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 1, time.UTC)
	cut := RevokeTime(now)
	if want := time.Date(2026, 3, 4, 5, 6, 8, 0, time.UTC); !cut.Equal(want) {
		t.Errorf("RevokeTime(%s) = %s, want %s (rounded up)", now, cut, want)
	}
	if whole := now.Truncate(time.Second); !RevokeTime(whole).Equal(whole) {
		t.Errorf("RevokeTime of a whole second moved it")
	}
	doc := RevokePolicy(cut)
	var p map[string]any
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Deny", "Action": []any{"*"}, "Resource": []any{"*"},
		"Condition": map[string]any{"DateLessThan": map[string]any{"aws:TokenIssueTime": "2026-03-04T05:06:08Z"}},
	}}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	for _, d := range []string{doc, strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", ":", "%3A", ",", "%2C").Replace(doc)} {
		got, ok := RevokedBefore(d)
		if !ok || !got.Equal(cut) {
			t.Errorf("RevokedBefore(%.40s…) = %s, %v; want %s", d, got, ok, cut)
		}
	}
	for _, d := range []string{`{}`, `not json`, `{"Statement":[{"Effect":"Allow","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-03-04T05:06:08Z"}}}]}`} {
		if _, ok := RevokedBefore(d); ok {
			t.Errorf("RevokedBefore(%s) ok", d)
		}
	}
}

// FuzzCheckIssuer: CheckIssuer never panics, and what it accepts is
// https without a port unless it is a loopback test issuer, and a prefix
// that is the URL without its scheme.
func FuzzCheckIssuer(f *testing.F) {
	for _, s := range []string{"https://keyless.example.com/oidc", "http://127.0.0.1:8400/oidc", "https://a:1/", "http://[::1]:2/x", "https://x/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		is, err := CheckIssuer(s)
		if err != nil {
			return
		}
		if !is.Loopback && !strings.HasPrefix(s, "https://") {
			t.Fatalf("accepted %q as a non-loopback issuer", s)
		}
		if "https://"+is.Prefix != s && "http://"+is.Prefix != s {
			t.Fatalf("prefix %q of %q", is.Prefix, s)
		}
	})
}

// FuzzParseRoleARN: what parses puts back together into the ARN.
func FuzzParseRoleARN(f *testing.F) {
	for _, s := range []string{"arn:aws:iam::222222222222:role/a/b/ci", "arn:aws:iam::1:role/x", "arn:aws-us-gov:iam::222222222222:role//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRoleARN(s)
		if err != nil {
			return
		}
		if got := "arn:" + r.Partition + ":iam::" + r.Account + ":role" + r.Path + r.Name; got != s {
			t.Fatalf("%q parsed into %+v", s, r)
		}
	})
}
