package contract

import (
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var updateGolden = flag.Bool("update-assume-errors", false, "rewrite testdata/assume-errors/*.golden")

// TestAssumeErrorMessages (issue 12 item 6): `keyless assume` against a
// real keyless serve, one case per cause of failure, prints one short
// reason and the hint for that cause; the whole stderr is compared with
// testdata/assume-errors/<case>.golden (rewrite them with
// -update-assume-errors). The server-side causes go through the real
// server: a missing role, a trust condition that does not hold, an
// audience that is not a client ID, a duration over the role's maximum,
// each decoded to its one-line reason when the caller holds credentials
// that may decode (an administrator's), and not decoded in a CI job
// without credentials (the encoded blob then appears once, in the decode
// command). The client-side causes (nothing listening, a URL answering 404,
// a certificate not trusted) go to a closed port and local test servers.
func TestAssumeErrorMessages(t *testing.T) {
	t.Parallel()
	s, _, roleARN := issuerFederation(t)
	mintAdmin := append(awsEnv(t, adminKeyID, adminSecret, ""), "AWS_ENDPOINT_URL_STS="+s.URL)
	mint := func(sub, aud string) string {
		tok, stderr, err := keyless(t, mintAdmin, "token", "mint", "--audience", aud, "--subject", sub)
		if err != nil {
			t.Fatalf("token mint: %v\n%s", err, stderr)
		}
		f := filepath.Join(t.TempDir(), "token.jwt")
		if err := os.WriteFile(f, []byte(strings.TrimSpace(tok)), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	good := mint("repo:acme/app:ref:refs/heads/main", "sts.amazonaws.com")
	evil := mint("repo:evil/app:ref:refs/heads/main", "sts.amazonaws.com")
	otherAud := mint("repo:acme/app:ref:refs/heads/main", "other.example")
	missingRole := "arn:aws:iam::" + accountID + ":role/no-such-role"

	admin := awsEnv(t, adminKeyID, adminSecret, "") // may decode
	// A CI job: no AWS credentials, and an instance-metadata endpoint that
	// must never be asked.
	imds, imdsCalls := imdsCounter(t)
	ci := append(awsEnv(t, "", "", ""), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds)
	// awsEnv sets AWS_MAX_ATTEMPTS=1, which keyless assume honours as the
	// AWS CLI does: the unreachable case fails at once.

	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	tlsServer := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsServer.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name     string
		env      []string
		endpoint string
		role     string
		token    string
		extra    []string
	}{
		{name: "missing-role-decoded", env: admin, role: missingRole, token: good},
		{name: "missing-role-ci", env: ci, role: missingRole, token: good},
		{name: "trust-mismatch-decoded", env: admin, role: roleARN, token: evil},
		{name: "trust-mismatch-ci", env: ci, role: roleARN, token: evil},
		{name: "audience-decoded", env: admin, role: roleARN, token: otherAud},
		{name: "audience-ci", env: ci, role: roleARN, token: otherAud},
		{name: "duration-over-maximum", env: ci, role: roleARN, token: good, extra: []string{"--duration", "7200"}},
		{name: "endpoint-unreachable", env: ci, endpoint: closedURL, role: roleARN, token: good},
		{name: "endpoint-404", env: ci, endpoint: notFound.URL + "/sts", role: roleARN, token: good},
		{name: "endpoint-tls-untrusted", env: ci, endpoint: tlsServer.URL, role: roleARN, token: good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := tc.endpoint
			if endpoint == "" {
				endpoint = s.URL
			}
			args := append([]string{"assume", "--role-arn", tc.role, "--endpoint-url", endpoint,
				"--token-file", tc.token, "--session-name", "ci-1", "--output", "json"}, tc.extra...)
			code, stdout, stderr := runKeyless(t, tc.env, args...)
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q, want 1 and nothing\n%s", code, stdout, stderr)
			}
			got := normaliseAssumeError(stderr, map[string]string{
				s.URL: "{SERVER}", endpoint: "{ENDPOINT}", tc.token: "{TOKEN_FILE}",
			})
			compareAssumeGolden(t, filepath.Join("testdata", "assume-errors", tc.name+".golden"), got)
			if n := strings.Count(stderr, "\n"); n > 8 {
				t.Errorf("%d lines on stderr, want a short message:\n%s", n, stderr)
			}
			if strings.Contains(tc.name, "decoded") && strings.Contains(stderr, "decode-authorization-message") {
				t.Errorf("decodable reason not decoded:\n%s", stderr)
			}
		})
	}
	if n := imdsCalls.Load(); n != 0 {
		t.Errorf("keyless assume asked EC2 instance metadata %d times", n)
	}
}

var (
	blobRE      = regexp.MustCompile(`--encoded-message [A-Za-z0-9_\-]+`)
	requestIDRE = regexp.MustCompile(`request id [0-9a-f-]+`)
	expRE       = regexp.MustCompile(`exp=\S+`)
	loopbackRE  = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	waitRE      = regexp.MustCompile(`wait=\S+`)
)

// normaliseAssumeError replaces what changes from run to run.
func normaliseAssumeError(s string, replace map[string]string) string {
	// Longest first: the server URL is a prefix of endpoints under it.
	keys := make([]string, 0, len(replace))
	for k := range replace {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if len(keys[j]) > len(keys[i]) {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, replace[k])
	}
	s = blobRE.ReplaceAllString(s, "--encoded-message {BLOB}")
	s = requestIDRE.ReplaceAllString(s, "request id {REQUEST_ID}")
	s = expRE.ReplaceAllString(s, "exp={EXP}")
	s = loopbackRE.ReplaceAllString(s, "127.0.0.1:{PORT}")
	s = waitRE.ReplaceAllString(s, "wait={WAIT}")
	return s
}

func compareAssumeGolden(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-assume-errors to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}
