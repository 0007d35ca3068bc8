package iam

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store"
)

// Long-term access keys: administrator keys and issuer-client keys. The
// secret is needed in clear to verify SigV4 (an HMAC keyed by it), so it is
// stored sealed with the master key, never hashed-only and never in clear.

// Access key kinds.
const (
	KindAdmin        = "admin"
	KindIssuerClient = "issuer-client"
)

var reUserName = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// NewSecretAccessKey returns a 40-character secret from [A-Za-z0-9+/], the
// shape of AWS secrets.
func NewSecretAccessKey(rand io.Reader) (string, error) {
	b := make([]byte, 30)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", fmt.Errorf("iam: random secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func secretAAD(id string) string { return "access-key-secret:" + id }

// KeyManager creates, lists and deletes long-term keys and resolves them
// for signature verification.
type KeyManager struct {
	st      store.Store
	master  *keyring.Master
	account string
	now     func() time.Time
	rand    io.Reader

	// bootstrap administrator from the environment, if any
	bootID, bootSecret string

	mu    sync.Mutex
	cache map[string]cachedKey
	ttl   time.Duration
}

type cachedKey struct {
	secret string
	caller awsquery.Caller
	until  time.Time
}

// KeyManagerOptions configures a KeyManager.
type KeyManagerOptions struct {
	Store   store.Store
	Master  *keyring.Master
	Account string
	Now     func() time.Time
	Rand    io.Reader
	// BootstrapAccessKeyID/Secret come from KEYLESS_ADMIN_ACCESS_KEY_ID and
	// KEYLESS_ADMIN_SECRET_ACCESS_KEY.
	BootstrapAccessKeyID     string
	BootstrapSecretAccessKey string
	// CacheTTL bounds how long a key deleted through another node or the
	// CLI may still verify here. Default 30 s.
	CacheTTL time.Duration
}

var reAccessKeyID = regexp.MustCompile(`^[\w]{16,128}$`)

// NewKeyManager validates the bootstrap key and returns a manager.
func NewKeyManager(o KeyManagerOptions) (*KeyManager, error) {
	if (o.BootstrapAccessKeyID == "") != (o.BootstrapSecretAccessKey == "") {
		return nil, errors.New("iam: set both KEYLESS_ADMIN_ACCESS_KEY_ID and KEYLESS_ADMIN_SECRET_ACCESS_KEY, or neither")
	}
	if o.BootstrapAccessKeyID != "" {
		if !reAccessKeyID.MatchString(o.BootstrapAccessKeyID) {
			return nil, errors.New("iam: KEYLESS_ADMIN_ACCESS_KEY_ID must be 16-128 letters, digits or underscores, like an AWS access key id")
		}
		if len(o.BootstrapSecretAccessKey) < 16 {
			return nil, errors.New("iam: KEYLESS_ADMIN_SECRET_ACCESS_KEY must be at least 16 characters")
		}
	}
	ttl := o.CacheTTL
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	return &KeyManager{
		st: o.Store, master: o.Master, account: o.Account, now: o.Now, rand: o.Rand,
		bootID: o.BootstrapAccessKeyID, bootSecret: o.BootstrapSecretAccessKey,
		cache: map[string]cachedKey{}, ttl: ttl,
	}, nil
}

// CreatedKey is returned once at creation: the only time the secret is
// shown.
type CreatedKey struct {
	AccessKeyID     string
	SecretAccessKey string
	UserName        string
	Kind            string
	Scope           string
	CreateDate      time.Time
}

// Create makes a new long-term key. name is the IAM-style user name shown
// in ARNs (arn:aws:iam::ACCT:user/NAME); scope is the issuer id for
// issuer-client keys.
func (m *KeyManager) Create(ctx context.Context, name, kind, scope string) (*CreatedKey, error) {
	if !reUserName.MatchString(name) {
		return nil, fmt.Errorf("iam: key name %q must be 1-64 characters of letters, digits and _+=,.@-", name)
	}
	switch kind {
	case KindAdmin:
		if scope != "" {
			return nil, errors.New("iam: administrator keys have no scope")
		}
	case KindIssuerClient:
		if scope == "" {
			return nil, errors.New("iam: an issuer-client key needs the issuer id it may mint for")
		}
	default:
		return nil, fmt.Errorf("iam: unknown key kind %q", kind)
	}
	id, err := NewID(m.rand, PrefixAccessKey, m.account, 16)
	if err != nil {
		return nil, err
	}
	secret, err := NewSecretAccessKey(m.rand)
	if err != nil {
		return nil, err
	}
	sealed, err := m.master.Seal(m.rand, []byte(secret), secretAAD(id))
	if err != nil {
		return nil, err
	}
	now := m.now().UTC().Truncate(time.Second)
	k := &store.AccessKey{AccessKeyID: id, SealedSecret: sealed, Kind: kind, Scope: scope, Description: name, CreateDate: now}
	if err := m.st.AccessKeys().Create(ctx, k); err != nil {
		return nil, fmt.Errorf("iam: store key: %w", err)
	}
	return &CreatedKey{AccessKeyID: id, SecretAccessKey: secret, UserName: name, Kind: kind, Scope: scope, CreateDate: now}, nil
}

// List returns the stored keys (never their secrets).
func (m *KeyManager) List(ctx context.Context) ([]*store.AccessKey, error) {
	ks, err := m.st.AccessKeys().List(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		k.SealedSecret = nil
	}
	return ks, nil
}

// Delete removes a key and forgets it here at once.
func (m *KeyManager) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	delete(m.cache, id)
	m.mu.Unlock()
	return m.st.AccessKeys().Delete(ctx, id)
}

// ErrUnknownKey is returned by Resolve for an access key id that does not
// exist (the caller answers InvalidClientTokenId).
var ErrUnknownKey = errors.New("iam: unknown access key")

// Resolve returns the secret and caller identity of a long-term key.
func (m *KeyManager) Resolve(ctx context.Context, accessKeyID string) (string, *awsquery.Caller, error) {
	if m.bootID != "" && subtle.ConstantTimeCompare([]byte(accessKeyID), []byte(m.bootID)) == 1 {
		return m.bootSecret, &awsquery.Caller{
			Kind: awsquery.CallerAdmin, AccessKeyID: accessKeyID, Account: m.account,
			ARN: "arn:aws:iam::" + m.account + ":root", UserID: m.account, UserName: "root",
		}, nil
	}
	now := m.now()
	m.mu.Lock()
	c, ok := m.cache[accessKeyID]
	m.mu.Unlock()
	if ok && now.Before(c.until) {
		caller := c.caller
		return c.secret, &caller, nil
	}
	k, err := m.st.AccessKeys().Get(ctx, accessKeyID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, ErrUnknownKey
	}
	if err != nil {
		return "", nil, err
	}
	secret, err := m.master.Open(k.SealedSecret, secretAAD(k.AccessKeyID))
	if err != nil {
		return "", nil, fmt.Errorf("iam: unseal key %s: %w", k.AccessKeyID, err)
	}
	caller := awsquery.Caller{
		Kind: awsquery.CallerAdmin, AccessKeyID: k.AccessKeyID, Account: m.account,
		ARN: "arn:aws:iam::" + m.account + ":user/" + k.Description, UserID: userIDFor(m.account, k.AccessKeyID), UserName: k.Description,
	}
	if k.Kind == KindIssuerClient {
		caller.Kind = awsquery.CallerIssuerClient
		caller.Scope = k.Scope
	}
	m.mu.Lock()
	if len(m.cache) > 10000 {
		clear(m.cache)
	}
	m.cache[accessKeyID] = cachedKey{secret: string(secret), caller: caller, until: now.Add(m.ttl)}
	m.mu.Unlock()
	return string(secret), &caller, nil
}

// userIDFor derives a stable AIDA… user id from the key id (a key is its
// own user in keyless).
func userIDFor(account, accessKeyID string) string {
	sum := sha256.Sum256([]byte("keyless-user:" + accessKeyID))
	id, err := NewID(bytes.NewReader(sum[:]), PrefixUser, account, 17)
	if err != nil {
		return PrefixUser + idEncoding.EncodeToString(sum[:])[:17]
	}
	return id
}
