package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// TestBrokerUsageErrors: the broker and provider commands refuse bad
// command lines with exit status 2 before calling anything.
func TestBrokerUsageErrors(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"broker", "aws-setup"}, `required flag(s) "role" not set`},
		{[]string{"broker", "aws-setup", "--role", "r", "--output", "yaml"}, "--output must be terraform or cli"},
		{[]string{"broker", "aws-setup", "--role", "a b"}, `--role "a b": want the name of a keyless role`},
		{[]string{"broker", "aws-setup", "--role", "r"}, "no keyless server: give --endpoint-url"},
		{[]string{"broker", "aws-setup", "--role", "r", "--endpoint-url", "127.0.0.1:8400"}, "want http(s)://HOST[:PORT]"},
		{[]string{"broker", "revoke-older"}, "give --role NAME (a keyless role linked to an AWS role) or --upstream-role-arn ARN"},
		{[]string{"broker", "revoke-older", "--upstream-role-arn", "arn:aws:iam::1:role/x"}, "is not an IAM role ARN"},
		{[]string{"broker", "revoke-older", "--role", "r", "--before", "yesterday"}, "want an RFC 3339 time"},
		{[]string{"broker", "revoke-older", "--role", "r", "--before", future}, "is in the future"},
		{[]string{"provider", "thumbprint", "http://127.0.0.1:1/oidc"}, "want an https issuer URL"},
		{[]string{"provider", "thumbprint"}, "accepts 1 arg(s), received 0"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL", "")
			t.Setenv("AWS_ENDPOINT_URL_IAM", "")
			root := newRootCmd()
			root.SetOut(io.Discard)
			var stderr strings.Builder
			if got := run(context.Background(), root, tc.args, &stderr); got != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr.String())
			}
		})
	}
}

// TestSetupUpstream: the upstream role is the tag when set (flags, when
// given, must agree with it), else built from the flags.
func TestSetupUpstream(t *testing.T) {
	const tag = "arn:aws:iam::222222222222:role/team/deploy"
	for _, tc := range []struct {
		name       string
		tag        string
		flags      []string
		want       string
		wantTagged bool
		wantErr    string
	}{
		{name: "tag", tag: tag, want: tag, wantTagged: true},
		{name: "tag and agreeing account", tag: tag, flags: []string{"--upstream-account", "222222222222"}, want: tag, wantTagged: true},
		{name: "tag and agreeing name", tag: tag, flags: []string{"--upstream-role-name", "deploy"}, want: tag, wantTagged: true},
		{name: "tag and another account", tag: tag, flags: []string{"--upstream-account", "333333333333"}, wantErr: "is linked to " + tag + " already"},
		{name: "tag and another name", tag: tag, flags: []string{"--upstream-role-name", "other"}, wantErr: "is linked to " + tag + " already"},
		{name: "no tag, account", flags: []string{"--upstream-account", "222222222222"}, want: "arn:aws:iam::222222222222:role/ci"},
		{name: "no tag, account and name", flags: []string{"--upstream-account", "222222222222", "--upstream-role-name", "up"}, want: "arn:aws:iam::222222222222:role/up"},
		{name: "no tag, nothing", wantErr: "has no keyless:upstream-role-arn tag: give --upstream-account"},
		{name: "no tag, short account", flags: []string{"--upstream-account", "2222"}, wantErr: "want a 12-digit AWS account id"},
		{name: "no tag, bad name", flags: []string{"--upstream-account", "222222222222", "--upstream-role-name", "a/b"}, wantErr: "is not an IAM role name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newBrokerAWSSetupCmd()
			if err := cmd.ParseFlags(tc.flags); err != nil {
				t.Fatal(err)
			}
			account, _ := cmd.Flags().GetString("upstream-account")
			name, _ := cmd.Flags().GetString("upstream-role-name")
			out := &awsiam.GetRoleOutput{Role: &iamtypes.Role{Arn: aws.String("arn:aws:iam::111111111111:role/ci")}}
			if tc.tag != "" {
				out.Role.Tags = []iamtypes.Tag{{Key: aws.String("Keyless:Upstream-Role-Arn"), Value: aws.String(tc.tag)}}
			}
			got, tagged, err := setupUpstream(cmd, out, "ci", account, name)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want || tagged != tc.wantTagged {
				t.Errorf("= %q, %v, %v; want %q, %v", got, tagged, err, tc.want, tc.wantTagged)
			}
		})
	}
}

func TestRegionFits(t *testing.T) {
	for _, tc := range []struct {
		partition, region string
		want              bool
	}{
		{"aws", "us-east-1", true},
		{"aws", "eu-west-3", true},
		{"aws", "", false},
		{"aws", "cn-north-1", false},
		{"aws", "us-gov-west-1", false},
		{"aws-cn", "cn-northwest-1", true},
		{"aws-cn", "us-east-1", false},
		{"aws-us-gov", "us-gov-east-1", true},
		{"aws-us-gov", "us-east-1", false},
	} {
		if got := regionFits(tc.partition, tc.region); got != tc.want {
			t.Errorf("regionFits(%q, %q) = %v, want %v", tc.partition, tc.region, got, tc.want)
		}
	}
}
