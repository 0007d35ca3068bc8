package policy

import (
	"strings"
	"testing"
)

// The conformance table: each case is an evaluation whose expected answer
// is AWS's, with the AWS documentation page and rule it checks. Cases
// marked "keyless:" cover behaviour AWS does not document; the choice is
// explained in cond.go or eval.go.

const (
	docEval       = "Policy evaluation logic"
	docOps        = "IAM JSON policy elements: Condition operators"
	docMulti      = "Conditions with multiple context keys or values"
	docSV         = "Single-valued vs. multivalued context keys"
	docVars       = "IAM policy elements: Variables and tags"
	docAction     = "IAM JSON policy elements: Action"
	docNotAction  = "IAM JSON policy elements: NotAction"
	docResource   = "IAM JSON policy elements: Resource"
	docNotRes     = "IAM JSON policy elements: NotResource"
	docPrincipal  = "AWS JSON policy elements: Principal"
	docNotPrin    = "AWS JSON policy elements: NotPrincipal"
	docVersion    = "IAM JSON policy elements: Version"
	docCondition  = "IAM JSON policy elements: Condition"
	docGrammar    = "Grammar of the IAM JSON policy language"
	docBoundaries = "Permissions boundaries for IAM entities"
	docKeyless    = "keyless (not documented by AWS)"
)

type kv struct {
	k string
	v []string
}

func c(k string, v ...string) kv { return kv{k, v} }

type confCase struct {
	name      string
	doc       string
	id        []string // identity policies
	ses       []string // session policies
	bnd       []string // permissions boundary
	res       []string // resource-based policies
	resKind   Kind     // default KindResource
	principal *Principal
	action    string // default s3:GetObject
	resource  string // default arn:aws:s3:::bucket/key
	ctx       []kv
	want      Decision
}

const (
	v12      = `"Version":"2012-10-17",`
	allowAll = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`
	alice    = "arn:aws:iam::123456789012:user/alice"
	ghOIDC   = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
	roleARN  = "arn:aws:iam::123456789012:role/ci"
	sessARN  = "arn:aws:sts::123456789012:assumed-role/ci/build-1"
)

// allow returns an identity policy with one Allow statement.
func allow(action, resource string) string {
	return `{` + v12 + `"Statement":{"Effect":"Allow","Action":` + action + `,"Resource":` + resource + `}}`
}

// allowIf allows s3:GetObject on every resource when cond holds.
func allowIf(cond string) []string {
	return []string{`{` + v12 + `"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":` + cond + `}}`}
}

// denyIf allows everything and denies s3:GetObject when cond holds.
func denyIf(cond string) []string {
	return []string{allowAll, `{` + v12 + `"Statement":{"Effect":"Deny","Action":"s3:GetObject","Resource":"*","Condition":` + cond + `}}`}
}

// resPol is a resource-based policy with one statement.
func resPol(effect, principal string) string {
	return `{` + v12 + `"Statement":{"Effect":"` + effect + `","Principal":` + principal + `,"Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}}`
}

func ghTrust(cond string) []string {
	return []string{`{` + v12 + `"Statement":[{"Effect":"Allow","Principal":{"Federated":"` + ghOIDC + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":` + cond + `}]}`}
}

func awsP(id string) *Principal { return &Principal{Type: PrincipalAWS, ID: id} }
func sessP() *Principal         { return &Principal{Type: PrincipalAWS, ID: sessARN, ParentARN: roleARN} }
func fedP(id string) *Principal { return &Principal{Type: PrincipalFederated, ID: id} }

func conformanceCases() []confCase {
	const ghSub = "token.actions.githubusercontent.com:sub"
	const ghAud = "token.actions.githubusercontent.com:aud"
	ghCond := `{"StringLike":{"` + ghSub + `":"repo:acme/app:*"},"StringEquals":{"` + ghAud + `":"sts.amazonaws.com"}}`
	return []confCase{
		// --- Evaluation logic -------------------------------------------------
		{name: "no policies", doc: docEval + ": by default, all requests are implicitly denied", want: ImplicitDeny},
		{name: "identity allow", doc: docEval + ": an explicit allow in an identity-based policy overrides the default", id: []string{allow(`"s3:GetObject"`, `"*"`)}, want: Allowed},
		{name: "identity allow other action", doc: docEval + ": identity-based policies are checked for at least one Allow", id: []string{allow(`"s3:PutObject"`, `"*"`)}, want: ImplicitDeny},
		{name: "deny overrides allow in same policy", doc: docEval + ": an explicit deny in any policy overrides any allows", id: []string{`{` + v12 + `"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:GetObject","Resource":"*"}]}`}, want: ExplicitDeny},
		{name: "deny in another identity policy", doc: docEval + ": an explicit deny in any policy overrides any allows", id: []string{allowAll, `{` + v12 + `"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}}`}, want: ExplicitDeny},
		{name: "identity policies are a union", doc: docEval + ": AWS checks all identity-based policies for at least one Allow", id: []string{allow(`"s3:PutObject"`, `"*"`), allow(`"s3:GetObject"`, `"*"`)}, want: Allowed},
		{name: "deny for another action only", doc: docEval + ": a Deny applies only when it matches the request", id: []string{`{` + v12 + `"Statement":{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}}`}, want: ImplicitDeny},
		{name: "deny without any allow", doc: docEval + ": the enforcement code returns Deny when it finds an applicable explicit deny", id: []string{`{` + v12 + `"Statement":{"Effect":"Deny","Action":"s3:GetObject","Resource":"*"}}`}, want: ExplicitDeny},
		{name: "boundary and identity allow", doc: docBoundaries + ": permissions are the intersection of identity-based policies and the boundary", id: []string{allowAll}, bnd: []string{allow(`"s3:*"`, `"*"`)}, want: Allowed},
		{name: "boundary does not allow", doc: docEval + ": if the permissions boundary does not allow the action, the request is implicitly denied", id: []string{allowAll}, bnd: []string{allow(`"ec2:*"`, `"*"`)}, want: ImplicitDeny},
		{name: "boundary allows, identity does not", doc: docBoundaries + ": a boundary does not grant permissions on its own", bnd: []string{allowAll}, want: ImplicitDeny},
		{name: "boundary deny", doc: docEval + ": an explicit deny in a permissions boundary overrides the allow", id: []string{allowAll}, bnd: []string{allowAll, `{` + v12 + `"Statement":{"Effect":"Deny","Action":"s3:GetObject","Resource":"*"}}`}, want: ExplicitDeny},
		{name: "session and identity allow", doc: docEval + ": session permissions are the intersection of identity-based and session policies", principal: sessP(), id: []string{allowAll}, ses: []string{allow(`"s3:GetObject"`, `"*"`)}, want: Allowed},
		{name: "session policy does not allow", doc: docEval + ": a session policy that does not allow the action implicitly denies", principal: sessP(), id: []string{allowAll}, ses: []string{allow(`"s3:PutObject"`, `"*"`)}, want: ImplicitDeny},
		{name: "session policy cannot grant", doc: docEval + ": session policies limit, they cannot grant more than identity-based policies", principal: sessP(), ses: []string{allowAll}, want: ImplicitDeny},
		{name: "session policy deny", doc: docEval + ": an explicit deny in a session policy overrides the allow", principal: sessP(), id: []string{allowAll}, ses: []string{`{` + v12 + `"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}`}, want: ExplicitDeny},
		{name: "identity, boundary and session allow", doc: docEval + ": every present layer allows", principal: sessP(), id: []string{allowAll}, bnd: []string{allowAll}, ses: []string{allowAll}, want: Allowed},
		{name: "all layers allow, boundary also denies", doc: docEval + ": an explicit deny in any of these policies overrides the allow", principal: sessP(), id: []string{allowAll}, bnd: []string{`{` + v12 + `"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}]}`}, ses: []string{allowAll}, want: ExplicitDeny},
		{name: "resource policy names IAM user", doc: docEval + ": a resource-based policy granting the IAM user ARN is not limited by an implicit deny in identity-based policies", principal: awsP(alice), res: []string{resPol("Allow", `{"AWS":"`+alice+`"}`)}, want: Allowed},
		{name: "resource policy names IAM user despite boundary", doc: docEval + ": resource-based policies granting an IAM user ARN are not limited by an implicit deny in a permissions boundary", principal: awsP(alice), res: []string{resPol("Allow", `{"AWS":"`+alice+`"}`)}, bnd: []string{allow(`"ec2:*"`, `"*"`)}, want: Allowed},
		{name: "resource policy names role session", doc: docEval + ": permissions granted directly to a role session are not limited by a session policy", principal: sessP(), res: []string{resPol("Allow", `{"AWS":"`+sessARN+`"}`)}, ses: []string{allow(`"ec2:*"`, `"*"`)}, want: Allowed},
		{name: "resource policy names role, boundary limits", doc: docEval + ": resource-based policies granting an IAM role ARN are limited by an implicit deny in a permissions boundary", principal: sessP(), res: []string{resPol("Allow", `{"AWS":"`+roleARN+`"}`)}, bnd: []string{allow(`"ec2:*"`, `"*"`)}, want: ImplicitDeny},
		{name: "resource policy names role", doc: docEval + ": a resource-based policy granting the role ARN allows its sessions", principal: sessP(), res: []string{resPol("Allow", `{"AWS":"`+roleARN+`"}`)}, want: Allowed},
		{name: "resource policy names role, session policy allows", doc: docEval + ": the session policy allows, so the role grant stands", principal: sessP(), res: []string{resPol("Allow", `{"AWS":"`+roleARN+`"}`)}, ses: []string{allow(`"s3:*"`, `"*"`)}, want: Allowed},
		{name: "resource policy names role, session policy limits", doc: docEval + ": resource-based policies granting an IAM role ARN are limited by an implicit deny in a session policy", principal: sessP(), res: []string{resPol("Allow", `{"AWS":"`+roleARN+`"}`)}, ses: []string{allow(`"ec2:*"`, `"*"`)}, want: ImplicitDeny},
		{name: "resource policy names account only", doc: docPrincipal + ": naming an account delegates authority to the account, whose identities still need identity-based permission", principal: awsP(alice), res: []string{resPol("Allow", `{"AWS":"123456789012"}`)}, want: ImplicitDeny},
		{name: "resource policy names account, identity allows", doc: docPrincipal + ": the account delegates and the identity-based policy grants", principal: awsP(alice), res: []string{resPol("Allow", `{"AWS":"123456789012"}`)}, id: []string{allow(`"s3:GetObject"`, `"*"`)}, want: Allowed},
		{name: "resource policy deny for principal", doc: docEval + ": an explicit deny in a resource-based policy overrides the identity allow", principal: awsP(alice), res: []string{resPol("Deny", `{"AWS":"`+alice+`"}`)}, id: []string{allowAll}, want: ExplicitDeny},
		{name: "resource policy deny for another principal", doc: docEval + ": a Deny applies only to the principals it names", principal: awsP(alice), res: []string{resPol("Deny", `{"AWS":"arn:aws:iam::123456789012:user/bob"}`)}, id: []string{allowAll}, want: Allowed},
		{name: "resource policy names federated user session", doc: docEval + ": permissions granted directly to a federated user session are not limited by implicit denies", principal: awsP("arn:aws:sts::123456789012:federated-user/bob"), res: []string{resPol("Allow", `{"AWS":"arn:aws:sts::123456789012:federated-user/bob"}`)}, bnd: []string{allow(`"ec2:*"`, `"*"`)}, want: Allowed},
		{name: "resource policy allow with failing condition", doc: docEval + ": the statement must match the request context", principal: awsP(alice), res: []string{`{` + v12 + `"Statement":{"Effect":"Allow","Principal":{"AWS":"` + alice + `"},"Action":"s3:GetObject","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}`}, ctx: []kv{c("aws:SecureTransport", "false")}, want: ImplicitDeny},

		// --- Action -------------------------------------------------------------
		{name: "action exact", doc: docAction + ": service prefix followed by the action name", id: []string{allow(`"s3:GetObject"`, `"*"`)}, want: Allowed},
		{name: "action policy case-insensitive", doc: docAction + ": the prefix and the action name are case insensitive", id: []string{allow(`"S3:getobject"`, `"*"`)}, want: Allowed},
		{name: "action request case-insensitive", doc: docAction + ": iam:ListAccessKeys is the same as IAM:listaccesskeys", id: []string{allow(`"s3:GetObject"`, `"*"`)}, action: "S3:GETOBJECT", want: Allowed},
		{name: "action service wildcard", doc: docAction + ": a wildcard (*) gives access to all the actions of a service", id: []string{allow(`"s3:*"`, `"*"`)}, want: Allowed},
		{name: "action all", doc: docAction + ": \"*\" matches every action", id: []string{allow(`"*"`, `"*"`)}, action: "iam:ListUsers", want: Allowed},
		{name: "action prefix wildcard", doc: docAction + ": wildcards (*) as part of the action name", id: []string{allow(`"s3:Get*"`, `"*"`)}, want: Allowed},
		{name: "action prefix wildcard miss", doc: docAction + ": wildcards (*) as part of the action name", id: []string{allow(`"s3:Get*"`, `"*"`)}, action: "s3:PutObject", want: ImplicitDeny},
		{name: "action infix wildcard", doc: docAction + ": iam:*AccessKey* applies to all IAM actions that include AccessKey", id: []string{allow(`"iam:*AccessKey*"`, `"*"`)}, action: "iam:CreateAccessKey", want: Allowed},
		{name: "action question mark", doc: docResource + ": ? matches any single character (same matching as actions)", id: []string{allow(`"s3:GetObjec?"`, `"*"`)}, want: Allowed},
		{name: "action question mark needs one character", doc: docResource + ": ? matches exactly one character", id: []string{allow(`"s3:GetObject?"`, `"*"`)}, want: ImplicitDeny},
		{name: "action other service", doc: docAction + ": the service prefix is part of the match", id: []string{allow(`"s3:GetObject"`, `"*"`)}, action: "s3express:GetObject", want: ImplicitDeny},
		{name: "action service wildcard other service", doc: docAction + ": s3:* covers only the s3 prefix", id: []string{allow(`"s3:*"`, `"*"`)}, action: "s3-object-lambda:GetObject", want: ImplicitDeny},
		{name: "action list is OR", doc: docGrammar + ": an array of action strings", id: []string{allow(`["ec2:*","s3:GetObject"]`, `"*"`)}, want: Allowed},

		// --- NotAction ----------------------------------------------------------
		{name: "Allow NotAction other service", doc: docNotAction + ": NotAction matches everything except the listed actions", id: []string{`{` + v12 + `"Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}}`}, want: Allowed},
		{name: "Allow NotAction excludes", doc: docNotAction + ": the listed actions are not matched", id: []string{`{` + v12 + `"Statement":{"Effect":"Allow","NotAction":"s3:*","Resource":"*"}}`}, want: ImplicitDeny},
		{name: "Deny NotAction denies others", doc: docNotAction + ": NotAction with Deny denies every action not listed", id: []string{allowAll, `{` + v12 + `"Statement":{"Effect":"Deny","NotAction":"s3:*","Resource":"*"}}`}, action: "iam:ListUsers", want: ExplicitDeny},
		{name: "Deny NotAction spares listed", doc: docNotAction + ": the listed actions are not denied", id: []string{allowAll, `{` + v12 + `"Statement":{"Effect":"Deny","NotAction":"s3:*","Resource":"*"}}`}, want: Allowed},
		{name: "NotAction list", doc: docNotAction + ": a list of actions that should not match", id: []string{`{` + v12 + `"Statement":{"Effect":"Allow","NotAction":["s3:Get*","s3:List*"],"Resource":"*"}}`}, action: "s3:ListBucket", want: ImplicitDeny},
		{name: "NotAction case-insensitive", doc: docAction + ": action names are case insensitive (NotAction too)", id: []string{`{` + v12 + `"Statement":{"Effect":"Allow","NotAction":"S3:GETOBJECT","Resource":"*"}}`}, want: ImplicitDeny},

		// --- Resource -----------------------------------------------------------
		{name: "resource exact", doc: docResource + ": the resource ARN", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::bucket/key"`)}, want: Allowed},
		{name: "resource star", doc: docResource + ": * for all resources", id: []string{allow(`"s3:GetObject"`, `"*"`)}, resource: "arn:aws:s3:::other/x", want: Allowed},
		{name: "resource wildcard crosses slash", doc: docResource + ": * can replace everything within a segment, including /", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::bucket/*"`)}, resource: "arn:aws:s3:::bucket/a/b/c", want: Allowed},
		{name: "resource other bucket", doc: docResource + ": the ARN must match", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::bucket/*"`)}, resource: "arn:aws:s3:::bucket2/key", want: ImplicitDeny},
		{name: "resource region segment wildcard", doc: docResource + ": wildcards within ARN segments", id: []string{allow(`"sqs:SendMessage"`, `"arn:aws:sqs:*:123456789012:q"`)}, action: "sqs:SendMessage", resource: "arn:aws:sqs:us-east-1:123456789012:q", want: Allowed},
		{name: "resource segment wildcard does not cross colon", doc: docResource + ": wildcards match within ARN segments (the parts separated by colons)", id: []string{allow(`"logs:GetLogEvents"`, `"arn:aws:logs:*:123456789012:log-group:app"`)}, action: "logs:GetLogEvents", resource: "arn:aws:logs:us-east-1:999999999999:log-group:app:123456789012:log-group:app", want: ImplicitDeny},
		{name: "resource part wildcard crosses colon", doc: docResource + ": the resource part after the fifth colon is one segment", id: []string{allow(`"logs:GetLogEvents"`, `"arn:aws:logs:us-east-1:123456789012:log-group:*"`)}, action: "logs:GetLogEvents", resource: "arn:aws:logs:us-east-1:123456789012:log-group:app:log-stream:x", want: Allowed},
		{name: "resource question mark in account", doc: docResource + ": ? represents any single character", id: []string{allow(`"sqs:SendMessage"`, `"arn:aws:sqs:us-east-1:12345678901?:q"`)}, action: "sqs:SendMessage", resource: "arn:aws:sqs:us-east-1:123456789012:q", want: Allowed},
		{name: "resource case-sensitive", doc: docResource + ": ARNs are matched case-sensitively", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::Bucket/*"`)}, want: ImplicitDeny},
		{name: "resource list is OR", doc: docGrammar + ": an array of resource strings", id: []string{allow(`"s3:GetObject"`, `["arn:aws:s3:::x/*","arn:aws:s3:::bucket/*"]`)}, want: Allowed},
		{name: "resource wildcard matches empty region", doc: docResource + ": * matches any combination of characters, including none", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:*:*:bucket/key"`)}, want: Allowed},
		{name: "resource IAM path wildcard", doc: docResource + ": wildcards in the resource part", id: []string{allow(`"iam:GetUser"`, `"arn:aws:iam::123456789012:user/*"`)}, action: "iam:GetUser", resource: "arn:aws:iam::123456789012:user/division/alice", want: Allowed},
		{name: "trust policy applies to the role", doc: docGrammar + ": trust policies have no Resource element; the statement applies to the role", principal: fedP(ghOIDC), res: ghTrust(`{}`), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, want: Allowed},

		// --- NotResource --------------------------------------------------------
		{name: "Allow NotResource other", doc: docNotRes + ": NotResource matches every resource except those listed", id: []string{`{` + v12 + `"Statement":{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::secret/*"}}`}, want: Allowed},
		{name: "Allow NotResource listed", doc: docNotRes + ": the listed resources are not matched", id: []string{`{` + v12 + `"Statement":{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::bucket/*"}}`}, want: ImplicitDeny},
		{name: "Deny NotResource denies others", doc: docNotRes + ": users are denied access to resources not listed", id: []string{allowAll, `{` + v12 + `"Statement":{"Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::safe/*"}}`}, want: ExplicitDeny},
		{name: "Deny NotResource spares listed", doc: docNotRes + ": the listed resources are the only ones not limited", id: []string{allowAll, `{` + v12 + `"Statement":{"Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::safe/*"}}`}, resource: "arn:aws:s3:::safe/x", want: Allowed},

		// --- Principal ----------------------------------------------------------
		{name: "federated OIDC provider", doc: docPrincipal + ": web identity session principals: the Federated provider", principal: fedP(ghOIDC), res: ghTrust(`{}`), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, want: Allowed},
		{name: "federated other provider", doc: docPrincipal + ": only the named provider matches", principal: fedP("arn:aws:iam::123456789012:oidc-provider/gitlab.com"), res: ghTrust(`{}`), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, want: ImplicitDeny},
		{name: "service principal", doc: docPrincipal + ": AWS service principals", principal: &Principal{Type: PrincipalService, ID: "ec2.amazonaws.com"}, res: []string{`{` + v12 + `"Statement":{"Effect":"Allow","Principal":{"Service":["ecs.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}}`}, resKind: KindTrust, action: "sts:AssumeRole", resource: roleARN, want: Allowed},
		{name: "service principal mismatch", doc: docPrincipal + ": only the named services match", principal: &Principal{Type: PrincipalService, ID: "lambda.amazonaws.com"}, res: []string{`{` + v12 + `"Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}`}, resKind: KindTrust, action: "sts:AssumeRole", resource: roleARN, want: ImplicitDeny},
		{name: "principal star allows anonymous", doc: docPrincipal + ": * with Allow grants access to all users, including anonymous users", principal: &Principal{Type: PrincipalAnonymous}, res: []string{resPol("Allow", `"*"`)}, want: Allowed},
		{name: "AWS star allows IAM user", doc: docPrincipal + ": {\"AWS\":\"*\"} is all principals", principal: awsP(alice), res: []string{resPol("Allow", `{"AWS":"*"}`)}, want: Allowed},
		{name: "AWS star allows anonymous", doc: docPrincipal + ": for anonymous users \"*\" and {\"AWS\":\"*\"} are equivalent", principal: &Principal{Type: PrincipalAnonymous}, res: []string{resPol("Allow", `{"AWS":"*"}`)}, want: Allowed},
		{name: "AWS star does not admit web identity", doc: docKeyless + ": {\"AWS\":\"*\"} names AWS principals; a web identity needs its Federated provider", principal: fedP(ghOIDC), res: []string{`{` + v12 + `"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRoleWithWebIdentity"}}`}, resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, want: ImplicitDeny},
		{name: "account id principal with identity allow", doc: docPrincipal + ": the shortened account ID and the account ARN behave the same way", principal: awsP(alice), res: []string{resPol("Allow", `{"AWS":"arn:aws:iam::123456789012:root"}`)}, id: []string{allow(`"s3:GetObject"`, `"*"`)}, want: Allowed},
		{name: "account principal deny applies to its users", doc: docPrincipal + ": using the account ARN does not limit the statement to the root user", principal: awsP(alice), res: []string{resPol("Deny", `{"AWS":"123456789012"}`)}, id: []string{allowAll}, want: ExplicitDeny},
		{name: "IAM user principal", doc: docPrincipal + ": IAM user principals", principal: awsP(alice), res: []string{resPol("Allow", `{"AWS":"`+alice+`"}`)}, want: Allowed},
		{name: "IAM user principal other user", doc: docPrincipal + ": the user name part of the ARN must match", principal: awsP("arn:aws:iam::123456789012:user/bob"), res: []string{resPol("Allow", `{"AWS":"`+alice+`"}`)}, want: ImplicitDeny},
		{name: "IAM user principal case-sensitive", doc: docPrincipal + ": in a Principal element, the user name part of the ARN is case sensitive", principal: awsP("arn:aws:iam::123456789012:user/Alice"), res: []string{resPol("Allow", `{"AWS":"`+alice+`"}`)}, want: ImplicitDeny},
		{name: "principal list is OR", doc: docPrincipal + ": more than one principal is a logical OR", principal: awsP("arn:aws:iam::123456789012:user/bob"), res: []string{resPol("Allow", `{"AWS":["`+alice+`","arn:aws:iam::123456789012:user/bob"]}`)}, want: Allowed},

		// --- NotPrincipal -------------------------------------------------------
		{name: "Deny NotPrincipal spares listed", doc: docNotPrin + ": NotPrincipal with Deny denies all principals except the ones named", principal: awsP(alice), res: []string{resPol("Allow", `"*"`), `{` + v12 + `"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["` + alice + `","arn:aws:iam::123456789012:root"]},"Action":"s3:*","Resource":"*"}}`}, want: Allowed},
		{name: "Deny NotPrincipal denies others", doc: docNotPrin + ": all principals except the ones specified are explicitly denied", principal: awsP("arn:aws:iam::444455556666:user/mallory"), res: []string{resPol("Allow", `"*"`), `{` + v12 + `"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["` + alice + `","arn:aws:iam::123456789012:root"]},"Action":"s3:*","Resource":"*"}}`}, want: ExplicitDeny},
		{name: "Deny NotPrincipal account spares its users", doc: docNotPrin + ": include the account ARN of the not-denied principal", principal: awsP("arn:aws:iam::123456789012:user/bob"), res: []string{resPol("Allow", `"*"`), `{` + v12 + `"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:*","Resource":"*"}}`}, want: Allowed},

		// --- String operators ---------------------------------------------------
		{name: "StringEquals match", doc: docOps + ": StringEquals exact matching, case sensitive", id: allowIf(`{"StringEquals":{"aws:PrincipalTag/team":"blue"}}`), ctx: []kv{c("aws:PrincipalTag/team", "blue")}, want: Allowed},
		{name: "StringEquals case-sensitive", doc: docOps + ": StringEquals is case sensitive", id: allowIf(`{"StringEquals":{"aws:PrincipalTag/team":"blue"}}`), ctx: []kv{c("aws:PrincipalTag/team", "Blue")}, want: ImplicitDeny},
		{name: "StringEquals wildcard is literal", doc: docOps + ": only StringLike interprets wildcards (\"You must specify wildcards to achieve partial string matches\")", id: allowIf(`{"StringEquals":{"s3:prefix":"home/*"}}`), ctx: []kv{c("s3:prefix", "home/alice")}, want: ImplicitDeny},
		{name: "StringEquals literal star", doc: docOps + ": StringEquals compares the text exactly", id: allowIf(`{"StringEquals":{"s3:prefix":"home/*"}}`), ctx: []kv{c("s3:prefix", "home/*")}, want: Allowed},
		{name: "StringNotEquals different", doc: docOps + ": StringNotEquals negated matching", id: allowIf(`{"StringNotEquals":{"aws:PrincipalTag/team":"red"}}`), ctx: []kv{c("aws:PrincipalTag/team", "blue")}, want: Allowed},
		{name: "StringNotEquals same", doc: docOps + ": StringNotEquals negated matching", id: allowIf(`{"StringNotEquals":{"aws:PrincipalTag/team":"blue"}}`), ctx: []kv{c("aws:PrincipalTag/team", "blue")}, want: ImplicitDeny},
		{name: "StringEqualsIgnoreCase", doc: docCondition + ": StringEqualsIgnoreCase matches johndoe or JohnDoe", id: allowIf(`{"StringEqualsIgnoreCase":{"aws:username":"johndoe"}}`), ctx: []kv{c("aws:username", "JohnDoe")}, want: Allowed},
		{name: "StringNotEqualsIgnoreCase same ignoring case", doc: docOps + ": StringNotEqualsIgnoreCase negated matching, ignoring case", id: allowIf(`{"StringNotEqualsIgnoreCase":{"aws:username":"johndoe"}}`), ctx: []kv{c("aws:username", "JOHNDOE")}, want: ImplicitDeny},
		{name: "StringNotEqualsIgnoreCase different", doc: docOps + ": StringNotEqualsIgnoreCase negated matching, ignoring case", id: allowIf(`{"StringNotEqualsIgnoreCase":{"aws:username":"johndoe"}}`), ctx: []kv{c("aws:username", "janedoe")}, want: Allowed},
		{name: "StringLike prefix", doc: docOps + ": StringLike multi-character match wildcard (*)", id: allowIf(`{"StringLike":{"s3:prefix":"home/*"}}`), ctx: []kv{c("s3:prefix", "home/alice/x")}, want: Allowed},
		{name: "StringLike star crosses slash and colon", doc: docOps + ": StringLike * matches any sequence (the ArnLike section: the first asterisk matches us-east-2:999999999999:store/abc:)", id: allowIf(`{"StringLike":{"k:sub":"repo:acme/*"}}`), ctx: []kv{c("k:sub", "repo:acme/app:ref:refs/heads/main")}, want: Allowed},
		{name: "StringLike question mark", doc: docOps + ": StringLike single-character match wildcard (?)", id: allowIf(`{"StringLike":{"k":"v?"}}`), ctx: []kv{c("k", "v1")}, want: Allowed},
		{name: "StringLike question mark is one character", doc: docOps + ": ? matches a single character", id: allowIf(`{"StringLike":{"k":"v?"}}`), ctx: []kv{c("k", "v10")}, want: ImplicitDeny},
		{name: "StringLike case-sensitive", doc: docOps + ": StringLike is case-sensitive matching", id: allowIf(`{"StringLike":{"k":"Repo:*"}}`), ctx: []kv{c("k", "repo:x")}, want: ImplicitDeny},
		{name: "StringNotLike matching", doc: docOps + ": StringNotLike negated case-sensitive matching", id: allowIf(`{"StringNotLike":{"k":"repo:*"}}`), ctx: []kv{c("k", "repo:x")}, want: ImplicitDeny},
		{name: "StringNotLike not matching", doc: docOps + ": StringNotLike negated case-sensitive matching", id: allowIf(`{"StringNotLike":{"k":"repo:*"}}`), ctx: []kv{c("k", "org:x")}, want: Allowed},
		{name: "StringLike values are OR", doc: docMulti + ": multiple values for one key are evaluated with a logical OR", id: allowIf(`{"StringLike":{"k":["a*","b*"]}}`), ctx: []kv{c("k", "bx")}, want: Allowed},
		{name: "StringLike star matches empty value", doc: docOps + ": * matches any sequence, including none", id: allowIf(`{"StringLike":{"k":"*"}}`), ctx: []kv{c("k", "")}, want: Allowed},

		// --- Missing keys -------------------------------------------------------
		{name: "missing key positive", doc: docOps + ": if the key is not present in the request context, the condition is false", id: allowIf(`{"StringEquals":{"k":"v"}}`), want: ImplicitDeny},
		{name: "missing key StringNotEquals", doc: docOps + ": a negated operator with the key not present is true", id: allowIf(`{"StringNotEquals":{"k":"v"}}`), want: Allowed},
		{name: "missing key StringNotLike", doc: docOps + ": StringNotLike with the key not present is true", id: allowIf(`{"StringNotLike":{"k":"v*"}}`), want: Allowed},
		{name: "missing key ArnNotLike", doc: docOps + ": ArnNotLike with the key not present is true", id: allowIf(`{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:*:t"}}`), want: Allowed},
		{name: "missing key NumericLessThan", doc: docOps + ": the logic applies to all operators except IfExists and Null", id: allowIf(`{"NumericLessThan":{"s3:max-keys":"10"}}`), want: ImplicitDeny},
		{name: "missing key NotIpAddress", doc: docOps + ": NotIpAddress is negated: true when the key is not present", id: allowIf(`{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), want: Allowed},
		{name: "Deny negated operator missing key", doc: docOps + ": a negated operator is true for a missing key, so the Deny applies", id: denyIf(`{"StringNotEquals":{"aws:PrincipalTag/team":"blue"}}`), want: ExplicitDeny},
		{name: "Deny positive operator missing key", doc: docOps + ": a positive operator is false for a missing key, so the Deny does not apply", id: denyIf(`{"StringEquals":{"aws:PrincipalTag/team":"red"}}`), want: Allowed},

		// --- IfExists -----------------------------------------------------------
		{name: "IfExists missing", doc: docOps + ": if the key is not present, evaluate the condition element as true", id: allowIf(`{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*"]}}`), want: Allowed},
		{name: "IfExists present mismatch", doc: docOps + ": if the key is present, process it as specified", id: allowIf(`{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*"]}}`), ctx: []kv{c("ec2:InstanceType", "m5.large")}, want: ImplicitDeny},
		{name: "IfExists present match", doc: docOps + ": if the key is present, process it as specified", id: allowIf(`{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*"]}}`), ctx: []kv{c("ec2:InstanceType", "t2.micro")}, want: Allowed},
		{name: "NumericIfExists missing", doc: docOps + ": IfExists can be added to any operator except Null", id: allowIf(`{"NumericLessThanIfExists":{"s3:max-keys":"10"}}`), want: Allowed},
		{name: "Deny StringNotEqualsIfExists missing", doc: docOps + ": with Deny and StringNotEqualsIfExists the request is still denied even if the tag is missing", id: denyIf(`{"StringNotEqualsIfExists":{"aws:ResourceTag/env":"dev"}}`), want: ExplicitDeny},
		{name: "BoolIfExists missing", doc: docOps + ": IfExists can be added to any operator except Null", id: allowIf(`{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}`), want: Allowed},

		// --- Null ---------------------------------------------------------------
		{name: "Null true key missing", doc: docOps + ": Null true means the key does not exist", id: allowIf(`{"Null":{"aws:TokenIssueTime":"true"}}`), want: Allowed},
		{name: "Null true key present", doc: docOps + ": Null true means the key does not exist", id: allowIf(`{"Null":{"aws:TokenIssueTime":"true"}}`), ctx: []kv{c("aws:TokenIssueTime", "2024-01-01T00:00:00Z")}, want: ImplicitDeny},
		{name: "Null false key present", doc: docOps + ": Null false means the key exists and its value is not null", id: allowIf(`{"Null":{"aws:TokenIssueTime":"false"}}`), ctx: []kv{c("aws:TokenIssueTime", "2024-01-01T00:00:00Z")}, want: Allowed},
		{name: "Null false key missing", doc: docOps + ": Null false means the key exists", id: allowIf(`{"Null":{"aws:TokenIssueTime":"false"}}`), want: ImplicitDeny},
		{name: "Null both values", doc: docMulti + ": values for one key are ORed", id: allowIf(`{"Null":{"k":["true","false"]}}`), ctx: []kv{c("k", "x")}, want: Allowed},

		// --- Multiple keys, operators and values ---------------------------------
		{name: "two keys both match", doc: docMulti + ": multiple keys in one operator are ANDed", id: allowIf(`{"StringEquals":{"a":"1","b":"2"}}`), ctx: []kv{c("a", "1"), c("b", "2")}, want: Allowed},
		{name: "two keys one fails", doc: docMulti + ": multiple keys in one operator are ANDed", id: allowIf(`{"StringEquals":{"a":"1","b":"2"}}`), ctx: []kv{c("a", "1"), c("b", "3")}, want: ImplicitDeny},
		{name: "two operators both pass", doc: docMulti + ": multiple condition operators are ANDed", id: allowIf(`{"StringEquals":{"a":"1"},"StringLike":{"b":"x*"}}`), ctx: []kv{c("a", "1"), c("b", "xy")}, want: Allowed},
		{name: "two operators one fails", doc: docMulti + ": multiple condition operators are ANDed", id: allowIf(`{"StringEquals":{"a":"1"},"StringLike":{"b":"x*"}}`), ctx: []kv{c("a", "1"), c("b", "yy")}, want: ImplicitDeny},
		{name: "values are OR", doc: docMulti + ": multiple values for one key are a logical OR", id: allowIf(`{"StringEquals":{"a":["x","y"]}}`), ctx: []kv{c("a", "y")}, want: Allowed},
		{name: "negated values are NOR (one matches)", doc: docMulti + ": a negated operator's values are evaluated with a logical NOR", id: allowIf(`{"StringNotEquals":{"a":["x","y"]}}`), ctx: []kv{c("a", "y")}, want: ImplicitDeny},
		{name: "negated values are NOR (none matches)", doc: docMulti + ": a negated operator's values are evaluated with a logical NOR", id: allowIf(`{"StringNotEquals":{"a":["x","y"]}}`), ctx: []kv{c("a", "z")}, want: Allowed},
		{name: "empty value list matches nothing", doc: docMulti + ": an OR over no values is false", id: allowIf(`{"StringEquals":{"a":[]}}`), ctx: []kv{c("a", "x")}, want: ImplicitDeny},
		{name: "empty condition block", doc: docKeyless + ": a Condition with no operators has nothing to fail", id: allowIf(`{}`), want: Allowed},
		{name: "key names case-insensitive", doc: docCondition + ": condition key names are not case-sensitive", id: allowIf(`{"StringEquals":{"aws:PrincipalTag/Team":"blue"}}`), ctx: []kv{c("AWS:principaltag/team", "blue")}, want: Allowed},

		// --- Numeric ------------------------------------------------------------
		{name: "NumericEquals", doc: docOps + ": NumericEquals matching", id: allowIf(`{"NumericEquals":{"n":"10"}}`), ctx: []kv{c("n", "10")}, want: Allowed},
		{name: "NumericEquals decimal", doc: docOps + ": numeric operators compare integer or decimal values", id: allowIf(`{"NumericEquals":{"n":"10"}}`), ctx: []kv{c("n", "10.0")}, want: Allowed},
		{name: "NumericNotEquals", doc: docOps + ": NumericNotEquals negated matching", id: allowIf(`{"NumericNotEquals":{"n":"10"}}`), ctx: []kv{c("n", "11")}, want: Allowed},
		{name: "NumericLessThan less", doc: docOps + ": NumericLessThan \"less than\" matching", id: allowIf(`{"NumericLessThan":{"n":"10"}}`), ctx: []kv{c("n", "9")}, want: Allowed},
		{name: "NumericLessThan equal", doc: docOps + ": NumericLessThan is strict", id: allowIf(`{"NumericLessThan":{"n":"10"}}`), ctx: []kv{c("n", "10")}, want: ImplicitDeny},
		{name: "NumericLessThanEquals equal", doc: docOps + ": NumericLessThanEquals matching", id: allowIf(`{"NumericLessThanEquals":{"s3:max-keys":"10"}}`), ctx: []kv{c("s3:max-keys", "10")}, want: Allowed},
		{name: "NumericGreaterThan", doc: docOps + ": NumericGreaterThan matching", id: allowIf(`{"NumericGreaterThan":{"n":"10"}}`), ctx: []kv{c("n", "11")}, want: Allowed},
		{name: "NumericGreaterThanEquals below", doc: docOps + ": NumericGreaterThanEquals matching", id: allowIf(`{"NumericGreaterThanEquals":{"n":"10"}}`), ctx: []kv{c("n", "9")}, want: ImplicitDeny},
		{name: "Numeric non-numeric request value", doc: docKeyless + ": a request value that is not a number matches no policy value", id: allowIf(`{"NumericEquals":{"n":"10"}}`), ctx: []kv{c("n", "ten")}, want: ImplicitDeny},
		{name: "Numeric large integers exact", doc: docOps + ": numeric comparison of integer values (exact, no float rounding)", id: allowIf(`{"NumericEquals":{"n":"123456789012345678"}}`), ctx: []kv{c("n", "123456789012345679")}, want: ImplicitDeny},
		{name: "Numeric negative", doc: docOps + ": numeric comparison", id: allowIf(`{"NumericLessThan":{"n":"0"}}`), ctx: []kv{c("n", "-5")}, want: Allowed},
		{name: "Numeric JSON number value", doc: docGrammar + ": quotation marks are optional for numeric values", id: allowIf(`{"NumericEquals":{"n":10}}`), ctx: []kv{c("n", "10")}, want: Allowed},

		// --- Date ---------------------------------------------------------------
		{name: "DateLessThan", doc: docOps + ": DateLessThan matching before a date", id: allowIf(`{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`), ctx: []kv{c("aws:CurrentTime", "2024-06-01T12:00:00Z")}, want: Allowed},
		{name: "DateGreaterThan past", doc: docOps + ": DateGreaterThan matching after a date", id: allowIf(`{"DateGreaterThan":{"aws:TokenIssueTime":"2020-01-01T00:00:01Z"}}`), ctx: []kv{c("aws:TokenIssueTime", "2019-12-31T23:59:59Z")}, want: ImplicitDeny},
		{name: "Date epoch policy value", doc: docOps + ": date values in ISO 8601 or epoch (UNIX) time", id: allowIf(`{"DateLessThan":{"aws:CurrentTime":"1893456000"}}`), ctx: []kv{c("aws:CurrentTime", "2024-06-01T00:00:00Z")}, want: Allowed},
		{name: "Date epoch request value", doc: docOps + ": epoch time compares with ISO 8601", id: allowIf(`{"DateGreaterThanEquals":{"aws:EpochTime":"2024-01-01T00:00:00Z"}}`), ctx: []kv{c("aws:EpochTime", "1704067200")}, want: Allowed},
		{name: "Date zone offset", doc: docOps + ": W3C ISO 8601 with a time zone designator", id: allowIf(`{"DateEquals":{"aws:CurrentTime":"2024-01-01T01:00:00+01:00"}}`), ctx: []kv{c("aws:CurrentTime", "2024-01-01T00:00:00Z")}, want: Allowed},
		{name: "DateNotEquals", doc: docOps + ": DateNotEquals negated matching", id: allowIf(`{"DateNotEquals":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}}`), ctx: []kv{c("aws:CurrentTime", "2024-01-01T00:00:00Z")}, want: ImplicitDeny},
		{name: "Date date-only value", doc: docOps + ": W3C ISO 8601 date (YYYY-MM-DD)", id: allowIf(`{"DateGreaterThanEquals":{"aws:CurrentTime":"2024-01-01"}}`), ctx: []kv{c("aws:CurrentTime", "2024-01-01T00:00:00Z")}, want: Allowed},
		{name: "DateLessThanEquals equal", doc: docOps + ": DateLessThanEquals matching at or before", id: allowIf(`{"DateLessThanEquals":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}}`), ctx: []kv{c("aws:CurrentTime", "2024-01-01T00:00:00.000Z")}, want: Allowed},
		{name: "Date invalid request value", doc: docKeyless + ": a request value that is not a date matches no policy value", id: allowIf(`{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`), ctx: []kv{c("aws:CurrentTime", "yesterday")}, want: ImplicitDeny},

		// --- Bool ---------------------------------------------------------------
		{name: "Bool true", doc: docOps + ": Bool boolean matching", id: allowIf(`{"Bool":{"aws:SecureTransport":"true"}}`), ctx: []kv{c("aws:SecureTransport", "true")}, want: Allowed},
		{name: "Bool mismatch", doc: docOps + ": Bool boolean matching", id: allowIf(`{"Bool":{"aws:SecureTransport":"true"}}`), ctx: []kv{c("aws:SecureTransport", "false")}, want: ImplicitDeny},
		{name: "Bool JSON boolean", doc: docGrammar + ": quotation marks are optional for Boolean values", id: allowIf(`{"Bool":{"aws:MultiFactorAuthPresent":true}}`), ctx: []kv{c("aws:MultiFactorAuthPresent", "true")}, want: Allowed},
		{name: "Deny Bool SecureTransport false", doc: docOps + ": deny S3 actions if the request is not over SSL", id: denyIf(`{"Bool":{"aws:SecureTransport":"false"}}`), ctx: []kv{c("aws:SecureTransport", "false")}, want: ExplicitDeny},

		// --- Binary -------------------------------------------------------------
		{name: "BinaryEquals", doc: docOps + ": BinaryEquals compares byte for byte against the base-64 policy value", id: allowIf(`{"BinaryEquals":{"k":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}`), ctx: []kv{c("k", "QmluYXJ5VmFsdWVJbkJhc2U2NA==")}, want: Allowed},
		{name: "BinaryEquals mismatch", doc: docOps + ": BinaryEquals byte for byte", id: allowIf(`{"BinaryEquals":{"k":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}`), ctx: []kv{c("k", "b3RoZXI=")}, want: ImplicitDeny},

		// --- IP address ---------------------------------------------------------
		{name: "IpAddress in range", doc: docOps + ": IpAddress with CIDR 203.0.113.0/24", id: allowIf(`{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), ctx: []kv{c("aws:SourceIp", "203.0.113.7")}, want: Allowed},
		{name: "IpAddress out of range", doc: docOps + ": IpAddress with CIDR", id: allowIf(`{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), ctx: []kv{c("aws:SourceIp", "198.51.100.7")}, want: ImplicitDeny},
		{name: "IpAddress default /32", doc: docOps + ": an IP address without a prefix uses /32", id: allowIf(`{"IpAddress":{"aws:SourceIp":"203.0.113.7"}}`), ctx: []kv{c("aws:SourceIp", "203.0.113.7")}, want: Allowed},
		{name: "IpAddress /32 excludes neighbour", doc: docOps + ": an IP address without a prefix uses /32", id: allowIf(`{"IpAddress":{"aws:SourceIp":"203.0.113.7"}}`), ctx: []kv{c("aws:SourceIp", "203.0.113.8")}, want: ImplicitDeny},
		{name: "IpAddress IPv6", doc: docOps + ": IPv6 CIDR 2001:DB8:1234:5678::/64", id: allowIf(`{"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}}`), ctx: []kv{c("aws:SourceIp", "2001:db8:1234:5678::42")}, want: Allowed},
		{name: "IpAddress IPv4 against IPv6 range", doc: docOps + ": address families are distinct", id: allowIf(`{"IpAddress":{"aws:SourceIp":"2001:DB8::/32"}}`), ctx: []kv{c("aws:SourceIp", "203.0.113.7")}, want: ImplicitDeny},
		{name: "NotIpAddress outside", doc: docOps + ": NotIpAddress all addresses except the range", id: allowIf(`{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), ctx: []kv{c("aws:SourceIp", "198.51.100.7")}, want: Allowed},
		{name: "NotIpAddress inside", doc: docOps + ": NotIpAddress all addresses except the range", id: allowIf(`{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), ctx: []kv{c("aws:SourceIp", "203.0.113.9")}, want: ImplicitDeny},
		{name: "IpAddress mixed IPv4 and IPv6", doc: docOps + ": mix IPv4 and IPv6 ranges", id: allowIf(`{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:DB8:1234:5678::/64"]}}`), ctx: []kv{c("aws:SourceIp", "2001:db8:1234:5678::1")}, want: Allowed},

		// --- ARN operators ------------------------------------------------------
		{name: "ArnLike", doc: docOps + ": ArnLike: each of the six colon-delimited parts is checked separately", id: allowIf(`{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:123456789012:topic-*"}}`), ctx: []kv{c("aws:SourceArn", "arn:aws:sns:us-east-1:123456789012:topic-a")}, want: Allowed},
		{name: "ArnEquals behaves like ArnLike", doc: docOps + ": ArnEquals and ArnLike behave identically", id: allowIf(`{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:*:123456789012:topic-*"}}`), ctx: []kv{c("aws:SourceArn", "arn:aws:sns:us-east-1:123456789012:topic-a")}, want: Allowed},
		{name: "ArnLike does not cross colons", doc: docOps + ": with ArnLike the first asterisk matches only us-east-2 and fails", id: allowIf(`{"ArnLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}}`), ctx: []kv{c("aws:SourceArn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt")}, want: ImplicitDeny},
		{name: "StringLike crosses colons", doc: docOps + ": with a StringLike condition the same match succeeds", id: allowIf(`{"StringLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}}`), ctx: []kv{c("aws:SourceArn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt")}, want: Allowed},
		{name: "ArnNotLike matching", doc: docOps + ": ArnNotLike negated matching", id: allowIf(`{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:*:t"}}`), ctx: []kv{c("aws:SourceArn", "arn:aws:sns:us-east-1:123456789012:t")}, want: ImplicitDeny},
		{name: "ArnNotEquals not matching", doc: docOps + ": ArnNotEquals negated matching", id: allowIf(`{"ArnNotEquals":{"aws:SourceArn":"arn:aws:sns:*:*:t"}}`), ctx: []kv{c("aws:SourceArn", "arn:aws:sns:us-east-1:123456789012:u")}, want: Allowed},
		{name: "ArnLike non-ARN value", doc: docOps + ": ARN operators match the six parts of an ARN", id: allowIf(`{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}`), ctx: []kv{c("aws:SourceArn", "not-an-arn")}, want: ImplicitDeny},

		// --- Set operators ------------------------------------------------------
		{name: "ForAnyValue one matches", doc: docMulti + ": ForAnyValue is true if any request value matches any policy value", id: allowIf(`{"ForAnyValue:StringEquals":{"aws:TagKeys":["DataClass","Owner"]}}`), ctx: []kv{c("aws:TagKeys", "DataClass", "Dept")}, want: Allowed},
		{name: "ForAnyValue none matches", doc: docMulti + ": ForAnyValue is false when nothing matches", id: allowIf(`{"ForAnyValue:StringEquals":{"aws:TagKeys":["DataClass","Owner"]}}`), ctx: []kv{c("aws:TagKeys", "Dept", "SIC")}, want: ImplicitDeny},
		{name: "ForAnyValue missing key", doc: docMulti + ": ForAnyValue returns false for no matching key", id: allowIf(`{"ForAnyValue:StringEquals":{"aws:TagKeys":"Owner"}}`), want: ImplicitDeny},
		{name: "ForAnyValue empty set", doc: docMulti + ": for an empty data set ForAnyValue returns false", id: allowIf(`{"ForAnyValue:StringEquals":{"aws:TagKeys":"Owner"}}`), ctx: []kv{c("aws:TagKeys")}, want: ImplicitDeny},
		{name: "ForAllValues all match", doc: docMulti + ": ForAllValues is true if every request value matches a policy value", id: allowIf(`{"ForAllValues:StringEquals":{"dynamodb:Attributes":["ID","Message","Tags"]}}`), ctx: []kv{c("dynamodb:Attributes", "Message", "Tags")}, want: Allowed},
		{name: "ForAllValues one unmatched", doc: docMulti + ": UserName is not within the list, so the request fails", id: allowIf(`{"ForAllValues:StringEquals":{"dynamodb:Attributes":["PostDateTime","Message","Tags"]}}`), ctx: []kv{c("dynamodb:Attributes", "PostDateTime", "UserName")}, want: ImplicitDeny},
		{name: "ForAllValues missing key", doc: docMulti + ": ForAllValues returns true if there are no keys in the request", id: allowIf(`{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}`), want: Allowed},
		{name: "ForAllValues empty set", doc: docMulti + ": for an empty data set ForAllValues returns true", id: allowIf(`{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}`), ctx: []kv{c("aws:TagKeys")}, want: Allowed},
		{name: "ForAllValues empty string", doc: docMulti + ": ForAllValues is true if the key values resolve to a null data set, such as an empty string", id: allowIf(`{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}`), ctx: []kv{c("aws:TagKeys", "")}, want: Allowed},
		{name: "ForAnyValue StringNotEquals", doc: docMulti + ": ForAnyValue with a negated operator: some request value matches none of the policy values", id: allowIf(`{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a","b"]}}`), ctx: []kv{c("aws:TagKeys", "a", "z")}, want: Allowed},
		{name: "ForAllValues StringNotEquals none listed", doc: docMulti + ": ForAllValues with a negated operator: every value matches none of the policy values", id: allowIf(`{"ForAllValues:StringNotEquals":{"aws:TagKeys":["a","b"]}}`), ctx: []kv{c("aws:TagKeys", "x", "y")}, want: Allowed},
		{name: "ForAllValues StringNotEquals one listed", doc: docMulti + ": ForAllValues with a negated operator: a listed value fails it", id: allowIf(`{"ForAllValues:StringNotEquals":{"aws:TagKeys":["a","b"]}}`), ctx: []kv{c("aws:TagKeys", "x", "b")}, want: ImplicitDeny},
		{name: "ForAnyValue StringLike", doc: docMulti + ": set operators qualify StringLike", id: allowIf(`{"ForAnyValue:StringLike":{"aws:TagKeys":"key1*"}}`), ctx: []kv{c("aws:TagKeys", "other", "key1-a")}, want: Allowed},
		{name: "Deny ForAnyValue matching", doc: docMulti + ": PostDateTime matches, the condition is true and the request is denied", id: denyIf(`{"ForAnyValue:StringEquals":{"dynamodb:Attributes":["ID","PostDateTime"]}}`), ctx: []kv{c("dynamodb:Attributes", "UserName", "Message", "PostDateTime")}, want: ExplicitDeny},
		{name: "Deny ForAnyValue not matching", doc: docMulti + ": UserName matches none of the attributes, the Deny does not apply", id: denyIf(`{"ForAnyValue:StringEquals":{"dynamodb:Attributes":["ID","PostDateTime"]}}`), ctx: []kv{c("dynamodb:Attributes", "UserName")}, want: Allowed},
		{name: "ForAllValues on single value", doc: docSV + ": a single value is a set of one (set operators on single-valued keys are overly permissive, not errors)", id: allowIf(`{"ForAllValues:StringEquals":{"aws:RequestTag/env":["dev","test"]}}`), ctx: []kv{c("aws:RequestTag/env", "dev")}, want: Allowed},
		{name: "ForAnyValue IfExists missing", doc: docOps + ": IfExists makes a missing key true", id: allowIf(`{"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":"a*"}}`), want: Allowed},

		// --- Single-valued operator against a multivalued key ----------------------
		{name: "StringEquals on multivalued key", doc: docSV + ": multivalued keys require a set operator; keyless: without one the key matches no value (observed: bare StringEquals on aws:CalledVia denies)", id: allowIf(`{"StringEquals":{"aws:CalledVia":"athena.amazonaws.com"}}`), ctx: []kv{c("aws:CalledVia", "athena.amazonaws.com", "glue.amazonaws.com")}, want: ImplicitDeny},
		{name: "StringNotEquals on multivalued key", doc: docSV + ": keyless: a multivalued key matches no policy value, so a negated operator holds", id: allowIf(`{"StringNotEquals":{"aws:CalledVia":"athena.amazonaws.com"}}`), ctx: []kv{c("aws:CalledVia", "athena.amazonaws.com", "glue.amazonaws.com")}, want: Allowed},
		{name: "StringEquals on one-element list", doc: docSV + ": single- or multivalued depends on the number of values in the request context", id: allowIf(`{"StringEquals":{"aws:CalledVia":"athena.amazonaws.com"}}`), ctx: []kv{c("aws:CalledVia", "athena.amazonaws.com")}, want: Allowed},

		// --- Policy variables ------------------------------------------------------
		{name: "variable in resource", doc: docVars + ": ${aws:username} is replaced with the current user's name", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::bucket/${aws:username}/*"`)}, resource: "arn:aws:s3:::bucket/alice/notes", ctx: []kv{c("aws:username", "alice")}, want: Allowed},
		{name: "variable in resource other user", doc: docVars + ": the variable takes the request's value", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::bucket/${aws:username}/*"`)}, resource: "arn:aws:s3:::bucket/bob/notes", ctx: []kv{c("aws:username", "alice")}, want: ImplicitDeny},
		{name: "variable in resource without value", doc: docVars + ": a resource with a policy variable with no value will not match any resource", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::bucket/${aws:username}/*"`)}, resource: "arn:aws:s3:::bucket//notes", want: ImplicitDeny},
		{name: "variable default value", doc: docVars + ": a default value is used for users without the tag", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::bucket-${aws:PrincipalTag/team, 'company-wide'}/*"`)}, resource: "arn:aws:s3:::bucket-company-wide/x", want: Allowed},
		{name: "variable default not used when set", doc: docVars + ": the default applies only when the key has no value", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::bucket-${aws:PrincipalTag/team, 'company-wide'}/*"`)}, resource: "arn:aws:s3:::bucket-company-wide/x", ctx: []kv{c("aws:PrincipalTag/team", "yellow")}, want: ImplicitDeny},
		{name: "variables literal in 2008-10-17", doc: docVersion + ": with 2008-10-17 variables such as ${aws:username} are treated as literal strings", id: []string{`{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/${aws:username}/*"}}`}, resource: "arn:aws:s3:::bucket/alice/x", ctx: []kv{c("aws:username", "alice")}, want: ImplicitDeny},
		{name: "variables literal text matches in 2008-10-17", doc: docVersion + ": the variable is a literal string", id: []string{`{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/${aws:username}/*"}}`}, resource: "arn:aws:s3:::bucket/${aws:username}/x", want: Allowed},
		{name: "variables literal without Version", doc: docVars + ": without the Version element, variables are treated as literal strings", id: []string{`{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/${aws:username}/*"}}`}, resource: "arn:aws:s3:::bucket/alice/x", ctx: []kv{c("aws:username", "alice")}, want: ImplicitDeny},
		{name: "variable in condition", doc: docVars + ": policy variables in string condition values", id: allowIf(`{"StringLike":{"s3:prefix":["","home/","home/${aws:username}/*"]}}`), ctx: []kv{c("s3:prefix", "home/alice/x"), c("aws:username", "alice")}, want: Allowed},
		{name: "variable in condition without value", doc: docVars + ": StringEquals or StringLike with a variable with no value do not match", id: allowIf(`{"StringEquals":{"s3:ExistingObjectTag/Team":"${aws:PrincipalTag/Team}"}}`), ctx: []kv{c("s3:ExistingObjectTag/Team", "blue")}, want: ImplicitDeny},
		{name: "variable without value, negated operator", doc: docVars + ": inverted operators like StringNotEquals do match against a null value", id: allowIf(`{"StringNotEquals":{"s3:ExistingObjectTag/Team":"${aws:PrincipalTag/Team}"}}`), ctx: []kv{c("s3:ExistingObjectTag/Team", "blue")}, want: Allowed},
		{name: "special variable star is literal", doc: docVars + ": ${*} is used where you need a literal *", id: allowIf(`{"StringLike":{"k":"a${*}b"}}`), ctx: []kv{c("k", "a*b")}, want: Allowed},
		{name: "special variable star is not a wildcard", doc: docVars + ": ${*} stands for the * character, not a wildcard", id: allowIf(`{"StringLike":{"k":"a${*}b"}}`), ctx: []kv{c("k", "axxb")}, want: ImplicitDeny},
		{name: "special variables question mark and dollar", doc: docVars + ": ${?} and ${$} are literal ? and $", id: allowIf(`{"StringLike":{"k":"cost${$}${?}"}}`), ctx: []kv{c("k", "cost$?")}, want: Allowed},
		{name: "variable value is literal", doc: docKeyless + ": a resolved variable is literal text, so a '*' in a tag value is not a wildcard", id: allowIf(`{"StringLike":{"k":"${aws:PrincipalTag/p}"}}`), ctx: []kv{c("k", "anything"), c("aws:PrincipalTag/p", "*")}, want: ImplicitDeny},
		{name: "multivalued key is not a variable", doc: docSV + ": you cannot use a multivalued context key as a policy variable", id: allowIf(`{"StringEquals":{"k":"${aws:TagKeys}"}}`), ctx: []kv{c("k", "a"), c("aws:TagKeys", "a", "b")}, want: ImplicitDeny},
		{name: "variable key case-insensitive", doc: docVars + ": key names are case-insensitive (aws:CurrentTime is AWS:currenttime)", id: []string{allow(`"s3:GetObject"`, `"arn:aws:s3:::bucket/${AWS:UserName}/*"`)}, resource: "arn:aws:s3:::bucket/alice/x", ctx: []kv{c("aws:username", "alice")}, want: Allowed},
		{name: "variable in ARN operator", doc: docOps + ": you can use a policy variable with the ARN operators", id: allowIf(`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::${aws:PrincipalAccount}:role/*"}}`), ctx: []kv{c("aws:PrincipalArn", "arn:aws:iam::123456789012:role/ci"), c("aws:PrincipalAccount", "123456789012")}, want: Allowed},
		{name: "variable in Bool", doc: docOps + ": you can use a policy variable with the Boolean operator", id: allowIf(`{"Bool":{"aws:SecureTransport":"${x:flag}"}}`), ctx: []kv{c("aws:SecureTransport", "true"), c("x:flag", "true")}, want: Allowed},
		{name: "variable before fifth colon is literal", doc: docVars + ": you can't use a variable to replace parts of the ARN before the fifth colon", id: []string{allow(`"sqs:SendMessage"`, `"arn:aws:sqs:${aws:RequestedRegion}:123456789012:q"`)}, action: "sqs:SendMessage", resource: "arn:aws:sqs:us-east-1:123456789012:q", ctx: []kv{c("aws:RequestedRegion", "us-east-1")}, want: ImplicitDeny},
		{name: "NotResource with unresolved variable excludes nothing", doc: docVars + ": a NotResource entry with a variable with no value matches no resource", id: []string{`{` + v12 + `"Statement":{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::bucket/${aws:username}/*"}}`}, resource: "arn:aws:s3:::bucket/alice/x", want: Allowed},

		// --- CI trust policies (the STS's case) ------------------------------------
		{name: "GitHub trust allows repo", doc: docOps + ": StringLike and StringEquals on the provider's sub and aud keys", principal: fedP(ghOIDC), res: ghTrust(ghCond), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, ctx: []kv{c(ghSub, "repo:acme/app:ref:refs/heads/main"), c(ghAud, "sts.amazonaws.com")}, want: Allowed},
		{name: "GitHub trust other repo", doc: docOps + ": StringLike is case-sensitive pattern matching", principal: fedP(ghOIDC), res: ghTrust(ghCond), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, ctx: []kv{c(ghSub, "repo:acme/app-evil:ref:refs/heads/main"), c(ghAud, "sts.amazonaws.com")}, want: ImplicitDeny},
		{name: "GitHub trust look-alike org", doc: docOps + ": StringLike matches the whole value", principal: fedP(ghOIDC), res: ghTrust(ghCond), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, ctx: []kv{c(ghSub, "repo:acme-evil/app:ref:refs/heads/main"), c(ghAud, "sts.amazonaws.com")}, want: ImplicitDeny},
		{name: "GitHub trust wrong audience", doc: docMulti + ": every condition must hold", principal: fedP(ghOIDC), res: ghTrust(ghCond), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, ctx: []kv{c(ghSub, "repo:acme/app:ref:refs/heads/main"), c(ghAud, "https://example.com")}, want: ImplicitDeny},
		{name: "GitHub trust missing sub", doc: docOps + ": a missing key makes StringLike false", principal: fedP(ghOIDC), res: ghTrust(ghCond), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, ctx: []kv{c(ghAud, "sts.amazonaws.com")}, want: ImplicitDeny},
		{name: "GitHub trust wrong action", doc: docAction + ": the trust statement grants sts:AssumeRoleWithWebIdentity only", principal: fedP(ghOIDC), res: ghTrust(ghCond), resKind: KindTrust, action: "sts:AssumeRole", resource: roleARN, ctx: []kv{c(ghSub, "repo:acme/app:ref:refs/heads/main"), c(ghAud, "sts.amazonaws.com")}, want: ImplicitDeny},
		{name: "GitHub trust deny pull requests", doc: docEval + ": an explicit deny overrides the allow", principal: fedP(ghOIDC), res: []string{`{` + v12 + `"Statement":[{"Effect":"Allow","Principal":{"Federated":"` + ghOIDC + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":` + ghCond + `},{"Effect":"Deny","Principal":{"Federated":"` + ghOIDC + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"` + ghSub + `":"*:pull_request"}}}]}`}, resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, ctx: []kv{c(ghSub, "repo:acme/app:pull_request"), c(ghAud, "sts.amazonaws.com")}, want: ExplicitDeny},
		{name: "trust negated-only condition fails open", doc: docOps + ": StringNotEquals on an absent claim is true (a fail-open trust)", principal: fedP(ghOIDC), res: ghTrust(`{"StringNotEquals":{"token.actions.githubusercontent.com:event_name":"pull_request_target"}}`), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, ctx: []kv{c(ghSub, "repo:other/x:ref:refs/heads/main")}, want: Allowed},
		{name: "trust ForAllValues on absent claim fails open", doc: docMulti + ": ForAllValues is true when the key is absent", principal: fedP(ghOIDC), res: ghTrust(`{"ForAllValues:StringLike":{"token.actions.githubusercontent.com:sub":"repo:acme/*"}}`), resKind: KindTrust, action: "sts:AssumeRoleWithWebIdentity", resource: roleARN, want: Allowed},
	}
}

func TestConformance(t *testing.T) {
	cases := conformanceCases()
	if len(cases) < 150 {
		t.Fatalf("conformance table has %d cases, want at least 150", len(cases))
	}
	names := map[string]bool{}
	for _, tc := range cases {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		if tc.doc == "" {
			t.Fatalf("case %q has no doc citation", tc.name)
		}
		t.Run(tc.name, func(t *testing.T) {
			set, req := tc.build(t)
			if got := set.Evaluate(req); got != tc.want {
				t.Errorf("Evaluate = %v, want %v (%s)", got, tc.want, tc.doc)
			}
			got, tr := set.Explain(req)
			if got != tc.want {
				t.Errorf("Explain = %v, want %v", got, tc.want)
			}
			if tr.Decision != got {
				t.Errorf("trace decision %v != %v", tr.Decision, got)
			}
		})
	}
}

func (tc *confCase) build(t testing.TB) (*PolicySet, *Request) {
	t.Helper()
	parse := func(docs []string, kind Kind) []*Policy {
		var out []*Policy
		for _, d := range docs {
			p, err := Parse(d, kind)
			if err != nil {
				t.Fatalf("parse %s: %v", d, err)
			}
			out = append(out, p)
		}
		return out
	}
	rk := tc.resKind
	if rk == 0 {
		rk = KindResource
	}
	set := &PolicySet{
		Identity: parse(tc.id, KindIdentity),
		Session:  parse(tc.ses, KindSession),
		Boundary: parse(tc.bnd, KindBoundary),
		Resource: parse(tc.res, rk),
	}
	req := &Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/key", Context: NewContext(len(tc.ctx))}
	if tc.principal != nil {
		req.Principal = *tc.principal
	} else {
		req.Principal = Principal{Type: PrincipalAWS, ID: alice}
	}
	if tc.action != "" {
		req.Action = tc.action
	}
	if tc.resource != "" {
		req.Resource = tc.resource
	}
	for _, e := range tc.ctx {
		req.Context.Set(e.k, e.v...)
	}
	return set, req
}

// TestConformanceDocsCited checks every citation names a known page, so a
// typo cannot hide a case's rationale.
func TestConformanceDocsCited(t *testing.T) {
	pages := []string{docEval, docOps, docMulti, docSV, docVars, docAction, docNotAction, docResource, docNotRes,
		docPrincipal, docNotPrin, docVersion, docCondition, docGrammar, docBoundaries, docKeyless}
	for _, tc := range conformanceCases() {
		ok := false
		for _, p := range pages {
			if strings.HasPrefix(tc.doc, p+": ") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("case %q: citation %q does not start with a known page and a rule", tc.name, tc.doc)
		}
	}
}
