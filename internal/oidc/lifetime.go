package oidc

import (
	"fmt"
	"time"
)

// DefaultMaxTokenLifetime is the default of Options.MaxTokenLifetime: the
// longest exp − iat accepted. CI tokens live 5 minutes (GitHub) to a few
// hours (a job's timeout); AWS refuses tokens older than about a day
// anyway, so a token meant to live longer is a credential nobody needs.
const DefaultMaxTokenLifetime = 24 * time.Hour

// checkLifetime applies the lifetime guard (V11): exp − iat at most the
// provider's maximum, or the validator's when the provider sets none. The
// comparison is exact, without leeway: both times come from the issuer's
// clock, so skew does not enter. exp > iat holds (checked before).
func (v *Validator) checkLifetime(p *Provider, iat, exp int64) *Error {
	limit, from := v.opts.MaxTokenLifetime, "for all issuers"
	if p.MaxTokenLifetime > 0 {
		limit, from = p.MaxTokenLifetime, "set for this issuer"
	}
	if limit <= 0 {
		return nil
	}
	maxS := int64(limit / time.Second)
	life := exp - iat
	if life <= maxS {
		return nil
	}
	reason := fmt.Sprintf("token lifetime exp − iat is %s (%d s), longer than the maximum of %s (%d s) %s",
		time.Duration(life)*time.Second, life, time.Duration(maxS)*time.Second, maxS, from)
	if p.MaxTokenLifetimeNote != nil {
		if note := p.MaxTokenLifetimeNote(); note != "" {
			reason += "; " + note
		}
	}
	return invalidf("V11", ErrLifetime, "%s", reason)
}
