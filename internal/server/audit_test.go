package server

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/awsquery"
)

func TestRequestParameters(t *testing.T) {
	v := url.Values{
		"Action": {"CreateRole"}, "Version": {"2010-05-08"}, "RoleName": {"ci"},
		"Tags.member.1.Key": {"a"}, "Tags.member.1.Value": {"1"}, "Tags.member.2.Key": {"b"}, "Tags.member.2.Value": {"2"},
		"ClientIDList.member.2": {"y"}, "ClientIDList.member.1": {"x"},
		"PolicyArns.member.1.arn": {"arn:p"},
	}
	got := requestParameters(awsquery.ParamsFromValues(v))
	want := map[string]any{
		"roleName":     "ci",
		"tags":         []any{map[string]any{"key": "a", "value": "1"}, map[string]any{"key": "b", "value": "2"}},
		"clientIDList": []any{"x", "y"},
		"policyArns":   []any{map[string]any{"arn": "arn:p"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if requestParameters(awsquery.ParamsFromValues(url.Values{"Action": {"ListRoles"}, "Version": {"x"}})) != nil {
		t.Error("a call without parameters should record null")
	}
}
