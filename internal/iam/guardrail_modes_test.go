package iam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/lint"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

// observed is a TrustObserver that keeps what it is told.
type observed struct {
	mu     sync.Mutex
	events []string // "set ROLE RULES" or "delete ROLE"
}

func (o *observed) TrustPolicyChanged(role string, fs []lint.Finding) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, "set "+role+" "+findingRules(fs))
}

func (o *observed) RoleDeleted(role string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, "delete "+role)
}

func (o *observed) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ev := o.events
	o.events = nil
	return ev
}

func guardService(t *testing.T, o Options) *Service {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o.Store, o.Account = st, "111122223333"
	o.Now = func() time.Time { return time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC) }
	o.Rand = seededReader{rand.NewChaCha8([32]byte{7})}
	return New(o)
}

// callRequest runs one action's handler and returns the request, with
// what the handler noted for the audit event and the response headers.
func callRequest(t *testing.T, s *Service, action string, params url.Values) (*awsquery.Request, error) {
	t.Helper()
	for _, a := range s.Actions() {
		if a.Name == action {
			r := &awsquery.Request{Action: action, RequestID: "req-1", Params: awsquery.ParamsFromValues(params)}
			_, err := a.Handle(context.Background(), r)
			return r, err
		}
	}
	t.Fatalf("no action %s", action)
	return nil, nil
}

func storedTrust(t *testing.T, s *Service, role string) string {
	t.Helper()
	r, err := s.st.Roles().Get(context.Background(), role)
	if err != nil {
		return ""
	}
	return r.TrustPolicy
}

// TestGuardrailModes: the three modes on CreateRole and
// UpdateAssumeRolePolicy with a trust policy whose CRITICAL finding
// (TP002: "repo:*" admits every GitHub repository) the linter proves with
// a probe. enforce refuses it with MalformedPolicyDocument and the probe,
// storing nothing; warn stores it and records the finding in the audit
// note, the X-Keyless-Trust-Findings header and the observer; off stores
// it silently (the observer, which feeds the metric, still hears of it).
// iam.skip_shared_issuer_controls is off whatever the mode says.
func TestGuardrailModes(t *testing.T) {
	loose := ghSubDoc("StringLike", `"repo:*"`)
	good := ghSubDoc("StringEquals", `"repo:acme/app:ref:refs/heads/main"`)
	tests := []struct {
		name   string
		opts   Options
		refuse bool
		record bool
	}{
		{"default is enforce", Options{}, true, false},
		{"enforce", Options{Guardrail: GuardrailEnforce}, true, false},
		{"warn", Options{Guardrail: GuardrailWarn}, false, true},
		{"off", Options{Guardrail: GuardrailOff}, false, false},
		{"skip_shared_issuer_controls wins over warn", Options{Guardrail: GuardrailWarn, SkipSharedIssuerControls: true}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs := &observed{}
			tc.opts.TrustObserver = obs
			s := guardService(t, tc.opts)
			// What the linter finds (other rules than TP002 fire too, and
			// more are being written): the observer and the header carry
			// exactly that.
			rulesOf := func(doc string) string {
				fs, err := s.LintTrustPolicy(doc)
				if err != nil {
					t.Fatal(err)
				}
				return findingRules(fs)
			}
			looseRules, goodRules := rulesOf(loose), rulesOf(good)
			if !strings.Contains(looseRules, "TP002") || strings.Contains(goodRules, "TP002") {
				t.Fatalf("the linter finds %q on the loose policy, %q on the good one", looseRules, goodRules)
			}
			for _, step := range []struct {
				action string
				params url.Values
			}{
				{"CreateRole", url.Values{"RoleName": {"loose"}, "AssumeRolePolicyDocument": {loose}}},
				{"UpdateAssumeRolePolicy", url.Values{"RoleName": {"Tight"}, "PolicyDocument": {loose}}},
			} {
				if step.action == "UpdateAssumeRolePolicy" {
					if _, err := callRequest(t, s, "CreateRole", url.Values{"RoleName": {"tight"}, "AssumeRolePolicyDocument": {good}}); err != nil {
						t.Fatal(err)
					}
					if got := obs.take(); !cmp.Equal(got, []string{"set tight " + goodRules}) {
						t.Errorf("observer after a clean CreateRole: %q", got)
					}
				}
				r, err := callRequest(t, s, step.action, step.params)
				role := step.params.Get("RoleName")
				if tc.refuse {
					wantGuardrail(t, err)
					if got := storedTrust(t, s, role); got == loose {
						t.Errorf("%s: the refused policy was stored", step.action)
					}
					if r.ResponseHeader != nil || r.Note.Additional != nil {
						t.Errorf("%s: a refusal noted findings: %v %v", step.action, r.ResponseHeader, r.Note.Additional)
					}
					if got := obs.take(); len(got) != 0 {
						t.Errorf("%s: observer told of a refused write: %q", step.action, got)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", step.action, err)
				}
				if got := storedTrust(t, s, role); got != loose {
					t.Errorf("%s: stored %q", step.action, got)
				}
				if got := obs.take(); !cmp.Equal(got, []string{"set " + role + " " + looseRules}) {
					t.Errorf("%s: observer: %q", step.action, got)
				}
				if !tc.record {
					if r.ResponseHeader != nil || r.Note.Additional != nil {
						t.Errorf("%s: off mode noted findings: %v %v", step.action, r.ResponseHeader, r.Note.Additional)
					}
					continue
				}
				if got := r.ResponseHeader.Get(HeaderTrustFindings); got != looseRules {
					t.Errorf("%s: header %s = %q, want %q", step.action, HeaderTrustFindings, got, looseRules)
				}
				if got := r.Note.Additional["guardrail"]; got != "warn" {
					t.Errorf("%s: additionalEventData.guardrail = %v", step.action, got)
				}
				list, _ := r.Note.Additional["trustPolicyFindings"].([]map[string]any)
				i := slices.IndexFunc(list, func(f map[string]any) bool { return f["rule"] == "TP002" })
				if i < 0 {
					t.Fatalf("%s: trustPolicyFindings = %#v", step.action, r.Note.Additional["trustPolicyFindings"])
				}
				f := list[i]
				msg, _ := f["message"].(string)
				if f["severity"] != "CRITICAL" || f["statement"] != 0 ||
					!strings.Contains(msg, "which is not scoped to all.") || !strings.Contains(msg, `sub="repo:`) {
					t.Errorf("%s: recorded finding %#v", step.action, f)
				}
				for _, f := range list {
					if len(f) != 4 {
						t.Errorf("%s: the recorded finding is not compact: %#v", step.action, f)
					}
				}
			}
			if _, err := callRequest(t, s, "DeleteRole", url.Values{"RoleName": {"tight"}}); err != nil {
				t.Fatal(err)
			}
			if got := obs.take(); !cmp.Equal(got, []string{"delete tight"}) {
				t.Errorf("observer after DeleteRole: %q", got)
			}
		})
	}
}

// TestGuardrailEnforcesEveryCriticalRule: enforce refuses a CRITICAL
// finding of any rule of the linter, not only the shared-issuer control's,
// with the finding's message followed by its probe; a finding below
// CRITICAL is let through and recorded. The linter is a stand-in here
// (rules outside the shared-issuer control are being written), on a
// policy the shared-issuer control accepts.
func TestGuardrailEnforcesEveryCriticalRule(t *testing.T) {
	good := ghSubDoc("StringEquals", `"repo:acme/app:ref:refs/heads/main"`)
	probe := &lint.Probe{Kind: lint.KindOtherTenant, Claims: map[string]string{"sub": "repo:acme/app:pull_request", "aud": "sts.amazonaws.com"}}
	finding := func(sev lint.Severity) []lint.Finding {
		return []lint.Finding{{Rule: "TP099", Severity: sev, Statement: 0, Message: "The pattern admits a pull-request subject", Probe: probe}}
	}
	for _, tc := range []struct {
		sev    lint.Severity
		refuse bool
	}{{lint.SeverityCritical, true}, {lint.SeverityHigh, false}, {lint.SeverityMedium, false}} {
		t.Run(tc.sev.String(), func(t *testing.T) {
			obs := &observed{}
			s := guardService(t, Options{TrustObserver: obs})
			s.lintPolicy = func(*policy.Policy, lint.Options) []lint.Finding { return finding(tc.sev) }
			r, err := callRequest(t, s, "CreateRole", url.Values{"RoleName": {"r"}, "AssumeRolePolicyDocument": {good}})
			if !tc.refuse {
				if err != nil {
					t.Fatal(err)
				}
				if got := r.ResponseHeader.Get(HeaderTrustFindings); got != "TP099" {
					t.Errorf("header %q", got)
				}
				if r.Note.Additional["guardrail"] != "enforce" || r.Note.Additional["trustPolicyFindings"] == nil {
					t.Errorf("not recorded: %v", r.Note.Additional)
				}
				return
			}
			ae, ok := errors.AsType[*awsquery.Error](err)
			if !ok || ae.Code != awsquery.CodeMalformedPolicyDocument || ae.HTTPStatus() != http.StatusBadRequest {
				t.Fatalf("err = %v, want MalformedPolicyDocument (400)", err)
			}
			want := `The pattern admits a pull-request subject. (TP099, statement 0) A token that gets in: sub="repo:acme/app:pull_request", aud="sts.amazonaws.com".`
			if ae.Message != want {
				t.Errorf("message\n got %s\nwant %s", ae.Message, want)
			}
			if f, ok := errors.AsType[*lint.Finding](err); !ok || f.Rule != "TP099" {
				t.Errorf("internal cause: %v", ae.Err)
			}
			if storedTrust(t, s, "r") != "" || len(obs.take()) != 0 {
				t.Error("a refused role was stored or observed")
			}
		})
	}
}

// TestRefusalMessage: the probe is appended once; a message that shows
// it already (the shared-issuer control's) is kept as it is.
func TestRefusalMessage(t *testing.T) {
	pb := &lint.Probe{Claims: map[string]string{"sub": "repo:x/y:ref:refs/heads/main"}, Missing: "environment"}
	tests := []struct {
		f    lint.Finding
		want string
	}{
		{lint.Finding{Rule: "TP001", Statement: 2, Message: "No sub condition.", Probe: pb},
			`No sub condition. (TP001, statement 2) A token that gets in: sub="repo:x/y:ref:refs/heads/main", no environment.`},
		{lint.Finding{Rule: "TP002", Message: `admitted: sub="repo:x/y:ref:refs/heads/main".`, Probe: pb},
			`admitted: sub="repo:x/y:ref:refs/heads/main".`},
		{lint.Finding{Rule: "TP019", Message: "Duplicate key."}, "Duplicate key."},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if got := refusalMessage(&tc.f); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseGuardrailMode(t *testing.T) {
	for in, want := range map[string]GuardrailMode{"": GuardrailEnforce, "enforce": GuardrailEnforce, "warn": GuardrailWarn, "off": GuardrailOff} {
		if got, err := ParseGuardrailMode(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"Enforce", "on", "false", "warning"} {
		if _, err := ParseGuardrailMode(in); !errors.Is(err, ErrGuardrailMode) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

// TestLintTrustPolicy: the start-up lint reads stored documents, also one
// with duplicate keys (TP019) that writes refuse today, and reports a
// document it cannot parse as an error.
func TestLintTrustPolicy(t *testing.T) {
	s := guardService(t, Options{})
	fs, err := s.LintTrustPolicy(ghSubDoc("StringLike", `"repo:*"`))
	if err != nil || !strings.Contains(findingRules(fs), "TP002") {
		t.Errorf("loose: %v %v", findingRules(fs), err)
	}
	dup := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Effect":"Allow","Principal":{"Federated":"` + ghProvider + `"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`
	if fs, err := s.LintTrustPolicy(dup); err != nil || findingRules(fs) != "TP019" {
		t.Errorf("duplicate keys: %v %v", findingRules(fs), err)
	}
	if _, err := s.LintTrustPolicy(`{"Version":`); err == nil {
		t.Error("a broken document linted")
	}
}

// TestGuardrailLinterPanics: a linter bug on one policy answers that
// request: enforce fails closed with ServiceFailure and stores nothing;
// warn accepts the policy unchecked (nothing recorded, nothing observed).
func TestGuardrailLinterPanics(t *testing.T) {
	good := ghSubDoc("StringEquals", `"repo:acme/app:ref:refs/heads/main"`)
	for _, mode := range []GuardrailMode{GuardrailEnforce, GuardrailWarn} {
		t.Run(string(mode), func(t *testing.T) {
			obs := &observed{}
			s := guardService(t, Options{Guardrail: mode, TrustObserver: obs})
			s.lintPolicy = func(*policy.Policy, lint.Options) []lint.Finding { panic("rule bug") }
			r, err := callRequest(t, s, "CreateRole", url.Values{"RoleName": {"r"}, "AssumeRolePolicyDocument": {good}})
			if mode == GuardrailEnforce {
				ae, ok := errors.AsType[*awsquery.Error](err)
				if !ok || ae.Code != awsquery.CodeServiceFailure || !errors.Is(err, errLinterFailed) {
					t.Fatalf("err = %v, want ServiceFailure wrapping errLinterFailed", err)
				}
				if storedTrust(t, s, "r") != "" {
					t.Error("stored although unchecked")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if storedTrust(t, s, "r") != good || r.ResponseHeader != nil || r.Note.Additional != nil || len(obs.take()) != 0 {
				t.Errorf("warn: stored %v, header %v, note %v", storedTrust(t, s, "r") == good, r.ResponseHeader, r.Note.Additional)
			}
		})
	}
}
