package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func stdHMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// TestHMACMatchesStdlib covers the key and message lengths around the block
// size and the inline buffer, where a hand-written HMAC could go wrong.
func TestHMACMatchesStdlib(t *testing.T) {
	for _, kl := range []int{0, 1, 32, 44, 63, 64, 65, 128, 200} {
		for _, ml := range []int{0, 1, 55, 56, 64, 119, 120, 200, 383, 384, 385, 1000} {
			key := []byte(strings.Repeat("k", kl))
			msg := []byte(strings.Repeat("m", ml))
			got := hmacSHA256(key, msg)
			if want := stdHMAC(key, msg); !hmac.Equal(got[:], want) {
				t.Errorf("key %d msg %d: mismatch", kl, ml)
			}
			gotStr := hmacSHA256(key, string(msg))
			if gotStr != got {
				t.Errorf("key %d msg %d: string and []byte differ", kl, ml)
			}
		}
	}
}

func FuzzHMAC(f *testing.F) {
	f.Add([]byte("AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), []byte("20150830"))
	f.Add([]byte(strings.Repeat("x", 65)), []byte(strings.Repeat("y", 400)))
	f.Fuzz(func(t *testing.T, key, msg []byte) {
		got := hmacSHA256(key, msg)
		if want := stdHMAC(key, msg); !hmac.Equal(got[:], want) {
			t.Fatalf("mismatch for key %q msg %q", key, msg)
		}
	})
}

// TestSigningKey is the derivation example from AWS's documentation
// ("Examples of how to derive a signing key for Signature Version 4").
func TestSigningKey(t *testing.T) {
	k := signingKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
	const want = "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
	if got := string(hexString(k[:])); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func hexString(b []byte) []byte {
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
	}
	return out
}

func TestParseAmzDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"20261127T233841Z", time.Date(2026, 11, 27, 23, 38, 41, 0, time.UTC), true},
		{"20240229T000000Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), true},
		{"20250229T000000Z", time.Time{}, false}, // not a leap year
		{"20261127T243841Z", time.Time{}, false},
		{"20261127T236041Z", time.Time{}, false},
		{"20261127t233841Z", time.Time{}, false},
		{"20261127T233841", time.Time{}, false},
		{"2026112 T233841Z", time.Time{}, false},
		{"+0261127T233841Z", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tc := range tests {
		got, ok := parseAmzDate(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseAmzDate(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	tests := map[string]string{
		"":                "/",
		"/":               "/",
		"/a/b":            "/a/b",
		"/a/./b":          "/a/b",
		"/a/../b":         "/b",
		"/../..":          "/",
		"//a//b//":        "/a/b/",
		"/a/b/..":         "/a",
		"/.%2E/x":         "/.%2E/x", // escaped dots are not dot segments
		"/a/.b/c.":        "/a/.b/c.",
		"/ü/./%E1%88%B4/": "/ü/%E1%88%B4/",
	}
	for in, want := range tests {
		if got := normalizePath(in); got != want {
			t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalComponent(t *testing.T) {
	tests := map[string]string{
		"":                  "",
		"abc-._~XYZ019":     "abc-._~XYZ019",
		"a+b":               "a%20b",
		"a%20b":             "a%20b",
		"%7e%7E":            "~~",
		"%2f":               "%2F",
		"%":                 "%25",
		"%4":                "%254",
		"%zz":               "%25zz",
		"ü":                 "%C3%BC",
		"a/b?c=d&e":         "a%2Fb%3Fc%3Dd%26e",
		"X-Amz-Algorith%6D": "X-Amz-Algorithm",
	}
	for in, want := range tests {
		if got := canonicalComponent(in); got != want {
			t.Errorf("canonicalComponent(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCanonicalComponentIdempotent: a canonical component is its own
// canonical form, which is what lets the fast path skip re-encoding.
func FuzzCanonicalComponent(f *testing.F) {
	for _, s := range []string{"a+b", "%zz", "%2f", "ü", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := canonicalComponent(s)
		if !isCanonicalComponent(c) {
			t.Fatalf("canonicalComponent(%q) = %q is not canonical", s, c)
		}
		if again := canonicalComponent(c); again != c {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, c, again)
		}
		if dec := queryUnescape(c); dec != queryUnescape(s) {
			t.Fatalf("meaning changed: %q decodes to %q, %q to %q", s, queryUnescape(s), c, dec)
		}
	})
}

func TestParseSignedHeaders(t *testing.T) {
	ok := map[string][]string{
		"host":                         {"host"},
		"content-type;host;x-amz-date": {"content-type", "host", "x-amz-date"},
		"a_b;host;x-k8s-aws-id":        {"a_b", "host", "x-k8s-aws-id"},
	}
	for in, want := range ok {
		got, err := parseSignedHeaders(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", in, diff)
		}
	}
	for _, in := range []string{"", ";", "host;", ";host", "host;host", "x;host;a", "Host", "ho st", "host;x:y", "host;é"} {
		if _, err := parseSignedHeaders(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
