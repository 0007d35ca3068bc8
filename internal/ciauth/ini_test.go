package ciauth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	testCredKVs = []iniKV{
		{"aws_access_key_id", "ASIANEWNEWNEWNEWNEW0"},
		{"aws_secret_access_key", "new/secret+key"},
		{"aws_session_token", "new-session-token=="},
	}
	testConfigKVs = []iniKV{{"region", "eu-central-1"}, {"endpoint_url", "https://keyless.example.com"}}
)

// sectionSpan returns the byte range [start, end) of the first section
// match accepts, or ok=false.
func sectionSpan(data []byte, match func(string) bool) (start, end int, ok bool) {
	off := 0
	start = -1
	for _, l := range splitLines(data) {
		n := len(l.text) + len(l.eol)
		if name, isHeader := sectionName(l.text); isHeader {
			if start >= 0 {
				return start, off, true
			}
			if match(name) {
				start = off
			}
		}
		off += n
	}
	if start >= 0 {
		return start, len(data), true
	}
	return 0, 0, false
}

// checkPreserved asserts that everything outside the edited section is
// byte-identical between before and after.
func checkPreserved(t testing.TB, before, after []byte, match func(string) bool) {
	t.Helper()
	bs, be, ok := sectionSpan(before, match)
	if !ok {
		// A new section is appended: the old content is a prefix (up to a
		// newline added to an unterminated last line).
		trimmed := bytes.TrimRight(before, "\r\n")
		if !bytes.HasPrefix(after, trimmed) {
			t.Fatalf("appending a section changed existing content:\nbefore %q\nafter  %q", before, after)
		}
		return
	}
	as, ae, ok := sectionSpan(after, match)
	if !ok {
		t.Fatalf("edited section vanished from %q", after)
	}
	if !bytes.Equal(before[:bs], after[:as]) {
		t.Errorf("bytes before the section changed:\n%q\n%q", before[:bs], after[:as])
	}
	if !bytes.Equal(before[be:], after[ae:]) {
		t.Errorf("bytes after the section changed:\n%q\n%q", before[be:], after[ae:])
	}
}

// sectionValues reads key = value pairs of the matched section with the
// same rules as the editor (continuations are skipped).
func sectionValues(data []byte, match func(string) bool) map[string]string {
	got := map[string]string{}
	in := false
	for _, l := range splitLines(data) {
		if name, ok := sectionName(l.text); ok {
			if in {
				break
			}
			in = match(name)
			continue
		}
		if k, ok := keyOf(l.text); ok && in {
			i := strings.IndexAny(l.text, "=:")
			if _, dup := got[k]; !dup {
				got[k] = strings.TrimSpace(l.text[i+1:])
			}
		}
	}
	return got
}

func TestSetINISectionGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "ini", "*.in"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in")
		t.Run(name, func(t *testing.T) {
			before, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			profile := "ci"
			if name == "config-default" {
				profile = "default"
			}
			match, header := credentialsSectionMatcher(profile)
			kvs := testCredKVs
			if strings.HasPrefix(name, "config-") {
				match, header = configSectionMatcher(profile)
				kvs = testConfigKVs
			}
			after, err := setINISection(before, match, header, kvs)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".in") + ".golden"
			if *update {
				if err := os.WriteFile(golden, after, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if diff := cmp.Diff(string(want), string(after)); diff != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", golden, diff)
			}
			checkPreserved(t, before, after, match)
			vals := sectionValues(after, match)
			for _, kv := range kvs {
				if vals[kv.Key] != kv.Value {
					t.Errorf("%s = %q, want %q", kv.Key, vals[kv.Key], kv.Value)
				}
			}
			again, err := setINISection(after, match, header, kvs)
			if err != nil || !bytes.Equal(again, after) {
				t.Errorf("second application changed the file:\n%q\n%q", after, again)
			}
		})
	}
}

func TestSetINISectionRefusesBreakingValues(t *testing.T) {
	match, header := credentialsSectionMatcher("ci")
	for _, v := range []string{"a\nb", "a\r", "x\x00"} {
		if _, err := setINISection(nil, match, header, []iniKV{{"k", v}}); !errors.Is(err, errBadINIValue) {
			t.Errorf("value %q: err = %v, want errBadINIValue", v, err)
		}
	}
}

func TestConfigSectionMatcher(t *testing.T) {
	tests := []struct {
		profile, name string
		want          bool
	}{
		{"ci", "profile ci", true},
		{"ci", "profile   ci", true},
		{"ci", "ci", false},
		{"ci", "profile ci-other", false},
		{"ci", "sso-session ci", false},
		{"default", "default", true},
		{"default", "profile default", true},
		{"default", "profile", false},
	}
	for _, tt := range tests {
		match, _ := configSectionMatcher(tt.profile)
		if got := match(tt.name); got != tt.want {
			t.Errorf("profile %q vs [%s] = %v, want %v", tt.profile, tt.name, got, tt.want)
		}
	}
}

func FuzzSetINISection(f *testing.F) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "ini", "*.in"))
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[ci]\n  indented = x\n[ci]\na=1"))
	f.Add([]byte("\r\n[ci]\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		match, header := credentialsSectionMatcher("ci")
		out, err := setINISection(data, match, header, testCredKVs)
		if err != nil {
			t.Fatal(err)
		}
		checkPreserved(t, data, out, match)
		vals := sectionValues(out, match)
		for _, kv := range testCredKVs {
			if vals[kv.Key] != kv.Value {
				t.Fatalf("%s = %q after edit of %q:\n%q", kv.Key, vals[kv.Key], data, out)
			}
		}
		again, err := setINISection(out, match, header, testCredKVs)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%q\n%q", out, again)
		}
	})
}

func BenchmarkSetINISection(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "ini", "credentials-existing.in"))
	if err != nil {
		b.Fatal(err)
	}
	match, header := credentialsSectionMatcher("ci")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := setINISection(data, match, header, testCredKVs); err != nil {
			b.Fatal(err)
		}
	}
}
