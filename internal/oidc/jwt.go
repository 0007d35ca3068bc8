package oidc

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Size limits (V07). AWS's WebIdentityToken parameter is 4–20000 characters.
const (
	MinTokenLength = 4
	MaxTokenLength = 20000
	// maxHeaderBytes caps the decoded JOSE header. Real headers are under
	// 200 bytes; 4 KiB leaves room and bounds the work before the issuer
	// lookup.
	maxHeaderBytes = 4 << 10
	// maxKIDLength caps the kid (an opaque map key, V04) so it cannot be
	// used to grow the negative cache.
	maxKIDLength = 256
)

// The algorithms AWS STS accepts (aws-sts-iam.md §2.2). Compared exactly and
// case-sensitively (V01).
const (
	RS256 = "RS256"
	RS384 = "RS384"
	RS512 = "RS512"
	ES256 = "ES256"
	ES384 = "ES384"
	ES512 = "ES512"
)

// SupportedAlgorithms returns the AWS set of signature algorithms, the
// default per-provider allow-list.
func SupportedAlgorithms() []string { return []string{RS256, RS384, RS512, ES256, ES384, ES512} }

func isSupportedAlg(alg string) bool {
	switch alg {
	case RS256, RS384, RS512, ES256, ES384, ES512:
		return true
	}
	return false
}

// Header is the part of the JOSE header a caller may need (audit, the
// admin's decoded explanation).
type Header struct {
	Alg string `json:"alg"`
	KID string `json:"kid,omitempty"`
	// HasKID distinguishes an absent kid from any value.
	HasKID bool   `json:"-"`
	Typ    string `json:"typ,omitempty"`
}

// parsedJWS is a compact JWS split and strictly decoded, not yet verified.
type parsedJWS struct {
	header       Header
	payload      map[string]any
	signingInput string
	signature    []byte
}

// checkLength is step 1 of the order of checks: AWS rejects the parameter
// with ValidationError before looking at it. Length is in characters.
func checkLength(raw string) *Error {
	n := len(raw)
	if n > MaxTokenLength {
		// Multi-byte characters could bring the count back under the limit;
		// only count runes when that is possible (n ≤ 4×limit).
		if n > utf8.UTFMax*MaxTokenLength || utf8.RuneCountInString(raw) > MaxTokenLength {
			return &Error{Code: CodeValidationError, Message: msgTooLong, Rule: "V07",
				Reason: fmt.Sprintf("token is %d bytes; at most %d characters are accepted", n, MaxTokenLength),
				Err:    ErrTokenLength}
		}
	}
	if utf8.RuneCountInString(raw) < MinTokenLength {
		return &Error{Code: CodeValidationError, Message: msgTooShort, Rule: "V07",
			Reason: fmt.Sprintf("token is %d characters; at least %d are required", utf8.RuneCountInString(raw), MinTokenLength),
			Err:    ErrTokenLength}
	}
	return nil
}

// parseCompact splits and decodes a compact JWS (steps 2–4 of the order of
// checks). It never allocates more than a constant times len(raw): the dots
// are counted before anything is split (CVE-2025-30204, CVE-2025-27144).
func parseCompact(raw string) (*parsedJWS, *Error) {
	if strings.HasPrefix(strings.TrimLeft(raw, " \t\r\n"), "{") {
		return nil, malformed("V06", "JWS JSON serialization is not accepted; only the compact form is")
	}
	switch dots := strings.Count(raw, "."); dots {
	case 2:
	case 4:
		return nil, malformed("V06", "token has 5 segments: JWE (encrypted) tokens are never decrypted")
	default:
		return nil, malformed("V06", fmt.Sprintf("token has %d segments; a compact JWS has exactly 3", dots+1))
	}
	i := strings.IndexByte(raw, '.')
	j := strings.LastIndexByte(raw, '.')
	h64, p64, s64 := raw[:i], raw[i+1:j], raw[j+1:]
	switch {
	case h64 == "":
		return nil, malformed("V06", "empty header segment")
	case p64 == "":
		return nil, malformed("V06", "empty payload segment")
	case s64 == "":
		return nil, malformed("V06", "empty signature segment (unsecured JWS)")
	}
	if base64.RawURLEncoding.DecodedLen(len(h64)) > maxHeaderBytes {
		return nil, malformed("V07", fmt.Sprintf("header segment is longer than %d bytes", maxHeaderBytes))
	}
	hb, err := decodeSegment(h64)
	if err != nil {
		return nil, malformedErr("V08", "header segment: "+err.Error(), err)
	}
	pb, err := decodeSegment(p64)
	if err != nil {
		return nil, malformedErr("V08", "payload segment: "+err.Error(), err)
	}
	sig, err := decodeSegment(s64)
	if err != nil {
		return nil, malformedErr("V08", "signature segment: "+err.Error(), err)
	}
	hdrObj, err := parseJSONObject(hb, maxJSONDepth)
	if err != nil {
		return nil, malformedErr(jsonRule(err), "header JSON: "+err.Error(), err)
	}
	payload, err := parseJSONObject(pb, maxJSONDepth)
	if err != nil {
		return nil, malformedErr(jsonRule(err), "payload JSON: "+err.Error(), err)
	}
	hdr, herr := checkHeader(hdrObj)
	if herr != nil {
		return nil, herr
	}
	return &parsedJWS{header: hdr, payload: payload, signingInput: raw[:j], signature: sig}, nil
}

// jsonRule attributes a decoding failure: the depth limit is a size limit
// (V07), everything else strict decoding (V08).
func jsonRule(err error) string {
	if errors.Is(err, ErrJSONTooDeep) {
		return "V07"
	}
	return "V08"
}

// strictBase64URL is read-only after initialisation, like the encodings in
// encoding/base64 itself; making it once avoids an allocation per segment.
var strictBase64URL = base64.RawURLEncoding.Strict()

// decodeSegment decodes canonical unpadded base64url (V08): the alphabet is
// checked first because encoding/base64 skips CR and LF even in strict mode,
// and Strict rejects non-zero trailing bits, so every byte string has exactly
// one accepted encoding.
func decodeSegment(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			if c == '=' {
				return nil, errors.New("base64url padding is not allowed")
			}
			return nil, fmt.Errorf("character %q is not in the base64url alphabet", c)
		}
	}
	b, err := strictBase64URL.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("non-canonical base64url: %w", err)
	}
	return b, nil
}

// checkHeader applies the JOSE header rules (V01, V03, V05, V06).
func checkHeader(h map[string]any) (Header, *Error) {
	var out Header
	// Members that would make us fetch or trust key material named by the
	// token itself (V03). Rejected rather than ignored so the reason is
	// explicit and no later code path can ever look at them.
	for _, name := range []string{"jku", "x5u", "jwk", "x5c"} {
		if _, ok := h[name]; ok {
			return out, headerErr("V03", fmt.Sprintf("header carries %q: keys come only from the registered issuer's JWKS", name))
		}
	}
	if _, ok := h["crit"]; ok {
		return out, headerErr("V05", "header carries \"crit\": no extension is understood")
	}
	if b64, ok := h["b64"]; ok && b64 != true {
		return out, headerErr("V05", "header carries \"b64\": unencoded payloads (RFC 7797) are not accepted")
	}
	for _, name := range []string{"enc", "zip", "p2c", "p2s", "epk", "apu", "apv", "iv", "tag"} {
		if _, ok := h[name]; ok {
			return out, headerErr("V06", fmt.Sprintf("header carries the JWE parameter %q: encrypted tokens are never processed", name))
		}
	}
	if _, ok := h["cty"]; ok {
		return out, headerErr("V06", "header carries \"cty\": nested tokens are not accepted")
	}
	alg, ok := h["alg"]
	if !ok {
		return out, algErr("header has no \"alg\"")
	}
	algS, ok := alg.(string)
	if !ok {
		return out, algErr("header \"alg\" is not a string")
	}
	if !isSupportedAlg(algS) {
		return out, algErr(fmt.Sprintf("algorithm %q is not one of RS256/384/512, ES256/384/512", truncate(algS, 32)))
	}
	out.Alg = algS
	if kid, ok := h["kid"]; ok {
		s, ok := kid.(string)
		switch {
		case !ok:
			return out, headerErr("V04", "header \"kid\" is not a string")
		case s == "":
			return out, headerErr("V04", "header \"kid\" is empty")
		case len(s) > maxKIDLength:
			return out, headerErr("V04", fmt.Sprintf("header \"kid\" is longer than %d bytes", maxKIDLength))
		}
		out.KID, out.HasKID = s, true
	}
	if typ, ok := h["typ"]; ok {
		s, ok := typ.(string)
		if !ok {
			return out, headerErr("V08", "header \"typ\" is not a string")
		}
		// typ is a media type, compared case-insensitively (RFC 7515
		// §4.1.9). Only ID-token shapes are accepted; explicitly typed other
		// JWTs (at+jwt access tokens, logout tokens, …) are a different kind
		// of token (RFC 8725 §3.11).
		switch strings.ToLower(s) {
		case "jwt", "application/jwt":
		default:
			return out, headerErr("V08", fmt.Sprintf("header \"typ\" %q is not JWT", truncate(s, 32)))
		}
		out.Typ = s
	}
	return out, nil
}
