package sts

import (
	"context"
	"fmt"

	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/store"
)

// oidcProvider is the validator's view of a registered provider: its URL,
// client IDs and thumbprints, and the token lifetime guard's maximum from
// the provider's keyless:max-token-lifetime tag, with the note the
// refusal's explanation carries (where the maximum comes from, how to
// change it). A stored tag value that does not parse (written before
// keyless checked it) is ignored, and logged: the server's maximum
// applies.
func (s *Service) oidcProvider(ctx context.Context, pr *store.Provider) *oidc.Provider {
	p := &oidc.Provider{URL: pr.URL, ClientIDs: pr.ClientIDs, Thumbprints: pr.Thumbprints}
	setTag := func() string {
		return fmt.Sprintf("aws iam tag-open-id-connect-provider --open-id-connect-provider-arn %s --tags Key=%s,Value=DURATION (a duration from 1m to 168h, e.g. 48h)", pr.ARN, iam.TagMaxTokenLifetime)
	}
	serverNote := func() string {
		return "the maximum is the server's sts.max_token_lifetime (default 24h); to accept longer-lived tokens from this issuer only, tag its provider: " +
			setTag() + "; or have the issuer mint shorter-lived tokens"
	}
	d, value, ok, err := iam.ProviderMaxTokenLifetime(pr)
	switch {
	case !ok:
		p.MaxTokenLifetimeNote = serverNote
	case err != nil:
		s.log.WarnContext(ctx, "ignoring the provider's invalid token lifetime tag; the server's maximum applies",
			"provider", pr.ARN, "tag", iam.TagMaxTokenLifetime, "value", value, "err", err)
		p.MaxTokenLifetimeNote = func() string {
			return fmt.Sprintf("the provider's tag %s=%q is invalid (%v) and was ignored; ", iam.TagMaxTokenLifetime, value, err) + serverNote()
		}
	default:
		p.MaxTokenLifetime = d
		p.MaxTokenLifetimeNote = func() string {
			return fmt.Sprintf("the maximum is the tag %s=%q of %s; change it with %s, or remove it "+
				"(aws iam untag-open-id-connect-provider --open-id-connect-provider-arn %s --tag-keys %s) for the server's sts.max_token_lifetime",
				iam.TagMaxTokenLifetime, value, pr.ARN, setTag(), pr.ARN, iam.TagMaxTokenLifetime)
		}
	}
	return p
}
