package oidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"math/big"
)

// verifySignature checks sig over signingInput with key k for alg (V02).
// The key type and curve must fit alg; an ECDSA signature must be exactly
// R‖S of the curve's size (never DER, RFC 7518 §3.4); the stdlib then
// rejects r or s outside [1, n-1], which covers r=s=0 (CVE-2022-21449).
func verifySignature(k *jwk, alg, signingInput string, sig []byte) error {
	if !k.fits(alg) {
		return fmt.Errorf("%w: %s key cannot verify %s", ErrKeyMismatch, k.describeType(), alg)
	}
	if k.alg != "" && k.alg != alg {
		return fmt.Errorf("%w: key is for %s, token says %s", ErrKeyMismatch, k.alg, alg)
	}
	var digest []byte
	var h crypto.Hash
	switch alg {
	case RS256, ES256:
		d := sha256.Sum256([]byte(signingInput))
		digest, h = d[:], crypto.SHA256
	case RS384, ES384:
		d := sha512.Sum384([]byte(signingInput))
		digest, h = d[:], crypto.SHA384
	case RS512, ES512:
		d := sha512.Sum512([]byte(signingInput))
		digest, h = d[:], crypto.SHA512
	default:
		return fmt.Errorf("%w: %s", ErrAlgorithm, alg)
	}
	if k.rsa != nil {
		if len(sig) != k.rsa.Size() {
			return fmt.Errorf("%w: RSA signature is %d bytes, key needs %d", ErrSignature, len(sig), k.rsa.Size())
		}
		if err := rsa.VerifyPKCS1v15(k.rsa, h, digest, sig); err != nil {
			return fmt.Errorf("%w: %w", ErrSignature, err)
		}
		return nil
	}
	_, size := curveFor(k.crv)
	if len(sig) != 2*size {
		return fmt.Errorf("%w: ECDSA signature is %d bytes; %s needs exactly %d (R||S, not DER)", ErrSignature, len(sig), alg, 2*size)
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	if !ecdsa.Verify(k.ec, digest, r, s) {
		return fmt.Errorf("%w: ECDSA signature does not verify", ErrSignature)
	}
	return nil
}
