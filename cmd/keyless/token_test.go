package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteToken: the JWT is written alone — no newline — to anything that
// is not a terminal (a buffer, a pipe, a file), and ends the line on a
// character device (a terminal; /dev/null stands in for one here).
func TestWriteToken(t *testing.T) {
	const tok = "h.p.s"
	var buf bytes.Buffer
	if err := writeToken(&buf, tok); err != nil || buf.String() != tok {
		t.Errorf("buffer: %q, %v; want %q", buf.String(), err, tok)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := writeToken(w, tok); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got, _ := io.ReadAll(r); string(got) != tok {
		t.Errorf("pipe: %q, want %q", got, tok)
	}

	path := filepath.Join(t.TempDir(), "tok.jwt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeToken(f, tok); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got, _ := os.ReadFile(path); string(got) != tok {
		t.Errorf("file: %q, want %q", got, tok)
	}

	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer null.Close()
	if !isTerminal(null) {
		t.Errorf("%s is a character device: want the terminal branch (newline)", os.DevNull)
	}
}
