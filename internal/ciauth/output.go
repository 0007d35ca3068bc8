package ciauth

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Output formats for --output.
const (
	OutputEnv               = "env"
	OutputJSON              = "json"
	OutputCredentialProcess = "credential-process"
)

// EnvVar is one variable handed to later steps.
type EnvVar struct{ Name, Value string }

// CredentialEnv is the environment the AWS CLI and SDKs read: the key pair
// and session token, AWS_CREDENTIAL_EXPIRATION (botocore refreshes from it),
// the region and, for a non-AWS endpoint, AWS_ENDPOINT_URL.
func CredentialEnv(r *Result, region, endpoint string) []EnvVar {
	vars := []EnvVar{
		{"AWS_ACCESS_KEY_ID", r.Credentials.AccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", r.Credentials.SecretAccessKey},
		{"AWS_SESSION_TOKEN", r.Credentials.SessionToken},
		{"AWS_CREDENTIAL_EXPIRATION", r.Credentials.Expiration.UTC().Format(time.RFC3339)},
	}
	if region != "" {
		vars = append(vars, EnvVar{"AWS_REGION", region}, EnvVar{"AWS_DEFAULT_REGION", region})
	}
	if endpoint != "" {
		vars = append(vars, EnvVar{"AWS_ENDPOINT_URL", endpoint})
	}
	return vars
}

// GitHubOutputs are step outputs named as configure-aws-credentials names
// them, so workflows can switch without renaming. The account id and the
// expiry are always given; the credentials only with withCredentials (its
// output-credentials input).
func GitHubOutputs(r *Result, withCredentials bool) []EnvVar {
	out := []EnvVar{
		{"aws-account-id", r.AccountID()},
		{"aws-expiration", r.Credentials.Expiration.UTC().Format(time.RFC3339)},
	}
	if withCredentials {
		out = append(out,
			EnvVar{"aws-access-key-id", r.Credentials.AccessKeyID},
			EnvVar{"aws-secret-access-key", r.Credentials.SecretAccessKey},
			EnvVar{"aws-session-token", r.Credentials.SessionToken})
	}
	return out
}

var shellNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ErrUnrepresentable: a value no shell or CI file syntax can carry (NUL).
var ErrUnrepresentable = errors.New("value cannot be represented")

// ShellQuote quotes s for POSIX shells: single quotes, with each embedded
// single quote closed, escaped and reopened:
//
//	it's  →  'it'\''s'
//
// Nothing inside single quotes is special, so newlines, $, backquotes and
// backslashes pass through literally.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// FormatExports renders vars as POSIX `export NAME='value'` lines, for
// eval "$(keyless assume --output env)" and for CircleCI's $BASH_ENV.
func FormatExports(vars []EnvVar) (string, error) {
	var b strings.Builder
	for _, v := range vars {
		if !shellNameRE.MatchString(v.Name) {
			return "", fmt.Errorf("%w: %q is not a shell variable name", ErrUnrepresentable, v.Name)
		}
		if strings.ContainsRune(v.Value, 0) {
			return "", fmt.Errorf("%w: $%s contains a NUL byte", ErrUnrepresentable, v.Name)
		}
		b.WriteString("export " + v.Name + "=" + ShellQuote(v.Value) + "\n")
	}
	return b.String(), nil
}

// FormatGitHubFile renders vars in the syntax of $GITHUB_ENV and
// $GITHUB_OUTPUT, always in the multi-line form
//
//	NAME<<DELIMITER
//	value
//	DELIMITER
//
// with a random delimiter drawn from rnd and redrawn until no value
// contains it, so no value can end the block early or inject a variable.
func FormatGitHubFile(vars []EnvVar, rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var delim string
	for tries := 0; ; tries++ {
		if tries == 10 {
			return "", errors.New("could not draw a delimiter absent from the values")
		}
		var buf [16]byte
		if _, err := io.ReadFull(rnd, buf[:]); err != nil {
			return "", fmt.Errorf("drawing a delimiter: %w", err)
		}
		delim = "ghadelimiter_" + hex.EncodeToString(buf[:])
		clash := false
		for _, v := range vars {
			if strings.Contains(v.Value, delim) || strings.Contains(v.Name, delim) {
				clash = true
			}
		}
		if !clash {
			break
		}
	}
	var b strings.Builder
	for _, v := range vars {
		if v.Name == "" || strings.ContainsAny(v.Name, "=\r\n<") {
			return "", fmt.Errorf("%w: %q is not a GitHub variable name", ErrUnrepresentable, v.Name)
		}
		if strings.ContainsRune(v.Value, 0) {
			return "", fmt.Errorf("%w: %s contains a NUL byte", ErrUnrepresentable, v.Name)
		}
		b.WriteString(v.Name + "<<" + delim + "\n" + v.Value + "\n" + delim + "\n")
	}
	return b.String(), nil
}

// escapeWorkflowData escapes a workflow command's data as the runner
// expects (it unescapes %25, %0D, %0A).
func escapeWorkflowData(s string) string {
	s = strings.ReplaceAll(s, "%", "%25")
	s = strings.ReplaceAll(s, "\r", "%0D")
	return strings.ReplaceAll(s, "\n", "%0A")
}

// WriteGitHubMasks writes ::add-mask:: commands for each value. The runner
// reads workflow commands on stdout and stderr; stderr is used so masking
// works even when stdout is captured ($(...), eval) and never mixes with
// machine-readable output.
func WriteGitHubMasks(w io.Writer, values ...string) error {
	var b strings.Builder
	for _, v := range values {
		if v != "" {
			b.WriteString("::add-mask::" + escapeWorkflowData(v) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type jsonCredentials struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken"`
	Expiration      string `json:"Expiration"`
}

func toJSONCredentials(c Credentials) jsonCredentials {
	return jsonCredentials{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(time.RFC3339)}
}

// FormatJSON renders the result in the shape `aws sts
// assume-role-with-web-identity` prints, so scripts written against the
// AWS CLI (jq .Credentials.AccessKeyId) keep working.
func FormatJSON(r *Result) ([]byte, error) {
	type roleUser struct {
		AssumedRoleID string `json:"AssumedRoleId"`
		Arn           string `json:"Arn"`
	}
	out := struct {
		Credentials                 jsonCredentials `json:"Credentials"`
		SubjectFromWebIdentityToken string          `json:"SubjectFromWebIdentityToken,omitempty"`
		AssumedRoleUser             *roleUser       `json:"AssumedRoleUser,omitempty"`
		Provider                    string          `json:"Provider,omitempty"`
		Audience                    string          `json:"Audience,omitempty"`
		SourceIdentity              string          `json:"SourceIdentity,omitempty"`
	}{
		Credentials:                 toJSONCredentials(r.Credentials),
		SubjectFromWebIdentityToken: r.SubjectFromWebIdentityToken,
		Provider:                    r.Provider,
		Audience:                    r.Audience,
		SourceIdentity:              r.SourceIdentity,
	}
	if r.AssumedRoleARN != "" || r.AssumedRoleID != "" {
		out.AssumedRoleUser = &roleUser{r.AssumedRoleID, r.AssumedRoleARN}
	}
	b, err := json.MarshalIndent(out, "", "    ")
	return append(b, '\n'), err
}

// credentialProcessOutput is the credential_process protocol's document.
type credentialProcessOutput struct {
	Version int `json:"Version"`
	jsonCredentials
}

// FormatCredentialProcess renders c for the credential_process protocol
// (Version 1, Expiration in RFC 3339).
func FormatCredentialProcess(c Credentials) ([]byte, error) {
	b, err := json.Marshal(credentialProcessOutput{Version: 1, jsonCredentials: toJSONCredentials(c)})
	return append(b, '\n'), err
}
