package sts

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store"
)

// Constraints from the STS service model (AssumeRoleWithWebIdentityRequest).
var (
	reRoleSessionName = regexp.MustCompile(`^[\w+=,.@-]*$`)
	reARNChars        = regexp.MustCompile("^[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]+$")
	reSessionPolicy   = regexp.MustCompile(`^[\x{0009}\x{000A}\x{000D}\x{0020}-\x{00FF}]+$`)
	reSourceIdentity  = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	reTagChars        = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

const (
	actionAssume      = "sts:AssumeRoleWithWebIdentity"
	actionTagSession  = "sts:TagSession"
	actionSetSourceID = "sts:SetSourceIdentity"
	msgNotAuthorized  = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
	tagsClaim         = "https://aws.amazon.com/tags"
	sourceIDClaim     = "https://aws.amazon.com/source_identity"
	// packedLimit is keyless's packed-policy budget: AWS does not publish
	// its packing, so keyless counts the characters of the inline policy
	// (without whitespace), the managed policy ARNs and the tags against
	// AWS's documented plaintext limit of 2,048.
	packedLimit = 2048
)

type xmlAssumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type xmlCredentials struct {
	SessionToken    string `xml:"SessionToken"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	Expiration      string `xml:"Expiration"`
	AccessKeyID     string `xml:"AccessKeyId"`
}

type assumeResult struct {
	SubjectFromWebIdentityToken string             `xml:"SubjectFromWebIdentityToken"`
	Audience                    string             `xml:"Audience"`
	AssumedRoleUser             xmlAssumedRoleUser `xml:"AssumedRoleUser"`
	Credentials                 xmlCredentials     `xml:"Credentials"`
	SourceIdentity              string             `xml:"SourceIdentity,omitempty"`
	PackedPolicySize            *int               `xml:"PackedPolicySize,omitempty"`
	Provider                    string             `xml:"Provider"`
}

// exchange collects what one AssumeRoleWithWebIdentity learnt, for the
// response, the session and the audit trail.
type exchange struct {
	roleARN, sessionName string
	duration             int
	policyDoc            string
	policyARNs           []string
	token                *oidc.Token
	providerARN          string
	decision             policy.Decision
	trace                *policy.Trace
	tags                 map[string]string
	tagKeys              []string
	transitive           []string
	sourceIdentity       string
	roleAuthorizedByIdp  bool
	reason               string // why it was refused, for the explanation
	// broker is set for a broker role once its trust policy allowed the
	// exchange (broker.go).
	broker *brokerNote
}

func (s *Service) assumeRoleWithWebIdentity(ctx context.Context, r *awsquery.Request) (any, error) {
	x := &exchange{}
	res, err := s.assume(ctx, r, x)
	s.note(r, x, res, err)
	return res, err
}

func (s *Service) assume(ctx context.Context, r *awsquery.Request, x *exchange) (any, error) {
	p := r.Params
	// 1. Parameter constraints (ValidationError, all at once).
	var v awsquery.Validator
	roleARN, ok := v.Required(p, "RoleArn")
	if ok {
		v.Length("RoleArn", roleARN, 20, 2048)
		v.Pattern("RoleArn", roleARN, reARNChars, `[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+`)
	}
	sessionName, ok := v.Required(p, "RoleSessionName")
	if ok {
		v.Length("RoleSessionName", sessionName, 2, 64)
		v.Pattern("RoleSessionName", sessionName, reRoleSessionName, `[\w+=,.@-]*`)
	}
	rawToken, ok := v.Required(p, "WebIdentityToken")
	if ok {
		v.SensitiveLength("WebIdentityToken", rawToken, 4, 20000)
	}
	if pid, ok := p.Get("ProviderId"); ok {
		v.Length("ProviderId", pid, 4, 2048)
	}
	duration := v.Int(p, "DurationSeconds", 3600, 900, 43200)
	policyDoc, hasPolicy := p.Get("Policy")
	if hasPolicy {
		v.Length("Policy", policyDoc, 1, 2048)
		v.Pattern("Policy", policyDoc, reSessionPolicy, `[\u0009\u000A\u000D\u0020-\u00FF]+`)
	}
	arnStructs, _, err := p.Structs("PolicyArns", "arn")
	if err != nil {
		return nil, err
	}
	var policyARNs []string
	for _, m := range arnStructs {
		a := m["arn"]
		v.Length("PolicyArns.member.arn", a, 20, 2048)
		policyARNs = append(policyARNs, a)
	}
	v.Count("PolicyArns", len(policyARNs), 10)
	if err := v.Err(); err != nil {
		return nil, err
	}
	x.roleARN, x.sessionName, x.duration, x.policyDoc, x.policyARNs = roleARN, sessionName, duration, policyDoc, policyARNs
	if _, ok := p.Get("ProviderId"); ok {
		return nil, awsquery.NewError(awsquery.CodeValidationError, "ProviderId is only for OAuth 2.0 access tokens from www.amazon.com and graph.facebook.com; do not set it with an OpenID Connect ID token.")
	}
	roleAccount, roleName, ok := iam.ParseRoleARN(roleARN)
	if !ok {
		return nil, awsquery.NewError(awsquery.CodeValidationError, "Request ARN is invalid")
	}

	// 2. The token: signature, issuer registered in the role's account,
	// audience, times (package oidc, trust-pitfalls §7 order).
	tok, err := s.validator.Validate(ctx, rawToken, func(iss string) (*oidc.Provider, bool) {
		if roleAccount != s.account {
			return nil, false
		}
		pr, err := s.st.Providers().Get(ctx, iam.ProviderARN(s.account, iss))
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.log.ErrorContext(ctx, "provider lookup failed", "err", err)
			}
			return nil, false
		}
		return s.oidcProvider(ctx, pr), true
	})
	if err != nil {
		return nil, s.tokenError(x, err)
	}
	x.token = tok
	x.providerARN = iam.ProviderARN(s.account, tok.Provider.URL)
	authorized, err := tok.AuthorizeRole(roleARN)
	if err != nil {
		return nil, s.tokenError(x, err)
	}
	x.roleAuthorizedByIdp = authorized

	// 3. Session tags and source identity carried by the token.
	if err := x.readTagClaims(tok); err != nil {
		return nil, err
	}

	// 4. The role and its trust policy. A role that does not exist is
	// refused exactly like a trust mismatch, revealing nothing.
	role, err := s.st.Roles().Get(ctx, roleName)
	if errors.Is(err, store.ErrNotFound) || (err == nil && role.ARN != roleARN) {
		x.reason = "the role " + roleARN + " does not exist in this account"
		return nil, s.denied(x)
	}
	if err != nil {
		return nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	trust, err := s.policies.get(role.TrustPolicy, policy.KindTrust)
	if err != nil {
		x.reason = "the role's trust policy does not parse: " + err.Error()
		return nil, s.denied(x)
	}
	env := trustEnv{Now: s.now(), Region: r.Region, SourceIP: r.SourceIP, UserAgent: r.UserAgent}
	if !x.decideTrust(trust, role.ARN, trustContext(x, tok, role.Tags, env)) {
		return nil, s.denied(x)
	}

	// 5. Duration and session policies.
	if duration > role.MaxSessionDuration {
		return nil, awsquery.NewError(awsquery.CodeValidationError, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	// A broker role: the upstream STS checks the session policies (they
	// name the upstream account's policies) and issues the credentials.
	if upstream, ok := iam.RoleTag(role, iam.TagUpstreamRoleARN); ok {
		return s.brokered(ctx, r, x, role, upstream)
	}
	packed := -1
	if hasPolicy || len(policyARNs) > 0 || len(x.tags) > 0 {
		if hasPolicy {
			if _, err := s.policies.get(policyDoc, policy.KindSession); err != nil {
				return nil, iam.PolicyError(err)
			}
		}
		for _, a := range policyARNs {
			if _, err := s.st.Policies().Get(ctx, a); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return nil, awsquery.Errorf(awsquery.CodeMalformedPolicyDocument, "Policy %s does not exist or is not attachable.", a)
				}
				return nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
			}
		}
		size := 0
		if hasPolicy {
			size += policy.Size(policyDoc)
		}
		for _, a := range policyARNs {
			size += len(a)
		}
		for k, v := range x.tags {
			size += len(k) + len(v)
		}
		packed = size * 100 / packedLimit
		if size > packedLimit {
			return nil, awsquery.Errorf(awsquery.CodePackedPolicyTooLarge, "Packed policy consumes %d%% of allotted space, please use smaller policy for this request.", packed)
		}
	}

	// 6. Credentials.
	now := s.now().UTC().Truncate(time.Second)
	akid, err := iam.NewID(s.rand, iam.PrefixSessionKey, s.account, 16)
	if err != nil {
		return nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	secret, err := iam.NewSecretAccessKey(s.rand)
	if err != nil {
		return nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	sess := &Session{
		AccessKeyID: akid, SecretAccessKey: secret, Account: s.account, RoleARN: role.ARN, RoleID: role.RoleID,
		SessionName: sessionName, Issued: now.Unix(), Expires: now.Add(time.Duration(duration) * time.Second).Unix(),
		Provider: x.providerARN, Subject: tok.Subject, Audience: tok.Audience, SourceIdentity: x.sourceIdentity,
		Policy: policyDoc, PolicyARNs: policyARNs, Tags: x.tags, TransitiveTags: x.transitive, TokenSHA256: tok.SHA256,
	}
	token, err := s.sealSession(sess)
	if err != nil {
		return nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	s.touchRole(role.Name, now)
	out := assumeResult{
		SubjectFromWebIdentityToken: tok.Subject,
		Audience:                    tok.Audience,
		AssumedRoleUser:             xmlAssumedRoleUser{Arn: sess.AssumedRoleARN(), AssumedRoleID: sess.AssumedRoleID()},
		Credentials: xmlCredentials{
			SessionToken: token, SecretAccessKey: secret, AccessKeyID: akid,
			Expiration: time.Unix(sess.Expires, 0).UTC().Format("2006-01-02T15:04:05Z"),
		},
		SourceIdentity: x.sourceIdentity,
		Provider:       x.providerARN,
	}
	if packed >= 0 {
		out.PackedPolicySize = &packed
	}
	return out, nil
}

func claimFor(action string) string {
	if action == actionTagSession {
		return tagsClaim
	}
	return sourceIDClaim
}

// requiredActions are the trust-policy actions this exchange needs: AWS
// requires sts:TagSession when the token passes session tags and
// sts:SetSourceIdentity when it sets a source identity.
func (x *exchange) requiredActions() []string {
	out := []string{actionAssume}
	if len(x.tags) > 0 || len(x.transitive) > 0 {
		out = append(out, actionTagSession)
	}
	if x.sourceIdentity != "" {
		out = append(out, actionSetSourceID)
	}
	return out
}

// decideTrust evaluates the role's trust policy for every action the
// exchange needs (requiredActions) in the request context c, as the
// token's provider (x.providerARN). On a refusal it records the decision,
// the trace and the reason in x and returns false. The STS and the offline
// simulator (simulate.go) both decide with it.
func (x *exchange) decideTrust(trust *policy.Policy, roleARN string, c *policy.Context) bool {
	set := policy.PolicySet{Resource: []*policy.Policy{trust}}
	req := &policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalFederated, ID: x.providerARN},
		Action:    actionAssume, Resource: roleARN, Context: c,
	}
	for _, action := range x.requiredActions() {
		req.Action = action
		if d := set.Evaluate(req); d != policy.Allowed {
			x.decision, x.trace = set.Explain(req)
			x.reason = describeDenial(x.trace)
			if action != actionAssume {
				x.reason = "The trust policy does not allow " + action + ", which the token's " + claimFor(action) + " claim requires. " + x.reason
			}
			return false
		}
	}
	x.decision = policy.Allowed
	return true
}

// trustEnv is what the trust evaluation's context takes from the request
// rather than the token: the time and the caller's connection.
type trustEnv struct {
	Now                         time.Time
	Region, SourceIP, UserAgent string
}

// trustContext builds the request context of the trust evaluation: the
// provider's condition keys from the token, and the global and STS keys
// AWS sets for AssumeRoleWithWebIdentity. The STS and the offline
// simulator (simulate.go) both build it here.
func trustContext(x *exchange, tok *oidc.Token, roleTags []store.Tag, env trustEnv) *policy.Context {
	vals := oidc.ConditionValues(tok)
	c := policy.NewContext(len(vals) + 12 + len(x.tags))
	for k, v := range vals {
		c.Set(k, v...)
	}
	now := env.Now
	c.SetTime("aws:CurrentTime", now)
	c.SetInt("aws:EpochTime", now.Unix())
	c.Set("aws:FederatedProvider", x.providerARN)
	c.Set("aws:PrincipalType", "WebIdentityUser")
	c.Set("sts:RoleSessionName", x.sessionName)
	c.Set("aws:RequestedRegion", env.Region)
	if env.SourceIP != "" {
		c.Set("aws:SourceIp", env.SourceIP)
	}
	if env.UserAgent != "" {
		c.Set("aws:UserAgent", env.UserAgent)
	}
	c.SetBool("aws:SecureTransport", false)
	if x.roleAuthorizedByIdp {
		c.SetBool("sts:RoleAuthorizedByIdp", true)
	}
	if x.sourceIdentity != "" {
		c.Set("sts:SourceIdentity", x.sourceIdentity)
	}
	if len(x.tags) > 0 {
		c.Set("aws:TagKeys", x.tagKeys...)
		for k, v := range x.tags {
			c.Set("aws:RequestTag/"+k, v)
		}
	}
	if len(x.transitive) > 0 {
		c.Set("sts:TransitiveTagKeys", x.transitive...)
	}
	for _, t := range roleTags {
		c.Set("aws:ResourceTag/"+t.Key, t.Value)
	}
	return c
}

// readTagClaims reads session tags (https://aws.amazon.com/tags) and the
// source identity (https://aws.amazon.com/source_identity) from the token,
// with AWS's rules (id_session-tags, id_credentials_temp_control-access_monitor).
func (x *exchange) readTagClaims(tok *oidc.Token) error {
	bad := func(format string, args ...any) error {
		return awsquery.Errorf(awsquery.CodeInvalidIdentityToken, "The web identity token that was passed is invalid: "+format, args...)
	}
	if raw, ok := tok.Claims[tagsClaim]; ok {
		obj, ok := raw.(map[string]any)
		if !ok {
			return bad("the %s claim must be an object", tagsClaim)
		}
		x.tags = map[string]string{}
		seen := map[string]bool{}
		if pt, ok := obj["principal_tags"]; ok {
			m, ok := pt.(map[string]any)
			if !ok {
				return bad("principal_tags must be an object")
			}
			for k, v := range m {
				vals, ok := oidc.ClaimStrings(v)
				if !ok || len(vals) != 1 {
					return bad("session tag %q must have exactly one value", k)
				}
				if len(k) < 1 || len(k) > 128 || len(vals[0]) > 256 || !reTagChars.MatchString(k) || !reTagChars.MatchString(vals[0]) {
					return bad("session tag %q is not a valid tag (key 1-128, value up to 256 characters of letters, digits, spaces and _.:/=+-@)", k)
				}
				if strings.HasPrefix(strings.ToLower(k), "aws:") {
					return bad("session tag keys cannot start with aws:")
				}
				if seen[strings.ToLower(k)] {
					return bad("session tag keys are case-insensitive and %q appears twice", k)
				}
				seen[strings.ToLower(k)] = true
				x.tags[k] = vals[0]
				x.tagKeys = append(x.tagKeys, k)
			}
			sort.Strings(x.tagKeys)
			if len(x.tags) > 50 {
				return bad("at most 50 session tags are allowed, the token has %d", len(x.tags))
			}
		}
		if tt, ok := obj["transitive_tag_keys"]; ok {
			keys, ok := oidc.ClaimStrings(tt)
			if !ok {
				return bad("transitive_tag_keys must be an array of strings")
			}
			for _, k := range keys {
				if !seen[strings.ToLower(k)] {
					return bad("transitive tag key %q is not a session tag", k)
				}
			}
			x.transitive = keys
		}
	}
	if raw, ok := tok.Claims[sourceIDClaim]; ok {
		sid, ok := raw.(string)
		if !ok || !reSourceIdentity.MatchString(sid) || strings.HasPrefix(strings.ToLower(sid), "aws:") {
			return bad("the %s claim must be 2-64 characters of letters, digits and _+=,.@- and not start with aws:", sourceIDClaim)
		}
		x.sourceIdentity = sid
	}
	return nil
}

// tokenError maps a token validation failure to AWS's error. For generic
// InvalidIdentityToken failures the encoded explanation is appended, as for
// AccessDenied, so an administrator can decode the precise reason.
func (s *Service) tokenError(x *exchange, err error) error {
	oe, ok := errors.AsType[*oidc.Error](err)
	if !ok {
		return awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	x.reason = oe.Reason
	msg := oe.Message
	if oe.Code == oidc.CodeInvalidIdentityToken || oe.Code == oidc.CodeIDPCommunicationError {
		if enc, eerr := s.encodeExplanation(x, oe); eerr == nil {
			msg += " Encoded authorization failure message: " + enc
		}
	}
	return &awsquery.Error{Code: oe.Code, Message: msg, Err: err}
}

// denied is the AccessDenied AWS answers for a trust mismatch, with the
// encoded explanation only an administrator can decode.
func (s *Service) denied(x *exchange) error {
	msg := msgNotAuthorized
	if enc, err := s.encodeExplanation(x, nil); err == nil {
		msg += ". Encoded authorization failure message: " + enc
	}
	return &awsquery.Error{Code: awsquery.CodeAccessDenied, Message: msg, Err: errors.New(x.reason)}
}

// touchRole records RoleLastUsed at most once a minute per role, off the
// request path.
func (s *Service) touchRole(name string, at time.Time) {
	s.usedMu.Lock()
	last := s.used[name]
	if at.Sub(last) < time.Minute {
		s.usedMu.Unlock()
		return
	}
	if len(s.used) > 100000 {
		clear(s.used)
	}
	s.used[name] = at
	s.usedMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.st.Roles().Update(ctx, name, func(r *store.Role) error {
			r.LastUsedDate, r.LastUsedRegion = at, s.region
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("recording role last use failed", "role", name, "err", err)
		}
	}()
}

// note fills the audit record of the exchange, accepted or refused: who
// (the token's identity and claims), what (role, session), the decision and
// its trace, and hashes of the ID token and session token — never the
// tokens or the secret key themselves.
//
// Only an exchange whose token validated is durable (fsynced before the
// answer): one that issued credentials must be, and a refusal of a verified
// token is evidence of a real identity probing a role it may not assume —
// the event a forensic review needs after a crash — whose size the token
// limits bound. A refusal before the token validated is an anonymous
// caller's: its event is size-capped (Unverified) and rides the next group
// commit or periodic flush, so a flood of junk tokens costs no fsyncs.
func (s *Service) note(r *awsquery.Request, x *exchange, res any, err error) {
	r.Note.Durable = x.token != nil
	ax := &audit.Exchange{
		RoleARN: x.roleARN, RoleSessionName: x.sessionName, SourceIdentity: x.sourceIdentity,
		PrincipalTags: x.tags, TransitiveTagKeys: x.transitive, PolicyARNs: x.policyARNs, Policy: x.policyDoc,
		// Hashed as validated: without the surrounding whitespace
		// oidc.Validator.Validate trims, so a token sent with and without a
		// trailing newline has one hash in the trail.
		IDToken: oidc.TrimToken(r.Params.String("WebIdentityToken")), Unverified: x.token == nil,
	}
	if r.Params.Has("DurationSeconds") {
		ax.DurationSeconds = x.duration
	}
	if t := x.token; t != nil {
		ax.ProviderARN, ax.Issuer, ax.Audience, ax.Subject = x.providerARN, t.Issuer, t.Audience, t.Subject
		ax.JTI, ax.Claims, ax.VerificationMethod = t.JTI, plainClaims(t.Claims), t.VerificationMethod
		ax.IDTokenSHA256 = t.SHA256
	}
	if x.decision == policy.Allowed {
		ax.Decision = "Allow"
	} else if x.trace != nil || x.reason != "" {
		ax.Decision = "Deny"
	}
	if x.trace != nil {
		if b, err := json.Marshal(x.trace); err == nil {
			ax.Trace = b
		}
	}
	if out, ok := res.(assumeResult); ok && err == nil {
		exp, _ := time.Parse(time.RFC3339, out.Credentials.Expiration)
		ax.Credentials = &audit.IssuedCredentials{AccessKeyID: out.Credentials.AccessKeyID, SessionToken: out.Credentials.SessionToken, Expiration: exp}
		ax.AssumedRoleID, ax.AssumedRoleARN = out.AssumedRoleUser.AssumedRoleID, out.AssumedRoleUser.Arn
		if out.PackedPolicySize != nil {
			ax.PackedPolicySize = *out.PackedPolicySize
		}
	}
	add := map[string]any{}
	if x.reason != "" {
		add["refusalReason"] = x.reason
	}
	if x.roleAuthorizedByIdp {
		add["RoleAuthorizedByIdp"] = true
	}
	if b := x.broker; b != nil {
		ax.SharedEventID = b.link
		add["broker"] = b.auditMap()
	}
	r.Note.Additional = add
	r.Note.Exchange = ax
}

// plainClaims turns json.Number claim values into int64 or float64 so the
// audit record carries JSON numbers, not strings.
func plainClaims(claims map[string]any) map[string]any {
	out := make(map[string]any, len(claims))
	for k, v := range claims {
		if n, ok := v.(json.Number); ok {
			if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				out[k] = i
				continue
			}
			if f, err := n.Float64(); err == nil {
				out[k] = f
				continue
			}
		}
		out[k] = v
	}
	return out
}
