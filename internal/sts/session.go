package sts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/sigv4"
)

// Session is what a session token carries: everything needed to verify a
// request signed with the session's credentials and to evaluate it, with
// no store lookup. It is sealed (AES-256-GCM) with the session key ring.
type Session struct {
	AccessKeyID     string            `json:"k"`
	SecretAccessKey string            `json:"s"`
	Account         string            `json:"a"`
	RoleARN         string            `json:"r"` // with its path
	RoleID          string            `json:"ri"`
	SessionName     string            `json:"n"`
	Issued          int64             `json:"i"` // unix seconds
	Expires         int64             `json:"e"`
	Provider        string            `json:"p"` // OIDC provider ARN
	Subject         string            `json:"sub"`
	Audience        string            `json:"aud"`
	SourceIdentity  string            `json:"si,omitempty"`
	Policy          string            `json:"pol,omitempty"` // inline session policy
	PolicyARNs      []string          `json:"pa,omitempty"`
	Tags            map[string]string `json:"t,omitempty"`
	TransitiveTags  []string          `json:"tt,omitempty"`
	// TokenSHA256 links the session to the ID token it came from in the
	// audit trail (never the token itself).
	TokenSHA256 string `json:"th,omitempty"`
}

// RoleName is the role's name (the last segment of its ARN).
func (s *Session) RoleName() string { return s.RoleARN[strings.LastIndexByte(s.RoleARN, '/')+1:] }

// AssumedRoleARN is arn:aws:sts::ACCT:assumed-role/ROLE/SESSION (no path,
// as AWS).
func (s *Session) AssumedRoleARN() string {
	return "arn:aws:sts::" + s.Account + ":assumed-role/" + s.RoleName() + "/" + s.SessionName
}

// AssumedRoleID is ROLEID:SESSION.
func (s *Session) AssumedRoleID() string { return s.RoleID + ":" + s.SessionName }

// tokenPrefix versions the token format.
const tokenPrefix = "KLS1"

var sessionAAD = []byte("keyless-session-token-v1")

// sealSession makes the session token.
func (svc *Service) sealSession(s *Session) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	sealed, err := svc.ring.Ring().Seal(svc.rand, b, sessionAAD)
	if err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// errBadToken is the internal cause for a token that does not open.
var errBadToken = errors.New("sts: session token does not verify")

// openSession verifies a session token. It does not check expiry.
func (svc *Service) openSession(ctx context.Context, token string) (*Session, error) {
	body, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || len(body) > 16<<10 {
		return nil, errBadToken
	}
	sealed, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, errBadToken
	}
	pt, err := svc.ring.open(ctx, sealed, sessionAAD)
	if err != nil {
		if errors.Is(err, keyring.ErrUnknownKey) || errors.Is(err, keyring.ErrOpen) {
			return nil, fmt.Errorf("%w: %w", errBadToken, err)
		}
		return nil, err
	}
	var s Session
	if err := json.Unmarshal(pt, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadToken, err)
	}
	return &s, nil
}

// ResolveSession turns session credentials into the secret to verify the
// signature with and the caller (server.SessionResolver).
func (svc *Service) ResolveSession(ctx context.Context, accessKeyID, token string) (string, *awsquery.Caller, error) {
	if svc.brokeredSessions.get(accessKeyID) != nil {
		secret, caller, _, err := svc.resolveBrokered(ctx, accessKeyID, token)
		return secret, caller, err
	}
	s, err := svc.openSession(ctx, token)
	if err != nil {
		// Not a keyless session token: upstream credentials keyless
		// brokered (brokered.go), or nothing.
		if secret, caller, found, berr := svc.resolveBrokered(ctx, accessKeyID, token); found {
			return secret, caller, berr
		}
		return "", nil, sigv4.InvalidClientTokenID(err)
	}
	if s.AccessKeyID != accessKeyID || s.Account != svc.account {
		return "", nil, sigv4.InvalidClientTokenID(errors.New("session token belongs to another access key"))
	}
	if !svc.now().Before(time.Unix(s.Expires, 0)) {
		return "", nil, sigv4.ExpiredToken(fmt.Errorf("session expired at %s", time.Unix(s.Expires, 0).UTC().Format(time.RFC3339)))
	}
	return s.SecretAccessKey, &awsquery.Caller{
		Kind: awsquery.CallerSession, AccessKeyID: s.AccessKeyID, Account: s.Account,
		ARN: s.AssumedRoleARN(), UserID: s.AssumedRoleID(), UserName: s.SessionName, Session: s,
	}, nil
}
