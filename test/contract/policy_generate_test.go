package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

// ciProject is one CI project of TestPolicyGenerateTwoProjects: its token's
// subject and repository claim, and the calls its pipeline makes.
type ciProject struct {
	sub, repo string
	calls     []string // IAM actions, made by pgCall
}

// pgCall makes one IAM call by name with a session's client.
func pgCall(ctx context.Context, c *iam.Client, action string) error {
	var err error
	switch action {
	case "iam:GetRole":
		_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("ci-shared")})
	case "iam:ListRoles":
		_, err = c.ListRoles(ctx, &iam.ListRolesInput{})
	case "iam:GetRolePolicy":
		_, err = c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("ci-shared"), PolicyName: aws.String("perm")})
	case "iam:ListRolePolicies":
		_, err = c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String("ci-shared")})
	default:
		panic(action)
	}
	return err
}

// generated is `keyless policy generate --output json`, as much as the
// test reads of it.
type generated struct {
	Policies []struct {
		Role    string
		Binding *string
		Policy  json.RawMessage
		Actions []struct {
			Action    string
			Resources []string
		}
	}
	Excluded map[string]int64
	Denied   []struct {
		Role, Action, Resource string
		Binding                *string
	}
}

func pgKeyless(t *testing.T, env []string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("keyless %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

// TestPolicyGenerateTwoProjects: two CI projects (two subjects, two
// repository claims) exchange tokens for ONE role of a real keyless serve
// and make different IAM calls with their sessions; `keyless policy
// generate DATA --by subject` (and --by claim:repository) reads the
// server's trail and writes two policies that differ exactly as the calls
// did; each policy, put back as the role's permission policy, lets a new
// session of its project make its calls through the server and refuses the
// other project's extra call. --diff-live reads the role's policies from
// the server and reports the grants unused by each project and the call
// denied.
func TestPolicyGenerateTwoProjects(t *testing.T) {
	t.Parallel()
	f := newFederation(t)
	ctx := context.Background()
	admin := f.srv.iamClient(adminKeyID, adminSecret, "")
	roleARN := "arn:aws:iam::" + accountID + ":role/ci-shared"
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + f.provider + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + f.prefix + `:aud":"` + ciAudience + `"},` +
		`"StringLike":{"` + f.prefix + `:sub":"repo:octo-org/*"}}}]}`
	if _, err := admin.CreateRole(ctx, iamCreateRole("ci-shared", trust)); err != nil {
		t.Fatal(err)
	}
	putPerm := func(doc string) {
		t.Helper()
		if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("ci-shared"), PolicyName: aws.String("perm"), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatalf("put %s: %v", doc, err)
		}
	}
	const broad = `{"Version":"2012-10-17","Statement":[{"Sid":"Reads","Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"}]}`
	putPerm(broad)

	web := ciProject{sub: "repo:octo-org/web:ref:refs/heads/main", repo: "octo-org/web", calls: []string{"iam:GetRole", "iam:ListRoles"}}
	api := ciProject{sub: "repo:octo-org/api:ref:refs/heads/main", repo: "octo-org/api", calls: []string{"iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies"}}
	stsc := sts.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}}, func(o *sts.Options) { o.BaseEndpoint = aws.String(f.srv.URL) })
	session := func(p ciProject, name string) (*iam.Client, *sts.Client) {
		t.Helper()
		tok := f.issuer.Mint(t, p.sub, ciAudience, func(tk *oidctest.Token) { tk.Claims["repository"] = p.repo })
		out, err := stsc.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(roleARN), RoleSessionName: aws.String(name), WebIdentityToken: aws.String(tok),
		})
		if err != nil {
			t.Fatalf("%s: assume: %v", p.repo, err)
		}
		c := out.Credentials
		cfg := sdkConfig(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
		return f.srv.iamClient(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken),
			sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(f.srv.URL) })
	}
	for _, p := range []ciProject{web, api} {
		c, s := session(p, strings.ReplaceAll(p.repo, "/", "-")+"-1")
		for _, a := range p.calls {
			if err := pgCall(ctx, c, a); err != nil {
				t.Fatalf("%s: %s: %v", p.repo, a, err)
			}
		}
		// Needs no permission: must not reach a policy.
		if _, err := s.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatal(err)
		}
		if p.repo == api.repo { // a call the role's policy refuses
			_, err := c.CreateRole(ctx, iamCreateRole("api-extra", trust))
			wantCode(t, err, "AccessDenied")
		}
	}

	env := awsEnv(t, adminKeyID, adminSecret, "")
	gen := func(by string, extra ...string) (generated, string) {
		t.Helper()
		out, _ := pgKeyless(t, env, append([]string{"policy", "generate", f.srv.Data, "--role", "ci-shared", "--by", by, "--output", "json"}, extra...)...)
		var g generated
		if err := json.Unmarshal([]byte(out), &g); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		return g, out
	}
	// actionsOf maps each binding to its policy's actions and document.
	actionsOf := func(g generated, raw string) (map[string][]string, map[string]string) {
		t.Helper()
		acts, docs := map[string][]string{}, map[string]string{}
		for _, p := range g.Policies {
			if p.Role != roleARN || p.Binding == nil {
				t.Fatalf("policy of role %s binding %v (want %s, a binding): %s", p.Role, p.Binding, roleARN, raw)
			}
			for _, a := range p.Actions {
				acts[*p.Binding] = append(acts[*p.Binding], a.Action)
			}
			slices.Sort(acts[*p.Binding])
			docs[*p.Binding] = string(p.Policy)
		}
		return acts, docs
	}
	want := func(p ciProject) []string { return slices.Sorted(slices.Values(p.calls)) }

	var docs map[string]string
	for _, tc := range []struct {
		by       string
		web, api string
	}{
		{"subject", web.sub, api.sub},
		{"claim:repository", web.repo, api.repo},
	} {
		g, raw := gen(tc.by)
		acts, d := actionsOf(g, raw)
		if len(acts) != 2 || !slices.Equal(acts[tc.web], want(web)) || !slices.Equal(acts[tc.api], want(api)) {
			t.Fatalf("--by %s: actions per binding %v, want %s: %v and %s: %v\n%s", tc.by, acts, tc.web, want(web), tc.api, want(api), raw)
		}
		if len(g.Denied) != 1 || g.Denied[0].Action != "iam:CreateRole" || g.Denied[0].Binding == nil || *g.Denied[0].Binding != tc.api {
			t.Errorf("--by %s: denied = %+v, want api's iam:CreateRole", tc.by, g.Denied)
		}
		if g.Excluded["noPermission"] < 2 {
			t.Errorf("--by %s: excluded = %v: the two GetCallerIdentity calls are not counted as needing no permission", tc.by, g.Excluded)
		}
		if tc.by == "subject" {
			docs = d
		}
	}

	// --diff-live against the broad policy, read from the server.
	out, _ := pgKeyless(t, env, "policy", "generate", f.srv.Data, "--role", "ci-shared", "--by", "subject", "--output", "json", "--diff-live", "--endpoint-url", f.srv.URL)
	var diffs struct {
		Diffs []struct {
			Binding *string
			Granted []string
			Unused  []struct {
				Grant       string
				Actions     int
				UsedActions []string `json:"used"`
			}
			Denied     []struct{ Action string }
			NotGranted []struct{ Action string }
		}
	}
	if err := json.Unmarshal([]byte(out), &diffs); err != nil {
		t.Fatalf("diff output: %v\n%s", err, out)
	}
	if len(diffs.Diffs) != 2 {
		t.Fatalf("%d diffs, want 2:\n%s", len(diffs.Diffs), out)
	}
	for _, d := range diffs.Diffs {
		p := web
		if *d.Binding == api.sub {
			p = api
		}
		var used []string
		for _, u := range d.Unused {
			if u.Actions < 5 {
				t.Errorf("%s: %s covers %d actions of the IAM list", p.repo, u.Grant, u.Actions)
			}
			used = append(used, u.UsedActions...)
		}
		slices.Sort(used)
		if !slices.Equal(d.Granted, []string{"inline perm"}) || len(d.Unused) != 2 || !slices.Equal(used, want(p)) || len(d.NotGranted) != 0 {
			t.Errorf("%s: diff %+v; want both wildcards unused in part, used %v", p.repo, d, want(p))
		}
		wantDenied := 0
		if p.repo == api.repo {
			wantDenied = 1
		}
		if len(d.Denied) != wantDenied || wantDenied == 1 && d.Denied[0].Action != "iam:CreateRole" {
			t.Errorf("%s: denied %+v", p.repo, d.Denied)
		}
	}

	// Each project's policy, as the role's permission policy, allows its
	// calls through the server and refuses the other project's extra call.
	for _, tc := range []struct {
		p       ciProject
		binding string
		refused string
	}{
		{web, web.sub, "iam:GetRolePolicy"},
		{api, api.sub, "iam:ListRoles"},
	} {
		putPerm(docs[tc.binding])
		c, _ := session(tc.p, strings.ReplaceAll(tc.p.repo, "/", "-")+"-2")
		for _, a := range tc.p.calls {
			if err := pgCall(ctx, c, a); err != nil {
				t.Errorf("%s under its generated policy: %s refused: %v\npolicy: %s", tc.p.repo, a, err, docs[tc.binding])
			}
		}
		err := pgCall(ctx, c, tc.refused)
		if ae, ok := errors.AsType[smithy.APIError](err); !ok || ae.ErrorCode() != "AccessDenied" {
			t.Errorf("%s under its generated policy: %s: %v, want AccessDenied\npolicy: %s", tc.p.repo, tc.refused, err, docs[tc.binding])
		}
	}
}
