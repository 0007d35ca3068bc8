package policygen

//go:generate go run ./gen -o actionmap_gen.go

import (
	"strings"
	"sync"

	"github.com/buger/jsonparser"
)

// The action map: which IAM actions a call recorded by CloudTrail (or by
// keyless, in the same format) needs.
//
// Two layers:
//   - actionmap_gen.go, generated from the botocore service models and
//     cfn-lint's IAM action list: every (eventSource, eventName) whose
//     operation name is an IAM action of the service's IAM prefix (17,405
//     pairs from botocore 1.43.11), and the IAM action list itself (names,
//     resource types, ARN formats);
//   - the overrides (actionmap_overrides.go), written by hand, for the calls
//     whose name is not the action (s3 ListObjectsV2 -> s3:ListBucket), that
//     need several actions (CopyObject, KMS ReEncrypt, iam:PassRole of the
//     role a call passes), that need none (sts:GetCallerIdentity, console
//     sign-in), or whose action depends on the parameters (GetObject with a
//     versionId, DynamoDB PartiQL by statement verb). Each override names
//     its Source.
//
// actionMapData, the generated text, is one record a line, fields separated
// by tabs:
//
//	S <eventSource> <iam prefix>   starts a block of calls logged under eventSource
//	<Operation> [<Action>]         the call Operation needs <iam prefix>:<Action>
//	                               (Action defaults to Operation)
//	P <iam prefix>                 starts the IAM actions of a prefix
//	R <type> <ARN format>...       a resource type and its ARN formats
//	A <Action> [<type>,<type>...]  an action and the resource types it applies to
//
// IAM lists action names in lower case. Their spelling here is, in order:
// the one an override uses; the generator's small table of IAM spellings
// botocore lacks (s3:GetBucketCORS, iam:PassRole, apigateway:GET); the
// botocore operation of the same lower-case name (in a service of that
// prefix, else in any); the name cut into words botocore uses
// ("refreshoauth2tokens" -> "RefreshOauth2Tokens"); else the lower-case name
// itself (about 640 of 20,817 actions, rarely used ones; IAM compares action
// names case-insensitively, so a policy stays valid).

// Params reads a request's parameters (the raw JSON of requestParameters, or
// nil).
type Params []byte

// String returns the string (or the number, as text) at path; ok is false when
// there is none there (absent, null, an object, an array or a boolean). Path
// elements are object keys, or "[i]" for the i-th element of an array.
func (p Params) String(path ...string) (string, bool) {
	v, t, _, err := jsonparser.Get(p, path...)
	if err != nil {
		return "", false
	}
	switch t {
	case jsonparser.String:
		s, err := jsonparser.ParseString(v)
		if err != nil {
			return "", false
		}
		return s, true
	case jsonparser.Number:
		return string(v), true
	}
	return "", false
}

// Has reports whether path holds a value other than null.
func (p Params) Has(path ...string) bool {
	_, t, _, err := jsonparser.Get(p, path...)
	return err == nil && t != jsonparser.Null && t != jsonparser.NotExist
}

// each calls f with the parameters of every element of the array at path.
func (p Params) each(f func(Params), path ...string) {
	_, _ = jsonparser.ArrayEach(p, func(v []byte, t jsonparser.ValueType, _ int, err error) {
		if err == nil && t == jsonparser.Object {
			f(Params(v))
		}
	}, path...)
}

// Need is one IAM action a call needs and which of the call's resources it
// applies to.
type Need struct {
	Action string // IAM's spelling, e.g. "s3:GetObject"
	// On names the resource: "" the call's own resource; "source"
	// (CopyObject's x-amz-copy-source, ReEncrypt's source key),
	// "destination" (ReEncrypt's destination key); "passrole" (iam:PassRole
	// of the role ARN the call passes: PassRoleParam names the parameter
	// path, e.g. "role" for lambda CreateFunction; a nil PassRoleParam
	// means the role cannot be read from the event — ec2 RunInstances passes
	// an instance profile, whose role is not logged — so the caller reports
	// it instead of guessing).
	On            string
	PassRoleParam []string
	Source        string // for overrides: where the mapping comes from (doc, data, tool); "" for generated 1:1
}

// The values of Need.On.
const (
	OnCall        = ""
	OnSource      = "source"
	OnDestination = "destination"
	OnPassRole    = "passrole"
)

// ActionInfo is an IAM action as the IAM action list describes it.
type ActionInfo struct {
	Name          string         // IAM's spelling, with its prefix: "s3:GetObject"
	ResourceTypes []ResourceType // empty: the action has no resource-level permission (only "*")
}

// ResourceType is a resource type an action applies to.
type ResourceType struct {
	Name string // e.g. "bucket", "object"
	// ARNFormats as in the IAM list (cfn-lint's Policies.json): patterns
	// with ${Partition}, ${Region}, ${Account} and a regular-expression tail,
	// e.g. "arn:${Partition}:s3:::.*" (bucket and object alike) or
	// "arn:${Partition}:lambda:${Region}:${Account}:function:.*".
	ARNFormats []string
	Required   bool // the list does not say which types are required: always false
}

// eventKey is an (eventSource, eventName) pair.
type eventKey struct{ source, name string }

// tables are the parsed generated data plus the overrides; read-only once
// built.
type tables struct {
	pairs     map[eventKey][]Need    // generated: one Need each
	actions   map[string]*ActionInfo // lower-case "prefix:action"
	overrides map[eventKey]*override // hand-written
	prefixes  map[string]string      // eventSource -> IAM prefix (first block)
}

// theTables builds the tables once.
var theTables = sync.OnceValue(buildTables)

func buildTables() *tables {
	t := &tables{
		pairs:     make(map[eventKey][]Need, actionMapPairs),
		actions:   make(map[string]*ActionInfo, actionMapActions),
		overrides: map[eventKey]*override{},
		prefixes:  map[string]string{},
	}
	data := actionMapData
	var source, prefix string
	var rtypes map[string]ResourceType
	type pair struct {
		k      eventKey
		action string
	}
	pending := make([]pair, 0, actionMapPairs) // spelled after the action list is read
	for data != "" {
		line, rest, _ := strings.Cut(data, "\n")
		data = rest
		f := strings.Split(line, "\t")
		switch f[0] {
		case "S":
			source, prefix = f[1], f[2]
			if _, ok := t.prefixes[source]; !ok {
				t.prefixes[source] = prefix
			}
		case "P":
			prefix, rtypes = f[1], map[string]ResourceType{}
		case "R":
			rtypes[f[1]] = ResourceType{Name: f[1], ARNFormats: f[2:len(f):len(f)]}
		case "A":
			ai := &ActionInfo{Name: prefix + ":" + f[1]}
			if len(f) > 2 {
				for _, rt := range strings.Split(f[2], ",") {
					r, ok := rtypes[rt]
					if !ok { // a type the list names but does not describe
						r = ResourceType{Name: rt}
					}
					ai.ResourceTypes = append(ai.ResourceTypes, r)
				}
			}
			t.actions[strings.ToLower(ai.Name)] = ai
		default:
			action := f[0]
			if len(f) > 1 {
				action = f[1]
			}
			pending = append(pending, pair{eventKey{source, f[0]}, prefix + ":" + action})
		}
	}
	for _, o := range overrideList() {
		for _, a := range o.actions { // an override's spelling is IAM's
			if ai, ok := t.actions[strings.ToLower(a)]; ok {
				ai.Name = a
			}
		}
		t.overrides[eventKey{o.source, o.name}] = o
	}
	for _, p := range pending {
		name := p.action
		if ai, ok := t.actions[strings.ToLower(name)]; ok {
			name = ai.Name
		}
		t.pairs[p.k] = []Need{{Action: name}}
	}
	return t
}

// Lookup returns the IAM actions a call recorded as eventSource/eventName
// with these parameters needs. known=false: the pair is in neither the
// generated table nor the overrides (the caller reports it, never guesses).
// known=true with no needs: the call needs no permission
// (sts:GetCallerIdentity, sts:GetSessionToken, dynamodb:DescribeEndpoints,
// signin events ...). A call whose actions depend on parameters the event
// lacks (a DynamoDB PartiQL call without its statement) is reported
// known=false too. The returned slice may be shared: callers must not
// modify it.
//
// Lambda logs most calls with the API version appended
// (UpdateFunctionCode20150331v2, ListLayers20181031); such a name that is
// not in the tables is looked up again without the suffix. CloudFront's
// dated names (ListDistributions2020_05_31) likewise.
func Lookup(eventSource, eventName string, p Params) (needs []Need, known bool) {
	t := theTables()
	if needs, ok := t.lookup(eventSource, eventName, p); ok {
		return needs, true
	}
	switch eventSource {
	case "lambda.amazonaws.com":
		if base, ok := stripLambdaVersion(eventName); ok {
			return t.lookup(eventSource, base, p)
		}
	case "cloudfront.amazonaws.com":
		if base, ok := stripCloudFrontVersion(eventName); ok {
			return t.lookup(eventSource, base, p)
		}
	}
	return nil, false
}

func (t *tables) lookup(source, name string, p Params) ([]Need, bool) {
	k := eventKey{source, name}
	if o, ok := t.overrides[k]; ok {
		n := o.needs(p)
		if o.dyn != nil && len(n) == 0 {
			return nil, false // the parameters do not tell which actions
		}
		return n, true
	}
	if n, ok := t.pairs[k]; ok {
		return n, true
	}
	if source == "signin.amazonaws.com" {
		return nil, true // console sign-in events: not IAM-authorizable
	}
	return nil, false
}

// stripLambdaVersion removes Lambda's API-version suffix: eight digits, then
// optionally "v" and digits (20150331, 20150331v2, 20181031).
func stripLambdaVersion(name string) (string, bool) {
	s := name
	if i := strings.LastIndexByte(s, 'v'); i > 0 && i < len(s)-1 && allDigits(s[i+1:]) {
		s = s[:i]
	}
	if len(s) <= 8 || !allDigits(s[len(s)-8:]) {
		return "", false
	}
	return s[:len(s)-8], true
}

// stripCloudFrontVersion removes CloudFront's API-version suffix:
// YYYY_MM_DD.
func stripCloudFrontVersion(name string) (string, bool) {
	const n = len("2020_05_31")
	if len(name) <= n {
		return "", false
	}
	s := name[len(name)-n:]
	if !allDigits(s[0:4]) || s[4] != '_' || !allDigits(s[5:7]) || s[7] != '_' || !allDigits(s[8:10]) {
		return "", false
	}
	return name[:len(name)-n], true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Action returns the IAM action of that name (case-insensitive), with its
// prefix ("s3:getobject"). The returned slices are shared: callers must not
// modify them.
func Action(name string) (ActionInfo, bool) {
	ai, ok := theTables().actions[strings.ToLower(name)]
	if !ok {
		return ActionInfo{}, false
	}
	return *ai, true
}

// EventSourcePrefix returns the IAM prefix of the actions of calls logged
// under eventSource ("monitoring.amazonaws.com" -> "cloudwatch"), as the
// generated table knows it.
func EventSourcePrefix(eventSource string) (string, bool) {
	p, ok := theTables().prefixes[eventSource]
	return p, ok
}
