package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// JWK set limits (V16). AWS reportedly reads at most 100 keys of each type
// (spiffe/spire#4699); keys beyond that are ignored, as AWS does.
const (
	maxRSAKeys    = 100
	maxECKeys     = 100
	minRSABits    = 2048 // V15; Go itself only refuses < 1024
	maxRSABits    = 8192 // bounds the cost of one verification
	maxJWKEntries = 1000 // entries looked at in one set, usable or not
)

// jwk is a verification key that passed the hygiene checks (V15, V17).
type jwk struct {
	kid    string
	hasKID bool
	kty    string // "RSA" or "EC"
	crv    string // EC only
	alg    string // optional; when set, the token's alg must equal it
	rsa    *rsa.PublicKey
	ec     *ecdsa.PublicKey
}

// droppedKey records why a JWK was not loaded, for logs and tests.
type droppedKey struct {
	Index  int    `json:"index"`
	KID    string `json:"kid,omitempty"`
	Reason string `json:"reason"`
}

// keySet is an immutable, parsed JWK set.
type keySet struct {
	byKID   map[string][]*jwk
	all     []*jwk
	dropped []droppedKey
}

// parseJWKS decodes a JWK set strictly and keeps only usable signature
// keys. A set that is not a JSON object with a "keys" array is an error; bad
// individual keys are dropped with a reason, so one broken key cannot take
// down the issuer.
func parseJWKS(data []byte) (*keySet, error) {
	doc, err := parseJSONObject(data, maxJSONDepth)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJWKS, err)
	}
	rawKeys, ok := doc["keys"].([]any)
	if !ok {
		return nil, fmt.Errorf("%w: no \"keys\" array", ErrJWKS)
	}
	ks := &keySet{byKID: make(map[string][]*jwk)}
	var nRSA, nEC int
	for i, rk := range rawKeys {
		if i >= maxJWKEntries {
			ks.dropped = append(ks.dropped, droppedKey{Index: i, Reason: fmt.Sprintf("set has more than %d entries; the rest are ignored", maxJWKEntries)})
			break
		}
		obj, ok := rk.(map[string]any)
		if !ok {
			ks.dropped = append(ks.dropped, droppedKey{Index: i, Reason: "entry is not a JSON object"})
			continue
		}
		k, err := parseJWK(obj)
		if err != nil {
			kid, _ := obj["kid"].(string)
			ks.dropped = append(ks.dropped, droppedKey{Index: i, KID: truncate(kid, 64), Reason: err.Error()})
			continue
		}
		switch k.kty {
		case "RSA":
			if nRSA >= maxRSAKeys {
				ks.dropped = append(ks.dropped, droppedKey{Index: i, KID: truncate(k.kid, 64), Reason: fmt.Sprintf("more than %d RSA keys; ignored as AWS does", maxRSAKeys)})
				continue
			}
			nRSA++
		case "EC":
			if nEC >= maxECKeys {
				ks.dropped = append(ks.dropped, droppedKey{Index: i, KID: truncate(k.kid, 64), Reason: fmt.Sprintf("more than %d EC keys; ignored as AWS does", maxECKeys)})
				continue
			}
			nEC++
		}
		ks.all = append(ks.all, k)
		ks.byKID[k.kid] = append(ks.byKID[k.kid], k)
	}
	return ks, nil
}

// parseJWK applies the hygiene rules to one JWK (V15, V17).
func parseJWK(m map[string]any) (*jwk, error) {
	k := &jwk{}
	if v, ok := m["kid"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("\"kid\" is not a string")
		}
		k.kid, k.hasKID = s, true
	}
	kty, _ := m["kty"].(string)
	if _, ok := m["d"]; ok {
		// A private key published in a JWKS means the issuer is
		// compromised or misconfigured; refuse to use it at all.
		return nil, fmt.Errorf("contains private key material (\"d\")")
	}
	if v, ok := m["use"]; ok {
		if s, _ := v.(string); s != "sig" {
			return nil, fmt.Errorf("\"use\" is %s, not \"sig\"", describe(v))
		}
	}
	if v, ok := m["key_ops"]; ok {
		ops, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("\"key_ops\" is not an array")
		}
		verify := false
		for _, op := range ops {
			if op == "verify" {
				verify = true
			}
		}
		if !verify {
			return nil, fmt.Errorf("\"key_ops\" does not include \"verify\"")
		}
	}
	if v, ok := m["alg"]; ok {
		s, ok := v.(string)
		if !ok || !isSupportedAlg(s) {
			return nil, fmt.Errorf("\"alg\" %s is not a supported signature algorithm", describe(v))
		}
		k.alg = s
	}
	switch kty {
	case "RSA":
		if err := k.parseRSA(m); err != nil {
			return nil, err
		}
	case "EC":
		if err := k.parseEC(m); err != nil {
			return nil, err
		}
	case "oct":
		return nil, fmt.Errorf("symmetric (\"oct\") keys are never used for verification")
	default:
		return nil, fmt.Errorf("\"kty\" %s is not supported", describe(m["kty"]))
	}
	k.kty = kty
	if k.alg != "" && !k.fits(k.alg) {
		return nil, fmt.Errorf("\"alg\" %q does not fit a %s key", k.alg, k.describeType())
	}
	return k, nil
}

func (k *jwk) parseRSA(m map[string]any) error {
	nb, err := jwkBytes(m, "n")
	if err != nil {
		return err
	}
	eb, err := jwkBytes(m, "e")
	if err != nil {
		return err
	}
	n := new(big.Int).SetBytes(nb)
	bits := n.BitLen()
	if bits < minRSABits {
		return fmt.Errorf("RSA modulus is %d bits; at least %d are required", bits, minRSABits)
	}
	if bits > maxRSABits {
		return fmt.Errorf("RSA modulus is %d bits; at most %d are accepted", bits, maxRSABits)
	}
	if n.Bit(0) == 0 {
		return fmt.Errorf("RSA modulus is even")
	}
	eb = trimLeadingZeros(eb)
	if len(eb) == 0 || len(eb) > 4 {
		return fmt.Errorf("RSA exponent has %d significant bytes", len(eb))
	}
	var e int64
	for _, b := range eb {
		e = e<<8 | int64(b)
	}
	// e=1 makes the "signature" equal to the padded message; even or huge
	// exponents are not RSA. Go's crypto/rsa also refuses some of these, but
	// the key must be dropped at load time, not fail at each verification.
	if e < 3 || e%2 == 0 || e > 1<<31-1 {
		return fmt.Errorf("RSA exponent %d is not an odd value in [3, 2^31-1]", e)
	}
	k.rsa = &rsa.PublicKey{N: n, E: int(e)}
	return nil
}

func (k *jwk) parseEC(m map[string]any) error {
	crv, _ := m["crv"].(string)
	curve, size := curveFor(crv)
	if curve == nil {
		return fmt.Errorf("EC curve %s is not P-256, P-384 or P-521", describe(m["crv"]))
	}
	x, err := jwkBytes(m, "x")
	if err != nil {
		return err
	}
	y, err := jwkBytes(m, "y")
	if err != nil {
		return err
	}
	// RFC 7518 §6.2.1.2: coordinates are the full size of the field.
	if len(x) != size || len(y) != size {
		return fmt.Errorf("EC coordinates are %d and %d bytes; %s needs %d", len(x), len(y), crv, size)
	}
	point := make([]byte, 0, 1+2*size)
	point = append(point, 4)
	point = append(point, x...)
	point = append(point, y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		// Includes points that are not on the curve (invalid-curve
		// attacks, go-jose CVE-2016-9121).
		return fmt.Errorf("EC point rejected: %w", err)
	}
	k.ec, k.crv = pub, crv
	return nil
}

func curveFor(crv string) (elliptic.Curve, int) {
	switch crv {
	case "P-256":
		return elliptic.P256(), 32
	case "P-384":
		return elliptic.P384(), 48
	case "P-521":
		return elliptic.P521(), 66
	}
	return nil, 0
}

// fits reports whether the key can verify alg (V02): RSA for RS*, and for
// ES* the curve the algorithm is defined on.
func (k *jwk) fits(alg string) bool {
	switch alg {
	case RS256, RS384, RS512:
		return k.rsa != nil
	case ES256:
		return k.ec != nil && k.crv == "P-256"
	case ES384:
		return k.ec != nil && k.crv == "P-384"
	case ES512:
		return k.ec != nil && k.crv == "P-521"
	}
	return false
}

func (k *jwk) describeType() string {
	if k.rsa != nil {
		return fmt.Sprintf("RSA-%d", k.rsa.N.BitLen())
	}
	if k.ec != nil {
		return "EC " + k.crv
	}
	return "unknown"
}

// jwkBytes decodes a base64url member. Padding is tolerated (some issuers
// pad), but the alphabet and trailing bits are checked.
func jwkBytes(m map[string]any, name string) ([]byte, error) {
	s, ok := m[name].(string)
	if !ok || s == "" {
		return nil, fmt.Errorf("%q is missing or not a string", name)
	}
	b, err := decodeSegment(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%q: %w", name, err)
	}
	return b, nil
}

func trimLeadingZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// describe renders an attacker-supplied JSON value briefly for a reason.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "absent"
	case string:
		return fmt.Sprintf("%q", truncate(v, 32))
	case json.Number:
		return truncate(string(v), 32)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
