package contract

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

func sdkConfig(keyID, secret, token string) aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, token),
		RetryMaxAttempts: 3, // transient transport errors only; AWS error codes are not retried
	}
}

func (s *server) iamClient(keyID, secret, token string) *iam.Client {
	return iam.NewFromConfig(sdkConfig(keyID, secret, token), func(o *iam.Options) { o.BaseEndpoint = aws.String(s.URL) })
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("code = %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestIAMWithSDK covers every IAM action through aws-sdk-go-v2's client,
// with typed errors where the SDK has them.
func TestIAMWithSDK(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	c := s.iamClient(adminKeyID, adminSecret, "")
	ctx := context.Background()

	// OIDC providers.
	cp := must[*iam.CreateOpenIDConnectProviderOutput](t)(c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String("https://oidc.circleci.com/org/0b0b"), ClientIDList: []string{"0b0b"},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ci")}},
	}))
	arn := aws.ToString(cp.OpenIDConnectProviderArn)
	if arn != "arn:aws:iam::"+accountID+":oidc-provider/oidc.circleci.com/org/0b0b" || len(cp.Tags) != 1 {
		t.Fatalf("create provider = %s %v", arn, cp.Tags)
	}
	_, err := c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://oidc.circleci.com/org/0b0b"), ClientIDList: []string{"x"}})
	var exists *types.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("duplicate provider: %v", err)
	}
	_, err = c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://a.example.com:8443/x"), ClientIDList: []string{"x"}})
	var inv *types.InvalidInputException
	if !errors.As(err, &inv) {
		t.Fatalf("port in URL: %v", err)
	}
	_, err = c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://a.example.com"), ThumbprintList: []string{strings.Repeat("z", 40)}})
	if !errors.As(err, &inv) {
		t.Fatalf("non-hex thumbprint: %v", err)
	}
	gp := must[*iam.GetOpenIDConnectProviderOutput](t)(c.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn}))
	if aws.ToString(gp.Url) != "oidc.circleci.com/org/0b0b" || gp.CreateDate == nil || len(gp.Tags) != 1 {
		t.Fatalf("get provider = %+v", gp)
	}
	_, err = c.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String("arn:aws:iam::" + accountID + ":oidc-provider/none.example")})
	var nse *types.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Fatalf("missing provider: %v", err)
	}
	lp := must[*iam.ListOpenIDConnectProvidersOutput](t)(c.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{}))
	if len(lp.OpenIDConnectProviderList) != 1 {
		t.Fatalf("list providers = %v", lp.OpenIDConnectProviderList)
	}
	must[*iam.AddClientIDToOpenIDConnectProviderOutput](t)(c.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn, ClientID: aws.String("sts.amazonaws.com")}))
	must[*iam.RemoveClientIDFromOpenIDConnectProviderOutput](t)(c.RemoveClientIDFromOpenIDConnectProvider(ctx, &iam.RemoveClientIDFromOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn, ClientID: aws.String("0b0b")}))
	must[*iam.UpdateOpenIDConnectProviderThumbprintOutput](t)(c.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{OpenIDConnectProviderArn: &arn, ThumbprintList: []string{thumbprint}}))
	// Client ids are capped at 100.
	for i := range 99 {
		must[*iam.AddClientIDToOpenIDConnectProviderOutput](t)(c.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn, ClientID: aws.String(fmt.Sprint("c", i))}))
	}
	_, err = c.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn, ClientID: aws.String("one-too-many")})
	var lim *types.LimitExceededException
	if !errors.As(err, &lim) {
		t.Fatalf("101st client id: %v", err)
	}
	must[*iam.TagOpenIDConnectProviderOutput](t)(c.TagOpenIDConnectProvider(ctx, &iam.TagOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn, Tags: []types.Tag{{Key: aws.String("Team"), Value: aws.String("x")}}}))
	must[*iam.UntagOpenIDConnectProviderOutput](t)(c.UntagOpenIDConnectProvider(ctx, &iam.UntagOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn, TagKeys: []string{"team"}}))
	pt := must[*iam.ListOpenIDConnectProviderTagsOutput](t)(c.ListOpenIDConnectProviderTags(ctx, &iam.ListOpenIDConnectProviderTagsInput{OpenIDConnectProviderArn: &arn}))
	if len(pt.Tags) != 1 || aws.ToString(pt.Tags[0].Key) != "Team" {
		t.Fatalf("provider tags (keys are case-sensitive for providers) = %v", pt.Tags)
	}
	gp = must[*iam.GetOpenIDConnectProviderOutput](t)(c.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn}))
	if len(gp.ClientIDList) != 100 || gp.ClientIDList[0] != "sts.amazonaws.com" || len(gp.ThumbprintList) != 1 {
		t.Fatalf("after updates: %d client ids, %v", len(gp.ClientIDList), gp.ThumbprintList)
	}

	// Roles.
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + arn + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"oidc.circleci.com/org/0b0b:sub":"org/0b0b/project/p1/user/*"}}}]}`
	cr := must[*iam.CreateRoleOutput](t)(c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("circleci-oidc-p1"), AssumeRolePolicyDocument: &trust, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}}))
	if got, _ := url.QueryUnescape(aws.ToString(cr.Role.AssumeRolePolicyDocument)); got != trust {
		t.Fatalf("trust policy round trip:\n%s\n%s", got, trust)
	}
	for i := range 3 {
		must[*iam.CreateRoleOutput](t)(c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(fmt.Sprint("page-", i)), Path: aws.String("/paged/"), AssumeRolePolicyDocument: &trust}))
	}
	var names []string
	pager := iam.NewListRolesPaginator(c, &iam.ListRolesInput{MaxItems: aws.Int32(2)})
	for pager.HasMorePages() {
		page := must[*iam.ListRolesOutput](t)(pager.NextPage(ctx))
		for _, r := range page.Roles {
			names = append(names, aws.ToString(r.RoleName))
		}
	}
	if strings.Join(names, ",") != "circleci-oidc-p1,page-0,page-1,page-2" {
		t.Fatalf("paged roles = %v", names)
	}
	must[*iam.UpdateRoleOutput](t)(c.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String("circleci-oidc-p1"), MaxSessionDuration: aws.Int32(43200)}))
	_, err = c.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String("circleci-oidc-p1"), MaxSessionDuration: aws.Int32(43201)})
	wantCode(t, err, "ValidationError")
	must[*iam.UpdateAssumeRolePolicyOutput](t)(c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("circleci-oidc-p1"), PolicyDocument: &trust}))
	big := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + arn + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"oidc.circleci.com/org/0b0b:sub":["` + strings.Repeat("x", 2100) + `"]}}}]}`
	_, err = c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("circleci-oidc-p1"), PolicyDocument: &big})
	if !errors.As(err, &lim) {
		t.Fatalf("oversize trust policy: %v", err)
	}
	must[*iam.TagRoleOutput](t)(c.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String("circleci-oidc-p1"), Tags: []types.Tag{{Key: aws.String("A"), Value: aws.String("2")}}}))
	rt := must[*iam.ListRoleTagsOutput](t)(c.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: aws.String("circleci-oidc-p1")}))
	if len(rt.Tags) != 1 || aws.ToString(rt.Tags[0].Value) != "2" {
		t.Fatalf("role tags are case-insensitive: %v", rt.Tags)
	}
	must[*iam.UntagRoleOutput](t)(c.UntagRole(ctx, &iam.UntagRoleInput{RoleName: aws.String("circleci-oidc-p1"), TagKeys: []string{"a"}}))
	gr := must[*iam.GetRoleOutput](t)(c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("CIRCLECI-OIDC-P1")}))
	if aws.ToInt32(gr.Role.MaxSessionDuration) != 43200 || len(gr.Role.Tags) != 0 || aws.ToString(gr.Role.RoleName) != "circleci-oidc-p1" {
		t.Fatalf("get role = %+v", gr.Role)
	}

	// Inline and managed policies.
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}]}`
	must[*iam.PutRolePolicyOutput](t)(c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("circleci-oidc-p1"), PolicyName: aws.String("list"), PolicyDocument: &doc}))
	grp := must[*iam.GetRolePolicyOutput](t)(c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("circleci-oidc-p1"), PolicyName: aws.String("list")}))
	if got, _ := url.QueryUnescape(aws.ToString(grp.PolicyDocument)); got != doc {
		t.Fatalf("inline policy round trip: %s", got)
	}
	lrp := must[*iam.ListRolePoliciesOutput](t)(c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String("circleci-oidc-p1")}))
	if len(lrp.PolicyNames) != 1 {
		t.Fatalf("inline names = %v", lrp.PolicyNames)
	}
	_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("circleci-oidc-p1"), PolicyName: aws.String("dup"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}`)})
	var mal *types.MalformedPolicyDocumentException
	if !errors.As(err, &mal) {
		t.Fatalf("duplicate keys: %v", err)
	}
	cpo := must[*iam.CreatePolicyOutput](t)(c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("ci-read"), PolicyDocument: &doc, Description: aws.String("read")}))
	parn := cpo.Policy.Arn
	if !strings.HasPrefix(aws.ToString(cpo.Policy.PolicyId), "ANPA") {
		t.Fatalf("policy id = %s", aws.ToString(cpo.Policy.PolicyId))
	}
	must[*iam.GetPolicyOutput](t)(c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: parn}))
	v2 := must[*iam.CreatePolicyVersionOutput](t)(c.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: parn, PolicyDocument: &doc, SetAsDefault: true}))
	if aws.ToString(v2.PolicyVersion.VersionId) != "v2" {
		t.Fatalf("version = %v", v2.PolicyVersion.VersionId)
	}
	lv := must[*iam.ListPolicyVersionsOutput](t)(c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: parn}))
	if len(lv.Versions) != 2 || !lv.Versions[0].IsDefaultVersion {
		t.Fatalf("versions = %+v", lv.Versions)
	}
	_, err = c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: parn, VersionId: aws.String("v2")})
	var conflict *types.DeleteConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("delete default version: %v", err)
	}
	must[*iam.SetDefaultPolicyVersionOutput](t)(c.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: parn, VersionId: aws.String("v1")}))
	must[*iam.DeletePolicyVersionOutput](t)(c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: parn, VersionId: aws.String("v2")}))
	gpv := must[*iam.GetPolicyVersionOutput](t)(c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: parn, VersionId: aws.String("v1")}))
	if !gpv.PolicyVersion.IsDefaultVersion {
		t.Fatal("v1 not default")
	}
	must[*iam.AttachRolePolicyOutput](t)(c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("circleci-oidc-p1"), PolicyArn: parn}))
	la := must[*iam.ListAttachedRolePoliciesOutput](t)(c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("circleci-oidc-p1")}))
	if len(la.AttachedPolicies) != 1 || aws.ToString(la.AttachedPolicies[0].PolicyName) != "ci-read" {
		t.Fatalf("attached = %+v", la.AttachedPolicies)
	}
	lpo := must[*iam.ListPoliciesOutput](t)(c.ListPolicies(ctx, &iam.ListPoliciesInput{OnlyAttached: true, Scope: types.PolicyScopeTypeLocal}))
	if len(lpo.Policies) != 1 || aws.ToInt32(lpo.Policies[0].AttachmentCount) != 1 {
		t.Fatalf("attached policies = %+v", lpo.Policies)
	}
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("circleci-oidc-p1")})
	if !errors.As(err, &conflict) {
		t.Fatalf("delete role with policies: %v", err)
	}
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: parn})
	if !errors.As(err, &conflict) {
		t.Fatalf("delete attached policy: %v", err)
	}
	must[*iam.DetachRolePolicyOutput](t)(c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("circleci-oidc-p1"), PolicyArn: parn}))
	must[*iam.DeleteRolePolicyOutput](t)(c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("circleci-oidc-p1"), PolicyName: aws.String("list")}))
	must[*iam.DeletePolicyOutput](t)(c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: parn}))
	must[*iam.DeleteRoleOutput](t)(c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("circleci-oidc-p1")}))
	_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("circleci-oidc-p1")})
	if !errors.As(err, &nse) {
		t.Fatalf("deleted role: %v", err)
	}
	must[*iam.DeleteOpenIDConnectProviderOutput](t)(c.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn}))
	// Deleting a provider that does not exist succeeds, as IAM documents.
	must[*iam.DeleteOpenIDConnectProviderOutput](t)(c.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn}))

	// A wrong secret is refused and writes nothing.
	bad := s.iamClient(adminKeyID, "not-the-secret-not-the-secret-not-the-00", "")
	_, err = bad.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("sneaky"), AssumeRolePolicyDocument: &trust})
	wantCode(t, err, "SignatureDoesNotMatch")
	_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("sneaky")})
	if !errors.As(err, &nse) {
		t.Fatalf("refused write changed state: %v", err)
	}
}

func iamCreateProvider(url string, clientIDs ...string) *iam.CreateOpenIDConnectProviderInput {
	return &iam.CreateOpenIDConnectProviderInput{Url: aws.String(url), ClientIDList: clientIDs}
}

func iamCreateRole(name, trust string) *iam.CreateRoleInput {
	return &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)}
}
