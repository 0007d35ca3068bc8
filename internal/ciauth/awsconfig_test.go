package ciauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// isolateAWSEnv clears every AWS_* variable and points the shared files
// at an empty directory.
func isolateAWSEnv(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	return home
}

// TestLoadExplicitConfig: credentials come only from what the user set
// (environment or profile); with nothing set the answer is
// ErrNoCredentials at once, and the instance-metadata endpoint is never
// asked (a fake one, at the address AWS_EC2_METADATA_SERVICE_ENDPOINT
// points the SDK to, counts requests).
func TestLoadExplicitConfig(t *testing.T) {
	var imdsCalls atomic.Int32
	fakeIMDS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imdsCalls.Add(1)
		http.NotFound(w, r)
	}))
	defer fakeIMDS.Close()

	t.Run("nothing set", func(t *testing.T) {
		isolateAWSEnv(t)
		t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fakeIMDS.URL)
		cfg, err := LoadExplicitConfig(context.Background())
		if !errors.Is(err, ErrNoCredentials) || cfg.Credentials != nil {
			t.Fatalf("err = %v, credentials %v; want ErrNoCredentials and none", err, cfg.Credentials)
		}
		if _, err := DefaultDecodeCredentials().Retrieve(context.Background()); !errors.Is(err, ErrNoCredentials) {
			t.Errorf("decode credentials: err = %v, want ErrNoCredentials", err)
		}
		if n := imdsCalls.Load(); n != 0 {
			t.Errorf("instance metadata asked %d times", n)
		}
	})
	t.Run("environment keys", func(t *testing.T) {
		isolateAWSEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE000000001")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-secret-secret")
		cfg, err := LoadExplicitConfig(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c, err := cfg.Credentials.Retrieve(context.Background())
		if err != nil || c.AccessKeyID != "AKIAEXAMPLE000000001" {
			t.Fatalf("credentials %v, %v", c.AccessKeyID, err)
		}
	})
	t.Run("profile", func(t *testing.T) {
		home := isolateAWSEnv(t)
		os.WriteFile(filepath.Join(home, "credentials"), []byte("[ops]\naws_access_key_id = AKIAPROFILE000000001\naws_secret_access_key = s3cr3t-s3cr3t-s3cr3t\n"), 0o600)
		t.Setenv("AWS_PROFILE", "ops")
		cfg, err := LoadExplicitConfig(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c, err := cfg.Credentials.Retrieve(context.Background()); err != nil || c.AccessKeyID != "AKIAPROFILE000000001" {
			t.Fatalf("credentials %v, %v", c.AccessKeyID, err)
		}
	})
	t.Run("missing profile", func(t *testing.T) {
		isolateAWSEnv(t)
		t.Setenv("AWS_PROFILE", "nope")
		_, err := LoadExplicitConfig(context.Background())
		if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), `the AWS profile "nope" (AWS_PROFILE) is in neither`) {
			t.Fatalf("err = %v", err)
		}
	})
	if n := imdsCalls.Load(); n != 0 {
		t.Errorf("instance metadata asked %d times", n)
	}
}
