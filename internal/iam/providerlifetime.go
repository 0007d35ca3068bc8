package iam

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/store"
)

// TagMaxTokenLifetime is the OIDC provider tag that sets, for the
// provider's issuer only, the longest ID token lifetime (exp − iat) the
// STS accepts, in place of the server's sts.max_token_lifetime (default
// 24 h): lower for issuers whose tokens are short-lived (GitHub: 5 minutes),
// higher for one that mints day-long tokens. Provider tag keys are
// case-sensitive; the key must be written exactly so.
const TagMaxTokenLifetime = "keyless:max-token-lifetime"

// The range of TagMaxTokenLifetime's value.
const (
	MinProviderTokenLifetime = time.Minute
	MaxProviderTokenLifetime = 7 * 24 * time.Hour
)

// ErrTokenLifetimeValue is wrapped by ParseMaxTokenLifetime's errors.
var ErrTokenLifetimeValue = errors.New("invalid " + TagMaxTokenLifetime + " value")

// ParseMaxTokenLifetime reads a TagMaxTokenLifetime value: a Go duration
// ("15m", "1h30m", "48h") or a number of seconds ("3600"), a whole number
// of seconds (token times are), from 1 minute to 7 days (168h). Nothing
// else is accepted: no spaces, no sign, no "d" unit.
func ParseMaxTokenLifetime(v string) (time.Duration, error) {
	var d time.Duration
	switch {
	case v == "":
		return 0, fmt.Errorf("%w: empty", ErrTokenLifetimeValue)
	case isASCIIDigits(v):
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(MaxProviderTokenLifetime/time.Second) {
			return 0, fmt.Errorf("%w: %s seconds is more than %s", ErrTokenLifetimeValue, truncateDoc(v), MaxProviderTokenLifetime)
		}
		d = time.Duration(n) * time.Second
	default:
		if strings.ContainsAny(v, "+-") {
			return 0, fmt.Errorf("%w: a sign is not allowed", ErrTokenLifetimeValue)
		}
		var err error
		d, err = time.ParseDuration(v)
		if err != nil {
			if strings.HasSuffix(v, "d") {
				return 0, fmt.Errorf("%w: days are not a unit; write hours (7 days is 168h)", ErrTokenLifetimeValue)
			}
			return 0, fmt.Errorf("%w: not a duration", ErrTokenLifetimeValue)
		}
	}
	switch {
	case d%time.Second != 0:
		return 0, fmt.Errorf("%w: %s is not a whole number of seconds", ErrTokenLifetimeValue, d)
	case d < MinProviderTokenLifetime || d > MaxProviderTokenLifetime:
		return 0, fmt.Errorf("%w: %s is outside 1m to 168h (7 days)", ErrTokenLifetimeValue, d)
	}
	return d, nil
}

func isASCIIDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ProviderMaxTokenLifetime returns the provider's TagMaxTokenLifetime
// value as written and parsed. ok is false when the provider has no such
// tag; err is set when the stored value does not parse (a tag written
// before keyless checked it), and the caller then uses its default.
func ProviderMaxTokenLifetime(p *store.Provider) (d time.Duration, value string, ok bool, err error) {
	for _, t := range p.Tags {
		if t.Key == TagMaxTokenLifetime {
			d, err = ParseMaxTokenLifetime(t.Value)
			return d, t.Value, true, err
		}
	}
	return 0, "", false, nil
}

// checkProviderTags refuses, when they are written
// (CreateOpenIDConnectProvider, TagOpenIDConnectProvider), a
// TagMaxTokenLifetime value the STS could not use, and a key that differs
// from it only in case (provider tag keys are case-sensitive: it would be
// kept and silently do nothing).
func checkProviderTags(tags []store.Tag) error {
	for _, t := range tags {
		switch {
		case t.Key == TagMaxTokenLifetime:
			if _, err := ParseMaxTokenLifetime(t.Value); err != nil {
				return invalid("%s", "The value of tag "+TagMaxTokenLifetime+" must be the longest ID token lifetime (exp - iat) to accept from this provider: "+
					"a duration such as 15m, 1h or 48h, or a number of seconds such as 3600, from 1m to 168h (7 days), in whole seconds; "+
					quoteTagValue(t.Value)+" is not ("+strings.TrimPrefix(err.Error(), ErrTokenLifetimeValue.Error()+": ")+").")
			}
		case strings.EqualFold(t.Key, TagMaxTokenLifetime):
			return invalid("%s", "Tag key "+quoteTagValue(t.Key)+" differs from keyless's "+TagMaxTokenLifetime+" only in case; OpenID Connect provider tag keys are case-sensitive, so it would have no effect. Write the key as "+TagMaxTokenLifetime+".")
		}
	}
	return nil
}
