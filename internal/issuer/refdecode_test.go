package issuer

// The first, token-walking implementation of DecodeMintRequest, kept as a
// reference for differential fuzzing of the faster scanner-based one.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"

	"github.com/keylessci/keyless/internal/awsquery"
)

func refDecodeMintRequest(body []byte) (MintRequest, error) {
	var req MintRequest
	if len(body) > MaxRequestBytes {
		return req, tooLarge("The request body is larger than %d bytes.", MaxRequestBytes)
	}
	if !utf8.Valid(body) {
		return req, malformed("The request body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := refExpectDelim(dec, '{'); err != nil {
		return req, malformed("The request body must be a JSON object.")
	}
	seen := map[string]bool{}
	for dec.More() {
		key, err := refNextKey(dec)
		if err != nil {
			return req, malformed("The request body is not valid JSON.")
		}
		if seen[key] {
			return req, malformed("Member %q appears twice.", truncate(key, 64))
		}
		seen[key] = true
		switch key {
		case "audience":
			err = refDecodeString(dec, &req.Audience)
		case "subject":
			err = refDecodeString(dec, &req.Subject)
		case "profile":
			err = refDecodeString(dec, &req.Profile)
		case "lifetime_seconds":
			var raw json.RawMessage
			if err = dec.Decode(&raw); err == nil {
				var secs int64
				if raw[0] == '"' {
					err = fmt.Errorf("must be a number")
				} else if secs, err = refParseSeconds(json.Number(raw)); err == nil {
					req.Lifetime = time.Duration(secs) * time.Second
				}
			}
		case "claims":
			req.Claims, err = refDecodeClaims(dec)
		default:
			return req, malformed("Unknown member %q; the members are audience, subject, profile, claims and lifetime_seconds.", truncate(key, 64))
		}
		if err != nil {
			if _, ok := errors.AsType[*awsquery.Error](err); ok {
				return req, err
			}
			if _, ok := errors.AsType[*json.SyntaxError](err); ok || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return req, malformed("The request body is not valid JSON.")
			}
			return req, malformed("Member %s: %v", key, err)
		}
	}
	if err := refExpectDelim(dec, '}'); err != nil {
		return req, malformed("The request body is not valid JSON.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, malformed("The request body has data after the JSON object.")
	}
	return req, nil
}

func refParseSeconds(n json.Number) (int64, error) {
	secs, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("must be a whole number of seconds")
	}
	if secs < 0 || secs > math.MaxInt64/int64(time.Second) {
		return 0, fmt.Errorf("%d is out of range", secs)
	}
	return secs, nil
}

func refExpectDelim(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q", want)
	}
	return nil
}

func refNextKey(dec *json.Decoder) (string, error) {
	t, err := dec.Token()
	if err != nil {
		return "", err
	}
	k, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("want a member name")
	}
	return k, nil
}

func refDecodeString(dec *json.Decoder, dst *string) error {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("must be a string")
	}
	return json.Unmarshal(raw, dst)
}

// refDecodeClaims reads the claims object member by member so duplicate names
// are refused rather than silently resolved.
func refDecodeClaims(dec *json.Decoder) (map[string]any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, nil
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("must be an object")
	}
	claims := map[string]any{}
	for dec.More() {
		name, err := refNextKey(dec)
		if err != nil {
			return nil, err
		}
		if _, dup := claims[name]; dup {
			return nil, malformed("Claim %q appears twice.", truncate(name, 64))
		}
		if len(claims) == maxClaims {
			return nil, tooLarge("A request may carry at most %d claims.", maxClaims)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		claims[name] = v
	}
	if err := refExpectDelim(dec, '}'); err != nil {
		return nil, err
	}
	return claims, nil
}
