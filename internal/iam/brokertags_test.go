package iam

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/store/sqlite"
)

func TestIsAWSSTSEndpoint(t *testing.T) {
	tests := map[string]bool{
		"https://sts.amazonaws.com":                     true,
		"https://sts.amazonaws.com/":                    true,
		"https://STS.US-EAST-1.amazonaws.com":           true,
		"https://sts.eu-west-3.amazonaws.com:443":       true,
		"https://sts-fips.us-east-1.amazonaws.com":      true,
		"https://sts.us-gov-west-1.amazonaws.com":       true,
		"https://sts.cn-north-1.amazonaws.com.cn":       true,
		"https://sts.ap-southeast-4.amazonaws.com":      true,
		"http://sts.us-east-1.amazonaws.com":            false, // not TLS
		"https://sts.us-east-1.amazonaws.com:8443":      false,
		"https://sts.us-east-1.amazonaws.com.evil.com":  false,
		"https://evil.com/sts.us-east-1.amazonaws.com":  false,
		"https://sts.us-east-1.amazonaws.com/x":         false,
		"https://sts.us-east-1.amazonaws.com?a=b":       false,
		"https://u@sts.us-east-1.amazonaws.com":         false,
		"https://evilsts.us-east-1.amazonaws.com":       false,
		"https://sts.evil.amazonaws.com":                false,
		"https://iam.amazonaws.com":                     false,
		"https://sts.us-east-1.amazonaws.com#frag":      false,
		"sts.us-east-1.amazonaws.com":                   false,
		"https://sts.us-east-1.amazonaws.com.":          false,
		"https://127.0.0.1:8400":                        false,
		"https://sts.us-east-1.amazonaws.com\x00.a.com": false,
	}
	for u, want := range tests {
		if got := IsAWSSTSEndpoint(u); got != want {
			t.Errorf("IsAWSSTSEndpoint(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestSTSEndpointAllowed(t *testing.T) {
	allowed := []string{"http://127.0.0.1:8401/", "https://sts.internal.example:8443"}
	tests := map[string]bool{
		"https://sts.us-east-1.amazonaws.com": true,
		"http://127.0.0.1:8401":               true,
		"HTTP://127.0.0.1:8401/":              true,
		"http://127.0.0.1:8402":               false,
		"https://sts.internal.example:8443":   true,
		"https://sts.internal.example":        false,
		"http://localhost:8401":               false,
		"https://attacker.example":            false,
	}
	for u, want := range tests {
		if got := STSEndpointAllowed(u, allowed); got != want {
			t.Errorf("STSEndpointAllowed(%q) = %v, want %v", u, got, want)
		}
	}
}

// TestBrokerTagsCheckedWhenWritten: CreateRole and TagRole refuse an
// upstream endpoint tag that would send keyless's tokens to a server that
// is neither AWS nor allowed by the configuration (the endpoint-harvesting
// attack of a principal allowed iam:TagRole), and an upstream role tag that
// is not a role ARN; AWS endpoints and configured ones are accepted.
func TestBrokerTagsCheckedWhenWritten(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s := New(Options{Store: st, Account: "123456789012", Now: func() time.Time { return clock }, Rand: seededReader{rand.NewChaCha8([32]byte{2})}, AllowedSTSEndpoints: []string{"http://127.0.0.1:8401"}})
	if _, err := call(t, s, "CreateRole", url.Values{"RoleName": {"r"}, "AssumeRolePolicyDocument": {trust}}); err != nil {
		t.Fatal(err)
	}
	tag := func(k, v string) url.Values {
		return url.Values{"RoleName": {"r"}, "Tags.member.1.Key": {k}, "Tags.member.1.Value": {v}}
	}
	tests := []struct {
		key, value string
		ok         bool
	}{
		{TagUpstreamSTSEndpoint, "https://attacker.example", false},
		{"Keyless:Upstream-STS-Endpoint", "https://attacker.example", false},
		{TagUpstreamSTSEndpoint, "http://sts.us-east-1.amazonaws.com", false},
		{TagUpstreamSTSEndpoint, "https://sts.us-east-1.amazonaws.com.attacker.example", false},
		{TagUpstreamSTSEndpoint, "https://sts.eu-west-1.amazonaws.com", true},
		{TagUpstreamSTSEndpoint, "http://127.0.0.1:8401", true},
		{TagUpstreamRoleARN, "deploy", false},
		{TagUpstreamRoleARN, "arn:aws:iam::12345:role/deploy", false},
		{TagUpstreamRoleARN, "arn:aws:s3:::bucket", false},
		{TagUpstreamRoleARN, "arn:aws:iam::210987654321:role/ci/deploy", true},
		{TagUpstreamRoleARN, "arn:aws-cn:iam::210987654321:role/deploy", true},
		{"team", "https://sts.anything.example", true},
	}
	for i, tc := range tests {
		_, err := call(t, s, "TagRole", tag(tc.key, tc.value))
		if tc.ok != (err == nil) {
			t.Errorf("TagRole %s=%s: %v", tc.key, tc.value, err)
			continue
		}
		if err != nil {
			e, _ := errors.AsType[*awsquery.Error](err)
			if e == nil || e.Code != awsquery.CodeInvalidInput || !strings.Contains(e.Message, "keyless:upstream-") {
				t.Errorf("TagRole %s=%s: %v", tc.key, tc.value, err)
			}
		}
		_, err = call(t, s, "CreateRole", url.Values{"RoleName": {"r" + strconv.Itoa(i)}, "AssumeRolePolicyDocument": {trust},
			"Tags.member.1.Key": {tc.key}, "Tags.member.1.Value": {tc.value}})
		if tc.ok != (err == nil) {
			t.Errorf("CreateRole with %s=%s: %v", tc.key, tc.value, err)
		}
	}
	// The refused endpoint is not on the role.
	out, err := call(t, s, "ListRoleTags", url.Values{"RoleName": {"r"}})
	if err != nil || strings.Contains(string(out), "attacker") {
		t.Fatalf("tags = %s %v", out, err)
	}
}

func FuzzNormalizeSTSEndpoint(f *testing.F) {
	for _, s := range []string{"https://sts.amazonaws.com", "http://127.0.0.1:8401/", "https://[::1]:443", "https://u:p@h", "https://h/p?q#f", "", "%", "https://sts.us-east-1.amazonaws.com.cn", "http://[fe80::1%25eth0]:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, ok := NormalizeSTSEndpoint(raw)
		if !ok {
			return
		}
		// Canonical forms are fixed points, and what the AWS check
		// accepts is https on an amazonaws host.
		if again, ok2 := NormalizeSTSEndpoint(n); !ok2 || again != n {
			t.Fatalf("NormalizeSTSEndpoint(%q) = %q, again %q %v", raw, n, again, ok2)
		}
		if IsAWSSTSEndpoint(raw) && (!strings.HasPrefix(n, "https://sts") || !strings.Contains(n, ".amazonaws.com")) {
			t.Fatalf("IsAWSSTSEndpoint(%q) with canonical %q", raw, n)
		}
	})
}
