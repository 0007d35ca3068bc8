package policygen

import (
	"net/url"
	"strings"

	"github.com/buger/jsonparser"
)

// callCtx is what resource derivation knows of a call.
type callCtx struct {
	source, name               []byte
	region, account, partition string
	req                        Params
	resp                       []byte // responseElements (raw), or nil
	resources                  []byte // resources[] (raw), or nil
}

// resource is one ARN a call needed, with the reason when it is "*" for
// want of an ARN.
type resource struct {
	arn  string
	note string
}

// deriveResources appends the ARNs need n (whose IAM action is info, if
// ok) applies to for call c: real ARNs
// from resources[] and requestParameters, "*" only where the action has no
// resource-level permission or the ARN cannot be known (with a note).
func deriveResources(n Need, info ActionInfo, ok bool, c *callCtx, out []resource) []resource {
	if n.On == "passrole" {
		return passRoleARNs(n, c, out)
	}
	if !ok {
		return append(out, resource{"*", "not in the IAM action list: its resource types are unknown"})
	}
	if len(info.ResourceTypes) == 0 {
		return append(out, resource{arn: "*"})
	}
	svc, _, _ := strings.Cut(info.Name, ":")
	start := len(out)
	for _, rt := range info.ResourceTypes {
		out = buildARNs(svc, rt.Name, n.On, c, out)
		if len(out) > start {
			return out
		}
	}
	// Fall back on resources[] entries of one of the action's types.
	if len(c.resources) > 0 {
		_, _ = jsonparser.ArrayEach(c.resources, func(v []byte, vt jsonparser.ValueType, _ int, _ error) {
			arn := getString(v, "ARN")
			if arn == "" {
				return
			}
			for _, rt := range info.ResourceTypes {
				for _, f := range rt.ARNFormats {
					if arnFormatMatch(f, arn) {
						out = append(out, resource{arn: arn})
						return
					}
				}
			}
		})
		if len(out) > start {
			return out
		}
	}
	if len(info.ResourceTypes) > 3 {
		return append(out, resource{"*", "the ARNs of its resources are not in the event"})
	}
	names := make([]string, len(info.ResourceTypes))
	for i, rt := range info.ResourceTypes {
		names[i] = rt.Name
	}
	return append(out, resource{"*", "the " + strings.Join(names, "/") + " ARN is not in the event"})
}

// passRoleARNs derives iam:PassRole's resource: the role ARN the call passes.
func passRoleARNs(n Need, c *callCtx, out []resource) []resource {
	if len(n.PassRoleParam) == 0 {
		return append(out, resource{"*", "the passed role is not logged (" + string(c.source) + ":" + string(c.name) + ")"})
	}
	v, _ := c.req.String(n.PassRoleParam...)
	switch {
	case strings.HasPrefix(v, "arn:"):
		return append(out, resource{arn: v})
	case v != "":
		return append(out, resource{arn: "arn:" + c.partition + ":iam::" + c.account + ":role/*" + v,
			note: "the role is passed by name: its path is unknown"})
	}
	return append(out, resource{"*", "the passed role is not in the event (parameter " + strings.Join(n.PassRoleParam, ".") + ")"})
}

// arn builds arn:partition:svc:region:account:rest.
func (c *callCtx) arn(svc, region, account, rest string) string {
	return "arn:" + c.partition + ":" + svc + ":" + region + ":" + account + ":" + rest
}

func (c *callCtx) regional(svc, rest string) string { return c.arn(svc, c.region, c.account, rest) }

// str is a top-level string parameter.
func (c *callCtx) str(path ...string) string {
	v, _ := c.req.String(path...)
	return v
}

// strs is a top-level parameter that is a string or a list of strings.
func (c *callCtx) strs(key string) []string {
	if len(c.req) == 0 {
		return nil
	}
	v, vt, _, err := jsonparser.Get(c.req, key)
	if err != nil {
		return nil
	}
	switch vt {
	case jsonparser.String:
		if s, err := jsonparser.ParseString(v); err == nil && s != "" {
			return []string{s}
		}
	case jsonparser.Array:
		var out []string
		_, _ = jsonparser.ArrayEach(v, func(e []byte, et jsonparser.ValueType, _ int, _ error) {
			if et == jsonparser.String {
				if s, err := jsonparser.ParseString(e); err == nil && s != "" {
					out = append(out, s)
				}
			}
		})
		return out
	}
	return nil
}

// resourceARNs returns the ARNs of resources[] entries of a type
// (AWS::KMS::Key ...).
func (c *callCtx) resourceARNs(typ string) []string {
	if len(c.resources) == 0 {
		return nil
	}
	var out []string
	_, _ = jsonparser.ArrayEach(c.resources, func(v []byte, _ jsonparser.ValueType, _ int, _ error) {
		if getString(v, "type") == typ {
			if a := getString(v, "ARN"); a != "" {
				out = append(out, a)
			}
		}
	})
	return out
}

func appendARNs(out []resource, arns ...string) []resource {
	for _, a := range arns {
		out = append(out, resource{arn: a})
	}
	return out
}

// buildARNs appends the ARNs of resource type typ of service svc that call
// c names; none when it names none.
func buildARNs(svc, typ, on string, c *callCtx, out []resource) []resource {
	typ = strings.ToLower(typ) // the IAM list writes "Secret", "bucket" ...
	switch svc {
	case "s3":
		return s3ARNs(typ, on, c, out)
	case "ecr":
		if typ == "repository" {
			acct := c.str("registryId")
			if acct == "" {
				acct = c.account
			}
			for _, r := range c.strs("repositoryName") {
				out = appendARNs(out, c.arn("ecr", c.region, acct, "repository/"+r))
			}
		}
	case "ecs":
		return ecsARNs(typ, c, out)
	case "lambda":
		if typ == "function" {
			return lambdaARNs(c, out)
		}
	case "cloudformation":
		if typ == "stack" {
			for _, s := range c.strs("stackName") {
				if strings.HasPrefix(s, "arn:") {
					if i := strings.Index(s, ":stack/"); i >= 0 {
						name, _, _ := strings.Cut(s[i+len(":stack/"):], "/")
						out = appendARNs(out, s[:i]+":stack/"+name+"/*")
					}
					continue
				}
				out = appendARNs(out, c.regional("cloudformation", "stack/"+s+"/*"))
			}
		}
	case "dynamodb":
		return dynamoARNs(typ, c, out)
	case "sqs":
		if typ == "queue" {
			if u := c.str("queueUrl"); u != "" {
				if a := queueARN(c, u); a != "" {
					return appendARNs(out, a)
				}
			}
			if q := c.str("queueName"); q != "" {
				return appendARNs(out, c.regional("sqs", q))
			}
		}
	case "sns":
		if typ == "topic" {
			for _, k := range []string{"topicArn", "targetArn", "TopicArn", "resourceArn"} {
				if a := c.str(k); strings.HasPrefix(a, "arn:") && arnField(a, 2) == "sns" {
					return appendARNs(out, a)
				}
			}
			if n := c.str("name"); n != "" && string(c.name) == "CreateTopic" {
				return appendARNs(out, c.regional("sns", n))
			}
		}
	case "ssm":
		switch typ {
		case "parameter":
			return ssmARNs(c, out)
		case "document":
			if n := c.str("name"); n != "" && !strings.HasPrefix(n, "arn:") && !strings.HasPrefix(n, "/") {
				acct := c.account
				if strings.HasPrefix(n, "AWS-") || strings.HasPrefix(n, "Amazon") {
					acct = "" // documents AWS owns
				}
				return appendARNs(out, c.arn("ssm", c.region, acct, "document/"+n))
			}
		case "instance", "managed-instance":
			return instanceARNs(typ, c, out)
		}
	case "ec2":
		if typ == "instance" {
			return instanceARNs(typ, c, out)
		}
	case "secretsmanager":
		if typ == "secret" {
			return secretARNs(c, out)
		}
	case "kms":
		return kmsARNs(typ, on, c, out)
	case "logs":
		return logsARNs(typ, c, out)
	case "iam":
		return iamARNs(typ, c, out)
	case "sts":
		if typ == "role" {
			if a := c.str("roleArn"); strings.HasPrefix(a, "arn:") {
				return appendARNs(out, a)
			}
			return appendARNs(out, c.resourceARNs("AWS::IAM::Role")...)
		}
	}
	return out
}

func s3ARNs(typ, on string, c *callCtx, out []resource) []resource {
	bucket, key := c.str("bucketName"), c.str("key")
	if on == "source" {
		src := c.str("x-amz-copy-source")
		if src == "" {
			return out
		}
		src, _, _ = strings.Cut(src, "?") // ?versionId=
		if u, err := url.PathUnescape(src); err == nil {
			src = u
		}
		src = strings.TrimPrefix(src, "/")
		bucket, key, _ = strings.Cut(src, "/")
	}
	if bucket == "" {
		return out
	}
	base := "arn:" + c.partition + ":s3:::" + bucket
	switch typ {
	case "bucket":
		return appendARNs(out, base)
	case "object":
		if key == "" {
			return append(out, resource{base + "/*", "the object keys are not in the event"})
		}
		return appendARNs(out, base+"/"+key)
	}
	return out
}

func ecsARNs(typ string, c *callCtx, out []resource) []resource {
	cluster := c.str("cluster")
	if cluster == "" {
		cluster = "default"
	}
	clusterName := cluster
	if strings.HasPrefix(cluster, "arn:") {
		if _, n, ok := strings.Cut(cluster, ":cluster/"); ok {
			clusterName = n
		}
	}
	switch typ {
	case "cluster":
		if strings.HasPrefix(cluster, "arn:") {
			return appendARNs(out, cluster)
		}
		return appendARNs(out, c.regional("ecs", "cluster/"+cluster))
	case "service":
		names := c.strs("service")
		if len(names) == 0 {
			names = c.strs("services")
		}
		if len(names) == 0 && string(c.name) == "CreateService" {
			names = c.strs("serviceName")
		}
		for _, s := range names {
			if strings.HasPrefix(s, "arn:") {
				out = appendARNs(out, s)
			} else {
				out = appendARNs(out, c.regional("ecs", "service/"+clusterName+"/"+s))
			}
		}
	case "task-definition":
		tds := c.strs("taskDefinition")
		if len(tds) == 0 && string(c.name) == "RegisterTaskDefinition" {
			if f := c.str("family"); f != "" {
				tds = []string{f}
			}
		}
		for _, td := range tds {
			switch {
			case strings.HasPrefix(td, "arn:"):
				out = appendARNs(out, td)
			case strings.Contains(td, ":"):
				out = appendARNs(out, c.regional("ecs", "task-definition/"+td))
			default:
				out = appendARNs(out, c.regional("ecs", "task-definition/"+td+":*"))
			}
		}
	case "task":
		tasks := c.strs("task")
		if len(tasks) == 0 {
			tasks = c.strs("tasks")
		}
		for _, t := range tasks {
			if strings.HasPrefix(t, "arn:") {
				out = appendARNs(out, t)
			} else {
				out = appendARNs(out, c.regional("ecs", "task/"+clusterName+"/"+t))
			}
		}
	}
	return out
}

// lambdaARNs: functionName is a name, a partial ARN (ACCOUNT:function:NAME)
// or an ARN, each optionally with :QUALIFIER.
func lambdaARNs(c *callCtx, out []resource) []resource {
	fn := c.str("functionName")
	if fn == "" {
		return out
	}
	region, account := c.region, c.account
	name, qual := fn, c.str("qualifier")
	switch {
	case strings.HasPrefix(fn, "arn:"):
		region, account = arnField(fn, 3), arnField(fn, 4)
		_, name, _ = strings.Cut(fn, ":function:")
	case strings.Contains(fn, ":function:"):
		account, name, _ = strings.Cut(fn, ":function:")
	}
	if n, q, ok := strings.Cut(name, ":"); ok {
		name, qual = n, q
	}
	if name == "" {
		return out
	}
	out = appendARNs(out, c.arn("lambda", region, account, "function:"+name))
	if qual != "" {
		out = appendARNs(out, c.arn("lambda", region, account, "function:"+name+":"+qual))
	}
	return out
}

func dynamoARNs(typ string, c *callCtx, out []resource) []resource {
	tables := c.strs("tableName")
	if len(tables) == 0 && len(c.req) > 0 {
		// BatchGetItem / BatchWriteItem: the tables are requestItems' keys.
		_ = jsonparser.ObjectEach(c.req, func(k, _ []byte, _ jsonparser.ValueType, _ int) error {
			tables = append(tables, string(k))
			return nil
		}, "requestItems")
	}
	table := func(t string) string {
		if strings.HasPrefix(t, "arn:") {
			return t
		}
		return c.regional("dynamodb", "table/"+t)
	}
	switch typ {
	case "table":
		for _, t := range tables {
			out = appendARNs(out, table(t))
		}
	case "index":
		if ix := c.str("indexName"); ix != "" && len(tables) == 1 {
			out = appendARNs(out, table(tables[0])+"/index/"+ix)
		}
	}
	return out
}

// queueARN turns https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (or the
// legacy https://REGION.queue.amazonaws.com/...) into the queue's ARN.
func queueARN(c *callCtx, u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.Trim(pu.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return ""
	}
	region := c.region
	host := pu.Hostname()
	if strings.HasPrefix(host, "sqs.") {
		if r, _, ok := strings.Cut(strings.TrimPrefix(host, "sqs."), "."); ok && r != "amazonaws" {
			region = r
		}
	} else if r, _, ok := strings.Cut(host, ".queue."); ok {
		region = r
	}
	return c.arn("sqs", region, parts[0], parts[1])
}

func ssmARNs(c *callCtx, out []resource) []resource {
	param := func(name string) string {
		if strings.HasPrefix(name, "arn:") {
			return name
		}
		return c.regional("ssm", "parameter/"+strings.TrimPrefix(name, "/"))
	}
	for _, n := range c.strs("name") {
		out = appendARNs(out, param(n))
	}
	for _, n := range c.strs("names") {
		out = appendARNs(out, param(n))
	}
	if p := c.str("path"); p != "" {
		p = strings.Trim(p, "/")
		if p == "" {
			out = appendARNs(out, c.regional("ssm", "parameter/*"))
		} else {
			out = appendARNs(out, c.regional("ssm", "parameter/"+p+"/*"))
		}
	}
	return out
}

// instanceARNs: EC2 instances (i-...) and SSM managed instances (mi-...)
// named by instanceId, resourceId or instancesSet.items[].instanceId.
func instanceARNs(typ string, c *callCtx, out []resource) []resource {
	ids := c.strs("instanceId")
	if id := c.str("resourceId"); id != "" {
		ids = append(ids, id)
	}
	if len(c.req) > 0 {
		_, _ = jsonparser.ArrayEach(c.req, func(v []byte, _ jsonparser.ValueType, _ int, _ error) {
			if id := getString(v, "instanceId"); id != "" {
				ids = append(ids, id)
			}
		}, "instancesSet", "items")
	}
	for _, id := range ids {
		switch {
		case typ == "instance" && strings.HasPrefix(id, "i-"):
			out = appendARNs(out, c.regional("ec2", "instance/"+id))
		case typ == "managed-instance" && strings.HasPrefix(id, "mi-"):
			out = appendARNs(out, c.regional("ssm", "managed-instance/"+id))
		}
	}
	return out
}

func secretARNs(c *callCtx, out []resource) []resource {
	ids := c.strs("secretId")
	if len(ids) == 0 {
		ids = c.strs("SecretId")
	}
	if len(ids) == 0 {
		if a := getString(c.resp, "arn"); a != "" {
			return appendARNs(out, a) // CreateSecret: the ARN with its suffix
		}
		ids = c.strs("name")
	}
	for _, id := range ids {
		if strings.HasPrefix(id, "arn:") {
			out = appendARNs(out, id)
		} else {
			out = appendARNs(out, c.regional("secretsmanager", "secret:"+id+"-??????"))
		}
	}
	return out
}

func kmsARNs(typ, on string, c *callCtx, out []resource) []resource {
	param := "keyId"
	switch on {
	case "source":
		param = "sourceKeyId"
	case "destination":
		param = "destinationKeyId"
	}
	id := c.str(param)
	switch typ {
	case "key":
		switch {
		case strings.HasPrefix(id, "arn:") && strings.Contains(id, ":key/"):
			return appendARNs(out, id)
		case id != "" && !strings.HasPrefix(id, "alias/") && !strings.HasPrefix(id, "arn:"):
			return appendARNs(out, c.regional("kms", "key/"+id))
		}
		if on == "" {
			return appendARNs(out, c.resourceARNs("AWS::KMS::Key")...)
		}
	case "alias":
		a := c.str("aliasName")
		if a == "" && strings.HasPrefix(id, "alias/") {
			a = id
		}
		switch {
		case strings.HasPrefix(a, "alias/"):
			return appendARNs(out, c.regional("kms", a))
		case strings.HasPrefix(id, "arn:") && strings.Contains(id, ":alias/"):
			return appendARNs(out, id)
		}
	}
	return out
}

func logsARNs(typ string, c *callCtx, out []resource) []resource {
	group := c.str("logGroupName")
	if group == "" {
		if id := c.str("logGroupIdentifier"); id != "" {
			if strings.HasPrefix(id, "arn:") {
				_, g, _ := strings.Cut(id, ":log-group:")
				group, _, _ = strings.Cut(g, ":")
			} else {
				group = id
			}
		}
	}
	if group == "" {
		return out
	}
	base := c.regional("logs", "log-group:"+group)
	switch typ {
	case "log-group":
		return appendARNs(out, base, base+":*")
	case "log-stream":
		if s := c.str("logStreamName"); s != "" {
			return appendARNs(out, base+":log-stream:"+s)
		}
		return appendARNs(out, base+":log-stream:*")
	}
	return out
}

func iamARNs(typ string, c *callCtx, out []resource) []resource {
	global := func(rest string) string { return c.arn("iam", "", c.account, rest) }
	switch typ {
	case "role":
		if a := getString(c.resp, "role", "arn"); a != "" {
			return appendARNs(out, a)
		}
		if as := c.resourceARNs("AWS::IAM::Role"); len(as) > 0 {
			return appendARNs(out, as...)
		}
		if n := c.str("roleName"); n != "" {
			return append(out, resource{global("role/*" + n), "the role is named without its path"})
		}
	case "user":
		if a := getString(c.resp, "user", "arn"); a != "" {
			return appendARNs(out, a)
		}
		if n := c.str("userName"); n != "" {
			return append(out, resource{global("user/*" + n), "the user is named without its path"})
		}
	case "policy":
		if a := c.str("policyArn"); strings.HasPrefix(a, "arn:") {
			return appendARNs(out, a)
		}
		if a := getString(c.resp, "policy", "arn"); a != "" {
			return appendARNs(out, a)
		}
	}
	return out
}

// arnFormatMatch matches an ARN against an IAM list ARN format, where
// ${...} and ".*" match anything.
func arnFormatMatch(format, arn string) bool {
	var pat strings.Builder
	for i := 0; i < len(format); {
		switch {
		case strings.HasPrefix(format[i:], "${"):
			j := strings.IndexByte(format[i:], '}')
			if j < 0 {
				return false
			}
			pat.WriteByte('*')
			i += j + 1
		case strings.HasPrefix(format[i:], ".*"):
			pat.WriteByte('*')
			i += 2
		default:
			pat.WriteByte(format[i])
			i++
		}
	}
	return arnGlobMatch(pat.String(), arn)
}

// arnGlobMatch matches s against a pattern where * matches any run of
// characters (including none) and ? any one character.
func arnGlobMatch(pat, s string) bool {
	px, sx := 0, 0
	nextP, nextS := -1, -1
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			switch pat[px] {
			case '*':
				nextP, nextS = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == pat[px] {
					px++
					sx++
					continue
				}
			}
		}
		if nextP >= 0 && nextS <= len(s) {
			px, sx = nextP+1, nextS
			nextS++
			continue
		}
		return false
	}
	return true
}
