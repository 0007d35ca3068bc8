package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes: 2 for every usage error, whether cobra refuses the command
// line (unknown command or flag, wrong number of arguments, a flag value
// that does not parse, exclusive flags) or a command does (a bad --output);
// 1 for failures; the statuses commands choose themselves are kept (audit
// verify: 2 when it cannot check).
func TestExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		args       []string
		want       int
		wantStderr string
	}{
		{args: []string{}, want: 0},
		{args: []string{"admin"}, want: 0},
		{args: []string{"--help"}, want: 0},
		{args: []string{"bogus"}, want: 2, wantStderr: `unknown command "bogus" for "keyless"`},
		{args: []string{"admin", "bogus"}, want: 2, wantStderr: `unknown command "bogus" for "keyless admin"`},
		{args: []string{"admin", "lst-keys"}, want: 2, wantStderr: "did you mean list-keys?"},
		{args: []string{"sts", "rotate"}, want: 2, wantStderr: `unknown command "rotate" for "keyless sts"`},
		{args: []string{"completion", "tcsh"}, want: 2, wantStderr: `unknown command "tcsh" for "keyless completion"`},
		{args: []string{"completion", "bash"}, want: 0},
		{args: []string{"help", "admin"}, want: 0},
		{args: []string{"serve", "--bogus"}, want: 2, wantStderr: "unknown flag: --bogus"},
		{args: []string{"serve", "extra"}, want: 2, wantStderr: `unknown command "extra" for "keyless serve"`},
		{args: []string{"audit", "verify"}, want: 2, wantStderr: "accepts 1 arg(s), received 0"},
		{args: []string{"issuer", "keys", "--token-lifetime", "soon"}, want: 2, wantStderr: `invalid argument "soon"`},
		{args: []string{"assume", "--token-file", "a", "--token-env", "B"}, want: 2, wantStderr: "none of the others can be"},
		{args: []string{"assume", "--role-arn", "arn:aws:iam::123456789012:role/x", "--token-file", "a"}, want: 2, wantStderr: "say where the credentials go"},
		{args: []string{"token", "mint", "--endpoint-url", "http://127.0.0.1:1", "--output", "yaml"}, want: 2, wantStderr: "--output must be token or json"},
		{args: []string{"admin", "list-keys", "--data", missing}, want: 1, wantStderr: "no keyless store in " + missing},
		{args: []string{"audit", "verify", missing}, want: 2, wantStderr: "no digest public key"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Setenv("KEYLESS_DATA", "")
			root := newRootCmd()
			root.SetOut(io.Discard)
			var stderr strings.Builder
			got := run(context.Background(), root, tc.args, &stderr)
			if got != tc.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, tc.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr.String())
			}
			if tc.want == 2 && !strings.Contains(tc.wantStderr, "digest") && !strings.Contains(stderr.String(), "--help' for usage.") {
				t.Errorf("a usage error does not point to --help:\n%s", stderr.String())
			}
		})
	}
}
