package issuer

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseClaimFlag(t *testing.T) {
	tests := []struct {
		arg     string
		key     string
		value   any
		wantErr bool
	}{
		{arg: "repository=acme/app", key: "repository", value: "acme/app"},
		{arg: "ref=refs/heads/a=b", key: "ref", value: "refs/heads/a=b"},
		{arg: "empty=", key: "empty", value: ""},
		{arg: "oidc.circleci.com/ssh-rerun=true", key: "oidc.circleci.com/ssh-rerun", value: "true"},
		{arg: `oidc.circleci.com/context-ids=["a","b"]`, key: "oidc.circleci.com/context-ids", value: `["a","b"]`},
		{arg: "build:=42", key: "build", value: json.Number("42")},
		{arg: `groups:=["a","b"]`, key: "groups", value: []any{"a", "b"}},
		{arg: `https://aws.amazon.com/tags:={"principal_tags":{"P":["x"]}}`, key: "https://aws.amazon.com/tags",
			value: map[string]any{"principal_tags": map[string]any{"P": []any{"x"}}}},
		{arg: "a:b=c", key: "a:b", value: "c"},
		{arg: "novalue", wantErr: true},
		{arg: "=x", wantErr: true},
		{arg: ":=1", wantErr: true},
		{arg: "k:=null", wantErr: true},
		{arg: "k:=[1", wantErr: true},
		{arg: "k:=1 2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			key, v, err := ParseClaimFlag(tt.arg)
			if tt.wantErr {
				if !errors.Is(err, ErrClaimValue) {
					t.Fatalf("ParseClaimFlag = %q %v %v, want ErrClaimValue", key, v, err)
				}
				return
			}
			if err != nil || key != tt.key {
				t.Fatalf("ParseClaimFlag = %q, %v", key, err)
			}
			if diff := cmp.Diff(tt.value, v); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}
