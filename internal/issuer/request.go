package issuer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Request limits.
const (
	// MaxRequestBytes bounds a token request body.
	MaxRequestBytes = 64 << 10
	// MaxTokenChars is AWS's limit on the WebIdentityToken parameter; a
	// longer token could never be exchanged.
	MaxTokenChars = 20000
	maxClaims     = 100
	maxClaimName  = 256
	maxDepth      = 8
)

// MintRequest asks for one token.
type MintRequest struct {
	// Profile, when set, must be the issuer's own claim profile (a request
	// cannot switch it); "" means the issuer's.
	Profile string
	// Audience is the aud claim; "" means the profile's default (circleci:
	// the org id; github: https://github.com/OWNER), an error otherwise.
	Audience string
	// Subject is the sub claim; "" means derive it from Claims (github,
	// gitlab), an error otherwise.
	Subject string
	// Claims are further claims. Values are JSON values (string, bool,
	// json.Number or numbers, []any, []string, map[string]any). Claims the
	// profile types also accept the string forms the command line sends.
	Claims map[string]any
	// Lifetime is the token lifetime; 0 means the issuer's default. Whole
	// seconds; at least MinTokenLifetime, at most the issuer's maximum.
	Lifetime time.Duration
}

// wireRequest is the JSON body of POST /keyless/v1/issuers/<id>/token.
//
//	{"audience": "sts.amazonaws.com", "subject": "...", "profile": "github",
//	 "claims": {"repository": "acme/app", "ref": "refs/heads/main"},
//	 "lifetime_seconds": 900}
type wireRequest struct {
	Audience        string         `json:"audience,omitempty"`
	Subject         string         `json:"subject,omitempty"`
	Profile         string         `json:"profile,omitempty"`
	Claims          map[string]any `json:"claims,omitempty"`
	LifetimeSeconds int64          `json:"lifetime_seconds,omitempty"`
}

// DecodeMintRequest parses a token request body strictly: one JSON object,
// exact-case member names, no unknown or duplicate members (in claims
// too), no trailing data, members of the right JSON type (null is not a
// string). Errors are *awsquery.Error (ValidationError, or
// RequestEntityTooLarge).
func DecodeMintRequest(body []byte) (MintRequest, error) {
	var req MintRequest
	if len(body) > MaxRequestBytes {
		return req, tooLarge("The request body is larger than %d bytes.", MaxRequestBytes)
	}
	if !utf8.Valid(body) {
		return req, malformed("The request body is not valid UTF-8.")
	}
	// json.Valid first, so that the scanner below only walks valid JSON.
	if !json.Valid(body) {
		return req, malformed("The request body is not valid JSON (one object, nothing after it).")
	}
	sc := jsonScanner{b: body}
	sc.ws()
	if sc.b[sc.i] != '{' {
		return req, malformed("The request body must be a JSON object.")
	}
	var seen [len(wireMembers)]bool
	var raw [len(wireMembers)][]byte
	err := sc.members(func(name string, v []byte) error {
		i := slices.Index(wireMembers[:], name)
		if i < 0 {
			return malformed("Unknown member %q; the members are audience, subject, profile, claims and lifetime_seconds.", truncate(name, 64))
		}
		if seen[i] {
			return malformed("Member %q appears twice.", name)
		}
		seen[i], raw[i] = true, v
		return nil
	})
	if err != nil {
		return req, err
	}
	for i, dst := range [...]*string{&req.Audience, &req.Subject, &req.Profile} {
		if !seen[i] {
			continue
		}
		v, err := jsonValue(raw[i])
		s, ok := v.(string)
		if err != nil || !ok {
			return req, malformed("Member %s must be a string.", wireMembers[i])
		}
		*dst = s
	}
	if seen[3] {
		if req.Claims, err = decodeClaims(raw[3]); err != nil {
			return req, err
		}
	}
	if seen[4] {
		secs, err := parseSeconds(raw[4])
		if err != nil {
			return req, malformed("Member lifetime_seconds %v.", err)
		}
		req.Lifetime = time.Duration(secs) * time.Second
	}
	return req, nil
}

// wireMembers are the members of a token request, in this order.
var wireMembers = [...]string{"audience", "subject", "profile", "claims", "lifetime_seconds"}

// parseSeconds reads a JSON number that must be a non-negative integer.
func parseSeconds(raw []byte) (int64, error) {
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, fmt.Errorf("must be a number of seconds")
	}
	secs, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("is out of range")
		}
		return 0, fmt.Errorf("must be a whole number of seconds")
	}
	if secs < 0 || secs > math.MaxInt64/int64(time.Second) {
		return 0, fmt.Errorf("%d is out of range", secs)
	}
	return secs, nil
}

// decodeClaims decodes the claims member (valid JSON), refusing duplicate
// names rather than silently keeping the last.
func decodeClaims(raw []byte) (map[string]any, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, malformed("Member claims must be an object.")
	}
	claims := map[string]any{}
	sc := jsonScanner{b: raw}
	err := sc.members(func(name string, v []byte) error {
		if _, dup := claims[name]; dup {
			return malformed("Claim %q appears twice.", truncate(name, 64))
		}
		if len(claims) == maxClaims {
			return tooLarge("A request may carry at most %d claims.", maxClaims)
		}
		val, err := jsonValue(v)
		if err != nil {
			return malformed("Claim %q is not valid JSON.", truncate(name, 64))
		}
		claims[name] = val
		return nil
	})
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// jsonValue decodes one valid JSON value, numbers as json.Number. Strings
// without escapes (the common case) are taken as they are.
func jsonValue(raw []byte) (any, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// jsonScanner walks JSON already known to be valid, to see object member
// names exactly and the raw bytes of their values (encoding/json matches
// names case-insensitively and silently keeps the last duplicate).
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// str skips the string at s.i and returns it with its quotes.
func (s *jsonScanner) str() []byte {
	start := s.i
	for s.i++; s.b[s.i] != '"'; s.i++ {
		if s.b[s.i] == '\\' {
			s.i++
		}
	}
	s.i++
	return s.b[start:s.i]
}

// value skips the value at s.i.
func (s *jsonScanner) value() {
	switch s.b[s.i] {
	case '"':
		s.str()
	case '{':
		_ = s.members(func(string, []byte) error { return nil })
	case '[':
		s.i++
		s.ws()
		for s.b[s.i] != ']' {
			s.value()
			s.ws()
			if s.b[s.i] == ',' {
				s.i++
				s.ws()
			}
		}
		s.i++
	default: // number, true, false, null
		for s.i < len(s.b) && !strings.ContainsRune(" \t\n\r,]}", rune(s.b[s.i])) {
			s.i++
		}
	}
}

// members walks the object at s.i, calling fn with each member's name
// (unescaped) and raw value; it stops at fn's first error.
func (s *jsonScanner) members(fn func(name string, raw []byte) error) error {
	s.i++ // '{'
	s.ws()
	for s.b[s.i] != '}' {
		key := s.str()
		name := string(key[1 : len(key)-1])
		if bytes.IndexByte(key, '\\') >= 0 {
			_ = json.Unmarshal(key, &name) // a valid JSON string: cannot fail
		}
		s.ws()
		s.i++ // ':'
		s.ws()
		start := s.i
		s.value()
		if err := fn(name, s.b[start:s.i]); err != nil {
			return err
		}
		s.ws()
		if s.b[s.i] == ',' {
			s.i++
			s.ws()
		}
	}
	s.i++
	return nil
}

// EncodeMintRequest is the JSON body for req (the client side of
// DecodeMintRequest).
func EncodeMintRequest(req MintRequest) ([]byte, error) {
	w := wireRequest{
		Audience:        req.Audience,
		Subject:         req.Subject,
		Profile:         req.Profile,
		Claims:          req.Claims,
		LifetimeSeconds: int64(req.Lifetime / time.Second),
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("issuer: encode request: %w", err)
	}
	return b, nil
}

// ParseClaimFlag parses one --claim argument:
//
//	KEY=VALUE   VALUE verbatim as a JSON string (the server converts it for
//	            claims the profile types: true/false for booleans; a JSON
//	            array or one bare value for string arrays; digits for integers)
//	KEY:=JSON   VALUE as raw JSON (any type), e.g. 'groups:=["a","b"]'
//
// The first '=' separates the key, so keys cannot contain '='; a key may
// contain ':' (https://aws.amazon.com/tags:={...}) but cannot end with one
// in the string form.
func ParseClaimFlag(arg string) (string, any, error) {
	key, value, ok := strings.Cut(arg, "=")
	if !ok {
		return "", nil, fmt.Errorf("%w: --claim %q: want KEY=VALUE or KEY:=JSON", ErrClaimValue, truncate(arg, 64))
	}
	raw := strings.HasSuffix(key, ":")
	if raw {
		key = key[:len(key)-1]
	}
	if key == "" {
		return "", nil, fmt.Errorf("%w: --claim %q: empty claim name", ErrClaimValue, truncate(arg, 64))
	}
	if !raw {
		return key, value, nil
	}
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", nil, fmt.Errorf("%w: --claim %s:=…: value is not JSON: %w", ErrClaimValue, truncate(key, 64), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", nil, fmt.Errorf("%w: --claim %s:=…: data after the JSON value", ErrClaimValue, truncate(key, 64))
	}
	if v == nil {
		return "", nil, fmt.Errorf("%w: --claim %s:=null: omit the claim instead", ErrClaimValue, truncate(key, 64))
	}
	return key, v, nil
}

// checkValue validates a free claim value's types and depth.
func checkValue(v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case string, bool, json.Number, int, int64:
		return nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("not a finite number")
		}
		return nil
	case []string:
		return nil
	case []any:
		for _, e := range x {
			if err := checkValue(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		for _, e := range x {
			if err := checkValue(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case nil:
		return fmt.Errorf("null (omit the claim instead)")
	}
	return fmt.Errorf("unsupported type %T", v)
}
