package sts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store"
)

// Explained denials, the AWS way: the caller gets AWS's generic message
// plus an opaque "Encoded authorization failure message" (sealed with the
// session key ring); DecodeAuthorizationMessage, which needs
// sts:DecodeAuthorizationMessage, returns the JSON explanation: AWS's
// decoded-message fields plus keyless's precise reason and policy trace.

var authzAAD = []byte("keyless-authz-message-v1")

// Explanation is the decoded authorization message.
type Explanation struct {
	Allowed           bool               `json:"allowed"`
	ExplicitDeny      bool               `json:"explicitDeny"`
	MatchedStatements itemList[any]      `json:"matchedStatements"`
	Failures          itemList[any]      `json:"failures"`
	Context           ExplanationContext `json:"context"`
	// Keyless is keyless's addition: why, precisely.
	Keyless KeylessExplanation `json:"keyless"`
}

type itemList[T any] struct {
	Items []T `json:"items"`
}

// ExplanationContext is AWS's context block of a decoded message.
type ExplanationContext struct {
	Principal  map[string]string        `json:"principal"`
	Action     string                   `json:"action"`
	Resource   string                   `json:"resource"`
	Conditions itemList[conditionEntry] `json:"conditions"`
}

type conditionEntry struct {
	Key    string                      `json:"key"`
	Values itemList[map[string]string] `json:"values"`
}

// KeylessExplanation says why a token or a trust evaluation failed.
type KeylessExplanation struct {
	// Reason is one sentence for humans.
	Reason string `json:"reason"`
	// ErrorCode is the AWS error code the caller received.
	ErrorCode string `json:"errorCode"`
	// Rule is the token-validation rule (V01…V20) for token failures.
	Rule string `json:"rule,omitempty"`
	// Trace is the trust policy evaluation trace for trust failures.
	Trace *policy.Trace `json:"trace,omitempty"`
	// Claims are the token's claims that the trust policy could read, as
	// condition keys.
	ConditionKeys map[string][]string `json:"conditionKeys,omitempty"`
	// TokenSHA256 identifies the token in the audit trail.
	TokenSHA256 string `json:"tokenSha256,omitempty"`
	// Upstream describes the upstream call of a broker role's exchange.
	Upstream *UpstreamExplanation `json:"upstream,omitempty"`
}

// UpstreamExplanation is what keyless knows of a brokered exchange that
// failed: the upstream role and endpoint, and the upstream's answer.
type UpstreamExplanation struct {
	RoleARN      string `json:"roleArn"`
	Endpoint     string `json:"endpoint,omitempty"`
	RequestID    string `json:"requestId,omitempty"`
	ErrorCode    string `json:"errorCode,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	// TokenSubject is the sub of the token keyless minted: the upstream
	// role's trust policy must name exactly it.
	TokenSubject string `json:"tokenSubject,omitempty"`
	TokenIssuer  string `json:"tokenIssuer,omitempty"`
}

// encodeExplanation seals the explanation of a refused exchange.
func (s *Service) encodeExplanation(x *exchange, tokErr *oidc.Error) (string, error) {
	b, err := json.Marshal(explain(x, tokErr))
	if err != nil {
		return "", err
	}
	sealed, err := s.ring.Ring().Seal(s.rand, b, authzAAD)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// explain builds the explanation of an exchange: the one the STS seals
// into a refusal and the offline simulator (simulate.go) prints.
func explain(x *exchange, tokErr *oidc.Error) Explanation {
	e := Explanation{
		MatchedStatements: itemList[any]{Items: []any{}},
		Failures:          itemList[any]{Items: []any{}},
		Context: ExplanationContext{
			Principal:  map[string]string{},
			Action:     actionAssume,
			Resource:   x.roleARN,
			Conditions: itemList[conditionEntry]{Items: []conditionEntry{}},
		},
		Keyless: KeylessExplanation{Reason: x.reason, ErrorCode: awsquery.CodeAccessDenied, Trace: x.trace},
	}
	if tokErr != nil {
		e.Keyless.ErrorCode, e.Keyless.Rule = tokErr.Code, tokErr.Rule
	}
	if x.trace != nil && x.trace.Decision == policy.ExplicitDeny {
		e.ExplicitDeny = true
	}
	if b := x.broker; b != nil {
		u := &UpstreamExplanation{RoleARN: b.upstreamRoleARN, Endpoint: b.endpoint, RequestID: b.upstreamRequestID, ErrorCode: b.upstreamCode, ErrorMessage: b.upstreamMessage}
		if b.token != nil {
			u.TokenSubject, u.TokenIssuer = b.token.Subject, b.token.Issuer
		}
		e.Keyless.Upstream = u
		if b.errorCode != "" {
			e.Keyless.ErrorCode = b.errorCode
		}
	}
	if t := x.token; t != nil {
		e.Context.Principal["id"] = x.providerARN + ":" + t.Audience + ":" + t.Subject
		e.Context.Principal["arn"] = x.providerARN
		e.Keyless.TokenSHA256 = t.SHA256
		keys := oidc.ConditionValues(t)
		e.Keyless.ConditionKeys = keys
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			ce := conditionEntry{Key: k}
			for _, v := range keys[k] {
				ce.Values.Items = append(ce.Values.Items, map[string]string{"value": v})
			}
			e.Context.Conditions.Items = append(e.Context.Conditions.Items, ce)
		}
	}
	return e
}

type decodeResult struct {
	DecodedMessage string `xml:"DecodedMessage"`
}

func (s *Service) decodeAuthorizationMessage(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	msg, ok := v.Required(r.Params, "EncodedMessage")
	if ok {
		v.Length("EncodedMessage", msg, 1, 10240)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	invalid := awsquery.NewError(awsquery.CodeInvalidAuthorizationMessage, "The encoded authorization message is invalid or was not issued by this keyless deployment (or its key was rotated away).")
	// Accept the whole "Encoded authorization failure message: X" text too.
	if _, after, found := strings.Cut(msg, "Encoded authorization failure message: "); found {
		msg = after
	}
	sealed, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(msg))
	if err != nil {
		return nil, invalid.Wrap(err)
	}
	pt, err := s.ring.open(ctx, sealed, authzAAD)
	if err != nil {
		return nil, invalid.Wrap(err)
	}
	return decodeResult{DecodedMessage: string(pt)}, nil
}

// AuthorizeSession evaluates a call made with session credentials: the
// role's identity policies (inline and attached), intersected with the
// session policies and the role's permissions boundary, for the call's
// target (its action, the resource it acts on and its request condition
// keys), in the request context AWS documents for every request: the
// principal's keys (aws:PrincipalArn, aws:PrincipalTag/K, aws:userid,
// aws:TokenIssueTime, aws:FederatedProvider, aws:SourceIdentity) and the
// network and time keys (aws:SourceIp, aws:SecureTransport,
// aws:RequestedRegion, aws:CurrentTime, aws:EpochTime, aws:UserAgent). It
// returns an AccessDenied *awsquery.Error when the call is not allowed.
func (s *Service) AuthorizeSession(ctx context.Context, r *awsquery.Request, t awsquery.Target) error {
	caller := r.Caller
	if b, ok := caller.Session.(*BrokeredSession); ok {
		return awsquery.Errorf(awsquery.CodeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s: these are AWS credentials keyless brokered; keyless answers only sts:GetCallerIdentity for them, send every other call to AWS.", b.ARN, t.Action, t.Resource)
	}
	sess, ok := caller.Session.(*Session)
	if !ok {
		return awsquery.Internal(awsquery.CodeInternalFailure, errNoSession)
	}
	deny := awsquery.Errorf(awsquery.CodeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s", sess.AssumedRoleARN(), t.Action, t.Resource)
	role, err := s.st.Roles().Get(ctx, sess.RoleName())
	if errors.Is(err, store.ErrNotFound) || (err == nil && role.RoleID != sess.RoleID) {
		// The role was deleted (or replaced by another of the same name):
		// its old sessions grant nothing.
		return deny
	}
	if err != nil {
		return awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	var set policy.PolicySet
	inline, err := s.st.Roles().ListInlinePolicies(ctx, role.Name)
	if err != nil {
		return awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	for _, ip := range inline {
		p, err := s.policies.get(ip.Document, policy.KindIdentity)
		if err != nil {
			return awsquery.Internal(awsquery.CodeInternalFailure, fmt.Errorf("inline policy %s: %w", ip.Name, err))
		}
		set.Identity = append(set.Identity, p)
	}
	attached, err := s.st.Roles().ListAttachedPolicies(ctx, role.Name)
	if err != nil {
		return awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	for _, arn := range attached {
		p, err := s.managed(ctx, arn, policy.KindIdentity)
		if err != nil {
			return err
		}
		set.Identity = append(set.Identity, p)
	}
	if role.PermissionsBoundary != "" {
		p, err := s.managed(ctx, role.PermissionsBoundary, policy.KindBoundary)
		if err != nil {
			return err
		}
		set.Boundary = []*policy.Policy{p}
	}
	if sess.Policy != "" {
		p, err := s.policies.get(sess.Policy, policy.KindSession)
		if err != nil {
			return awsquery.Internal(awsquery.CodeInternalFailure, err)
		}
		set.Session = append(set.Session, p)
	}
	for _, arn := range sess.PolicyARNs {
		p, err := s.managed(ctx, arn, policy.KindSession)
		if err != nil {
			return err
		}
		set.Session = append(set.Session, p)
	}
	c := s.requestContext(r, sess, role, t)
	req := &policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalAWS, ID: sess.AssumedRoleARN(), ParentARN: role.ARN, Account: s.account},
		Action:    t.Action, Resource: t.Resource, Context: c,
	}
	if set.Evaluate(req) != policy.Allowed {
		return deny
	}
	return nil
}

// requestContext is the condition-key context of a session's call.
// Principal tags are the session's tags, then the role's tags for keys the
// session did not set (AWS: session tags override role tags).
func (s *Service) requestContext(r *awsquery.Request, sess *Session, role *store.Role, t awsquery.Target) *policy.Context {
	c := policy.NewContext(20 + len(t.Keys) + len(sess.Tags) + len(role.Tags))
	now := s.now()
	c.SetTime("aws:CurrentTime", now)
	c.SetInt("aws:EpochTime", now.Unix())
	c.SetTime("aws:TokenIssueTime", time.Unix(sess.Issued, 0))
	c.Set("aws:PrincipalArn", role.ARN)
	c.Set("aws:PrincipalAccount", s.account)
	c.Set("aws:PrincipalType", "AssumedRole")
	c.SetBool("aws:PrincipalIsAWSService", false)
	c.SetBool("aws:ViaAWSService", false)
	c.Set("aws:userid", sess.AssumedRoleID())
	c.Set("aws:FederatedProvider", sess.Provider)
	if sess.SourceIdentity != "" {
		c.Set("aws:SourceIdentity", sess.SourceIdentity)
	}
	if r.SourceIP != "" {
		c.Set("aws:SourceIp", r.SourceIP)
	}
	c.SetBool("aws:SecureTransport", r.SecureTransport)
	if r.UserAgent != "" {
		c.Set("aws:UserAgent", r.UserAgent)
	}
	c.Set("aws:RequestedRegion", requestedRegion(t.Action, r.Region))
	for k, v := range sess.Tags {
		c.Set("aws:PrincipalTag/"+k, v)
	}
	for _, tag := range role.Tags {
		if _, ok := sess.Tags[tag.Key]; !ok {
			c.Set("aws:PrincipalTag/"+tag.Key, tag.Value)
		}
	}
	for k, v := range t.Keys {
		c.Set(k, v...)
	}
	return c
}

// requestedRegion is aws:RequestedRegion: IAM is a global service whose
// requests AWS attributes to us-east-1; other services use the region the
// request was signed for.
func requestedRegion(action, signed string) string {
	if strings.HasPrefix(action, "iam:") {
		return "us-east-1"
	}
	return signed
}

func (s *Service) managed(ctx context.Context, arn string, kind policy.Kind) (*policy.Policy, error) {
	mp, err := s.st.Policies().Get(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		// A deleted managed policy grants nothing; as a boundary or a
		// session policy it lets nothing through.
		return policy.MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`, kind), nil
	}
	if err != nil {
		return nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	p, err := s.policies.get(iam.DefaultDocument(mp), kind)
	if err != nil {
		return nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	return p, nil
}
