package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/lint"
	"github.com/keylessci/keyless/internal/policy"
)

// The guardrail's modes (issue 14): what CreateRole and
// UpdateAssumeRolePolicy do with the findings of the trust-policy linter
// (lint.LintPolicy, every rule it runs).
//
//   - enforce (the default) refuses a trust policy with a CRITICAL
//     finding, and everything the shared-issuer control refuses
//     (guardrail.go: AWS's identity-provider control and any token of
//     another tenant of a shared issuer), with MalformedPolicyDocument and
//     the finding's message and probe. A policy it accepts with findings
//     below CRITICAL is recorded as in warn mode.
//   - warn accepts the policy and records its findings: in the call's
//     audit event (additionalEventData.trustPolicyFindings), in the
//     response header X-Keyless-Trust-Findings (the rule ids) and in the
//     log.
//   - off neither refuses nor records. The findings are still computed
//     for a TrustObserver (the server's keyless_trust_findings metric).
type GuardrailMode string

// The values of GuardrailMode.
const (
	GuardrailEnforce GuardrailMode = "enforce"
	GuardrailWarn    GuardrailMode = "warn"
	GuardrailOff     GuardrailMode = "off"
)

// ErrGuardrailMode is returned by ParseGuardrailMode for another word.
var ErrGuardrailMode = errors.New("want enforce, warn or off")

// ParseGuardrailMode reads a mode; "" is the default, enforce.
func ParseGuardrailMode(s string) (GuardrailMode, error) {
	switch m := GuardrailMode(s); m {
	case "":
		return GuardrailEnforce, nil
	case GuardrailEnforce, GuardrailWarn, GuardrailOff:
		return m, nil
	}
	return "", fmt.Errorf("guardrail %q: %w", s, ErrGuardrailMode)
}

// HeaderTrustFindings is the response header of a CreateRole or
// UpdateAssumeRolePolicy that stored a trust policy with findings: their
// distinct rule ids in id order, comma-separated ("TP001,TP005").
const HeaderTrustFindings = "X-Keyless-Trust-Findings"

// maxRecordedFindings bounds the findings one audit event lists; the
// number left out is recorded with them.
const maxRecordedFindings = 20

// TrustObserver is told about every committed change of a role's trust
// policy (the role name as the caller spelled it; role names are
// case-insensitive). It must be safe for concurrent use.
type TrustObserver interface {
	// TrustPolicyChanged: the role now has a trust policy with these
	// findings (none: a clean policy).
	TrustPolicyChanged(role string, fs []lint.Finding)
	// RoleDeleted: the role and its trust policy are gone.
	RoleDeleted(role string)
}

// trustCheck is the guardrail's verdict on a trust policy it accepts.
type trustCheck struct {
	// findings are LintPolicy's; linted is unset when the policy was not
	// linted (off mode without an observer).
	findings []lint.Finding
	linted   bool
	// record is set when the findings go to the audit event, the header
	// and the log (enforce and warn).
	record bool
}

// LintOptions are the options the guardrail lints with: the service's
// account, clock, keyless's own issuers and the linter's randomness.
func (s *Service) LintOptions() lint.Options {
	return lint.Options{Account: s.account, Now: s.now, Rand: s.lintRand, OwnIssuers: s.ownIssuers}
}

// LintTrustPolicy lints a stored trust policy as the guardrail does (the
// server's start-up lint). A document with duplicate JSON keys, which
// current writes refuse, is a TP019 finding; any other document the
// parser refuses is an error.
func (s *Service) LintTrustPolicy(doc string) ([]lint.Finding, error) {
	p, err := policy.ParseWithOptions(doc, policy.KindTrust, policy.Options{MaxSize: -1})
	if err != nil {
		rep, lerr := lint.Lint([]byte(doc), s.LintOptions())
		if lerr != nil {
			return nil, err
		}
		return rep.Findings, nil
	}
	return s.lintPolicy(p, s.LintOptions()), nil
}

// guardTrustPolicy applies the guardrail's mode to a trust policy that
// passed validation: a refusal is MalformedPolicyDocument.
func (s *Service) guardTrustPolicy(doc string) (trustCheck, error) {
	if s.guardrail == GuardrailOff && s.observer == nil {
		return trustCheck{}, nil
	}
	p, err := policy.ParseWithOptions(doc, policy.KindTrust, policy.Options{MaxSize: -1})
	if err != nil {
		return trustCheck{}, PolicyError(err) // validatePolicyDocument parsed it already
	}
	if s.guardrail == GuardrailEnforce {
		// AWS's control and keyless's semantic reading of it, as before
		// the modes: its refusals keep their exact message.
		if err := s.checkSharedIssuerControls(p); err != nil {
			return trustCheck{}, err
		}
	}
	fs, err := s.lintSafe(p)
	if err != nil {
		if s.guardrail == GuardrailEnforce {
			// Fail closed: a policy the linter cannot check is not
			// written while it enforces.
			return trustCheck{}, awsquery.Internal(awsquery.CodeServiceFailure, err)
		}
		s.log.Error("the trust-policy linter failed; the policy is accepted unchecked", "guardrail", string(s.guardrail), "err", err)
		return trustCheck{}, nil
	}
	if s.guardrail == GuardrailEnforce {
		for i := range fs {
			if fs[i].Severity == lint.SeverityCritical {
				f := fs[i]
				return trustCheck{}, awsquery.NewError(awsquery.CodeMalformedPolicyDocument, refusalMessage(&f)).Wrap(&f)
			}
		}
	}
	return trustCheck{findings: fs, linted: true, record: s.guardrail != GuardrailOff}, nil
}

// errLinterFailed wraps a panic of the linter.
var errLinterFailed = errors.New("the trust-policy linter failed")

// lintSafe is lintPolicy with a panic turned into an error: a linter
// bug on one policy must answer that request, not drop the connection.
func (s *Service) lintSafe(p *policy.Policy) (fs []lint.Finding, err error) {
	defer func() {
		if v := recover(); v != nil {
			fs, err = nil, fmt.Errorf("%w: %v", errLinterFailed, v)
		}
	}()
	return s.lintPolicy(p, s.LintOptions()), nil
}

// refusalMessage is a finding's message followed by the probe that
// proves it, unless the message shows it already (the shared-issuer
// findings do).
func refusalMessage(f *lint.Finding) string {
	msg := f.Message
	sum := probeClaims(f.Probe)
	if sum == "" || strings.Contains(msg, sum) {
		return msg
	}
	for _, part := range strings.Split(sum, ", ") {
		if strings.Contains(msg, part) {
			return msg
		}
	}
	msg = strings.TrimSpace(msg)
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return fmt.Sprintf("%s (%s, statement %d) A token that gets in: %s.", msg, f.Rule, f.Statement, sum)
}

// probeClaims renders a probe's claims, subject first, the others by name:
// `sub="repo:acme-x7k2/app:ref:refs/heads/main", aud="sts.amazonaws.com"`;
// "" without a probe.
func probeClaims(pb *lint.Probe) string {
	if pb == nil || len(pb.Claims) == 0 {
		return ""
	}
	names := make([]string, 0, len(pb.Claims))
	for n := range pb.Claims {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "sub":
			return -1
		case b == "sub":
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Quote(pb.Claims[n])
	}
	if pb.Missing != "" {
		parts = append(parts, "no "+pb.Missing)
	}
	return strings.Join(parts, ", ")
}

// recordFindings puts an accepted trust policy's findings in the call's
// audit event (before the store writes: the event is recorded at commit)
// and the log.
func (s *Service) recordFindings(ctx context.Context, r *awsquery.Request, role string, tc trustCheck) {
	if !tc.record || len(tc.findings) == 0 {
		return
	}
	list := make([]map[string]any, 0, min(len(tc.findings), maxRecordedFindings))
	for _, f := range tc.findings[:min(len(tc.findings), maxRecordedFindings)] {
		list = append(list, map[string]any{
			"rule": f.Rule, "severity": f.Severity.String(), "statement": f.Statement, "message": f.Message,
		})
	}
	if r.Note.Additional == nil {
		r.Note.Additional = map[string]any{}
	}
	r.Note.Additional["guardrail"] = string(s.guardrail)
	r.Note.Additional["trustPolicyFindings"] = list
	if n := len(tc.findings) - len(list); n > 0 {
		r.Note.Additional["trustPolicyFindingsOmitted"] = n
	}
	level := slog.LevelInfo
	for _, f := range tc.findings {
		if f.Severity >= lint.SeverityHigh {
			level = slog.LevelWarn
		}
	}
	s.log.Log(ctx, level, "trust policy stored with findings", "action", r.Action, "role", role,
		"guardrail", string(s.guardrail), "rules", findingRules(tc.findings), "request_id", r.RequestID)
}

// trustStored tells the response and the observer about a trust policy
// the store now holds.
func (s *Service) trustStored(r *awsquery.Request, role string, tc trustCheck) {
	if tc.record && len(tc.findings) > 0 {
		if r.ResponseHeader == nil {
			r.ResponseHeader = http.Header{}
		}
		r.ResponseHeader.Set(HeaderTrustFindings, findingRules(tc.findings))
	}
	if s.observer != nil && tc.linted {
		s.observer.TrustPolicyChanged(role, tc.findings)
	}
}

// findingRules is the distinct rule ids of fs in id order, comma-separated.
func findingRules(fs []lint.Finding) string {
	ids := make([]string, 0, len(fs))
	for _, f := range fs {
		ids = append(ids, f.Rule)
	}
	slices.Sort(ids)
	return strings.Join(slices.Compact(ids), ",")
}

// discardLogger is the logger of a Service given none.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
