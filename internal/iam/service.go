// Package iam owns keyless's IAM: OpenID Connect identity providers, roles
// with their trust and permission policies, and customer-managed policies —
// the domain rules (names, ARNs, ids, quotas, AWS's exact errors) and the
// IAM Query API handlers (Version 2010-05-08) that the unmodified AWS CLI,
// boto3, aws-sdk-go-v2 and Terraform call.
package iam

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/lint"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store"
)

// Limits are the IAM quotas enforced. Zero values mean AWS's defaults.
type Limits struct {
	Providers              int `json:"providers"`                // OpenIdConnectProvidersPerAccount, 100
	ClientIDsPerProvider   int `json:"client_ids_per_provider"`  // 100
	ThumbprintsPerProvider int `json:"thumbprints_per_provider"` // 5
	Roles                  int `json:"roles"`                    // RolesPerAccount, 1000
	TrustPolicySize        int `json:"trust_policy_size"`        // ACLSizePerRole, 2048 (AWS allows raising to 4096/8192)
	InlinePolicyAggregate  int `json:"inline_policy_aggregate"`  // 10240 per role
	ManagedPolicySize      int `json:"managed_policy_size"`      // PolicySize, 6144
	ManagedPolicies        int `json:"managed_policies"`         // PoliciesPerAccount (customer managed), 1500
	PoliciesPerRole        int `json:"policies_per_role"`        // managed policies attached per role, 10
	PolicyVersions         int `json:"policy_versions"`          // 5
	TagsPerResource        int `json:"tags_per_resource"`        // 50
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Providers, 100)
	def(&l.ClientIDsPerProvider, 100)
	def(&l.ThumbprintsPerProvider, 5)
	def(&l.Roles, 1000)
	def(&l.TrustPolicySize, 2048)
	def(&l.InlinePolicyAggregate, 10240)
	def(&l.ManagedPolicySize, 6144)
	def(&l.ManagedPolicies, 1500)
	def(&l.PoliciesPerRole, 10)
	def(&l.PolicyVersions, 5)
	def(&l.TagsPerResource, 50)
	return l
}

// Options configures a Service.
type Options struct {
	Store   store.Store
	Account string
	Limits  Limits
	Now     func() time.Time
	Rand    io.Reader
	// AllowLoopbackHTTP permits http:// provider URLs on loopback hosts,
	// with a port (CONTRACT.md §2), for test issuers.
	AllowLoopbackHTTP bool
	// SkipSharedIssuerControls turns off the identity-provider controls
	// for shared OIDC providers (guardrail.go). AWS does not re-check roles
	// written before it enforced them; this lets such roles be imported.
	// It is the older spelling of Guardrail: GuardrailOff, and wins over
	// Guardrail.
	SkipSharedIssuerControls bool
	// Guardrail is what trust-policy writes do with the linter's findings
	// (guardrail_modes.go; "": GuardrailEnforce).
	Guardrail GuardrailMode
	// TrustObserver, when set, is told every committed change of a role's
	// trust policy with its findings, in every mode.
	TrustObserver TrustObserver
	// Logger receives the guardrail's warnings (nil: discarded).
	Logger *slog.Logger
	// LintRand draws the linter's probe names (nil: crypto/rand): a
	// stream of its own, so that linting does not move Rand's (ids).
	LintRand io.Reader
	// OwnIssuers are keyless's own issuers, which the linter recognises.
	OwnIssuers []lint.OwnIssuer
	// AllowedSTSEndpoints are the STS endpoints, besides AWS's, a role's
	// keyless:upstream-sts-endpoint tag may name (brokertags.go).
	AllowedSTSEndpoints []string
}

// Service implements the IAM API.
type Service struct {
	st       store.Store
	account  string
	limits   Limits
	now      func() time.Time
	rand     io.Reader
	loopback bool
	// guardrail, observer, log: see Options; lintPolicy is
	// lint.LintPolicy (a test's stand-in).
	guardrail  GuardrailMode
	observer   TrustObserver
	log        *slog.Logger
	lintPolicy func(*policy.Policy, lint.Options) []lint.Finding
	lintRand   io.Reader
	ownIssuers []lint.OwnIssuer
	// allowedSTS: see Options.AllowedSTSEndpoints.
	allowedSTS []string
}

// New returns a Service.
func New(o Options) *Service {
	mode := o.Guardrail
	if mode == "" {
		mode = GuardrailEnforce
	}
	if o.SkipSharedIssuerControls {
		mode = GuardrailOff
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	return &Service{
		st: o.Store, account: o.Account, limits: o.Limits.withDefaults(),
		now: o.Now, rand: o.Rand, loopback: o.AllowLoopbackHTTP,
		guardrail: mode, observer: o.TrustObserver, log: o.Logger, lintPolicy: lint.LintPolicy,
		lintRand: o.LintRand, ownIssuers: o.OwnIssuers,
		allowedSTS: o.AllowedSTSEndpoints,
	}
}

// Actions lists the IAM operations this service implements, each with its
// input shape from the AWS model and its row of the authorization table
// (authz.go): the resource type it acts on and its request condition keys,
// as the Service Authorization Reference lists them.
func (s *Service) Actions() []awsquery.Action {
	shapes := inputShapes()
	a := func(name string, ro bool, h func(context.Context, *awsquery.Request) (any, error), res resKind, keys keySet) awsquery.Action {
		spec := authSpec{res: res, keys: keys}
		return awsquery.Action{
			Name: name, Service: "iam", ReadOnly: ro, Handle: h, Input: shapes[name],
			Target: func(ctx context.Context, r *awsquery.Request) (awsquery.Target, error) { return s.target(ctx, r, spec) },
		}
	}
	const (
		tags   = keyRequestTags
		untag  = keyTagKeys
		bnd    = keyBoundaryRole
		bndReq = keyBoundaryRequest
		polARN = keyPolicyARN
		noKeys = keySet(0)
	)
	return []awsquery.Action{
		a("CreateOpenIDConnectProvider", false, s.createProvider, resNewProvider, tags),
		a("GetOpenIDConnectProvider", true, s.getProvider, resProvider, noKeys),
		a("ListOpenIDConnectProviders", true, s.listProviders, resNone, noKeys),
		a("DeleteOpenIDConnectProvider", false, s.deleteProvider, resProvider, noKeys),
		a("AddClientIDToOpenIDConnectProvider", false, s.addClientID, resProvider, noKeys),
		a("RemoveClientIDFromOpenIDConnectProvider", false, s.removeClientID, resProvider, noKeys),
		a("UpdateOpenIDConnectProviderThumbprint", false, s.updateThumbprint, resProvider, noKeys),
		a("TagOpenIDConnectProvider", false, s.tagProvider, resProvider, tags),
		a("UntagOpenIDConnectProvider", false, s.untagProvider, resProvider, untag),
		a("ListOpenIDConnectProviderTags", true, s.listProviderTags, resProvider, noKeys),

		a("CreateRole", false, s.createRole, resNewRole, tags|bndReq),
		a("GetRole", true, s.getRole, resRole, noKeys),
		a("ListRoles", true, s.listRoles, resNone, noKeys),
		a("UpdateRole", false, s.updateRole, resRole, noKeys),
		a("UpdateRoleDescription", false, s.updateRoleDescription, resRole, noKeys),
		a("UpdateAssumeRolePolicy", false, s.updateAssumeRolePolicy, resRole, noKeys),
		a("DeleteRole", false, s.deleteRole, resRole, noKeys),
		a("TagRole", false, s.tagRole, resRole, tags),
		a("UntagRole", false, s.untagRole, resRole, untag),
		a("ListRoleTags", true, s.listRoleTags, resRole, noKeys),
		a("PutRolePermissionsBoundary", false, s.putRoleBoundary, resRole, bndReq),
		a("DeleteRolePermissionsBoundary", false, s.deleteRoleBoundary, resRole, bnd),
		a("ListInstanceProfilesForRole", true, s.listInstanceProfilesForRole, resRole, noKeys),

		a("PutRolePolicy", false, s.putRolePolicy, resRole, bnd),
		a("GetRolePolicy", true, s.getRolePolicy, resRole, noKeys),
		a("ListRolePolicies", true, s.listRolePolicies, resRole, noKeys),
		a("DeleteRolePolicy", false, s.deleteRolePolicy, resRole, bnd),

		a("CreatePolicy", false, s.createPolicy, resNewPolicy, tags),
		a("GetPolicy", true, s.getPolicy, resPolicy, noKeys),
		a("ListPolicies", true, s.listPolicies, resNone, noKeys),
		a("DeletePolicy", false, s.deletePolicy, resPolicy, noKeys),
		a("GetPolicyVersion", true, s.getPolicyVersion, resPolicy, noKeys),
		a("CreatePolicyVersion", false, s.createPolicyVersion, resPolicy, noKeys),
		a("ListPolicyVersions", true, s.listPolicyVersions, resPolicy, noKeys),
		a("DeletePolicyVersion", false, s.deletePolicyVersion, resPolicy, noKeys),
		a("SetDefaultPolicyVersion", false, s.setDefaultPolicyVersion, resPolicy, noKeys),
		a("AttachRolePolicy", false, s.attachRolePolicy, resRole, bnd|polARN),
		a("DetachRolePolicy", false, s.detachRolePolicy, resRole, bnd|polARN),
		a("ListAttachedRolePolicies", true, s.listAttachedRolePolicies, resRole, noKeys),

		a("SimulateCustomPolicy", true, s.simulateCustomPolicy, resNone, noKeys),
		a("SimulatePrincipalPolicy", true, s.simulatePrincipalPolicy, resSimSource, noKeys),
	}
}

// --- shared validation and encoding ---

// Patterns from the IAM service model.
var (
	reName        = regexp.MustCompile(`^[\w+=,.@-]+$`)
	rePath        = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)
	rePathPrefix  = regexp.MustCompile(`^/[\x21-\x7F]*$`)
	reDescription = regexp.MustCompile(`^[\x{0009}\x{000A}\x{000D}\x{0020}-\x{007E}\x{00A1}-\x{00FF}]*$`)
	reTagKey      = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	reTagValue    = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	reThumbprint  = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)
)

const (
	shownName       = `[\w+=,.@-]+`
	shownPath       = `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`
	shownPathPrefix = `\u002F[\u0021-\u007F]*`
	shownDesc       = `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`
	shownPolicyDoc  = `[\u0009\u000A\u000D\u0020-\u00FF]+`
	shownTagKey     = `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`
	shownTagValue   = `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`
)

func noSuch(format string, args ...any) error {
	return awsquery.Errorf(awsquery.CodeNoSuchEntity, format, args...)
}

func invalid(format string, args ...any) error {
	return awsquery.Errorf(awsquery.CodeInvalidInput, format, args...)
}

func limit(format string, args ...any) error {
	return awsquery.Errorf(awsquery.CodeLimitExceeded, format, args...)
}

// storeErr maps an unexpected store error to ServiceFailure; expected
// sentinels are handled by the callers, which know the right message.
func storeErr(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*awsquery.Error](err); ok {
		return err
	}
	return awsquery.Internal(awsquery.CodeServiceFailure, err)
}

// parseTags validates a Tags.member.N list for a resource kind. Role tag
// keys are case-insensitive; OIDC provider tag keys are case-sensitive
// (IAM User Guide, "Tagging IAM resources").
func parseTags(p awsquery.Params, param string, caseInsensitive bool, max int, quotaName string) ([]store.Tag, error) {
	tags, _, err := p.Tags(param)
	if err != nil {
		return nil, err
	}
	var v awsquery.Validator
	seen := map[string]bool{}
	out := make([]store.Tag, 0, len(tags))
	for i, t := range tags {
		member := param + "." + strconv.Itoa(i+1) + ".member.key"
		v.Length(member, t.Key, 1, 128)
		v.Pattern(member, t.Key, reTagKey, shownTagKey)
		vm := param + "." + strconv.Itoa(i+1) + ".member.value"
		v.Length(vm, t.Value, 0, 256)
		v.Pattern(vm, t.Value, reTagValue, shownTagValue)
		k := t.Key
		if caseInsensitive {
			k = strings.ToLower(k)
		}
		if seen[k] {
			if caseInsensitive {
				return nil, invalid("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
			}
			return nil, invalid("Duplicate tag keys found.")
		}
		seen[k] = true
		out = append(out, store.Tag{Key: t.Key, Value: t.Value})
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	for _, t := range out {
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return nil, invalid("User-defined tag keys can't start with \"aws:\". This prefix is reserved for AWS tags.")
		}
	}
	if len(out) > max {
		return nil, limit("Cannot exceed quota for %s: %d", quotaName, max)
	}
	return out, nil
}

// mergeTags adds or overwrites tags by key and enforces the quota.
func mergeTags(existing, add []store.Tag, caseInsensitive bool, max int, quotaName string) ([]store.Tag, error) {
	key := func(k string) string {
		if caseInsensitive {
			return strings.ToLower(k)
		}
		return k
	}
	out := append([]store.Tag(nil), existing...)
	for _, t := range add {
		replaced := false
		for i := range out {
			if key(out[i].Key) == key(t.Key) {
				out[i] = t
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	if len(out) > max {
		return nil, limit("Cannot exceed quota for %s: %d", quotaName, max)
	}
	return out, nil
}

func removeTags(existing []store.Tag, keys []string, caseInsensitive bool) []store.Tag {
	drop := map[string]bool{}
	for _, k := range keys {
		if caseInsensitive {
			k = strings.ToLower(k)
		}
		drop[k] = true
	}
	out := existing[:0:0]
	for _, t := range existing {
		k := t.Key
		if caseInsensitive {
			k = strings.ToLower(k)
		}
		if !drop[k] {
			out = append(out, t)
		}
	}
	return out
}

func parseTagKeys(p awsquery.Params) ([]string, error) {
	keys, present, err := p.List("TagKeys")
	if err != nil {
		return nil, err
	}
	var v awsquery.Validator
	if !present {
		v.Required(p, "TagKeys")
	}
	v.Count("TagKeys", len(keys), 50)
	for _, k := range keys {
		v.Length("TagKeys", k, 1, 128)
		v.Pattern("TagKeys", k, reTagKey, shownTagKey)
	}
	return keys, v.Err()
}

// tagPage pages a sorted tag list for List*Tags (Marker is the index).
func tagPage(tags []store.Tag, p awsquery.Params) (tagList, error) {
	var v awsquery.Validator
	max := v.Int(p, "MaxItems", 100, 1, 1000)
	marker := p.String("Marker")
	if p.Has("Marker") {
		v.Length("Marker", marker, 1, 320)
	}
	if err := v.Err(); err != nil {
		return tagList{}, err
	}
	sorted := append([]store.Tag(nil), tags...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	start := 0
	if marker != "" {
		start = -1
		for i, t := range sorted {
			if t.Key > marker {
				start = i
				break
			}
		}
		if start < 0 {
			start = len(sorted)
		}
	}
	end := min(len(sorted), start+max)
	out := tagList{Tags: []xmlTag{}}
	if l := xmlTags(sorted[start:end]); l != nil {
		out.Tags = l.Members
	}
	if end < len(sorted) {
		out.IsTruncated = true
		out.Marker = sorted[end-1].Key
	}
	return out, nil
}

type tagList struct {
	Tags        []xmlTag `xml:"Tags>member"`
	IsTruncated bool     `xml:"IsTruncated"`
	Marker      string   `xml:"Marker,omitempty"`
}

type xmlTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// xmlTagList is an optional <Tags><member>…</member></Tags> element:
// encoding/xml writes an empty parent for a nil "Tags>member" slice, so
// optional lists go through a pointer that omitempty can drop.
type xmlTagList struct {
	Members []xmlTag `xml:"member"`
}

func xmlTags(tags []store.Tag) *xmlTagList {
	if len(tags) == 0 {
		return nil
	}
	out := make([]xmlTag, len(tags))
	for i, t := range tags {
		out[i] = xmlTag{t.Key, t.Value}
	}
	return &xmlTagList{Members: out}
}

// awsTime formats a time as IAM's responses do (ISO 8601, UTC, seconds).
func awsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// urlEncode percent-encodes a policy document as IAM returns it (RFC 3986:
// everything but unreserved characters); SDKs decode it.
func urlEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// validatePolicyDocument applies the model's constraints and the policy
// grammar. Size quotas are the caller's (they differ per kind and some are
// aggregates), so the parser's own quota is off here.
func (s *Service) validatePolicyDocument(v *awsquery.Validator, param, doc string, kind policy.Kind) error {
	v.Length(param, doc, 1, 131072)
	if doc != "" && !policy.ValidChars(doc) {
		v.Add(param, truncateDoc(doc), "satisfy regular expression pattern: "+shownPolicyDoc)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if _, err := policy.ParseWithOptions(doc, kind, policy.Options{MaxSize: -1}); err != nil {
		return PolicyError(err)
	}
	// Trust policies then go through the guardrail (checkTrustPolicy).
	return nil
}

// PolicyError turns a policy package error into the AWS error; the client
// message keeps the location of the problem so a person can fix it.
func PolicyError(err error) error {
	if err == nil {
		return nil
	}
	pe, ok := errors.AsType[*policy.Error](err)
	if !ok {
		return awsquery.Internal(awsquery.CodeServiceFailure, err)
	}
	return &awsquery.Error{Code: pe.Code, Message: strings.TrimPrefix(pe.Error(), pe.Code+": "), Err: err}
}

func truncateDoc(doc string) string {
	if len(doc) > 64 {
		return doc[:64] + "..."
	}
	return doc
}

// containsControl reports whether s has control characters other than tab.
func containsControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}
