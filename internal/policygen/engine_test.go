package policygen

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/audit"
)

const (
	subA   = "repo:octo/app:ref:refs/heads/main"
	subB   = "repo:octo/web:ref:refs/heads/main"
	repoA  = "octo/app"
	repoB  = "octo/web"
	kmsKey = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// twoProjects is a keyless-shaped trail: two CI projects (two subjects,
// two repository claims) assume one role under the same session name and
// make different calls; a third session has no exchange in the input.
func twoProjects() []ev {
	m := func(d time.Duration) time.Time { return t0.Add(d) }
	kmsRes := []any{map[string]any{"ARN": kmsKey, "accountId": tAcct, "type": "AWS::KMS::Key"}}
	return []ev{
		// Project A.
		webExchange(m(0), tRole, subA, repoA, "ASIAAAAAAAAAAAAAAAA1", "GitHubActions"),
		roleCall(m(time.Minute), tRole, "GitHubActions", "ASIAAAAAAAAAAAAAAAA1", "s3.amazonaws.com", "PutObject",
			map[string]any{"bucketName": "artifacts", "key": "builds/app/1.zip"}, false),
		roleCall(m(time.Minute), tRole, "GitHubActions", "ASIAAAAAAAAAAAAAAAA1", "s3.amazonaws.com", "GetObject",
			map[string]any{"bucketName": "artifacts", "key": "cache/app.tgz"}, true).with("errorCode", "NoSuchKey"),
		roleCall(m(2*time.Minute), tRole, "GitHubActions", "ASIAAAAAAAAAAAAAAAA1", "ecr.amazonaws.com", "PutImage",
			map[string]any{"repositoryName": "app", "imageTag": "v1"}, false),
		roleCall(m(2*time.Minute), tRole, "GitHubActions", "ASIAAAAAAAAAAAAAAAA1", "secretsmanager.amazonaws.com", "GetSecretValue",
			map[string]any{"secretId": "ci/app/token"}, true),
		// The KMS call Secrets Manager makes for it (its own access key id).
		roleCall(m(2*time.Minute), tRole, "GitHubActions", "ASIAFASFASFASFAS0001", "kms.amazonaws.com", "Decrypt",
			map[string]any{"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, true).
			via("secretsmanager.amazonaws.com").with("resources", kmsRes),

		// Project B, same role and session name, 10 minutes later.
		webExchange(m(10*time.Minute), tRole, subB, repoB, "ASIABBBBBBBBBBBBBBB1", "GitHubActions"),
		roleCall(m(11*time.Minute), tRole, "GitHubActions", "ASIABBBBBBBBBBBBBBB1", "s3.amazonaws.com", "GetObject",
			map[string]any{"bucketName": "artifacts", "key": "web/assets.tgz"}, true),
		roleCall(m(11*time.Minute), tRole, "GitHubActions", "ASIABBBBBBBBBBBBBBB1", "dynamodb.amazonaws.com", "PutItem",
			map[string]any{"tableName": "web-sessions"}, false),
		roleCall(m(12*time.Minute), tRole, "GitHubActions", "ASIABBBBBBBBBBBBBBB1", "lambda.amazonaws.com", "UpdateFunctionCode20150331v2",
			map[string]any{"functionName": "web-fn", "publish": true}, false),
		// SSE-KMS behind B's PutObject: linked by session ARN to the latest
		// exchange of that name before it, B's (A's came first).
		roleCall(m(12*time.Minute), tRole, "GitHubActions", "ASIAFASFASFASFAS0002", "kms.amazonaws.com", "GenerateDataKey",
			map[string]any{"keyId": kmsKey, "keySpec": "AES_256"}, true).
			via("s3.amazonaws.com").with("resources", kmsRes),
		roleCall(m(12*time.Minute), tRole, "GitHubActions", "ASIABBBBBBBBBBBBBBB1", "s3.amazonaws.com", "PutObject",
			map[string]any{"bucketName": "artifacts", "key": "web/site.zip"}, false),
		roleCall(m(13*time.Minute), tRole, "GitHubActions", "ASIABBBBBBBBBBBBBBB1", "s3.amazonaws.com", "DeleteObject",
			map[string]any{"bucketName": "artifacts", "key": "web/old.zip"}, false).with("errorCode", "AccessDenied"),

		// A session whose exchange is not in the input.
		roleCall(m(20*time.Minute), tRole, "old", "ASIAUUUUUUUUUUUUUUU1", "sqs.amazonaws.com", "SendMessage",
			map[string]any{"queueUrl": "https://sqs.eu-west-1.amazonaws.com/111122223333/builds"}, false),

		// Excluded.
		roleCall(m(21*time.Minute), "arn:aws:iam::111122223333:role/other", "x", "ASIAOOOOOOOOOOOOOOO1", "s3.amazonaws.com", "GetObject",
			map[string]any{"bucketName": "other", "key": "k"}, true),
		roleCall(m(21*time.Minute), tRole, "GitHubActions", "ASIAAAAAAAAAAAAAAAA1", "sts.amazonaws.com", "GetCallerIdentity", nil, true),
		ev{"eventTime": m(22 * time.Minute).Format(time.RFC3339), "eventType": "AwsServiceEvent", "eventSource": "kms.amazonaws.com",
			"eventName": "RotateKey", "userIdentity": map[string]any{"accountId": tAcct, "invokedBy": "kms.amazonaws.com"}},
		ev{"eventTime": m(22 * time.Minute).Format(time.RFC3339), "eventType": "AwsApiCall", "eventSource": "kms.amazonaws.com",
			"eventName": "Decrypt", "userIdentity": map[string]any{"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}},
		ev{"eventTime": m(22 * time.Minute).Format(time.RFC3339), "eventType": "AwsApiCall", "eventSource": "s3.amazonaws.com",
			"eventName": "ListBuckets", "userIdentity": map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accessKeyId": "AKIAX"}},
		ev{"eventTime": m(22 * time.Minute).Format(time.RFC3339), "eventType": "AwsConsoleSignIn", "eventSource": "signin.amazonaws.com",
			"eventName": "ConsoleLogin", "userIdentity": map[string]any{"type": "IAMUser"}},
		roleCall(m(23*time.Minute), tRole, "GitHubActions", "ASIAAAAAAAAAAAAAAAA1", "made-up.amazonaws.com", "DoThing", nil, false),
	}
}

func TestBySubjectPoliciesDifferAsTheCallsDid(t *testing.T) {
	rep := generate(t, []string{writeTrail(t, twoProjects()...)}, Options{By: "subject", Role: "deploy"})
	if len(rep.Policies) != 3 {
		t.Fatalf("got %d policies (%s), want A, B and the unlinked one", len(rep.Policies), policyNames(rep))
	}
	a := findPolicy(t, rep, tRole, strp(subA))
	b := findPolicy(t, rep, tRole, strp(subB))
	u := findPolicy(t, rep, tRole, nil)
	if diff := cmp.Diff([]string{
		"ecr:PutImage", "kms:Decrypt via secretsmanager.amazonaws.com", "s3:GetObject", "s3:PutObject", "secretsmanager:GetSecretValue",
	}, actionSet(a)); diff != "" {
		t.Errorf("A's actions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{
		"dynamodb:PutItem", "kms:GenerateDataKey via s3.amazonaws.com", "lambda:UpdateFunctionCode", "s3:GetObject", "s3:PutObject",
	}, actionSet(b)); diff != "" {
		t.Errorf("B's actions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"sqs:SendMessage"}, actionSet(u)); diff != "" {
		t.Errorf("unlinked actions (-want +got):\n%s", diff)
	}
	if len(u.Notes) == 0 || !strings.Contains(u.Notes[0], "1 calls by 1 session(s) not linked") {
		t.Errorf("unlinked policy notes = %q", u.Notes)
	}

	// Resources: real ARNs, as each project used them.
	wantRes := map[string][]string{
		"s3:PutObject":                  {"arn:aws:s3:::artifacts/builds/app/1.zip"},
		"s3:GetObject":                  {"arn:aws:s3:::artifacts/cache/app.tgz"},
		"ecr:PutImage":                  {"arn:aws:ecr:eu-west-1:111122223333:repository/app"},
		"secretsmanager:GetSecretValue": {"arn:aws:secretsmanager:eu-west-1:111122223333:secret:ci/app/token-??????"},
		"kms:Decrypt":                   {kmsKey},
	}
	for _, u := range a.Actions {
		if diff := cmp.Diff(wantRes[u.Action], u.Resources); diff != "" {
			t.Errorf("A %s resources (-want +got):\n%s", u.Action, diff)
		}
		if u.Action == "s3:GetObject" && (u.Failed != 1 || u.Count != 0) {
			t.Errorf("A s3:GetObject count/failed = %d/%d, want 0/1 (NoSuchKey)", u.Count, u.Failed)
		}
	}
	wantRes = map[string][]string{
		"s3:PutObject":              {"arn:aws:s3:::artifacts/web/site.zip"},
		"s3:GetObject":              {"arn:aws:s3:::artifacts/web/assets.tgz"},
		"dynamodb:PutItem":          {"arn:aws:dynamodb:eu-west-1:111122223333:table/web-sessions"},
		"lambda:UpdateFunctionCode": {"arn:aws:lambda:eu-west-1:111122223333:function:web-fn"},
		"kms:GenerateDataKey":       {kmsKey},
	}
	for _, u := range b.Actions {
		if diff := cmp.Diff(wantRes[u.Action], u.Resources); diff != "" {
			t.Errorf("B %s resources (-want +got):\n%s", u.Action, diff)
		}
	}
	if got := u.Actions[0].Resources; !slices.Equal(got, []string{"arn:aws:sqs:eu-west-1:111122223333:builds"}) {
		t.Errorf("sqs resources = %q", got)
	}

	// FAS: kept in its own statement, scoped by kms:ViaService.
	var doc document
	if err := json.Unmarshal(b.Policy, &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, st := range doc.Statement {
		if slices.Contains(st.Action, "kms:GenerateDataKey") {
			found = true
			if diff := cmp.Diff(map[string]map[string][]string{"StringEquals": {"kms:ViaService": {"s3.eu-west-1.amazonaws.com"}}}, st.Condition); diff != "" {
				t.Errorf("FAS condition (-want +got):\n%s", diff)
			}
			if len(st.Action) != 1 || st.Sid != "KmsReadViaS3" {
				t.Errorf("FAS statement = %+v", st)
			}
		}
	}
	if !found {
		t.Errorf("no kms:GenerateDataKey statement in %s", b.Policy)
	}

	// Denied: listed, not granted.
	if diff := cmp.Diff([]DeniedCall{{Role: tRole, Binding: strp(subB), Action: "s3:DeleteObject", Resource: "arn:aws:s3:::artifacts/web/old.zip",
		Event: "s3.amazonaws.com:DeleteObject", ErrorCode: "AccessDenied", Count: 1,
		FirstSeen: t0.Add(13 * time.Minute), LastSeen: t0.Add(13 * time.Minute)}}, rep.Denied); diff != "" {
		t.Errorf("denied (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int64{
		ExcludedOtherRole: 1, ExcludedNoPermission: 1, ExcludedServiceEvent: 1, ExcludedServiceIdentity: 1,
		ExcludedOtherPrincipal: 1, ExcludedConsoleSignIn: 1, ExcludedUnknownAction: 1,
	}, rep.Excluded); diff != "" {
		t.Errorf("excluded (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]UnknownCall{{EventSource: "made-up.amazonaws.com", EventName: "DoThing", Count: 1}}, rep.Unknown); diff != "" {
		t.Errorf("unknown (-want +got):\n%s", diff)
	}
	st := rep.Stats
	if st.Events != 21 || st.Exchanges != 2 || st.Used != 10 || st.Failed != 1 || st.Denied != 1 ||
		st.Sessions != 4 || st.SessionsLinked != 3 || st.SessionsUnlinked != 1 || st.CallsUnlinked != 1 {
		t.Errorf("stats = %+v", st)
	}
	var excluded int64
	for _, n := range rep.Excluded {
		excluded += n
	}
	if sum := excluded + st.Used + st.Failed + st.Denied + st.Exchanges; sum != st.Events {
		t.Errorf("events %d, counted %d", st.Events, sum)
	}
	checkAllowsInputsDeniesNeighbours(t, rep)
}

func TestByClaimRepository(t *testing.T) {
	bySub := generate(t, []string{writeTrail(t, twoProjects()...)}, Options{By: "subject", Role: "deploy"})
	byRepo := generate(t, []string{writeTrail(t, twoProjects()...)}, Options{By: "claim:repository", Role: "deploy"})
	for _, c := range []struct{ sub, repo string }{{subA, repoA}, {subB, repoB}} {
		ps := findPolicy(t, bySub, tRole, strp(c.sub))
		pr := findPolicy(t, byRepo, tRole, strp(c.repo))
		if diff := cmp.Diff(string(ps.Policy), string(pr.Policy)); diff != "" {
			t.Errorf("%s: by claim:repository differs from by subject (-sub +repo):\n%s", c.repo, diff)
		}
	}
	checkAllowsInputsDeniesNeighbours(t, byRepo)

	// A claim the exchanges do not record: attributed to the role only.
	none := generate(t, []string{writeTrail(t, twoProjects()...)}, Options{By: "claim:environment", Role: tRole})
	if len(none.Policies) != 1 || none.Policies[0].Binding != nil {
		t.Fatalf("policies = %s, want one binding-less", policyNames(none))
	}
	if n := none.Policies[0].Notes; len(n) < 2 || !strings.Contains(strings.Join(n, "\n"), "records no claim environment") {
		t.Errorf("notes = %q", n)
	}
}

func TestByRoleMergesProjects(t *testing.T) {
	rep := generate(t, []string{writeTrail(t, twoProjects()...)}, Options{})
	// Every role: the other role's session has its own policy.
	if len(rep.Policies) != 2 || rep.Policies[0].Binding != nil || rep.Policies[0].Role != tRole ||
		rep.Policies[1].Role != "arn:aws:iam::111122223333:role/other" {
		t.Fatalf("policies = %s", policyNames(rep))
	}
	if diff := cmp.Diff([]string{
		"dynamodb:PutItem", "ecr:PutImage", "kms:Decrypt via secretsmanager.amazonaws.com", "kms:GenerateDataKey via s3.amazonaws.com",
		"lambda:UpdateFunctionCode", "s3:GetObject", "s3:PutObject", "secretsmanager:GetSecretValue", "sqs:SendMessage",
	}, actionSet(&rep.Policies[0])); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	checkAllowsInputsDeniesNeighbours(t, rep)

	withDenied := generate(t, []string{writeTrail(t, twoProjects()...)}, Options{IncludeDenied: true, Role: "deploy"})
	var del *ActionUse
	for i, a := range withDenied.Policies[0].Actions {
		if a.Action == "s3:DeleteObject" {
			del = &withDenied.Policies[0].Actions[i]
		}
	}
	if del == nil || del.Denied != 1 || del.Count != 0 || !slices.Equal(del.Resources, []string{"arn:aws:s3:::artifacts/web/old.zip"}) {
		t.Errorf("with IncludeDenied, s3:DeleteObject = %+v", del)
	}
	if len(withDenied.Denied) != 1 {
		t.Errorf("denied list = %+v", withDenied.Denied)
	}
}

func TestRoleFilterAndWindow(t *testing.T) {
	path := writeTrail(t, twoProjects()...)
	for _, role := range []string{"deploy", tRole} {
		rep := generate(t, []string{path}, Options{Role: role})
		if len(rep.Policies) != 1 || rep.Excluded[ExcludedOtherRole] != 1 {
			t.Errorf("--role %s: policies %s, excluded %v", role, policyNames(rep), rep.Excluded)
		}
	}
	rep := generate(t, []string{path}, Options{Role: "other"})
	if len(rep.Policies) != 1 || rep.Policies[0].Role != "arn:aws:iam::111122223333:role/other" {
		t.Errorf("--role other: %s", policyNames(rep))
	}

	// A window that leaves A's exchange out: A's session is unlinked, its
	// calls in the window go to the binding-less policy.
	rep = generate(t, []string{path}, Options{By: "subject", Role: "deploy", Scan: audit.ScanOptions{Start: t0.Add(30 * time.Second), End: t0.Add(12 * time.Minute)}})
	if n := rep.Excluded[ExcludedOutsideWindow]; n != 13 {
		t.Errorf("outside window = %d, want 13", n)
	}
	u := findPolicy(t, rep, tRole, nil)
	if diff := cmp.Diff([]string{"ecr:PutImage", "kms:Decrypt via secretsmanager.amazonaws.com", "s3:GetObject", "s3:PutObject", "secretsmanager:GetSecretValue"}, actionSet(u)); diff != "" {
		t.Errorf("unlinked actions (-want +got):\n%s", diff)
	}
	if !strings.Contains(strings.Join(u.Notes, "\n"), "not linked to a web identity exchange in the window") {
		t.Errorf("notes = %q", u.Notes)
	}
	b := findPolicy(t, rep, tRole, strp(subB))
	if diff := cmp.Diff([]string{"dynamodb:PutItem", "s3:GetObject"}, actionSet(b)); diff != "" {
		t.Errorf("B in window (-want +got):\n%s", diff)
	}
}

// TestFASLinksToLatestExchange: a forward access session's call is linked
// by session ARN to the latest exchange of that name before it, not to an
// earlier or later one.
func TestFASLinksToLatestExchange(t *testing.T) {
	kmsRes := []any{map[string]any{"ARN": kmsKey, "accountId": tAcct, "type": "AWS::KMS::Key"}}
	fas := func(at time.Duration, key string) ev {
		return roleCall(t0.Add(at), tRole, "ci", key, "kms.amazonaws.com", "Decrypt", nil, true).
			via("secretsmanager.amazonaws.com").with("resources", kmsRes)
	}
	evs := []ev{
		// Out of order on purpose: the workers see them in any order.
		fas(25*time.Minute, "ASIAF3"),
		webExchange(t0.Add(20*time.Minute), tRole, "sub-3", "r3", "ASIA3", "ci"),
		fas(15*time.Minute, "ASIAF2"),
		webExchange(t0, tRole, "sub-1", "r1", "ASIA1", "ci"),
		fas(5*time.Minute, "ASIAF1"),
		webExchange(t0.Add(10*time.Minute), tRole, "sub-2", "r2", "ASIA2", "ci"),
		fas(-time.Minute, "ASIAF0"), // before any exchange: unlinked
	}
	rep := generate(t, []string{writeTrail(t, evs...)}, Options{By: "subject"})
	for _, sub := range []string{"sub-1", "sub-2", "sub-3"} {
		p := findPolicy(t, rep, tRole, strp(sub))
		if len(p.Actions) != 1 || p.Actions[0].Count != 1 {
			t.Errorf("%s: actions %+v, want one kms:Decrypt", sub, p.Actions)
		}
	}
	if p := findPolicy(t, rep, tRole, nil); p.Actions[0].Count != 1 {
		t.Errorf("unlinked: %+v", p.Actions)
	}
}

// TestRoleChaining: AssumeRole made by a linked session goes in the
// caller's policy (sts:AssumeRole on the called role); the called role's
// session's calls go in the called role's own policy, under the caller's
// binding.
func TestRoleChaining(t *testing.T) {
	target := "arn:aws:iam::111122223333:role/prod-deployer"
	chain := roleCall(t0.Add(time.Minute), tRole, "GitHubActions", "ASIAAAAAAAAAAAAAAAA1", "sts.amazonaws.com", "AssumeRole",
		map[string]any{"roleArn": target, "roleSessionName": "chained"}, false).
		with("responseElements", map[string]any{
			"credentials":     map[string]any{"accessKeyId": "ASIACHAINED000000001"},
			"assumedRoleUser": map[string]any{"arn": "arn:aws:sts::111122223333:assumed-role/prod-deployer/chained"},
		})
	evs := []ev{
		webExchange(t0, tRole, subA, repoA, "ASIAAAAAAAAAAAAAAAA1", "GitHubActions"),
		chain,
		roleCall(t0.Add(2*time.Minute), target, "chained", "ASIACHAINED000000001", "cloudformation.amazonaws.com", "UpdateStack",
			map[string]any{"stackName": "prod-app"}, false),
	}
	rep := generate(t, []string{writeTrail(t, evs...)}, Options{By: "subject"})
	caller := findPolicy(t, rep, tRole, strp(subA))
	if len(caller.Actions) != 1 || caller.Actions[0].Action != "sts:AssumeRole" || !slices.Equal(caller.Actions[0].Resources, []string{target}) {
		t.Errorf("caller actions = %+v", caller.Actions)
	}
	called := findPolicy(t, rep, target, strp(subA))
	if len(called.Actions) != 1 || called.Actions[0].Action != "cloudformation:UpdateStack" ||
		!slices.Equal(called.Actions[0].Resources, []string{"arn:aws:cloudformation:eu-west-1:111122223333:stack/prod-app/*"}) {
		t.Errorf("called role actions = %+v", called.Actions)
	}
	checkAllowsInputsDeniesNeighbours(t, rep)

	// --role the called role: the caller's AssumeRole is excluded, but
	// still links the chained session to the caller's subject.
	only := generate(t, []string{writeTrail(t, evs...)}, Options{By: "subject", Role: "prod-deployer"})
	if len(only.Policies) != 1 || only.Policies[0].Binding == nil || *only.Policies[0].Binding != subA {
		t.Errorf("--role prod-deployer: policies %s", policyNames(only))
	}
}

func TestCollapse(t *testing.T) {
	objs := func(n int) []ev {
		evs := []ev{webExchange(t0, tRole, subA, repoA, "ASIA1", "ci")}
		for i := range n {
			evs = append(evs, roleCall(t0.Add(time.Minute), tRole, "ci", "ASIA1", "s3.amazonaws.com", "PutObject",
				map[string]any{"bucketName": "artifacts", "key": fmt.Sprintf("builds/%02d.zip", i)}, false))
		}
		return evs
	}
	rep := generate(t, []string{writeTrail(t, objs(11)...)}, Options{CollapseAfter: 10})
	if got := rep.Policies[0].Actions[0].Resources; !slices.Equal(got, []string{"arn:aws:s3:::artifacts/builds/*"}) {
		t.Errorf("11 objects: resources = %q, want one wildcard", got)
	}
	checkAllowsInputsDeniesNeighbours(t, rep)
	rep = generate(t, []string{writeTrail(t, objs(10)...)}, Options{CollapseAfter: 10})
	if got := rep.Policies[0].Actions[0].Resources; len(got) != 10 || slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "*") }) {
		t.Errorf("10 objects: resources = %q, want 10 ARNs", got)
	}
	rep = generate(t, []string{writeTrail(t, objs(11)...)}, Options{CollapseAfter: -1})
	if got := rep.Policies[0].Actions[0].Resources; len(got) != 11 {
		t.Errorf("never collapse: %d resources", len(got))
	}
}

func TestCollapseLevels(t *testing.T) {
	var arns []string
	for i := range 12 {
		for j := range 2 {
			arns = append(arns, fmt.Sprintf("arn:aws:s3:::b/builds/%02d/%d.zip", i, j))
		}
	}
	arns = append(arns, "arn:aws:s3:::b", "arn:aws:s3:::c/x", "*x")
	got := collapse(arns, 10)
	want := []string{"*x", "arn:aws:s3:::b", "arn:aws:s3:::b/builds/*", "arn:aws:s3:::c/x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("collapse (-want +got):\n%s", diff)
	}
	if got := collapse([]string{"arn:aws:s3:::a", "*"}, 10); !slices.Equal(got, []string{"*"}) {
		t.Errorf("with *: %q", got)
	}
	// Bucket names are not a path: never arn:aws:s3:::*.
	var buckets []string
	for i := range 20 {
		buckets = append(buckets, fmt.Sprintf("arn:aws:s3:::b%d", i))
	}
	if got := collapse(buckets, 10); len(got) != 20 {
		t.Errorf("buckets collapsed: %q", got)
	}
}

func TestSplitToFitManagedPolicy(t *testing.T) {
	evs := []ev{webExchange(t0, tRole, subA, repoA, "ASIA1", "ci")}
	for i := range 150 {
		evs = append(evs, roleCall(t0.Add(time.Minute), tRole, "ci", "ASIA1", "dynamodb.amazonaws.com", "GetItem",
			map[string]any{"tableName": fmt.Sprintf("table-with-a-rather-long-name-%03d", i)}, true))
	}
	rep := generate(t, []string{writeTrail(t, evs...)}, Options{CollapseAfter: -1})
	rp := &rep.Policies[0]
	if len(rp.Policies) < 2 {
		t.Fatalf("not split: %d parts", len(rp.Policies))
	}
	if !strings.Contains(strings.Join(rp.Notes, "\n"), "split in") {
		t.Errorf("notes = %q", rp.Notes)
	}
	checkAllowsInputsDeniesNeighbours(t, rep) // each part parsed with the managed policy limit
}

func TestBadBy(t *testing.T) {
	for _, by := range []string{"claim:", "team", "Subject"} {
		_, err := Generate(t.Context(), nil, Options{By: by})
		if !errors.Is(err, ErrBadOption) {
			t.Errorf("By %q: err = %v", by, err)
		}
	}
}

func TestParseEventTime(t *testing.T) {
	for _, s := range []string{"2023-07-10T11:45:23Z", "2023-07-10T11:45:23.123Z", "2023-07-10T13:45:23+02:00"} {
		got, ok := parseEventTime([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil || got != want.UnixNano() {
			t.Errorf("%s: %d %v, want %d", s, got, ok, want.UnixNano())
		}
	}
	for _, s := range []string{"", "2023-13-10T11:45:23Z", "2023-07-10 11:45:23Z", "x"} {
		if _, ok := parseEventTime([]byte(s)); ok {
			t.Errorf("%q parsed", s)
		}
	}
}

// TestDeterministic: the report is the same whatever the number of
// workers and however the events are spread over files.
func TestDeterministic(t *testing.T) {
	evs := twoProjects()
	one := writeTrail(t, evs...)
	a, b := writeTrail(t, evs[:9]...), writeTrail(t, evs[9:]...)
	want := map[string]string{} // by input set and By
	for _, tc := range []struct {
		set     string
		paths   []string
		workers int
	}{
		{"synthetic", []string{one}, 1}, {"synthetic", []string{one}, 2}, {"synthetic", []string{b, a}, 2}, {"synthetic", []string{a, b}, 3},
		{"with real", []string{realTrail, one}, 2}, {"with real", []string{one, realTrail}, 1}, {"with real", []string{a, realTrail, b}, 3},
	} {
		for _, by := range []string{"role", "subject", "claim:repository"} {
			rep, err := Generate(t.Context(), tc.paths, Options{By: by, Scan: audit.ScanOptions{Workers: tc.workers}})
			if err != nil {
				t.Fatal(err)
			}
			rep.Stats.Files, rep.Stats.Bytes = 0, 0
			j, _ := json.MarshalIndent(rep, "", " ")
			k := tc.set + " " + by
			if w, ok := want[k]; !ok {
				want[k] = string(j)
			} else if w != string(j) {
				t.Errorf("%s, %d workers, %d files: report differs (-want +got):\n%s", k, tc.workers, len(tc.paths), cmp.Diff(w, string(j)))
			}
		}
	}
}

// TestDollarInNameIsNotAVariable: an object key holding "${aws:username}"
// is granted literally, not as a policy variable.
func TestDollarInNameIsNotAVariable(t *testing.T) {
	evs := []ev{
		webExchange(t0, tRole, subA, repoA, "ASIA1", "ci"),
		roleCall(t0.Add(time.Minute), tRole, "ci", "ASIA1", "s3.amazonaws.com", "GetObject",
			map[string]any{"bucketName": "b", "key": "home/${aws:username}/x"}, true),
	}
	rep := generate(t, []string{writeTrail(t, evs...)}, Options{})
	rp := &rep.Policies[0]
	if !strings.Contains(string(rp.Policy), `home/${$}{aws:username}/x`) {
		t.Errorf("policy = %s", rp.Policy)
	}
	ps := policySet(t, rp)
	if d := ps.Evaluate(request(rp, "s3:GetObject", "arn:aws:s3:::b/home/${aws:username}/x", "")); d.String() != "allowed" {
		t.Errorf("the literal key: %v", d)
	}
	req := request(rp, "s3:GetObject", "arn:aws:s3:::b/home/s/x", "")
	if d := ps.Evaluate(req); d.String() == "allowed" {
		t.Errorf("read as a variable: %v", d)
	}
	checkAllowsInputsDeniesNeighbours(t, rep)
}
