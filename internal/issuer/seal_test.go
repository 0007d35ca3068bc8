package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store"
)

// secretForms are the byte strings whose presence in a file would reveal
// a private key: its PKCS #8 encoding and its private scalars, raw and in
// base64 (the store keeps []byte fields as base64 JSON) at every alignment.
func secretForms(t *testing.T, k crypto.Signer) [][]byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	raw := [][]byte{der}
	switch pk := k.(type) {
	case *rsa.PrivateKey:
		raw = append(raw, pk.D.Bytes(), pk.Primes[0].Bytes(), pk.Primes[1].Bytes())
	case *ecdsa.PrivateKey:
		d, err := pk.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, d)
	}
	var out [][]byte
	for _, r := range raw {
		out = append(out, r)
		for shift := range 3 {
			enc := base64.StdEncoding.EncodeToString(append(make([]byte, shift), r...))
			out = append(out, []byte(enc[4:len(enc)-4]))
		}
	}
	return out
}

func scanFiles(t *testing.T, dir string, secrets [][]byte) (found bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "keyless.db*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no database files in %s: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				return true
			}
		}
	}
	return false
}

func TestPrivateKeysNeverUnsealedInTheDatabase(t *testing.T) {
	f := newFixture(t, []Config{
		{ID: "rsa", URL: "https://keyless.example.com/rsa", Algorithm: RS256},
		{ID: "ec", URL: "https://keyless.example.com/ec", Algorithm: ES256},
	})
	ctx := context.Background()
	for _, id := range []string{"rsa", "ec"} {
		if _, err := f.svc.Rotate(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	var secrets [][]byte
	n := 0
	for _, is := range f.svc.order {
		for _, sg := range is.signers {
			secrets = append(secrets, secretForms(t, sg.priv)...)
			n++
		}
	}
	if n != 4 {
		t.Fatalf("%d keys opened, want 4 (active and pending of each issuer)", n)
	}
	dir := filepath.Dir(f.dbPath)
	if scanFiles(t, dir, secrets) {
		t.Fatal("a private key appears unsealed in the database files")
	}

	// Control: the scanner does find a key stored in clear, so the check
	// above can fail.
	leaked, err := GenerateKey(ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(leaked)
	if err := f.store.KeyMaterial().Create(ctx, &store.KeyMaterial{Purpose: "control", ID: "x", Sealed: der}); err != nil {
		t.Fatal(err)
	}
	if !scanFiles(t, dir, secretForms(t, leaked)) {
		t.Fatal("the scanner misses a private key stored in clear")
	}
}

func TestSealedKeysAreBound(t *testing.T) {
	f := newFixture(t, []Config{
		{ID: "a", URL: "https://keyless.example.com/a", Algorithm: ES256},
		{ID: "b", URL: "https://keyless.example.com/b", Algorithm: ES256},
	})
	ctx := context.Background()
	ks := f.store.KeyMaterial()
	docsA, _ := ks.List(ctx, purposeOf("a"))
	docsB, _ := ks.List(ctx, purposeOf("b"))
	keyB := docsB[0]

	// Issuer b's sealed key copied into issuer a's record does not open
	// there (the aad binds purpose and kid), so a cannot sign with it.
	if err := ks.Update(ctx, purposeOf("a"), docsA[0].ID, func(k *store.KeyMaterial) error {
		k.Sealed = keyB.Sealed
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Sync(ctx); !errors.Is(err, keyring.ErrOpen) {
		t.Errorf("swapped sealed key: Sync error %v, want keyring.ErrOpen", err)
	}
	if _, err := f.svc.Mint(ctx, "a", MintRequest{Subject: "s", Audience: "x"}); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("mint with an unopenable key: %v", err)
	}

	// A record whose public half was replaced must not sign either.
	other, _ := GenerateKey(ES256, nil)
	pub, _ := publicJWK(other.Public(), keyB.ID, ES256)
	if err := ks.Update(ctx, purposeOf("b"), keyB.ID, func(k *store.KeyMaterial) error {
		k.Public = pub
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Sync(ctx); err == nil {
		t.Error("a key whose halves disagree loaded without error")
	}
	if _, err := f.svc.Mint(ctx, "b", MintRequest{Subject: "s", Audience: "x"}); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("mint with mismatched halves: %v", err)
	}

	// The wrong master key is reported as such.
	wrong, _ := keyring.ParseMaster(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	s2, err := New(Options{Keys: ks, Master: wrong, Issuers: []Config{{ID: "a", URL: "https://keyless.example.com/a", Algorithm: ES256}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Sync(ctx); !errors.Is(err, keyring.ErrOpen) {
		t.Errorf("wrong master key: %v", err)
	}
}
