package ciauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Claims are the few claims of an ID token that help a user understand why
// an exchange failed. They are read WITHOUT verifying the signature: they are
// for messages only, never for a decision. None of them is secret (the
// token as a whole is).
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	Expiry    time.Time
	IssuedAt  time.Time
	NotBefore time.Time
}

// ErrNotJWT: the token is not a three-part JWS compact serialisation with a
// JSON payload.
var ErrNotJWT = errors.New("token is not a JWT")

// ParseClaims decodes a JWT's payload without verifying it.
func ParseClaims(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("%w: %d dot-separated parts, want 3", ErrNotJWT, len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload is not base64url", ErrNotJWT)
	}
	var raw struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp json.Number     `json:"exp"`
		Iat json.Number     `json:"iat"`
		Nbf json.Number     `json:"nbf"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return Claims{}, fmt.Errorf("%w: payload is not a JSON object of claims", ErrNotJWT)
	}
	c := Claims{Issuer: raw.Iss, Subject: raw.Sub}
	if len(raw.Aud) > 0 && string(raw.Aud) != "null" {
		var one string
		if err := json.Unmarshal(raw.Aud, &one); err == nil {
			c.Audience = []string{one}
		} else if err := json.Unmarshal(raw.Aud, &c.Audience); err != nil {
			return Claims{}, fmt.Errorf("%w: aud is neither a string nor an array of strings", ErrNotJWT)
		}
	}
	for _, f := range []struct {
		n   json.Number
		dst *time.Time
	}{{raw.Exp, &c.Expiry}, {raw.Iat, &c.IssuedAt}, {raw.Nbf, &c.NotBefore}} {
		if f.n == "" {
			continue
		}
		t, err := numericDate(f.n)
		if err != nil {
			return Claims{}, err
		}
		*f.dst = t
	}
	return c, nil
}

// numericDate converts a JWT NumericDate (seconds since the epoch, possibly
// fractional) to a time, refusing values no real token carries.
func numericDate(n json.Number) (time.Time, error) {
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("%w: a time claim is not a plausible NumericDate", ErrNotJWT)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// String renders the claims on one line for error messages.
func (c Claims) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "iss=%q sub=%q aud=%q", c.Issuer, c.Subject, strings.Join(c.Audience, ","))
	if !c.Expiry.IsZero() {
		fmt.Fprintf(&b, " exp=%s", c.Expiry.Format(time.RFC3339))
	}
	return b.String()
}
