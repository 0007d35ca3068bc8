package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"maps"
	"math/big"
	"strings"
	"testing"
	"time"
)

// Token is a token under construction. Every part can be replaced, so that
// tests can build the malformed and malicious tokens a validator must
// refuse. Serialize turns it into the compact form.
type Token struct {
	// Header and Claims are marshalled with encoding/json (keys sorted).
	// A nil value in either map is written as JSON null; use delete to
	// drop a member.
	Header map[string]any
	Claims map[string]any
	// RawHeader and RawPayload, when non-nil, are used verbatim instead of
	// Header and Claims (duplicate keys, odd whitespace, invalid UTF-8…).
	RawHeader, RawPayload []byte
	// Key signs the token; SignAlg is the algorithm actually used, which
	// may differ from Header["alg"] (default: Header["alg"]).
	Key     *Key
	SignAlg string
	// Sign, when set, computes the signature instead of Key.
	Sign func(signingInput []byte) ([]byte, error)
	// DERSignature encodes an ECDSA signature as ASN.1 DER instead of R‖S.
	DERSignature bool
	// Signature, when non-nil, is used as the signature bytes verbatim.
	Signature []byte
	// Encode encodes each segment (default: unpadded base64url).
	Encode func([]byte) string
	// Segments, when set, replaces the assembled [header, payload,
	// signature] before joining with dots (extra segments, JWE shapes).
	Segments func(header, payload, signature string) []string
}

// NewToken returns a valid token for subject and audience, signed with the
// current key: iss, sub, aud, iat = nbf = now, exp = now + 5 min, jti.
func (i *Issuer) NewToken(subject string, audience any) *Token {
	k := i.CurrentKey()
	now := i.now()
	return &Token{
		Header: map[string]any{"alg": k.Alg, "typ": "JWT", "kid": k.KID},
		Claims: map[string]any{
			"iss": i.url,
			"sub": subject,
			"aud": audience,
			"iat": now.Unix(),
			"nbf": now.Unix(),
			"exp": now.Add(5 * time.Minute).Unix(),
			"jti": randomID(),
		},
		Key: k,
	}
}

// WithKey signs with k and sets alg and kid in the header from it.
func (t *Token) WithKey(k *Key) *Token {
	t.Key = k
	t.Header["alg"] = k.Alg
	t.Header["kid"] = k.KID
	return t
}

// Serialize returns the compact token.
func (t *Token) Serialize() (string, error) {
	enc := t.Encode
	if enc == nil {
		enc = base64.RawURLEncoding.EncodeToString
	}
	hb := t.RawHeader
	if hb == nil {
		var err error
		if hb, err = json.Marshal(t.Header); err != nil {
			return "", fmt.Errorf("oidctest: header: %w", err)
		}
	}
	pb := t.RawPayload
	if pb == nil {
		var err error
		if pb, err = json.Marshal(t.Claims); err != nil {
			return "", fmt.Errorf("oidctest: claims: %w", err)
		}
	}
	h64, p64 := enc(hb), enc(pb)
	sig := t.Signature
	if sig == nil {
		input := []byte(h64 + "." + p64)
		var err error
		switch {
		case t.Sign != nil:
			sig, err = t.Sign(input)
		default:
			alg := t.SignAlg
			if alg == "" {
				alg, _ = t.Header["alg"].(string)
			}
			sig, err = SignWith(t.Key, alg, input, t.DERSignature)
		}
		if err != nil {
			return "", err
		}
	}
	s64 := enc(sig)
	if t.Segments != nil {
		return strings.Join(t.Segments(h64, p64, s64), "."), nil
	}
	return h64 + "." + p64 + "." + s64, nil
}

// MustSerialize is Serialize for tests.
func (t *Token) MustSerialize(tb testing.TB) string {
	tb.Helper()
	s, err := t.Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Mint builds a valid token for subject and audience, applies the
// mutations in order, and serializes it.
func (i *Issuer) Mint(tb testing.TB, subject string, audience any, mutate ...func(*Token)) string {
	tb.Helper()
	t := i.NewToken(subject, audience)
	for _, m := range mutate {
		m(t)
	}
	return t.MustSerialize(tb)
}

// Clone copies the token so a base can be mutated per test case.
func (t *Token) Clone() *Token {
	c := *t
	c.Header = maps.Clone(t.Header)
	c.Claims = maps.Clone(t.Claims)
	return &c
}

// SignWith signs input with key k for alg. It signs with whatever alg says
// as long as the key can do it (an RSA key signs RS384 even if it is
// published as RS256), so tests can produce alg/key mismatches. der makes
// ECDSA signatures ASN.1 DER.
func SignWith(k *Key, alg string, input []byte, der bool) ([]byte, error) {
	if k == nil {
		return nil, fmt.Errorf("oidctest: no key to sign %s", alg)
	}
	h, hf := hashFor(alg)
	if h == nil {
		return nil, fmt.Errorf("oidctest: cannot sign alg %q with a key; set Token.Sign or Token.Signature", alg)
	}
	h.Write(input)
	digest := h.Sum(nil)
	switch priv := k.Signer.(type) {
	case *rsa.PrivateKey:
		if strings.HasPrefix(alg, "PS") {
			return rsa.SignPSS(rand.Reader, priv, hf, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, priv, hf, digest)
	case *ecdsa.PrivateKey:
		if der {
			return ecdsa.SignASN1(rand.Reader, priv, digest)
		}
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest)
		if err != nil {
			return nil, err
		}
		return RawECDSA(priv.Curve.Params().BitSize, r, s), nil
	}
	return nil, fmt.Errorf("oidctest: unsupported key %T", k.Signer)
}

func hashFor(alg string) (hash.Hash, crypto.Hash) {
	switch alg[min(len(alg), 2):] {
	case "256":
		return sha256.New(), crypto.SHA256
	case "384":
		return sha512.New384(), crypto.SHA384
	case "512":
		return sha512.New(), crypto.SHA512
	}
	return nil, 0
}

// RawECDSA encodes r and s as R‖S, each left-padded to the curve size.
func RawECDSA(curveBits int, r, s *big.Int) []byte {
	size := (curveBits + 7) / 8
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out
}

// DERToRaw converts an ASN.1 ECDSA signature to R‖S (for re-encoding tests).
func DERToRaw(curveBits int, der []byte) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	return RawECDSA(curveBits, sig.R, sig.S), nil
}

// HMACSigner returns a Sign function computing HMAC-SHA256 with secret, as
// in the RS256→HS256 confusion attack (secret = the public key PEM).
func HMACSigner(secret []byte) func([]byte) ([]byte, error) {
	return func(input []byte) ([]byte, error) {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil), nil
	}
}

// PaddedBase64 encodes with padding, StdBase64 with the standard alphabet
// and padding: two non-canonical encodings.
func PaddedBase64(b []byte) string { return base64.URLEncoding.EncodeToString(b) }

// StdBase64 encodes with the standard alphabet ('+', '/') and padding.
func StdBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// NonZeroTrailingBits encodes canonically and then sets the unused low bits
// of the last character, which lenient decoders ignore.
func NonZeroTrailingBits(b []byte) string {
	s := base64.RawURLEncoding.EncodeToString(b)
	if len(b)%3 == 0 {
		return s // no spare bits
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
