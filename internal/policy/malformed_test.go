package policy

import (
	"errors"
	"strings"
	"testing"
)

const stmtOK = `"Effect":"Allow","Action":"s3:GetObject","Resource":"*"`

// idDoc wraps one statement body in an identity policy.
func idDoc(stmt string) string {
	return `{"Version":"2012-10-17","Statement":[{` + stmt + `}]}`
}

// trustDoc wraps one statement body in a trust policy.
func trustDoc(stmt string) string {
	return `{"Version":"2012-10-17","Statement":[{` + stmt + `}]}`
}

const fedOK = `"Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"`

func condDoc(cond string) string { return idDoc(stmtOK + `,"Condition":` + cond) }

type malformedCase struct {
	name  string
	kind  Kind
	doc   string
	msg   string // AWS message
	path  string // checked when set
	line  int    // checked when set
	cause error  // default ErrMalformed
	code  string // default MalformedPolicyDocument
}

func malformedCases() []malformedCase {
	deep := strings.Repeat("[", 2000) + strings.Repeat("]", 2000)
	big := idDoc(stmtOK + `,"Condition":{"StringEquals":{"k":"` + strings.Repeat("x", 7000) + `"}}`)
	huge := `{"Statement":"` + strings.Repeat("y", MaxDocumentLength) + `"}`
	return []malformedCase{
		// JSON syntax.
		{name: "empty", doc: "", msg: msgSyntax},
		{name: "white space", doc: " \n\t ", msg: msgSyntax},
		{name: "null", doc: "null", msg: msgSyntax},
		{name: "array", doc: "[]", msg: msgSyntax},
		{name: "string", doc: `"policy"`, msg: msgSyntax},
		{name: "unterminated object", doc: `{`, msg: msgSyntax},
		{name: "unterminated string", doc: `{"Version":"2012-10-17`, msg: msgSyntax},
		{name: "trailing comma", doc: `{"Statement":[{` + stmtOK + `}],}`, msg: msgSyntax},
		{name: "trailing content", doc: idDoc(stmtOK) + ` x`, msg: msgSyntax},
		{name: "two documents", doc: idDoc(stmtOK) + idDoc(stmtOK), msg: msgSyntax},
		{name: "invalid escape", doc: `{"Id":"a\x","Statement":{` + stmtOK + `}}`, msg: msgSyntax},
		{name: "control character in string", doc: "{\"Id\":\"a\x01\",\"Statement\":{" + stmtOK + "}}", msg: msgSyntax},
		{name: "invalid UTF-8", doc: "{\"Id\":\"a\xff\",\"Statement\":{" + stmtOK + "}}", msg: msgSyntax},
		{name: "lone surrogate", doc: `{"Id":"\ud800","Statement":{` + stmtOK + `}}`, msg: msgSyntax},
		{name: "single quotes", doc: `{'Version':'2012-10-17'}`, msg: msgSyntax},
		{name: "comment", doc: "// policy\n" + idDoc(stmtOK), msg: msgSyntax},
		{name: "NaN", doc: idDoc(stmtOK + `,"Condition":{"NumericEquals":{"n":NaN}}`), msg: msgSyntax},
		{name: "leading zero", doc: idDoc(stmtOK + `,"Condition":{"NumericEquals":{"n":01}}`), msg: msgSyntax},
		{name: "bare word", doc: `{"Statement":yes}`, msg: msgSyntax},
		{name: "deep nesting", doc: deep, msg: msgSyntax},
		{name: "byte order mark", doc: "\ufeff" + idDoc(stmtOK), msg: msgSyntax},
		{name: "missing colon", doc: `{"Statement" [{` + stmtOK + `}]}`, msg: msgSyntax},
		{name: "unquoted key", doc: `{Statement:[{` + stmtOK + `}]}`, msg: msgSyntax},

		// Duplicate keys at every level, including case variants.
		{name: "duplicate Statement", doc: `{"Statement":{` + stmtOK + `},"Statement":{` + stmtOK + `}}`, msg: msgSyntax, line: 1},
		{name: "duplicate Version case variant", doc: `{"Version":"2012-10-17","version":"2008-10-17","Statement":{` + stmtOK + `}}`, msg: msgSyntax},
		{name: "duplicate Effect", doc: idDoc(stmtOK + `,"Effect":"Deny"`), msg: msgSyntax, path: "Statement[0]"},
		{name: "duplicate operator", doc: condDoc(`{"StringEquals":{"a":"1"},"StringEquals":{"a":"2"}}`), msg: msgSyntax, path: "Statement[0].Condition"},
		{name: "duplicate condition key case variant", doc: condDoc(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/8","AWS:SourceIP":"0.0.0.0/0"}}`), msg: msgSyntax, path: "Statement[0].Condition.IpAddress"},
		{name: "duplicate principal type", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":"123456789012","aws":"*"},"Action":"sts:AssumeRole"`), msg: msgSyntax, path: "Statement[0].Principal"},
		{name: "duplicate key on line 3", doc: "{\"Version\":\"2012-10-17\",\n\"Statement\":{" + stmtOK + ",\n  \"Resource\":\"*\"}}", msg: msgSyntax, line: 3},

		// Top level.
		{name: "unknown top-level element", doc: `{"Version":"2012-10-17","Foo":1,"Statement":{` + stmtOK + `}}`, msg: msgSyntax},
		{name: "lower-case statement element", doc: `{"Version":"2012-10-17","statement":{` + stmtOK + `}}`, msg: msgSyntax},
		{name: "bad Version", doc: `{"Version":"2012-10-18","Statement":{` + stmtOK + `}}`, msg: msgSyntax, path: "Version"},
		{name: "numeric Version", doc: `{"Version":2012,"Statement":{` + stmtOK + `}}`, msg: msgSyntax},
		{name: "numeric Id", doc: `{"Id":7,"Statement":{` + stmtOK + `}}`, msg: msgSyntax},
		{name: "missing Statement", doc: `{"Version":"2012-10-17"}`, msg: msgSyntax},
		{name: "empty Statement", doc: `{"Version":"2012-10-17","Statement":[]}`, msg: msgSyntax},
		{name: "string Statement", doc: `{"Version":"2012-10-17","Statement":"Allow"}`, msg: msgSyntax},
		{name: "statement not an object", doc: `{"Version":"2012-10-17","Statement":[{` + stmtOK + `},"x"]}`, msg: msgSyntax, path: "Statement[1]"},

		// Statement elements.
		{name: "unknown statement element", doc: idDoc(stmtOK + `,"Actions":"s3:*"`), msg: msgSyntax},
		{name: "lower-case effect element", doc: idDoc(`"effect":"Allow","Action":"s3:*","Resource":"*"`), msg: msgSyntax},
		{name: "missing Effect", doc: idDoc(`"Action":"s3:*","Resource":"*"`), msg: msgMissingEffect, path: "Statement[0]"},
		{name: "lower-case Effect value", doc: idDoc(`"Effect":"allow","Action":"s3:*","Resource":"*"`), msg: msgLegacy, path: "Statement[0].Effect"},
		{name: "unknown Effect value", doc: idDoc(`"Effect":"Permit","Action":"s3:*","Resource":"*"`), msg: msgSyntax},
		{name: "Effect array", doc: idDoc(`"Effect":["Allow"],"Action":"s3:*","Resource":"*"`), msg: msgSyntax},
		{name: "Action and NotAction", doc: idDoc(stmtOK + `,"NotAction":"iam:*"`), msg: msgSyntax},
		{name: "missing Action", doc: idDoc(`"Effect":"Allow","Resource":"*"`), msg: msgNeedActions},
		{name: "empty Action", doc: idDoc(`"Effect":"Allow","Action":[],"Resource":"*"`), msg: msgNeedActions},
		{name: "empty NotAction", doc: idDoc(`"Effect":"Allow","NotAction":[],"Resource":"*"`), msg: msgNeedActions},
		{name: "numeric Action", doc: idDoc(`"Effect":"Allow","Action":7,"Resource":"*"`), msg: msgSyntax},
		{name: "number in Action list", doc: idDoc(`"Effect":"Allow","Action":["s3:*",7],"Resource":"*"`), msg: msgSyntax, path: "Statement[0].Action[1]"},
		{name: "null in Action list", doc: idDoc(`"Effect":"Allow","Action":[null],"Resource":"*"`), msg: msgSyntax},
		{name: "action without vendor", doc: idDoc(`"Effect":"Allow","Action":"s3GetObject","Resource":"*"`), msg: msgActionVendor},
		{name: "action empty vendor", doc: idDoc(`"Effect":"Allow","Action":":GetObject","Resource":"*"`), msg: msgActionVendor},
		{name: "action two colons", doc: idDoc(`"Effect":"Allow","Action":["s3:*","s3:Get:Object"],"Resource":"*"`), msg: msgActionColon, path: "Statement[0].Action[1]"},
		{name: "action bad vendor", doc: idDoc(`"Effect":"Allow","Action":"s 3:Get","Resource":"*"`), msg: "Vendor s 3 is not valid"},
		{name: "Resource and NotResource", doc: idDoc(stmtOK + `,"NotResource":"arn:aws:s3:::b"`), msg: msgSyntax},
		{name: "identity missing Resource", doc: idDoc(`"Effect":"Allow","Action":"s3:*"`), msg: msgNeedResources},
		{name: "identity empty Resource", doc: idDoc(`"Effect":"Allow","Action":"s3:*","Resource":[]}` + `,{` + stmtOK), msg: msgNeedResources, path: "Statement[0]"},
		{name: "identity with Principal", doc: idDoc(stmtOK + `,"Principal":"*"`), msg: msgNoPrincipal},
		{name: "session with NotPrincipal", kind: KindSession, doc: idDoc(stmtOK + `,"NotPrincipal":{"AWS":"123456789012"}`), msg: msgNoPrincipal},
		{name: "boundary with Principal", kind: KindBoundary, doc: idDoc(stmtOK + `,"Principal":{"AWS":"*"}`), msg: msgNoPrincipal},
		{name: "resource without colon", doc: idDoc(`"Effect":"Allow","Action":"s3:*","Resource":"bucket"`), msg: `Resource bucket must be in ARN format or "*".`},
		{name: "resource bad partition", doc: idDoc(`"Effect":"Allow","Action":"s3:*","Resource":"arn:foo:s3:::b"`), msg: `Partition "foo" is not valid for resource "arn:foo:s3:::b".`},
		{name: "resource without service", doc: idDoc(`"Effect":"Allow","Action":"s3:*","Resource":"arn:aws"`), msg: msgResourceVendor},
		{name: "resource wildcard service", doc: idDoc(`"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s*:::b"`), msg: msgResourceVendor},
		{name: "resource empty service", doc: idDoc(`"Effect":"Allow","Action":"s3:*","Resource":"arn:aws::us-east-1:123456789012:x"`), msg: msgLegacy},
		{name: "resource short ARN with ::", doc: idDoc(`"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3::bucket"`), msg: msgLegacy},
		{name: "resource number", doc: idDoc(`"Effect":"Allow","Action":"s3:*","Resource":1`), msg: msgSyntax},

		// Trust policies.
		{name: "trust with Resource", kind: KindTrust, doc: trustDoc(`"Effect":"Allow",` + fedOK + `,"Resource":"*"`), msg: msgProhibitedResource},
		{name: "trust with NotResource", kind: KindTrust, doc: trustDoc(`"Effect":"Allow",` + fedOK + `,"NotResource":"arn:aws:s3:::b"`), msg: msgProhibitedResource},
		{name: "trust without Principal", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Action":"sts:AssumeRole"`), msg: msgMissingPrincipal},
		{name: "trust with NotPrincipal", kind: KindTrust, doc: trustDoc(`"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"`), msg: msgProhibitedNotPrin},
		{name: "trust action sts:*", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:*"`), msg: msgTrustActions},
		{name: "trust action *", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*"`), msg: msgTrustActions},
		{name: "trust NotAction", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":"123456789012"},"NotAction":"s3:*"`), msg: msgTrustActions},
		{name: "trust non-STS action", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":["sts:AssumeRole","s3:GetObject"]`), msg: msgTrustActions, path: "Statement[0].Action[1]"},
		{name: "resource policy without principal", kind: KindResource, doc: idDoc(stmtOK), msg: msgMissingPrincipal},
		{name: "resource policy without resource", kind: KindResource, doc: idDoc(`"Effect":"Allow","Principal":"*","Action":"s3:*"`), msg: msgNeedResources},

		// Principals.
		{name: "principal string ARN", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":"arn:aws:iam::123456789012:root","Action":"sts:AssumeRole"`), msg: `Invalid principal in policy: "arn:aws:iam::123456789012:root"`},
		{name: "principal empty object", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{},"Action":"sts:AssumeRole"`), msg: "Invalid principal in policy: {}"},
		{name: "principal empty list", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":[]},"Action":"sts:AssumeRole"`), msg: `Invalid principal in policy: "AWS":[]`},
		{name: "principal partial wildcard", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/*"},"Action":"sts:AssumeRole"`), msg: `Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/*"`},
		{name: "principal bare name", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sts:AssumeRole"`), msg: `Invalid principal in policy: "AWS":"bob"`},
		{name: "principal short account", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":"12345"},"Action":"sts:AssumeRole"`), msg: `Invalid principal in policy: "AWS":"12345"`},
		{name: "principal S3 ARN", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"AWS":"arn:aws:s3:::bucket"},"Action":"sts:AssumeRole"`), msg: `Invalid principal in policy: "AWS":"arn:aws:s3:::bucket"`},
		{name: "federated not a domain", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"Federated":"not a domain"},"Action":"sts:AssumeRoleWithWebIdentity"`), msg: msgFederated},
		{name: "federated role ARN", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:role/x"},"Action":"sts:AssumeRoleWithWebIdentity"`), msg: msgFederated},
		{name: "federated wildcard", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"Federated":"*"},"Action":"sts:AssumeRoleWithWebIdentity"`), msg: msgFederated},
		{name: "service wildcard", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"Service":"*"},"Action":"sts:AssumeRole"`), msg: `Invalid principal in policy: "Service":"*"`},
		{name: "unknown principal type", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":{"Users":"x.example.com"},"Action":"sts:AssumeRole"`), msg: msgSyntax},
		{name: "principal number", kind: KindTrust, doc: trustDoc(`"Effect":"Allow","Principal":5,"Action":"sts:AssumeRole"`), msg: msgSyntax},
		{name: "Principal and NotPrincipal", kind: KindResource, doc: idDoc(stmtOK + `,"Principal":"*","NotPrincipal":{"AWS":"123456789012"}`), msg: msgSyntax},

		// Sid.
		{name: "Sid not alphanumeric", doc: idDoc(`"Sid":"my-sid",` + stmtOK), msg: msgSidAlnum, path: "Statement[0].Sid"},
		{name: "Sid with space", doc: idDoc(`"Sid":"my sid",` + stmtOK), msg: msgSidAlnum},
		{name: "Sid number", doc: idDoc(`"Sid":1,` + stmtOK), msg: msgSyntax},
		{name: "duplicate Sid", doc: `{"Version":"2012-10-17","Statement":[{"Sid":"A",` + stmtOK + `},{"Sid":"A",` + stmtOK + `}]}`, msg: msgSidUnique, path: "Statement[1].Sid"},

		// Conditions.
		{name: "Condition array", doc: condDoc(`[]`), msg: msgSyntax},
		{name: "unknown operator", doc: condDoc(`{"StringEqual":{"a":"b"}}`), msg: msgSyntax},
		{name: "operator wrong case", doc: condDoc(`{"stringequals":{"a":"b"}}`), msg: msgSyntax},
		{name: "NullIfExists", doc: condDoc(`{"NullIfExists":{"a":"true"}}`), msg: msgSyntax},
		{name: "ForAnyValue Null", doc: condDoc(`{"ForAnyValue:Null":{"a":"true"}}`), msg: msgSyntax},
		{name: "unknown set qualifier", doc: condDoc(`{"ForSomeValues:StringEquals":{"a":"b"}}`), msg: msgSyntax},
		{name: "operator value not an object", doc: condDoc(`{"StringEquals":"a"}`), msg: msgSyntax},
		{name: "operator value array", doc: condDoc(`{"StringEquals":["a"]}`), msg: msgSyntax},
		{name: "condition value null", doc: condDoc(`{"StringEquals":{"a":null}}`), msg: msgSyntax},
		{name: "condition value object", doc: condDoc(`{"StringEquals":{"a":{"b":"c"}}}`), msg: msgSyntax},
		{name: "condition nested array", doc: condDoc(`{"StringEquals":{"a":[["b"]]}}`), msg: msgSyntax, path: `Statement[0].Condition.StringEquals.a[0]`},
		{name: "empty condition key", doc: condDoc(`{"StringEquals":{"":"b"}}`), msg: msgSyntax},
		{name: "numeric value not a number", doc: condDoc(`{"NumericLessThan":{"s3:max-keys":"ten"}}`), msg: msgSyntax},
		{name: "numeric value variable", doc: condDoc(`{"NumericLessThan":{"s3:max-keys":"${aws:x}"}}`), msg: msgSyntax},
		{name: "date word", doc: condDoc(`{"DateLessThan":{"aws:CurrentTime":"yesterday"}}`), msg: msgLegacy},
		{name: "date bad month", doc: condDoc(`{"DateLessThan":{"aws:CurrentTime":"2024-13-01T00:00:00Z"}}`), msg: msgLegacy},
		{name: "date bad day", doc: condDoc(`{"DateLessThan":{"aws:CurrentTime":"2023-02-29"}}`), msg: msgLegacy},
		{name: "date bad hour", doc: condDoc(`{"DateLessThan":{"aws:CurrentTime":"2024-01-01T24:00:00Z"}}`), msg: msgLegacy},
		{name: "bool not boolean", doc: condDoc(`{"Bool":{"aws:SecureTransport":"yes"}}`), msg: msgSyntax},
		{name: "binary not base64", doc: condDoc(`{"BinaryEquals":{"k":"!!!"}}`), msg: msgSyntax},
		{name: "IP out of range", doc: condDoc(`{"IpAddress":{"aws:SourceIp":"300.1.1.1"}}`), msg: msgSyntax},
		{name: "IP prefix too long", doc: condDoc(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`), msg: msgSyntax},
		{name: "Null not boolean", doc: condDoc(`{"Null":{"k":"maybe"}}`), msg: msgSyntax},

		// Sizes.
		{name: "trust policy over quota", kind: KindTrust, doc: trustDoc(`"Effect":"Allow",` + fedOK + `,"Condition":{"StringEquals":{"k":"` + strings.Repeat("z", 2100) + `"}}`), msg: "Cannot exceed quota for ACLSizePerRole: 2048", cause: ErrTooLarge, code: CodeLimitExceeded},
		{name: "managed policy over quota", doc: big, msg: "Cannot exceed quota for PolicySize: 6144", cause: ErrTooLarge, code: CodeLimitExceeded},
		{name: "session policy over quota", kind: KindSession, doc: idDoc(stmtOK + `,"Condition":{"StringEquals":{"k":"` + strings.Repeat("s", 2100) + `"}}`), msg: "Session policy size 2234 exceeds the limit of 2048 characters.", cause: ErrTooLarge, code: CodePackedPolicyTooLarge},
		{name: "beyond the input bound", kind: KindResource, doc: huge, msg: "Policy document length exceeds the maximum of 131072 characters.", cause: ErrTooLarge, code: CodeLimitExceeded},
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range malformedCases() {
		t.Run(tc.name, func(t *testing.T) {
			kind := tc.kind
			if kind == 0 {
				kind = KindIdentity
			}
			p, err := Parse(tc.doc, kind)
			if err == nil {
				t.Fatalf("Parse accepted the document: %s", p)
			}
			pe, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("error %T is not *policy.Error: %v", err, err)
			}
			cause, code := tc.cause, tc.code
			if cause == nil {
				cause = ErrMalformed
			}
			if code == "" {
				code = CodeMalformedPolicyDocument
			}
			if !errors.Is(err, cause) {
				t.Errorf("errors.Is(err, %v) = false; err = %v", cause, err)
			}
			if pe.Code != code {
				t.Errorf("Code = %q, want %q", pe.Code, code)
			}
			if pe.Message != tc.msg {
				t.Errorf("Message = %q, want %q (err: %v)", pe.Message, tc.msg, err)
			}
			if tc.path != "" && pe.Path != tc.path {
				t.Errorf("Path = %q, want %q", pe.Path, tc.path)
			}
			if tc.line != 0 && pe.Line != tc.line {
				t.Errorf("Line = %d, want %d", pe.Line, tc.line)
			}
			if cause == ErrMalformed && pe.Line == 0 && tc.doc != "" && strings.TrimSpace(tc.doc) != "" {
				t.Errorf("no position reported: %v", err)
			}
		})
	}
}

// TestMalformedIsNotValidElsewhere makes sure each malformed case is
// rejected for its defect, not for being fed to the wrong kind: a valid
// counterpart of the identity documents parses.
func TestValidCounterparts(t *testing.T) {
	for _, doc := range []string{
		idDoc(stmtOK),
		idDoc(`"Sid":"Stmt1",` + stmtOK),
		condDoc(`{"NumericLessThan":{"s3:max-keys":"10"},"DateLessThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"},"Bool":{"aws:SecureTransport":true},"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"BinaryEquals":{"k":"QQ=="},"Null":{"k2":"false"}}`),
		idDoc(`"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b"`),
		idDoc(`"Effect":"Allow","Action":"*:Get*","Resource":"arn:*:s3:::b"`),
	} {
		if _, err := Parse(doc, KindIdentity); err != nil {
			t.Errorf("Parse(%s): %v", doc, err)
		}
	}
	for _, doc := range []string{
		trustDoc(`"Effect":"Allow",` + fedOK),
		trustDoc(`"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":["sts:AssumeRole*","sts:TagSession"]`),
		trustDoc(`"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"`),
		trustDoc(`"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity"`),
		trustDoc(`"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/127.0.0.1:8400/oidc"},"Action":"sts:AssumeRoleWithWebIdentity"`),
		trustDoc(`"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:role/x","arn:aws:sts::123456789012:assumed-role/x/s","AROAEXAMPLEEXAMPLE123"]},"Action":"sts:AssumeRole"`),
	} {
		if _, err := Parse(doc, KindTrust); err != nil {
			t.Errorf("Parse(%s): %v", doc, err)
		}
	}
}
