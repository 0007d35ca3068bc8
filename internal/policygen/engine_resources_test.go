package policygen

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDeriveResources(t *testing.T) {
	const (
		acct = "111122223333"
		key  = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	)
	kmsRes := `[{"ARN":"` + key + `","accountId":"111122223333","type":"AWS::KMS::Key"}]`
	tests := []struct {
		name      string
		need      Need
		event     string // eventName
		req       string
		resources string
		resp      string
		region    string
		want      []string
		note      string // a substring of the note, when "*"
	}{
		{name: "s3 object", need: Need{Action: "s3:GetObject"}, req: `{"bucketName":"artifacts","key":"builds/a b.zip"}`,
			want: []string{"arn:aws:s3:::artifacts/builds/a b.zip"}},
		{name: "s3 bucket", need: Need{Action: "s3:ListBucket"}, req: `{"bucketName":"artifacts","prefix":"builds/"}`,
			want: []string{"arn:aws:s3:::artifacts"}},
		{name: "s3 copy source", need: Need{Action: "s3:GetObject", On: "source"},
			req:  `{"bucketName":"dst","key":"k","x-amz-copy-source":"/src-bucket/dir/o%20bj.txt?versionId=3"}`,
			want: []string{"arn:aws:s3:::src-bucket/dir/o bj.txt"}},
		{name: "s3 DeleteObjects: keys not logged", need: Need{Action: "s3:DeleteObject"}, req: `{"bucketName":"artifacts","delete":""}`,
			want: []string{"arn:aws:s3:::artifacts/*"}},
		{name: "s3 ListAllMyBuckets has no resource type", need: Need{Action: "s3:ListAllMyBuckets"}, req: `{}`,
			want: []string{"*"}},
		{name: "s3 china partition", need: Need{Action: "s3:GetObject"}, region: "cn-north-1", req: `{"bucketName":"b","key":"k"}`,
			want: []string{"arn:aws-cn:s3:::b/k"}},
		{name: "ecr repository", need: Need{Action: "ecr:PutImage"}, req: `{"repositoryName":"app","imageTag":"v1"}`,
			want: []string{"arn:aws:ecr:eu-west-1:111122223333:repository/app"}},
		{name: "ecr other registry", need: Need{Action: "ecr:BatchGetImage"}, req: `{"repositoryName":"base/go","registryId":"999988887777"}`,
			want: []string{"arn:aws:ecr:eu-west-1:999988887777:repository/base/go"}},
		{name: "ecr GetAuthorizationToken", need: Need{Action: "ecr:GetAuthorizationToken"}, req: `{}`, want: []string{"*"}},
		{name: "ecs service", need: Need{Action: "ecs:UpdateService"}, req: `{"cluster":"prod","service":"web","forceNewDeployment":true}`,
			want: []string{"arn:aws:ecs:eu-west-1:111122223333:service/prod/web"}},
		{name: "ecs service, cluster ARN", need: Need{Action: "ecs:UpdateService"},
			req:  `{"cluster":"arn:aws:ecs:eu-west-1:111122223333:cluster/prod","service":"web"}`,
			want: []string{"arn:aws:ecs:eu-west-1:111122223333:service/prod/web"}},
		{name: "ecs task definition family", need: Need{Action: "ecs:RunTask"}, req: `{"cluster":"prod","taskDefinition":"migrate"}`,
			want: []string{"arn:aws:ecs:eu-west-1:111122223333:task-definition/migrate:*"}},
		{name: "ecs task definition revision", need: Need{Action: "ecs:RunTask"}, req: `{"taskDefinition":"migrate:7"}`,
			want: []string{"arn:aws:ecs:eu-west-1:111122223333:task-definition/migrate:7"}},
		{name: "ecs describe clusters default", need: Need{Action: "ecs:DescribeClusters"}, req: `{}`,
			want: []string{"arn:aws:ecs:eu-west-1:111122223333:cluster/default"}},
		{name: "lambda name", need: Need{Action: "lambda:UpdateFunctionCode"}, req: `{"functionName":"web-fn","publish":true}`,
			want: []string{"arn:aws:lambda:eu-west-1:111122223333:function:web-fn"}},
		{name: "lambda ARN with qualifier", need: Need{Action: "lambda:InvokeFunction"},
			req:  `{"functionName":"arn:aws:lambda:us-east-1:444455556666:function:f:prod"}`,
			want: []string{"arn:aws:lambda:us-east-1:444455556666:function:f", "arn:aws:lambda:us-east-1:444455556666:function:f:prod"}},
		{name: "lambda partial ARN", need: Need{Action: "lambda:GetFunction"}, req: `{"functionName":"444455556666:function:f"}`,
			want: []string{"arn:aws:lambda:eu-west-1:444455556666:function:f"}},
		{name: "cloudformation stack name", need: Need{Action: "cloudformation:UpdateStack"}, req: `{"stackName":"app"}`,
			want: []string{"arn:aws:cloudformation:eu-west-1:111122223333:stack/app/*"}},
		{name: "cloudformation stack id", need: Need{Action: "cloudformation:DescribeStacks"},
			req:  `{"stackName":"arn:aws:cloudformation:eu-west-1:111122223333:stack/app/0a1b-2c3d"}`,
			want: []string{"arn:aws:cloudformation:eu-west-1:111122223333:stack/app/*"}},
		{name: "dynamodb table", need: Need{Action: "dynamodb:PutItem"}, req: `{"tableName":"web-sessions"}`,
			want: []string{"arn:aws:dynamodb:eu-west-1:111122223333:table/web-sessions"}},
		{name: "dynamodb index", need: Need{Action: "dynamodb:Query"}, req: `{"tableName":"t","indexName":"by-user"}`,
			want: []string{"arn:aws:dynamodb:eu-west-1:111122223333:table/t/index/by-user"}},
		{name: "dynamodb batch", need: Need{Action: "dynamodb:BatchGetItem"}, req: `{"requestItems":{"a":{},"b":{}}}`,
			want: []string{"arn:aws:dynamodb:eu-west-1:111122223333:table/a", "arn:aws:dynamodb:eu-west-1:111122223333:table/b"}},
		{name: "sqs queue url", need: Need{Action: "sqs:SendMessage"}, req: `{"queueUrl":"https://sqs.us-east-2.amazonaws.com/444455556666/jobs.fifo"}`,
			want: []string{"arn:aws:sqs:us-east-2:444455556666:jobs.fifo"}},
		{name: "sqs legacy url", need: Need{Action: "sqs:ReceiveMessage"}, req: `{"queueUrl":"https://eu-west-1.queue.amazonaws.com/111122223333/jobs"}`,
			want: []string{"arn:aws:sqs:eu-west-1:111122223333:jobs"}},
		{name: "sns topic", need: Need{Action: "sns:Publish"}, req: `{"topicArn":"arn:aws:sns:eu-west-1:111122223333:deploys"}`,
			want: []string{"arn:aws:sns:eu-west-1:111122223333:deploys"}},
		{name: "ssm parameter with leading slash", need: Need{Action: "ssm:GetParameter"}, req: `{"name":"/app/db/pw","withDecryption":true}`,
			want: []string{"arn:aws:ssm:eu-west-1:111122223333:parameter/app/db/pw"}},
		{name: "ssm parameter without slash", need: Need{Action: "ssm:GetParameter"}, req: `{"name":"token"}`,
			want: []string{"arn:aws:ssm:eu-west-1:111122223333:parameter/token"}},
		{name: "ssm GetParameters", need: Need{Action: "ssm:GetParameters"}, req: `{"names":["/a/x","b"]}`,
			want: []string{"arn:aws:ssm:eu-west-1:111122223333:parameter/a/x", "arn:aws:ssm:eu-west-1:111122223333:parameter/b"}},
		{name: "ssm GetParametersByPath", need: Need{Action: "ssm:GetParametersByPath"}, req: `{"path":"/app/","recursive":true}`,
			want: []string{"arn:aws:ssm:eu-west-1:111122223333:parameter/app/*"}},
		{name: "secret by name", need: Need{Action: "secretsmanager:GetSecretValue"}, req: `{"secretId":"ci/token"}`,
			want: []string{"arn:aws:secretsmanager:eu-west-1:111122223333:secret:ci/token-??????"}},
		{name: "secret by ARN", need: Need{Action: "secretsmanager:GetSecretValue"},
			req:  `{"secretId":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:ci/token-AbCdEf"}`,
			want: []string{"arn:aws:secretsmanager:eu-west-1:111122223333:secret:ci/token-AbCdEf"}},
		{name: "kms key from resources", need: Need{Action: "kms:Decrypt"}, req: `{"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}`, resources: kmsRes,
			want: []string{key}},
		{name: "kms key id", need: Need{Action: "kms:Encrypt"}, req: `{"keyId":"1234abcd-12ab-34cd-56ef-1234567890ab"}`,
			want: []string{key}},
		{name: "kms alias: the key from resources", need: Need{Action: "kms:Encrypt"}, req: `{"keyId":"alias/ci"}`, resources: kmsRes,
			want: []string{key}},
		{name: "kms alias without resources", need: Need{Action: "kms:Encrypt"}, req: `{"keyId":"alias/ci"}`,
			want: []string{"*"}, note: "not in the event"},
		{name: "kms ReEncrypt source", need: Need{Action: "kms:ReEncryptFrom", On: "source"},
			req: `{"sourceKeyId":"` + key + `","destinationKeyId":"k2"}`, want: []string{key}},
		{name: "logs group", need: Need{Action: "logs:CreateLogGroup"}, req: `{"logGroupName":"/ci/app"}`,
			want: []string{"arn:aws:logs:eu-west-1:111122223333:log-group:/ci/app", "arn:aws:logs:eu-west-1:111122223333:log-group:/ci/app:*"}},
		{name: "logs stream", need: Need{Action: "logs:PutLogEvents"}, req: `{"logGroupName":"/ci/app","logStreamName":"run-1"}`,
			want: []string{"arn:aws:logs:eu-west-1:111122223333:log-group:/ci/app:log-stream:run-1"}},
		{name: "passrole ARN", need: Need{Action: "iam:PassRole", On: "passrole", PassRoleParam: []string{"role"}},
			req: `{"functionName":"f","role":"arn:aws:iam::111122223333:role/lambda-exec"}`, want: []string{"arn:aws:iam::111122223333:role/lambda-exec"}},
		{name: "passrole by name", need: Need{Action: "iam:PassRole", On: "passrole", PassRoleParam: []string{"roleName"}},
			req: `{"roleName":"exec"}`, want: []string{"arn:aws:iam::111122223333:role/*exec"}},
		{name: "passrole not logged", need: Need{Action: "iam:PassRole", On: "passrole"}, event: "RunInstances",
			req: `{}`, want: []string{"*"}, note: "not logged"},
		{name: "iam role from response", need: Need{Action: "iam:CreateRole"}, req: `{"roleName":"r"}`,
			resp: `{"role":{"arn":"arn:aws:iam::111122223333:role/svc/r"}}`, want: []string{"arn:aws:iam::111122223333:role/svc/r"}},
		{name: "iam role by name", need: Need{Action: "iam:GetRole"}, req: `{"roleName":"r"}`,
			want: []string{"arn:aws:iam::111122223333:role/*r"}},
		{name: "sts AssumeRole", need: Need{Action: "sts:AssumeRole"}, req: `{"roleArn":"arn:aws:iam::444455556666:role/x","roleSessionName":"s"}`,
			want: []string{"arn:aws:iam::444455556666:role/x"}},
		{name: "ec2 instance", need: Need{Action: "ec2:StopInstances"}, req: `{"instancesSet":{"items":[{"instanceId":"i-1"},{"instanceId":"i-2"}]}}`,
			want: []string{"arn:aws:ec2:eu-west-1:111122223333:instance/i-1", "arn:aws:ec2:eu-west-1:111122223333:instance/i-2"}},
		{name: "unknown resource", need: Need{Action: "s3:GetObject"}, req: `{}`, want: []string{"*"}, note: "not in the event"},
		{name: "not an IAM action", need: Need{Action: "s3:NoSuchAction"}, req: `{}`, want: []string{"*"}, note: "not in the IAM action list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			region := tc.region
			if region == "" {
				region = "eu-west-1"
			}
			c := &callCtx{source: []byte("x.amazonaws.com"), name: []byte(tc.event), region: region, account: acct,
				partition: partitionOf(region, ""), req: Params(tc.req), resp: []byte(tc.resp), resources: []byte(tc.resources)}
			info, ok := Action(tc.need.Action)
			got := deriveResources(tc.need, info, ok, c, nil)
			var arns []string
			var notes []string
			for _, r := range got {
				arns = append(arns, r.arn)
				if r.note != "" {
					notes = append(notes, r.note)
				}
				if strings.Contains(r.arn, "${") {
					t.Errorf("unfilled placeholder in %s", r.arn)
				}
			}
			if diff := cmp.Diff(tc.want, arns); diff != "" {
				t.Errorf("ARNs (-want +got):\n%s", diff)
			}
			if tc.note != "" && !strings.Contains(strings.Join(notes, ";"), tc.note) {
				t.Errorf("notes %q, want one with %q", notes, tc.note)
			}
			if tc.note == "" && len(arns) == 1 && arns[0] == "*" && len(notes) > 0 {
				t.Errorf("a no-resource action got a note: %q", notes)
			}
		})
	}
}
