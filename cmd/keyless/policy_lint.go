package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/ciauth"
	"github.com/keylessci/keyless/internal/lint"
)

// lintDeps are what `policy lint` draws on besides its flags: the probes'
// randomness and clock (tests make them deterministic).
type lintDeps struct {
	rand io.Reader
	now  func() time.Time
}

func newPolicyLintCmd() *cobra.Command { return newPolicyLintCmdWith(lintDeps{}) }

type policyLintFlags struct {
	endpoint, region string
	role             string
	allRoles         bool
	output           string
	failOn           string
	baseline         string
}

func newPolicyLintCmdWith(deps lintDeps) *cobra.Command {
	var f policyLintFlags
	cmd := &cobra.Command{
		Use:   "lint [FILE|DIR|-]... [--endpoint-url URL --all-roles | --role NAME]",
		Short: "Find trust-policy pitfalls (TP001-TP040), each proven by a token the policy admits and should not",
		Long: `Lint trust policies for the pitfalls of OIDC federation. A finding about
what a policy admits carries a probe: the claims of a token the policy
admits and should not (another tenant's, a pull request's, a run without
a claim, ...), as decided by the evaluator keyless's STS uses. Findings
about a policy's shape (keys the issuer does not expose, empty lists,
duplicate keys) have none. Each finding has a suggested fix (the
statement's Condition tightened, or what to do).

Inputs: a trust policy; a role as 'aws iam get-role' prints it; the
output of 'aws iam list-roles' or 'aws iam get-account-authorization-details';
a Terraform plan ('terraform show -json': every aws_iam_role's
assume_role_policy); a directory (its *.json files, recursively); '-' for
standard input; live roles over the IAM API with --role NAME or
--all-roles (keyless with --endpoint-url, or AWS; credentials from the
AWS environment).

--baseline FILE names the previous version of the one policy linted (a
trust policy or get-role output): TP040 then reports drift, what the new
document admits that the old one refused (a new subject, statement or
looser operator).

The rules that ran are listed in every output (text summary, json
"rules", SARIF tool.driver.rules). Exit status: 1 when a finding at or above --fail-on exists, 0
otherwise, 2 for input that cannot be read or a policy that does not
parse.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPolicyLint(cmd, args, &f, deps)
		},
	}
	cmd.Flags().StringVar(&f.endpoint, "endpoint-url", "", "IAM endpoint for --role/--all-roles (keyless's URL; default: the AWS SDK's, AWS_ENDPOINT_URL_IAM or AWS)")
	cmd.Flags().StringVar(&f.region, "region", "", "SigV4 signing region for --role/--all-roles (default: from the AWS configuration, else us-east-1)")
	cmd.Flags().StringVar(&f.role, "role", "", "lint this role's trust policy, read over the IAM API")
	cmd.Flags().BoolVar(&f.allRoles, "all-roles", false, "lint the trust policy of every role, read over the IAM API")
	cmd.Flags().StringVar(&f.output, "output", "text", "text, json or sarif")
	cmd.Flags().StringVar(&f.failOn, "fail-on", "HIGH", "exit 1 when a finding of this severity or higher exists: INFO, LOW, MEDIUM, HIGH or CRITICAL")
	cmd.Flags().StringVar(&f.baseline, "baseline", "", "the previous version of the policy linted (one input only): report drift (TP040)")
	cmd.MarkFlagsMutuallyExclusive("role", "all-roles")
	return cmd
}

// lintDoc is one trust policy to lint.
type lintDoc struct {
	// file names it in the output: a path, "-" for stdin, a path with
	// the role or the Terraform address, or a role's ARN.
	file string
	// uri is the artifact of SARIF results: the file's path ("" for a
	// live role).
	uri string
	// direct: the document is the file's own text, so the finding's
	// line is the file's.
	direct  bool
	doc     []byte
	account string
}

// lintResult is one finding with the document it is in.
type lintResult struct {
	doc *lintDoc
	f   lint.Finding
}

func runPolicyLint(cmd *cobra.Command, args []string, f *policyLintFlags, deps lintDeps) error {
	switch f.output {
	case "text", "json", "sarif":
	default:
		return usageErrorf("--output must be text, json or sarif, not %q", f.output)
	}
	failOn, ok := parseSeverity(f.failOn)
	if !ok {
		return usageErrorf("--fail-on must be INFO, LOW, MEDIUM, HIGH or CRITICAL, not %q", f.failOn)
	}
	live := f.role != "" || f.allRoles
	if len(args) == 0 && !live {
		return usageErrorf("nothing to lint: give FILE, DIR or - (standard input), or --role NAME or --all-roles")
	}
	if f.endpoint != "" && !live {
		return usageErrorf("--endpoint-url reads roles: give --role NAME or --all-roles with it")
	}
	stderr := cmd.ErrOrStderr()
	var docs []*lintDoc
	var inputErrs []error
	fail := func(err error) {
		fmt.Fprintln(stderr, "keyless policy lint:", err)
		inputErrs = append(inputErrs, err)
	}
	for _, arg := range args {
		ds, err := readLintInput(arg, cmd.InOrStdin(), stderr)
		if err != nil {
			fail(err)
		}
		docs = append(docs, ds...)
	}
	if live {
		ds, err := liveRoles(cmd.Context(), f)
		if err != nil {
			fail(err)
		}
		docs = append(docs, ds...)
	}
	var baseline []byte
	if f.baseline != "" {
		if len(docs) != 1 || len(inputErrs) > 0 {
			return usageErrorf("--baseline compares one policy with its previous version: give exactly one policy to lint (got %d)", len(docs))
		}
		bs, err := readLintInput(f.baseline, cmd.InOrStdin(), stderr)
		if err != nil {
			return exitCode(exitUsage, fmt.Errorf("--baseline: %w", err))
		}
		if len(bs) != 1 {
			return usageErrorf("--baseline %s holds %d policies: give one", f.baseline, len(bs))
		}
		baseline = bs[0].doc
	}
	var results []lintResult
	linted := 0
	for _, d := range docs {
		rep, err := lint.Lint(d.doc, lint.Options{Account: d.account, Rand: deps.rand, Now: deps.now, Baseline: baseline})
		if err != nil {
			fail(fmt.Errorf("%s: %w", d.file, err))
			continue
		}
		linted++
		for _, fd := range rep.Findings {
			results = append(results, lintResult{doc: d, f: fd})
		}
	}
	out := cmd.OutOrStdout()
	var err error
	switch f.output {
	case "json":
		err = writeLintJSON(out, results)
	case "sarif":
		err = writeLintSARIF(out, results)
	default:
		err = writeLintText(out, results, linted, len(inputErrs))
	}
	if err != nil {
		return err
	}
	if len(inputErrs) > 0 {
		return exitCode(exitUsage, fmt.Errorf("%d input(s) could not be linted", len(inputErrs)))
	}
	n := 0
	for _, r := range results {
		if r.f.Severity >= failOn {
			n++
		}
	}
	if n > 0 {
		return exitCode(exitFailure, fmt.Errorf("%d finding(s) at or above %s", n, failOn))
	}
	return nil
}

func parseSeverity(s string) (lint.Severity, bool) {
	for sev := lint.SeverityInfo; sev <= lint.SeverityCritical; sev++ {
		if strings.EqualFold(s, sev.String()) {
			return sev, true
		}
	}
	return 0, false
}

// readLintInput reads one argument: a file, a directory or "-".
func readLintInput(arg string, stdin io.Reader, stderr io.Writer) ([]*lintDoc, error) {
	if arg == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return extractDocs("-", "stdin", data)
	}
	info, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		data, err := os.ReadFile(arg)
		if err != nil {
			return nil, err
		}
		return extractDocs(arg, filepath.ToSlash(arg), data)
	}
	var docs []*lintDoc
	err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.EqualFold(filepath.Ext(path), ".json") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ds, err := extractDocs(path, filepath.ToSlash(path), data)
		if errors.Is(err, errNotPolicy) {
			// A directory holds other JSON too.
			fmt.Fprintf(stderr, "keyless policy lint: skipped %s: %v\n", path, err)
			return nil
		}
		if err != nil {
			return err
		}
		docs = append(docs, ds...)
		return nil
	})
	return docs, err
}

var errNotPolicy = errors.New("neither a trust policy, a role, a list of roles, account authorization details nor a Terraform plan")

// extractDocs finds the trust policies in one input. A document that is
// not a JSON object is taken for a policy, so that the parser says where
// it is broken.
func extractDocs(file, uri string, data []byte) ([]*lintDoc, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return []*lintDoc{{file: file, uri: uri, direct: true, doc: data}}, nil
	}
	get := func(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
		for k, v := range m {
			if strings.EqualFold(k, key) {
				return v, true
			}
		}
		return nil, false
	}
	if _, ok := get(top, "Statement"); ok {
		return []*lintDoc{{file: file, uri: uri, direct: true, doc: data}}, nil
	}
	type role struct {
		RoleName                 string
		Arn                      string
		AssumeRolePolicyDocument json.RawMessage
	}
	roleDoc := func(r role) (*lintDoc, error) {
		doc, err := roleTrustPolicy(r.AssumeRolePolicyDocument)
		if err != nil {
			return nil, fmt.Errorf("%s: role %s: %w", file, r.RoleName, err)
		}
		return &lintDoc{file: file + " (role " + r.RoleName + ")", uri: uri, doc: doc, account: arnAccount(r.Arn)}, nil
	}
	collect := func(raw json.RawMessage) ([]*lintDoc, error) {
		var roles []role
		if err := json.Unmarshal(raw, &roles); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		var out []*lintDoc
		for _, r := range roles {
			d, err := roleDoc(r)
			if err != nil {
				return out, err
			}
			out = append(out, d)
		}
		return out, nil
	}
	if raw, ok := get(top, "Role"); ok {
		var r role
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		d, err := roleDoc(r)
		if err != nil {
			return nil, err
		}
		return []*lintDoc{d}, nil
	}
	if raw, ok := get(top, "Roles"); ok {
		return collect(raw)
	}
	if raw, ok := get(top, "RoleDetailList"); ok {
		return collect(raw)
	}
	if raw, ok := get(top, "resource_changes"); ok {
		return terraformDocs(file, uri, raw)
	}
	return nil, fmt.Errorf("%s: %w", file, errNotPolicy)
}

// roleTrustPolicy is a role's AssumeRolePolicyDocument: an object as the
// AWS CLI prints it, or a string, URL-encoded as IAM sends it.
func roleTrustPolicy(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("no AssumeRolePolicyDocument")
	}
	if raw[0] != '"' {
		return raw, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return decodeIAMDocument(s)
}

// decodeIAMDocument undoes IAM's URL encoding of a policy document (RFC
// 3986 percent-encoding); a document that is plain JSON already is kept.
func decodeIAMDocument(s string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		return []byte(s), nil
	}
	d, err := url.PathUnescape(s)
	if err != nil {
		return nil, fmt.Errorf("the trust policy is neither JSON nor URL-encoded JSON: %w", err)
	}
	return []byte(d), nil
}

func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 {
		return parts[4]
	}
	return ""
}

// terraformDocs reads `terraform show -json` output: the planned
// assume_role_policy of every aws_iam_role being created or updated.
func terraformDocs(file, uri string, raw json.RawMessage) ([]*lintDoc, error) {
	var changes []struct {
		Address string `json:"address"`
		Type    string `json:"type"`
		Change  struct {
			After map[string]json.RawMessage `json:"after"`
		} `json:"change"`
	}
	if err := json.Unmarshal(raw, &changes); err != nil {
		return nil, fmt.Errorf("%s: resource_changes: %w", file, err)
	}
	var out []*lintDoc
	for _, c := range changes {
		if c.Type != "aws_iam_role" || c.Change.After == nil {
			continue
		}
		pol, ok := c.Change.After["assume_role_policy"]
		if !ok || string(pol) == "null" {
			// Not known until apply (computed from other resources).
			continue
		}
		var s string
		if err := json.Unmarshal(pol, &s); err != nil {
			return out, fmt.Errorf("%s: %s: assume_role_policy is not a JSON string: %w", file, c.Address, err)
		}
		out = append(out, &lintDoc{file: file + " (" + c.Address + ")", uri: uri, doc: []byte(s)})
	}
	return out, nil
}

// liveRoles reads trust policies over the IAM API.
func liveRoles(ctx context.Context, f *policyLintFlags) ([]*lintDoc, error) {
	client, where, err := liveIAMClient(ctx, f.region, f.endpoint, "reading roles needs credentials allowed to call iam:GetRole and iam:ListRoles")
	if err != nil {
		return nil, err
	}
	doc := func(name, arn, encoded string) (*lintDoc, error) {
		d, err := decodeIAMDocument(encoded)
		if err != nil {
			return nil, fmt.Errorf("role %s at %s: %w", name, where, err)
		}
		return &lintDoc{file: arn, doc: d, account: arnAccount(arn)}, nil
	}
	if f.role != "" {
		out, err := client.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String(f.role)})
		if err != nil {
			return nil, fmt.Errorf("reading role %q at %s: %w", f.role, where, err)
		}
		if out.Role == nil {
			return nil, fmt.Errorf("reading role %q at %s: the answer has no role", f.role, where)
		}
		d, err := doc(f.role, aws.ToString(out.Role.Arn), aws.ToString(out.Role.AssumeRolePolicyDocument))
		if err != nil {
			return nil, err
		}
		return []*lintDoc{d}, nil
	}
	var docs []*lintDoc
	pages := awsiam.NewListRolesPaginator(client, &awsiam.ListRolesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return docs, fmt.Errorf("listing roles at %s: %w", where, err)
		}
		for _, r := range page.Roles {
			d, err := doc(aws.ToString(r.RoleName), aws.ToString(r.Arn), aws.ToString(r.AssumeRolePolicyDocument))
			if err != nil {
				return docs, err
			}
			docs = append(docs, d)
		}
	}
	return docs, nil
}

// ruleList is the implemented rules' ids, for the outputs.
func ruleList() []string {
	var ids []string
	for _, r := range lint.Rules() {
		ids = append(ids, r.ID)
	}
	return ids
}

func writeLintText(w io.Writer, results []lintResult, docs, failed int) error {
	var b strings.Builder
	for _, r := range results {
		f := r.f
		loc := r.doc.file
		if r.doc.direct && f.Line > 0 {
			loc += ":" + strconv.Itoa(f.Line)
		}
		stmt := "statement " + strconv.Itoa(f.Statement)
		if f.Sid != "" {
			stmt += " (" + f.Sid + ")"
		}
		fmt.Fprintf(&b, "%s: %s: %s %s\n", loc, stmt, f.Rule, f.Severity)
		fmt.Fprintf(&b, "  path:    %s\n", f.Path)
		fmt.Fprintf(&b, "  message: %s\n", f.Message)
		if f.Probe != nil {
			fmt.Fprintf(&b, "  probe:   %s\n", claimsText(f.Probe.Claims))
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, "  fix:     %s\n", f.Fix)
		}
		b.WriteByte('\n')
	}
	notRead := ""
	if failed > 0 {
		notRead = fmt.Sprintf(" (%d input(s) could not be linted: see the errors)", failed)
	}
	fmt.Fprintf(&b, "%d finding(s) in %d trust polic%s%s. Rules run: %s (the rest of TP001-TP040 are not implemented yet).\n",
		len(results), docs, map[bool]string{true: "y", false: "ies"}[docs == 1], notRead, strings.Join(ruleList(), " "))
	_, err := io.WriteString(w, b.String())
	return err
}

// claimsText is the probe's claims, sorted by name: sub="…", aud="…".
func claimsText(claims map[string]string) string {
	names := make([]string, 0, len(claims))
	for n := range claims {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Quote(claims[n])
	}
	return strings.Join(parts, " ")
}

// lintJSONFinding is one finding of --output json (CONTRACT.md §4).
type lintJSONFinding struct {
	File      string            `json:"file"`
	Rule      string            `json:"rule"`
	Severity  string            `json:"severity"`
	Statement int               `json:"statement"`
	Path      string            `json:"path"`
	Message   string            `json:"message"`
	Probe     map[string]string `json:"probe"`
	Fix       string            `json:"fix"`
}

func writeLintJSON(w io.Writer, results []lintResult) error {
	out := struct {
		Findings []lintJSONFinding `json:"findings"`
		Rules    []string          `json:"rules"`
	}{Findings: []lintJSONFinding{}, Rules: ruleList()}
	for _, r := range results {
		jf := lintJSONFinding{File: r.doc.file, Rule: r.f.Rule, Severity: r.f.Severity.String(), Statement: r.f.Statement,
			Path: r.f.Path, Message: r.f.Message, Fix: r.f.Fix}
		if r.f.Probe != nil {
			jf.Probe = r.f.Probe.Claims
		}
		out.Findings = append(out.Findings, jf)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// liveIAMClient is the IAM client of the commands that read live roles
// (policy lint --all-roles/--role, policy generate --diff-live): the
// explicit credentials of the environment or profile (never the instance's
// by surprise), us-east-1 unless told, keyless's endpoint when given.
// where names the endpoint for error messages; needs says which calls
// the credentials must allow when there are none.
func liveIAMClient(ctx context.Context, region, endpoint, needs string) (client *awsiam.Client, where string, err error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := ciauth.LoadExplicitConfig(ctx, opts...)
	if errors.Is(err, ciauth.ErrNoCredentials) {
		return nil, "", fmt.Errorf("%w: %s (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)", err, needs)
	}
	if err != nil {
		return nil, "", err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client = awsiam.NewFromConfig(cfg, func(o *awsiam.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	where = "IAM"
	if endpoint != "" {
		where = endpoint
	}
	return client, where, nil
}
