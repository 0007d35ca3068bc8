package sts

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/store"
)

// Broker mode: a keyless role tagged keyless:upstream-role-arn is a front
// for an AWS role. Once keyless has validated the CI token and its trust
// policy allows the exchange, the Broker (package broker, wired by the
// server) mints keyless's own ID token and exchanges it at the upstream
// STS; the client gets the upstream's answer, unchanged. The STS defines
// the interface so that it does not depend on package broker.

// Broker exchanges an allowed AssumeRoleWithWebIdentity at an upstream STS.
// Its errors are *BrokerError.
type Broker interface {
	Exchange(ctx context.Context, req *BrokerRequest) (*BrokerResult, error)
}

// BrokerRequest is one allowed exchange of a broker role.
type BrokerRequest struct {
	// The client's request, for the broker's own audit event.
	RequestID string
	Time      time.Time
	SourceIP  string
	UserAgent string
	Region    string
	// SharedEventID links the broker's event to the exchange event.
	SharedEventID string

	// The keyless side: account, role and the CI token it validated.
	Account     string
	RoleName    string
	RoleARN     string
	Token       *oidc.Token
	ProviderARN string

	// The upstream role and the role's per-role endpoint tag ("" when
	// the role has none).
	UpstreamRoleARN  string
	UpstreamEndpoint string

	// Passed on as the client sent them.
	SessionName     string
	DurationSeconds int // 0: not sent
	Policy          string
	PolicyARNs      []string
	// Session tags and source identity the CI token carried (its
	// https://aws.amazon.com/tags and source_identity claims), already
	// allowed by the trust policy (sts:TagSession, sts:SetSourceIdentity).
	Tags              map[string]string
	TransitiveTagKeys []string
	SourceIdentity    string
}

// MintedToken describes the ID token keyless minted for the upstream,
// without the token.
type MintedToken struct {
	Issuer  string
	Subject string
	JTI     string
	KeyID   string
	SHA256  string
	Expires time.Time
}

// BrokerResult is the upstream's answer to a brokered exchange, as AWS
// returned it, and what the audit trail records about the call.
type BrokerResult struct {
	Endpoint          string
	UpstreamRequestID string
	Token             MintedToken

	SubjectFromWebIdentityToken string
	Audience                    string
	Provider                    string
	AssumedRoleARN              string
	AssumedRoleID               string
	AccessKeyID                 string
	SecretAccessKey             string
	SessionToken                string
	Expiration                  string // as the upstream wrote it
	SourceIdentity              string
	PackedPolicySize            *int
}

// BrokerError is a brokered exchange that did not return credentials:
// Code, Message and Status are what the client gets (the AWS error it
// expects, in AWS's wording); Reason is keyless's explanation, sealed into
// the encoded authorization message.
type BrokerError struct {
	Code    string
	Message string
	Status  int
	Reason  string
	// Outcome is the metrics and audit label of the failure.
	Outcome string

	Endpoint          string
	UpstreamRequestID string
	UpstreamCode      string
	UpstreamMessage   string
	Token             *MintedToken // nil when no token was minted
	Err               error
}

func (e *BrokerError) Error() string {
	s := "broker: " + e.Outcome + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *BrokerError) Unwrap() error { return e.Err }

// SetBroker turns broker mode on (the server calls it while wiring, before
// serving). Without a broker, an exchange for a role that names an
// upstream role is refused with an explanation.
func (s *Service) SetBroker(b Broker) { s.broker = b }

// brokerNote is what the exchange event records about the brokered call.
type brokerNote struct {
	link              string
	upstreamRoleARN   string
	endpoint          string
	outcome           string
	upstreamRequestID string
	upstreamCode      string
	upstreamMessage   string
	// errorCode is the error the client got ("" for AccessDenied).
	errorCode string
	token     *MintedToken
	result    *BrokerResult
}

// auditMap is the exchange event's additionalEventData.broker object. It
// holds no secret: the upstream session token is hashed in
// responseElements like any session token, the minted ID token only by
// its SHA-256.
func (b *brokerNote) auditMap() map[string]any {
	m := map[string]any{"upstreamRoleArn": b.upstreamRoleARN, "outcome": b.outcome}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("upstreamEndpoint", b.endpoint)
	set("upstreamRequestId", b.upstreamRequestID)
	set("upstreamErrorCode", b.upstreamCode)
	set("upstreamErrorMessage", b.upstreamMessage)
	if t := b.token; t != nil {
		set("brokerTokenIssuer", t.Issuer)
		set("brokerTokenSubject", t.Subject)
		set("brokerTokenJti", t.JTI)
		set("brokerTokenSHA256", t.SHA256)
	}
	if r := b.result; r != nil {
		set("upstreamAssumedRoleArn", r.AssumedRoleARN)
		set("upstreamAssumedRoleId", r.AssumedRoleID)
		set("upstreamAccessKeyId", r.AccessKeyID)
		set("upstreamProvider", r.Provider)
		set("upstreamSubject", r.SubjectFromWebIdentityToken)
		set("upstreamAudience", r.Audience)
	}
	return m
}

// brokered exchanges an allowed request for a broker role at its upstream.
func (s *Service) brokered(ctx context.Context, r *awsquery.Request, x *exchange, role *store.Role, upstream string) (any, error) {
	note := &brokerNote{upstreamRoleARN: upstream, outcome: "refused"}
	x.broker = note
	if s.broker == nil {
		x.reason = "the role " + role.ARN + " names an upstream AWS role (tag " + iam.TagUpstreamRoleARN + ") but broker mode is off on this server: " +
			"it has no built-in issuer to sign the upstream token. Configure one (issuers: in the config file, or --issuer-url) and restart, or remove the tag."
		s.log.ErrorContext(ctx, "broker role refused: no issuer configured", "role", role.ARN)
		return nil, s.denied(x)
	}
	link, err := audit.NewEventID(s.rand)
	if err != nil {
		return nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	note.link = link
	endpoint, _ := iam.RoleTag(role, iam.TagUpstreamSTSEndpoint)
	req := &BrokerRequest{
		RequestID: r.RequestID, Time: r.Time, SourceIP: r.SourceIP, UserAgent: r.UserAgent, Region: r.Region, SharedEventID: link,
		Account: s.account, RoleName: role.Name, RoleARN: role.ARN, Token: x.token, ProviderARN: x.providerARN,
		UpstreamRoleARN: upstream, UpstreamEndpoint: endpoint,
		SessionName: x.sessionName, Policy: x.policyDoc, PolicyARNs: x.policyARNs,
		Tags: x.tags, TransitiveTagKeys: x.transitive, SourceIdentity: x.sourceIdentity,
	}
	if r.Params.Has("DurationSeconds") {
		req.DurationSeconds = x.duration
	}
	res, err := s.broker.Exchange(ctx, req)
	if err != nil {
		be, ok := errors.AsType[*BrokerError](err)
		if !ok {
			return nil, awsquery.Internal(awsquery.CodeInternalFailure, err)
		}
		note.outcome, note.endpoint, note.token = be.Outcome, be.Endpoint, be.Token
		note.upstreamRequestID, note.upstreamCode, note.upstreamMessage = be.UpstreamRequestID, be.UpstreamCode, be.UpstreamMessage
		x.reason, note.errorCode = be.Reason, be.Code
		msg := strings.TrimSpace(be.Message)
		if !strings.HasSuffix(msg, ".") {
			msg += "."
		}
		if enc, eerr := s.encodeExplanation(x, nil); eerr == nil {
			msg += " Encoded authorization failure message: " + enc
		}
		return nil, &awsquery.Error{Code: be.Code, Message: msg, Status: be.Status, Err: err}
	}
	note.outcome, note.endpoint, note.token, note.result = "success", res.Endpoint, &res.Token, res
	note.upstreamRequestID = res.UpstreamRequestID
	now := s.now().UTC()
	fallback := time.Duration(x.duration) * time.Second
	if err := s.rememberBrokered(ctx, res, role, now, fallback); err != nil {
		// The credentials work at the upstream; only GetCallerIdentity
		// sent to keyless will not know them.
		s.log.ErrorContext(ctx, "brokered session not stored: GetCallerIdentity at keyless will not know it", "access_key_id", res.AccessKeyID, "err", err)
	}
	s.touchRole(role.Name, now)
	return assumeResult{
		SubjectFromWebIdentityToken: res.SubjectFromWebIdentityToken,
		Audience:                    res.Audience,
		AssumedRoleUser:             xmlAssumedRoleUser{Arn: res.AssumedRoleARN, AssumedRoleID: res.AssumedRoleID},
		Credentials: xmlCredentials{
			SessionToken: res.SessionToken, SecretAccessKey: res.SecretAccessKey, AccessKeyID: res.AccessKeyID, Expiration: res.Expiration,
		},
		SourceIdentity:   res.SourceIdentity,
		PackedPolicySize: res.PackedPolicySize,
		Provider:         res.Provider,
	}, nil
}
