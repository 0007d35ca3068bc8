package policygen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// need builds an expected Need (Source is checked apart).
func need(action string) Need { return Need{Action: action} }

func needOn(action, on string) Need { return Need{Action: action, On: on} }

func passRoleAt(path ...string) Need {
	return Need{Action: "iam:PassRole", On: OnPassRole, PassRoleParam: path}
}

// overrideCases: one or more cases per override. Each case's answer must
// differ from what the generated table alone gives (checked by
// TestOverrideCases), so removing the override fails its case.
var overrideCases = []struct {
	source, name, params string
	want                 []Need // nil with known: needs no permission
}{
	// S3 names that are not the action.
	{"s3.amazonaws.com", "ListObjects", `{"bucketName":"b","prefix":"p/"}`, []Need{need("s3:ListBucket")}},
	{"s3.amazonaws.com", "ListObjectsV2", `{"bucketName":"b","list-type":"2"}`, []Need{need("s3:ListBucket")}},
	{"s3.amazonaws.com", "ListObjectVersions", `{"bucketName":"b"}`, []Need{need("s3:ListBucketVersions")}},
	{"s3.amazonaws.com", "HeadBucket", `{"bucketName":"b"}`, []Need{need("s3:ListBucket")}},
	{"s3.amazonaws.com", "ListBuckets", ``, []Need{need("s3:ListAllMyBuckets")}},
	{"s3.amazonaws.com", "HeadObject", `{"bucketName":"b","key":"k"}`, []Need{need("s3:GetObject")}},
	{"s3.amazonaws.com", "HeadObject", `{"bucketName":"b","key":"k","versionId":"v1"}`, []Need{need("s3:GetObjectVersion")}},
	{"s3.amazonaws.com", "GetObject", `{"bucketName":"b","key":"k","versionId":"v1"}`, []Need{need("s3:GetObjectVersion")}},
	{"s3.amazonaws.com", "DeleteObject", `{"bucketName":"b","key":"k","versionId":"v1"}`, []Need{need("s3:DeleteObjectVersion")}},
	{"s3.amazonaws.com", "GetObjectAcl", `{"versionId":"v1"}`, []Need{need("s3:GetObjectVersionAcl")}},
	{"s3.amazonaws.com", "PutObjectAcl", `{"versionId":"v1"}`, []Need{need("s3:PutObjectVersionAcl")}},
	{"s3.amazonaws.com", "GetObjectTagging", `{"versionId":"v1"}`, []Need{need("s3:GetObjectVersionTagging")}},
	{"s3.amazonaws.com", "PutObjectTagging", `{"versionId":"v1"}`, []Need{need("s3:PutObjectVersionTagging")}},
	{"s3.amazonaws.com", "DeleteObjectTagging", `{"versionId":"v1"}`, []Need{need("s3:DeleteObjectVersionTagging")}},
	{"s3.amazonaws.com", "GetObjectAttributes", `{"bucketName":"b","key":"k"}`, []Need{need("s3:GetObject"), need("s3:GetObjectAttributes")}},
	{"s3.amazonaws.com", "GetObjectAttributes", `{"versionId":"v"}`, []Need{need("s3:GetObjectVersion"), need("s3:GetObjectVersionAttributes")}},
	{"s3.amazonaws.com", "SelectObjectContent", `{}`, []Need{need("s3:GetObject")}},
	{"s3.amazonaws.com", "CopyObject", `{"bucketName":"dst","key":"k","x-amz-copy-source":"src/a/b"}`,
		[]Need{needOn("s3:GetObject", OnSource), need("s3:PutObject")}},
	{"s3.amazonaws.com", "CopyObject", `{"x-amz-copy-source":"src/a?versionId=3"}`,
		[]Need{needOn("s3:GetObjectVersion", OnSource), need("s3:PutObject")}},
	{"s3.amazonaws.com", "UploadPartCopy", `{"x-amz-copy-source":"src/a","partNumber":"1"}`,
		[]Need{needOn("s3:GetObject", OnSource), need("s3:PutObject")}},
	{"s3.amazonaws.com", "CreateMultipartUpload", `{}`, []Need{need("s3:PutObject")}},
	{"s3.amazonaws.com", "UploadPart", `{}`, []Need{need("s3:PutObject")}},
	{"s3.amazonaws.com", "CompleteMultipartUpload", `{}`, []Need{need("s3:PutObject")}},
	{"s3.amazonaws.com", "ListParts", `{}`, []Need{need("s3:ListMultipartUploadParts")}},
	{"s3.amazonaws.com", "ListMultipartUploads", `{}`, []Need{need("s3:ListBucketMultipartUploads")}},
	{"s3.amazonaws.com", "DeleteObjects", `{"bucketName":"b","delete":""}`, []Need{need("s3:DeleteObject")}},
	// S3 bucket configuration.
	{"s3.amazonaws.com", "GetBucketLifecycle", `{}`, []Need{need("s3:GetLifecycleConfiguration")}},
	{"s3.amazonaws.com", "GetBucketLifecycleConfiguration", `{}`, []Need{need("s3:GetLifecycleConfiguration")}},
	{"s3.amazonaws.com", "PutBucketLifecycle", `{}`, []Need{need("s3:PutLifecycleConfiguration")}},
	{"s3.amazonaws.com", "PutBucketLifecycleConfiguration", `{}`, []Need{need("s3:PutLifecycleConfiguration")}},
	{"s3.amazonaws.com", "DeleteBucketLifecycle", `{}`, []Need{need("s3:PutLifecycleConfiguration")}},
	{"s3.amazonaws.com", "DeleteBucketLifecycleConfiguration", `{}`, []Need{need("s3:PutLifecycleConfiguration")}},
	{"s3.amazonaws.com", "GetAccelerateConfiguration", `{}`, []Need{need("s3:GetAccelerateConfiguration")}},
	{"s3.amazonaws.com", "GetBucketAccelerateConfiguration", `{}`, []Need{need("s3:GetAccelerateConfiguration")}},
	{"s3.amazonaws.com", "PutAccelerateConfiguration", `{}`, []Need{need("s3:PutAccelerateConfiguration")}},
	{"s3.amazonaws.com", "PutBucketAccelerateConfiguration", `{}`, []Need{need("s3:PutAccelerateConfiguration")}},
	{"s3.amazonaws.com", "DeleteBucketCors", `{}`, []Need{need("s3:PutBucketCORS")}},
	{"s3.amazonaws.com", "GetBucketEncryption", `{}`, []Need{need("s3:GetEncryptionConfiguration")}},
	{"s3.amazonaws.com", "PutBucketEncryption", `{}`, []Need{need("s3:PutEncryptionConfiguration")}},
	{"s3.amazonaws.com", "DeleteBucketEncryption", `{}`, []Need{need("s3:PutEncryptionConfiguration")}},
	{"s3.amazonaws.com", "GetBucketReplication", `{}`, []Need{need("s3:GetReplicationConfiguration")}},
	{"s3.amazonaws.com", "PutBucketReplication", `{}`, []Need{need("s3:PutReplicationConfiguration")}},
	{"s3.amazonaws.com", "DeleteBucketReplication", `{}`, []Need{need("s3:PutReplicationConfiguration")}},
	{"s3.amazonaws.com", "GetBucketNotificationConfiguration", `{}`, []Need{need("s3:GetBucketNotification")}},
	{"s3.amazonaws.com", "PutBucketNotificationConfiguration", `{}`, []Need{need("s3:PutBucketNotification")}},
	{"s3.amazonaws.com", "DeleteBucketTagging", `{}`, []Need{need("s3:PutBucketTagging")}},
	{"s3.amazonaws.com", "DeleteBucketOwnershipControls", `{}`, []Need{need("s3:PutBucketOwnershipControls")}},
	{"s3.amazonaws.com", "GetPublicAccessBlock", `{}`, []Need{need("s3:GetBucketPublicAccessBlock")}},
	{"s3.amazonaws.com", "GetBucketPublicAccessBlock", `{}`, []Need{need("s3:GetBucketPublicAccessBlock")}},
	{"s3.amazonaws.com", "PutPublicAccessBlock", `{}`, []Need{need("s3:PutBucketPublicAccessBlock")}},
	{"s3.amazonaws.com", "PutBucketPublicAccessBlock", `{}`, []Need{need("s3:PutBucketPublicAccessBlock")}},
	{"s3.amazonaws.com", "DeletePublicAccessBlock", `{}`, []Need{need("s3:PutBucketPublicAccessBlock")}},
	{"s3.amazonaws.com", "DeleteBucketPublicAccessBlock", `{}`, []Need{need("s3:PutBucketPublicAccessBlock")}},
	{"s3.amazonaws.com", "GetAccountPublicAccessBlock", `{}`, []Need{need("s3:GetAccountPublicAccessBlock")}},
	{"s3.amazonaws.com", "PutAccountPublicAccessBlock", `{}`, []Need{need("s3:PutAccountPublicAccessBlock")}},
	{"s3.amazonaws.com", "DeleteAccountPublicAccessBlock", `{}`, []Need{need("s3:PutAccountPublicAccessBlock")}},
	{"s3.amazonaws.com", "GetObjectLockConfiguration", `{}`, []Need{need("s3:GetBucketObjectLockConfiguration")}},
	{"s3.amazonaws.com", "GetBucketObjectLockConfiguration", `{}`, []Need{need("s3:GetBucketObjectLockConfiguration")}},
	{"s3.amazonaws.com", "PutObjectLockConfiguration", `{}`, []Need{need("s3:PutBucketObjectLockConfiguration")}},
	{"s3.amazonaws.com", "PutBucketObjectLockConfiguration", `{}`, []Need{need("s3:PutBucketObjectLockConfiguration")}},
	{"s3.amazonaws.com", "GetStorageLensDashboardDataInternal", `{}`, nil},
	// KMS.
	{"kms.amazonaws.com", "ReEncrypt", `{"sourceKeyId":"a","destinationKeyId":"b"}`,
		[]Need{needOn("kms:ReEncryptFrom", OnSource), needOn("kms:ReEncryptTo", OnDestination)}},
	// STS.
	{"sts.amazonaws.com", "GetCallerIdentity", ``, nil},
	{"sts.amazonaws.com", "GetSessionToken", `{"durationSeconds":900}`, nil},
	{"sts.amazonaws.com", "AssumeRoleWithWebIdentity", `{"roleArn":"arn:aws:iam::1:role/r"}`, nil},
	{"sts.amazonaws.com", "AssumeRoleWithSAML", `{}`, nil},
	{"sts.amazonaws.com", "AssumeRole", `{"roleArn":"arn:aws:iam::1:role/r","tags":[{"key":"k","value":"v"}]}`,
		[]Need{need("sts:AssumeRole"), need("sts:TagSession")}},
	{"sts.amazonaws.com", "AssumeRole", `{"roleArn":"arn:aws:iam::1:role/r","transitiveTagKeys":["k"],"sourceIdentity":"me"}`,
		[]Need{need("sts:AssumeRole"), need("sts:TagSession"), need("sts:SetSourceIdentity")}},
	// Registries.
	{"ecr.amazonaws.com", "PolicyExecutionEvent", `{}`, nil},
	{"codeartifact.amazonaws.com", "GetAuthorizationToken", `{"domain":"d"}`,
		[]Need{need("codeartifact:GetAuthorizationToken"), need("sts:GetServiceBearerToken")}},
	// Lambda.
	{"lambda.amazonaws.com", "Invoke", `{"functionName":"f"}`, []Need{need("lambda:InvokeFunction")}},
	{"lambda.amazonaws.com", "InvokeWithResponseStream", `{}`, []Need{need("lambda:InvokeFunction")}},
	{"lambda.amazonaws.com", "GetLayerVersionByArn", `{}`, []Need{need("lambda:GetLayerVersion")}},
	// iam:PassRole.
	{"lambda.amazonaws.com", "CreateFunction20150331", `{"functionName":"f","role":"arn:aws:iam::1:role/x"}`,
		[]Need{need("lambda:CreateFunction"), passRoleAt("role")}},
	{"lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2", `{"functionName":"f","role":"arn:aws:iam::1:role/x"}`,
		[]Need{need("lambda:UpdateFunctionConfiguration"), passRoleAt("role")}},
	{"cloudformation.amazonaws.com", "CreateStack", `{"stackName":"s","roleARN":"arn:aws:iam::1:role/cfn"}`,
		[]Need{need("cloudformation:CreateStack"), passRoleAt("roleARN")}},
	{"cloudformation.amazonaws.com", "UpdateStack", `{"stackName":"s","roleARN":"arn:aws:iam::1:role/cfn"}`,
		[]Need{need("cloudformation:UpdateStack"), passRoleAt("roleARN")}},
	{"cloudformation.amazonaws.com", "CreateChangeSet", `{"roleARN":"arn:aws:iam::1:role/cfn"}`,
		[]Need{need("cloudformation:CreateChangeSet"), passRoleAt("roleARN")}},
	{"ecs.amazonaws.com", "RegisterTaskDefinition", `{"family":"f","taskRoleArn":"arn:aws:iam::1:role/t","executionRoleArn":"arn:aws:iam::1:role/e"}`,
		[]Need{need("ecs:RegisterTaskDefinition"), passRoleAt("taskRoleArn"), passRoleAt("executionRoleArn")}},
	{"ecs.amazonaws.com", "RunTask", `{"overrides":{"taskRoleArn":"arn:aws:iam::1:role/t"}}`,
		[]Need{need("ecs:RunTask"), passRoleAt("overrides", "taskRoleArn")}},
	{"ec2.amazonaws.com", "RunInstances", `{"iamInstanceProfile":{"arn":"arn:aws:iam::1:instance-profile/p"}}`,
		[]Need{need("ec2:RunInstances"), {Action: "iam:PassRole", On: OnPassRole}}},
	{"ec2.amazonaws.com", "AssociateIamInstanceProfile", `{"iamInstanceProfile":{"name":"p"}}`,
		[]Need{need("ec2:AssociateIamInstanceProfile"), {Action: "iam:PassRole", On: OnPassRole}}},
	{"ec2.amazonaws.com", "ReplaceIamInstanceProfileAssociation", `{"iamInstanceProfile":{"name":"p"}}`,
		[]Need{need("ec2:ReplaceIamInstanceProfileAssociation"), {Action: "iam:PassRole", On: OnPassRole}}},
	// DynamoDB (request shapes from the DynamoDB guide's CloudTrail samples).
	{"dynamodb.amazonaws.com", "TransactWriteItems", `{"requestItems":[{"operation":"Put","tableName":"Music"},{"operation":"Update","tableName":"Music"},{"operation":"Delete","TableName":"Music"},{"operation":"ConditionCheck","TableName":"Music"},{"operation":"Put","tableName":"Other"}]}`,
		[]Need{need("dynamodb:PutItem"), need("dynamodb:UpdateItem"), need("dynamodb:DeleteItem"), need("dynamodb:ConditionCheckItem")}},
	{"dynamodb.amazonaws.com", "TransactWriteItems", `{"transactItems":[{"update":{"tableName":"t"}}]}`,
		[]Need{need("dynamodb:UpdateItem")}},
	{"dynamodb.amazonaws.com", "TransactGetItems", `{"requestItems":[{"tableName":"t"}]}`, []Need{need("dynamodb:GetItem")}},
	{"dynamodb.amazonaws.com", "ExecuteStatement", `{"statement":"SELECT * FROM Music WHERE Artist = 'x' AND nonKeyAttr = ***(Redacted)"}`,
		[]Need{need("dynamodb:PartiQLSelect")}},
	{"dynamodb.amazonaws.com", "BatchExecuteStatement", `{"requestItems":[{"statement":"UPDATE Music SET Album = ***(Redacted)"},{"statement":"insert INTO Music VALUE {}"}]}`,
		[]Need{need("dynamodb:PartiQLUpdate"), need("dynamodb:PartiQLInsert")}},
	{"dynamodb.amazonaws.com", "ExecuteTransaction", `{"transactStatements":[{"statement":" DELETE FROM t"}]}`,
		[]Need{need("dynamodb:PartiQLDelete")}},
	{"dynamodb.amazonaws.com", "DescribeEndpoints", ``, nil},
	// SQS, SNS.
	{"sqs.amazonaws.com", "SendMessageBatch", `{"queueUrl":"https://sqs.us-east-1.amazonaws.com/1/q"}`, []Need{need("sqs:SendMessage")}},
	{"sqs.amazonaws.com", "DeleteMessageBatch", `{}`, []Need{need("sqs:DeleteMessage")}},
	{"sqs.amazonaws.com", "ChangeMessageVisibilityBatch", `{}`, []Need{need("sqs:ChangeMessageVisibility")}},
	{"sns.amazonaws.com", "PublishBatch", `{}`, []Need{need("sns:Publish")}},
	// Secrets Manager.
	{"secretsmanager.amazonaws.com", "BatchGetSecretValue", `{"secretIdList":["a","b"]}`,
		[]Need{need("secretsmanager:BatchGetSecretValue"), need("secretsmanager:GetSecretValue")}},
	{"secretsmanager.amazonaws.com", "BatchGetSecretValue", `{"filters":[{"key":"name","values":["x"]}]}`,
		[]Need{need("secretsmanager:BatchGetSecretValue"), need("secretsmanager:GetSecretValue"), need("secretsmanager:ListSecrets")}},
	// CloudFront.
	{"cloudfront.amazonaws.com", "CreateDistributionWithTags2020_05_31", `{}`,
		[]Need{need("cloudfront:CreateDistribution"), need("cloudfront:TagResource")}},
	// Same-name actions botocore does not model.
	{"ssm.amazonaws.com", "UpdateInstanceInformation", `{}`, []Need{need("ssm:UpdateInstanceInformation")}},
	{"ssm.amazonaws.com", "ListInstanceAssociations", `{}`, []Need{need("ssm:ListInstanceAssociations")}},
	{"ssm.amazonaws.com", "UpdateInstanceAssociationStatus", `{}`, []Need{need("ssm:UpdateInstanceAssociationStatus")}},
	{"rds.amazonaws.com", "DescribeRecommendations", `{}`, []Need{need("rds:DescribeRecommendations")}},
	{"sts.amazonaws.com", "GetServiceBearerToken", `{}`, []Need{need("sts:GetServiceBearerToken")}},
	{"rds.amazonaws.com", "DescribeRecommendationGroups", `{}`, []Need{need("rds:DescribeRecommendationGroups")}},
	// Service events.
	{"secretsmanager.amazonaws.com", "StartSecretVersionDelete", `{}`, nil},
	{"secretsmanager.amazonaws.com", "EndSecretVersionDelete", `{}`, nil},
	{"secretsmanager.amazonaws.com", "CancelSecretVersionDelete", `{}`, nil},
	{"secretsmanager.amazonaws.com", "RotationStarted", `{}`, nil},
	{"secretsmanager.amazonaws.com", "RotationSucceeded", `{}`, nil},
	{"secretsmanager.amazonaws.com", "RotationFailed", `{}`, nil},
	{"secretsmanager.amazonaws.com", "RotationAbandoned", `{}`, nil},
	{"ec2.amazonaws.com", "SharedSnapshotVolumeCreated", `{}`, nil},
}

var ignoreSource = cmpopts.IgnoreFields(Need{}, "Source")

// generatedOnly is what Lookup answers without the overrides: the generated
// pair (after the dated-name rule), or unknown.
func generatedOnly(source, name string) ([]Need, bool) {
	t := theTables()
	if n, ok := t.pairs[eventKey{source, name}]; ok {
		return n, true
	}
	var base string
	var ok bool
	switch source {
	case "lambda.amazonaws.com":
		base, ok = stripLambdaVersion(name)
	case "cloudfront.amazonaws.com":
		base, ok = stripCloudFrontVersion(name)
	}
	if ok {
		n, ok := t.pairs[eventKey{source, base}]
		return n, ok
	}
	return nil, false
}

func TestOverrideCases(t *testing.T) {
	for _, c := range overrideCases {
		t.Run(c.source+"/"+c.name, func(t *testing.T) {
			got, known := Lookup(c.source, c.name, Params(c.params))
			if !known {
				t.Fatalf("Lookup(%s, %s) unknown, want %v", c.source, c.name, c.want)
			}
			if diff := cmp.Diff(c.want, got, ignoreSource, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Lookup(%s, %s, %s) (-want +got):\n%s", c.source, c.name, c.params, diff)
			}
			for _, n := range got {
				if n.Source == "" {
					t.Errorf("%s: need %s has no Source", c.name, n.Action)
				}
			}
			// Without the override the answer would differ: the case
			// tests the override, not the generated table.
			gen, genKnown := generatedOnly(c.source, c.name)
			if genKnown && cmp.Equal(c.want, gen, ignoreSource, cmpopts.EquateEmpty()) {
				t.Errorf("%s/%s: the generated table alone already answers %v: the case does not test the override", c.source, c.name, gen)
			}
		})
	}
}

// TestEveryOverrideHasACase: an override without a case in overrideCases
// fails here.
func TestEveryOverrideHasACase(t *testing.T) {
	cased := map[eventKey]bool{}
	for _, c := range overrideCases {
		name := c.name
		if b, ok := stripLambdaVersion(name); ok && c.source == "lambda.amazonaws.com" {
			name = b
		}
		if b, ok := stripCloudFrontVersion(name); ok && c.source == "cloudfront.amazonaws.com" {
			name = b
		}
		cased[eventKey{c.source, name}] = true
	}
	seen := map[eventKey]bool{}
	for _, o := range overrideList() {
		k := eventKey{o.source, o.name}
		if seen[k] {
			t.Errorf("override %s %s is listed twice", o.source, o.name)
		}
		seen[k] = true
		if !cased[k] {
			t.Errorf("override %s %s has no case in overrideCases", o.source, o.name)
		}
		if o.src == "" {
			t.Errorf("override %s %s has no Source", o.source, o.name)
		}
	}
}

// TestOverrideActionsExist: every action an override can return is in the
// IAM action list, spelled as the list (and every other answer) spells it,
// and every answer of the cases is among the override's declared actions.
func TestOverrideActionsExist(t *testing.T) {
	declared := map[eventKey][]string{}
	for _, o := range overrideList() {
		declared[eventKey{o.source, o.name}] = o.actions
		for _, a := range o.actions {
			ai, ok := Action(a)
			if !ok {
				t.Errorf("override %s %s: %s is not in the IAM action list", o.source, o.name, a)
				continue
			}
			if ai.Name != a {
				t.Errorf("override %s %s: %s is spelled %s elsewhere", o.source, o.name, a, ai.Name)
			}
		}
		for _, n := range o.fixed {
			if !slices.Contains(o.actions, n.Action) {
				t.Errorf("override %s %s: fixed need %s not declared", o.source, o.name, n.Action)
			}
		}
	}
	for _, c := range overrideCases {
		name := c.name
		if b, ok := stripLambdaVersion(name); ok && c.source == "lambda.amazonaws.com" {
			name = b
		}
		if b, ok := stripCloudFrontVersion(name); ok && c.source == "cloudfront.amazonaws.com" {
			name = b
		}
		got, _ := Lookup(c.source, c.name, Params(c.params))
		for _, n := range got {
			if !slices.Contains(declared[eventKey{c.source, name}], n.Action) {
				t.Errorf("%s %s answers %s, which its override does not declare", c.source, c.name, n.Action)
			}
		}
	}
}

// TestUndecidable: a call whose actions depend on parameters the event
// lacks is unknown, not guessed.
func TestUndecidable(t *testing.T) {
	for _, c := range []struct{ source, name, params string }{
		{"dynamodb.amazonaws.com", "ExecuteStatement", `{}`},
		{"dynamodb.amazonaws.com", "ExecuteStatement", `{"statement":"EXPLAIN x"}`},
		{"dynamodb.amazonaws.com", "TransactWriteItems", `{"requestItems":[{"operation":"Frobnicate"}]}`},
		{"dynamodb.amazonaws.com", "TransactWriteItems", ``},
	} {
		if n, known := Lookup(c.source, c.name, Params(c.params)); known {
			t.Errorf("Lookup(%s, %s, %s) = %v, known; want unknown", c.source, c.name, c.params, n)
		}
	}
}

// TestLambdaDatedNames: the dated event names Lambda logs (seen in real
// events: Invictus data, Stratus Red Team, public detection rules) lose their
// API-version suffix by rule.
func TestLambdaDatedNames(t *testing.T) {
	for name, want := range map[string]string{
		"AddPermission20150331v2":               "lambda:AddPermission",
		"CreateFunction20150331":                "lambda:CreateFunction",
		"DeleteFunction20150331":                "lambda:DeleteFunction",
		"GetFunction20150331v2":                 "lambda:GetFunction",
		"ListVersionsByFunction20150331":        "lambda:ListVersionsByFunction",
		"RemovePermission20150331v2":            "lambda:RemovePermission",
		"UpdateFunctionCode20150331v2":          "lambda:UpdateFunctionCode",
		"UpdateFunctionConfiguration20150331v2": "lambda:UpdateFunctionConfiguration",
		"ListFunctions20150331":                 "lambda:ListFunctions",
		"GetPolicy20150331v2":                   "lambda:GetPolicy",
		"PublishLayerVersion20181031":           "lambda:PublishLayerVersion",
		"ListLayers20181031":                    "lambda:ListLayers",
		"GetFunctionCodeSigningConfig":          "lambda:GetFunctionCodeSigningConfig", // undated
		"CreateEventSourceMapping20150331":      "lambda:CreateEventSourceMapping",
		"GetFunctionConfiguration20150331v2":    "lambda:GetFunctionConfiguration",
	} {
		got, known := Lookup("lambda.amazonaws.com", name, nil)
		if !known || len(got) == 0 || got[0].Action != want {
			t.Errorf("Lookup(lambda, %s) = %v, %v; want %s first", name, got, known, want)
		}
	}
	for _, bad := range []string{"Frobnicate20150331", "20150331", "GetFunction2015033", "GetFunction20150331x2"} {
		if got, known := Lookup("lambda.amazonaws.com", bad, nil); known {
			t.Errorf("Lookup(lambda, %s) = %v, known; want unknown", bad, got)
		}
	}
	// The rule is Lambda's (and CloudFront's) only.
	if got, known := Lookup("s3.amazonaws.com", "GetObject20150331", nil); known {
		t.Errorf("Lookup(s3, GetObject20150331) = %v, known", got)
	}
	if got, known := Lookup("cloudfront.amazonaws.com", "GetDistribution2020_05_31", nil); !known || got[0].Action != "cloudfront:GetDistribution" {
		t.Errorf("Lookup(cloudfront, GetDistribution2020_05_31) = %v, %v", got, known)
	}
}

// TestEventSources: the generated table's eventSource and prefix exceptions
// (research §3.7) and plain 1:1 pairs.
func TestEventSources(t *testing.T) {
	for _, c := range []struct{ source, name, want string }{
		{"monitoring.amazonaws.com", "DescribeAlarms", "cloudwatch:DescribeAlarms"},
		{"monitoring.amazonaws.com", "PutMetricData", "cloudwatch:PutMetricData"},
		{"cloudcontrolapi.amazonaws.com", "GetResource", "cloudformation:GetResource"},
		{"cloudcontrolapi.amazonaws.com", "CreateResource", "cloudformation:CreateResource"},
		{"ecr.amazonaws.com", "GetAuthorizationToken", "ecr:GetAuthorizationToken"},
		{"ecr.amazonaws.com", "BatchGetImage", "ecr:BatchGetImage"},
		{"ecr-public.amazonaws.com", "CreateRepository", "ecr-public:CreateRepository"},
		{"s3.amazonaws.com", "GetStorageLensConfiguration", "s3:GetStorageLensConfiguration"}, // s3control
		{"s3.amazonaws.com", "ListAccessPoints", "s3:ListAccessPoints"},
		{"s3.amazonaws.com", "PutObject", "s3:PutObject"},
		{"ses.amazonaws.com", "SendEmail", "ses:SendEmail"},
		{"bedrock.amazonaws.com", "InvokeModel", "bedrock:InvokeModel"},
		{"sagemaker.amazonaws.com", "CreateTrainingJob", "sagemaker:CreateTrainingJob"},
		{"lex.amazonaws.com", "PutBot", "lex:PutBot"},
		{"dynamodb.amazonaws.com", "GetRecords", "dynamodb:GetRecords"},
		{"tagging.amazonaws.com", "GetResources", "tag:GetResources"},
		{"apigateway.amazonaws.com", "GetRestApis", "apigateway:GET"},
		{"apigateway.amazonaws.com", "CreateDeployment", "apigateway:POST"},
		{"iam.amazonaws.com", "CreateRole", "iam:CreateRole"},
		{"kms.amazonaws.com", "Decrypt", "kms:Decrypt"},
		{"ssm.amazonaws.com", "GetParameter", "ssm:GetParameter"},
		{"logs.amazonaws.com", "CreateLogStream", "logs:CreateLogStream"},
		{"s3.amazonaws.com", "GetBucketCors", "s3:GetBucketCORS"},
		{"s3.amazonaws.com", "GetBucketAcl", "s3:GetBucketAcl"},
	} {
		got, known := Lookup(c.source, c.name, nil)
		if diff := cmp.Diff([]Need{need(c.want)}, got); !known || diff != "" {
			t.Errorf("Lookup(%s, %s) known=%v (-want +got):\n%s", c.source, c.name, known, diff)
		}
	}
	for _, c := range []struct{ source, name string }{
		{"s3.amazonaws.com", "Frobnicate"},
		{"nosuch.amazonaws.com", "GetObject"},
		{"api.ecr.amazonaws.com", "GetAuthorizationToken"}, // the endpoint, not the eventSource
		{"", ""},
	} {
		if got, known := Lookup(c.source, c.name, nil); known {
			t.Errorf("Lookup(%q, %q) = %v, known; want unknown", c.source, c.name, got)
		}
	}
	if p, ok := EventSourcePrefix("monitoring.amazonaws.com"); !ok || p != "cloudwatch" {
		t.Errorf("EventSourcePrefix(monitoring) = %q, %v", p, ok)
	}
}

// TestSignin: console sign-in events need no permission.
func TestSignin(t *testing.T) {
	for _, name := range []string{"ConsoleLogin", "CheckMfa", "SwitchRole", "ExitRole", "RenewRole"} {
		if got, known := Lookup("signin.amazonaws.com", name, nil); !known || len(got) != 0 {
			t.Errorf("Lookup(signin, %s) = %v, %v; want known, none", name, got, known)
		}
	}
}

func TestAction(t *testing.T) {
	ai, ok := Action("S3:GETOBJECT")
	if !ok || ai.Name != "s3:GetObject" {
		t.Fatalf("Action(S3:GETOBJECT) = %+v, %v", ai, ok)
	}
	var types []string
	for _, rt := range ai.ResourceTypes {
		types = append(types, rt.Name)
		if rt.Name == "object" && !slices.Contains(rt.ARNFormats, "arn:${Partition}:s3:::.*") {
			t.Errorf("object ARN formats = %v", rt.ARNFormats)
		}
	}
	if diff := cmp.Diff([]string{"accesspointobject", "object"}, types); diff != "" {
		t.Errorf("s3:GetObject resource types (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{
		"s3:listallmybuckets":       "s3:ListAllMyBuckets", // override spelling
		"s3:listbucket":             "s3:ListBucket",
		"s3:getbucketcors":          "s3:GetBucketCORS", // generator spelling table
		"s3:putbucketcors":          "s3:PutBucketCORS",
		"iam:passrole":              "iam:PassRole",
		"apigateway:get":            "apigateway:GET",
		"sts:getservicebearertoken": "sts:GetServiceBearerToken",
		"lambda:invokefunction":     "lambda:InvokeFunction",
	} {
		if ai, ok := Action(name); !ok || ai.Name != want {
			t.Errorf("Action(%s) = %q, %v; want %q", name, ai.Name, ok, want)
		}
	}
	if ai, ok := Action("s3:ListAllMyBuckets"); !ok || len(ai.ResourceTypes) != 0 {
		t.Errorf("s3:ListAllMyBuckets = %+v: want no resource type", ai)
	}
	if ai, ok := Action("lambda:CreateFunction"); !ok || len(ai.ResourceTypes) != 1 || ai.ResourceTypes[0].ARNFormats[0] != "arn:${Partition}:lambda:${Region}:${Account}:function:.*" {
		t.Errorf("lambda:CreateFunction = %+v", ai)
	}
	for _, bad := range []string{"s3:HeadBucket", "s3:ListObjectsV2", "dynamodb:TransactWriteItems", "", "s3", "s3:"} {
		if _, ok := Action(bad); ok {
			t.Errorf("Action(%q) found; it is not an IAM action", bad)
		}
	}
}

// TestGeneratedPairsResolve: every generated pair names an action of the
// IAM list, spelled as Action spells it.
func TestGeneratedPairsResolve(t *testing.T) {
	tb := theTables()
	if len(tb.pairs) != actionMapPairs || len(tb.actions) != actionMapActions {
		t.Errorf("parsed %d pairs, %d actions; the generated file says %d, %d", len(tb.pairs), len(tb.actions), actionMapPairs, actionMapActions)
	}
	for k, n := range tb.pairs {
		ai, ok := Action(n[0].Action)
		if !ok || ai.Name != n[0].Action {
			t.Errorf("%v -> %s: Action = %q, %v", k, n[0].Action, ai.Name, ok)
		}
	}
}

func TestParams(t *testing.T) {
	p := Params(`{"a":"x\"y\u00e9","n":42,"f":1.5,"z":null,"o":{"b":"c"},"arr":[{"s":"t"},"u"],"t":true}`)
	for _, c := range []struct {
		path []string
		want string
		ok   bool
		has  bool
	}{
		{[]string{"a"}, "x\"yé", true, true},
		{[]string{"n"}, "42", true, true},
		{[]string{"f"}, "1.5", true, true},
		{[]string{"z"}, "", false, false},
		{[]string{"o"}, "", false, true},
		{[]string{"o", "b"}, "c", true, true},
		{[]string{"arr", "[0]", "s"}, "t", true, true},
		{[]string{"arr", "[1]"}, "u", true, true},
		{[]string{"arr", "[2]"}, "", false, false},
		{[]string{"t"}, "", false, true},
		{[]string{"missing"}, "", false, false},
		{[]string{"o", "missing"}, "", false, false},
	} {
		got, ok := p.String(c.path...)
		if got != c.want || ok != c.ok {
			t.Errorf("String(%v) = %q, %v; want %q, %v", c.path, got, ok, c.want, c.ok)
		}
		if has := p.Has(c.path...); has != c.has {
			t.Errorf("Has(%v) = %v, want %v", c.path, has, c.has)
		}
	}
	for _, empty := range []Params{nil, Params(""), Params("null"), Params("{"), Params("[1,2]")} {
		if _, ok := empty.String("a"); ok || empty.Has("a") {
			t.Errorf("Params(%q) has a", empty)
		}
	}
}

func FuzzParams(f *testing.F) {
	f.Add([]byte(`{"a":{"b":["c",1]}}`), "a", "b")
	f.Add([]byte(`{"statement":"SELECT"}`), "statement", "")
	f.Add([]byte(`{"requestItems":[{"operation":"Put"}]}`), "requestItems", "[0]")
	f.Add([]byte(`{"a":"\u00`), "a", "")
	f.Fuzz(func(t *testing.T, data []byte, k1, k2 string) {
		p := Params(data)
		p.String(k1)
		p.String(k1, k2)
		p.Has(k1, k2)
		for _, src := range []string{"dynamodb.amazonaws.com"} {
			for _, name := range []string{"TransactWriteItems", "ExecuteStatement", "BatchExecuteStatement"} {
				Lookup(src, name, p)
			}
		}
		Lookup("s3.amazonaws.com", "CopyObject", p)
		Lookup("ecs.amazonaws.com", "RunTask", p)
	})
}

// TestRealEvents reports how the distinct (eventSource, eventName) pairs of
// the real Invictus CloudTrail data resolve, and fails on an unknown
// AwsApiCall pair.
func TestRealEvents(t *testing.T) {
	files, _ := filepath.Glob("../audit/testdata/real/invictus/*.json")
	if len(files) == 0 {
		files, _ = filepath.Glob("/work/shared/data/cloudtrail/invictus-aws-dataset/CloudTrail/*.json")
	}
	if len(files) == 0 {
		t.Skip("no Invictus data")
	}
	type key struct{ source, name, typ string }
	params := map[key][]json.RawMessage{}
	events := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Records []struct {
				EventSource, EventName, EventType string
				RequestParameters                 json.RawMessage
			}
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range d.Records {
			k := key{r.EventSource, r.EventName, r.EventType}
			params[k] = append(params[k], r.RequestParameters)
			events++
		}
	}
	var resolved, none, unknown []string
	for k, ps := range params {
		label := k.source + " " + k.name + " (" + k.typ + ")"
		state := ""
		for _, p := range ps { // the worst answer over the pair's events
			n, known := Lookup(k.source, k.name, Params(p))
			switch {
			case !known:
				state = "unknown"
			case len(n) == 0 && state == "":
				state = "none"
			case state == "":
				state = "resolved"
			}
		}
		switch state {
		case "unknown":
			unknown = append(unknown, label)
		case "none":
			none = append(none, label)
		default:
			resolved = append(resolved, label)
		}
	}
	sort.Strings(none)
	sort.Strings(unknown)
	t.Logf("%d events, %d distinct pairs: %d resolve, %d need no permission, %d unknown", events, len(params), len(resolved), len(none), len(unknown))
	t.Logf("no permission: %s", strings.Join(none, "; "))
	for _, u := range unknown {
		if strings.HasSuffix(u, "(AwsApiCall)") {
			t.Errorf("unknown AwsApiCall pair: %s", u)
		} else {
			t.Logf("unknown: %s", u)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	theTables()
	calls := []struct {
		source, name string
		p            Params
	}{
		{"s3.amazonaws.com", "GetObject", Params(`{"bucketName":"artifacts","Host":"artifacts.s3.amazonaws.com","key":"builds/123/app.tar.gz"}`)},
		{"s3.amazonaws.com", "PutObject", Params(`{"bucketName":"artifacts","key":"builds/123/app.tar.gz"}`)},
		{"sts.amazonaws.com", "GetCallerIdentity", nil},
		{"lambda.amazonaws.com", "UpdateFunctionCode20150331v2", Params(`{"functionName":"f","publish":true}`)},
		{"ecr.amazonaws.com", "BatchGetImage", Params(`{"repositoryName":"app"}`)},
		{"kms.amazonaws.com", "Decrypt", Params(`{"encryptionContext":{"PARAMETER_ARN":"arn:aws:ssm:us-east-1:1:parameter/x"}}`)},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := calls[i%len(calls)]
		Lookup(c.source, c.name, c.p)
		i++
	}
}

func BenchmarkBuildTables(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		buildTables()
	}
}
