package iam

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/store"
)

// ProviderARN is the ARN IAM gives the provider registered for issuerURL:
// the URL without its scheme (host[:port]/path), as AWS does.
func ProviderARN(account, issuerURL string) string {
	return "arn:aws:iam::" + account + ":oidc-provider/" + stripScheme(issuerURL)
}

// ConditionKeyPrefix is the prefix of the provider's condition keys in
// trust policies (e.g. "token.actions.githubusercontent.com" for
// "token.actions.githubusercontent.com:sub").
func ConditionKeyPrefix(issuerURL string) string { return stripScheme(issuerURL) }

func stripScheme(u string) string {
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return rest
	}
	rest, _ := strings.CutPrefix(u, "http://")
	return rest
}

// IsLoopbackHost reports whether host (without port) is a loopback name or
// address: 127.0.0.0/8, ::1 or localhost.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// validateProviderURL applies IAM's URL rules (https, no query or
// fragment, no port) and keyless's loopback exception (CONTRACT.md §2).
func (s *Service) validateProviderURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return invalid("Invalid Open ID Connect Provider URL: %q is not an absolute URL such as https://token.example.com/path.", truncateDoc(raw))
	}
	loop := IsLoopbackHost(u.Hostname())
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loop && s.loopback:
	case u.Scheme == "http" && loop:
		return invalid("Invalid Open ID Connect Provider URL: it must begin with https://. Plain http:// is accepted only for loopback issuers when the server runs with --allow-loopback-http-issuers.")
	default:
		return invalid("Invalid Open ID Connect Provider URL: it must begin with https://.")
	}
	if !strings.HasPrefix(raw, u.Scheme+"://") {
		return invalid("Invalid Open ID Connect Provider URL: the scheme must be written in lower case.")
	}
	if u.User != nil {
		return invalid("Invalid Open ID Connect Provider URL: user information is not allowed.")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#") {
		return invalid("Invalid Open ID Connect Provider URL: query parameters and fragments are not allowed.")
	}
	if u.Port() != "" && !(loop && s.loopback) {
		return invalid("Invalid Open ID Connect Provider URL: a port number is not allowed.")
	}
	if containsControl(raw) || strings.ContainsAny(raw, " \\") {
		return invalid("Invalid Open ID Connect Provider URL: it contains spaces or control characters.")
	}
	return nil
}

// parseProviderARN checks an OpenIDConnectProviderArn parameter.
func (s *Service) providerARNParam(r *awsquery.Request) (string, error) {
	var v awsquery.Validator
	arn, ok := v.Required(r.Params, "OpenIDConnectProviderArn")
	if ok {
		v.Length("OpenIDConnectProviderArn", arn, 20, 2048)
	}
	if err := v.Err(); err != nil {
		return "", err
	}
	if !strings.HasPrefix(arn, "arn:aws:iam::") || !strings.Contains(arn, ":oidc-provider/") {
		return "", invalid("Invalid ARN %s: an OpenID Connect provider ARN has the form arn:aws:iam::<account>:oidc-provider/<host/path>.", truncateDoc(arn))
	}
	return arn, nil
}

func (s *Service) loadProvider(ctx context.Context, arn string) (*store.Provider, error) {
	p, err := s.st.Providers().Get(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		return nil, noSuch("OpenIDConnect Provider not found for arn %s", arn)
	}
	return p, storeErr(err)
}

func (s *Service) validateClientIDs(v *awsquery.Validator, param string, ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		v.Length(param, id, 1, 255)
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (s *Service) validateThumbprints(tps []string) error {
	var v awsquery.Validator
	for _, tp := range tps {
		v.Length("thumbprintList", tp, 40, 40)
	}
	if err := v.Err(); err != nil {
		return err
	}
	for _, tp := range tps {
		if !reThumbprint.MatchString(tp) {
			return invalid("Thumbprint %s is not 40 hexadecimal characters (the SHA-1 of the top intermediate CA certificate).", tp)
		}
	}
	if len(tps) > s.limits.ThumbprintsPerProvider {
		return invalid("Thumbprint list must contain fewer than %d entries.", s.limits.ThumbprintsPerProvider)
	}
	return nil
}

type providerARNResult struct {
	OpenIDConnectProviderArn string      `xml:"OpenIDConnectProviderArn"`
	Tags                     *xmlTagList `xml:"Tags,omitempty"`
}

func (s *Service) createProvider(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	u, ok := v.Required(r.Params, "Url")
	if ok {
		v.Length("Url", u, 1, 255)
	}
	ids, _, err := r.Params.List("ClientIDList")
	if err != nil {
		return nil, err
	}
	ids = s.validateClientIDs(&v, "clientIDList", ids)
	tps, _, err := r.Params.List("ThumbprintList")
	if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.validateProviderURL(u); err != nil {
		return nil, err
	}
	if err := s.validateThumbprints(tps); err != nil {
		return nil, err
	}
	if len(ids) > s.limits.ClientIDsPerProvider {
		return nil, limit("Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: %d", s.limits.ClientIDsPerProvider)
	}
	tags, err := parseTags(r.Params, "Tags", false, s.limits.TagsPerResource, "TagsPerOpenIdConnectProvider")
	if err != nil {
		return nil, err
	}
	if err := checkProviderTags(tags); err != nil {
		return nil, err
	}
	p := &store.Provider{
		ARN: ProviderARN(s.account, u), URL: u, ClientIDs: ids, Thumbprints: tps, Tags: tags,
		CreateDate: s.now().UTC().Truncate(1e9),
	}
	switch err := s.st.Providers().Create(ctx, p, s.limits.Providers); {
	case errors.Is(err, store.ErrAlreadyExists):
		return nil, awsquery.Errorf(awsquery.CodeEntityAlreadyExists, "Provider with url %s already exists.", u)
	case errors.Is(err, store.ErrLimitExceeded):
		return nil, limit("Cannot exceed quota for OpenIdConnectProvidersPerAccount: %d", s.limits.Providers)
	case err != nil:
		return nil, storeErr(err)
	}
	r.Note.Resources = []awsquery.Resource{{ARN: p.ARN, AccountID: s.account, Type: "AWS::IAM::OIDCProvider"}}
	return providerARNResult{OpenIDConnectProviderArn: p.ARN, Tags: xmlTags(tags)}, nil
}

type getProviderResult struct {
	URL            string      `xml:"Url"`
	ClientIDList   []string    `xml:"ClientIDList>member"`
	ThumbprintList []string    `xml:"ThumbprintList>member"`
	CreateDate     string      `xml:"CreateDate"`
	Tags           *xmlTagList `xml:"Tags,omitempty"`
}

func (s *Service) getProvider(ctx context.Context, r *awsquery.Request) (any, error) {
	arn, err := s.providerARNParam(r)
	if err != nil {
		return nil, err
	}
	p, err := s.loadProvider(ctx, arn)
	if err != nil {
		return nil, err
	}
	return getProviderResult{
		URL: stripScheme(p.URL), ClientIDList: nonNil(p.ClientIDs), ThumbprintList: nonNil(p.Thumbprints),
		CreateDate: awsTime(p.CreateDate), Tags: xmlTags(p.Tags),
	}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type listProvidersResult struct {
	List []providerEntry `xml:"OpenIDConnectProviderList>member"`
}

type providerEntry struct {
	Arn string `xml:"Arn"`
}

func (s *Service) listProviders(ctx context.Context, r *awsquery.Request) (any, error) {
	ps, err := s.st.Providers().List(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	out := listProvidersResult{List: []providerEntry{}}
	for _, p := range ps {
		out.List = append(out.List, providerEntry{p.ARN})
	}
	return out, nil
}

// deleteProvider is idempotent, as IAM documents: deleting a provider that
// does not exist succeeds.
func (s *Service) deleteProvider(ctx context.Context, r *awsquery.Request) (any, error) {
	arn, err := s.providerARNParam(r)
	if err != nil {
		return nil, err
	}
	if err := s.st.Providers().Delete(ctx, arn); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, storeErr(err)
	}
	return nil, nil
}

func (s *Service) updateProvider(ctx context.Context, arn string, fn func(*store.Provider) error) error {
	err := s.st.Providers().Update(ctx, arn, fn)
	if errors.Is(err, store.ErrNotFound) {
		return noSuch("OpenIDConnect Provider not found for arn %s", arn)
	}
	return storeErr(err)
}

func (s *Service) clientIDParam(r *awsquery.Request) (string, error) {
	var v awsquery.Validator
	id, ok := v.Required(r.Params, "ClientID")
	if ok {
		v.Length("ClientID", id, 1, 255)
	}
	return id, v.Err()
}

// addClientID is idempotent for an id already present.
func (s *Service) addClientID(ctx context.Context, r *awsquery.Request) (any, error) {
	arn, err := s.providerARNParam(r)
	if err != nil {
		return nil, err
	}
	id, err := s.clientIDParam(r)
	if err != nil {
		return nil, err
	}
	return nil, s.updateProvider(ctx, arn, func(p *store.Provider) error {
		for _, c := range p.ClientIDs {
			if c == id {
				return nil
			}
		}
		if len(p.ClientIDs) >= s.limits.ClientIDsPerProvider {
			return limit("Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: %d", s.limits.ClientIDsPerProvider)
		}
		p.ClientIDs = append(p.ClientIDs, id)
		return nil
	})
}

// removeClientID is idempotent for an id not present.
func (s *Service) removeClientID(ctx context.Context, r *awsquery.Request) (any, error) {
	arn, err := s.providerARNParam(r)
	if err != nil {
		return nil, err
	}
	id, err := s.clientIDParam(r)
	if err != nil {
		return nil, err
	}
	return nil, s.updateProvider(ctx, arn, func(p *store.Provider) error {
		out := p.ClientIDs[:0:0]
		for _, c := range p.ClientIDs {
			if c != id {
				out = append(out, c)
			}
		}
		p.ClientIDs = out
		return nil
	})
}

// updateThumbprint replaces the whole list ("The lists are not merged").
func (s *Service) updateThumbprint(ctx context.Context, r *awsquery.Request) (any, error) {
	arn, err := s.providerARNParam(r)
	if err != nil {
		return nil, err
	}
	tps, present, err := r.Params.List("ThumbprintList")
	if err != nil {
		return nil, err
	}
	if !present {
		var v awsquery.Validator
		v.Required(r.Params, "ThumbprintList")
		return nil, v.Err()
	}
	if err := s.validateThumbprints(tps); err != nil {
		return nil, err
	}
	return nil, s.updateProvider(ctx, arn, func(p *store.Provider) error {
		p.Thumbprints = tps
		return nil
	})
}

func (s *Service) tagProvider(ctx context.Context, r *awsquery.Request) (any, error) {
	arn, err := s.providerARNParam(r)
	if err != nil {
		return nil, err
	}
	if !r.Params.Has("Tags") && !hasPrefixParam(r.Params, "Tags.member.") {
		var v awsquery.Validator
		v.Required(r.Params, "Tags")
		return nil, v.Err()
	}
	tags, err := parseTags(r.Params, "Tags", false, s.limits.TagsPerResource, "TagsPerOpenIdConnectProvider")
	if err != nil {
		return nil, err
	}
	if err := checkProviderTags(tags); err != nil {
		return nil, err
	}
	return nil, s.updateProvider(ctx, arn, func(p *store.Provider) error {
		merged, err := mergeTags(p.Tags, tags, false, s.limits.TagsPerResource, "TagsPerOpenIdConnectProvider")
		if err != nil {
			return err
		}
		p.Tags = merged
		return nil
	})
}

func (s *Service) untagProvider(ctx context.Context, r *awsquery.Request) (any, error) {
	arn, err := s.providerARNParam(r)
	if err != nil {
		return nil, err
	}
	keys, err := parseTagKeys(r.Params)
	if err != nil {
		return nil, err
	}
	return nil, s.updateProvider(ctx, arn, func(p *store.Provider) error {
		p.Tags = removeTags(p.Tags, keys, false)
		return nil
	})
}

func (s *Service) listProviderTags(ctx context.Context, r *awsquery.Request) (any, error) {
	arn, err := s.providerARNParam(r)
	if err != nil {
		return nil, err
	}
	p, err := s.loadProvider(ctx, arn)
	if err != nil {
		return nil, err
	}
	return tagPage(p.Tags, r.Params)
}

func hasPrefixParam(p awsquery.Params, prefix string) bool {
	for _, n := range p.Names() {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}
