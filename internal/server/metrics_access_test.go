package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const metricsToken = "0123456789abcdef0123456789abcdef"

// metricsServer is a server built from Defaults with m as its metrics
// settings, its main handler behind httptest.
func metricsServer(t *testing.T, m MetricsConfig) (*Server, *httptest.Server) {
	t.Helper()
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.AccountID = benchAcct
	cfg.Metrics = m
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

func tokenFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "metrics-token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// scrape GETs /metrics with the given Authorization headers.
func scrape(t *testing.T, url string, authz ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range authz {
		req.Header.Add("Authorization", a)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("401 without a Bearer challenge: %v", resp.Header)
	}
	return resp.StatusCode, string(b)
}

// TestMetricsAccess (issue 11 item 13b): /metrics stays open on the main
// listener by default; metrics.bearer_token_file requires the token;
// metrics.listen moves the endpoint to its own address.
func TestMetricsAccess(t *testing.T) {
	const series = "keyless_api_requests_total"
	t.Run("default: main listener, no token", func(t *testing.T) {
		_, ts := metricsServer(t, MetricsConfig{})
		if code, body := scrape(t, ts.URL+"/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Fatalf("GET /metrics = %d %.200s", code, body)
		}
	})

	t.Run("bearer token on the main listener", func(t *testing.T) {
		_, ts := metricsServer(t, MetricsConfig{BearerTokenFile: tokenFile(t, metricsToken+"\n")})
		for name, authz := range map[string][]string{
			"none":                 nil,
			"wrong token":          {"Bearer " + strings.Repeat("x", len(metricsToken))},
			"prefix of the token":  {"Bearer " + metricsToken[:16]},
			"token with more":      {"Bearer " + metricsToken + "0"},
			"other scheme":         {"Basic " + metricsToken},
			"token without scheme": {metricsToken},
			"two headers":          {"Bearer " + metricsToken, "Bearer " + metricsToken},
		} {
			if code, body := scrape(t, ts.URL+"/metrics", authz...); code != http.StatusUnauthorized || strings.Contains(body, series) {
				t.Errorf("%s: %d %.100s, want 401", name, code, body)
			}
		}
		for _, authz := range []string{"Bearer " + metricsToken, "bearer " + metricsToken} {
			if code, body := scrape(t, ts.URL+"/metrics", authz); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
				t.Errorf("%q: %d %.100s, want 200", authz, code, body)
			}
		}
	})

	t.Run("separate listener", func(t *testing.T) {
		s, ts := metricsServer(t, MetricsConfig{Listen: "127.0.0.1:0", BearerTokenFile: tokenFile(t, metricsToken)})
		if code, _ := scrape(t, ts.URL+"/metrics", "Bearer "+metricsToken); code != http.StatusNotFound {
			t.Errorf("main listener GET /metrics = %d, want 404", code)
		}
		if err := s.metricsEP.listen(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s.metricsEP.serve(ctx, func(err error) { t.Error(err) })
		u := "http://" + s.metricsEP.ln.Addr().String() + "/metrics"
		if code, _ := scrape(t, u); code != http.StatusUnauthorized {
			t.Errorf("separate listener without the token = %d, want 401", code)
		}
		if code, body := scrape(t, u, "Bearer "+metricsToken); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Errorf("separate listener = %d %.100s", code, body)
		}
		if code, _ := scrape(t, "http://"+s.metricsEP.ln.Addr().String()+"/"); code != http.StatusNotFound {
			t.Errorf("the metrics listener serves more than /metrics: GET / = %d", code)
		}
	})
}

func TestMetricsConfigRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		m       MetricsConfig
		wantErr string
	}{
		"listen equals the main listener": {MetricsConfig{Listen: "127.0.0.1:8400"}, "must differ from listen"},
		"listen not host:port":            {MetricsConfig{Listen: "9400"}, "metrics.listen"},
		"token file missing":              {MetricsConfig{BearerTokenFile: "/nonexistent/metrics-token"}, "metrics.bearer_token_file"},
		"token too short":                 {MetricsConfig{BearerTokenFile: "short"}, "at least 16 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Defaults()
			cfg.Data = t.TempDir()
			cfg.Metrics = tc.m
			if tc.m.BearerTokenFile == "short" {
				cfg.Metrics.BearerTokenFile = tokenFile(t, "  tooshort \n")
			}
			err := cfg.Validate()
			if err == nil {
				var s *Server
				s, err = New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }})
				if err == nil {
					s.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestMetricsConfigFile: the settings parse from YAML and the environment.
func TestMetricsConfigFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keyless.yaml")
	if err := os.WriteFile(p, []byte("metrics:\n  listen: 127.0.0.1:9400\n  bearer_token_file: /etc/keyless/metrics-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	if err := c.LoadFile(p); err != nil {
		t.Fatal(err)
	}
	if c.Metrics != (MetricsConfig{Listen: "127.0.0.1:9400", BearerTokenFile: "/etc/keyless/metrics-token"}) {
		t.Errorf("metrics = %+v", c.Metrics)
	}
	env := map[string]string{"KEYLESS_METRICS_LISTEN": "10.0.0.1:9400", "KEYLESS_METRICS_BEARER_TOKEN_FILE": "/run/token"}
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Metrics != (MetricsConfig{Listen: "10.0.0.1:9400", BearerTokenFile: "/run/token"}) {
		t.Errorf("metrics from the environment = %+v", c.Metrics)
	}
}
