package tfhcl

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		``:                      `""`,
		`plain`:                 `"plain"`,
		`say "hi"`:              `"say \"hi\""`,
		`a\b`:                   `"a\\b"`,
		"line\nnext\ttab\r":     `"line\nnext\ttab\r"`,
		`${aws:username}`:       `"$${aws:username}"`,
		`%{if x}`:               `"%%{if x}"`,
		`$x and % and ${`:       `"$x and % and $${"`,
		"bell\x07 del\x7f":      `"bell\u0007 del\u007F"`,
		"bad \xff byte":         `"bad \uFFFD byte"`,
		"arn:aws:s3:::b/κλειδί": `"arn:aws:s3:::b/κλειδί"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
