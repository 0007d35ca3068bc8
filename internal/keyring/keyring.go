// Package keyring owns keyless's secrets at rest: the master key that
// encrypts every private key and secret kept in the store (issuer signing
// keys, session-token sealing keys, audit digest keys, administrator
// secrets), and versioned AEAD key rings whose keys can rotate while older
// ciphertexts stay readable.
//
// Every ciphertext is AES-256-GCM with a random nonce and caller-supplied
// associated data that binds it to its purpose and record, so a sealed blob
// copied into another row or used for another purpose fails to open. Keys
// for other uses (MACs that authenticate rows or files a data-dir writer
// could otherwise rewrite) are derived from the master key per purpose
// ([Master.DeriveKey]); the master key itself is used only by the AEAD.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// KeySize is the size of every symmetric key here (AES-256).
const KeySize = 32

// ErrOpen is returned when a ciphertext does not authenticate: wrong key,
// wrong associated data, or tampering.
var ErrOpen = errors.New("keyring: ciphertext does not authenticate")

// ErrUnknownKey is returned when a ring has no key with the ciphertext's id.
var ErrUnknownKey = errors.New("keyring: unknown key id")

const masterVersion = 1

// Master is the key that encrypts other keys at rest.
type Master struct {
	aead cipher.AEAD
	raw  []byte // for DeriveKey only
	id   string
}

// GenerateMasterKey returns a new master key, base64-encoded for a file or
// an environment variable.
func GenerateMasterKey(rand io.Reader) (string, error) {
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(rand, k); err != nil {
		return "", fmt.Errorf("keyring: generate master key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// ParseMaster decodes a base64 master key (surrounding whitespace ignored).
func ParseMaster(text string) (*Master, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("keyring: master key is not base64: %w", err)
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("keyring: master key has %d bytes, want %d", len(raw), KeySize)
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("keyless-master-id:"), raw...))
	return &Master{aead: aead, raw: raw, id: hex.EncodeToString(sum[:8])}, nil
}

// DeriveKey returns a KeySize-byte key for one purpose, derived from the
// master key with HKDF-SHA256 (RFC 5869; no salt, info "keyless/" +
// purpose). Distinct purposes give independent keys, none of which reveals
// the master key or another purpose's key, so a MAC key handed to a
// library cannot open what the master key sealed. purpose names the use,
// for example "audit-trail-mac".
func (m *Master) DeriveKey(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, m.raw, nil, "keyless/"+purpose, KeySize)
	if err != nil {
		panic("keyring: " + err.Error()) // unreachable: only lengths above 255*32 bytes fail
	}
	return k
}

// ID identifies the master key without revealing it (so a wrong key is
// reported as such rather than as corrupted data).
func (m *Master) ID() string { return m.id }

// Seal encrypts plaintext for storage. aad names the purpose and record,
// for example "issuer-signing-key:<kid>".
func (m *Master) Seal(rand io.Reader, plaintext []byte, aad string) ([]byte, error) {
	nonce := make([]byte, m.aead.NonceSize())
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+m.aead.Overhead())
	out = append(out, masterVersion)
	out = append(out, nonce...)
	return m.aead.Seal(out, nonce, plaintext, []byte(aad)), nil
}

// Open decrypts what Seal produced with the same aad.
func (m *Master) Open(sealed []byte, aad string) ([]byte, error) {
	ns := m.aead.NonceSize()
	if len(sealed) < 1+ns+m.aead.Overhead() || sealed[0] != masterVersion {
		return nil, ErrOpen
	}
	pt, err := m.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(aad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

// RingKey is one key of a Ring.
type RingKey struct {
	ID     uint32
	Secret []byte // KeySize bytes
}

// Ring is a versioned set of AEAD keys: Seal uses the active key and
// prefixes its id; Open finds the key by id, so ciphertexts made before a
// rotation stay readable until their key is dropped from the ring.
type Ring struct {
	keys   map[uint32]cipher.AEAD
	active uint32
}

// NewRing builds a ring; active must be one of keys.
func NewRing(keys []RingKey, active uint32) (*Ring, error) {
	r := &Ring{keys: make(map[uint32]cipher.AEAD, len(keys)), active: active}
	for _, k := range keys {
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("keyring: ring key %d has %d bytes, want %d", k.ID, len(k.Secret), KeySize)
		}
		a, err := newAEAD(k.Secret)
		if err != nil {
			return nil, err
		}
		r.keys[k.ID] = a
	}
	if _, ok := r.keys[active]; !ok {
		return nil, fmt.Errorf("keyring: active key %d is not in the ring", active)
	}
	return r, nil
}

// Active is the id of the key Seal uses.
func (r *Ring) Active() uint32 { return r.active }

// Seal encrypts plaintext with the active key: 4-byte key id, nonce,
// ciphertext. The key id is authenticated as part of aad.
func (r *Ring) Seal(rand io.Reader, plaintext []byte, aad []byte) ([]byte, error) {
	a := r.keys[r.active]
	out := make([]byte, 4+a.NonceSize(), 4+a.NonceSize()+len(plaintext)+a.Overhead())
	binary.BigEndian.PutUint32(out, r.active)
	if _, err := io.ReadFull(rand, out[4:]); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return a.Seal(out, out[4:], plaintext, ringAAD(out[:4], aad)), nil
}

// Open decrypts a Seal output.
func (r *Ring) Open(sealed []byte, aad []byte) ([]byte, error) {
	if len(sealed) < 4 {
		return nil, ErrOpen
	}
	a, ok := r.keys[binary.BigEndian.Uint32(sealed)]
	if !ok {
		return nil, ErrUnknownKey
	}
	ns := a.NonceSize()
	if len(sealed) < 4+ns+a.Overhead() {
		return nil, ErrOpen
	}
	pt, err := a.Open(nil, sealed[4:4+ns], sealed[4+ns:], ringAAD(sealed[:4], aad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func ringAAD(id, aad []byte) []byte {
	out := make([]byte, 0, len(id)+len(aad))
	return append(append(out, id...), aad...)
}
