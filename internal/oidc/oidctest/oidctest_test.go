package oidctest_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

func getJSON(t *testing.T, c *http.Client, url string) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header, m
}

func TestServerDocumentsAndCounts(t *testing.T) {
	s := oidctest.NewServer(t, "/oidc", oidctest.Options{Keys: []oidctest.KeyType{oidctest.ECP256, oidctest.ECP384}})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/oidc") {
		t.Fatalf("URL %q", s.URL())
	}
	code, _, doc := getJSON(t, http.DefaultClient, s.URL()+"/.well-known/openid-configuration")
	if code != 200 || doc["issuer"] != s.URL() || doc["jwks_uri"] != s.JWKSURL() {
		t.Fatalf("discovery %d %v", code, doc)
	}
	code, hdr, jwks := getJSON(t, http.DefaultClient, s.JWKSURL())
	if code != 200 || len(jwks["keys"].([]any)) != 2 || hdr.Get("Cache-Control") != "max-age=3600" {
		t.Fatalf("jwks %d %v %v", code, hdr, jwks)
	}
	if got := s.Requests(); got != (oidctest.Counts{Discovery: 1, JWKS: 1}) {
		t.Errorf("counts %+v", got)
	}

	s.SetFailure(oidctest.Failure{Status: 503, JWKSOnly: true})
	if code, _, _ := getJSON(t, http.DefaultClient, s.JWKSURL()); code != 503 {
		t.Errorf("JWKS under failure: %d", code)
	}
	if code, _, _ := getJSON(t, http.DefaultClient, s.URL()+"/.well-known/openid-configuration"); code != 200 {
		t.Errorf("discovery under a JWKS-only failure: %d", code)
	}
	s.SetFailure(oidctest.Failure{Delay: time.Minute})
	c := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := c.Get(s.JWKSURL()); err == nil {
		t.Error("slow issuer answered within 100 ms")
	}
	s.SetFailure(oidctest.Failure{})
	s.SetRawJWKS([]byte("not json"))
	resp, err := http.Get(s.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestTLSServerPresentsIntermediate(t *testing.T) {
	s := oidctest.NewTLSServer(t, "", oidctest.Options{})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.RootPool()}}}
	resp, err := c.Get(s.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	chain := resp.TLS.PeerCertificates
	if len(chain) != 2 || !chain[1].Equal(s.Intermediate) {
		t.Fatalf("presented %d certificates", len(chain))
	}
	if s.Thumbprint() != oidctest.Thumbprint(chain[len(chain)-1]) || len(s.Thumbprint()) != 40 {
		t.Errorf("thumbprint %q", s.Thumbprint())
	}
	if _, err := http.Get(s.JWKSURL()); err == nil {
		t.Error("the generated root is trusted by the system pool")
	}
}

func TestTokenShapes(t *testing.T) {
	iss, err := oidctest.NewIssuer("https://issuer.example", oidctest.Options{Keys: []oidctest.KeyType{oidctest.ECP256}})
	if err != nil {
		t.Fatal(err)
	}
	seg := func(s string, i int) []byte {
		b, err := base64.RawURLEncoding.DecodeString(strings.Split(s, ".")[i])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	raw := iss.Mint(t, "sub", "aud")
	if n := len(seg(raw, 2)); n != 64 {
		t.Errorf("ES256 signature is %d bytes, want 64", n)
	}
	der := iss.Mint(t, "sub", "aud", func(tok *oidctest.Token) { tok.DERSignature = true })
	if sig := seg(der, 2); sig[0] != 0x30 {
		t.Errorf("DER signature starts with %#x", sig[0])
	}
	dup := iss.Mint(t, "sub", "aud", func(tok *oidctest.Token) { tok.RawPayload = []byte(`{"sub":"a","sub":"b"}`) })
	if got := string(seg(dup, 1)); got != `{"sub":"a","sub":"b"}` {
		t.Errorf("raw payload %q", got)
	}
	jwe := iss.Mint(t, "sub", "aud", func(tok *oidctest.Token) {
		tok.Segments = func(h, p, s string) []string { return []string{h, "", "", p, s} }
	})
	if strings.Count(jwe, ".") != 4 {
		t.Errorf("segments %q", jwe)
	}
	b := []byte("ab") // 2 bytes: 4 spare bits in the last character
	odd := oidctest.NonZeroTrailingBits(b)
	if odd == base64.RawURLEncoding.EncodeToString(b) {
		t.Error("NonZeroTrailingBits changed nothing")
	}
	if got, err := base64.RawURLEncoding.DecodeString(odd); err != nil || string(got) != "ab" {
		t.Errorf("lenient decoding of %q = %q, %v", odd, got, err)
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(odd); err == nil {
		t.Error("strict decoding accepted non-zero trailing bits")
	}
}

func TestHostMuxRecordsUnrouted(t *testing.T) {
	iss, err := oidctest.NewIssuer("https://a.example", oidctest.Options{Keys: []oidctest.KeyType{oidctest.ECP256}})
	if err != nil {
		t.Fatal(err)
	}
	mux := &oidctest.HostMux{}
	mux.Handle("a.example", iss)
	c := &http.Client{Transport: &oidctest.Transport{Handler: mux}}
	for _, u := range []string{"https://a.example/.well-known/jwks.json", "https://b.example/x"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := mux.Unrouted(); len(got) != 1 || got[0] != "b.example/x" {
		t.Errorf("unrouted %q", got)
	}
	if iss.Requests().JWKS != 1 {
		t.Errorf("issuer counts %+v", iss.Requests())
	}
}
