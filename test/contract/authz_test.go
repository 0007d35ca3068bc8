package contract

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Session authorization through a real keyless serve: every IAM call made
// with session credentials is authorized against the resource the action
// acts on — taken from the parameter that names it for that action, with
// the role's path — and a parameter the action does not define is refused,
// so an unused RoleName cannot steer the check (issue 11, item 1). Request
// condition keys are supplied as AWS documents them (item 2).

// rawCreds are session credentials for raw signed requests.
type rawCreds struct{ id, secret, token string }

// rawResult is a Query API answer.
type rawResult struct {
	Status  int
	Code    string
	Message string
	Body    string
}

// rawIAM signs form as service iam with creds and posts it: requests the
// SDKs cannot make (parameters an action does not define).
func rawIAM(t *testing.T, base string, c rawCreds, form url.Values) rawResult {
	t.Helper()
	out, err := postIAM(context.Background(), t, base, c, form)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// postIAM signs form for service iam and posts it with ctx; the error is
// the transport's (a cancelled ctx).
func postIAM(ctx context.Context, t *testing.T, base string, c rawCreds, form url.Values) (rawResult, error) {
	t.Helper()
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret, SessionToken: c.token}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "iam", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	// A fresh transport per request: cancelling closes its connection,
	// which is how the server learns that the client left.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return rawResult{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := rawResult{Status: resp.StatusCode, Body: string(b)}
	var e struct {
		Code    string `xml:"Error>Code"`
		Message string `xml:"Error>Message"`
	}
	if resp.StatusCode != http.StatusOK && xml.Unmarshal(b, &e) == nil {
		out.Code, out.Message = e.Code, e.Message
	}
	return out, nil
}

// sessionFor puts permission policy perm on the federation's role and
// returns a session of it.
func (f *federation) sessionFor(t *testing.T, perm string) rawCreds {
	t.Helper()
	ctx := context.Background()
	admin := f.srv.iamClient(adminKeyID, adminSecret, "")
	if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("ci-deploy"), PolicyName: aws.String("perm"), PolicyDocument: aws.String(perm)}); err != nil {
		t.Fatal(err)
	}
	c := sts.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}}, func(o *sts.Options) { o.BaseEndpoint = aws.String(f.srv.URL) })
	out, err := c.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(f.roleARN), RoleSessionName: aws.String("authz"), WebIdentityToken: aws.String(f.token(t, "repo:octo-org/app:ref:refs/heads/main")),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rawCreds{*out.Credentials.AccessKeyId, *out.Credentials.SecretAccessKey, *out.Credentials.SessionToken}
}

// form builds a Query request.
func form(action string, kv ...string) url.Values {
	v := url.Values{"Action": {action}, "Version": {"2010-05-08"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

const (
	permDoc  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	trustDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
)

// TestSessionAuthorizationPerAction drives every IAM action with a session
// whose policy allows iam:* on /ci/ roles, ci/ policies and one provider,
// and explicitly denies the "protected" ones: a call on an allowed resource
// is not refused, a call on the denied or on an unlisted resource is
// AccessDenied, and adding a parameter that names an allowed resource to a
// call on a denied one never gets it through (the pre-fix server took the
// resource from whichever of RoleName/PolicyArn/… was present).
func TestSessionAuthorizationPerAction(t *testing.T) {
	f := newFederation(t)
	acct := accountID
	roleARN := func(path, name string) string { return "arn:aws:iam::" + acct + ":role" + path + name }
	polARN := func(path, name string) string { return "arn:aws:iam::" + acct + ":policy" + path + name }
	provARN := func(host string) string { return "arn:aws:iam::" + acct + ":oidc-provider/" + host }
	perm := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Action":"iam:*","Resource":["` + roleARN("/ci/", "*") + `","` + polARN("/ci/", "*") + `","` + provARN("allowed.example.com*") + `"]},
	 {"Effect":"Allow","Action":["iam:ListRoles","iam:ListPolicies","iam:ListOpenIDConnectProviders","iam:SimulateCustomPolicy"],"Resource":"*"},
	 {"Effect":"Deny","Action":"iam:*","Resource":["` + roleARN("/ci/", "protected*") + `","` + polARN("/ci/", "protected*") + `","` + provARN("protected.example.com*") + `"]}]}`
	sess := f.sessionFor(t, perm)

	// The administrator sets up one allowed, one denied and one unlisted
	// resource of each kind (the denied ones sit inside the allowed path).
	admin := f.srv.iamClient(adminKeyID, adminSecret, "")
	ctx := context.Background()
	for _, r := range []struct{ path, name string }{{"/ci/", "app"}, {"/ci/", "app-del"}, {"/ci/", "protected"}, {"/other/", "x"}} {
		if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(r.name), Path: aws.String(r.path), AssumeRolePolicyDocument: aws.String(trustDoc)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []struct{ path, name string }{{"/ci/", "pol"}, {"/ci/", "pol-del"}, {"/ci/", "protected"}, {"/other/", "otherpol"}} {
		if _, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(p.name), Path: aws.String(p.path), PolicyDocument: aws.String(permDoc)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"allowed.example.com", "protected.example.com", "other.example.com"} {
		if _, err := admin.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
			Url: aws.String("https://" + h), ClientIDList: []string{"sts.amazonaws.com"}, ThumbprintList: []string{strings.Repeat("a", 40)},
		}); err != nil {
			t.Fatal(err)
		}
	}

	type target struct{ role, pol, prov string }
	allowed := target{role: "app", pol: polARN("/ci/", "pol"), prov: provARN("allowed.example.com")}
	denied := target{role: "protected", pol: polARN("/ci/", "protected"), prov: provARN("protected.example.com")}
	unlisted := target{role: "x", pol: polARN("/other/", "otherpol"), prov: provARN("other.example.com")}

	// Each action's request on a target. kind says which parameter names
	// the resource, and so which parameter is smuggled.
	type action struct {
		name string
		kind string // role, newrole, policy, newpolicy, provider, newprovider, none, simsource
		req  func(t target) url.Values
	}
	role := func(name string, kv ...string) action {
		return action{name, "role", func(t target) url.Values { return form(name, append([]string{"RoleName", t.role}, kv...)...) }}
	}
	pol := func(name string, kv ...string) action {
		return action{name, "policy", func(t target) url.Values { return form(name, append([]string{"PolicyArn", t.pol}, kv...)...) }}
	}
	prov := func(name string, kv ...string) action {
		return action{name, "provider", func(t target) url.Values {
			return form(name, append([]string{"OpenIDConnectProviderArn", t.prov}, kv...)...)
		}}
	}
	actions := []action{
		prov("GetOpenIDConnectProvider"),
		prov("AddClientIDToOpenIDConnectProvider", "ClientID", "extra-aud"),
		prov("RemoveClientIDFromOpenIDConnectProvider", "ClientID", "extra-aud"),
		prov("UpdateOpenIDConnectProviderThumbprint", "ThumbprintList.member.1", strings.Repeat("b", 40)),
		prov("TagOpenIDConnectProvider", "Tags.member.1.Key", "team", "Tags.member.1.Value", "ci"),
		prov("UntagOpenIDConnectProvider", "TagKeys.member.1", "team"),
		prov("ListOpenIDConnectProviderTags"),
		{"CreateOpenIDConnectProvider", "newprovider", func(t target) url.Values {
			host := strings.TrimPrefix(t.prov, "arn:aws:iam::"+acct+":oidc-provider/")
			return form("CreateOpenIDConnectProvider", "Url", "https://"+host+"/new", "ClientIDList.member.1", "sts.amazonaws.com", "ThumbprintList.member.1", strings.Repeat("c", 40))
		}},
		role("GetRole"),
		role("UpdateRole", "Description", "d"),
		role("UpdateRoleDescription", "Description", "d"),
		role("UpdateAssumeRolePolicy", "PolicyDocument", trustDoc),
		role("TagRole", "Tags.member.1.Key", "team", "Tags.member.1.Value", "ci"),
		role("UntagRole", "TagKeys.member.1", "team"),
		role("ListRoleTags"),
		role("PutRolePermissionsBoundary", "PermissionsBoundary", polARN("/ci/", "pol")),
		role("DeleteRolePermissionsBoundary"),
		role("ListInstanceProfilesForRole"),
		role("PutRolePolicy", "PolicyName", "inline", "PolicyDocument", permDoc),
		role("GetRolePolicy", "PolicyName", "inline"),
		role("ListRolePolicies"),
		role("DeleteRolePolicy", "PolicyName", "inline"),
		role("AttachRolePolicy", "PolicyArn", polARN("/ci/", "pol")),
		role("ListAttachedRolePolicies"),
		role("DetachRolePolicy", "PolicyArn", polARN("/ci/", "pol")),
		{"CreateRole", "newrole", func(t target) url.Values {
			path := map[string]string{"app": "/ci/", "protected": "/ci/", "x": "/other/"}[t.role]
			name := map[string]string{"app": "created", "protected": "protected-new", "x": "created"}[t.role]
			return form("CreateRole", "RoleName", name, "Path", path, "AssumeRolePolicyDocument", trustDoc)
		}},
		pol("GetPolicy"),
		pol("CreatePolicyVersion", "PolicyDocument", permDoc),
		pol("ListPolicyVersions"),
		pol("GetPolicyVersion", "VersionId", "v1"),
		pol("SetDefaultPolicyVersion", "VersionId", "v1"),
		pol("DeletePolicyVersion", "VersionId", "v2"),
		{"CreatePolicy", "newpolicy", func(t target) url.Values {
			path := "/ci/"
			name := map[string]string{"app": "created", "protected": "protected-new", "x": "created"}[t.role]
			if t.role == "x" {
				path = "/other/"
			}
			return form("CreatePolicy", "PolicyName", name, "Path", path, "PolicyDocument", permDoc)
		}},
		{"SimulatePrincipalPolicy", "simsource", func(t target) url.Values {
			path := map[string]string{"app": "/ci/", "protected": "/ci/", "x": "/other/"}[t.role]
			return form("SimulatePrincipalPolicy", "PolicySourceArn", roleARN(path, t.role), "ActionNames.member.1", "s3:GetObject")
		}},
		// Destructive actions last, on their own resources.
		{"DeleteRole", "role", func(t target) url.Values {
			return form("DeleteRole", "RoleName", map[string]string{"app": "app-del", "protected": "protected", "x": "x"}[t.role])
		}},
		{"DeletePolicy", "policy", func(t target) url.Values {
			return form("DeletePolicy", "PolicyArn", strings.Replace(t.pol, "/ci/pol", "/ci/pol-del", 1))
		}},
		prov("DeleteOpenIDConnectProvider"),
	}
	noResource := []string{"ListRoles", "ListPolicies", "ListOpenIDConnectProviders", "SimulateCustomPolicy"}

	// The parameter that would have steered the pre-fix check, naming an
	// allowed resource.
	smuggle := map[string][2]string{
		"role":     {"RoleName", allowed.role},
		"newrole":  {"PolicyArn", allowed.pol},
		"policy":   {"RoleName", allowed.role},
		"provider": {"RoleName", allowed.role},
	}
	seen := map[string]bool{}
	for _, a := range actions {
		seen[a.name] = true
		t.Run(a.name, func(t *testing.T) {
			if got := rawIAM(t, f.srv.URL, sess, a.req(denied)); got.Code != "AccessDenied" {
				t.Errorf("on the denied resource: %d %s, want AccessDenied\n%s", got.Status, got.Code, got.Body)
			}
			if got := rawIAM(t, f.srv.URL, sess, a.req(unlisted)); got.Code != "AccessDenied" {
				t.Errorf("on an unlisted resource: %d %s, want AccessDenied\n%s", got.Status, got.Code, got.Body)
			}
			for _, kind := range []string{"role", "policy", "provider", "newrole"} {
				sm := smuggle[kind]
				req := a.req(denied)
				if req.Has(sm[0]) {
					continue // a parameter the action defines: not smuggled
				}
				req.Set(sm[0], sm[1])
				if got := rawIAM(t, f.srv.URL, sess, req); got.Code != "ValidationError" && got.Code != "AccessDenied" {
					t.Errorf("denied resource plus %s=%s: %d %s, want ValidationError or AccessDenied\n%s", sm[0], sm[1], got.Status, got.Code, got.Body)
				}
			}
			if got := rawIAM(t, f.srv.URL, sess, a.req(allowed)); got.Code == "AccessDenied" || got.Code == "ValidationError" {
				t.Errorf("on the allowed resource: %d %s, want it let through\n%s", got.Status, got.Code, got.Body)
			}
		})
	}
	for _, name := range noResource {
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			req := form(name)
			if name == "SimulateCustomPolicy" {
				req.Set("PolicyInputList.member.1", permDoc)
				req.Set("ActionNames.member.1", "s3:GetObject")
			}
			if got := rawIAM(t, f.srv.URL, sess, req); got.Status != http.StatusOK {
				t.Errorf("allowed on *: %d %s\n%s", got.Status, got.Code, got.Body)
			}
			req.Set("RoleName", denied.role)
			if got := rawIAM(t, f.srv.URL, sess, req); got.Code != "ValidationError" {
				t.Errorf("with RoleName: %d %s, want ValidationError\n%s", got.Status, got.Code, got.Body)
			}
		})
	}
	// Every IAM action keyless serves is covered.
	for _, name := range iamActionNames {
		if !seen[name] {
			t.Errorf("action %s is not exercised", name)
		}
	}
}

// iamActionNames are the IAM actions keyless serves (internal/iam
// Actions): a new action must be added to the per-action test above.
var iamActionNames = []string{
	"CreateOpenIDConnectProvider", "GetOpenIDConnectProvider", "ListOpenIDConnectProviders", "DeleteOpenIDConnectProvider",
	"AddClientIDToOpenIDConnectProvider", "RemoveClientIDFromOpenIDConnectProvider", "UpdateOpenIDConnectProviderThumbprint",
	"TagOpenIDConnectProvider", "UntagOpenIDConnectProvider", "ListOpenIDConnectProviderTags",
	"CreateRole", "GetRole", "ListRoles", "UpdateRole", "UpdateRoleDescription", "UpdateAssumeRolePolicy", "DeleteRole",
	"TagRole", "UntagRole", "ListRoleTags", "PutRolePermissionsBoundary", "DeleteRolePermissionsBoundary", "ListInstanceProfilesForRole",
	"PutRolePolicy", "GetRolePolicy", "ListRolePolicies", "DeleteRolePolicy",
	"CreatePolicy", "GetPolicy", "ListPolicies", "DeletePolicy", "GetPolicyVersion", "CreatePolicyVersion", "ListPolicyVersions",
	"DeletePolicyVersion", "SetDefaultPolicyVersion", "AttachRolePolicy", "DetachRolePolicy", "ListAttachedRolePolicies",
	"SimulateCustomPolicy", "SimulatePrincipalPolicy",
}

// TestSessionAuthorizationExploits are the issue's examples, as reported.
func TestSessionAuthorizationExploits(t *testing.T) {
	f := newFederation(t)
	acct := accountID
	perm := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam::` + acct + `:role/ci/*"},
	 {"Effect":"Allow","Action":"iam:CreateRole","Resource":"arn:aws:iam::` + acct + `:role/sandbox-*"}]}`
	sess := f.sessionFor(t, perm)
	admin := f.srv.iamClient(adminKeyID, adminSecret, "")
	ctx := context.Background()
	if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("app"), Path: aws.String("/ci/"), AssumeRolePolicyDocument: aws.String(trustDoc)}); err != nil {
		t.Fatal(err)
	}
	out, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("AdminAccess"), PolicyDocument: aws.String(permDoc)})
	if err != nil {
		t.Fatal(err)
	}
	// An unused RoleName on CreatePolicyVersion was full admin.
	got := rawIAM(t, f.srv.URL, sess, form("CreatePolicyVersion", "PolicyArn", *out.Policy.Arn, "PolicyDocument", permDoc, "SetAsDefault", "true", "RoleName", "app"))
	if got.Code != "ValidationError" || !strings.Contains(got.Body, "RoleName is not defined for action CreatePolicyVersion") {
		t.Errorf("CreatePolicyVersion + RoleName: %d %s\n%s", got.Status, got.Code, got.Body)
	}
	got = rawIAM(t, f.srv.URL, sess, form("CreatePolicyVersion", "PolicyArn", *out.Policy.Arn, "PolicyDocument", permDoc))
	if got.Code != "AccessDenied" || !strings.Contains(got.Body, "on resource: "+*out.Policy.Arn) {
		t.Errorf("CreatePolicyVersion on an unlisted policy: %d %s\n%s", got.Status, got.Code, got.Body)
	}
	// CreateRole is authorized on the role it creates, path included.
	for _, c := range []struct {
		path, name, want string
	}{
		{"/ci/", "sandbox-y", ""},                // role/ci/* allows it
		{"/", "sandbox-w", ""},                   // role/sandbox-* allows it
		{"/ci/", "", "ValidationError"},          // handler's own validation, after authorization
		{"/other/", "sandbox-z", "AccessDenied"}, // role/other/sandbox-z: neither
	} {
		got := rawIAM(t, f.srv.URL, sess, form("CreateRole", "RoleName", c.name, "Path", c.path, "AssumeRolePolicyDocument", trustDoc))
		if got.Code != c.want {
			t.Errorf("CreateRole %s%s: %d %s, want %q\n%s", c.path, c.name, got.Status, got.Code, c.want, got.Body)
		}
	}
}

// TestSessionRequestContext: the standard AWS delegation patterns work
// against sessions, because each call carries the condition keys AWS
// documents for it.
func TestSessionRequestContext(t *testing.T) {
	f := newFederation(t)
	acct := accountID
	boundary := "arn:aws:iam::" + acct + ":policy/ci-boundary"
	admin := f.srv.iamClient(adminKeyID, adminSecret, "")
	ctx := context.Background()
	if _, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("ci-boundary"), PolicyDocument: aws.String(permDoc)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("AdminAccess"), PolicyDocument: aws.String(permDoc)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("owned"), AssumeRolePolicyDocument: aws.String(trustDoc),
		Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("ci")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("foreign"), AssumeRolePolicyDocument: aws.String(trustDoc),
		Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}}); err != nil {
		t.Fatal(err)
	}
	perm := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Action":"iam:*","Resource":"*"},
	 {"Sid":"BoundaryRequired","Effect":"Deny","Action":["iam:CreateRole","iam:PutRolePermissionsBoundary"],"Resource":"*",
	  "Condition":{"StringNotEquals":{"iam:PermissionsBoundary":"` + boundary + `"}}},
	 {"Sid":"NoAdminAttach","Effect":"Deny","Action":"iam:AttachRolePolicy","Resource":"*",
	  "Condition":{"ArnLike":{"iam:PolicyARN":"arn:aws:iam::*:policy/AdminAccess"}}},
	 {"Sid":"NoOwnerTags","Effect":"Deny","Action":["iam:TagRole","iam:UntagRole","iam:CreateRole"],"Resource":"*",
	  "Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["owner"]}}},
	 {"Sid":"OnlyOwnTeam","Effect":"Deny","Action":["iam:UpdateRole","iam:DeleteRole"],"Resource":"*",
	  "Condition":{"StringNotEquals":{"aws:ResourceTag/team":"ci"}}},
	 {"Sid":"TLSOnlyForPolicies","Effect":"Deny","Action":"iam:CreatePolicy","Resource":"*",
	  "Condition":{"Bool":{"aws:SecureTransport":"false"}}},
	 {"Sid":"IAMIsUsEast1","Effect":"Deny","Action":"iam:ListRoles","Resource":"*",
	  "Condition":{"StringNotEquals":{"aws:RequestedRegion":"us-east-1"}}},
	 {"Sid":"FromLoopbackOnly","Effect":"Deny","Action":"iam:ListPolicies","Resource":"*",
	  "Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}`
	sess := f.sessionFor(t, perm)
	cases := []struct {
		name string
		req  url.Values
		want string
	}{
		{"CreateRole without the boundary", form("CreateRole", "RoleName", "a", "AssumeRolePolicyDocument", trustDoc), "AccessDenied"},
		{"CreateRole with another boundary", form("CreateRole", "RoleName", "a", "AssumeRolePolicyDocument", trustDoc, "PermissionsBoundary", "arn:aws:iam::"+acct+":policy/AdminAccess"), "AccessDenied"},
		{"CreateRole with the boundary", form("CreateRole", "RoleName", "a", "AssumeRolePolicyDocument", trustDoc, "PermissionsBoundary", boundary), ""},
		{"CreateRole with the boundary and an owner tag", form("CreateRole", "RoleName", "b", "AssumeRolePolicyDocument", trustDoc, "PermissionsBoundary", boundary,
			"Tags.member.1.Key", "owner", "Tags.member.1.Value", "me"), "AccessDenied"},
		{"PutRolePermissionsBoundary to another", form("PutRolePermissionsBoundary", "RoleName", "owned", "PermissionsBoundary", "arn:aws:iam::"+acct+":policy/AdminAccess"), "AccessDenied"},
		{"AttachRolePolicy AdminAccess", form("AttachRolePolicy", "RoleName", "owned", "PolicyArn", "arn:aws:iam::"+acct+":policy/AdminAccess"), "AccessDenied"},
		{"AttachRolePolicy the boundary policy", form("AttachRolePolicy", "RoleName", "owned", "PolicyArn", boundary), ""},
		{"TagRole owner", form("TagRole", "RoleName", "owned", "Tags.member.1.Key", "owner", "Tags.member.1.Value", "me"), "AccessDenied"},
		{"TagRole other", form("TagRole", "RoleName", "owned", "Tags.member.1.Key", "env", "Tags.member.1.Value", "prod"), ""},
		{"UntagRole owner", form("UntagRole", "RoleName", "owned", "TagKeys.member.1", "owner"), "AccessDenied"},
		{"UpdateRole own team", form("UpdateRole", "RoleName", "owned", "Description", "d"), ""},
		{"UpdateRole foreign team", form("UpdateRole", "RoleName", "foreign", "Description", "d"), "AccessDenied"},
		{"CreatePolicy over plain HTTP", form("CreatePolicy", "PolicyName", "p", "PolicyDocument", permDoc), "AccessDenied"},
		{"ListRoles (IAM is us-east-1)", form("ListRoles"), ""},
		{"ListPolicies from loopback", form("ListPolicies"), ""},
	}
	for _, c := range cases {
		got := rawIAM(t, f.srv.URL, sess, c.req)
		if got.Code != c.want {
			t.Errorf("%s: %d %q, want %q\n%s", c.name, got.Status, got.Code, c.want, got.Body)
		}
	}
}

// TestSessionTokenIssueTime: the "revoke older sessions" pattern AWS
// documents (a deny on aws:TokenIssueTime) cuts off sessions issued
// before a time and leaves newer ones working.
func TestSessionTokenIssueTime(t *testing.T) {
	f := newFederation(t)
	old := f.sessionFor(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}]}`)
	if got := rawIAM(t, f.srv.URL, old, form("ListRoles")); got.Status != http.StatusOK {
		t.Fatalf("before revocation: %d %s", got.Status, got.Body)
	}
	time.Sleep(1100 * time.Millisecond) // token issue times have 1 s resolution
	cut := time.Now().UTC().Format(time.RFC3339)
	perm := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"},
	 {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"` + cut + `"}}}]}`
	time.Sleep(1100 * time.Millisecond)
	fresh := f.sessionFor(t, perm)
	if got := rawIAM(t, f.srv.URL, old, form("ListRoles")); got.Code != "AccessDenied" {
		t.Errorf("session issued before %s: %d %s, want AccessDenied", cut, got.Status, got.Code)
	}
	if got := rawIAM(t, f.srv.URL, fresh, form("ListRoles")); got.Status != http.StatusOK {
		t.Errorf("session issued after %s: %d %s\n%s", cut, got.Status, got.Code, got.Body)
	}
}
