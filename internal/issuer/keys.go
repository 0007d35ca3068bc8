package issuer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store"
)

// RSAKeyBits is the size of new RS256 keys. 2048 bits is what GitHub,
// CircleCI and dex sign ID tokens with and is acceptable to NIST through
// 2030; keys here live days, not years. 3072 bits would cost about three
// times as much per signature (RS256 is the minting bottleneck) for no gain
// against the realistic threat, a stolen key, which rotation bounds.
const RSAKeyBits = 2048

// KeyGenerator makes a new private key for alg (RS256 or ES256).
type KeyGenerator func(alg string, rand io.Reader) (crypto.Signer, error)

// GenerateKey is the default KeyGenerator. Since Go 1.26 the standard
// library draws key material from its own secure source and ignores rand
// (unless GODEBUG=cryptocustomrand=1); tests that need fixed keys inject a
// KeyGenerator instead.
func GenerateKey(alg string, rand io.Reader) (crypto.Signer, error) {
	switch alg {
	case RS256:
		return rsa.GenerateKey(rand, RSAKeyBits)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand)
	}
	return nil, fmt.Errorf("%w: algorithm %q", ErrConfig, alg)
}

// purposeOf is the KeyMaterial purpose of an issuer's signing keys.
func purposeOf(issuerID string) string { return "issuer:" + issuerID }

// sealAAD binds a sealed private key to its purpose and kid, so a sealed
// blob copied to another row or issuer does not open.
func sealAAD(purpose, kid string) string {
	return "keyless-issuer-signing-key\x00" + purpose + "\x00" + kid
}

// newKID returns a random key id: 16 bytes, hex.
func newKID(rand io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("issuer: kid: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// newKeyDoc generates a key and returns it as a store document with the
// private key sealed. Lifecycle times are set by the caller.
func newKeyDoc(gen KeyGenerator, rand io.Reader, master *keyring.Master, purpose, alg string, now time.Time) (*store.KeyMaterial, error) {
	priv, err := gen(alg, rand)
	if err != nil {
		return nil, fmt.Errorf("issuer: generate %s key: %w", alg, err)
	}
	if err := checkKeyType(priv, alg); err != nil {
		return nil, err
	}
	kid, err := newKID(rand)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("issuer: encode private key: %w", err)
	}
	sealed, err := master.Seal(rand, der, sealAAD(purpose, kid))
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("issuer: seal private key: %w", err)
	}
	pub, err := publicJWK(priv.Public(), kid, alg)
	if err != nil {
		return nil, err
	}
	return &store.KeyMaterial{
		Purpose:    purpose,
		ID:         kid,
		Algorithm:  alg,
		Sealed:     sealed,
		Public:     pub,
		CreateDate: now,
	}, nil
}

func checkKeyType(k crypto.Signer, alg string) error {
	switch alg {
	case RS256:
		if rk, ok := k.(*rsa.PrivateKey); ok && rk.N.BitLen() >= RSAKeyBits {
			return nil
		}
	case ES256:
		if ek, ok := k.(*ecdsa.PrivateKey); ok && ek.Curve == elliptic.P256() {
			return nil
		}
	}
	return fmt.Errorf("issuer: key of type %T does not fit %s", k, alg)
}

// publicJWK is the JWK published for a key.
func publicJWK(pub crypto.PublicKey, kid, alg string) ([]byte, error) {
	b, err := jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("issuer: encode public key: %w", err)
	}
	return b, nil
}

// parsePublic reads a stored public JWK and checks it against the
// document's kid and algorithm.
func parsePublic(doc *store.KeyMaterial) (crypto.PublicKey, []byte, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(doc.Public); err != nil {
		return nil, nil, fmt.Errorf("issuer: key %s: public JWK: %w", doc.ID, err)
	}
	if !k.IsPublic() || !k.Valid() || k.KeyID != doc.ID || k.Algorithm != doc.Algorithm {
		return nil, nil, fmt.Errorf("issuer: key %s: public JWK does not match the record (kid %q, alg %q)", doc.ID, k.KeyID, k.Algorithm)
	}
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		if doc.Algorithm == RS256 && pk.N.BitLen() >= RSAKeyBits {
			break
		}
		return nil, nil, fmt.Errorf("issuer: key %s: RSA key does not fit %s", doc.ID, doc.Algorithm)
	case *ecdsa.PublicKey:
		if doc.Algorithm == ES256 && pk.Curve == elliptic.P256() {
			break
		}
		return nil, nil, fmt.Errorf("issuer: key %s: EC key does not fit %s", doc.ID, doc.Algorithm)
	default:
		return nil, nil, fmt.Errorf("issuer: key %s: unsupported key type %T", doc.ID, k.Key)
	}
	canon, err := publicJWK(k.Key, doc.ID, doc.Algorithm)
	if err != nil {
		return nil, nil, err
	}
	return k.Key, canon, nil
}

// signer is an opened signing key, ready to sign compact JWS.
type signer struct {
	kid    string
	alg    string
	priv   crypto.Signer
	header string // base64url(JOSE header) + "."
	// The record it was opened from, to notice changes.
	sealed, public []byte
}

// openSigner unseals doc's private key and checks it is the pair of the
// published public key (a record whose halves disagree must not sign).
func openSigner(master *keyring.Master, doc *store.KeyMaterial, pub crypto.PublicKey) (*signer, error) {
	der, err := master.Open(doc.Sealed, sealAAD(doc.Purpose, doc.ID))
	if err != nil {
		return nil, fmt.Errorf("issuer: key %s does not open with master key %s (wrong master key?): %w", doc.ID, master.ID(), err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("issuer: key %s: private key: %w", doc.ID, err)
	}
	priv, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("issuer: key %s: private key of type %T cannot sign", doc.ID, k)
	}
	if err := checkKeyType(priv, doc.Algorithm); err != nil {
		return nil, fmt.Errorf("issuer: key %s: %w", doc.ID, err)
	}
	eq, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(pub) {
		return nil, fmt.Errorf("issuer: key %s: private key does not match the published public key", doc.ID)
	}
	sg := newSigner(priv, doc.ID, doc.Algorithm)
	sg.sealed, sg.public = bytes.Clone(doc.Sealed), bytes.Clone(doc.Public)
	return sg, nil
}

// opened reports whether s was opened from exactly doc's key halves.
func (s *signer) opened(doc *store.KeyMaterial) bool {
	return bytes.Equal(s.sealed, doc.Sealed) && bytes.Equal(s.public, doc.Public)
}

func newSigner(priv crypto.Signer, kid, alg string) *signer {
	// Fixed member order; kid is hex so needs no escaping.
	h := `{"alg":"` + alg + `","kid":"` + kid + `","typ":"JWT"}`
	return &signer{
		kid:    kid,
		alg:    alg,
		priv:   priv,
		header: base64.RawURLEncoding.EncodeToString([]byte(h)) + ".",
	}
}

// sigLen is the length of the base64url signature.
func (s *signer) sigLen() int {
	switch k := s.priv.(type) {
	case *rsa.PrivateKey:
		return base64.RawURLEncoding.EncodedLen(k.Size())
	default:
		return base64.RawURLEncoding.EncodedLen(64)
	}
}

// sign returns the compact JWS of payload (JSON claims). The JWS is built
// here rather than through go-jose's builder because this is the hot path;
// tests verify the output with go-jose and go-oidc.
func (s *signer) sign(payload []byte) (string, error) {
	n := len(s.header) + base64.RawURLEncoding.EncodedLen(len(payload))
	buf := make([]byte, 0, n+1+s.sigLen())
	buf = append(buf, s.header...)
	buf = base64.RawURLEncoding.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	var sig []byte
	switch k := s.priv.(type) {
	case *rsa.PrivateKey:
		var err error
		// PKCS #1 v1.5 is deterministic; the library blinds internally.
		if sig, err = rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:]); err != nil {
			return "", fmt.Errorf("issuer: sign: %w", err)
		}
	case *ecdsa.PrivateKey:
		// Deterministic ECDSA (RFC 6979, a nil rand): no dependence on the
		// RNG at signing time, and a quarter cheaper than the hedged form
		// here. JWS wants R||S, each 32 bytes (RFC 7518 §3.4), not ASN.1.
		asn, err := k.Sign(nil, digest[:], crypto.SHA256)
		if err != nil {
			return "", fmt.Errorf("issuer: sign: %w", err)
		}
		if sig, err = asn1ToRS(asn, 32); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("issuer: cannot sign with %T", s.priv)
	}
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, sig)
	return string(buf), nil
}

var errECDSASignature = errors.New("issuer: malformed ECDSA signature")

// asn1ToRS converts an ASN.1 ECDSA signature into fixed-size R||S.
func asn1ToRS(der []byte, size int) ([]byte, error) {
	// SEQUENCE { INTEGER r, INTEGER s }, short-form lengths (P-256 fits).
	bad := errECDSASignature
	if len(der) < 8 || der[0] != 0x30 || int(der[1]) != len(der)-2 {
		return nil, bad
	}
	out := make([]byte, 2*size)
	rest := der[2:]
	for i := range 2 {
		if len(rest) < 2 || rest[0] != 0x02 {
			return nil, bad
		}
		l := int(rest[1])
		if l == 0 || len(rest) < 2+l {
			return nil, bad
		}
		v := bytes.TrimLeft(rest[2:2+l], "\x00")
		if len(v) > size {
			return nil, bad
		}
		copy(out[(i+1)*size-len(v):(i+1)*size], v)
		rest = rest[2+l:]
	}
	if len(rest) != 0 {
		return nil, bad
	}
	return out, nil
}

// thumbprint is the RFC 7638 thumbprint of a public JWK, for logs.
func thumbprint(jwk []byte) string {
	var k jose.JSONWebKey
	if err := json.Unmarshal(jwk, &k); err != nil {
		return ""
	}
	t, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(t)
}
