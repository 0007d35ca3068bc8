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

// TestDemoKeepTwice (issue 12 item 7): `keyless demo --keep DIR` runs again
// on the DIR of an earlier run. The second run used to stop at step 3
// (EntityAlreadyExists: the role of the first run) and, had it gone on,
// would have trusted the first run's provider, whose issuer (another
// loopback port) is gone.
func TestDemoKeepTwice(t *testing.T) {
	dir := t.TempDir()
	for run := 1; run <= 2; run++ {
		var out bytes.Buffer
		if err := Run(context.Background(), Options{Out: &out, DataDir: dir}); err != nil {
			t.Fatalf("run %d failed: %v\n%s", run, err, out.String())
		}
		for _, want := range []string{"assumed-role/circleci-oidc-payments-api/", "AccessDenied", "intact", "Demo passed"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run %d output lacks %q:\n%s", run, want, out.String())
			}
		}
		if run == 2 {
			for _, want := range []string{"removed 1 provider(s) of an earlier demo run", "the role existed from an earlier demo run"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("second run does not say %q:\n%s", want, out.String())
				}
			}
		}
	}
}
