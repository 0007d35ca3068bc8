package policygen

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/policy"
)

func TestReadGrantedPolicies(t *testing.T) {
	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`
	tests := []struct {
		name, in string
		want     []GrantedPolicy
		err      error
	}{
		{"document", doc, []GrantedPolicy{{Name: "f", Document: doc}}, nil},
		{"get-role-policy (CLI)", `{"RoleName":"ci","PolicyName":"perm","PolicyDocument":` + doc + `}`,
			[]GrantedPolicy{{Name: "f (inline perm)", Document: doc}}, nil},
		{"get-role-policy (API, URL-encoded)", `{"RoleName":"ci","PolicyName":"perm","PolicyDocument":"` + strings.ReplaceAll(url.PathEscape(doc), `"`, `%22`) + `"}`,
			[]GrantedPolicy{{Name: "f (inline perm)", Document: doc}}, nil},
		{"get-policy-version", `{"PolicyVersion":{"Document":` + doc + `,"VersionId":"v3","IsDefaultVersion":true}}`,
			[]GrantedPolicy{{Name: "f (v3)", Document: doc}}, nil},
		{"get-policy-version, string", `{"PolicyVersion":{"Document":` + quoteJSON(doc) + `,"VersionId":"v1"}}`,
			[]GrantedPolicy{{Name: "f (v1)", Document: doc}}, nil},
		{"get-role (a trust policy answer)", `{"Role":{"RoleName":"ci"}}`, nil, ErrNotAPolicy},
		{"version without a document", `{"PolicyVersion":{"VersionId":"v1"}}`, nil, ErrNotAPolicy},
		{"document neither object nor string", `{"PolicyDocument":42}`, nil, ErrNotAPolicy},
		{"invalid policy (no Resource)", `{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`, nil, policy.ErrMalformed},
		{"trust policy", `{"PolicyDocument":{"Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}}`, nil, policy.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadGrantedPolicies("f", []byte(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ReadGrantedPolicies("f", []byte("not json")); err == nil {
		t.Error("not JSON was accepted")
	}
}

func quoteJSON(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// fakeCatalog is a small IAM action list.
func fakeCatalog(service string) []string {
	all := []string{"iam:GetRole", "iam:GetRolePolicy", "iam:ListRoles", "kms:Decrypt", "kms:Encrypt",
		"s3:DeleteObject", "s3:GetBucketPolicy", "s3:GetObject", "s3:GetObjectAcl", "s3:PutObject"}
	if service == "" {
		return all
	}
	var out []string
	for _, a := range all {
		if strings.HasPrefix(a, service+":") {
			out = append(out, a)
		}
	}
	return out
}

func TestDiff(t *testing.T) {
	const role = "arn:aws:iam::123456789012:role/ci"
	web, api := "repo:o/web:ref:refs/heads/main", "repo:o/api:ref:refs/heads/main"
	key := "arn:aws:kms:us-east-1:123456789012:key/k1"
	granted := []GrantedPolicy{
		{Name: "inline perm", Document: `{"Version":"2012-10-17","Statement":[
			{"Sid":"S3","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::b/*"},
			{"Effect":"Allow","Action":"iam:Get*","Resource":"*"},
			{"Sid":"KMS","Effect":"Allow","Action":"kms:Decrypt","Resource":"` + key + `","Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}},
			{"Sid":"Guard","Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"},
			{"Sid":"Wide","Effect":"Allow","NotAction":"iam:*","Resource":"arn:aws:s3:::other/*"}]}`},
		{Name: "arn:aws:iam::123456789012:policy/reads", Document: `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["iam:ListRoles","S3:GET*"],"Resource":"*"}}`},
	}
	used := RolePolicy{Role: role, Binding: &web, Actions: []ActionUse{
		{Action: "s3:GetObject", Resources: []string{"arn:aws:s3:::b/k1", "arn:aws:s3:::c/k2"}, ReadOnly: true, Count: 3},
		{Action: "s3:DeleteObject", Resources: []string{"arn:aws:s3:::b/k1"}, Count: 1},
		{Action: "kms:Decrypt", Resources: []string{key}, ReadOnly: true, Count: 2, ViaService: "secretsmanager.amazonaws.com"},
		{Action: "iam:GetRole", Resources: []string{"arn:aws:iam::123456789012:role/ci"}, ReadOnly: true, Count: 1, Failed: 2},
		{Action: "iam:ListRoles", Resources: []string{"*"}, ReadOnly: true, Failed: 1},
	}}
	denied := []DeniedCall{
		{Role: role, Binding: &web, Action: "iam:CreateRole", Resource: "arn:aws:iam::123456789012:role/x", Count: 1},
		{Role: role, Binding: &api, Action: "iam:DeleteRole", Resource: "arn:aws:iam::123456789012:role/x", Count: 1},
		{Role: role, Action: "iam:TagRole", Resource: "arn:aws:iam::123456789012:role/x", Count: 1},
	}
	got, err := Diff(granted, used, denied, DiffOptions{Catalog: fakeCatalog})
	if err != nil {
		t.Fatal(err)
	}
	want := &PolicyDiff{
		Role: role, Binding: &web,
		Granted: []string{"inline perm", "arn:aws:iam::123456789012:policy/reads"},
		Unused: []UnusedGrant{
			{Grant: "s3:PutObject", Policy: "inline perm", Statement: "S3", Actions: 1, Unused: 1},
			{Grant: "iam:Get*", Policy: "inline perm", Statement: "#2", Actions: 2, Unused: 1, Used: []string{"iam:GetRole"}, UnusedActions: []string{"iam:GetRolePolicy"}},
			// ListRoles only failed: a grant no call used successfully.
			{Grant: "iam:ListRoles", Policy: "arn:aws:iam::123456789012:policy/reads", Statement: "#1", Actions: 1, Unused: 1},
			{Grant: "S3:GET*", Policy: "arn:aws:iam::123456789012:policy/reads", Statement: "#1", Actions: 3, Unused: 2, Used: []string{"s3:GetObject"}, UnusedActions: []string{"s3:GetBucketPolicy", "s3:GetObjectAcl"}},
		},
		NotGranted: []DiffCall{
			{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::b/k1", Count: 1}, // explicitly denied by Guard
		},
		Denied: []DiffCall{{Action: "iam:CreateRole", Resource: "arn:aws:iam::123456789012:role/x", Count: 1}},
		Used: UsedSummary{
			ReadOnly: []ActionCount{{"iam:GetRole", 1}, {"kms:Decrypt", 2}, {"s3:GetObject", 3}},
			Write:    []ActionCount{{"s3:DeleteObject", 1}},
			Failed:   []ActionCount{{"iam:GetRole", 2}, {"iam:ListRoles", 1}},
		},
		Notes: []string{"inline perm statement Wide allows every action but iam:* (NotAction): not expanded"},
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// The kms:ViaService condition is met only through the service the
	// call went through: the same call made directly is not granted.
	used.Actions[2].ViaService = ""
	got, err = Diff(granted, used, nil, DiffOptions{Catalog: fakeCatalog})
	if err != nil {
		t.Fatal(err)
	}
	if !containsCall(got.NotGranted, "kms:Decrypt", key) {
		t.Errorf("a direct kms:Decrypt passed a kms:ViaService condition: %+v", got.NotGranted)
	}
}

func containsCall(cs []DiffCall, action, resource string) bool {
	for _, c := range cs {
		if c.Action == action && c.Resource == resource {
			return true
		}
	}
	return false
}

// TestDiffWildcardOnIAMList expands against the real IAM action list: s3:Get*
// covers dozens of actions; with only s3:GetObject used the wildcard is
// kept with counts, its unused actions not listed one by one.
func TestDiffWildcardOnIAMList(t *testing.T) {
	granted := []GrantedPolicy{{Name: "p", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","sts:GetCallerIdentity","ecr:BatchGet*"],"Resource":"*"}]}`}}
	used := RolePolicy{Role: "arn:aws:iam::1:role/r", Actions: []ActionUse{{Action: "s3:GetObject", Resources: []string{"arn:aws:s3:::b/k"}, ReadOnly: true, Count: 1}}}
	got, err := Diff(granted, used, nil, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Unused) != 3 {
		t.Fatalf("unused = %+v", got.Unused)
	}
	s3 := got.Unused[0]
	if s3.Grant != "s3:Get*" || s3.Actions < 30 || s3.Unused != s3.Actions-1 || !gocmp.Equal(s3.Used, []string{"s3:GetObject"}) || s3.UnusedActions != nil {
		t.Errorf("s3:Get* = %+v", s3)
	}
	if sts := got.Unused[1]; sts.Grant != "sts:GetCallerIdentity" || sts.Actions != 1 {
		t.Errorf("sts = %+v", sts)
	}
	if ecr := got.Unused[2]; ecr.Actions < 2 || ecr.Actions > 25 || len(ecr.UnusedActions) != ecr.Actions || !strings.HasPrefix(ecr.UnusedActions[0], "ecr:BatchGet") {
		t.Errorf("ecr:BatchGet* = %+v", ecr)
	}
}

func TestDiffRefusesABadPolicy(t *testing.T) {
	_, err := Diff([]GrantedPolicy{{Name: "bad", Document: `{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`}}, RolePolicy{}, nil, DiffOptions{Catalog: fakeCatalog})
	if err == nil || !strings.Contains(err.Error(), "bad") {
		t.Fatalf("err = %v", err)
	}
}

func TestViaServiceKey(t *testing.T) {
	for _, tt := range []struct{ svc, res, want string }{
		{"secretsmanager.amazonaws.com", "arn:aws:kms:eu-west-1:1:key/k", "secretsmanager.eu-west-1.amazonaws.com"},
		{"AWS Internal", "arn:aws:kms:eu-west-1:1:key/k", ""},
		{"s3.amazonaws.com", "*", ""},
		{"", "arn:aws:kms:eu-west-1:1:key/k", ""},
	} {
		if got := viaServiceKey(tt.svc, tt.res); got != tt.want {
			t.Errorf("viaServiceKey(%q, %q) = %q, want %q", tt.svc, tt.res, got, tt.want)
		}
	}
}

// FuzzReadGrantedPolicies: any input is read or refused with an error,
// never a panic; what is read is named after the file.
func FuzzReadGrantedPolicies(f *testing.F) {
	for _, s := range []string{
		`{"Statement":[]}`, `{"PolicyDocument":"%7B%22Statement%22%3A%5B%5D%7D","PolicyName":"p"}`,
		`{"PolicyVersion":{"Document":{"Statement":[]},"VersionId":"v1"}}`, `{"PolicyVersion":null}`,
		`{"PolicyDocument":"%zz"}`, `[]`, `null`, `{"PolicyVersion":{"Document":"\u0000"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadGrantedPolicies("f", b)
		if err != nil {
			return
		}
		if len(got) != 1 || !strings.HasPrefix(got[0].Name, "f") {
			t.Fatalf("%q -> %+v", b, got)
		}
	})
}
