package issuer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store"
)

// Service-wide defaults.
const (
	DefaultReloadInterval = time.Minute
	DefaultClockSkew      = time.Minute
)

// Options configures a Service.
type Options struct {
	// Keys is where signing keys live (store.Store.KeyMaterial()). Required.
	Keys store.KeyMaterialStore
	// Master seals and opens private keys. Required.
	Master *keyring.Master
	// Issuers served; at least one. The first is the default issuer.
	Issuers []Config
	// Now is the clock (default time.Now). The background loop waits with
	// the time package's timers, so Now must advance with them.
	Now func() time.Time
	// Rand supplies kids, jti, nonces and key generation; it must be safe
	// for concurrent use (default crypto/rand.Reader).
	Rand io.Reader
	// KeyGen makes private keys (default GenerateKey).
	KeyGen KeyGenerator
	// Logger (default: discard).
	Logger *slog.Logger
	// Authenticate authenticates token-endpoint requests. Nil: the endpoint
	// refuses every request.
	Authenticate Authenticator
	// ReloadInterval is how often nodes re-read the keys (default 1 min).
	ReloadInterval time.Duration
	// ClockSkew is the clock difference tolerated between nodes (default
	// 1 min).
	ClockSkew time.Duration
	// Registerer receives the token endpoint's counters
	// (keyless_issuer_mints_total); nil keeps them unregistered.
	Registerer prometheus.Registerer
}

// Service is the built-in issuer: one or more issuers sharing a store.
type Service struct {
	keys    store.KeyMaterialStore
	master  *keyring.Master
	now     func() time.Time
	rand    io.Reader
	keygen  KeyGenerator
	log     *slog.Logger
	auth    Authenticator
	timing  timing
	issuers map[string]*issuer
	order   []*issuer
	started atomic.Bool
	metrics *mintMetrics
}

// issuer is one configured issuer and this node's view of its keys.
type issuer struct {
	cfg      Config
	purpose  string
	prof     *profile
	path     string // URL path, "" for the root
	jwksURL  string
	mu       sync.Mutex         // serialises reloads and rotations on this node
	signers  map[string]*signer // opened keys by kid; guarded by mu
	view     atomic.Pointer[keyView]
	docCache atomic.Pointer[publicDocs]
}

// New validates the options and builds a Service. It does not touch the
// store: call Start (server) or Sync (one-shot commands) next.
func New(opts Options) (*Service, error) {
	if opts.Keys == nil || opts.Master == nil {
		return nil, fmt.Errorf("%w: Keys and Master are required", ErrConfig)
	}
	if len(opts.Issuers) == 0 {
		return nil, fmt.Errorf("%w: no issuer configured", ErrConfig)
	}
	s := &Service{
		keys:    opts.Keys,
		master:  opts.Master,
		now:     opts.Now,
		rand:    opts.Rand,
		keygen:  opts.KeyGen,
		log:     opts.Logger,
		auth:    opts.Authenticate,
		timing:  timing{reload: opts.ReloadInterval, skew: opts.ClockSkew},
		issuers: map[string]*issuer{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.keygen == nil {
		s.keygen = GenerateKey
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.timing.reload <= 0 {
		s.timing.reload = DefaultReloadInterval
	}
	if s.timing.skew < 0 {
		return nil, fmt.Errorf("%w: negative clock skew", ErrConfig)
	}
	if opts.ClockSkew == 0 {
		s.timing.skew = DefaultClockSkew
	}
	paths := map[string]string{}
	for _, c := range opts.Issuers {
		c = c.withDefaults()
		if err := c.validate(s.timing); err != nil {
			return nil, err
		}
		if _, dup := s.issuers[c.ID]; dup {
			return nil, fmt.Errorf("%w: issuer id %q configured twice", ErrConfig, c.ID)
		}
		p, _ := issuerPath(c.URL)
		if other, dup := paths[p]; dup {
			return nil, fmt.Errorf("%w: issuers %q and %q have the same URL path %q (this server serves both)", ErrConfig, other, c.ID, p)
		}
		paths[p] = c.ID
		is := &issuer{
			cfg:     c,
			purpose: purposeOf(c.ID),
			prof:    profiles[c.Profile],
			path:    p,
			jwksURL: c.URL + jwksSuffix,
			signers: map[string]*signer{},
		}
		s.issuers[c.ID] = is
		s.order = append(s.order, is)
	}
	ids := make([]string, len(s.order))
	for i, is := range s.order {
		ids[i] = is.cfg.ID
	}
	m, err := newMintMetrics(opts.Registerer, ids)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// Issuers returns the configs in use (defaults applied), default first.
func (s *Service) Issuers() []Config {
	out := make([]Config, len(s.order))
	for i, is := range s.order {
		out[i] = is.cfg
	}
	return out
}

// PrePublish is how long before it signs a new key of issuerID is
// published.
func (s *Service) PrePublish(issuerID string) (time.Duration, error) {
	is, ok := s.issuers[issuerID]
	if !ok {
		return 0, noSuchIssuer(issuerID)
	}
	return s.timing.prePublish(is.cfg), nil
}

// Start brings every issuer's keys up to date (creating the first key of a
// new issuer) and then keeps them so in the background until ctx ends:
// reloading every ReloadInterval and rotating on schedule. It fails if the
// first synchronisation fails, so a server does not start without keys.
func (s *Service) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("issuer: Start called twice")
	}
	if err := s.Sync(ctx); err != nil {
		return err
	}
	go s.loop(ctx)
	return nil
}

func (s *Service) loop(ctx context.Context) {
	for {
		t := time.NewTimer(s.nextWake(s.now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelError, "issuer: key synchronisation failed; retrying", slog.Any("error", err))
		}
	}
}

// nextWake is how long the loop sleeps: the reload interval, or less when
// a rotation falls due or a key expires sooner.
func (s *Service) nextWake(now time.Time) time.Duration {
	d := s.timing.reload
	consider := func(t time.Time) {
		if !t.IsZero() && t.After(now) && t.Sub(now) < d {
			d = t.Sub(now)
		}
	}
	for _, is := range s.order {
		v := is.view.Load()
		if v == nil {
			continue
		}
		consider(planFor(v.times(), now, is.cfg, s.timing, false).dueAt)
		for _, k := range v.keys {
			consider(k.expire)
		}
	}
	return max(d, time.Second)
}

// Sync reloads every issuer's keys, performs rotations that are due and
// deletes keys whose every token has expired. Start calls it on a timer;
// one-shot commands call it once.
func (s *Service) Sync(ctx context.Context) error {
	var errs []error
	for _, is := range s.order {
		if err := s.syncIssuer(ctx, is); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) syncIssuer(ctx context.Context, is *issuer) error {
	is.mu.Lock()
	defer is.mu.Unlock()
	expired, err := s.reload(ctx, is)
	if err != nil && is.view.Load() == nil {
		return err
	}
	errs := []error{err}
	now := s.now()
	if p := planFor(is.view.Load().times(), now, is.cfg, s.timing, false); p.create || p.bringForward != "" || p.reschedule {
		r, rerr := s.rotateLocked(ctx, is, false)
		errs = append(errs, rerr)
		if r != nil && rerr == nil {
			s.log.LogAttrs(ctx, slog.LevelInfo, "issuer: scheduled rotation",
				slog.String("issuer", is.cfg.ID), slog.String("next_kid", r.KeyID),
				slog.Time("activate_at", r.ActivateAt), slog.String("retiring_kid", r.RetiringKeyID))
		}
	}
	for _, kid := range expired {
		if derr := s.keys.Delete(ctx, is.purpose, kid); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("issuer %s: delete expired key %s: %w", is.cfg.ID, kid, derr))
		} else if derr == nil {
			s.log.LogAttrs(ctx, slog.LevelInfo, "issuer: deleted expired key", slog.String("issuer", is.cfg.ID), slog.String("kid", kid))
		}
	}
	return errors.Join(errs...)
}

// key is one signing key as this node sees it.
type key struct {
	kid, alg                          string
	created, activate, retire, expire time.Time
	jwk                               []byte  // canonical public JWK
	signer                            *signer // nil when retired or unusable
}

// keyView is an immutable snapshot of an issuer's keys.
type keyView struct {
	loadedAt time.Time
	keys     []*key // by activation, then kid
}

// fresh reports whether the view may be used at now.
func (v *keyView) fresh(now time.Time, t timing) bool {
	return v != nil && now.Sub(v.loadedAt) <= t.staleAfter()
}

// active is the key that signs at now: the latest activated one that is not
// retired. Nil when none (including when that key failed to open).
func (v *keyView) active(now time.Time) *key {
	var best *key
	for _, k := range v.keys {
		if k.activate.After(now) || (!k.retire.IsZero() && !now.Before(k.retire)) {
			continue
		}
		if best == nil || k.activate.After(best.activate) {
			best = k
		}
	}
	return best
}

// published are the keys in the JWKS at now.
func (v *keyView) published(now time.Time) []*key {
	out := make([]*key, 0, len(v.keys))
	for _, k := range v.keys {
		if k.expire.IsZero() || now.Before(k.expire) {
			out = append(out, k)
		}
	}
	return out
}

func (v *keyView) times() []keyTimes {
	if v == nil {
		return nil
	}
	out := make([]keyTimes, len(v.keys))
	for i, k := range v.keys {
		out[i] = keyTimes{ID: k.kid, Create: k.created, Activate: k.activate, Retire: k.retire, Expire: k.expire}
	}
	return out
}

// reload reads the issuer's keys into a new view, opening the private keys
// that may still sign. It returns the ids of expired keys (to delete). A
// key that cannot be read is left out (or published but unable to sign) and
// reported in the error; the view is installed regardless.
func (s *Service) reload(ctx context.Context, is *issuer) ([]string, error) {
	// The view is as old as the moment before the read.
	now := s.now()
	docs, err := s.keys.List(ctx, is.purpose)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: list keys: %w", is.cfg.ID, err)
	}
	var errs []error
	var expired []string
	keys := make([]*key, 0, len(docs))
	signers := make(map[string]*signer, len(docs))
	for _, d := range docs {
		if !d.ExpireAt.IsZero() && !now.Before(d.ExpireAt) {
			expired = append(expired, d.ID)
			continue
		}
		if d.ActivateAt.IsZero() {
			errs = append(errs, fmt.Errorf("issuer %s: key %s has no activation time", is.cfg.ID, d.ID))
			continue
		}
		pub, jwk, err := parsePublic(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("issuer %s: %w", is.cfg.ID, err))
			continue
		}
		k := &key{
			kid: d.ID, alg: d.Algorithm, jwk: jwk,
			created: d.CreateDate, activate: d.ActivateAt, retire: d.RetireAt, expire: d.ExpireAt,
		}
		// Only keys that may still sign are opened: retired private keys
		// stay sealed.
		if d.RetireAt.IsZero() || now.Before(d.RetireAt) {
			sg := is.signers[d.ID]
			if sg == nil || !sg.opened(d) {
				if sg, err = openSigner(s.master, d, pub); err != nil {
					errs = append(errs, fmt.Errorf("issuer %s: %w", is.cfg.ID, err))
				}
			}
			if sg != nil {
				k.signer = sg
				signers[d.ID] = sg
			}
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b *key) int {
		if c := a.activate.Compare(b.activate); c != 0 {
			return c
		}
		return strings.Compare(a.kid, b.kid)
	})
	is.signers = signers
	is.view.Store(&keyView{loadedAt: now, keys: keys})
	return expired, errors.Join(errs...)
}

// Rotation reports what a rotation did.
type Rotation struct {
	Issuer string `json:"issuer"`
	// KeyID and Algorithm name the key that signs next.
	KeyID     string `json:"kid"`
	Algorithm string `json:"alg"`
	// Created is false when an already published key was brought forward
	// (or was already next).
	Created bool `json:"created"`
	// PublishedAt is when the next key was first published.
	PublishedAt time.Time `json:"published_at"`
	// ActivateAt is when the next key starts signing.
	ActivateAt time.Time `json:"activate_at"`
	// RetiringKeyID stops signing at ActivateAt and leaves the JWKS at
	// RetiredKeyExpireAt, when every token it signed has expired.
	RetiringKeyID      string    `json:"retiring_kid,omitempty"`
	RetiredKeyExpireAt time.Time `json:"retired_key_expire_at,omitzero"`
}

// Rotate starts a rotation of issuerID now: the next key is published now
// and signs from now + PrePublish, the earliest moment every verifier's
// cached JWKS can know it. When a next key is already published, Rotate
// brings its activation forward to max(now, its publication + PrePublish)
// instead of making another key, so concurrent or repeated rotations agree
// on one next key. Rotate never makes a key sign before verifiers can know
// it, and never removes a key while tokens it signed are valid.
func (s *Service) Rotate(ctx context.Context, issuerID string) (*Rotation, error) {
	is, ok := s.issuers[issuerID]
	if !ok {
		return nil, noSuchIssuer(issuerID)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if _, err := s.reload(ctx, is); err != nil && is.view.Load() == nil {
		return nil, err
	}
	return s.rotateLocked(ctx, is, true)
}

// rotateLocked runs one rotation decision inside the store's Rotate
// transaction, so nodes rotating at once serialise and the later ones see
// the earlier one's key. is.mu is held.
func (s *Service) rotateLocked(ctx context.Context, is *issuer, manual bool) (*Rotation, error) {
	// RSA key generation takes ~100 ms: do it before the transaction when
	// this node's view says a key will be needed, not while holding the
	// store's write lock.
	var fresh *store.KeyMaterial
	if planFor(is.view.Load().times(), s.now(), is.cfg, s.timing, manual).create {
		var err error
		if fresh, err = newKeyDoc(s.keygen, s.rand, s.master, is.purpose, is.cfg.Algorithm, s.now()); err != nil {
			return nil, err
		}
	}
	var result *Rotation
	err := s.keys.Rotate(ctx, is.purpose, func(existing []*store.KeyMaterial) ([]*store.KeyMaterial, []*store.KeyMaterial, error) {
		result = nil
		now := s.now()
		byID := make(map[string]*store.KeyMaterial, len(existing))
		times := make([]keyTimes, 0, len(existing))
		for _, d := range existing {
			byID[d.ID] = d
			times = append(times, keyTimes{ID: d.ID, Create: d.CreateDate, Activate: d.ActivateAt, Retire: d.RetireAt, Expire: d.ExpireAt})
		}
		p := planFor(times, now, is.cfg, s.timing, manual)
		r := &Rotation{Issuer: is.cfg.ID, ActivateAt: p.activate, RetiringKeyID: p.retire}
		var create, update []*store.KeyMaterial
		switch {
		case p.create:
			if fresh == nil {
				var err error
				if fresh, err = newKeyDoc(s.keygen, s.rand, s.master, is.purpose, is.cfg.Algorithm, now); err != nil {
					return nil, nil, err
				}
			}
			doc := *fresh
			doc.CreateDate, doc.ActivateAt, doc.RetireAt, doc.ExpireAt = now, p.activate, time.Time{}, time.Time{}
			create = append(create, &doc)
			r.KeyID, r.Algorithm, r.Created, r.PublishedAt = doc.ID, doc.Algorithm, true, now
		case p.next != "":
			d := byID[p.next]
			if p.bringForward != "" {
				d.ActivateAt = p.activate
				update = append(update, d)
			}
			r.KeyID, r.Algorithm, r.PublishedAt, r.ActivateAt = d.ID, d.Algorithm, d.CreateDate, d.ActivateAt
		default:
			return nil, nil, nil // nothing due
		}
		if p.retire != "" {
			d := byID[p.retire]
			if p.reschedule {
				d.RetireAt, d.ExpireAt = p.activate, p.activate.Add(s.timing.retention(is.cfg))
				update = append(update, d)
			}
			r.RetiredKeyExpireAt = d.ExpireAt
		}
		result = r
		return create, update, nil
	})
	if err != nil {
		return nil, fmt.Errorf("issuer %s: rotate: %w", is.cfg.ID, err)
	}
	if _, err := s.reload(ctx, is); err != nil {
		return result, err
	}
	return result, nil
}

// keyTimes is a key's lifecycle, what rotation decisions look at.
type keyTimes struct {
	ID                               string
	Create, Activate, Retire, Expire time.Time
}

// plan is a rotation decision.
type plan struct {
	create       bool      // make a new key activating at activate
	next         string    // or: the existing pending key that signs next
	bringForward string    // == next when its activation moves to activate
	activate     time.Time // when the next key signs
	retire       string    // the active key, retiring at activate
	reschedule   bool      // the active key's retirement must be (re)set
	dueAt        time.Time // when a scheduled rotation falls due (no pending key)
}

// planFor decides a rotation at now from the keys' lifecycles. It is a pure
// function of its inputs so that every node, given the same keys, decides
// the same.
//
// Scheduled (manual=false): with no key at all, the first key signs at
// once (nobody can have cached a JWKS listing keys: the JWKS answers 503
// until a key exists). With an active key and no pending one, the next key
// is made at activate+period-prePublish and signs at
// max(activate+period, now+prePublish).
//
// Manual: the next key signs at now+prePublish; an already pending key is
// brought forward to max(its creation+prePublish, now) when that is sooner.
func planFor(keys []keyTimes, now time.Time, c Config, t timing, manual bool) plan {
	pre := t.prePublish(c)
	var live []keyTimes
	for _, k := range keys {
		if k.Expire.IsZero() || now.Before(k.Expire) {
			live = append(live, k)
		}
	}
	var active, pending *keyTimes
	for i := range live {
		k := &live[i]
		if k.Activate.After(now) {
			if pending == nil || k.Activate.Before(pending.Activate) {
				pending = k
			}
			continue
		}
		if !k.Retire.IsZero() && !now.Before(k.Retire) {
			continue
		}
		if active == nil || k.Activate.After(active.Activate) {
			active = k
		}
	}
	var p plan
	if active != nil {
		p.retire = active.ID
	}
	switch {
	case pending != nil:
		p.next, p.activate = pending.ID, pending.Activate
		if manual {
			if at := later(pending.Create.Add(pre), now); at.Before(pending.Activate) {
				p.bringForward, p.activate = pending.ID, at
			}
		}
		// The active key's retirement is already set unless the next key
		// moved (or a crash left them disagreeing).
		p.reschedule = active != nil && !active.Retire.Equal(p.activate)
	case active == nil:
		p.create, p.activate = true, now
		if len(live) > 0 {
			// Keys are published (retired ones): a verifier may hold a
			// JWKS without the new key.
			p.activate = now.Add(pre)
		}
	case manual:
		p.create, p.activate, p.reschedule = true, now.Add(pre), true
	default:
		p.dueAt = active.Activate.Add(c.RotationPeriod - pre)
		if now.Before(p.dueAt) {
			return plan{dueAt: p.dueAt}
		}
		p.create, p.activate, p.reschedule = true, later(active.Activate.Add(c.RotationPeriod), now.Add(pre)), true
	}
	return p
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// KeyInfo describes a key for operators (no secret part).
type KeyInfo struct {
	KeyID      string    `json:"kid"`
	Algorithm  string    `json:"alg"`
	State      string    `json:"state"` // pending, active, retired
	Thumbprint string    `json:"thumbprint"`
	CreatedAt  time.Time `json:"created_at"`
	ActivateAt time.Time `json:"activate_at"`
	RetireAt   time.Time `json:"retire_at,omitzero"`
	ExpireAt   time.Time `json:"expire_at,omitzero"`
	CanSign    bool      `json:"can_sign"`
}

// Keys lists issuerID's published keys as of the last reload.
func (s *Service) Keys(issuerID string) ([]KeyInfo, error) {
	is, ok := s.issuers[issuerID]
	if !ok {
		return nil, noSuchIssuer(issuerID)
	}
	v := is.view.Load()
	if v == nil {
		return nil, unavailable(ErrStale, "The issuer's keys have not been loaded yet.")
	}
	now := s.now()
	act := v.active(now)
	var out []KeyInfo
	for _, k := range v.published(now) {
		state := "retired"
		switch {
		case k == act:
			state = "active"
		case k.activate.After(now):
			state = "pending"
		}
		out = append(out, KeyInfo{
			KeyID: k.kid, Algorithm: k.alg, State: state, Thumbprint: thumbprint(k.jwk),
			CreatedAt: k.created, ActivateAt: k.activate, RetireAt: k.retire, ExpireAt: k.expire,
			CanSign: k.signer != nil,
		})
	}
	return out, nil
}

// jwksSuffix is the JWKS path under the issuer URL. Static hosting serves
// it as a file of that name.
const jwksSuffix = "/.well-known/jwks.json"

const discoverySuffix = "/.well-known/openid-configuration"

// DiscoveryURL is the discovery document URL of an issuer URL.
func DiscoveryURL(issuerURL string) string { return issuerURL + discoverySuffix }
