// Command gen writes internal/policygen/actionmap_gen.go, the table from a
// CloudTrail call (eventSource + eventName) to the IAM action it needs, and
// the IAM action list (action names, resource types, ARN formats) that
// policygen reads.
//
// It reads two inputs installed with the Python tools on every development
// machine, found through python3 (never a hard-coded path):
//   - the botocore service models (botocore/data/<service>/<newest
//     version>/service-2.json or .json.gz): metadata.endpointPrefix,
//     metadata.signingName and the operations (name, http method);
//   - cfn-lint's IAM action list (cfnlint/data/AdditionalSpecs/Policies.json):
//     IAM prefix -> Actions (lower-case name -> resource types) and
//     Resources (type -> ARN formats).
//
// Run it with `go generate ./internal/policygen` (the //go:generate line is in
// actionmap.go). -botocore and -policies point it at other copies; the output
// is deterministic for the same inputs.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/buger/jsonparser"
)

func main() {
	out := flag.String("o", "actionmap_gen.go", "output file")
	botoDir := flag.String("botocore", "", "botocore package directory (default: found with python3)")
	policies := flag.String("policies", "", "cfn-lint Policies.json (default: found with python3)")
	flag.Parse()
	in, err := FindInputs("python3")
	if err != nil && (*botoDir == "" || *policies == "") {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if *botoDir != "" {
		in.BotocoreDir, in.BotocoreVersion = *botoDir, "unknown (-botocore)"
	}
	if *policies != "" {
		in.PoliciesFile, in.CfnLintVersion = *policies, "unknown (-policies)"
	}
	src, warnings, err := Generate(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "gen: warning:", w)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// Inputs names the generator's inputs and their versions.
type Inputs struct {
	BotocoreDir     string // the botocore package directory (holding data/)
	BotocoreVersion string
	PoliciesFile    string // cfnlint/data/AdditionalSpecs/Policies.json
	CfnLintVersion  string
}

// errNoPython is returned by FindInputs when python3, botocore or cfn-lint is
// missing.
var errNoPython = errors.New("python3 with botocore and cfn-lint is needed")

// FindInputs asks python for where botocore and cfn-lint are installed and
// which versions they are, without importing them (importing cfn-lint takes
// seconds).
func FindInputs(python string) (Inputs, error) {
	const script = `import importlib.util as u, importlib.metadata as m, json, os
b = u.find_spec("botocore"); c = u.find_spec("cfnlint")
if b is None or c is None: raise SystemExit("botocore or cfn-lint is not installed")
print(json.dumps({"b": list(b.submodule_search_locations)[0], "bv": m.version("botocore"),
  "c": list(c.submodule_search_locations)[0], "cv": m.version("cfn-lint")}))`
	out, err := exec.Command(python, "-c", script).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Inputs{}, fmt.Errorf("%w: %s: %s", errNoPython, python, strings.TrimSpace(string(ee.Stderr)))
		}
		return Inputs{}, fmt.Errorf("%w: %w", errNoPython, err)
	}
	var r struct{ B, BV, C, CV string }
	if err := json.Unmarshal(out, &r); err != nil {
		return Inputs{}, fmt.Errorf("reading python's answer %q: %w", out, err)
	}
	return Inputs{
		BotocoreDir: r.B, BotocoreVersion: r.BV,
		PoliciesFile:   filepath.Join(r.C, "data", "AdditionalSpecs", "Policies.json"),
		CfnLintVersion: r.CV,
	}, nil
}

// model is the part of a botocore service model the generator reads.
type model struct {
	Metadata struct {
		EndpointPrefix string
		SigningName    string
	}
	Operations map[string]operation
}

type operation struct{ Method string }

// iamList is cfn-lint's Policies.json.
type iamList map[string]struct {
	Actions map[string]struct {
		Resources []string `json:"Resources"`
	} `json:"Actions"`
	Resources map[string]struct {
		ARNFormats []string `json:"ARNFormats"`
	} `json:"Resources"`
}

// eventSourceOf is where CloudTrail logs a service's calls, for the services
// where it is not <endpointPrefix>.amazonaws.com (research §3.7).
func eventSourceOf() map[string]string {
	return map[string]string{
		"ecr":               "ecr.amazonaws.com",        // endpoint api.ecr; real events (§3.7)
		"ecr-public":        "ecr-public.amazonaws.com", // endpoint api.ecr-public; AWS doc sample event
		"s3control":         "s3.amazonaws.com",         // endpoint s3-control; S3 control-plane calls are logged by s3 (Invictus data)
		"ses":               "ses.amazonaws.com",        // endpoint email; real events (§3.3, §3.7)
		"sesv2":             "ses.amazonaws.com",        // idem
		"pinpoint-email":    "ses.amazonaws.com",        // idem (same endpoint and signing name as sesv2)
		"bedrock-runtime":   "bedrock.amazonaws.com",    // InvokeModel logged under bedrock (§3.7, Stratus data)
		"sagemaker":         "sagemaker.amazonaws.com",  // endpoint api.sagemaker; AWS doc sample events
		"sagemaker-runtime": "sagemaker.amazonaws.com",  // InvokeEndpoint sample event (SageMaker guide)
		"lex-models":        "lex.amazonaws.com",        // AWS doc sample events (PutBot)
		"lexv2-models":      "lex.amazonaws.com",        // AWS doc sample events (CreateBotVersion)
		"dynamodbstreams":   "dynamodb.amazonaws.com",   // DynamoDB developer guide sample GetRecords event
	}
}

// iamPrefixOf is the IAM prefix for the endpoint prefixes where neither the
// endpoint prefix nor the signing name is one (research §3.7).
func iamPrefixOf() map[string]string {
	return map[string]string{
		"monitoring":        "cloudwatch",     // CloudTrail/CloudWatch docs: monitoring -> cloudwatch
		"cloudcontrolapi":   "cloudformation", // Cloud Control API actions are cloudformation:*Resource*
		"tagging":           "tag",            // Resource Groups Tagging API: tag:GetResources
		"mturk-requester":   "mechanicalturk",
		"data-ats.iot":      "iot", // iot-data: iot:Publish, iot:GetThingShadow
		"data.iotevents":    "iotevents",
		"data.jobs.iot":     "iotjobsdata",
		"api.tunneling.iot": "iot", // iot:OpenTunnel ...
	}
}

// httpMethodPrefixes are the IAM prefixes whose actions are HTTP methods
// (apigateway:GET on the resource path): an operation that is not itself an
// action maps to its http method.
func httpMethodPrefixes() map[string]bool { return map[string]bool{"apigateway": true} }

// spelling is IAM's spelling of action names the generator produces that no
// botocore operation spells, or that botocore spells otherwise.
func spelling() map[string]string {
	return map[string]string{
		// IAM's spelling (Service Authorization Reference) of actions of
		// services CI uses that no botocore operation spells.
		"s3:getbucketcors": "GetBucketCORS", "s3:putbucketcors": "PutBucketCORS",
		"s3:listallmybuckets": "ListAllMyBuckets", "s3:bypassgovernanceretention": "BypassGovernanceRetention",
		"s3express:listallmydirectorybuckets": "ListAllMyDirectoryBuckets",
		"iam:passrole":                        "PassRole",
		"dynamodb:partiqlselect":              "PartiQLSelect", "dynamodb:partiqlinsert": "PartiQLInsert",
		"dynamodb:partiqlupdate": "PartiQLUpdate", "dynamodb:partiqldelete": "PartiQLDelete",
		"logs:unmask": "Unmask", "eks:accesskubernetesapi": "AccessKubernetesApi",
		"codeartifact:associatewithdownstreamrepository": "AssociateWithDownstreamRepository",
		"apigateway:get": "GET", "apigateway:post": "POST", "apigateway:put": "PUT",
		"apigateway:patch": "PATCH", "apigateway:delete": "DELETE",
	}
}

type service struct {
	name, endpointPrefix, signingName, eventSource, iamPrefix string
	m                                                         model
}

// Generate reads the inputs and returns the Go source of actionmap_gen.go,
// with warnings about conflicts it resolved.
func Generate(in Inputs) ([]byte, []string, error) {
	var warnings []string
	pj, err := os.ReadFile(in.PoliciesFile)
	if err != nil {
		return nil, nil, err
	}
	var iam iamList
	if err := json.Unmarshal(pj, &iam); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", in.PoliciesFile, err)
	}
	services, err := readModels(filepath.Join(in.BotocoreDir, "data"))
	if err != nil {
		return nil, nil, err
	}
	srcOf, preOf, methods := eventSourceOf(), iamPrefixOf(), httpMethodPrefixes()
	for i := range services {
		s := &services[i]
		s.eventSource = s.endpointPrefix + ".amazonaws.com"
		if es, ok := srcOf[s.name]; ok {
			s.eventSource = es
		}
		switch {
		case iam[s.endpointPrefix].Actions != nil:
			s.iamPrefix = s.endpointPrefix
		case iam[s.signingName].Actions != nil:
			s.iamPrefix = s.signingName
		case preOf[s.endpointPrefix] != "":
			s.iamPrefix = preOf[s.endpointPrefix]
		}
	}

	// pairs: eventSource -> op -> "prefix:Action".
	type pair struct{ action, from string }
	pairs := map[string]map[string]pair{}
	nOps := 0
	for _, s := range services {
		nOps += len(s.m.Operations)
		acts := iam[s.iamPrefix].Actions
		if acts == nil {
			continue
		}
		for _, op := range sortedKeys(s.m.Operations) {
			var action string
			if _, ok := acts[strings.ToLower(op)]; ok {
				action = s.iamPrefix + ":" + op
			} else if meth := strings.ToLower(s.m.Operations[op].Method); methods[s.iamPrefix] && meth != "" {
				if _, ok := acts[meth]; ok {
					action = s.iamPrefix + ":" + strings.ToUpper(meth)
				}
			}
			if action == "" {
				continue
			}
			if pairs[s.eventSource] == nil {
				pairs[s.eventSource] = map[string]pair{}
			}
			if prev, ok := pairs[s.eventSource][op]; ok {
				if !strings.EqualFold(prev.action, action) {
					warnings = append(warnings, fmt.Sprintf("%s %s: %s (from %s) kept, %s (from %s) dropped",
						s.eventSource, op, prev.action, prev.from, action, s.name))
				}
				continue
			}
			pairs[s.eventSource][op] = pair{action, s.name}
		}
	}

	// IAM's camel case: the spelling table, else the botocore operation of
	// the same lower-case name in a service of that prefix, else in any
	// service, else the name cut into words botocore uses.
	byPrefix := map[string]map[string]string{} // prefix -> lower -> Op
	anyOp := map[string]string{}
	words := map[string]string{} // lower word -> spelling
	for _, s := range services {
		for _, op := range sortedKeys(s.m.Operations) {
			l := strings.ToLower(op)
			if s.iamPrefix != "" {
				if byPrefix[s.iamPrefix] == nil {
					byPrefix[s.iamPrefix] = map[string]string{}
				}
				if _, ok := byPrefix[s.iamPrefix][l]; !ok {
					byPrefix[s.iamPrefix][l] = op
				}
			}
			if _, ok := anyOp[l]; !ok {
				anyOp[l] = op
			}
			for _, w := range camelWords(op) {
				if _, ok := words[strings.ToLower(w)]; !ok {
					words[strings.ToLower(w)] = w
				}
			}
		}
	}
	spell := spelling()
	camel := func(prefix, lower string) string {
		if s, ok := spell[prefix+":"+lower]; ok {
			return s
		}
		if op, ok := byPrefix[prefix][lower]; ok {
			return op
		}
		if op, ok := anyOp[lower]; ok {
			return op
		}
		if s, ok := segment(lower, words); ok {
			return s
		}
		return lower
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go run ./gen; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "// Inputs: botocore %s (%d service models, %d operations), cfn-lint %s\n", in.BotocoreVersion, len(services), nOps, in.CfnLintVersion)
	fmt.Fprintf(&b, "// (cfnlint/data/AdditionalSpecs/Policies.json, %d IAM prefixes). The data format is\n// described in actionmap.go (actionMapData).\n\n", len(iam))
	b.WriteString("package policygen\n\nconst actionMapData = `")
	nPairs := 0
	for _, es := range sortedKeys(pairs) {
		// One block per (eventSource, IAM prefix).
		blocks := map[string][]string{}
		for op, p := range pairs[es] {
			pre, act, _ := strings.Cut(p.action, ":")
			line := op
			if act != op {
				line += "\t" + act
			}
			blocks[pre] = append(blocks[pre], line)
		}
		for _, pre := range sortedKeys(blocks) {
			lines := blocks[pre]
			slices.Sort(lines)
			fmt.Fprintf(&b, "S\t%s\t%s\n", es, pre)
			for _, l := range lines {
				b.WriteString(l)
				b.WriteByte('\n')
			}
			nPairs += len(lines)
		}
	}
	nActions := 0
	for _, pre := range sortedKeys(iam) {
		p := iam[pre]
		fmt.Fprintf(&b, "P\t%s\n", pre)
		for _, rt := range sortedKeys(p.Resources) {
			fmt.Fprintf(&b, "R\t%s", rt)
			for _, f := range p.Resources[rt].ARNFormats {
				if strings.ContainsAny(f, "\t\n`") {
					return nil, nil, fmt.Errorf("%s resource %s: ARN format %q has a tab, newline or backquote", pre, rt, f)
				}
				b.WriteString("\t" + f)
			}
			b.WriteByte('\n')
		}
		for _, a := range sortedKeys(p.Actions) {
			fmt.Fprintf(&b, "A\t%s", camel(pre, a))
			if rs := p.Actions[a].Resources; len(rs) > 0 {
				b.WriteString("\t" + strings.Join(rs, ","))
			}
			b.WriteByte('\n')
			nActions++
		}
	}
	b.WriteString("`\n")
	fmt.Fprintf(&b, "\n// actionMapCounts: %d (eventSource, eventName) pairs, %d IAM actions.\nconst actionMapPairs, actionMapActions = %d, %d\n", nPairs, nActions, nPairs, nActions)
	return b.Bytes(), warnings, nil
}

// readModels reads the newest model of every service under dataDir.
func readModels(dataDir string) ([]service, error) {
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return nil, fmt.Errorf("botocore models: %w", err)
	}
	var out []service
	var paths []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		svcDir := filepath.Join(dataDir, e.Name())
		vers, err := os.ReadDir(svcDir)
		if err != nil {
			return nil, err
		}
		var newest string
		for _, v := range vers { // names are dates: the newest sorts last
			if v.IsDir() && v.Name() > newest && modelPath(filepath.Join(svcDir, v.Name())) != "" {
				newest = v.Name()
			}
		}
		if newest == "" {
			continue
		}
		out = append(out, service{name: e.Name()})
		paths = append(paths, modelPath(filepath.Join(svcDir, newest)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no service model under %s", dataDir)
	}
	// Read the models on every core (decompression dominates).
	errs := make([]error, len(out))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				m, err := readModel(paths[i])
				if err != nil {
					errs[i] = fmt.Errorf("%s: %w", paths[i], err)
					continue
				}
				out[i].endpointPrefix, out[i].signingName, out[i].m = m.Metadata.EndpointPrefix, m.Metadata.SigningName, m
			}
		})
	}
	for i := range out {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func modelPath(dir string) string {
	for _, n := range []string{"service-2.json", "service-2.json.gz"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return filepath.Join(dir, n)
		}
	}
	return ""
}

func readModel(path string) (model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return model{}, err
	}
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return model{}, err
		}
		if data, err = io.ReadAll(z); err != nil {
			return model{}, err
		}
	}
	// Models are large (100 MB in all, mostly shapes and documentation):
	// read the three fields without decoding the rest.
	var m model
	m.Metadata.EndpointPrefix, err = jsonparser.GetString(data, "metadata", "endpointPrefix")
	if err != nil {
		return model{}, fmt.Errorf("metadata.endpointPrefix: %w", err)
	}
	m.Metadata.SigningName, _ = jsonparser.GetString(data, "metadata", "signingName")
	m.Operations = map[string]operation{}
	err = jsonparser.ObjectEach(data, func(k, v []byte, _ jsonparser.ValueType, _ int) error {
		name, err := jsonparser.ParseString(k)
		if err != nil {
			return err
		}
		method, _ := jsonparser.GetString(v, "http", "method")
		m.Operations[name] = operation{Method: method}
		return nil
	}, "operations")
	if err != nil {
		return model{}, fmt.Errorf("operations: %w", err)
	}
	return m, nil
}

// camelWords cuts an operation name into its words: "ListObjectsV2" ->
// List, Objects, V2; "GetBucketACL" -> Get, Bucket, ACL.
func camelWords(s string) []string {
	var out []string
	r := []rune(s)
	start := 0
	for i := 1; i < len(r); i++ {
		up, prevUp := unicode.IsUpper(r[i]), unicode.IsUpper(r[i-1])
		nextLow := i+1 < len(r) && unicode.IsLower(r[i+1])
		if up && (!prevUp || nextLow) {
			out = append(out, string(r[start:i]))
			start = i
		}
	}
	return append(out, string(r[start:]))
}

// segment cuts a lower-case action name into the fewest known words of at
// least two letters and joins their spellings: "listallmybuckets" ->
// "ListAllMyBuckets". ok is false when no cut exists.
func segment(s string, words map[string]string) (string, bool) {
	const none = 1 << 30
	n := len(s)
	best := make([]int, n+1) // best[i]: fewest words for s[:i]
	from := make([]int, n+1)
	for i := 1; i <= n; i++ {
		best[i] = none
		for j := 0; j <= i-2; j++ { // longest last word first on ties: smallest j wins
			if best[j] == none {
				continue
			}
			if _, ok := words[s[j:i]]; ok && best[j]+1 < best[i] {
				best[i], from[i] = best[j]+1, j
			}
		}
	}
	if best[n] == none {
		return "", false
	}
	var parts []string
	for i := n; i > 0; i = from[i] {
		parts = append(parts, words[s[from[i]:i]])
	}
	slices.Reverse(parts)
	return strings.Join(parts, ""), true
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
