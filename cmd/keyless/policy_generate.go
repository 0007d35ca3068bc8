package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/policygen"
)

type policyGenerateFlags struct {
	role, by, start, end, output string
	diff                         string
	diffLive                     bool
	endpoint, region             string
	includeDenied, skipBad       bool
	collapseAfter, workers       int
}

func newPolicyGenerateCmd() *cobra.Command {
	f := &policyGenerateFlags{}
	cmd := &cobra.Command{
		Use:   "generate PATH... [--role NAME|ARN] [--by role|subject|claim:NAME] [--output text|json|terraform] [--diff POLICY.json | --diff-live --endpoint-url URL]",
		Short: "Least-privilege permission policies from audit events, per role or per CI project",
		Long: `Write the least-privilege permission policy each role (or each CI project
sharing a role) needs, from the calls its sessions made.

A PATH is what keyless audit query reads: a keyless data dir or its audit
folder, CloudTrail delivery or export files (.json, .json.gz), NDJSON, a
directory (read recursively), or - for standard input.

Every session is linked to the exchange that created it
(AssumeRoleWithWebIdentity: the role, the OIDC subject and the claims
keyless recorded), so --by subject writes one policy per subject and
--by claim:NAME one per value of a claim (claim:repository,
claim:project_id). Sessions whose exchange is outside the window are
attributed to the role only, and the report says so.

Actions are IAM's (CloudTrail event names that are not IAM actions are
mapped), on real resource ARNs; "*" only where the action has no
resource-level permission or the ARN cannot be known (a note says which).
More than --collapse-after ARNs under one path collapse to prefix/*. Calls a
service made with the role's credentials (kms:Decrypt behind
GetSecretValue) are kept with a kms:ViaService condition. Service events,
services' own identities, console sign-ins and other principals are
excluded and counted. Denied calls are listed apart, and added to the
policies only with --include-denied.

--output text (the default) is a readable report with each policy; json is
{"policies":[{"role":ARN,"binding":STRING|null,"policy":{...},"actions":[...]}],
"excluded":{...},"denied":[...],"unknown":[...],"stats":{...}}; terraform is one
data "aws_iam_policy_document" block per policy.

--diff POLICY.json compares the policy a role has now (a policy document,
or aws iam get-role-policy / get-policy-version output) with what was used:
grants never used (a wildcard is kept as written, with how many actions it
covers and which were used), actions used that it does not allow, and
denied calls. --diff-live reads the role's inline and attached policies
from keyless (--endpoint-url) or AWS, with credentials from the AWS
environment (iam:ListRolePolicies, GetRolePolicy, ListAttachedRolePolicies,
GetPolicy, GetPolicyVersion).

--start and --end take RFC 3339 times or times relative to now (-7d), as
keyless audit query.

Exit status: 0 done, 1 an input or a live policy could not be read, 2 a
flag is wrong.

Examples:
  keyless policy generate /var/lib/keyless --role ci-deploy --by subject
  keyless policy generate trail/ --by claim:repository --output terraform > policies.tf
  keyless policy generate cloudtrail/ --role ci-deploy --start -30d --diff current.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usageErrorf("give at least one PATH (a data dir, a trail folder, a CloudTrail file, NDJSON, or - for standard input)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPolicyGenerate(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.role, "role", "", "only this role, by name or ARN")
	fl.StringVar(&f.by, "by", "role", "one policy per role, per subject (the OIDC sub), or per value of a claim (claim:NAME)")
	fl.StringVar(&f.start, "start", "", "first event time: RFC 3339 (2026-03-04T05:06:07Z, 2026-03-04) or relative (-2h, -7d)")
	fl.StringVar(&f.end, "end", "", "end of the window (exclusive), same forms as --start")
	fl.StringVar(&f.output, "output", "text", "text (a readable report), json or terraform")
	fl.StringVar(&f.diff, "diff", "", "compare with this policy (a policy document, or aws iam get-role-policy / get-policy-version output)")
	fl.BoolVar(&f.diffLive, "diff-live", false, "compare with the role's inline and attached policies, read over the IAM API")
	fl.StringVar(&f.endpoint, "endpoint-url", "", "IAM endpoint for --diff-live (keyless's URL; default: the AWS SDK's)")
	fl.StringVar(&f.region, "region", "", "region for --diff-live's client (default: the AWS environment's, else us-east-1)")
	fl.BoolVar(&f.includeDenied, "include-denied", false, "add the actions of denied calls to the policies (they are always listed)")
	fl.IntVar(&f.collapseAfter, "collapse-after", policygen.DefaultCollapseAfter, "more ARNs than this under one path collapse to prefix/*")
	fl.BoolVar(&f.skipBad, "skip-bad", false, "count unreadable files and malformed records and go on, instead of stopping")
	fl.IntVar(&f.workers, "workers", 0, "goroutines scanning in parallel (default: one per core)")
	_ = fl.MarkHidden("workers")
	return cmd
}

func runPolicyGenerate(cmd *cobra.Command, f *policyGenerateFlags, paths []string) error {
	switch f.output {
	case "text", "json", "terraform":
	default:
		return usageErrorf("--output must be text, json or terraform")
	}
	diffing := f.diff != "" || f.diffLive
	switch {
	case f.diff != "" && f.diffLive:
		return usageErrorf("give --diff FILE or --diff-live, not both")
	case diffing && f.output == "terraform":
		return usageErrorf("--diff and --diff-live print a comparison: use --output text or json")
	case f.endpoint != "" && !f.diffLive:
		return usageErrorf("--endpoint-url is for --diff-live")
	case f.collapseAfter < 1:
		return usageErrorf("--collapse-after must be at least 1")
	}
	now := time.Now()
	opts := policygen.Options{Role: f.role, By: f.by, IncludeDenied: f.includeDenied, CollapseAfter: f.collapseAfter}
	var err error
	if opts.Scan.Start, err = parseWhen(f.start, now); err != nil {
		return usageErrorf("--start: %v", err)
	}
	if opts.Scan.End, err = parseWhen(f.end, now); err != nil {
		return usageErrorf("--end: %v", err)
	}
	if !opts.Scan.Start.IsZero() && !opts.Scan.End.IsZero() && !opts.Scan.End.After(opts.Scan.Start) {
		return usageErrorf("--end %s is not after --start %s", opts.Scan.End.Format(time.RFC3339), opts.Scan.Start.Format(time.RFC3339))
	}
	// Read --diff's file first: a wrong file is found before a long scan.
	var granted []policygen.GrantedPolicy
	if f.diff != "" {
		b, err := os.ReadFile(f.diff)
		if err != nil {
			return &exitError{1, err}
		}
		if granted, err = policygen.ReadGrantedPolicies(f.diff, b); err != nil {
			return &exitError{1, err}
		}
	}
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
	opts.Scan.SkipBad = f.skipBad
	opts.Scan.Workers = f.workers
	opts.Scan.Stdin = cmd.InOrStdin()
	prog := newProgress(stderr, now)
	if prog != nil {
		opts.Scan.Progress = prog.update
	}
	rep, err := policygen.Generate(cmd.Context(), paths, opts)
	prog.clear()
	if err != nil {
		if errors.Is(err, policygen.ErrBadOption) {
			return usageErrorf("%v", err)
		}
		return &exitError{1, err}
	}
	took := time.Since(now)

	if diffing {
		if roles := reportRoles(rep); f.diff != "" && len(roles) > 1 {
			return usageErrorf("the trail has sessions of %d roles (%s): give --role to compare %s with one role's", len(roles), strings.Join(roles, ", "), f.diff)
		}
		diffs := []*policygen.PolicyDiff{}
		live := map[string][]policygen.GrantedPolicy{} // role ARN -> its policies, read once
		for _, p := range rep.Policies {
			g := granted
			if f.diffLive {
				var ok bool
				if g, ok = live[p.Role]; !ok {
					if g, err = livePolicies(cmd.Context(), f, p.Role); err != nil {
						return &exitError{1, err}
					}
					live[p.Role] = g
				}
			}
			d, err := policygen.Diff(g, p, rep.Denied, policygen.DiffOptions{})
			if err != nil {
				return &exitError{1, err}
			}
			diffs = append(diffs, d)
		}
		if f.output == "json" {
			err = writeJSONIndent(stdout, map[string]any{"diffs": diffs})
		} else {
			err = writeDiffText(stdout, diffs)
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, generateSummary(rep, took))
		return nil
	}

	switch f.output {
	case "json":
		err = writeJSONIndent(stdout, rep)
	case "terraform":
		err = policygen.WriteTerraform(stdout, rep.Policies)
	default:
		err = writeGenerateText(stdout, rep)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, generateSummary(rep, took))
	return nil
}

func writeJSONIndent(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// reportRoles are the distinct roles of the report's policies.
func reportRoles(rep *policygen.Report) []string {
	var roles []string
	for _, p := range rep.Policies {
		if !slices.Contains(roles, p.Role) {
			roles = append(roles, p.Role)
		}
	}
	return roles
}

// generateSummary is the line written to standard error.
func generateSummary(rep *policygen.Report, took time.Duration) string {
	st := rep.Stats
	secs := max(took.Seconds(), 1e-6)
	prec := 1
	if took < time.Second {
		prec = 3
	}
	var excluded int64
	for _, n := range rep.Excluded {
		excluded += n
	}
	noun := "policies"
	if len(rep.Policies) == 1 {
		noun = "policy"
	}
	s := fmt.Sprintf("%s %s | %s events scanned in %ss @ %s events/s | %s calls used, %s denied, %s excluded | %s sessions (%s linked to an exchange)",
		grouped(int64(len(rep.Policies))), noun, grouped(st.Events), strconv.FormatFloat(took.Seconds(), 'f', prec, 64), grouped(int64(float64(st.Events)/secs)),
		grouped(st.Used), grouped(st.Denied), grouped(excluded), grouped(st.Sessions), grouped(st.SessionsLinked))
	if st.BadFiles > 0 || st.BadRecords > 0 {
		s += fmt.Sprintf(" | %s unreadable files and %s malformed records skipped", grouped(int64(st.BadFiles)), grouped(st.BadRecords))
	}
	return s
}

func bindingText(b *string) string {
	if b == nil {
		return "(none)"
	}
	return strconv.Quote(*b)
}

// writeGenerateText is the readable report: per policy its actions (read
// and write apart, failed counts), notes and document; then exclusions,
// denied and unknown calls.
func writeGenerateText(w io.Writer, rep *policygen.Report) error {
	var b strings.Builder
	if len(rep.Policies) == 0 {
		b.WriteString("No policy: no role session made a call that needs a permission in these events.\n")
	}
	for i, p := range rep.Policies {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "== %s", p.Role)
		if p.Binding != nil {
			fmt.Fprintf(&b, " binding %s", bindingText(p.Binding))
		}
		b.WriteString("\n")
		for _, ro := range []bool{true, false} {
			title := "Read-only:"
			if !ro {
				title = "Write:"
			}
			var lines []string
			for _, a := range p.Actions {
				if a.ReadOnly != ro {
					continue
				}
				line := fmt.Sprintf("  %-40s %6d calls", a.Action, a.Count)
				if a.Failed > 0 {
					line += fmt.Sprintf(", %d failed", a.Failed)
				}
				if a.Denied > 0 {
					line += fmt.Sprintf(", %d denied", a.Denied)
				}
				if a.ViaService != "" {
					line += ", via " + a.ViaService
				}
				line += "  " + strings.Join(a.Resources, " ")
				if a.Note != "" {
					line += "  (" + a.Note + ")"
				}
				lines = append(lines, line)
			}
			if len(lines) > 0 {
				b.WriteString(title + "\n" + strings.Join(lines, "\n") + "\n")
			}
		}
		for _, n := range p.Notes {
			b.WriteString("Note: " + n + "\n")
		}
		docs := p.Policies
		if len(docs) == 0 {
			docs = []json.RawMessage{p.Policy}
		} else {
			fmt.Fprintf(&b, "Split in %d documents to fit IAM's size limit:\n", len(docs))
		}
		for _, d := range docs {
			var ind strings.Builder
			if err := indentJSON(&ind, d); err != nil {
				return err
			}
			b.WriteString(ind.String())
		}
	}
	if len(rep.Excluded) > 0 {
		b.WriteString("\nExcluded events (they do not widen a policy):\n")
		for _, k := range slices.Sorted(maps.Keys(rep.Excluded)) {
			fmt.Fprintf(&b, "  %-24s %d\n", k, rep.Excluded[k])
		}
	}
	if len(rep.Denied) > 0 {
		b.WriteString("\nDenied calls (in the policies only with --include-denied):\n")
		for _, d := range rep.Denied {
			who := d.Role
			if d.Binding != nil {
				who += " binding " + bindingText(d.Binding)
			}
			fmt.Fprintf(&b, "  %s: %s on %s, %d × %s\n", who, d.Action, d.Resource, d.Count, d.ErrorCode)
		}
	}
	if len(rep.Unknown) > 0 {
		b.WriteString("\nCalls the action map does not know (not in the policies):\n")
		for _, u := range rep.Unknown {
			fmt.Fprintf(&b, "  %s %s: %d\n", u.EventSource, u.EventName, u.Count)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func indentJSON(b *strings.Builder, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	b.Write(buf.Bytes())
	b.WriteByte('\n')
	return nil
}

// writeDiffText prints each comparison: unused grants, actions used but
// not granted, denied calls, then the used actions by kind.
func writeDiffText(w io.Writer, diffs []*policygen.PolicyDiff) error {
	var b strings.Builder
	if len(diffs) == 0 {
		b.WriteString("Nothing to compare: no role session made a call that needs a permission in these events.\n")
	}
	for i, d := range diffs {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "== %s", d.Role)
		if d.Binding != nil {
			fmt.Fprintf(&b, " binding %s", bindingText(d.Binding))
		}
		fmt.Fprintf(&b, "\nCompared with: %s\n", strings.Join(d.Granted, ", "))
		fmt.Fprintf(&b, "Granted, never used in the window (%d):\n", len(d.Unused))
		for _, u := range d.Unused {
			if u.Actions <= 1 && len(u.Used) == 0 {
				fmt.Fprintf(&b, "  %s  [%s]\n", u.Grant, u.Statement)
				continue
			}
			fmt.Fprintf(&b, "  %s  [%s] covers %d actions, %d unused", u.Grant, u.Statement, u.Actions, u.Unused)
			if len(u.Used) > 0 {
				fmt.Fprintf(&b, "; used: %s", strings.Join(u.Used, ", "))
			}
			if len(u.UnusedActions) > 0 {
				fmt.Fprintf(&b, "; unused: %s", strings.Join(u.UnusedActions, ", "))
			}
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "Used, not allowed by these policies (%d):\n", len(d.NotGranted))
		for _, c := range d.NotGranted {
			fmt.Fprintf(&b, "  %s on %s: %d calls\n", c.Action, c.Resource, c.Count)
		}
		fmt.Fprintf(&b, "Used but denied (%d):\n", len(d.Denied))
		for _, c := range d.Denied {
			fmt.Fprintf(&b, "  %s on %s: %d calls\n", c.Action, c.Resource, c.Count)
		}
		for _, k := range []struct {
			title string
			l     []policygen.ActionCount
		}{{"Used, read-only", d.Used.ReadOnly}, {"Used, write", d.Used.Write}, {"Failed (not denied)", d.Used.Failed}} {
			if len(k.l) == 0 {
				continue
			}
			parts := make([]string, len(k.l))
			for j, a := range k.l {
				parts[j] = fmt.Sprintf("%s (%d)", a.Action, a.Count)
			}
			fmt.Fprintf(&b, "%s: %s\n", k.title, strings.Join(parts, ", "))
		}
		for _, n := range d.Notes {
			b.WriteString("Note: " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// livePolicies reads a role's inline and attached (default version)
// policies over the IAM API.
func livePolicies(ctx context.Context, f *policyGenerateFlags, roleARN string) ([]policygen.GrantedPolicy, error) {
	client, where, err := liveIAMClient(ctx, f.region, f.endpoint, "--diff-live needs credentials allowed to call iam:ListRolePolicies, GetRolePolicy, ListAttachedRolePolicies, GetPolicy and GetPolicyVersion")
	if err != nil {
		return nil, err
	}
	name := roleARN[strings.LastIndexByte(roleARN, '/')+1:]
	var out []policygen.GrantedPolicy
	inline := awsiam.NewListRolePoliciesPaginator(client, &awsiam.ListRolePoliciesInput{RoleName: aws.String(name)})
	for inline.HasMorePages() {
		page, err := inline.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the inline policies of role %s at %s: %w", name, where, err)
		}
		for _, pn := range page.PolicyNames {
			p, err := client.GetRolePolicy(ctx, &awsiam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
			if err != nil {
				return nil, fmt.Errorf("reading inline policy %s of role %s at %s: %w", pn, name, where, err)
			}
			doc, err := policygen.DecodePolicyDocument(aws.ToString(p.PolicyDocument))
			if err != nil {
				return nil, fmt.Errorf("inline policy %s of role %s: %w", pn, name, err)
			}
			out = append(out, policygen.GrantedPolicy{Name: "inline " + pn, Document: doc})
		}
	}
	attached := awsiam.NewListAttachedRolePoliciesPaginator(client, &awsiam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	for attached.HasMorePages() {
		page, err := attached.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the attached policies of role %s at %s: %w", name, where, err)
		}
		for _, ap := range page.AttachedPolicies {
			arn := aws.ToString(ap.PolicyArn)
			pol, err := client.GetPolicy(ctx, &awsiam.GetPolicyInput{PolicyArn: aws.String(arn)})
			if err != nil {
				return nil, fmt.Errorf("reading policy %s at %s: %w", arn, where, err)
			}
			if pol.Policy == nil || pol.Policy.DefaultVersionId == nil {
				return nil, fmt.Errorf("reading policy %s at %s: the answer has no default version", arn, where)
			}
			v, err := client.GetPolicyVersion(ctx, &awsiam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: pol.Policy.DefaultVersionId})
			if err != nil {
				return nil, fmt.Errorf("reading policy %s version %s at %s: %w", arn, aws.ToString(pol.Policy.DefaultVersionId), where, err)
			}
			if v.PolicyVersion == nil {
				return nil, fmt.Errorf("reading policy %s at %s: the answer has no version", arn, where)
			}
			doc, err := policygen.DecodePolicyDocument(aws.ToString(v.PolicyVersion.Document))
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", arn, err)
			}
			out = append(out, policygen.GrantedPolicy{Name: arn, Document: doc})
		}
	}
	return out, nil
}
