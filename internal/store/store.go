// Package store owns keyless's durable state behind a small interface per
// aggregate (OIDC providers, roles with their inline policies and
// attachments, managed policies, access keys, key material, metadata).
//
// Two implementations follow this interface: sqlite (the embedded default,
// pure Go, WAL) and, for several stateless nodes, PostgreSQL. Both must pass
// the conformance suite in storetest. Business rules (AWS limits, name
// syntax) live in the domain packages; the store guarantees atomicity:
// every Update runs its mutator inside one transaction, and checks that must
// see a consistent view (quotas, conflicts) take a callback or a limit run in
// that same transaction.
//
// Secrets never reach this package in clear: callers pass sealed bytes
// (see package keyring).
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors every backend maps its driver errors onto.
var (
	ErrNotFound      = errors.New("store: not found")
	ErrAlreadyExists = errors.New("store: already exists")
	ErrConflict      = errors.New("store: still referenced")
	ErrLimitExceeded = errors.New("store: limit exceeded")
	// ErrBadMarker is returned by List for a marker List did not produce.
	ErrBadMarker = errors.New("store: invalid marker")
)

// Store is the whole state of one keyless deployment.
type Store interface {
	Meta() MetaStore
	Providers() ProviderStore
	Roles() RoleStore
	Policies() PolicyStore
	AccessKeys() AccessKeyStore
	KeyMaterial() KeyMaterialStore
	// Ping reports whether the backend can serve (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// MetaStore holds small named values (account id, schema facts).
type MetaStore interface {
	Get(ctx context.Context, key string) (string, error)
	// PutIfAbsent stores value unless key exists; it returns the stored
	// value either way, so concurrent first starts agree.
	PutIfAbsent(ctx context.Context, key, value string) (string, error)
	Put(ctx context.Context, key, value string) error
}

// Tag is an IAM tag.
type Tag struct {
	Key   string
	Value string
}

// Provider is an IAM OIDC identity provider.
type Provider struct {
	ARN         string
	URL         string // as registered, with scheme (https://host/path)
	ClientIDs   []string
	Thumbprints []string
	Tags        []Tag
	CreateDate  time.Time
}

// ProviderStore keeps OIDC providers, keyed by ARN.
type ProviderStore interface {
	// Create fails with ErrAlreadyExists, or ErrLimitExceeded when limit > 0
	// providers already exist.
	Create(ctx context.Context, p *Provider, limit int) error
	Get(ctx context.Context, arn string) (*Provider, error)
	List(ctx context.Context) ([]*Provider, error)
	// Update applies fn to the stored provider atomically; an error from fn
	// aborts without writing.
	Update(ctx context.Context, arn string, fn func(*Provider) error) error
	Delete(ctx context.Context, arn string) error
}

// Role is an IAM role.
type Role struct {
	RoleID              string
	Name                string
	Path                string
	ARN                 string
	TrustPolicy         string // as given by the user
	Description         string
	MaxSessionDuration  int
	PermissionsBoundary string // policy ARN or ""
	Tags                []Tag
	CreateDate          time.Time
	LastUsedDate        time.Time // zero when never used
	LastUsedRegion      string
}

// InlinePolicy is a policy embedded in a role.
type InlinePolicy struct {
	Name     string
	Document string
}

// ListOptions pages through a listing. Marker is opaque to callers.
type ListOptions struct {
	PathPrefix string
	Marker     string
	MaxItems   int
	// OnlyAttached lists only managed policies attached to some role.
	OnlyAttached bool
}

// RoleStore keeps roles, their inline policies and their attachments.
// Role names are unique case-insensitively (as in IAM); Get accepts any case.
type RoleStore interface {
	Create(ctx context.Context, r *Role, limit int) error
	Get(ctx context.Context, name string) (*Role, error)
	GetByID(ctx context.Context, roleID string) (*Role, error)
	// List returns roles ordered by name with the next marker ("" at the end).
	List(ctx context.Context, opts ListOptions) ([]*Role, string, error)
	Update(ctx context.Context, name string, fn func(*Role) error) error
	// Delete fails with ErrConflict while inline or attached policies remain.
	Delete(ctx context.Context, name string) error

	// PutInlinePolicy creates or replaces a policy; check sees every inline
	// policy the role would then have and may veto (aggregate size quota).
	PutInlinePolicy(ctx context.Context, role string, p InlinePolicy, check func(all []InlinePolicy) error) error
	GetInlinePolicy(ctx context.Context, role, name string) (*InlinePolicy, error)
	// ListInlinePolicies returns the role's inline policies ordered by name.
	ListInlinePolicies(ctx context.Context, role string) ([]InlinePolicy, error)
	DeleteInlinePolicy(ctx context.Context, role, name string) error

	// AttachPolicy attaches a managed policy (which must exist: ErrNotFound)
	// unless limit attachments already exist (ErrLimitExceeded). Attaching
	// twice is a no-op.
	AttachPolicy(ctx context.Context, role, policyARN string, limit int) error
	DetachPolicy(ctx context.Context, role, policyARN string) error
	// ListAttachedPolicies returns attached policy ARNs ordered by ARN.
	ListAttachedPolicies(ctx context.Context, role string) ([]string, error)
}

// PolicyVersion is one version of a managed policy.
type PolicyVersion struct {
	VersionID  string // v1, v2, ...
	Document   string
	IsDefault  bool
	CreateDate time.Time
}

// ManagedPolicy is a customer-managed IAM policy.
type ManagedPolicy struct {
	ARN              string
	PolicyID         string
	Name             string
	Path             string
	Description      string
	DefaultVersionID string
	Versions         []PolicyVersion
	Tags             []Tag
	CreateDate       time.Time
	UpdateDate       time.Time
	AttachmentCount  int // maintained by the store
}

// PolicyStore keeps managed policies, keyed by ARN.
type PolicyStore interface {
	Create(ctx context.Context, p *ManagedPolicy, limit int) error
	Get(ctx context.Context, arn string) (*ManagedPolicy, error)
	List(ctx context.Context, opts ListOptions) ([]*ManagedPolicy, string, error)
	Update(ctx context.Context, arn string, fn func(*ManagedPolicy) error) error
	// Delete fails with ErrConflict while the policy is attached.
	Delete(ctx context.Context, arn string) error
}

// AccessKey is a long-term key pair: an administrator key or an issuer
// client key. The secret is sealed by the caller.
type AccessKey struct {
	AccessKeyID  string
	SealedSecret []byte
	Kind         string // "admin" or "issuer-client"
	Scope        string // for issuer clients: the issuer they may mint for
	Description  string
	CreateDate   time.Time
	LastUsedDate time.Time
}

// AccessKeyStore keeps long-term access keys.
type AccessKeyStore interface {
	Create(ctx context.Context, k *AccessKey) error
	Get(ctx context.Context, accessKeyID string) (*AccessKey, error)
	List(ctx context.Context) ([]*AccessKey, error)
	Delete(ctx context.Context, accessKeyID string) error
	// Touch records a use, at most once per minute per key to spare writes.
	Touch(ctx context.Context, accessKeyID string, at time.Time) error
}

// KeyMaterial is a sealed key: an issuer signing key, a session-token
// sealing key, an audit digest key. Purpose groups keys (for example
// "issuer:<issuer-id>", "session-seal", "audit-digest"); the lifecycle
// times drive rotation and are interpreted by the owner of the purpose.
type KeyMaterial struct {
	Purpose    string
	ID         string
	Algorithm  string
	Sealed     []byte // private/secret part, sealed with the master key
	Public     []byte // public part (PKIX DER or JWK JSON), may be nil
	CreateDate time.Time
	ActivateAt time.Time // starts being used for new signatures/seals
	RetireAt   time.Time // zero: not scheduled; stops being used for new work
	ExpireAt   time.Time // zero: not scheduled; dropped from verification sets
}

// KeyMaterialStore keeps sealed keys.
type KeyMaterialStore interface {
	Create(ctx context.Context, k *KeyMaterial) error
	// Get reads one key without locking it (ErrNotFound when absent).
	Get(ctx context.Context, purpose, id string) (*KeyMaterial, error)
	List(ctx context.Context, purpose string) ([]*KeyMaterial, error)
	Update(ctx context.Context, purpose, id string, fn func(*KeyMaterial) error) error
	Delete(ctx context.Context, purpose, id string) error
	// Rotate runs fn with every key of purpose inside one transaction (fn
	// returns keys to create and ids to update); concurrent rotations on
	// several nodes serialise here, and fn sees the winner's keys.
	Rotate(ctx context.Context, purpose string, fn func(existing []*KeyMaterial) (create []*KeyMaterial, update []*KeyMaterial, err error)) error
}
