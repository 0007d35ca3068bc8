package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
)

// Verify rebuilds the canonical request of r, derives the signing key from
// secretAccessKey and the credential scope, and compares the signature in
// constant time. body is the request body the server already read (bounded);
// r.Body is not touched.
//
// The payload hash is the SHA-256 of body. When the client sent
// X-Amz-Content-Sha256 it must equal that hash: UNSIGNED-PAYLOAD and streaming
// payloads are refused, since STS and IAM bodies are small and always
// hashable.
//
// On mismatch the message carries, after AWS's text, the canonical request
// and string to sign this server expected, as AWS's Query services do, with
// any session token replaced by REDACTED.
func (s *Signature) Verify(r *http.Request, body []byte, secretAccessKey string) error {
	if s == nil || s.scope == "" {
		return awsquery.Internal("", errors.New("sigv4: Verify called without a parsed signature"))
	}
	var payload [64]byte
	sum := sha256.Sum256(body)
	hex.Encode(payload[:], sum[:])
	if sent := r.Header.Values("X-Amz-Content-Sha256"); len(sent) > 0 {
		switch {
		case len(sent) > 1:
			return incomplete("Only one X-Amz-Content-Sha256 header is allowed.")
		case sent[0] == "UNSIGNED-PAYLOAD" || strings.HasPrefix(sent[0], "STREAMING-"):
			return incomplete("X-Amz-Content-Sha256 must be the SHA-256 of the request body; unsigned and streaming payloads are not accepted by this service.")
		case sent[0] != string(payload[:]):
			return mismatch("The provided 'x-amz-content-sha256' header does not match what was computed.", nil)
		}
	}

	want, ok := decodeSignature(s.signature)
	date := s.scope[:8]
	key := signingKey(secretAccessKey, date, s.Region, s.Service)

	path := requestPath(r)
	norm := normalizePath(path)
	var buf [1024]byte
	var sts [256]byte
	creq := s.appendCanonicalRequest(buf[:0], r, norm, payload[:], false)
	toSign := s.appendStringToSign(sts[:0], sha256.Sum256(creq))
	got := hmacSHA256(key[:], toSign)
	if ok && hmac.Equal(got[:], want[:]) {
		return nil
	}
	if norm != path {
		// aws-sdk-go-v2 signs the path without removing dot segments or
		// repeated slashes.
		raw := s.appendCanonicalRequest(buf[:0], r, path, payload[:], false)
		rawToSign := s.appendStringToSign(sts[:0], sha256.Sum256(raw))
		if got := hmacSHA256(key[:], rawToSign); ok && hmac.Equal(got[:], want[:]) {
			return nil
		}
		// Report the spec form.
		creq = s.appendCanonicalRequest(buf[:0], r, norm, payload[:], false)
		toSign = s.appendStringToSign(sts[:0], sha256.Sum256(creq))
	}
	shown := s.appendCanonicalRequest(nil, r, norm, payload[:], true)
	return mismatch(msgMismatch+
		"\n\nThe Canonical String for this request should have been\n'"+string(shown)+
		"'\n\nThe String-to-Sign should have been\n'"+string(toSign)+"'\n", ErrMismatch)
}

// appendCanonicalRequest writes
// Method\nURI\nQuery\nHeaders\nSignedHeaders\nPayloadHash.
// URI paths are encoded once more on top of their wire encoding, as SigV4
// requires for every service but S3.
func (s *Signature) appendCanonicalRequest(dst []byte, r *http.Request, path string, payload []byte, redact bool) []byte {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	dst = append(dst, method...)
	dst = append(dst, '\n')
	dst = appendURIEncode(dst, path, true)
	dst = append(dst, '\n')
	dst = appendCanonicalQuery(dst, r.URL.RawQuery, s.Presigned, redact)
	dst = append(dst, '\n')
	dst = appendCanonicalHeaders(dst, r, s.signedHeaders, redact)
	dst = append(dst, '\n')
	dst = append(dst, s.signedHeaders...)
	dst = append(dst, '\n')
	return append(dst, payload...)
}

func (s *Signature) appendStringToSign(dst []byte, creqHash [32]byte) []byte {
	dst = append(dst, algorithm+"\n"...)
	dst = append(dst, s.amzDate...)
	dst = append(dst, '\n')
	dst = append(dst, s.scope...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, creqHash[:])
}

// decodeSignature accepts exactly 64 lowercase hex digits, the only form
// AWS's signers emit.
func decodeSignature(sig string) (out [32]byte, ok bool) {
	if len(sig) != 64 {
		return out, false
	}
	for i := 0; i < 32; i++ {
		h, l := sig[2*i], sig[2*i+1]
		if h >= 'A' && h <= 'F' || l >= 'A' && l <= 'F' {
			return out, false
		}
		hv, ok1 := unhex(h)
		lv, ok2 := unhex(l)
		if !ok1 || !ok2 {
			return out, false
		}
		out[i] = hv<<4 | lv
	}
	return out, true
}

// signingKey is HMAC("AWS4"+secret, date) -> region -> service ->
// "aws4_request".
func signingKey(secret, date, region, service string) [32]byte {
	var kb [128]byte
	k := append(append(kb[:0], "AWS4"...), secret...)
	kDate := hmacSHA256(k, date)
	kRegion := hmacSHA256(kDate[:], region)
	kService := hmacSHA256(kRegion[:], service)
	return hmacSHA256(kService[:], terminator)
}

// hmacSHA256 is RFC 2104 HMAC over SHA-256 computed with sha256.Sum256 on
// stack buffers. crypto/hmac allocates six times per call and a verification
// needs five HMACs, which alone cost more than half the 10 µs budget; this
// form costs a few compressions per call and is checked against crypto/hmac
// by TestHMACMatchesStdlib and FuzzHMAC.
func hmacSHA256[M string | []byte](key []byte, msg M) [32]byte {
	const blockSize = 64
	var k [blockSize]byte
	if len(key) > blockSize {
		h := sha256.Sum256(key)
		copy(k[:], h[:])
	} else {
		copy(k[:], key)
	}
	var innerBuf [blockSize + 384]byte
	inner := innerBuf[:]
	if len(msg) > len(innerBuf)-blockSize {
		inner = make([]byte, blockSize+len(msg))
	}
	for i, b := range k {
		inner[i] = b ^ 0x36
	}
	n := blockSize + copy(inner[blockSize:], msg)
	ih := sha256.Sum256(inner[:n])
	var outer [blockSize + sha256.Size]byte
	for i, b := range k {
		outer[i] = b ^ 0x5c
	}
	copy(outer[blockSize:], ih[:])
	return sha256.Sum256(outer[:])
}
