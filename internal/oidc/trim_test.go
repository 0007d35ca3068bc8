package oidc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

func TestTrimToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a.b.c", "a.b.c"},
		{"a.b.c\n", "a.b.c"},
		{"a.b.c\r\n", "a.b.c"},
		{" \t a.b.c \t\r\n\n", "a.b.c"},
		{"a. b.c", "a. b.c"},                       // inside: kept
		{"\u00a0a.b.c\u00a0", "\u00a0a.b.c\u00a0"}, // not ASCII whitespace: kept
		{"\v a.b.c\f", "\v a.b.c\f"},               // only space, tab, CR, LF are trimmed
		{" \n\t", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := TrimToken(tt.in); got != tt.want {
			t.Errorf("TrimToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestValidateSurroundingWhitespace: a token with ASCII whitespace around
// it (a file written by echo, a CRLF editor, a pasted value) validates, and
// its SHA256 — what the audit trail records — is that of the token as
// validated, the same with or without the whitespace. Whitespace inside the
// token is refused.
func TestValidateSurroundingWhitespace(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	raw := f.baseToken().MustSerialize(t)
	sum := sha256.Sum256([]byte(raw))
	wantHash := hex.EncodeToString(sum[:])
	for _, tc := range []struct{ name, tok string }{
		{"as is", raw},
		{"trailing LF", raw + "\n"},
		{"trailing CRLF", raw + "\r\n"},
		{"leading and trailing spaces and tabs", " \t" + raw + "\t "},
		{"blank lines around", "\n\n" + raw + "\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := f.validate(tc.tok)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tok.Subject != baseSubj || tok.SHA256 != wantHash {
				t.Errorf("subject %q, SHA256 %s; want %q and the hash of the trimmed token %s", tok.Subject, tok.SHA256, baseSubj, wantHash)
			}
		})
	}
	i := len(raw) / 2
	for _, tc := range []struct{ name, tok string }{
		{"space inside", raw[:i] + " " + raw[i:]},
		{"newline inside", raw[:i] + "\n" + raw[i:]},
		{"CR before the last dot", raw[:lastDot(raw)] + "\r" + raw[lastDot(raw):]},
		{"no-break space around", "\u00a0" + raw + "\u00a0"},
		{"vertical tab around", "\v" + raw},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			_, err := f.validate(tc.tok)
			if e := asError(t, err); e.Code != CodeInvalidIdentityToken || !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v (code %s), want a malformed-token InvalidIdentityToken", err, e.Code)
			}
		})
	}
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}
