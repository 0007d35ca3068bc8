package server

import (
	"strings"
	"testing"
	"time"
)

// TestConfigMaxTokenLifetime: sts.max_token_lifetime defaults to 24 h,
// loads from YAML, and is refused outside whole seconds from 1m to 168h.
func TestConfigMaxTokenLifetime(t *testing.T) {
	if d := Defaults().STS.MaxTokenLifetime.D(); d != 24*time.Hour {
		t.Fatalf("default %s, want 24h", d)
	}
	for _, tc := range []struct {
		value string
		want  time.Duration // 0: refused by Validate
	}{
		{"1m", time.Minute}, {"15m", 15 * time.Minute}, {"48h", 48 * time.Hour}, {"168h", 168 * time.Hour},
		{"59s", 0}, {"0s", 0}, {"168h1s", 0}, {"90500ms", 0}, {"-1h", 0},
	} {
		c := Defaults()
		if err := decodeConfigYAML("test", []byte("sts:\n  max_token_lifetime: "+tc.value+"\n"), &c); err != nil {
			t.Fatalf("%s: %v", tc.value, err)
		}
		err := c.Validate()
		if tc.want != 0 {
			if err != nil || c.STS.MaxTokenLifetime.D() != tc.want {
				t.Errorf("%s: %s, %v", tc.value, c.STS.MaxTokenLifetime.D(), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "sts.max_token_lifetime") {
			t.Errorf("%s: Validate = %v, want a sts.max_token_lifetime error", tc.value, err)
		}
	}
}
