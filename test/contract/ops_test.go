package contract

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// Issue 12 item 7 (operations), through the real binary: SIGHUP reloads
// instead of killing the server, the TLS certificate is replaced live, client
// commands trust a private CA through --ca-bundle / AWS_CA_BUNDLE, ports in
// https issuer URLs are warned about, metrics label success, admin
// list-keys shows the bootstrap administrator, create-key refuses unknown
// issuers, and `demo --keep` runs twice.

// testCA is a throwaway certificate authority.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemFile string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyless test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pemFile: filepath.Join(t.TempDir(), "ca.pem")}
	writePEM(t, ca.pemFile, "CERTIFICATE", der)
	return ca
}

// issue writes a certificate for 127.0.0.1 with this serial (and its key)
// to certFile and keyFile, replacing them.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "keyless"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", kb)
	writePEM(t, certFile, "CERTIFICATE", der)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// client trusts only the CA and opens a new connection per request.
func (ca *testCA) client() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true,
	}}
}

// servedSerial GETs /healthz over TLS and returns the certificate's serial.
func servedSerial(t *testing.T, c *http.Client, base string) int64 {
	t.Helper()
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %d", resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

// hangup sends SIGHUP and waits until the server has logged msg n times in
// all (the server must still be running).
func (s *server) hangup(t *testing.T, msg string, n int) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.logLines(msg)) < n {
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("keyless serve exited on SIGHUP: %v\n%s", err, tail(s.logs.String(), 20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line after SIGHUP:\n%s", msg, tail(s.logs.String(), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSIGHUPReloadsConfig: SIGHUP re-reads the configuration file and the
// server keeps serving; a changed setting that needs a restart is named in
// the log, and a file that no longer loads is logged and ignored. (Before:
// Go's default SIGHUP action ended the process.)
func TestSIGHUPReloadsConfig(t *testing.T) {
	t.Parallel()
	cfgFile := writeFile(t, filepath.Join(t.TempDir(), "keyless.yaml"), "audit:\n  seal_interval: 5m\n")
	s := startServer(t, "", "--config", cfgFile)
	healthy := func() {
		t.Helper()
		resp, err := http.Get(s.URL + "/healthz")
		if err != nil {
			t.Fatalf("not serving after SIGHUP: %v", err)
		}
		resp.Body.Close()
	}
	s.hangup(t, "reload: done", 1)
	healthy()

	writeFile(t, cfgFile, "audit:\n  seal_interval: 1m\n")
	s.hangup(t, "reload: done", 2)
	warn := s.logLines("reload: these settings changed but take effect only after a restart; running with the previous values")
	if len(warn) != 1 || !strings.Contains(strings.Join(toStrings(warn[0]["settings"]), ","), "audit.seal_interval") {
		t.Errorf("restart-needed warning = %v, want one naming audit.seal_interval", warn)
	}
	healthy()

	writeFile(t, cfgFile, "audit:\n  seal_intervall: 1m\n")
	s.hangup(t, "reload: the configuration does not load; keeping the running one", 1)
	healthy()
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// tlsServer starts keyless serve with TLS from a certificate of ca (serial
// 1001) and its built-in issuer at https://127.0.0.1:PORT/oidc, trusting ca
// for issuers too (so its own STS can read its JWKS).
func tlsServer(t *testing.T, ca *testCA) (s *server, base, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.issue(t, 1001, certFile, keyFile)
	cfg := writeFile(t, filepath.Join(dir, "keyless.yaml"),
		"tls:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\noidc:\n  ca_files: ["+ca.pemFile+"]\n")
	s = startServer(t, "", "--config", cfg, "--issuer-url", "https://127.0.0.1:{PORT}/oidc", "--allow-loopback-http-issuers")
	return s, strings.Replace(s.URL, "http://", "https://", 1), certFile, keyFile
}

// TestTLSCertificateReloadOnSIGHUP: replace the certificate files, send
// SIGHUP, and new connections get the new certificate; a broken file is
// logged and the previous certificate kept.
func TestTLSCertificateReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	s, base, certFile, keyFile := tlsServer(t, ca)
	c := ca.client()
	if got := servedSerial(t, c, base); got != 1001 {
		t.Fatalf("serving certificate %d at start, want 1001", got)
	}
	ca.issue(t, 1002, certFile, keyFile)
	s.hangup(t, "reload: serving the TLS certificate read now", 1)
	if got := servedSerial(t, c, base); got != 1002 {
		t.Fatalf("serving certificate %d after SIGHUP, want the new one, 1002", got)
	}
	writeFile(t, certFile, "not a certificate")
	s.hangup(t, "reload: the TLS certificate does not load; still serving the previous one", 1)
	if got := servedSerial(t, c, base); got != 1002 {
		t.Fatalf("serving certificate %d after a broken reload, want 1002 kept", got)
	}
}

// TestClientCommandsCABundle: `keyless token mint`, `keyless assume` and
// `keyless healthcheck` against a TLS keyless serve whose certificate a throwaway CA signed:
// refused with the system roots, accepted with --ca-bundle or
// AWS_CA_BUNDLE. The same server warns about its https issuer URL with a
// port and about a provider created with one, and its metrics label
// successes.
func TestClientCommandsCABundle(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	s, base, _, _ := tlsServer(t, ca)
	issuerURL := base + "/oidc"
	if !strings.Contains(s.logs.String(), "issuer URL has a port") {
		t.Errorf("no start-up warning about the issuer URL's port:\n%s", tail(s.logs.String(), 20))
	}

	// Register the built-in issuer and a role (over TLS, trusting the CA).
	ctx := context.Background()
	c := iam.NewFromConfig(sdkConfig(adminKeyID, adminSecret, ""), func(o *iam.Options) {
		o.BaseEndpoint = aws.String(base)
		o.HTTPClient = ca.client()
	})
	if _, err := c.CreateOpenIDConnectProvider(ctx, iamCreateProvider(issuerURL, "sts.amazonaws.com")); err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimPrefix(issuerURL, "https://")
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::` + accountID + `:oidc-provider/` + prefix + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + prefix + `:aud":"sts.amazonaws.com"}}}]}`
	if _, err := c.CreateRole(ctx, iamCreateRole("tls-deploy", trust)); err != nil {
		t.Fatal(err)
	}
	roleARN := "arn:aws:iam::" + accountID + ":role/tls-deploy"
	if len(s.logLines("OIDC provider URL has a port: AWS refuses a port in an OIDC provider URL, so this issuer cannot be registered in real AWS as it is: serve it on the default https port 443 (for example behind a reverse proxy) or publish it as static files (keyless issuer publish) at a URL without a port")) != 1 {
		t.Errorf("no warning about the provider URL's port:\n%s", tail(s.logs.String(), 20))
	}

	admin := append(awsEnv(t, adminKeyID, adminSecret, ""), "AWS_ENDPOINT_URL_STS="+base)
	mint := []string{"token", "mint", "--audience", "sts.amazonaws.com", "--subject", "ci:job"}
	if _, stderr, err := keyless(t, admin, mint...); err == nil || !strings.Contains(stderr, "certificate") {
		t.Fatalf("token mint trusted a private CA without a bundle: err=%v %s", err, stderr)
	}
	tok, stderr, err := keyless(t, admin, append(mint, "--ca-bundle", ca.pemFile)...)
	if err != nil {
		t.Fatalf("token mint --ca-bundle: %v\n%s", err, stderr)
	}
	if _, stderr, err := keyless(t, append(admin, "AWS_CA_BUNDLE="+ca.pemFile), mint...); err != nil {
		t.Fatalf("token mint with AWS_CA_BUNDLE: %v\n%s", err, stderr)
	}

	tokFile := writeFile(t, filepath.Join(t.TempDir(), "tok"), strings.TrimSpace(tok))
	job := awsEnv(t, "", "", "")
	assume := []string{"assume", "--role-arn", roleARN, "--endpoint-url", base, "--token-file", tokFile, "--output", "json", "--quiet"}
	if _, stderr, err := keyless(t, job, assume...); err == nil || !strings.Contains(stderr, "certificate") {
		t.Fatalf("assume trusted a private CA without a bundle: err=%v %s", err, stderr)
	}
	for name, run := range map[string]func() (string, string, error){
		"--ca-bundle":   func() (string, string, error) { return keyless(t, job, append(assume, "--ca-bundle", ca.pemFile)...) },
		"AWS_CA_BUNDLE": func() (string, string, error) { return keyless(t, append(job, "AWS_CA_BUNDLE="+ca.pemFile), assume...) },
	} {
		out, stderr, err := run()
		if err != nil || !strings.Contains(out, "assumed-role/tls-deploy/") {
			t.Errorf("assume with %s: err=%v\n%s\n%s", name, err, out, stderr)
		}
	}

	// The container health check probes an https server the same way.
	probe := []string{"healthcheck", "--url", base + "/healthz"}
	if _, _, err := keyless(t, job, probe...); err == nil {
		t.Error("healthcheck trusted a private CA without a bundle")
	}
	if _, stderr, err := keyless(t, job, append(probe, "--ca-bundle", ca.pemFile)...); err != nil {
		t.Errorf("healthcheck --ca-bundle: %v\n%s", err, stderr)
	}

	// Metrics: successes are labelled, mints counted per issuer.
	resp, err := ca.client().Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`keyless_api_requests_total{action="CreateRole",code="ok"} 1`,
		`keyless_api_requests_total{action="AssumeRoleWithWebIdentity",code="ok"} 2`,
		`keyless_issuer_mints_total{issuer="default",outcome="success"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), `code=""`) {
		t.Error(`/metrics still has code=""`)
	}
}

// TestAdminListKeysAndScope: list-keys shows the bootstrap administrator
// of the environment (never its secret); create-key refuses an
// issuer-client scope naming no issuer, and accepts the server's issuer
// (known from the data dir's keys) or one the given configuration names.
func TestAdminListKeysAndScope(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", "--issuer-url", "http://127.0.0.1:{PORT}/oidc", "--allow-loopback-http-issuers")
	env := append(os.Environ(), "KEYLESS_ADMIN_ACCESS_KEY_ID="+adminKeyID, "KEYLESS_ADMIN_SECRET_ACCESS_KEY="+adminSecret)
	out, stderr, err := keyless(t, env, "admin", "list-keys", "--data", s.Data)
	if err != nil {
		t.Fatalf("list-keys: %v\n%s", err, stderr)
	}
	var row string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, adminKeyID) {
			row = line
		}
	}
	if !strings.Contains(row, "bootstrap (environment)") || !strings.Contains(row, "admin") || strings.Contains(out, adminSecret) {
		t.Errorf("list-keys does not show the bootstrap administrator as such (or shows its secret):\n%s", out)
	}

	create := func(extra ...string) (string, error) {
		args := append([]string{"admin", "create-key", "--data", s.Data, "--name", "ci", "--kind", "issuer-client"}, extra...)
		_, stderr, err := keyless(t, os.Environ(), args...)
		return stderr, err
	}
	if stderr, err := create("--scope", "defualt"); err == nil || !strings.Contains(stderr, `--scope "defualt": no such issuer`) {
		t.Errorf("create-key --scope defualt: err=%v, want refused naming the scope\n%s", err, stderr)
	}
	if stderr, err := create("--scope", "default"); err != nil {
		t.Errorf("create-key --scope default (the server's issuer): %v\n%s", err, stderr)
	}
	cfg := writeFile(t, filepath.Join(t.TempDir(), "keyless.yaml"), "issuers:\n  - id: gh\n    url: https://keyless.example.com/gh\n    profile: github\n")
	if stderr, err := create("--scope", "gh", "--config", cfg); err != nil {
		t.Errorf("create-key --scope gh with a configuration naming gh: %v\n%s", err, stderr)
	}
}

// TestDemoKeepRunsTwice: `keyless demo --keep DIR` twice on the same DIR.
func TestDemoKeepRunsTwice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for run := 1; run <= 2; run++ {
		out, stderr, err := keyless(t, os.Environ(), "demo", "--keep", dir)
		if err != nil || !strings.Contains(out, "Demo passed") {
			t.Fatalf("demo run %d: %v\n%s\n%s", run, err, tail(out, 15), stderr)
		}
	}
}
