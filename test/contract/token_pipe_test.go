package contract

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/testenv"
)

// TestTokenMintToFileThenAWSCLI is the README's flow, literally: `keyless
// token mint > tok.jwt` through a shell redirect, then
// AWS_WEB_IDENTITY_TOKEN_FILE=tok.jwt aws sts get-caller-identity with the
// real AWS CLI against a real keyless serve. Redirected, mint writes the
// token with no trailing newline; and STS accepts a token file with
// surrounding ASCII whitespace (as AWS does) but refuses whitespace inside
// the token.
func TestTokenMintToFileThenAWSCLI(t *testing.T) {
	t.Parallel()
	aws := testenv.RequireCommand(t, "aws")
	sh := testenv.RequireCommand(t, "sh")
	s, _, roleARN := issuerFederation(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "tok.jwt")

	mint := exec.Command(sh, "-c", `"$KEYLESS" token mint --audience sts.amazonaws.com --subject repo:acme/app:ref:refs/heads/main > "$OUT"`)
	mint.Env = append(awsEnv(t, adminKeyID, adminSecret, ""), "AWS_ENDPOINT_URL_STS="+s.URL, "KEYLESS="+binary, "OUT="+file)
	if out, err := mint.CombinedOutput(); err != nil {
		t.Fatalf("keyless token mint > %s: %v\n%s", file, err, out)
	}
	tok, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(tok, " \t\r\n") || bytes.Count(tok, []byte(".")) != 2 {
		t.Fatalf("redirected token mint wrote %d bytes ending %q: want the JWT alone, no newline", len(tok), tok[max(0, len(tok)-8):])
	}

	identity := func(t *testing.T, tokenFile string) (string, error) {
		t.Helper()
		cmd := exec.Command(aws, "sts", "get-caller-identity", "--output", "text", "--query", "Arn")
		cmd.Env = append(awsEnv(t, "", "", ""), // a CI job: no AWS credentials at all
			"AWS_ENDPOINT_URL_STS="+s.URL, "AWS_ROLE_ARN="+roleARN,
			"AWS_WEB_IDENTITY_TOKEN_FILE="+tokenFile, "AWS_ROLE_SESSION_NAME=readme-flow")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	want := "arn:aws:sts::" + accountID + ":assumed-role/jenkins-deploy/readme-flow"
	t.Run("as minted", func(t *testing.T) {
		if got, err := identity(t, file); err != nil || got != want {
			t.Fatalf("aws sts get-caller-identity: %v\n%s", err, got)
		}
	})
	// Token files as people write them: echo, a CRLF editor, a paste.
	for name, content := range map[string]string{
		"echo newline":   string(tok) + "\n",
		"CRLF":           string(tok) + "\r\n",
		"spaces and tab": "  \t" + string(tok) + " \n\n",
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "tok.jwt")
			if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if got, err := identity(t, f); err != nil || got != want {
				t.Fatalf("aws sts get-caller-identity with %q around the token: %v\n%s", name, err, got)
			}
		})
	}
	t.Run("whitespace inside is refused", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "tok.jwt")
		i := bytes.IndexByte(tok, '.') + 5
		inner := string(tok[:i]) + "\n" + string(tok[i:])
		if err := os.WriteFile(f, []byte(inner), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := identity(t, f)
		if err == nil || !strings.Contains(got, "InvalidIdentityToken") {
			t.Fatalf("a token with a newline inside: err %v, output %s; want InvalidIdentityToken", err, got)
		}
	})
}
