package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestBuildInfoMetric: /metrics carries keyless_build_info = 1 with the
// build's version, commit (marked -dirty when modified) and Go version.
func TestBuildInfoMetric(t *testing.T) {
	cfg := Defaults()
	cfg.Data, cfg.AccountID = t.TempDir(), benchAcct
	s, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" },
		Build: BuildInfo{Version: "v1.2.3", Commit: "0123abcd", Modified: true, GoVersion: "go1.26.8"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mfs, err := s.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keyless_build_info" {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%d series, want 1", len(mf.GetMetric()))
		}
		m := mf.GetMetric()[0]
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		if diff := cmp.Diff(map[string]string{"version": "v1.2.3", "commit": "0123abcd-dirty", "go_version": "go1.26.8"}, labels); diff != "" {
			t.Errorf("labels (-want +got):\n%s", diff)
		}
		if m.GetGauge().GetValue() != 1 {
			t.Errorf("value %v, want 1", m.GetGauge().GetValue())
		}
		return
	}
	t.Fatal("no keyless_build_info series")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON log records whose msg starts with prefix.
func (l *lockedBuffer) lines(prefix string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && strings.HasPrefix(m["msg"].(string), prefix) {
			out = append(out, m)
		}
	}
	return out
}

// TestStartupLine: the line logged when serving starts names the version,
// the listen address, the built-in issuers and whether an administrator
// exists; with none, a warning says how to make one.
func TestStartupLine(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		createKey bool
		wantAdmin bool
	}{
		{name: "bootstrap administrator", env: map[string]string{"KEYLESS_ADMIN_ACCESS_KEY_ID": "AKIASTARTUPLINETEST1", "KEYLESS_ADMIN_SECRET_ACCESS_KEY": "startup-line-secret-0123456789"}, wantAdmin: true},
		{name: "stored administrator key", createKey: true, wantAdmin: true},
		{name: "no administrator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			issuerURL := "http://" + ln.Addr().String() + "/oidc"
			cfg := Defaults()
			cfg.Data, cfg.AccountID, cfg.AllowLoopbackHTTPIssuers = t.TempDir(), benchAcct, true
			cfg.AddIssuerURL(issuerURL)
			logs := &lockedBuffer{}
			s, err := New(context.Background(), cfg, Options{
				Logger: slog.New(slog.NewJSONHandler(logs, nil)), Getenv: func(k string) string { return tt.env[k] },
				Listener: ln, Build: BuildInfo{Version: "v9.8.7", Commit: "cafe"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.createKey {
				if _, err := s.keys.Create(context.Background(), "ops", "admin", ""); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			deadline := time.Now().Add(10 * time.Second)
			for len(logs.lines("keyless serving")) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			lines := logs.lines("keyless serving")
			if len(lines) != 1 {
				t.Fatalf("%d start-up lines", len(lines))
			}
			l := lines[0]
			if l["version"] != "v9.8.7" || l["commit"] != "cafe" || l["addr"] != ln.Addr().String() || l["admin_configured"] != tt.wantAdmin {
				t.Errorf("start-up line %v", l)
			}
			if diff := cmp.Diff([]any{issuerURL}, l["issuers"]); diff != "" {
				t.Errorf("issuers (-want +got):\n%s", diff)
			}
			warned := logs.lines("no administrator is configured")
			if tt.wantAdmin != (len(warned) == 0) {
				t.Errorf("warnings %v, administrator configured %v", warned, tt.wantAdmin)
			}
			if len(warned) > 0 && (warned[0]["level"] != "WARN" || !strings.Contains(warned[0]["msg"].(string), "KEYLESS_ADMIN_ACCESS_KEY_ID")) {
				t.Errorf("warning %v does not say how to configure one", warned[0])
			}
		})
	}
}
