package sts

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/sigv4"
	"github.com/keylessci/keyless/internal/store"
)

// GetCallerIdentity for brokered sessions. A client whose
// AWS_ENDPOINT_URL_STS points at keyless (configure-aws-credentials, the
// AWS CLI) sends GetCallerIdentity there too, signed with the upstream
// credentials keyless returned. keyless answers it for the sessions it
// brokered: it keeps, for each session's lifetime, the access key id, the
// secret (to verify the signature), the SHA-256 of the session token and
// the upstream identity, sealed with the session key ring, in the store
// (KeyMaterial purpose "broker-session", id = the access key id), so every
// node can answer; expired records are purged. The client's signed request
// is never forwarded anywhere.

const (
	brokeredPurpose = "broker-session"
	brokeredAlg     = "sealed-broker-session-v1"
	// brokeredCacheMax bounds this node's cache of brokered sessions.
	brokeredCacheMax = 10000
)

// reAccessKeyID is the form of an AWS temporary access key id.
var reAccessKeyID = regexp.MustCompile(`^ASIA[A-Z0-9]{12,124}$`)

// BrokeredSession is an upstream session keyless brokered, as kept for
// GetCallerIdentity. Callers authenticated with it may call nothing else at
// keyless.
type BrokeredSession struct {
	AccessKeyID     string `json:"k"`
	SecretAccessKey string `json:"s"`
	TokenSHA256     string `json:"th"` // of the upstream session token
	ARN             string `json:"arn"`
	UserID          string `json:"uid"`
	Account         string `json:"acct"`
	Issued          int64  `json:"i"`
	Expires         int64  `json:"e"`
	// RoleARN is the keyless role the session was brokered for.
	RoleARN string `json:"r"`
}

// SessionName is the last segment of the assumed-role ARN.
func (b *BrokeredSession) SessionName() string { return b.ARN[strings.LastIndexByte(b.ARN, '/')+1:] }

// AuditIdentity is the userIdentity of a call signed with the session.
func (b *BrokeredSession) AuditIdentity() *audit.UserIdentity {
	return &audit.UserIdentity{Type: audit.IdentityAssumedRole, PrincipalID: b.UserID, ARN: b.ARN, AccountID: b.Account, AccessKeyID: b.AccessKeyID}
}

func brokeredAAD(accessKeyID string) []byte {
	return []byte("keyless-broker-session-v1:" + accessKeyID)
}

// brokeredCache is this node's copy of the brokered sessions it has seen.
// Every session-signed call looks here first, so reads take no lock.
type brokeredCache struct {
	m sync.Map // access key id → *BrokeredSession
	n atomic.Int64
}

func (c *brokeredCache) get(id string) *BrokeredSession {
	if v, ok := c.m.Load(id); ok {
		return v.(*BrokeredSession)
	}
	return nil
}

func (c *brokeredCache) put(b *BrokeredSession) {
	if c.n.Load() >= brokeredCacheMax {
		// Bounded: start over (the store still has every session).
		c.m.Clear()
		c.n.Store(0)
	}
	if _, loaded := c.m.Swap(b.AccessKeyID, b); !loaded {
		c.n.Add(1)
	}
}

func (c *brokeredCache) evictExpired(now int64) {
	c.m.Range(func(k, v any) bool {
		if now >= v.(*BrokeredSession).Expires {
			if _, ok := c.m.LoadAndDelete(k); ok {
				c.n.Add(-1)
			}
		}
		return true
	})
}

// accountOfAssumedRole is the account field of arn:PARTITION:sts::ACCT:assumed-role/….
func accountOfAssumedRole(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// rememberBrokered keeps what GetCallerIdentity needs about a brokered
// session, in the store and in this node's cache. fallback is the session's
// lifetime when the upstream's Expiration does not parse.
func (s *Service) rememberBrokered(ctx context.Context, res *BrokerResult, role *store.Role, now time.Time, fallback time.Duration) error {
	if !reAccessKeyID.MatchString(res.AccessKeyID) {
		return fmt.Errorf("sts: upstream access key id %q is not ASIA…", res.AccessKeyID)
	}
	exp, err := time.Parse(time.RFC3339, res.Expiration)
	if err != nil {
		exp = now.Add(fallback)
	}
	b := &BrokeredSession{
		AccessKeyID: res.AccessKeyID, SecretAccessKey: res.SecretAccessKey, TokenSHA256: audit.SHA256Hex(res.SessionToken),
		ARN: res.AssumedRoleARN, UserID: res.AssumedRoleID, Account: accountOfAssumedRole(res.AssumedRoleARN),
		Issued: now.Unix(), Expires: exp.Unix(), RoleARN: role.ARN,
	}
	s.brokeredSessions.put(b)
	pt, err := json.Marshal(b)
	if err != nil {
		return err
	}
	sealed, err := s.ring.Ring().Seal(s.rand, pt, brokeredAAD(b.AccessKeyID))
	clear(pt)
	if err != nil {
		return err
	}
	doc := &store.KeyMaterial{
		Purpose: brokeredPurpose, ID: b.AccessKeyID, Algorithm: brokeredAlg, Sealed: sealed,
		CreateDate: now, ActivateAt: now, ExpireAt: exp.UTC(),
	}
	err = s.st.KeyMaterial().Create(ctx, doc)
	if errors.Is(err, store.ErrAlreadyExists) {
		// An upstream reusing an access key id (a test double): the newest
		// session wins.
		err = s.st.KeyMaterial().Update(ctx, brokeredPurpose, b.AccessKeyID, func(k *store.KeyMaterial) error {
			*k = *doc
			return nil
		})
	}
	return err
}

// lookupBrokered finds a brokered session by access key id: in this node's
// cache, else in the store (another node brokered it). nil, nil: none.
func (s *Service) lookupBrokered(ctx context.Context, accessKeyID string) (*BrokeredSession, error) {
	if b := s.brokeredSessions.get(accessKeyID); b != nil {
		return b, nil
	}
	k, err := s.st.KeyMaterial().Get(ctx, brokeredPurpose, accessKeyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sealed := k.Sealed
	pt, err := s.ring.open(ctx, sealed, brokeredAAD(accessKeyID))
	if err != nil {
		return nil, fmt.Errorf("sts: open brokered session %s: %w", accessKeyID, err)
	}
	var b BrokeredSession
	if err := json.Unmarshal(pt, &b); err != nil || b.AccessKeyID != accessKeyID {
		return nil, fmt.Errorf("sts: brokered session %s does not decode", accessKeyID)
	}
	s.brokeredSessions.put(&b)
	return &b, nil
}

// resolveBrokered authenticates credentials keyless brokered: found is
// false when the access key id is not one of them.
func (s *Service) resolveBrokered(ctx context.Context, accessKeyID, token string) (secret string, caller *awsquery.Caller, found bool, err error) {
	if !reAccessKeyID.MatchString(accessKeyID) {
		return "", nil, false, nil
	}
	b, err := s.lookupBrokered(ctx, accessKeyID)
	if err != nil {
		return "", nil, true, awsquery.Internal(awsquery.CodeInternalFailure, err)
	}
	if b == nil {
		return "", nil, false, nil
	}
	if subtle.ConstantTimeCompare([]byte(audit.SHA256Hex(token)), []byte(b.TokenSHA256)) != 1 {
		return "", nil, true, sigv4.InvalidClientTokenID(errors.New("session token does not belong to the brokered access key"))
	}
	if !s.now().Before(time.Unix(b.Expires, 0)) {
		return "", nil, true, sigv4.ExpiredToken(fmt.Errorf("brokered session expired at %s", time.Unix(b.Expires, 0).UTC().Format(time.RFC3339)))
	}
	return b.SecretAccessKey, &awsquery.Caller{
		Kind: awsquery.CallerSession, AccessKeyID: b.AccessKeyID, Account: b.Account,
		ARN: b.ARN, UserID: b.UserID, UserName: b.SessionName(), Session: b,
	}, true, nil
}

// PurgeBrokered deletes the brokered sessions that have expired, from the
// store and this node's cache; it returns how many records it deleted.
func (s *Service) PurgeBrokered(ctx context.Context) (int, error) {
	now := s.now()
	s.brokeredSessions.evictExpired(now.Unix())
	ks, err := s.st.KeyMaterial().List(ctx, brokeredPurpose)
	if err != nil {
		return 0, fmt.Errorf("sts: brokered sessions: %w", err)
	}
	n := 0
	for _, k := range ks {
		if k.ExpireAt.IsZero() || now.Before(k.ExpireAt) {
			continue
		}
		if err := s.st.KeyMaterial().Delete(ctx, brokeredPurpose, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, fmt.Errorf("sts: purge brokered session: %w", err)
		}
		n++
	}
	return n, nil
}

// RunBrokeredPurge purges expired brokered sessions every interval until
// ctx ends.
func (s *Service) RunBrokeredPurge(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.PurgeBrokered(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("purging expired brokered sessions failed", "err", err)
			} else if n > 0 {
				s.log.Debug("purged expired brokered sessions", "count", n)
			}
		}
	}
}
