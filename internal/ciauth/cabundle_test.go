package ciauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pemFile writes the DER certificate as a PEM file.
func pemFile(t *testing.T, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// otherCA is a self-signed CA certificate unrelated to httptest's.
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestAssumeCABundle (issue 12 item 7): `keyless assume` against an STS
// endpoint whose certificate a private CA signed works with --ca-bundle or
// $AWS_CA_BUNDLE, and fails with the system roots. The bundle replaces the
// system roots, as it does for the AWS CLI: a bundle of another CA fails.
func TestAssumeCABundle(t *testing.T) {
	srv := httptest.NewTLSServer(newFakeSTS(t, nil))
	t.Cleanup(srv.Close)
	bundle := pemFile(t, srv.Certificate().Raw)
	otherBundle := pemFile(t, otherCA(t))

	tests := []struct {
		name    string
		flag    string
		env     string
		wantErr string
	}{
		{name: "--ca-bundle", flag: bundle},
		{name: "AWS_CA_BUNDLE", env: bundle},
		{name: "the flag wins over the environment", flag: bundle, env: otherBundle},
		{name: "system roots", wantErr: "certificate"},
		{name: "another CA's bundle", flag: otherBundle, wantErr: "certificate"},
		{name: "not a bundle", flag: filepath.Join(t.TempDir(), "missing.pem"), wantErr: "CA bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tok := filepath.Join(dir, "token")
			if err := os.WriteFile(tok, []byte(makeJWT(t, map[string]any{"sub": "ci"})), 0o600); err != nil {
				t.Fatal(err)
			}
			env := Env{"HOME": dir}
			if tt.env != "" {
				env[CABundleEnv] = tt.env
			}
			var stdout bytes.Buffer
			err := Assume(context.Background(), Options{
				RoleARN: testRole, EndpointURL: srv.URL, TokenFile: tok, Output: OutputJSON, CABundle: tt.flag,
				Backoff: Backoff{MaxAttempts: 1},
			}, Runtime{Env: env, Stdout: &stdout, Rand: constRand(7),
				Sleep: func(context.Context, time.Duration) error { return nil }})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout.String(), "AccessKeyId") {
				t.Errorf("no credentials printed: %s", stdout.String())
			}
		})
	}
}

func TestCABundleClientRefusesEmptyBundle(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(p, []byte("# no certificates\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CABundleClient(p, 0); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("err %v", err)
	}
	if c, err := CABundleClient("", 0); c != nil || err != nil {
		t.Errorf("no bundle: %v %v, want nil, nil", c, err)
	}
}
