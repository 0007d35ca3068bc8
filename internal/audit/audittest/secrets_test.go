package audittest

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

func TestScanSecrets(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	const token = "tok<&>en-1234567890"
	root := t.TempDir()
	big := bytes.Repeat([]byte("x"), 1<<20-10) // the secret straddles the 1 MiB chunk boundary
	files := map[string][]byte{
		"clean.json":         []byte(`{"Records":[]}`),
		"plain.log":          []byte("before " + secret + " after"),
		"sub/inside.json.gz": gz(t, []byte(`{"k":"`+secret+`"}`)),
		"sub/renamed.bin":    gz(t, []byte("gzip without the name "+secret)),
		"escaped.json":       []byte(`{"t":"tok\u003c\u0026\u003een-1234567890"}`),
		"boundary.txt":       append(append(bytes.Clone(big), secret...), '\n'),
		"damaged.json.gz":    gz(t, []byte(secret+strings.Repeat("y", 5000)))[:40],
		"twice.txt":          []byte(secret + secret),
		"near-miss.txt":      []byte(secret[:len(secret)-1]),
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	leaks, err := ScanSecrets(root, []string{"", secret, token})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, l := range leaks {
		got[l.Path] = append(got[l.Path], l.String())
		if strings.Contains(l.String(), secret) || strings.Contains(l.String(), token) {
			t.Errorf("the leak report repeats the secret: %s", l)
		}
	}
	want := map[string][]string{
		"plain.log":          {"secret #1 (raw) found in plain.log at offset 7"},
		"sub/inside.json.gz": {"secret #1 (raw) found in sub/inside.json.gz (inside gzip) at offset 6"},
		"sub/renamed.bin":    {"secret #1 (raw) found in sub/renamed.bin (inside gzip) at offset 22"},
		"escaped.json":       {"secret #2 (json-escaped) found in escaped.json at offset 6"},
		"boundary.txt":       {"secret #1 (raw) found in boundary.txt at offset 1048566"},
		"twice.txt":          {"secret #1 (raw) found in twice.txt at offset 0", "secret #1 (raw) found in twice.txt at offset 40"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("leaks (-want +got):\n%s", d)
	}
}

func TestAssertNoSecrets(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("nothing to see"), 0o644)
	AssertNoSecrets(t, root, "hunter2-secret")
	ft := &fakeT{TB: t}
	os.WriteFile(filepath.Join(root, "b.txt"), []byte("pw=hunter2-secret"), 0o644)
	AssertNoSecrets(ft, root, "hunter2-secret")
	if ft.errors != 1 {
		t.Errorf("AssertNoSecrets reported %d leaks, want 1", ft.errors)
	}
}

type fakeT struct {
	testing.TB
	errors int
}

func (f *fakeT) Errorf(string, ...any) { f.errors++ }
func (f *fakeT) Helper()               {}
