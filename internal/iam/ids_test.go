package iam

import (
	"crypto/rand"
	"regexp"
	"testing"
)

func TestAccountFromRealIDs(t *testing.T) {
	// Real ids from a published CloudTrail event for account 774305579662.
	for _, id := range []string{"ASIA3ISBVQKHJOCMRQJH", "AROA3ISBVQKHLCPMWHJG5"} {
		got, ok := AccountFromID(id)
		if !ok || got != "774305579662" {
			t.Errorf("AccountFromID(%s) = %s, %v", id, got, ok)
		}
	}
}

func TestNewIDRoundTrip(t *testing.T) {
	shape := map[string]*regexp.Regexp{
		PrefixSessionKey: regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`),
		PrefixRole:       regexp.MustCompile(`^AROA[A-Z2-7]{17}$`),
	}
	for _, acct := range []string{"123456789012", "000000000001", "999999999999"} {
		for prefix, re := range shape {
			n := 16
			if prefix == PrefixRole {
				n = 17
			}
			for range 50 {
				id, err := NewID(rand.Reader, prefix, acct, n)
				if err != nil {
					t.Fatal(err)
				}
				if !re.MatchString(id) {
					t.Fatalf("%s does not match %s", id, re)
				}
				if got, _ := AccountFromID(id); got != acct {
					t.Fatalf("AccountFromID(%s) = %s, want %s", id, got, acct)
				}
			}
		}
	}
	if _, err := NewID(rand.Reader, "AROA", "12345", 17); err == nil {
		t.Error("short account accepted")
	}
}

func TestParseRoleARN(t *testing.T) {
	for _, tc := range []struct {
		arn, acct, name string
		ok              bool
	}{
		{"arn:aws:iam::123456789012:role/ci/deploy", "123456789012", "deploy", true},
		{"arn:aws:iam::123456789012:role/deploy", "123456789012", "deploy", true},
		{"arn:aws:iam::123456789012:role/ci/", "", "", false},
		{"arn:aws:iam::12345:role/x", "", "", false},
		{"arn:aws:iam::123456789012:user/x", "", "", false},
		{"arn:aws:sts::123456789012:assumed-role/r/s", "", "", false},
	} {
		acct, name, ok := ParseRoleARN(tc.arn)
		if ok != tc.ok || acct != tc.acct || name != tc.name {
			t.Errorf("ParseRoleARN(%q) = %q %q %v", tc.arn, acct, name, ok)
		}
	}
}
