package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, d)
	}
}

type jwksSummary struct {
	Kept []struct {
		KID  string `json:"kid"`
		Type string `json:"type"`
		Alg  string `json:"alg,omitempty"`
	} `json:"kept"`
	Dropped []droppedKey `json:"dropped"`
}

// TestParseJWKSGolden runs the hygiene rules (V15, V17) over a JWKS with
// one good key of each kind and one broken key per rule; the golden file
// lists what is kept and why the rest is dropped.
func TestParseJWKSGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "jwks", "mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := parseJWKS(in)
	if err != nil {
		t.Fatal(err)
	}
	var s jwksSummary
	for _, k := range ks.all {
		s.Kept = append(s.Kept, struct {
			KID  string `json:"kid"`
			Type string `json:"type"`
			Alg  string `json:"alg,omitempty"`
		}{k.kid, k.describeType(), k.alg})
	}
	s.Dropped = ks.dropped
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("jwks", "mixed.golden.json"), append(out, '\n'))

	// The rules the golden file must show, so that -update cannot quietly
	// bless a regression.
	reasons := map[string]string{}
	for _, d := range ks.dropped {
		reasons[d.KID] = d.Reason
	}
	for kid, want := range map[string]string{
		"rsa-1024": "at least 2048", "e-one": "exponent 1", "e-even": "exponent 65536", "use-enc": `"use"`,
		"ops-encrypt": "key_ops", "alg-es256": "does not fit", "alg-ps256": "not a supported", "private": "private key",
		"off-curve": "EC point rejected", "short-x": "coordinates", "wrong-crv": "coordinates", "secp256k1": "curve",
		"hmac": "symmetric", "ed": "not supported", "bad-alphabet": "alphabet",
	} {
		if !strings.Contains(reasons[kid], want) {
			t.Errorf("key %q: reason %q, want it to mention %q", kid, reasons[kid], want)
		}
	}
	kept := map[string]bool{}
	for _, k := range ks.all {
		kept[k.kid] = true
	}
	for _, kid := range []string{"rsa-2048", "rsa-4096", "ec-p256", "ec-p384", "ec-p521", "ops-verify", "padded-n", ""} {
		if !kept[kid] {
			t.Errorf("key %q was dropped: %s", kid, reasons[kid])
		}
	}
}

func TestParseJWKSDocumentErrors(t *testing.T) {
	for _, in := range []string{`[]`, `{"keys":{}}`, `{"keys":[],"keys":[]}`, `{"Keys":[],"keys":[]}`, `not json`} {
		if _, err := parseJWKS([]byte(in)); !errors.Is(err, ErrJWKS) {
			t.Errorf("parseJWKS(%s) = %v, want ErrJWKS", in, err)
		}
	}
}

func TestParseJWKSKeyLimits(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "jwks", "mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Keys []any }
	if err := json.Unmarshal(in, &doc); err != nil {
		t.Fatal(err)
	}
	rsaKey, ecKey := doc.Keys[0].(map[string]any), doc.Keys[3].(map[string]any)
	var keysOut []any
	for i := range 150 {
		r, e := map[string]any{}, map[string]any{}
		for k, v := range rsaKey {
			r[k] = v
		}
		for k, v := range ecKey {
			e[k] = v
		}
		r["kid"], e["kid"] = "r"+string(rune('A'+i/26))+string(rune('a'+i%26)), "e"+string(rune('A'+i/26))+string(rune('a'+i%26))
		keysOut = append(keysOut, r, e)
	}
	b, _ := json.Marshal(map[string]any{"keys": keysOut})
	ks, err := parseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	var nRSA, nEC int
	for _, k := range ks.all {
		if k.rsa != nil {
			nRSA++
		} else {
			nEC++
		}
	}
	if nRSA != 100 || nEC != 100 || len(ks.dropped) != 100 {
		t.Errorf("kept %d RSA and %d EC keys, dropped %d; want 100, 100, 100", nRSA, nEC, len(ks.dropped))
	}
}

func FuzzParseJWKS(f *testing.F) {
	in, err := os.ReadFile(filepath.Join("testdata", "jwks", "mixed.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(in)
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range ks.all {
			switch {
			case k.rsa != nil:
				if k.rsa.N.BitLen() < minRSABits || k.rsa.E < 3 || k.rsa.E%2 == 0 {
					t.Fatalf("weak RSA key kept: %d bits, e=%d", k.rsa.N.BitLen(), k.rsa.E)
				}
			case k.ec != nil:
				if !bytes.Contains([]byte("P-256 P-384 P-521"), []byte(k.crv)) {
					t.Fatalf("EC key on %q kept", k.crv)
				}
			default:
				t.Fatal("key without material kept")
			}
		}
	})
}
