package iam

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite golden files")

// seededReader is a deterministic io.Reader for ids in golden files.
type seededReader struct{ r *rand.ChaCha8 }

func (s seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	return New(Options{Store: st, Account: "123456789012", Now: func() time.Time { return clock }, Rand: seededReader{rand.NewChaCha8([32]byte{1})}})
}

// call runs one action through its handler and renders the response as
// the server would.
func call(t *testing.T, s *Service, action string, params url.Values) ([]byte, error) {
	t.Helper()
	for _, a := range s.Actions() {
		if a.Name != action {
			continue
		}
		r := &awsquery.Request{Action: action, Params: awsquery.ParamsFromValues(params)}
		res, err := a.Handle(context.Background(), r)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := awsquery.MarshalResponse(&buf, awsquery.NamespaceIAM, action, "00000000-0000-4000-8000-000000000000", res); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), nil
	}
	t.Fatalf("no action %s", action)
	return nil, nil
}

const trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.circleci.com/org/o1"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"oidc.circleci.com/org/o1:sub":"org/o1/project/p1/user/*"}}}]}`
const perm = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`

// TestGoldenResponses pins the XML of IAM's responses (namespaces, element
// names and order, URL-encoded policy documents, optional elements).
func TestGoldenResponses(t *testing.T) {
	s := newService(t)
	steps := []struct {
		name, action string
		params       url.Values
	}{
		{"create_provider", "CreateOpenIDConnectProvider", url.Values{"Url": {"https://oidc.circleci.com/org/o1"}, "ClientIDList.member.1": {"o1"}, "Tags.member.1.Key": {"team"}, "Tags.member.1.Value": {"ci"}}},
		{"get_provider", "GetOpenIDConnectProvider", url.Values{"OpenIDConnectProviderArn": {"arn:aws:iam::123456789012:oidc-provider/oidc.circleci.com/org/o1"}}},
		{"list_providers", "ListOpenIDConnectProviders", url.Values{}},
		{"create_role", "CreateRole", url.Values{"RoleName": {"circleci-oidc-p1"}, "Path": {"/ci/"}, "AssumeRolePolicyDocument": {trust}, "Description": {"deploys p1"}}},
		{"get_role", "GetRole", url.Values{"RoleName": {"circleci-oidc-p1"}}},
		{"list_roles", "ListRoles", url.Values{}},
		{"put_role_policy", "PutRolePolicy", url.Values{"RoleName": {"circleci-oidc-p1"}, "PolicyName": {"read"}, "PolicyDocument": {perm}}},
		{"get_role_policy", "GetRolePolicy", url.Values{"RoleName": {"circleci-oidc-p1"}, "PolicyName": {"read"}}},
		{"create_policy", "CreatePolicy", url.Values{"PolicyName": {"read-b"}, "PolicyDocument": {perm}}},
		{"get_policy_version", "GetPolicyVersion", url.Values{"PolicyArn": {"arn:aws:iam::123456789012:policy/read-b"}, "VersionId": {"v1"}}},
		{"attach", "AttachRolePolicy", url.Values{"RoleName": {"circleci-oidc-p1"}, "PolicyArn": {"arn:aws:iam::123456789012:policy/read-b"}}},
		{"list_attached", "ListAttachedRolePolicies", url.Values{"RoleName": {"circleci-oidc-p1"}}},
		{"tag_role", "TagRole", url.Values{"RoleName": {"circleci-oidc-p1"}, "Tags.member.1.Key": {"b"}, "Tags.member.1.Value": {"2"}, "Tags.member.2.Key": {"a"}, "Tags.member.2.Value": {"1"}}},
		{"list_role_tags", "ListRoleTags", url.Values{"RoleName": {"circleci-oidc-p1"}, "MaxItems": {"1"}}},
		{"simulate_custom", "SimulateCustomPolicy", url.Values{"PolicyInputList.member.1": {perm}, "ActionNames.member.1": {"s3:GetObject"}, "ActionNames.member.2": {"s3:PutObject"}, "ResourceArns.member.1": {"arn:aws:s3:::b/k"}}},
	}
	for _, st := range steps {
		got, err := call(t, s, st.action, st.params)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		path := filepath.Join("testdata", st.name+".xml")
		if *update {
			os.WriteFile(path, got, 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", st.name, got, want)
		}
	}
}

// TestErrors checks AWS's code and message for each refusal.
func TestErrors(t *testing.T) {
	s := newService(t)
	mustCall := func(action string, p url.Values) {
		if _, err := call(t, s, action, p); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}
	mustCall("CreateOpenIDConnectProvider", url.Values{"Url": {"https://oidc.circleci.com/org/o1"}, "ClientIDList.member.1": {"o1"}})
	mustCall("CreateRole", url.Values{"RoleName": {"r"}, "AssumeRolePolicyDocument": {trust}})
	tests := []struct {
		action  string
		params  url.Values
		code    string
		message string
	}{
		{"CreateOpenIDConnectProvider", url.Values{"Url": {"https://oidc.circleci.com/org/o1"}, "ClientIDList.member.1": {"x"}}, "EntityAlreadyExists", "Provider with url https://oidc.circleci.com/org/o1 already exists."},
		{"CreateOpenIDConnectProvider", url.Values{"Url": {"http://x.example"}}, "InvalidInput", "Invalid Open ID Connect Provider URL: it must begin with https://."},
		{"CreateOpenIDConnectProvider", url.Values{"Url": {"http://127.0.0.1:9/x"}}, "InvalidInput", "Invalid Open ID Connect Provider URL: it must begin with https://. Plain http:// is accepted only for loopback issuers when the server runs with --allow-loopback-http-issuers."},
		{"CreateOpenIDConnectProvider", url.Values{"Url": {"https://x.example:8443"}}, "InvalidInput", "Invalid Open ID Connect Provider URL: a port number is not allowed."},
		{"CreateOpenIDConnectProvider", url.Values{"Url": {"https://x.example#f"}}, "InvalidInput", "Invalid Open ID Connect Provider URL: query parameters and fragments are not allowed."},
		{"CreateOpenIDConnectProvider", url.Values{}, "ValidationError", "1 validation error detected: Value null at 'url' failed to satisfy constraint: Member must not be null"},
		{"GetOpenIDConnectProvider", url.Values{"OpenIDConnectProviderArn": {"arn:aws:iam::123456789012:oidc-provider/none"}}, "NoSuchEntity", "OpenIDConnect Provider not found for arn arn:aws:iam::123456789012:oidc-provider/none"},
		{"CreateRole", url.Values{"RoleName": {"R"}, "AssumeRolePolicyDocument": {trust}}, "EntityAlreadyExists", "Role with name R already exists."},
		{"CreateRole", url.Values{"RoleName": {"x"}, "AssumeRolePolicyDocument": {perm}}, "MalformedPolicyDocument", ""},
		{"GetRole", url.Values{"RoleName": {"nope"}}, "NoSuchEntity", "The role with name nope cannot be found."},
		{"GetRolePolicy", url.Values{"RoleName": {"r"}, "PolicyName": {"none"}}, "NoSuchEntity", "The role policy with name none cannot be found."},
		{"AttachRolePolicy", url.Values{"RoleName": {"r"}, "PolicyArn": {"arn:aws:iam::123456789012:policy/none"}}, "NoSuchEntity", "Policy arn:aws:iam::123456789012:policy/none does not exist or is not attachable."},
		{"UpdateRole", url.Values{"RoleName": {"r"}, "MaxSessionDuration": {"100"}}, "ValidationError", "1 validation error detected: Value '100' at 'maxSessionDuration' failed to satisfy constraint: Member must have value greater than or equal to 3600"},
		{"TagRole", url.Values{"RoleName": {"r"}, "Tags.member.1.Key": {"aws:x"}, "Tags.member.1.Value": {"v"}}, "InvalidInput", "User-defined tag keys can't start with \"aws:\". This prefix is reserved for AWS tags."},
		{"TagRole", url.Values{"RoleName": {"r"}, "Tags.member.1.Key": {"k"}, "Tags.member.1.Value": {"v"}, "Tags.member.2.Key": {"K"}, "Tags.member.2.Value": {"w"}}, "InvalidInput", "Duplicate tag keys found. Please note that Tag keys are case insensitive."},
		{"ListRoles", url.Values{"Marker": {"not-ours"}}, "InvalidInput", "Invalid Marker: pass the Marker returned by the previous call unchanged."},
	}
	for _, tc := range tests {
		_, err := call(t, s, tc.action, tc.params)
		var e *awsquery.Error
		if !errors.As(err, &e) {
			t.Errorf("%s %v: err = %v, want %s", tc.action, tc.params, err, tc.code)
			continue
		}
		if e.Code != tc.code || (tc.message != "" && e.Message != tc.message) {
			t.Errorf("%s %v:\n got %s %q\nwant %s %q", tc.action, tc.params, e.Code, e.Message, tc.code, tc.message)
		}
	}
}
