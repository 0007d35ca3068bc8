// Package audittest holds test helpers for code that writes keyless's audit
// trail, starting with a scanner that proves no secret reached the disk.
package audittest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// Leak is one occurrence of a secret. It names the secret by its position
// in the list given to ScanSecrets, never by value, so a report of a leak
// does not leak it again.
type Leak struct {
	Secret int    // index into the secrets slice
	Path   string // relative to the scanned root
	InGzip bool   // found in the decompressed content of a gzip file
	Offset int64  // byte offset of the match (in the decompressed stream when InGzip)
	Form   string // "raw", "json-escaped", "query-escaped", "path-escaped" or "query-escaped-lowercase-hex"
}

func (l Leak) String() string {
	where := l.Path
	if l.InGzip {
		where += " (inside gzip)"
	}
	return fmt.Sprintf("secret #%d (%s) found in %s at offset %d", l.Secret, l.Form, where, l.Offset)
}

// needle is one byte pattern to look for.
type needle struct {
	secret int
	form   string
	b      []byte
}

// ScanSecrets walks root and reports every occurrence of any secret in any
// regular file, both in its raw bytes and, for gzip files (recognised by
// content, whatever their name), in the decompressed content. Each secret
// is searched verbatim, in its JSON-escaped form and in its URL-encoded
// forms (query-escaped, path-escaped, and with lowercase hex digits: how a
// secret looks when a query string or URL is recorded as it came), each
// when it differs from the others. Empty secrets are ignored.
func ScanSecrets(root string, secrets []string) ([]Leak, error) {
	var needles []needle
	for i, s := range secrets {
		if s == "" {
			continue
		}
		for _, f := range secretForms(s) {
			needles = append(needles, needle{i, f.form, []byte(f.text)})
		}
	}
	var leaks []Leak
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		found, err := scanFile(p, needles)
		if err != nil {
			return fmt.Errorf("scan %s: %w", rel, err)
		}
		for _, l := range found {
			l.Path = filepath.ToSlash(rel)
			leaks = append(leaks, l)
		}
		return nil
	})
	return leaks, err
}

type secretForm struct{ form, text string }

// secretForms are the distinct byte forms a secret may take on disk.
func secretForms(s string) []secretForm {
	forms := []secretForm{{"raw", s}}
	add := func(form, text string) {
		for _, f := range forms {
			if f.text == text {
				return
			}
		}
		forms = append(forms, secretForm{form, text})
	}
	if esc, err := json.Marshal(s); err == nil {
		add("json-escaped", string(esc[1:len(esc)-1]))
	}
	q := url.QueryEscape(s)
	add("query-escaped", q)
	add("path-escaped", url.PathEscape(s))
	add("query-escaped-lowercase-hex", lowerHexEscapes(q))
	return forms
}

// lowerHexEscapes rewrites every %XX of s with lowercase hex digits.
func lowerHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = lowerASCII(b[i+1])
			b[i+2] = lowerASCII(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func scanFile(p string, needles []needle) ([]Leak, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	leaks, err := scanStream(f, needles, false)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	br := bufio.NewReader(f)
	if magic, err := br.Peek(2); err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return leaks, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return leaks, nil // not really gzip: the raw scan covered it
	}
	// A damaged gzip stream ends its scan with an error; what could be
	// decompressed has been scanned, and the raw bytes were scanned above.
	inner, _ := scanStream(zr, needles, true)
	return append(leaks, inner...), nil
}

// scanStream searches r in chunks, keeping an overlap so matches across
// chunk boundaries are found.
func scanStream(r io.Reader, needles []needle, inGzip bool) ([]Leak, error) {
	maxLen := 0
	for _, n := range needles {
		maxLen = max(maxLen, len(n.b))
	}
	if maxLen == 0 {
		return nil, nil
	}
	const chunk = 1 << 20
	buf := make([]byte, 0, chunk+maxLen)
	var base int64 // stream offset of buf[0]
	var leaks []Leak
	seen := map[[2]int64]bool{}
	for {
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for ni, nd := range needles {
			for i := 0; ; {
				j := bytes.Index(buf[i:], nd.b)
				if j < 0 {
					break
				}
				off := base + int64(i+j)
				if key := [2]int64{int64(ni), off}; !seen[key] {
					seen[key] = true
					leaks = append(leaks, Leak{Secret: nd.secret, InGzip: inGzip, Offset: off, Form: nd.form})
				}
				i += j + 1
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return leaks, nil
			}
			return leaks, err
		}
		keep := min(maxLen-1, len(buf))
		base += int64(len(buf) - keep)
		copy(buf, buf[len(buf)-keep:])
		buf = buf[:keep]
	}
}

// AssertNoSecrets fails t for every occurrence of a secret under root.
func AssertNoSecrets(t testing.TB, root string, secrets ...string) {
	t.Helper()
	leaks, err := ScanSecrets(root, secrets)
	if err != nil {
		t.Fatalf("scan %s for secrets: %v", root, err)
	}
	for _, l := range leaks {
		t.Errorf("secret leaked: %v", l)
	}
}
