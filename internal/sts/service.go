// Package sts owns keyless's Security Token Service: AssumeRoleWithWebIdentity
// (real OIDC validation through package oidc, trust evaluation through
// package policy, short-lived credentials), GetCallerIdentity,
// DecodeAuthorizationMessage and GetAccessKeyInfo, the sealed stateless
// session tokens any node can verify, and the evaluation of permission
// policies for calls made with session credentials.
package sts

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store"
)

// Options configures the STS.
type Options struct {
	Store     store.Store
	Account   string
	Region    string
	Ring      *RingManager
	Validator *oidc.Validator
	Now       func() time.Time
	Rand      io.Reader
	Logger    *slog.Logger
}

// Service implements the STS API.
type Service struct {
	st        store.Store
	account   string
	region    string
	ring      *RingManager
	validator *oidc.Validator
	now       func() time.Time
	rand      io.Reader
	log       *slog.Logger

	policies *policyCache

	usedMu sync.Mutex
	used   map[string]time.Time // role name → last RoleLastUsed write

	// broker exchanges allowed requests of broker roles (nil: broker mode
	// off); brokeredSessions caches what GetCallerIdentity needs about
	// the sessions it brokered (brokered.go).
	broker           Broker
	brokeredSessions brokeredCache
}

// New returns a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		st: o.Store, account: o.Account, region: o.Region, ring: o.Ring, validator: o.Validator,
		now: o.Now, rand: o.Rand, log: o.Logger,
		policies: newPolicyCache(4096), used: map[string]time.Time{},
	}
}

// Actions lists the STS operations with their input shapes from the AWS
// model. None has a resource type in the Service Authorization Reference,
// so each is authorized as itself on "*" (Target nil).
func (s *Service) Actions() []awsquery.Action {
	shapes := inputShapes()
	return []awsquery.Action{
		{Name: "AssumeRoleWithWebIdentity", Service: "sts", Unsigned: true, ReadOnly: true, Handle: s.assumeRoleWithWebIdentity, Input: shapes["AssumeRoleWithWebIdentity"]},
		{Name: "GetCallerIdentity", Service: "sts", ReadOnly: true, Handle: s.getCallerIdentity, Input: shapes["GetCallerIdentity"]},
		{Name: "DecodeAuthorizationMessage", Service: "sts", ReadOnly: true, Handle: s.decodeAuthorizationMessage, Input: shapes["DecodeAuthorizationMessage"]},
		{Name: "GetAccessKeyInfo", Service: "sts", ReadOnly: true, Handle: s.getAccessKeyInfo, Input: shapes["GetAccessKeyInfo"]},
	}
}

type callerIdentityResult struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

// getCallerIdentity needs no permission (AWS: it works even with an
// explicit deny).
func (s *Service) getCallerIdentity(ctx context.Context, r *awsquery.Request) (any, error) {
	c := r.Caller
	return callerIdentityResult{Arn: c.ARN, UserID: c.UserID, Account: c.Account}, nil
}

type accessKeyInfoResult struct {
	Account string `xml:"Account"`
}

// getAccessKeyInfo decodes the account from an access key id, as AWS does
// for its own key ids.
func (s *Service) getAccessKeyInfo(ctx context.Context, r *awsquery.Request) (any, error) {
	var v awsquery.Validator
	id, ok := v.Required(r.Params, "AccessKeyId")
	if ok {
		v.Length("AccessKeyId", id, 16, 128)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	acct, ok := iam.AccountFromID(id)
	if !ok {
		return nil, awsquery.Errorf(awsquery.CodeValidationError, "Access key id %s is not of the form AKIA… or ASIA….", id)
	}
	return accessKeyInfoResult{Account: acct}, nil
}

// policyCache keeps compiled policies by document hash: parsing costs tens
// of microseconds, evaluating well under one.
type policyCache struct {
	mu  sync.Mutex
	m   map[[32]byte]*policy.Policy
	max int
}

func newPolicyCache(max int) *policyCache {
	return &policyCache{m: map[[32]byte]*policy.Policy{}, max: max}
}

func (c *policyCache) get(doc string, kind policy.Kind) (*policy.Policy, error) {
	h := sha256.Sum256(append([]byte{byte(kind)}, doc...))
	c.mu.Lock()
	p, ok := c.m[h]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := policy.ParseWithOptions(doc, kind, policy.Options{MaxSize: -1})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[h] = p
	c.mu.Unlock()
	return p, nil
}

var errNoSession = errors.New("sts: caller is not a session")
