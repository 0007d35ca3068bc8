package oidc

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Key-set lifetime bounds (V16): the issuer's Cache-Control max-age, clamped.
// The floor keeps a "no-cache" issuer from turning every token into a fetch;
// the ceiling makes keys removed at the issuer age out within a day.
const (
	minKeyTTL     = 5 * time.Minute
	maxKeyTTL     = 24 * time.Hour
	defaultKeyTTL = time.Hour // no usable max-age
)

// keyTTL derives the key-set lifetime from a Cache-Control header value.
// no-store, no-cache and max-age=0 give the floor; a missing or invalid
// max-age gives defaultKeyTTL. When max-age appears more than once the
// smallest wins (RFC 9111 leaves it undefined; the short one is safe).
func keyTTL(cacheControl string) time.Duration {
	maxAge := int64(-1)
	noCache := false
	for directive := range strings.SplitSeq(cacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		switch name {
		case "no-store", "no-cache":
			noCache = true
		case "max-age":
			value = strings.Trim(strings.TrimSpace(value), `"`)
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				// Only digits are valid; a huge value saturates.
				if errors.Is(err, strconv.ErrRange) && isDigits(value) {
					n = maxKeyTTLSeconds()
				} else {
					continue
				}
			}
			if n < 0 {
				continue
			}
			if maxAge < 0 || n < maxAge {
				maxAge = n
			}
		}
	}
	switch {
	case noCache:
		return minKeyTTL
	case maxAge < 0:
		return defaultKeyTTL
	}
	ttl := time.Duration(min(maxAge, maxKeyTTLSeconds())) * time.Second
	return min(max(ttl, minKeyTTL), maxKeyTTL)
}

func maxKeyTTLSeconds() int64 { return int64(maxKeyTTL / time.Second) }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
