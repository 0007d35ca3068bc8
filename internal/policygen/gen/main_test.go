package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keylessci/keyless/internal/testenv"
)

// TestGeneratedTableIsCurrent: the committed actionmap_gen.go is what the
// generator writes from the botocore and cfn-lint installed here. It fails
// when either was upgraded without `go generate ./internal/policygen`, or
// when the generator changed without regenerating.
func TestGeneratedTableIsCurrent(t *testing.T) {
	in, err := FindInputs("python3")
	if err != nil {
		if errors.Is(err, errNoPython) {
			testenv.Missing(t, "python3 with botocore and cfn-lint", err.Error())
		}
		t.Fatal(err)
	}
	got, _, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "actionmap_gen.go")
	if err := os.WriteFile(out, got, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../actionmap_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("actionmap_gen.go is stale (botocore %s, cfn-lint %s here): first difference at line %d:\ncommitted: %q\ngenerated: %q\nrun: go generate ./internal/policygen",
					in.BotocoreVersion, in.CfnLintVersion, i+1, w, g)
			}
		}
	}
}

func writeFile(t *testing.T, path, content string, gz bool) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	data := []byte(content)
	if gz {
		var b bytes.Buffer
		z := gzip.NewWriter(&b)
		z.Write(data)
		z.Close()
		data = b.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGenerateFixture runs the generator on a small made-up botocore tree
// and IAM list, and checks each rule: the newest model version wins (.gz or
// not), only operations that are IAM actions are kept, the eventSource and
// IAM prefix exceptions, HTTP-method actions, IAM's camel case.
func TestGenerateFixture(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "botocore", "data")
	// An older plain model and a newer gzipped one: the newer wins.
	writeFile(t, filepath.Join(data, "s3", "2001-01-01", "service-2.json"),
		`{"metadata":{"endpointPrefix":"s3"},"operations":{"OldOnly":{}}}`, false)
	writeFile(t, filepath.Join(data, "s3", "2006-03-01", "service-2.json.gz"),
		`{"metadata":{"endpointPrefix":"s3"},"operations":{"GetObject":{},"ListObjectsV2":{},"HeadBucket":{}}}`, true)
	writeFile(t, filepath.Join(data, "cloudwatch", "2010-08-01", "service-2.json"),
		`{"metadata":{"endpointPrefix":"monitoring"},"operations":{"PutMetricData":{}}}`, false)
	writeFile(t, filepath.Join(data, "ecr", "2015-09-21", "service-2.json"),
		`{"metadata":{"endpointPrefix":"api.ecr","signingName":"ecr"},"operations":{"GetAuthorizationToken":{}}}`, false)
	writeFile(t, filepath.Join(data, "apigateway", "2015-07-09", "service-2.json"),
		`{"metadata":{"endpointPrefix":"apigateway"},"operations":{"GetRestApis":{"http":{"method":"GET"}},"CreatePortal":{"http":{"method":"POST"}}}}`, false)
	writeFile(t, filepath.Join(data, "nomodel", "2020-01-01", "paginators-1.json"), `{}`, false)
	writeFile(t, filepath.Join(data, "README"), "not a service", false)
	policies := filepath.Join(dir, "Policies.json")
	writeFile(t, policies, `{
 "s3": {"Actions": {"getobject": {"Resources": ["object"]}, "listbucket": {"Resources": ["bucket"]}, "listallmybuckets": {}, "frobnicate": {}, "oldonly": {}},
        "Resources": {"bucket": {"ARNFormats": ["arn:${Partition}:s3:::.*"], "ConditionKeys": ["x"]}, "object": {"ARNFormats": ["arn:${Partition}:s3:::.*"]}}},
 "cloudwatch": {"Actions": {"putmetricdata": {}}, "Resources": {}},
 "ecr": {"Actions": {"getauthorizationtoken": {}}, "Resources": {}},
 "apigateway": {"Actions": {"get": {"Resources": ["RestApis"]}, "post": {}, "createportal": {"Resources": ["Portal"]}}, "Resources": {}}
}`, false)
	got, warnings, err := Generate(Inputs{BotocoreDir: filepath.Join(dir, "botocore"), BotocoreVersion: "9.9.9", PoliciesFile: policies, CfnLintVersion: "8.8.8"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	body := string(got)
	if !strings.Contains(body, "botocore 9.9.9 (4 service models, 7 operations), cfn-lint 8.8.8") {
		t.Errorf("header lacks the versions and counts:\n%s", body[:300])
	}
	_, data2, _ := strings.Cut(body, "const actionMapData = `")
	data2, _, _ = strings.Cut(data2, "`")
	want := strings.Join([]string{
		"S\tapigateway.amazonaws.com\tapigateway",
		"CreatePortal", // an action of its own name wins over its http method
		"GetRestApis\tGET",
		"S\tecr.amazonaws.com\tecr", // not api.ecr
		"GetAuthorizationToken",
		"S\tmonitoring.amazonaws.com\tcloudwatch",
		"PutMetricData",
		"S\ts3.amazonaws.com\ts3",
		"GetObject", // ListObjectsV2, HeadBucket are not actions: left to the overrides
		"P\tapigateway",
		"A\tCreatePortal\tPortal",
		"A\tGET\tRestApis",
		"A\tPOST",
		"P\tcloudwatch",
		"A\tPutMetricData",
		"P\tecr",
		"A\tGetAuthorizationToken",
		"P\ts3",
		"R\tbucket\tarn:${Partition}:s3:::.*",
		"R\tobject\tarn:${Partition}:s3:::.*",
		"A\tfrobnicate", // no botocore word: kept lower case
		"A\tGetObject\tobject",
		"A\tListAllMyBuckets",   // the spelling table
		"A\tListBucket\tbucket", // cut into botocore words: List + Bucket
		"A\toldonly",            // the old model's operation is not read
		"",
	}, "\n")
	if diff := cmp.Diff(strings.Split(want, "\n"), strings.Split(data2, "\n")); diff != "" {
		t.Errorf("generated data (-want +got):\n%s", diff)
	}
	if !strings.Contains(body, "const actionMapPairs, actionMapActions = 5, 10") {
		t.Errorf("counts line missing:\n%s", body[len(body)-200:])
	}
	again, _, _ := Generate(Inputs{BotocoreDir: filepath.Join(dir, "botocore"), BotocoreVersion: "9.9.9", PoliciesFile: policies, CfnLintVersion: "8.8.8"})
	if !bytes.Equal(got, again) {
		t.Error("two runs on the same inputs differ")
	}

	// Broken inputs are errors, not panics or empty tables.
	if _, _, err := Generate(Inputs{BotocoreDir: filepath.Join(dir, "none"), PoliciesFile: policies}); err == nil {
		t.Error("missing botocore dir: no error")
	}
	if _, _, err := Generate(Inputs{BotocoreDir: filepath.Join(dir, "botocore"), PoliciesFile: filepath.Join(dir, "none.json")}); err == nil {
		t.Error("missing Policies.json: no error")
	}
	writeFile(t, filepath.Join(dir, "bad", "data", "x", "2020-01-01", "service-2.json"), `{"metadata":`, false)
	if _, _, err := Generate(Inputs{BotocoreDir: filepath.Join(dir, "bad"), PoliciesFile: policies}); err == nil {
		t.Error("truncated model: no error")
	}
}

func TestSegment(t *testing.T) {
	words := map[string]string{}
	for _, op := range []string{"ListAllMyBuckets", "GetObject", "ListBucket", "PutBucketCORS", "ListObjectsV2"} {
		for _, w := range camelWords(op) {
			words[strings.ToLower(w)] = w
		}
	}
	for in, want := range map[string]string{
		"listallmybuckets": "ListAllMyBuckets",
		"getbucket":        "GetBucket",
		"putbucketcors":    "PutBucketCORS",
		"listobjectsv2":    "ListObjectsV2",
		"xyz":              "",
	} {
		got, ok := segment(in, words)
		if got != want || ok != (want != "") {
			t.Errorf("segment(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for in, want := range map[string][]string{
		"ListObjectsV2":  {"List", "Objects", "V2"},
		"GetBucketACL":   {"Get", "Bucket", "ACL"},
		"PutBucketCORS":  {"Put", "Bucket", "CORS"},
		"GetRestApis":    {"Get", "Rest", "Apis"},
		"Invoke":         {"Invoke"},
		"EC2Instance":    {"EC2", "Instance"},
		"ListV2Versions": {"List", "V2", "Versions"},
	} {
		if diff := cmp.Diff(want, camelWords(in)); diff != "" {
			t.Errorf("camelWords(%q) (-want +got):\n%s", in, diff)
		}
	}
}
