package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/issuer"
	"github.com/keylessci/keyless/internal/lint"
	"github.com/keylessci/keyless/internal/store"
)

// The trust-policy linter on the stored roles (issue 14 item 4):
// keyless_trust_findings{rule,severity} is the number of findings of
// lint.LintPolicy on the trust policies the store holds now, whatever the
// guardrail's mode (roles written before the guardrail, imported with it
// off or warn, or by an older keyless whose linter knew fewer rules).
//
// It is computed once at start, in the background (scan: every role,
// page by page; a policy the linter cannot read is logged and counted in
// keyless_trust_lint_failures, never a reason not to start), and kept up
// to date from then on by the IAM service, which tells it every committed
// CreateRole, UpdateAssumeRolePolicy and DeleteRole (iam.TrustObserver);
// no periodic rescan (the store changes only through the API while the
// server runs; a new linter comes with a restart). Every rule of the
// linter has its series, 0 when nothing fires, so that an alert on
// `keyless_trust_findings{severity="CRITICAL"} > 0` reads absent data
// as the scan not having run yet rather than as clean.
type trustFindings struct {
	// lint lints one stored trust policy (iam.Service.LintTrustPolicy).
	lint func(doc string) ([]lint.Finding, error)
	log  *slog.Logger
	now  func() time.Time

	findings *prometheus.GaugeVec
	failures prometheus.Gauge
	scanned  prometheus.Gauge

	mu sync.Mutex
	// roles are the counted findings per role (lower-case name: role
	// names are case-insensitive), failed the roles whose policy the
	// linter could not read.
	roles  map[string][]findingKey
	failed map[string]bool
	// While a scan runs, touched are the roles the API changed since it
	// began: the scan's older reading of them is dropped.
	scanning bool
	touched  map[string]bool
	// done is closed when the scan has ended (nil before it starts);
	// cancel stops it.
	done   chan struct{}
	cancel context.CancelFunc
}

type findingKey struct{ rule, severity string }

func newTrustFindings(reg prometheus.Registerer, log *slog.Logger, now func() time.Time) *trustFindings {
	t := &trustFindings{
		log: log, now: now,
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "keyless", Name: "trust_findings",
			Help: "Findings of the trust-policy linter on the stored roles' trust policies, by rule and severity (linted at start, updated on every write).",
		}, []string{"rule", "severity"}),
		failures: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "keyless", Name: "trust_lint_failures",
			Help: "Stored roles whose trust policy the linter could not read (see the log).",
		}),
		scanned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "keyless", Name: "trust_lint_scan_complete",
			Help: "1 once the start-up lint of every stored role's trust policy has finished, 0 before.",
		}),
		roles: map[string][]findingKey{}, failed: map[string]bool{}, touched: map[string]bool{},
	}
	for _, r := range lint.Rules() {
		t.findings.WithLabelValues(r.ID, r.Severity.String())
	}
	reg.MustRegister(t.findings, t.failures, t.scanned)
	return t
}

// TrustPolicyChanged implements iam.TrustObserver.
func (t *trustFindings) TrustPolicyChanged(role string, fs []lint.Finding) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setLocked(role, keysOf(fs), false)
}

// RoleDeleted implements iam.TrustObserver.
func (t *trustFindings) RoleDeleted(role string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setLocked(role, nil, false)
}

func keysOf(fs []lint.Finding) []findingKey {
	out := make([]findingKey, len(fs))
	for i, f := range fs {
		out[i] = findingKey{f.Rule, f.Severity.String()}
	}
	return out
}

// setLocked replaces a role's counted findings; fromScan is the scan's
// reading, which loses to the API's changes made while it ran.
func (t *trustFindings) setLocked(role string, keys []findingKey, fromScan bool) {
	name := strings.ToLower(role)
	if fromScan && t.touched[name] {
		return
	}
	if !fromScan && t.scanning {
		t.touched[name] = true
	}
	for _, k := range t.roles[name] {
		t.findings.WithLabelValues(k.rule, k.severity).Dec()
	}
	for _, k := range keys {
		t.findings.WithLabelValues(k.rule, k.severity).Inc()
	}
	if len(keys) == 0 {
		delete(t.roles, name)
	} else {
		t.roles[name] = keys
	}
	if t.failed[name] {
		delete(t.failed, name)
		t.failures.Set(float64(len(t.failed)))
	}
}

// start runs the scan in the background until it ends, ctx is done or
// stop is called.
func (t *trustFindings) start(ctx context.Context, st store.RoleStore) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t.mu.Lock()
	t.scanning, t.done, t.cancel = true, done, cancel
	t.mu.Unlock()
	go func() {
		defer close(done)
		t.scan(ctx, st)
	}()
}

// stop ends a started scan and waits for it (before the store closes).
func (t *trustFindings) stop() {
	t.mu.Lock()
	done, cancel := t.done, t.cancel
	t.mu.Unlock()
	if done != nil {
		cancel()
		<-done
	}
}

// scanPage is how many roles the scan reads from the store at once.
const scanPage = 100

// scan lints every stored role's trust policy. Nothing it meets stops the
// server: a policy the linter cannot read (or that makes it panic) is
// logged and counted, a store error ends the scan with a log line.
func (t *trustFindings) scan(ctx context.Context, st store.RoleStore) {
	start := t.now()
	var roles, withFindings, failures int
	defer func() {
		t.mu.Lock()
		t.scanning = false
		clear(t.touched)
		t.mu.Unlock()
	}()
	marker := ""
	for {
		page, next, err := st.List(ctx, store.ListOptions{Marker: marker, MaxItems: scanPage})
		if err != nil {
			if ctx.Err() == nil {
				t.log.Error("trust policy lint at start: cannot list the roles; keyless_trust_findings counts only the roles written from now on", "err", err)
			}
			return
		}
		for _, r := range page {
			if ctx.Err() != nil {
				return
			}
			roles++
			fs, err := t.lintSafe(r.TrustPolicy)
			t.mu.Lock()
			if err != nil {
				failures++
				if !t.touched[strings.ToLower(r.Name)] {
					t.failed[strings.ToLower(r.Name)] = true
					t.failures.Set(float64(len(t.failed)))
				}
				t.mu.Unlock()
				t.log.Warn("trust policy lint at start: the stored trust policy cannot be linted", "role", r.Name, "err", err)
				continue
			}
			t.setLocked(r.Name, keysOf(fs), true)
			t.mu.Unlock()
			if len(fs) > 0 {
				withFindings++
				t.log.Warn("stored trust policy has findings (keyless policy lint shows them)", "role", r.Name, "rules", ruleList(fs))
			}
		}
		if next == "" {
			break
		}
		marker = next
	}
	t.scanned.Set(1)
	t.log.Info("trust policies linted", "roles", roles, "with_findings", withFindings, "failures", failures,
		"duration", t.now().Sub(start).Round(time.Millisecond).String())
}

// lintSafe lints one document; a panic of the linter is an error here
// (one bad stored policy must not take the server down at start).
func (t *trustFindings) lintSafe(doc string) (fs []lint.Finding, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the linter failed: %v", v)
		}
	}()
	return t.lint(doc)
}

// ruleList is the distinct rule ids of fs, comma-separated.
func ruleList(fs []lint.Finding) string {
	var ids []string
	seen := map[string]bool{}
	for _, f := range fs {
		if !seen[f.Rule] {
			seen[f.Rule] = true
			ids = append(ids, f.Rule)
		}
	}
	return strings.Join(ids, ",")
}

// warnGuardrail logs, at start, a guardrail that is not enforcing, and
// the older switch overriding the newer setting.
func warnGuardrail(log *slog.Logger, cfg Config) {
	switch mode := cfg.GuardrailMode(); {
	case cfg.IAM.SkipSharedIssuerControls:
		log.Warn("iam.skip_shared_issuer_controls is set: the trust-policy guardrail is off, whatever guardrail says (the older spelling of guardrail: off); trust policies with CRITICAL findings are accepted",
			"guardrail", string(mode))
	case mode != iam.GuardrailEnforce:
		log.Warn("the trust-policy guardrail is not enforcing: trust policies with CRITICAL findings are accepted", "guardrail", string(mode))
	}
}

// ownIssuers are the built-in issuers as the linter recognises them.
func ownIssuers(cfg Config) []lint.OwnIssuer {
	out := make([]lint.OwnIssuer, 0, len(cfg.Issuers))
	for _, is := range cfg.Issuers {
		profile := is.Profile
		if profile == "" {
			profile = issuer.ProfileGeneric
		}
		out = append(out, lint.OwnIssuer{URL: is.URL, Profile: profile})
	}
	return out
}
