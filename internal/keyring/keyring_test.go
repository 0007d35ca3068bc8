package keyring

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"testing"
)

func TestMasterRoundTrip(t *testing.T) {
	text, err := GenerateMasterKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMaster(text + "\n")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := m.Seal(rand.Reader, []byte("private key"), "issuer-signing-key:k1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("private key")) {
		t.Fatal("plaintext visible in ciphertext")
	}
	got, err := m.Open(sealed, "issuer-signing-key:k1")
	if err != nil || string(got) != "private key" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := m.Open(sealed, "issuer-signing-key:k2"); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong aad opened: %v", err)
	}
	other, _ := GenerateMasterKey(rand.Reader)
	m2, _ := ParseMaster(other)
	if _, err := m2.Open(sealed, "issuer-signing-key:k1"); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong key opened: %v", err)
	}
	if m.ID() == m2.ID() {
		t.Error("distinct keys share an id")
	}
	for i := range sealed {
		c := bytes.Clone(sealed)
		c[i] ^= 1
		if _, err := m.Open(c, "issuer-signing-key:k1"); err == nil {
			t.Fatalf("flipped byte %d still opens", i)
		}
	}
	if _, err := m.Open(sealed[:10], ""); !errors.Is(err, ErrOpen) {
		t.Error("short ciphertext opened")
	}
}

func TestParseMasterRejects(t *testing.T) {
	for _, bad := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseMaster(bad); err == nil {
			t.Errorf("ParseMaster(%q) succeeded", bad)
		}
	}
}

func TestRingRotation(t *testing.T) {
	k1 := RingKey{ID: 1, Secret: bytes.Repeat([]byte{1}, KeySize)}
	k2 := RingKey{ID: 2, Secret: bytes.Repeat([]byte{2}, KeySize)}
	r1, err := NewRing([]RingKey{k1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	old, err := r1.Seal(rand.Reader, []byte("session"), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := NewRing([]RingKey{k1, k2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r2.Open(old, []byte("ctx")); err != nil || string(got) != "session" {
		t.Fatalf("old token after rotation: %q %v", got, err)
	}
	fresh, _ := r2.Seal(rand.Reader, []byte("new"), []byte("ctx"))
	if _, err := r1.Open(fresh, []byte("ctx")); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("r1 opened a key-2 ciphertext: %v", err)
	}
	// Changing the key id prefix must not let another key be tried.
	forged := bytes.Clone(fresh)
	forged[3] = 1
	if _, err := r2.Open(forged, []byte("ctx")); !errors.Is(err, ErrOpen) {
		t.Errorf("forged key id: %v", err)
	}
	if _, err := NewRing([]RingKey{k1}, 9); err == nil {
		t.Error("inactive id accepted")
	}
	if _, err := NewRing([]RingKey{{ID: 1, Secret: []byte("short")}}, 1); err == nil {
		t.Error("short key accepted")
	}
}

func BenchmarkRingOpen(b *testing.B) {
	r, _ := NewRing([]RingKey{{ID: 1, Secret: bytes.Repeat([]byte{1}, KeySize)}}, 1)
	sealed, _ := r.Seal(rand.Reader, bytes.Repeat([]byte("x"), 200), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Open(sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLoadMaster(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/sub/master.key"
	if _, err := LoadMaster("", path, false, rand.Reader); err == nil {
		t.Fatal("missing file accepted without create")
	}
	m1, err := LoadMaster("", path, true, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := LoadMaster("", path, true, rand.Reader)
	if err != nil || m1.ID() != m2.ID() {
		t.Fatalf("second load differs: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v", fi.Mode(), err)
	}
	if _, err := LoadMaster("bad", path, true, rand.Reader); err == nil {
		t.Fatal("bad env key accepted")
	}
}

// TestDeriveKey: derived keys are deterministic per (master, purpose),
// independent across purposes and masters, and match RFC 5869 HKDF-SHA256
// with info "keyless/<purpose>" (an independent computation below).
func TestDeriveKey(t *testing.T) {
	m, err := ParseMaster("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, b := m.DeriveKey("audit-trail-mac"), m.DeriveKey("audit-trail-mac"), m.DeriveKey("other")
	if len(a1) != KeySize || !bytes.Equal(a1, a2) || bytes.Equal(a1, b) {
		t.Fatalf("derived keys: %x %x %x", a1, a2, b)
	}
	raw := make([]byte, KeySize)
	for i := range raw {
		raw[i] = byte(i)
	}
	if bytes.Equal(a1, raw) {
		t.Fatal("derived key equals the master key")
	}
	// HKDF by hand: PRK = HMAC(zeros, IKM); OKM = HMAC(PRK, info || 0x01).
	prk := hmacSHA256(make([]byte, 32), raw)
	want := hmacSHA256(prk, append([]byte("keyless/audit-trail-mac"), 1))
	if !bytes.Equal(a1, want) {
		t.Errorf("DeriveKey = %x, want HKDF-SHA256 %x", a1, want)
	}
	other, _ := GenerateMasterKey(rand.Reader)
	m2, _ := ParseMaster(other)
	if bytes.Equal(m2.DeriveKey("audit-trail-mac"), a1) {
		t.Error("two master keys derive the same key")
	}
}

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}
