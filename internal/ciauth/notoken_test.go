package ciauth

import (
	"errors"
	"strings"
	"testing"
)

// TestCircleCINoTokenSaysWhatToDo (issue 12 item 8): a CircleCI job
// without a token is told how jobs get one (a context, or the fork
// setting), not only that it has none.
func TestCircleCINoTokenSaysWhatToDo(t *testing.T) {
	_, err := DetectSource(SourceConfig{Env: Env{"CIRCLECI": "true", "PATH": ""}})
	if !errors.Is(err, ErrNoToken) {
		t.Fatalf("err %v, want ErrNoToken", err)
	}
	for _, want := range []string{"CIRCLE_OIDC_TOKEN_V2", "add a context to the job", "forked pull requests"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
