// Package testenv decides what tests do when a real component they need
// (the AWS CLI, boto3, moto_server, PostgreSQL, chromium, wrk) is missing:
// skip on a developer machine, fail under CI=true, so CI can never go green by
// silently skipping the tests that matter.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Missing skips the test, or fails it under CI, because component is absent.
func Missing(t testing.TB, component, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required under CI=true but is missing: %s", component, why)
	}
	t.Skipf("%s not available (%s); skipping outside CI", component, why)
}

// RequireCommand returns the path of the named executable, or skips/fails.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, err.Error())
	}
	return p
}

// RequirePython requires python3 with the given importable modules
// (for example "boto3", "moto").
func RequirePython(t testing.TB, modules ...string) string {
	t.Helper()
	py := RequireCommand(t, "python3")
	for _, m := range modules {
		if out, err := exec.Command(py, "-c", "import "+m).CombinedOutput(); err != nil {
			Missing(t, "python module "+m, string(out))
		}
	}
	return py
}

// Short reports whether long-running tests should be skipped. Under CI they
// always run.
func Short() bool { return testing.Short() && !InCI() }
