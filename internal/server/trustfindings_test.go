package server

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/lint"
	"github.com/keylessci/keyless/internal/store"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

const tfProvider = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"

func tfTrust(op, sub string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + tfProvider +
		`"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"` + op + `":{"token.actions.githubusercontent.com:sub":"` + sub + `"}}}]}`
}

type chachaReader struct{ r *rand.ChaCha8 }

func (c chachaReader) Read(p []byte) (int, error) { return c.r.Read(p) }

// tfStore is a store holding roles written with the guardrail off (as
// imported roles are), and the IAM service that lints them.
func tfStore(t *testing.T, roles map[string]string) (store.Store, *iam.Service) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := iam.New(iam.Options{Store: st, Account: "123456789012", Guardrail: iam.GuardrailOff,
		Now: func() time.Time { return time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC) }, Rand: chachaReader{rand.NewChaCha8([32]byte{5})}})
	for name, doc := range roles {
		// Straight into the store: a document written before today's
		// parser (or by hand) need not parse.
		r := &store.Role{RoleID: "AROA" + strings.ToUpper(name), Name: name, Path: "/", ARN: "arn:aws:iam::123456789012:role/" + name,
			TrustPolicy: doc, MaxSessionDuration: 3600, CreateDate: time.Unix(0, 0)}
		if err := st.Roles().Create(context.Background(), r, 1000); err != nil {
			t.Fatal(err)
		}
	}
	return st, svc
}

// gaugeValues reads every series of the trust metrics: "rule/severity",
// "failures", "complete".
func gaugeValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "keyless_trust_findings":
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				out[l["rule"]+"/"+l["severity"]] = m.GetGauge().GetValue()
			case "keyless_trust_lint_failures":
				out["failures"] = m.GetGauge().GetValue()
			case "keyless_trust_lint_scan_complete":
				out["complete"] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func wantGauges(t *testing.T, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	got := gaugeValues(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// TestTrustFindingsAtStart: the start-up scan lints every stored role
// (more than one page of the store's listing), counts the findings by
// rule and severity, and counts (never fails on) a stored policy that
// does not parse or makes the linter panic; every rule has a 0 series.
// Then the API's writes move the counts: a role fixed, a role deleted, a
// broken one replaced.
func TestTrustFindingsAtStart(t *testing.T) {
	roles := map[string]string{
		"loose":     tfTrust("StringLike", "repo:*"),
		"lookalike": tfTrust("StringLike", "repo:acme*"),
		"broken":    `{"Version":"2012-10-17","Statement":[`,
		"panics":    tfTrust("StringEquals", "repo:acme/panic:ref:refs/heads/main"),
	}
	for i := range scanPage + 5 {
		roles["good-"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26))] = tfTrust("StringEquals", "repo:acme/app:ref:refs/heads/main")
	}
	st, svc := tfStore(t, roles)
	reg := prometheus.NewRegistry()
	tf := newTrustFindings(reg, slog.New(slog.DiscardHandler), time.Now)
	linted := 0
	tf.lint = func(doc string) ([]lint.Finding, error) {
		linted++
		if strings.Contains(doc, "panic") {
			panic("boom")
		}
		return svc.LintTrustPolicy(doc)
	}
	wantGauges(t, reg, map[string]float64{"TP001/CRITICAL": 0, "TP002/CRITICAL": 0, "complete": 0})
	tf.start(context.Background(), st.Roles())
	<-tf.done
	if linted != len(roles) {
		t.Errorf("linted %d roles, want %d", linted, len(roles))
	}
	wantGauges(t, reg, map[string]float64{"TP001/CRITICAL": 0, "TP002/CRITICAL": 1, "TP005/CRITICAL": 1, "failures": 2, "complete": 1})

	tf.TrustPolicyChanged("LOOSE", nil) // fixed (names are case-insensitive)
	tf.RoleDeleted("lookalike")
	tf.TrustPolicyChanged("broken", []lint.Finding{{Rule: "TP001", Severity: lint.SeverityCritical}})
	wantGauges(t, reg, map[string]float64{"TP001/CRITICAL": 1, "TP002/CRITICAL": 0, "TP005/CRITICAL": 0, "failures": 1})
	tf.stop()
}

// TestTrustFindingsScanLosesToWrites: a role the API changes while the
// scan is linting its older policy keeps the API's findings (the scan's
// reading is stale); without the touched set the stale TP002 would stay
// counted.
func TestTrustFindingsScanLosesToWrites(t *testing.T) {
	st, svc := tfStore(t, map[string]string{"loose": tfTrust("StringLike", "repo:*")})
	reg := prometheus.NewRegistry()
	tf := newTrustFindings(reg, slog.New(slog.DiscardHandler), time.Now)
	entered, release := make(chan struct{}), make(chan struct{})
	tf.lint = func(doc string) ([]lint.Finding, error) {
		close(entered)
		<-release
		return svc.LintTrustPolicy(doc)
	}
	tf.start(context.Background(), st.Roles())
	<-entered
	tf.TrustPolicyChanged("loose", nil) // UpdateAssumeRolePolicy to a clean policy
	close(release)
	<-tf.done
	wantGauges(t, reg, map[string]float64{"TP002/CRITICAL": 0, "complete": 1})
	tf.TrustPolicyChanged("loose", []lint.Finding{{Rule: "TP002", Severity: lint.SeverityCritical}})
	wantGauges(t, reg, map[string]float64{"TP002/CRITICAL": 1})
}

// TestTrustFindingsThroughTheServer: a server started on a store holding
// a loose role exports it once the scan ends; CreateRole in warn mode
// adds to the count through the IAM service's observer.
func TestTrustFindingsThroughTheServer(t *testing.T) {
	cfg := Defaults()
	cfg.Data, cfg.AccountID, cfg.Guardrail = t.TempDir(), "123456789012", "warn"
	s, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := &store.Role{RoleID: "AROAOLD", Name: "old", Path: "/", ARN: "arn:aws:iam::123456789012:role/old",
		TrustPolicy: tfTrust("StringLike", "repo:*"), MaxSessionDuration: 3600, CreateDate: time.Unix(0, 0)}
	if err := s.store.Roles().Create(context.Background(), r, 1000); err != nil {
		t.Fatal(err)
	}
	s.trust.start(context.Background(), s.store.Roles())
	<-s.trust.done
	wantGauges(t, s.metrics.reg, map[string]float64{"TP002/CRITICAL": 1, "complete": 1})
	for _, a := range s.iam.Actions() {
		if a.Name == "CreateRole" {
			req := &awsquery.Request{Action: a.Name, Params: awsquery.ParamsFromValues(url.Values{
				"RoleName": {"new"}, "AssumeRolePolicyDocument": {tfTrust("StringLike", "repo:acme*")}})}
			if _, err := a.Handle(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantGauges(t, s.metrics.reg, map[string]float64{"TP002/CRITICAL": 1, "TP005/CRITICAL": 1})
}

// TestGuardrailConfig: guardrail loads from the file, is validated, and
// iam.skip_shared_issuer_controls turns it off whatever it says.
func TestGuardrailConfig(t *testing.T) {
	tests := []struct {
		yaml    string
		want    iam.GuardrailMode
		invalid bool
	}{
		{"", iam.GuardrailEnforce, false},
		{"guardrail: warn\n", iam.GuardrailWarn, false},
		{"guardrail: off\n", iam.GuardrailOff, false},
		{"guardrail: enforce\niam:\n  skip_shared_issuer_controls: true\n", iam.GuardrailOff, false},
		{"guardrail: warn\niam:\n  skip_shared_issuer_controls: true\n", iam.GuardrailOff, false},
		{"guardrail: Warn\n", "", true},
		{"guardrail: strict\n", "", true},
	}
	for _, tc := range tests {
		c := Defaults()
		p := filepath.Join(t.TempDir(), "keyless.yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.LoadFile(p); err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		err := c.Validate()
		if tc.invalid {
			if !errors.Is(err, iam.ErrGuardrailMode) {
				t.Errorf("%q: Validate = %v, want ErrGuardrailMode", tc.yaml, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if got := c.GuardrailMode(); got != tc.want {
			t.Errorf("%q: mode %q, want %q", tc.yaml, got, tc.want)
		}
	}
}
