package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoRuns(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Out: &out, DataDir: t.TempDir()}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"#10/10", "assumed-role/circleci-oidc-payments-api/", "AccessDenied",
		"condition StringLike", "but the token has", "intact", "1 digest(s)", "Demo passed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The demo never prints a secret access key or a session token.
	if strings.Contains(out.String(), "KLS1") {
		t.Error("a session token was printed")
	}
}
