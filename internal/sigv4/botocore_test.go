package sigv4_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/sigv4"
	"github.com/keylessci/keyless/internal/testenv"
)

const botocoreDir = "testdata/botocore"

// runGenerator runs testdata/gen_botocore.py (botocore and the real AWS CLI)
// into dir.
func runGenerator(t *testing.T, dir string) {
	t.Helper()
	py := testenv.RequirePython(t, "botocore")
	testenv.RequireCommand(t, "aws")
	out, err := exec.Command(py, "testdata/gen_botocore.py", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("gen_botocore.py: %v\n%s", err, out)
	}
}

// requestTime reads X-Amz-Date from a wire request, header or query.
func requestTime(t *testing.T, w wire) time.Time {
	t.Helper()
	r, _ := serverRequest(t, w)
	d := r.Header.Get("X-Amz-Date")
	if d == "" {
		d = r.URL.Query().Get("X-Amz-Date")
	}
	tm, err := time.Parse("20060102T150405Z", d)
	if err != nil {
		t.Fatalf("no request time: %v", err)
	}
	return tm
}

func secretFor(t *testing.T, akid string) string {
	t.Helper()
	switch akid {
	case testAKID:
		return testSecret
	case longAKID:
		return longSecret
	}
	t.Fatalf("unknown key %q", akid)
	return ""
}

// verifyBotocoreDir verifies every captured request in dir; with mutate, it
// also requires every change to a signed part to be refused.
func verifyBotocoreDir(t *testing.T, dir string, mutate bool) {
	files, err := filepath.Glob(filepath.Join(dir, "*.http"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("only %d fixtures in %s", len(files), dir)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".http")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			w := wire(b)
			v := &sigv4.Verifier{Now: fixedClock(requestTime(t, w).Add(2 * time.Minute))}
			r, _ := serverRequest(t, w)
			sig, err := v.Parse(r)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			secret := secretFor(t, sig.AccessKeyID)
			if _, err := check(v, w, secret); err != nil {
				t.Fatalf("botocore-signed request refused: %v", err)
			}
			wantService := "sts"
			if strings.Contains(name, "-iam-") {
				wantService = "iam"
			}
			if sig.Service != wantService || sig.Presigned != strings.Contains(name, "presigned") {
				t.Errorf("parsed %+v", fieldsOf(sig))
			}
			if sig.AccessKeyID == testAKID && sig.SessionToken != testToken {
				t.Errorf("session token %q", sig.SessionToken)
			}
			if mutate {
				requireAllFail(t, v, w, secret)
			}
		})
	}
}

// TestBotocoreFixtures verifies requests captured from botocore and the AWS
// CLI (testdata/gen_botocore.py; regenerate with -update), so the check runs
// without Python.
func TestBotocoreFixtures(t *testing.T) {
	if *update {
		old, _ := filepath.Glob(filepath.Join(botocoreDir, "*.http"))
		for _, f := range old {
			os.Remove(f)
		}
		runGenerator(t, botocoreDir)
	}
	verifyBotocoreDir(t, botocoreDir, true)
}

// TestBotocoreLive signs fresh requests with the installed botocore and AWS
// CLI, catching a client upgrade that changes how they sign.
func TestBotocoreLive(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("runs Python and the AWS CLI")
	}
	dir := t.TempDir()
	runGenerator(t, dir)
	verifyBotocoreDir(t, dir, false)
}
