package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsValid(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if got := c.Audit.GroupCommitWindow.D(); got != 2*time.Millisecond {
		t.Errorf("default group commit window = %s, want 2ms", got)
	}
}

// TestConfigAuditFile: the audit keys parse from YAML, bad values are
// refused with the key's name, and a typo is an error, not a default.
func TestConfigAuditFile(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		wantErr    string // substring; "" = valid
		check      func(t *testing.T, c Config)
	}{
		{name: "window and interval", yaml: "audit:\n  group_commit_window: 500us\n  seal_interval: 1m\n", check: func(t *testing.T, c Config) {
			if c.Audit.GroupCommitWindow.D() != 500*time.Microsecond || c.Audit.SealInterval.D() != time.Minute {
				t.Errorf("audit = %+v", c.Audit)
			}
		}},
		{name: "window off", yaml: "audit:\n  group_commit_window: 0s\n", check: func(t *testing.T, c Config) {
			if c.Audit.GroupCommitWindow != 0 || groupCommitWindow(0) >= 0 {
				t.Errorf("window 0 must disable waiting: %+v", c.Audit)
			}
		}},
		{name: "window too long", yaml: "audit:\n  group_commit_window: 1s\n", wantErr: "audit.group_commit_window 1s"},
		{name: "negative window", yaml: "audit:\n  group_commit_window: -1ms\n", wantErr: "audit.group_commit_window"},
		{name: "not a duration", yaml: "audit:\n  group_commit_window: soon\n", wantErr: "invalid duration"},
		{name: "typo", yaml: "audit:\n  group_comit_window: 1ms\n", wantErr: "group_comit_window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "keyless.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c := Defaults()
			err := c.LoadFile(p)
			if err == nil {
				err = c.Validate()
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			if tc.check != nil && err == nil {
				tc.check(t, c)
			}
		})
	}
}
