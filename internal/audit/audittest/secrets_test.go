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

// TestScanSecretsURLEncoded: a secret recorded as it came in a query string
// or URL (percent-encoded, either hex case) is found too.
func TestScanSecretsURLEncoded(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY EXAMPLEKEY"
	root := t.TempDir()
	files := map[string]string{
		"query.log": "GET /?X-Amz-Security-Token=wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCY+EXAMPLEKEY&Action=x",
		"path.log":  "url=/wJalrXUtnFEMI%2FK7MDENG+bPxRfiCY%20EXAMPLEKEY",
		"lower.log": "q=wJalrXUtnFEMI%2fK7MDENG%2bbPxRfiCY+EXAMPLEKEY",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	leaks, err := ScanSecrets(root, []string{secret})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range leaks {
		got[l.Path] = l.Form
	}
	want := map[string]string{"query.log": "query-escaped", "path.log": "path-escaped", "lower.log": "query-escaped-lowercase-hex"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("leaks (-want +got):\n%s", d)
	}
	// A URL-safe secret has one form only: no duplicate reports.
	os.WriteFile(filepath.Join(root, "safe.log"), []byte("KLS1abc-_xyz"), 0o644)
	leaks, _ = ScanSecrets(root, []string{"KLS1abc-_xyz"})
	if len(leaks) != 1 {
		t.Errorf("URL-safe secret reported %d times, want 1: %v", len(leaks), leaks)
	}
}

func TestNameEncodings(t *testing.T) {
	const u = "http://h/?Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F1&X-Amz-Security-Token=T&Version=2011-06-15&X-Amz-Signature=s"
	want := map[string]string{
		"hyphens escaped":                "http://h/?Action=GetCallerIdentity&X%2DAmz%2DAlgorithm=AWS4-HMAC-SHA256&X%2DAmz%2DCredential=A%2F1&X%2DAmz%2DSecurity%2DToken=T&Version=2011-06-15&X%2DAmz%2DSignature=s",
		"hyphens escaped, lowercase hex": "http://h/?Action=GetCallerIdentity&X%2dAmz%2dAlgorithm=AWS4-HMAC-SHA256&X%2dAmz%2dCredential=A%2F1&X%2dAmz%2dSecurity%2dToken=T&Version=2011-06-15&X%2dAmz%2dSignature=s",
		"every byte escaped":             "http://h/?Action=GetCallerIdentity&%58%2D%41%6D%7A%2D%41%6C%67%6F%72%69%74%68%6D=AWS4-HMAC-SHA256&%58%2D%41%6D%7A%2D%43%72%65%64%65%6E%74%69%61%6C=A%2F1&%58%2D%41%6D%7A%2D%53%65%63%75%72%69%74%79%2D%54%6F%6B%65%6E=T&Version=2011-06-15&%58%2D%41%6D%7A%2D%53%69%67%6E%61%74%75%72%65=s",
		"first byte escaped":             "http://h/?Action=GetCallerIdentity&%58-Amz-Algorithm=AWS4-HMAC-SHA256&%58-Amz-Credential=A%2F1&%58-Amz-Security-Token=T&Version=2011-06-15&%58-Amz-Signature=s",
		"last hyphen escaped":            "http://h/?Action=GetCallerIdentity&X-Amz%2DAlgorithm=AWS4-HMAC-SHA256&X-Amz%2DCredential=A%2F1&X-Amz-Security%2DToken=T&Version=2011-06-15&X-Amz%2DSignature=s",
		"token name alone escaped":       "http://h/?Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F1&X%2DAmz%2DSecurity%2DToken=T&Version=2011-06-15&X-Amz-Signature=s",
	}
	got := map[string]string{}
	for _, e := range NameEncodings() {
		got[e.Name] = e.Apply(u)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("encodings (-want +got):\n%s", d)
	}
}
