package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/keylessci/keyless/internal/awsquery"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 with the
// given common name to dir/cert.pem and dir/key.pem.
func writeSelfSigned(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestConfigChanges(t *testing.T) {
	base := Defaults()
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"log level", func(c *Config) { c.Log.Level = "debug" }, []string{"log.level"}},
		{"a duration", func(c *Config) { c.Audit.SealInterval = Duration(time.Minute) }, []string{"audit.seal_interval"}},
		{"an issuer added", func(c *Config) { c.AddIssuerURL("https://keyless.example.com/oidc") }, []string{"issuers"}},
		{"tls and listen", func(c *Config) {
			c.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem"}
			c.Listen = "0.0.0.0:8400"
		}, []string{"listen", "tls.cert_file", "tls.key_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base
			next.Issuers = append([]IssuerConfig(nil), base.Issuers...)
			tt.change(&next)
			got, err := configChanges(base, next)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReload (issue 12 item 7): a reload changes the log level and the TLS
// certificate at once, reports the other changed settings as needing a
// restart, and keeps the running certificate and configuration when the new
// ones do not load.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir, "first")
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.AccountID = benchAcct
	cfg.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile}
	logs := &logBuffer{}
	level := new(slog.LevelVar)
	s, err := New(context.Background(), cfg, Options{
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level})), LogLevel: level,
		Getenv: func(string) string { return "" },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	served := func() string { p, _ := s.cert.get(nil); return p.Leaf.Subject.CommonName }
	if got := served(); got != "first" {
		t.Fatalf("serving %q at start", got)
	}

	// The certificate renewed in place, the level lowered, the listener moved.
	writeSelfSigned(t, dir, "second")
	next := cfg
	next.Log.Level = "debug"
	next.Listen = "127.0.0.1:9999"
	res := s.Reload(next)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if diff := cmp.Diff(ReloadResult{Applied: []string{"log.level", "tls"}, NeedRestart: []string{"listen"}}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if got := served(); got != "second" {
		t.Errorf("serving %q after the reload, want the new certificate", got)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v, want debug", level.Level())
	}
	if !strings.Contains(logs.String(), "take effect only after a restart") || !strings.Contains(logs.String(), `"settings":["listen"]`) {
		t.Errorf("the restart-needed settings are not logged:\n%s", logs.String())
	}

	// A broken certificate file: the running pair stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = s.Reload(next)
	if res.Err == nil || served() != "second" {
		t.Errorf("broken certificate: err %v, serving %q; want an error and the previous certificate", res.Err, served())
	}
	if !strings.Contains(logs.String(), "still serving the previous one") {
		t.Errorf("the failed certificate reload is not logged:\n%s", logs.String())
	}

	// An invalid configuration changes nothing.
	bad := next
	bad.Log.Level = "loud"
	if res := s.Reload(bad); res.Err == nil || level.Level() != slog.LevelDebug {
		t.Errorf("invalid configuration: err %v, level %v; want an error and the level kept", res.Err, level.Level())
	}

	// Turning TLS off needs a restart; the pair keeps being served.
	plain := next
	plain.TLS = TLSConfig{}
	if res := s.Reload(plain); !cmp.Equal(res.NeedRestart, []string{"listen", "tls.cert_file", "tls.key_file"}) || served() != "second" {
		t.Errorf("TLS off: %+v, serving %q", res, served())
	}
}

func TestAWSRefusesPort(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://keyless.example.com/oidc":      false,
		"https://keyless.example.com:8443/oidc": true,
		"https://keyless.example.com:443/oidc":  true, // the iss would differ from the URL AWS accepts
		"http://127.0.0.1:8400/oidc":            false,
		"https://127.0.0.1:8443":                true,
		"::not a url":                           false,
	} {
		if _, got := awsRefusesPort(raw); got != want {
			t.Errorf("%s: %v, want %v", raw, got, want)
		}
	}
}

// TestPortWarnings (issue 12 item 7): an https issuer on a port is warned
// about at start, and so is a provider created with such a URL.
func TestPortWarnings(t *testing.T) {
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.AccountID = benchAcct
	cfg.AddIssuerURL("https://keyless.example.com:8443/oidc")
	cfg.AddIssuerURL("https://keyless.example.com/other")
	logs := &logBuffer{}
	s, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if n := strings.Count(logs.String(), "issuer URL has a port"); n != 1 || !strings.Contains(logs.String(), `"port":"8443"`) {
		t.Errorf("%d start warnings, want 1 naming port 8443:\n%s", n, logs.String())
	}

	logs = &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	ok := awsquery.Action{Name: "CreateOpenIDConnectProvider", Handle: func(context.Context, *awsquery.Request) (any, error) { return nil, nil }}
	wrapped := warnProviderPort(ok, log)
	for _, u := range []string{"https://127.0.0.1:8443/oidc", "https://token.example.com/oidc"} {
		params, err := awsquery.ParseParams([]byte("Action=CreateOpenIDConnectProvider&Url="+u), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wrapped.Handle(context.Background(), &awsquery.Request{Params: params}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "OIDC provider URL has a port"); n != 1 || !strings.Contains(logs.String(), "127.0.0.1:8443") {
		t.Errorf("%d provider warnings, want 1 for the URL with a port:\n%s", n, logs.String())
	}
}

// TestRequestsCounterLabelsSuccess (issue 12 item 7): a successful call is
// counted with code="ok", not an empty label.
func TestRequestsCounterLabelsSuccess(t *testing.T) {
	s, ts := benchServer(t)
	resp, err := http.Get(presign(t, ts.URL, "sts", "Action=GetCallerIdentity&Version=2011-06-15"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GetCallerIdentity: %d %s", resp.StatusCode, b)
	}
	if got := counterValue(t, s, "GetCallerIdentity", "ok"); got != 1 {
		t.Errorf(`keyless_api_requests_total{action="GetCallerIdentity",code="ok"} = %v, want 1`, got)
	}
	if got := counterValue(t, s, "GetCallerIdentity", ""); got != 0 {
		t.Errorf(`code="" counted %v`, got)
	}
}

func counterValue(t *testing.T, s *Server, action, code string) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.metrics.requests.WithLabelValues(action, code).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
