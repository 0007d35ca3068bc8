package server

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store"
	"github.com/keylessci/keyless/internal/store/sqlite"
	"github.com/keylessci/keyless/internal/sts"
)

// The audit trail lives in DATA/audit; its digest signing key is an RSA key
// sealed in the store, and the newest digest's signature (the chain's
// anchor, which CloudTrail keeps in S3 metadata) is kept in the store too,
// outside the log folder. The head and the trail's seal state are
// authenticated with a MAC key derived from the master key, so neither a
// rewritten head row nor a rewritten trail file goes unnoticed by someone
// who lacks the master key (see package audit, auth.go).

const (
	auditKeyPurpose = "audit-digest"
	auditHeadKey    = "audit-head"
	// auditMACPurpose derives the trail's MAC key from the master key.
	auditMACPurpose = "audit-trail-mac"
)

// AuditMACKey is the trail's MAC key (audit.Options.MACKey), derived from
// the master key.
func AuditMACKey(master *keyring.Master) []byte { return master.DeriveKey(auditMACPurpose) }

// AuditDir is the trail directory of a data dir.
func AuditDir(dataDir string) string { return filepath.Join(dataDir, "audit") }

func auditKeyAAD(id string) string { return "audit-digest-key:" + id }

// auditSigningKey returns the digest signing key, creating it on first use.
func auditSigningKey(ctx context.Context, st store.Store, master *keyring.Master, rnd io.Reader, now time.Time) (audit.SigningKey, error) {
	var key *rsa.PrivateKey
	err := st.KeyMaterial().Rotate(ctx, auditKeyPurpose, func(existing []*store.KeyMaterial) ([]*store.KeyMaterial, []*store.KeyMaterial, error) {
		for _, k := range existing {
			if k.RetireAt.IsZero() {
				der, err := master.Open(k.Sealed, auditKeyAAD(k.ID))
				if err != nil {
					return nil, nil, fmt.Errorf("unseal audit key: %w", err)
				}
				pk, err := x509.ParsePKCS8PrivateKey(der)
				if err != nil {
					return nil, nil, fmt.Errorf("audit key: %w", err)
				}
				rk, ok := pk.(*rsa.PrivateKey)
				if !ok {
					return nil, nil, errors.New("audit key is not RSA")
				}
				key = rk
				return nil, nil, nil
			}
		}
		rk, err := rsa.GenerateKey(rnd, 2048)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(rk)
		if err != nil {
			return nil, nil, err
		}
		pub, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
		if err != nil {
			return nil, nil, err
		}
		id := audit.Fingerprint(&rk.PublicKey)
		sealed, err := master.Seal(rnd, der, auditKeyAAD(id))
		if err != nil {
			return nil, nil, err
		}
		key = rk
		return []*store.KeyMaterial{{ID: id, Algorithm: "SHA256withRSA", Sealed: sealed, Public: pub, CreateDate: now, ActivateAt: now}}, nil, nil
	})
	if err != nil {
		return audit.SigningKey{}, fmt.Errorf("audit signing key: %w", err)
	}
	return audit.NewSigningKey(key)
}

// AuditPublicKeys returns every digest public key of a store, by
// fingerprint, for verification.
func AuditPublicKeys(ctx context.Context, st store.Store) (map[string]*rsa.PublicKey, error) {
	ks, err := st.KeyMaterial().List(ctx, auditKeyPurpose)
	if err != nil {
		return nil, err
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range ks {
		pk, err := x509.ParsePKIXPublicKey(k.Public)
		if err != nil {
			return nil, fmt.Errorf("audit public key %s: %w", k.ID, err)
		}
		rk, ok := pk.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("audit public key %s is not RSA", k.ID)
		}
		out[audit.Fingerprint(rk)] = rk
	}
	return out, nil
}

// storeHead keeps the newest digest head in the store's metadata.
type storeHead struct{ st store.Store }

func (h storeHead) Load(ctx context.Context) (audit.Head, error) {
	v, err := h.st.Meta().Get(ctx, auditHeadKey)
	if errors.Is(err, store.ErrNotFound) || err == nil && v == "" {
		// "" is what ResetAuditHead leaves (the store has no delete).
		return audit.Head{}, audit.ErrNoHead
	}
	if err != nil {
		return audit.Head{}, err
	}
	var head audit.Head
	if err := json.Unmarshal([]byte(v), &head); err != nil {
		return audit.Head{}, fmt.Errorf("audit head: %w", err)
	}
	return head, nil
}

func (h storeHead) Save(ctx context.Context, head audit.Head) error {
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}
	return h.st.Meta().Put(ctx, auditHeadKey, string(b))
}

// AuditHead returns the head kept in a store (nil when none yet).
func AuditHead(ctx context.Context, st store.Store) (*audit.Head, error) {
	h, err := storeHead{st}.Load(ctx)
	if errors.Is(err, audit.ErrNoHead) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// auditRecorder turns finished API calls into CloudTrail events.
type auditRecorder struct {
	b       *audit.Builder
	rec     audit.Recorder
	account string
	// shed reports whether the trail's disk use is above its shed
	// threshold; the events of calls refused before authentication are then
	// only counted, through unrecorded (flood.go).
	shed       func() bool
	unrecorded func(r *awsquery.Request, action string)
}

func (a *auditRecorder) StartCall(ctx context.Context, call *Call) (audit.Pending, error) {
	if a.shedUntrusted(call) {
		return donePending{}, nil
	}
	r := call.Request
	c := audit.Call{
		Time: r.Time, Source: call.Action.Service + ".amazonaws.com", Name: call.Action.Name, Region: r.Region,
		SourceIP: r.SourceIP, UserAgent: r.UserAgent, RequestID: r.RequestID, ReadOnly: call.Action.ReadOnly,
		AdditionalEventData: r.Note.Additional,
	}
	if call.Err != nil {
		c.ErrorCode, c.ErrorMessage = call.Err.Code, call.Err.Message
	}
	for _, res := range r.Note.Resources {
		c.Resources = append(c.Resources, audit.Resource{ARN: res.ARN, AccountID: res.AccountID, Type: res.Type})
	}
	var (
		ev  *audit.Event
		err error
	)
	if x, ok := r.Note.Exchange.(*audit.Exchange); ok {
		ev, err = a.b.WebIdentityExchange(c, *x)
	} else {
		c.Identity = a.identity(r.Caller)
		c.Untrusted = untrustedCall(call)
		c.RequestParameters = r.Note.RequestParameters
		if c.RequestParameters == nil && c.Untrusted {
			c.RequestParameters = untrustedParameters(r.Params)
		} else if c.RequestParameters == nil {
			c.RequestParameters = requestParameters(r.Params)
		}
		if m, ok := r.Note.ResponseElements.(map[string]any); ok {
			c.ResponseElements = m
		}
		ev, err = a.b.APICall(c)
	}
	if err != nil {
		return nil, err
	}
	if call.Durable {
		return audit.Start(ctx, a.rec, ev, audit.Durable())
	}
	return audit.Start(ctx, a.rec, ev)
}

func (a *auditRecorder) StartEvent(ctx context.Context, c audit.Call, durable bool) (audit.Pending, error) {
	ev, err := a.b.APICall(c)
	if err != nil {
		return nil, err
	}
	if durable {
		return audit.Start(ctx, a.rec, ev, audit.Durable())
	}
	return audit.Start(ctx, a.rec, ev)
}

// identity is the userIdentity of a signed call's caller.
func (a *auditRecorder) identity(c *awsquery.Caller) *audit.UserIdentity {
	if c == nil {
		return nil
	}
	if b, ok := c.Session.(*sts.BrokeredSession); ok {
		return b.AuditIdentity()
	}
	if s, ok := c.Session.(*sts.Session); ok {
		return audit.AssumedRole(audit.Session{
			AccountID: s.Account, RoleName: s.RoleName(), RoleARN: s.RoleARN, RoleID: s.RoleID, SessionName: s.SessionName,
			AccessKeyID: s.AccessKeyID, ProviderARN: s.Provider, CreationDate: time.Unix(s.Issued, 0), SourceIdentity: s.SourceIdentity,
		})
	}
	if c.UserName == "root" && c.UserID == c.Account {
		return &audit.UserIdentity{Type: "Root", PrincipalID: c.Account, ARN: c.ARN, AccountID: c.Account, AccessKeyID: c.AccessKeyID}
	}
	return audit.IAMUser(c.Account, c.UserID, "/", c.UserName, c.AccessKeyID)
}

// requestParameters renders Query parameters the way CloudTrail records
// them: lower-camel-case names, member lists as arrays, structures as
// objects; Action and Version omitted.
func requestParameters(p awsquery.Params) map[string]any {
	if p.Len() == 0 {
		return nil
	}
	root := map[string]any{}
	for _, name := range p.Names() {
		if name == "Action" || name == "Version" {
			continue
		}
		setPath(root, strings.Split(name, "."), p.String(name))
	}
	out, _ := normalize(root).(map[string]any)
	if len(out) == 0 {
		return nil
	}
	return out
}

func setPath(m map[string]any, parts []string, value string) {
	key := lowerCamel(parts[0])
	if len(parts) == 1 {
		if _, exists := m[key]; !exists {
			m[key] = value
		}
		return
	}
	child, ok := m[key].(map[string]any)
	if !ok {
		child = map[string]any{}
		m[key] = child
	}
	if parts[1] == "member" && len(parts) >= 3 {
		if len(parts) == 3 {
			child["#"+parts[2]] = value
			return
		}
		sub, ok := child["#"+parts[2]].(map[string]any)
		if !ok {
			sub = map[string]any{}
			child["#"+parts[2]] = sub
		}
		setPath(sub, parts[3:], value)
		return
	}
	setPath(child, parts[1:], value)
}

// normalize turns {"#1": a, "#2": b} maps into ordered arrays.
func normalize(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	list := len(m) > 0
	for k := range m {
		if !strings.HasPrefix(k, "#") {
			list = false
		}
	}
	if list {
		idx := make([]int, 0, len(m))
		byIdx := map[int]any{}
		for k, val := range m {
			n, _ := strconv.Atoi(k[1:])
			idx = append(idx, n)
			byIdx[n] = normalize(val)
		}
		sort.Ints(idx)
		out := make([]any, 0, len(idx))
		for _, n := range idx {
			out = append(out, byIdx[n])
		}
		return out
	}
	for k, val := range m {
		m[k] = normalize(val)
	}
	return m
}

func lowerCamel(s string) string {
	if s == "" {
		return s
	}
	// IAM and STS names start with an upper-case word: RoleName → roleName,
	// ClientIDList → clientIDList, OpenIDConnectProviderArn →
	// openIDConnectProviderArn.
	return strings.ToLower(s[:1]) + s[1:]
}

// groupCommitWindow maps the config's window to audit.Options, where zero
// means the package default and a negative value disables the window.
func groupCommitWindow(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// openAudit opens the trail and builds the recorder.
func (s *Server) openAudit(ctx context.Context, cfg Config, o Options) error {
	key, err := auditSigningKey(ctx, s.store, s.master, o.Rand, o.Now())
	if err != nil {
		return err
	}
	interval := cfg.Audit.SealInterval.D()
	trail, err := audit.Open(ctx, audit.Options{
		Dir: AuditDir(cfg.Data), AccountID: s.account, Region: cfg.Region,
		SigningKey: key, Head: storeHead{s.store}, MACKey: AuditMACKey(s.master),
		Now: o.Now, Rand: o.Rand, Logger: o.Logger.With("component", "audit"), Registerer: s.metrics.reg,
		SealInterval: interval, GroupCommitWindow: groupCommitWindow(cfg.Audit.GroupCommitWindow.D()),
		Disk: diskLimits(cfg.Audit),
	})
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	s.trail = trail
	s.closers = append(s.closers, func(ctx context.Context) error { return trail.Close(ctx) })
	var rec audit.Recorder = trail
	if cfg.Audit.Stdout {
		rec = audit.Fanout(trail, audit.BestEffort(audit.NewJSONLines(os.Stdout), func(err error) {
			s.log.Warn("audit stdout sink failed", "err", err)
		}))
	}
	if benchNoAudit {
		s.log.Warn("BENCHMARK BUILD: the audit trail records nothing")
		return nil
	}
	s.api.recorder = &auditRecorder{
		b:       &audit.Builder{AccountID: s.account, Region: cfg.Region, Now: o.Now, Rand: o.Rand, RedactClaims: cfg.Audit.RedactClaims},
		rec:     rec,
		account: s.account,
		shed:    trail.Shedding,
	}
	return nil
}

// OpenAuditVerifier reads from a data dir's store what verifying its trail
// needs, authenticating the head with the data dir's own master.key when
// there is one (AuditVerifyOptions with the master key from elsewhere).
func OpenAuditVerifier(ctx context.Context, dataDir string) (audit.VerifyOptions, error) {
	var master *keyring.Master
	if _, err := os.Stat(MasterKeyPath(dataDir)); err == nil {
		m, err := keyring.LoadMaster("", MasterKeyPath(dataDir), false, nil)
		if err != nil {
			return audit.VerifyOptions{}, err
		}
		master = m
	}
	return AuditVerifyOptions(ctx, dataDir, master)
}

// ErrWrongMasterKey reports a master key other than the one a data dir was
// created with.
var ErrWrongMasterKey = errors.New("the master key is not the one this data dir was created with")

// AuditVerifyOptions reads from a data dir's store what verifying its trail
// needs: every digest public key, the head (loaded again by Verify around
// its read of the seal state) and, with master (nil: none), the MAC key
// that authenticates the head and the seal state.
func AuditVerifyOptions(ctx context.Context, dataDir string, master *keyring.Master) (audit.VerifyOptions, error) {
	opts := audit.VerifyOptions{}
	st, err := sqlite.Open(ctx, DBPath(dataDir))
	if err != nil {
		return opts, fmt.Errorf("open the store of %s: %w", dataDir, err)
	}
	defer st.Close()
	if opts.PublicKeys, err = AuditPublicKeys(ctx, st); err != nil {
		return opts, err
	}
	if opts.Head, err = AuditHead(ctx, st); err != nil {
		return opts, err
	}
	if master != nil {
		id, err := st.Meta().Get(ctx, "master-key-id")
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return opts, fmt.Errorf("store: %w", err)
		}
		if err == nil && id != master.ID() {
			return opts, fmt.Errorf("%w (key id %s, data dir %s)", ErrWrongMasterKey, master.ID(), id)
		}
		opts.MACKey = AuditMACKey(master)
	}
	opts.LoadHead = func(ctx context.Context) (*audit.Head, error) {
		st, err := sqlite.Open(ctx, DBPath(dataDir))
		if err != nil {
			return nil, fmt.Errorf("open the store of %s: %w", dataDir, err)
		}
		defer st.Close()
		return AuditHead(ctx, st)
	}
	return opts, nil
}

// ResetAuditHead forgets a data dir's audit head, so that `keyless serve`
// starts a new trail in an empty DATA/audit. It refuses while DATA/audit
// still holds a trail: move it aside first (and keep it).
func ResetAuditHead(ctx context.Context, dataDir string) (*audit.Head, error) {
	if _, err := os.Lstat(filepath.Join(AuditDir(dataDir), "journal", "seal-state.json")); err == nil {
		return nil, fmt.Errorf("%s still holds a trail: move it aside (keep it as evidence) before resetting the head", AuditDir(dataDir))
	}
	st, err := sqlite.Open(ctx, DBPath(dataDir))
	if err != nil {
		return nil, fmt.Errorf("open the store of %s: %w", dataDir, err)
	}
	defer st.Close()
	old, err := AuditHead(ctx, st)
	if err != nil {
		return nil, err
	}
	if err := st.Meta().Put(ctx, auditHeadKey, ""); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return old, nil
}
