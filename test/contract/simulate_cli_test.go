package contract

import (
	"testing"
)

// TestSimulateWithAWSCLI drives SimulateCustomPolicy and
// SimulatePrincipalPolicy through the real AWS CLI.
func TestSimulateWithAWSCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	cli := newCLIRunner(t)
	env := awsEnv(t, adminKeyID, adminSecret, "")
	run := func(args ...string) map[string]any {
		t.Helper()
		r := cli.run(t, s.URL, env, args...)
		if r.Code != 0 {
			t.Fatalf("aws %v: %s", args, r.Stderr)
		}
		if r.Stdout == "" {
			return nil
		}
		return r.JSON(t)
	}
	results := func(out map[string]any) []map[string]any {
		l, _ := out["EvaluationResults"].([]any)
		var rs []map[string]any
		for _, r := range l {
			rs = append(rs, r.(map[string]any))
		}
		return rs
	}

	perm := `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"Read","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::artifacts/*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"ci"}}},` +
		`{"Sid":"NoDelete","Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}`
	out := run("iam", "simulate-custom-policy", "--policy-input-list", perm,
		"--action-names", "s3:GetObject", "s3:DeleteObject", "s3:PutObject",
		"--resource-arns", "arn:aws:s3:::artifacts/build.tgz",
		"--context-entries", "ContextKeyName=aws:PrincipalTag/team,ContextKeyValues=ci,ContextKeyType=string")
	rs := results(out)
	if len(rs) != 3 {
		t.Fatalf("results = %v", out)
	}
	want := map[string]string{"s3:GetObject": "allowed", "s3:DeleteObject": "explicitDeny", "s3:PutObject": "implicitDeny"}
	for _, r := range rs {
		if got := r["EvalDecision"]; got != want[r["EvalActionName"].(string)] {
			t.Errorf("%s: %v, want %s", r["EvalActionName"], got, want[r["EvalActionName"].(string)])
		}
	}
	if ms, _ := rs[0]["MatchedStatements"].([]any); len(ms) != 1 || ms[0].(map[string]any)["SourcePolicyId"] != "PolicyInputList.1" {
		t.Errorf("matched statements = %v", rs[0]["MatchedStatements"])
	}

	// Without the context entry the condition key is reported missing and
	// the read is not allowed.
	out = run("iam", "simulate-custom-policy", "--policy-input-list", perm, "--action-names", "s3:GetObject", "--resource-arns", "arn:aws:s3:::artifacts/x")
	rs = results(out)
	if rs[0]["EvalDecision"] != "implicitDeny" {
		t.Errorf("without context: %v", rs[0])
	}
	wantList(t, rs[0]["MissingContextValues"], "aws:PrincipalTag/team")

	// A malformed policy is a client error with the location, never a 500.
	r := cli.run(t, s.URL, env, "iam", "simulate-custom-policy", "--policy-input-list", `{"Statement":[{"Effect":"Allow","Effect":"Deny"}]}`, "--action-names", "s3:GetObject")
	wantAWSError(t, r, "InvalidInput")

	// SimulatePrincipalPolicy reads the role's inline and attached policies
	// and its permissions boundary.
	run("iam", "create-role", "--role-name", "sim", "--assume-role-policy-document", ghTrust(accountID))
	run("iam", "put-role-policy", "--role-name", "sim", "--policy-name", "inline", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}]}`)
	b := run("iam", "create-policy", "--policy-name", "boundary", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)
	barn := b["Policy"].(map[string]any)["Arn"].(string)
	cli.run(t, s.URL, env, "iam", "put-role-permissions-boundary", "--role-name", "sim", "--permissions-boundary", barn)
	out = run("iam", "simulate-principal-policy", "--policy-source-arn", "arn:aws:iam::"+accountID+":role/sim",
		"--action-names", "s3:GetObject", "s3:PutObject")
	rs = results(out)
	if rs[0]["EvalDecision"] != "allowed" || rs[1]["EvalDecision"] != "implicitDeny" {
		t.Fatalf("principal simulation = %v", out)
	}
	if d, _ := rs[1]["PermissionsBoundaryDecisionDetail"].(map[string]any); d == nil || d["AllowedByPermissionsBoundary"] != false {
		t.Errorf("boundary detail = %v", rs[1]["PermissionsBoundaryDecisionDetail"])
	}
	if ms, _ := rs[0]["MatchedStatements"].([]any); len(ms) == 0 || ms[0].(map[string]any)["SourcePolicyId"] != "inline" {
		t.Errorf("matched = %v", rs[0]["MatchedStatements"])
	}
	wantAWSError(t, cli.run(t, s.URL, env, "iam", "simulate-principal-policy", "--policy-source-arn", "arn:aws:iam::"+accountID+":role/nope", "--action-names", "s3:GetObject"), "NoSuchEntity")
}
