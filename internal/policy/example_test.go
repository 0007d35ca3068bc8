package policy_test

import (
	"fmt"

	"github.com/keylessci/keyless/internal/policy"
)

// The STS decides AssumeRoleWithWebIdentity with the role's trust policy as
// the only (resource-based) policy and the token's claims as the context.
func ExamplePolicySet_Explain() {
	trust, err := policy.Parse(`{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {
      "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
      "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/app:ref:refs/heads/main"}
    }
  }]
}`, policy.KindTrust)
	if err != nil {
		panic(err)
	}
	ctx := policy.NewContext(2)
	ctx.Set("token.actions.githubusercontent.com:aud", "sts.amazonaws.com")
	ctx.Set("token.actions.githubusercontent.com:sub", "repo:acme/app:pull_request")
	req := &policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalFederated, ID: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
		Action:    "sts:AssumeRoleWithWebIdentity",
		Resource:  "arn:aws:iam::123456789012:role/deploy",
		Context:   ctx,
	}
	set := policy.PolicySet{Resource: []*policy.Policy{trust}}
	d, tr := set.Explain(req)
	c := tr.Policies[0].Statements[0].Condition
	fmt.Println(d)
	fmt.Println(c.Operator, c.Key, c.Expected, c.Actual)
	// Output:
	// implicitDeny
	// StringLike token.actions.githubusercontent.com:sub [repo:acme/app:ref:refs/heads/main] [repo:acme/app:pull_request]
}

func ExampleParseOperator() {
	info, _ := policy.ParseOperator("ForAllValues:StringNotLikeIfExists")
	fmt.Printf("%+v\n", info)
	// Output:
	// {Base:StringNotLike Type:String Negated:true IfExists:true Set:ForAllValues Wildcards:true Variables:true}
}

func ExamplePolicy_String() {
	p, _ := policy.Parse(`{"Statement": {"Resource": ["*"], "Effect": "Allow", "Action": ["s3:GetObject"],
	  "Condition": {"NumericLessThan": {"s3:max-keys": 10}}}}`, policy.KindIdentity)
	fmt.Println(p)
	fmt.Println(p.ConditionKeys())
	// Output:
	// {"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"10"}}}]}
	// [s3:max-keys]
}
