package contract

import (
	"strings"
	"testing"
	"time"
)

// TestUnservedServiceCLI (issue 12 item 1): the real AWS CLI pointed at
// keyless for a service keyless does not serve prints one clear error that
// names the service and says what keyless serves — not a 404 page, a
// parse failure of a banner, or "Internal Server Error" after retries.
func TestUnservedServiceCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	cases := []struct {
		args    []string
		code    string
		service string
	}{
		{[]string{"s3", "ls"}, "NotImplemented", "s3"},                        // REST-XML, GET /
		{[]string{"s3", "ls", "s3://acme-web/site/"}, "NotImplemented", "s3"}, // REST-XML, a path keyless has no route for
		{[]string{"dynamodb", "list-tables"}, "NotImplemented", "dynamodb"},   // JSON 1.0
		{[]string{"sqs", "list-queues"}, "NotImplemented", "sqs"},             // JSON (query-compatible)
		{[]string{"sns", "list-topics"}, "InvalidAction", "sns"},              // Query
		{[]string{"lambda", "list-functions"}, "NotImplemented", "lambda"},    // REST-JSON
		{[]string{"sts", "get-caller-identity"}, "", ""},                      // served: unchanged
		{[]string{"iam", "list-roles", "--max-items", "1"}, "", ""},           // served: unchanged
	}
	for _, tc := range cases {
		r := s.aws(t, tc.args...)
		name := strings.Join(tc.args, " ")
		if tc.code == "" {
			if r.Code != 0 {
				t.Errorf("aws %s failed: %s", name, r.Stderr)
			}
			continue
		}
		if r.Code == 0 {
			t.Errorf("aws %s succeeded: %s", name, r.Stdout)
			continue
		}
		if got := r.ErrorCode(); got != tc.code {
			t.Errorf("aws %s: error code %q, want %q:\n%s", name, got, tc.code, r.Stderr)
		}
		msg := strings.TrimSpace(r.Stderr)
		for _, want := range []string{tc.service + " is not implemented here", "STS and IAM only"} {
			if !strings.Contains(msg, want) {
				t.Errorf("aws %s: the error does not say %q:\n%s", name, want, msg)
			}
		}
		if strings.Contains(msg, accountID) {
			t.Errorf("aws %s: the error reveals the account id:\n%s", name, msg)
		}
	}

	// 501 is final: the CLI, allowed 3 attempts, makes one (a 500, what
	// a banner used to give S3, is retried until the CLI gives up).
	env := awsEnv(t, adminKeyID, adminSecret, "")
	for i, kv := range env {
		if strings.HasPrefix(kv, "AWS_MAX_ATTEMPTS=") {
			env[i] = "AWS_MAX_ATTEMPTS=3"
		}
	}
	const logged = "request for a service keyless does not serve"
	before := len(s.logLines(logged))
	r := awsCLI(t, s.URL, env, "s3", "ls")
	if r.ErrorCode() != "NotImplemented" {
		t.Errorf("aws s3 ls with 3 attempts: want NotImplemented:\n%s", r.Stderr)
	}
	// The server logs each request before answering it; give the log
	// pipe a moment to deliver the last line.
	for deadline := time.Now().Add(2 * time.Second); len(s.logLines(logged)) == before && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(s.logLines(logged)) - before; n != 1 {
		t.Errorf("aws s3 ls with 3 attempts sent %d requests, want 1 (a 501 is not retried)", n)
	}
}
