package audit

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Digest is a CloudTrail digest file, field for field. Times are kept as the
// strings written in the file because the string to sign uses
// digestEndTime verbatim. Nullable fields are pointers: a starting digest
// has every previousDigest* field null, an empty hour has null event times.
type Digest struct {
	AWSAccountID                string          `json:"awsAccountId"`
	DigestStartTime             string          `json:"digestStartTime"`
	DigestEndTime               string          `json:"digestEndTime"`
	DigestS3Bucket              string          `json:"digestS3Bucket"`
	DigestS3Object              string          `json:"digestS3Object"`
	DigestPublicKeyFingerprint  string          `json:"digestPublicKeyFingerprint"`
	DigestSignatureAlgorithm    string          `json:"digestSignatureAlgorithm"`
	NewestEventTime             *string         `json:"newestEventTime"`
	OldestEventTime             *string         `json:"oldestEventTime"`
	PreviousDigestS3Bucket      *string         `json:"previousDigestS3Bucket"`
	PreviousDigestS3Object      *string         `json:"previousDigestS3Object"`
	PreviousDigestHashValue     *string         `json:"previousDigestHashValue"`
	PreviousDigestHashAlgorithm *string         `json:"previousDigestHashAlgorithm"`
	PreviousDigestSignature     *string         `json:"previousDigestSignature"`
	LogFiles                    []DigestLogFile `json:"logFiles"`
}

// DigestLogFile is one entry of a digest's logFiles: the hash is over the
// uncompressed delivery file.
type DigestLogFile struct {
	S3Bucket        string `json:"s3Bucket"`
	S3Object        string `json:"s3Object"`
	HashValue       string `json:"hashValue"`
	HashAlgorithm   string `json:"hashAlgorithm"`
	NewestEventTime string `json:"newestEventTime"`
	OldestEventTime string `json:"oldestEventTime"`
}

// Algorithm names CloudTrail writes.
const (
	SignatureAlgorithm = "SHA256withRSA"
	HashAlgorithm      = "SHA-256"
	digestTimeLayout   = "2006-01-02T15:04:05Z"
)

// ErrBadDigest reports a digest file that is not a well-formed CloudTrail
// digest.
var ErrBadDigest = errors.New("audit: malformed digest")

// ParseDigest decodes and checks an uncompressed digest file: required
// fields present, times well formed, previousDigest* all set or all null,
// hashes hex SHA-256.
func ParseDigest(data []byte) (*Digest, error) {
	var d Digest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadDigest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data", ErrBadDigest)
	}
	req := map[string]string{
		"awsAccountId": d.AWSAccountID, "digestStartTime": d.DigestStartTime, "digestEndTime": d.DigestEndTime,
		"digestS3Bucket": d.DigestS3Bucket, "digestS3Object": d.DigestS3Object,
		"digestPublicKeyFingerprint": d.DigestPublicKeyFingerprint, "digestSignatureAlgorithm": d.DigestSignatureAlgorithm,
	}
	for k, v := range req {
		if v == "" {
			return nil, fmt.Errorf("%w: missing %s", ErrBadDigest, k)
		}
	}
	if d.DigestSignatureAlgorithm != SignatureAlgorithm {
		return nil, fmt.Errorf("%w: unsupported signature algorithm %q", ErrBadDigest, d.DigestSignatureAlgorithm)
	}
	start, err1 := parseDigestTime(d.DigestStartTime)
	end, err2 := parseDigestTime(d.DigestEndTime)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if end.Before(start) {
		return nil, fmt.Errorf("%w: digestEndTime before digestStartTime", ErrBadDigest)
	}
	for _, p := range []*string{d.NewestEventTime, d.OldestEventTime} {
		if p != nil {
			if _, err := parseDigestTime(*p); err != nil {
				return nil, err
			}
		}
	}
	prev := []*string{d.PreviousDigestS3Bucket, d.PreviousDigestS3Object, d.PreviousDigestHashValue,
		d.PreviousDigestHashAlgorithm, d.PreviousDigestSignature}
	nulls := 0
	for _, p := range prev {
		if p == nil {
			nulls++
		}
	}
	switch nulls {
	case 0:
		if *d.PreviousDigestHashAlgorithm != HashAlgorithm || !isHexLen(*d.PreviousDigestHashValue, 64) ||
			!isHexLen(*d.PreviousDigestSignature, -1) || *d.PreviousDigestS3Object == "" {
			return nil, fmt.Errorf("%w: bad previousDigest fields", ErrBadDigest)
		}
	case len(prev):
	default:
		return nil, fmt.Errorf("%w: previousDigest fields must be all set or all null", ErrBadDigest)
	}
	if d.LogFiles == nil {
		return nil, fmt.Errorf("%w: missing logFiles", ErrBadDigest)
	}
	for i, f := range d.LogFiles {
		if f.S3Object == "" || f.HashAlgorithm != HashAlgorithm || !isHexLen(f.HashValue, 64) {
			return nil, fmt.Errorf("%w: logFiles[%d] incomplete", ErrBadDigest, i)
		}
		for _, s := range []string{f.NewestEventTime, f.OldestEventTime} {
			if _, err := parseDigestTime(s); err != nil {
				return nil, err
			}
		}
	}
	return &d, nil
}

func parseDigestTime(s string) (time.Time, error) {
	t, err := time.Parse(digestTimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q: %w", ErrBadDigest, s, err)
	}
	return t, nil
}

func formatDigestTime(t time.Time) string { return t.UTC().Format(digestTimeLayout) }

// isHexLen reports whether s is lowercase or uppercase hex of length n (any
// non-zero even length when n < 0).
func isHexLen(s string, n int) bool {
	if n >= 0 && len(s) != n || n < 0 && (s == "" || len(s)%2 != 0) {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// StringToSign is CloudTrail's string to sign for a digest file:
//
//	digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256(uncompressed digest)) \n previousDigestSignature-or-"null"
func StringToSign(d *Digest, digestSHA256Hex string) string {
	prev := "null"
	if d.PreviousDigestSignature != nil {
		prev = *d.PreviousDigestSignature
	}
	return d.DigestEndTime + "\n" + d.DigestS3Bucket + "/" + d.DigestS3Object + "\n" + digestSHA256Hex + "\n" + prev
}

// SigningKey signs digests: an RSA crypto.Signer (the private key may live in
// an HSM or be decrypted from the store by the caller) and its fingerprint.
type SigningKey struct {
	Signer      crypto.Signer
	Fingerprint string
}

// NewSigningKey wraps an RSA signer of at least 2048 bits and computes its
// fingerprint.
func NewSigningKey(s crypto.Signer) (SigningKey, error) {
	pub, ok := s.Public().(*rsa.PublicKey)
	if !ok {
		return SigningKey{}, fmt.Errorf("audit: digest signing key must be RSA, got %T", s.Public())
	}
	if pub.N.BitLen() < 2048 {
		return SigningKey{}, fmt.Errorf("audit: digest signing key has %d bits, want at least 2048", pub.N.BitLen())
	}
	return SigningKey{Signer: s, Fingerprint: Fingerprint(pub)}, nil
}

// Fingerprint identifies a digest public key: the first 16 bytes (32 hex
// characters, the length AWS uses) of the SHA-256 of the key's DER PKCS#1
// RSAPublicKey encoding, lowercase hex. AWS does not document how it derives
// its fingerprint; this is keyless's definition.
func Fingerprint(pub *rsa.PublicKey) string {
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(pub))
	return hex.EncodeToString(sum[:16])
}

// signDigest signs toSign with SHA256withRSA (RSASSA-PKCS1-v1_5) and returns
// the signature as hex, as CloudTrail stores it.
func signDigest(k SigningKey, rand io.Reader, toSign string) (string, error) {
	h := sha256.Sum256([]byte(toSign))
	sig, err := k.Signer.Sign(rand, h[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("audit: sign digest: %w", err)
	}
	return hex.EncodeToString(sig), nil
}

// ErrBadSignature reports a digest signature that does not verify.
var ErrBadSignature = errors.New("audit: digest signature verification failed")

// VerifyDigestSignature checks a hex signature over toSign.
func VerifyDigestSignature(pub *rsa.PublicKey, toSign, sigHex string) error {
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return fmt.Errorf("%w: signature is not hex", ErrBadSignature)
	}
	h := sha256.Sum256([]byte(toSign))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}
