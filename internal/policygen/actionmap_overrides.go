package policygen

import "strings"

// override is a hand-written mapping of one (eventSource, eventName).
type override struct {
	source, name string
	src          string   // where the fact comes from
	actions      []string // every action the override can return, in IAM's spelling
	fixed        []Need   // the needs, when they do not depend on the parameters
	// dyn computes the needs from the parameters (nil: fixed). An empty
	// answer means the parameters do not tell (Lookup then reports the
	// call as unknown rather than guess).
	dyn func(p Params) []Need
}

func (o *override) needs(p Params) []Need {
	if o.dyn == nil {
		return o.fixed
	}
	n := o.dyn(p)
	for i := range n {
		if n[i].Source == "" { // fresh needs; prebuilt ones carry their Source
			n[i].Source = o.src
		}
	}
	return n
}

// Sources cited by the overrides. "research" is
// /work/shared/research/least-privilege-audit.md (project research notes),
// whose §3.8 table gives the evidence for each row.
const (
	srcS3List      = "S3 API reference (ListObjectsV2, ListObjects: permission s3:ListBucket); research §3.8 (iamlive map, TrailScraper)"
	srcS3Version   = "S3 API reference (GetObject/HeadObject/DeleteObject/…Acl/…Tagging: a versionId needs the …Version action); research §3.8 (iamlive map)"
	srcS3Head      = "S3 API reference HeadBucket (s3:ListBucket); HeadObject (s3:GetObject); research §3.8; s3:HeadBucket is not an IAM action (Policies.json)"
	srcS3Buckets   = "S3 API reference ListBuckets (s3:ListAllMyBuckets); research §3.8"
	srcS3Copy      = "S3 API reference CopyObject/UploadPartCopy (read the source, write the destination); research §3.8 (iamlive map)"
	srcS3Multipart = "S3 user guide 'Multipart upload API and permissions' (parts and completion need s3:PutObject; ListParts s3:ListMultipartUploadParts; ListMultipartUploads s3:ListBucketMultipartUploads); research §3.8"
	srcS3DeleteObj = "S3 API reference DeleteObjects (s3:DeleteObject per key); key names are not logged (S3 user guide, CloudTrail logging)"
	srcS3Config    = "S3 user guide 'Policy actions for Amazon S3' (bucket sub-resource actions: …Configuration names; Delete… needs the Put… action); CloudTrail logs the legacy names (research §3.8, Invictus data); names checked in Policies.json"
	srcS3Select    = "S3 API reference SelectObjectContent (s3:GetObject)"
	srcS3Attrs     = "S3 API reference GetObjectAttributes (s3:GetObject + s3:GetObjectAttributes; with a version: s3:GetObjectVersion + s3:GetObjectVersionAttributes)"
	srcNoAction    = "no IAM action: a console-internal call or an AwsServiceEvent (research §3.8, Invictus data; ECR: re:Post on PolicyExecutionEvent; Secrets Manager user guide: events without a caller)"
	srcKMS         = "KMS API reference ReEncrypt (kms:ReEncryptFrom on the source key, kms:ReEncryptTo on the destination key); TrailScraper issue #27; iamlive map"
	srcSTSNone     = "STS API reference GetCallerIdentity ('No permissions are required'); GetSessionToken (authentication call; iam-dataset permissionless list, CloudTracker NO_IAM)"
	srcSTSWebID    = "IAM user guide: AssumeRoleWithWebIdentity/AssumeRoleWithSAML are unauthenticated calls governed by the role's trust policy, not by an identity policy"
	srcSTSAssume   = "IAM user guide (passing session tags: sts:TagSession; source identity: sts:SetSourceIdentity); STS API reference AssumeRole"
	srcCodeArt     = "IAM user guide 'Service bearer tokens' (CodeArtifact GetAuthorizationToken also needs sts:GetServiceBearerToken); research §3.8"
	srcLambdaInv   = "Lambda API reference Invoke and InvokeWithResponseStream (permission lambda:InvokeFunction); iamlive map"
	srcLambdaLayer = "Lambda API reference GetLayerVersionByArn (permission lambda:GetLayerVersion)"
	srcPassRole    = "IAM user guide 'Granting a user permissions to pass a role' (iam:PassRole is checked, never logged); Access Analyzer policy generation doc; iamlive map"
	srcEC2Profile  = "IAM user guide 'Using instance profiles' (launching with a profile needs iam:PassRole on its role); the event names the profile, not the role"
	srcDDBTx       = "DynamoDB developer guide 'Using IAM with transactions' (TransactWriteItems/TransactGetItems need the per-item actions; no dynamodb:Transact* action); log format: DynamoDB guide CloudTrail samples"
	srcDDBPartiQL  = "DynamoDB developer guide 'IAM policies with PartiQL' (dynamodb:PartiQLSelect/Insert/Update/Delete by statement verb); log format: DynamoDB guide CloudTrail samples (statement kept, values redacted)"
	srcDDBNone     = "iam-dataset permissionless list (DescribeEndpoints needs no permission)"
	srcSQSBatch    = "SQS API reference (batch actions use the permission of the single action); Policies.json has no …Batch action"
	srcSNSBatch    = "SNS API reference PublishBatch (permission sns:Publish); Policies.json has no sns:PublishBatch"
	srcSMBatch     = "Secrets Manager API reference BatchGetSecretValue (needs secretsmanager:BatchGetSecretValue and GetSecretValue on each secret; ListSecrets with filters)"
	srcSameName    = "an IAM action of the same name (Policies.json) for a call botocore does not model"
	srcSSMAgent    = srcSameName + ": SSM Agent calls, granted by the AmazonSSMManagedInstanceCore managed policy (moto aws_managed_policies); real events in the Invictus data"
	srcRDSConsole  = srcSameName + ": RDS console recommendation calls; real events in the Invictus data"
	srcCFWithTags  = "CloudFront API reference CreateDistributionWithTags (cloudfront:CreateDistribution and cloudfront:TagResource)"
)

// ovFixed maps a call to actions that apply to the call's own
// resource.
func ovFixed(source, name, src string, actions ...string) *override {
	o := &override{source: source, name: name, src: src, actions: actions}
	for _, a := range actions {
		o.fixed = append(o.fixed, Need{Action: a, Source: src})
	}
	return o
}

// ovNone: the call needs no permission.
func ovNone(source, name, src string) *override {
	return &override{source: source, name: name, src: src}
}

func ovDyn(source, name, src string, actions []string, f func(Params) []Need) *override {
	return &override{source: source, name: name, src: src, actions: actions, dyn: f}
}

// ovVersioned: plain, or version when the call names a versionId.
func ovVersioned(name, src, plain, version string) *override {
	plainNeeds := []Need{{Action: plain, Source: src}}
	versionNeeds := []Need{{Action: version, Source: src}}
	return ovDyn(s3src, name, src, []string{plain, version}, func(p Params) []Need {
		if p.Has("versionId") {
			return versionNeeds
		}
		return plainNeeds
	})
}

// ovPassRole adds iam:PassRole for the role at each path the parameters hold.
func ovPassRole(source, name, action string, paths ...[]string) *override {
	return ovDyn(source, name, srcPassRole, []string{action, "iam:PassRole"}, func(p Params) []Need {
		n := []Need{{Action: action}}
		for _, path := range paths {
			if p.Has(path...) {
				n = append(n, Need{Action: "iam:PassRole", On: OnPassRole, PassRoleParam: path})
			}
		}
		return n
	})
}

const (
	s3src     = "s3.amazonaws.com"
	stsSrc    = "sts.amazonaws.com"
	lambdaSrc = "lambda.amazonaws.com"
	ddbSrc    = "dynamodb.amazonaws.com"
)

// overrideList is the hand-written table. Every action it names must be in
// the IAM action list (TestOverrideActionsExist).
func overrideList() []*override {
	o := []*override{
		// S3: names that are not the action.
		ovFixed(s3src, "ListObjects", srcS3List, "s3:ListBucket"),
		ovFixed(s3src, "ListObjectsV2", srcS3List, "s3:ListBucket"),
		ovFixed(s3src, "ListObjectVersions", srcS3List, "s3:ListBucketVersions"),
		ovFixed(s3src, "HeadBucket", srcS3Head, "s3:ListBucket"),
		ovFixed(s3src, "ListBuckets", srcS3Buckets, "s3:ListAllMyBuckets"),
		ovVersioned("HeadObject", srcS3Head+"; "+srcS3Version, "s3:GetObject", "s3:GetObjectVersion"),
		ovVersioned("GetObject", srcS3Version, "s3:GetObject", "s3:GetObjectVersion"),
		ovVersioned("DeleteObject", srcS3Version, "s3:DeleteObject", "s3:DeleteObjectVersion"),
		ovVersioned("GetObjectAcl", srcS3Version, "s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
		ovVersioned("PutObjectAcl", srcS3Version, "s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
		ovVersioned("GetObjectTagging", srcS3Version, "s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
		ovVersioned("PutObjectTagging", srcS3Version, "s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
		ovVersioned("DeleteObjectTagging", srcS3Version, "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
		ovDyn(s3src, "GetObjectAttributes", srcS3Attrs,
			[]string{"s3:GetObject", "s3:GetObjectAttributes", "s3:GetObjectVersion", "s3:GetObjectVersionAttributes"},
			func(p Params) []Need {
				if p.Has("versionId") {
					return []Need{{Action: "s3:GetObjectVersion"}, {Action: "s3:GetObjectVersionAttributes"}}
				}
				return []Need{{Action: "s3:GetObject"}, {Action: "s3:GetObjectAttributes"}}
			}),
		ovFixed(s3src, "SelectObjectContent", srcS3Select, "s3:GetObject"),
		ovS3Copy("CopyObject"),
		ovS3Copy("UploadPartCopy"),
		ovFixed(s3src, "CreateMultipartUpload", srcS3Multipart, "s3:PutObject"),
		ovFixed(s3src, "UploadPart", srcS3Multipart, "s3:PutObject"),
		ovFixed(s3src, "CompleteMultipartUpload", srcS3Multipart, "s3:PutObject"),
		ovFixed(s3src, "ListParts", srcS3Multipart, "s3:ListMultipartUploadParts"),
		ovFixed(s3src, "ListMultipartUploads", srcS3Multipart, "s3:ListBucketMultipartUploads"),
		ovFixed(s3src, "DeleteObjects", srcS3DeleteObj, "s3:DeleteObject"),

		// S3 bucket configuration: logged (often legacy) names.
		ovFixed(s3src, "GetBucketLifecycle", srcS3Config, "s3:GetLifecycleConfiguration"),
		ovFixed(s3src, "GetBucketLifecycleConfiguration", srcS3Config, "s3:GetLifecycleConfiguration"),
		ovFixed(s3src, "PutBucketLifecycle", srcS3Config, "s3:PutLifecycleConfiguration"),
		ovFixed(s3src, "PutBucketLifecycleConfiguration", srcS3Config, "s3:PutLifecycleConfiguration"),
		ovFixed(s3src, "DeleteBucketLifecycle", srcS3Config, "s3:PutLifecycleConfiguration"),
		ovFixed(s3src, "DeleteBucketLifecycleConfiguration", srcS3Config, "s3:PutLifecycleConfiguration"),
		ovFixed(s3src, "GetAccelerateConfiguration", srcS3Config, "s3:GetAccelerateConfiguration"),
		ovFixed(s3src, "GetBucketAccelerateConfiguration", srcS3Config, "s3:GetAccelerateConfiguration"),
		ovFixed(s3src, "PutAccelerateConfiguration", srcS3Config, "s3:PutAccelerateConfiguration"),
		ovFixed(s3src, "PutBucketAccelerateConfiguration", srcS3Config, "s3:PutAccelerateConfiguration"),
		ovFixed(s3src, "DeleteBucketCors", srcS3Config, "s3:PutBucketCORS"),
		ovFixed(s3src, "GetBucketEncryption", srcS3Config, "s3:GetEncryptionConfiguration"),
		ovFixed(s3src, "PutBucketEncryption", srcS3Config, "s3:PutEncryptionConfiguration"),
		ovFixed(s3src, "DeleteBucketEncryption", srcS3Config, "s3:PutEncryptionConfiguration"),
		ovFixed(s3src, "GetBucketReplication", srcS3Config, "s3:GetReplicationConfiguration"),
		ovFixed(s3src, "PutBucketReplication", srcS3Config, "s3:PutReplicationConfiguration"),
		ovFixed(s3src, "DeleteBucketReplication", srcS3Config, "s3:PutReplicationConfiguration"),
		ovFixed(s3src, "GetBucketNotificationConfiguration", srcS3Config, "s3:GetBucketNotification"),
		ovFixed(s3src, "PutBucketNotificationConfiguration", srcS3Config, "s3:PutBucketNotification"),
		ovFixed(s3src, "DeleteBucketTagging", srcS3Config, "s3:PutBucketTagging"),
		ovFixed(s3src, "DeleteBucketOwnershipControls", srcS3Config+"; iamlive issue #89", "s3:PutBucketOwnershipControls"),
		ovFixed(s3src, "GetPublicAccessBlock", srcS3Config, "s3:GetBucketPublicAccessBlock"),
		ovFixed(s3src, "GetBucketPublicAccessBlock", srcS3Config, "s3:GetBucketPublicAccessBlock"),
		ovFixed(s3src, "PutPublicAccessBlock", srcS3Config, "s3:PutBucketPublicAccessBlock"),
		ovFixed(s3src, "PutBucketPublicAccessBlock", srcS3Config, "s3:PutBucketPublicAccessBlock"),
		ovFixed(s3src, "DeletePublicAccessBlock", srcS3Config, "s3:PutBucketPublicAccessBlock"),
		ovFixed(s3src, "DeleteBucketPublicAccessBlock", srcS3Config, "s3:PutBucketPublicAccessBlock"),
		ovFixed(s3src, "GetAccountPublicAccessBlock", srcS3Config, "s3:GetAccountPublicAccessBlock"),
		ovFixed(s3src, "PutAccountPublicAccessBlock", srcS3Config, "s3:PutAccountPublicAccessBlock"),
		ovFixed(s3src, "DeleteAccountPublicAccessBlock", srcS3Config, "s3:PutAccountPublicAccessBlock"),
		ovFixed(s3src, "GetObjectLockConfiguration", srcS3Config, "s3:GetBucketObjectLockConfiguration"),
		ovFixed(s3src, "GetBucketObjectLockConfiguration", srcS3Config, "s3:GetBucketObjectLockConfiguration"),
		ovFixed(s3src, "PutObjectLockConfiguration", srcS3Config, "s3:PutBucketObjectLockConfiguration"),
		ovFixed(s3src, "PutBucketObjectLockConfiguration", srcS3Config, "s3:PutBucketObjectLockConfiguration"),
		ovNone(s3src, "GetStorageLensDashboardDataInternal", srcNoAction),

		// KMS.
		ovDyn("kms.amazonaws.com", "ReEncrypt", srcKMS, []string{"kms:ReEncryptFrom", "kms:ReEncryptTo"}, func(Params) []Need {
			return []Need{{Action: "kms:ReEncryptFrom", On: OnSource}, {Action: "kms:ReEncryptTo", On: OnDestination}}
		}),

		// STS.
		ovNone(stsSrc, "GetCallerIdentity", srcSTSNone),
		ovNone(stsSrc, "GetSessionToken", srcSTSNone),
		ovNone(stsSrc, "AssumeRoleWithWebIdentity", srcSTSWebID),
		ovNone(stsSrc, "AssumeRoleWithSAML", srcSTSWebID),
		ovDyn(stsSrc, "AssumeRole", srcSTSAssume, []string{"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"}, func(p Params) []Need {
			n := []Need{{Action: "sts:AssumeRole"}}
			if p.Has("tags") || p.Has("transitiveTagKeys") {
				n = append(n, Need{Action: "sts:TagSession"})
			}
			if p.Has("sourceIdentity") {
				n = append(n, Need{Action: "sts:SetSourceIdentity"})
			}
			return n
		}),

		// Registries.
		ovNone("ecr.amazonaws.com", "PolicyExecutionEvent", srcNoAction),
		ovFixed("codeartifact.amazonaws.com", "GetAuthorizationToken", srcCodeArt,
			"codeartifact:GetAuthorizationToken", "sts:GetServiceBearerToken"),

		// Lambda (dated names are stripped by Lookup before these apply).
		ovFixed(lambdaSrc, "Invoke", srcLambdaInv, "lambda:InvokeFunction"),
		ovFixed(lambdaSrc, "InvokeWithResponseStream", srcLambdaInv, "lambda:InvokeFunction"),
		ovFixed(lambdaSrc, "GetLayerVersionByArn", srcLambdaLayer, "lambda:GetLayerVersion"),

		// iam:PassRole of the role a call passes.
		ovPassRole(lambdaSrc, "CreateFunction", "lambda:CreateFunction", []string{"role"}),
		ovPassRole(lambdaSrc, "UpdateFunctionConfiguration", "lambda:UpdateFunctionConfiguration", []string{"role"}),
		ovPassRole("cloudformation.amazonaws.com", "CreateStack", "cloudformation:CreateStack", []string{"roleARN"}),
		ovPassRole("cloudformation.amazonaws.com", "UpdateStack", "cloudformation:UpdateStack", []string{"roleARN"}),
		ovPassRole("cloudformation.amazonaws.com", "CreateChangeSet", "cloudformation:CreateChangeSet", []string{"roleARN"}),
		ovPassRole("ecs.amazonaws.com", "RegisterTaskDefinition", "ecs:RegisterTaskDefinition", []string{"taskRoleArn"}, []string{"executionRoleArn"}),
		ovPassRole("ecs.amazonaws.com", "RunTask", "ecs:RunTask", []string{"overrides", "taskRoleArn"}, []string{"overrides", "executionRoleArn"}),
		ovEC2Profile("RunInstances"),
		ovEC2Profile("AssociateIamInstanceProfile"),
		ovEC2Profile("ReplaceIamInstanceProfileAssociation"),

		// DynamoDB.
		ovDyn(ddbSrc, "TransactWriteItems", srcDDBTx,
			[]string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}, ovTransactWrite),
		ovDyn(ddbSrc, "TransactGetItems", srcDDBTx, []string{"dynamodb:GetItem"}, func(Params) []Need {
			return []Need{{Action: "dynamodb:GetItem"}}
		}),
		ovDyn(ddbSrc, "ExecuteStatement", srcDDBPartiQL, ovPartiQLActions(), ovPartiQL),
		ovDyn(ddbSrc, "BatchExecuteStatement", srcDDBPartiQL, ovPartiQLActions(), ovPartiQL),
		ovDyn(ddbSrc, "ExecuteTransaction", srcDDBPartiQL, ovPartiQLActions(), ovPartiQL),
		ovNone(ddbSrc, "DescribeEndpoints", srcDDBNone),

		// SQS, SNS batches.
		ovFixed("sqs.amazonaws.com", "SendMessageBatch", srcSQSBatch, "sqs:SendMessage"),
		ovFixed("sqs.amazonaws.com", "DeleteMessageBatch", srcSQSBatch, "sqs:DeleteMessage"),
		ovFixed("sqs.amazonaws.com", "ChangeMessageVisibilityBatch", srcSQSBatch, "sqs:ChangeMessageVisibility"),
		ovFixed("sns.amazonaws.com", "PublishBatch", srcSNSBatch, "sns:Publish"),

		// Secrets Manager.
		ovDyn("secretsmanager.amazonaws.com", "BatchGetSecretValue", srcSMBatch,
			[]string{"secretsmanager:BatchGetSecretValue", "secretsmanager:GetSecretValue", "secretsmanager:ListSecrets"},
			func(p Params) []Need {
				n := []Need{{Action: "secretsmanager:BatchGetSecretValue"}, {Action: "secretsmanager:GetSecretValue"}}
				if p.Has("filters") {
					n = append(n, Need{Action: "secretsmanager:ListSecrets"})
				}
				return n
			}),

		// CloudFront.
		ovFixed("cloudfront.amazonaws.com", "CreateDistributionWithTags", srcCFWithTags,
			"cloudfront:CreateDistribution", "cloudfront:TagResource"),
	}
	// Calls botocore does not model whose name is an IAM action.
	for _, e := range [][3]string{
		{"ssm.amazonaws.com", "UpdateInstanceInformation", srcSSMAgent},
		{"ssm.amazonaws.com", "ListInstanceAssociations", srcSSMAgent},
		{"ssm.amazonaws.com", "UpdateInstanceAssociationStatus", srcSSMAgent},
		{"rds.amazonaws.com", "DescribeRecommendations", srcRDSConsole},
		{"sts.amazonaws.com", "GetServiceBearerToken", srcSameName + ": logged by STS when CodeArtifact or CodeWhisperer gets a bearer token (IAM user guide, 'Service bearer tokens')"},
		{"rds.amazonaws.com", "DescribeRecommendationGroups", srcRDSConsole},
	} {
		prefix, _, _ := strings.Cut(e[0], ".")
		o = append(o, ovFixed(e[0], e[1], e[2], prefix+":"+e[1]))
	}
	// Service events with no caller.
	for _, e := range [][2]string{
		{"secretsmanager.amazonaws.com", "StartSecretVersionDelete"},
		{"secretsmanager.amazonaws.com", "EndSecretVersionDelete"},
		{"secretsmanager.amazonaws.com", "CancelSecretVersionDelete"},
		{"secretsmanager.amazonaws.com", "RotationStarted"},
		{"secretsmanager.amazonaws.com", "RotationSucceeded"},
		{"secretsmanager.amazonaws.com", "RotationFailed"},
		{"secretsmanager.amazonaws.com", "RotationAbandoned"},
		{"ec2.amazonaws.com", "SharedSnapshotVolumeCreated"},
	} {
		o = append(o, ovNone(e[0], e[1], srcNoAction))
	}
	return o
}

// ovS3Copy: read the source object, write the destination.
func ovS3Copy(name string) *override {
	return ovDyn(s3src, name, srcS3Copy, []string{"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"}, func(p Params) []Need {
		get := "s3:GetObject"
		if src, _ := p.String("x-amz-copy-source"); strings.Contains(src, "versionId=") {
			get = "s3:GetObjectVersion"
		}
		return []Need{{Action: get, On: OnSource}, {Action: "s3:PutObject"}}
	})
}

// ovEC2Profile: the call passes an instance profile; iam:PassRole is needed on
// its role, which the event does not name (PassRoleParam nil).
func ovEC2Profile(name string) *override {
	action := "ec2:" + name
	return ovDyn("ec2.amazonaws.com", name, srcEC2Profile, []string{action, "iam:PassRole"}, func(p Params) []Need {
		n := []Need{{Action: action}}
		if p.Has("iamInstanceProfile") {
			n = append(n, Need{Action: "iam:PassRole", On: OnPassRole})
		}
		return n
	})
}

// ovTransactWrite: one action per item operation (requestItems[].operation
// in CloudTrail; transactItems[].put/update/delete/conditionCheck in the SDK
// shape).
func ovTransactWrite(p Params) []Need {
	ops := map[string]string{
		"put": "dynamodb:PutItem", "update": "dynamodb:UpdateItem",
		"delete": "dynamodb:DeleteItem", "conditioncheck": "dynamodb:ConditionCheckItem",
	}
	seen := map[string]bool{}
	var n []Need
	add := func(op string) {
		if a, ok := ops[strings.ToLower(op)]; ok && !seen[a] {
			seen[a] = true
			n = append(n, Need{Action: a})
		}
	}
	p.each(func(item Params) {
		op, _ := item.String("operation")
		add(op)
	}, "requestItems")
	p.each(func(item Params) {
		for _, k := range []string{"put", "update", "delete", "conditionCheck"} {
			if item.Has(k) {
				add(k)
			}
		}
	}, "transactItems")
	return n
}

func ovPartiQLActions() []string {
	return []string{"dynamodb:PartiQLSelect", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"}
}

// ovPartiQL: one action per statement verb, from statement,
// requestItems[].statement (BatchExecuteStatement as logged) or
// transactStatements[]/statements[].statement.
func ovPartiQL(p Params) []Need {
	seen := map[string]bool{}
	var n []Need
	add := func(stmt string) {
		verb, _, _ := strings.Cut(strings.TrimSpace(stmt), " ")
		var a string
		switch strings.ToUpper(verb) {
		case "SELECT":
			a = "dynamodb:PartiQLSelect"
		case "INSERT":
			a = "dynamodb:PartiQLInsert"
		case "UPDATE":
			a = "dynamodb:PartiQLUpdate"
		case "DELETE":
			a = "dynamodb:PartiQLDelete"
		default:
			return
		}
		if !seen[a] {
			seen[a] = true
			n = append(n, Need{Action: a})
		}
	}
	if s, ok := p.String("statement"); ok {
		add(s)
	}
	for _, k := range []string{"requestItems", "transactStatements", "statements"} {
		p.each(func(item Params) {
			if s, ok := item.String("statement"); ok {
				add(s)
			}
		}, k)
	}
	return n
}
