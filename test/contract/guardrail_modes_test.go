package contract

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Issue 14 item 4: the guardrail's modes through a real `keyless serve`
// and the real AWS CLI.

// looseGitHubTrust admits every GitHub repository (sub "repo:*": TP002,
// CRITICAL; AWS's own control accepts it, its value not starting with
// "*").
const looseGitHubTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::` + accountID +
	`:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{` +
	`"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},` +
	`"StringLike":{"token.actions.githubusercontent.com:sub":"repo:*"}}}]}`

// guardrailServer starts keyless serve on dataDir with `guardrail: mode`
// in its config file ("" : no config file, the default).
func guardrailServer(t *testing.T, dataDir, mode string) *server {
	t.Helper()
	if mode == "" {
		return startServer(t, dataDir)
	}
	cfg := filepath.Join(t.TempDir(), "keyless.yaml")
	if err := os.WriteFile(cfg, []byte("guardrail: "+mode+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServer(t, dataDir, "--config", cfg)
}

// policyFile writes doc and returns the file:// argument the CLI reads.
func policyFile(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trust.json")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + p
}

// reTrustHeader finds the findings header in `aws --debug` output (botocore
// logs the response headers as a dict).
var reTrustHeader = regexp.MustCompile(`(?i)'x-keyless-trust-findings': '([^']*)'`)

func trustHeader(r cliResult) (string, bool) {
	m := reTrustHeader.FindStringSubmatch(r.Stderr)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// trustEvents are the trail's events of eventName, in order.
func trustEvents(t *testing.T, dataDir, eventName string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range trailEventsOf(t, dataDir) {
		if e.EventName == eventName {
			out = append(out, e.AdditionalEventData)
		}
	}
	return out
}

// recordedRules are the rules of additionalEventData.trustPolicyFindings,
// with their severities ("TP002 CRITICAL").
func recordedRules(t *testing.T, add map[string]any) []string {
	t.Helper()
	list, _ := add["trustPolicyFindings"].([]any)
	var out []string
	for _, x := range list {
		f, _ := x.(map[string]any)
		if len(f) != 4 || f["message"] == "" || f["statement"] == nil {
			t.Errorf("recorded finding is not {rule, severity, statement, message}: %v", f)
		}
		out = append(out, f["rule"].(string)+" "+f["severity"].(string))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestGuardrailModesCLI: with the default configuration (enforce) `aws iam
// create-role` with a CRITICAL trust policy is refused with
// MalformedPolicyDocument, the finding's message and the token that gets
// in; with `guardrail: warn` create-role and update-assume-role-policy
// succeed, the response carries X-Keyless-Trust-Findings and the trail's
// event the finding; with `guardrail: off` the role is created with
// neither. A server started on the data dir holding the loose roles
// exports them in keyless_trust_findings once its start-up lint is done.
func TestGuardrailModesCLI(t *testing.T) {
	t.Parallel()
	doc := policyFile(t, looseGitHubTrust)

	t.Run("enforce", func(t *testing.T) {
		t.Parallel()
		s := guardrailServer(t, "", "")
		r := s.aws(t, "iam", "create-role", "--role-name", "loose", "--assume-role-policy-document", doc)
		wantAWSError(t, r, "MalformedPolicyDocument")
		msg := strings.Join(strings.Fields(r.Stderr), " ")
		for _, want := range []string{
			"which is not scoped to all.",
			"A token of another tenant is admitted by statement 0 (TP002",
			`sub="repo:`,
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
			}
		}
		wantAWSError(t, s.aws(t, "iam", "get-role", "--role-name", "loose"), "NoSuchEntity")
	})

	dataDir := t.TempDir()
	t.Run("warn", func(t *testing.T) {
		s := guardrailServer(t, dataDir, "warn")
		r := s.aws(t, "--debug", "iam", "create-role", "--role-name", "loose", "--assume-role-policy-document", doc)
		if r.Code != 0 {
			t.Fatalf("create-role in warn mode: %s", tail(r.Stderr, 20))
		}
		h, ok := trustHeader(r)
		if !ok || !contains(strings.Split(h, ","), "TP002") {
			t.Errorf("X-Keyless-Trust-Findings = %q (present %v), want TP002 among them", h, ok)
		}
		if r := s.aws(t, "iam", "create-role", "--role-name", "tight", "--assume-role-policy-document",
			policyFile(t, strings.Replace(looseGitHubTrust, "repo:*", "repo:acme/app:ref:refs/heads/main", 1))); r.Code != 0 {
			t.Fatalf("create-role tight: %s", r.Stderr)
		}
		r = s.aws(t, "--debug", "iam", "update-assume-role-policy", "--role-name", "tight", "--policy-document", doc)
		if r.Code != 0 {
			t.Fatalf("update-assume-role-policy in warn mode: %s", tail(r.Stderr, 20))
		}
		if h, _ := trustHeader(r); !contains(strings.Split(h, ","), "TP002") {
			t.Errorf("update-assume-role-policy: X-Keyless-Trust-Findings = %q", h)
		}
		warned := 0
		for _, l := range s.logLines("trust policy stored with findings") {
			if rules, _ := l["rules"].(string); l["level"] == "WARN" && contains(strings.Split(rules, ","), "TP002") {
				warned++
			}
		}
		if warned != 2 {
			t.Errorf("%d warnings naming TP002 in the log, want 2 (create-role loose, update-assume-role-policy tight)", warned)
		}
		s.stop(t)
		for _, name := range []string{"CreateRole", "UpdateAssumeRolePolicy"} {
			evs := trustEvents(t, dataDir, name)
			if len(evs) == 0 {
				t.Fatalf("no %s event", name)
			}
			add := evs[0] // CreateRole: "loose", before "tight"
			if add["guardrail"] != "warn" || !contains(recordedRules(t, add), "TP002 CRITICAL") {
				t.Errorf("%s event additionalEventData = %v", name, add)
			}
		}
	})

	t.Run("off", func(t *testing.T) {
		t.Parallel()
		offDir := t.TempDir()
		s := guardrailServer(t, offDir, "off")
		r := s.aws(t, "--debug", "iam", "create-role", "--role-name", "loose", "--assume-role-policy-document", doc)
		if r.Code != 0 {
			t.Fatalf("create-role in off mode: %s", tail(r.Stderr, 20))
		}
		if h, ok := trustHeader(r); ok {
			t.Errorf("off mode sent X-Keyless-Trust-Findings: %q", h)
		}
		s.stop(t)
		for _, add := range trustEvents(t, offDir, "CreateRole") {
			if add["trustPolicyFindings"] != nil {
				t.Errorf("off mode recorded findings: %v", add)
			}
		}
	})

	t.Run("metric at start", func(t *testing.T) {
		// The warn server's data dir holds two roles with TP002; this
		// server enforces, and still reports what is stored.
		s := guardrailServer(t, dataDir, "")
		const sample = `keyless_trust_findings{rule="TP002",severity="CRITICAL"}`
		deadline := time.Now().Add(10 * time.Second)
		for s.metric(t, "keyless_trust_lint_scan_complete") != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the start-up lint did not finish within 10s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := s.metric(t, sample); got != 2 {
			t.Errorf("%s = %v, want 2 (roles loose and tight)", sample, got)
		}
		if got := s.metric(t, `keyless_trust_findings{rule="TP019",severity="CRITICAL"}`); got != 0 {
			t.Errorf("a rule that does not fire has %v, want a 0 series", got)
		}
		lines := s.logLines("stored trust policy has findings (keyless policy lint shows them)")
		if len(lines) != 2 {
			t.Errorf("start-up log lines for the stored roles: %v", lines)
		}
		// Fixing a role moves the gauge at once.
		if r := s.aws(t, "iam", "update-assume-role-policy", "--role-name", "tight", "--policy-document",
			policyFile(t, strings.Replace(looseGitHubTrust, "repo:*", "repo:acme/app:ref:refs/heads/main", 1))); r.Code != 0 {
			t.Fatalf("update-assume-role-policy: %s", r.Stderr)
		}
		if got := s.metric(t, sample); got != 1 {
			t.Errorf("after fixing tight: %s = %v, want 1", sample, got)
		}
		if r := s.aws(t, "iam", "delete-role", "--role-name", "loose"); r.Code != 0 {
			t.Fatalf("delete-role: %s", r.Stderr)
		}
		if got := s.metric(t, sample); got != 0 {
			t.Errorf("after deleting loose: %s = %v, want 0", sample, got)
		}
	})
}
