package sts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/keylessci/keyless/internal/keyring"
	"github.com/keylessci/keyless/internal/store"
)

// The session-token sealing keys live in the store (KeyMaterial purpose
// "session-seal"), each sealed with the master key. Every node loads the
// whole ring, so any node verifies a session minted by any other without a
// lookup. A key seals new tokens for RotationPeriod, then stays readable
// until every token it sealed has expired.
const (
	ringPurpose = "session-seal"
	// maxSessionLife is the longest a session can live (DurationSeconds ≤ 43200).
	maxSessionLife = 12 * time.Hour
)

// RingManager keeps the session key ring current.
type RingManager struct {
	keys     store.KeyMaterialStore
	master   *keyring.Master
	now      func() time.Time
	rand     io.Reader
	rotation time.Duration

	mu       sync.RWMutex
	ring     *keyring.Ring
	loadedAt time.Time
	reloadMu sync.Mutex
}

// NewRingManager loads the ring, creating its first key when the store has
// none.
func NewRingManager(ctx context.Context, keys store.KeyMaterialStore, master *keyring.Master, now func() time.Time, rnd io.Reader, rotation time.Duration) (*RingManager, error) {
	if rotation <= 0 {
		rotation = 24 * time.Hour
	}
	m := &RingManager{keys: keys, master: master, now: now, rand: rnd, rotation: rotation}
	if err := m.Maintain(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func ringAAD(id string) string { return "session-seal:" + id }

// Maintain rotates when the active key is older than the rotation period,
// drops keys no token can need any more, and reloads the ring. Concurrent
// nodes agree through the store's Rotate transaction.
func (m *RingManager) Maintain(ctx context.Context) error {
	now := m.now().UTC()
	err := m.keys.Rotate(ctx, ringPurpose, func(existing []*store.KeyMaterial) ([]*store.KeyMaterial, []*store.KeyMaterial, error) {
		var newest *store.KeyMaterial
		for _, k := range existing {
			if k.RetireAt.IsZero() && (newest == nil || k.ActivateAt.After(newest.ActivateAt)) {
				newest = k
			}
		}
		if newest != nil && now.Sub(newest.ActivateAt) < m.rotation {
			return nil, nil, nil
		}
		return m.newKey(existing, newest, now)
	})
	if err != nil {
		return fmt.Errorf("sts: session key rotation: %w", err)
	}
	// Drop keys whose every token has expired.
	all, err := m.keys.List(ctx, ringPurpose)
	if err != nil {
		return fmt.Errorf("sts: session keys: %w", err)
	}
	for _, k := range all {
		if !k.ExpireAt.IsZero() && now.After(k.ExpireAt) {
			if err := m.keys.Delete(ctx, ringPurpose, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("sts: drop session key: %w", err)
			}
		}
	}
	return m.reload(ctx)
}

// Rotate makes a new sealing key active now (keyless sts rotate-session-key).
func (m *RingManager) Rotate(ctx context.Context) error {
	now := m.now().UTC()
	err := m.keys.Rotate(ctx, ringPurpose, func(existing []*store.KeyMaterial) ([]*store.KeyMaterial, []*store.KeyMaterial, error) {
		var newest *store.KeyMaterial
		for _, k := range existing {
			if k.RetireAt.IsZero() && (newest == nil || k.ActivateAt.After(newest.ActivateAt)) {
				newest = k
			}
		}
		return m.newKey(existing, newest, now)
	})
	if err != nil {
		return fmt.Errorf("sts: session key rotation: %w", err)
	}
	return m.reload(ctx)
}

func (m *RingManager) newKey(existing []*store.KeyMaterial, newest *store.KeyMaterial, now time.Time) ([]*store.KeyMaterial, []*store.KeyMaterial, error) {
	next := uint32(1)
	for _, k := range existing {
		if n, err := strconv.ParseUint(k.ID, 10, 32); err == nil && uint32(n) >= next {
			next = uint32(n) + 1
		}
	}
	secret := make([]byte, keyring.KeySize)
	if _, err := io.ReadFull(m.rand, secret); err != nil {
		return nil, nil, err
	}
	id := strconv.FormatUint(uint64(next), 10)
	sealed, err := m.master.Seal(m.rand, secret, ringAAD(id))
	if err != nil {
		return nil, nil, err
	}
	created := &store.KeyMaterial{ID: id, Algorithm: "AES-256-GCM", Sealed: sealed, CreateDate: now, ActivateAt: now}
	var updated []*store.KeyMaterial
	if newest != nil {
		newest.RetireAt = now
		newest.ExpireAt = now.Add(maxSessionLife + time.Hour)
		updated = append(updated, newest)
	}
	return []*store.KeyMaterial{created}, updated, nil
}

func (m *RingManager) reload(ctx context.Context) error {
	ks, err := m.keys.List(ctx, ringPurpose)
	if err != nil {
		return fmt.Errorf("sts: session keys: %w", err)
	}
	var (
		rk     []keyring.RingKey
		active uint32
		best   time.Time
	)
	for _, k := range ks {
		n, err := strconv.ParseUint(k.ID, 10, 32)
		if err != nil {
			continue
		}
		secret, err := m.master.Open(k.Sealed, ringAAD(k.ID))
		if err != nil {
			return fmt.Errorf("sts: unseal session key %s: %w", k.ID, err)
		}
		rk = append(rk, keyring.RingKey{ID: uint32(n), Secret: secret})
		if k.RetireAt.IsZero() && !k.ActivateAt.Before(best) {
			best, active = k.ActivateAt, uint32(n)
		}
	}
	if len(rk) == 0 || active == 0 {
		return errors.New("sts: no active session key")
	}
	ring, err := keyring.NewRing(rk, active)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.ring, m.loadedAt = ring, m.now()
	m.mu.Unlock()
	return nil
}

// Ring returns the current ring.
func (m *RingManager) Ring() *keyring.Ring {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ring
}

// open opens a sealed blob, reloading the ring once (at most every few
// seconds) when the key is unknown here: another node may have rotated.
func (m *RingManager) open(ctx context.Context, sealed, aad []byte) ([]byte, error) {
	pt, err := m.Ring().Open(sealed, aad)
	if !errors.Is(err, keyring.ErrUnknownKey) {
		return pt, err
	}
	m.reloadMu.Lock()
	m.mu.RLock()
	fresh := m.now().Sub(m.loadedAt) < 5*time.Second
	m.mu.RUnlock()
	if !fresh {
		_ = m.reload(ctx)
	}
	m.reloadMu.Unlock()
	return m.Ring().Open(sealed, aad)
}

// Run maintains the ring until ctx ends.
func (m *RingManager) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = m.Maintain(ctx)
		}
	}
}

// RevokeAllBut deletes every sealing key but the active one: every session
// sealed before the last rotation stops verifying at once (after a
// suspected compromise of the key ring or of issued sessions).
func (m *RingManager) RevokeAllBut(ctx context.Context) (int, error) {
	active := strconv.FormatUint(uint64(m.Ring().Active()), 10)
	ks, err := m.keys.List(ctx, ringPurpose)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range ks {
		if k.ID == active {
			continue
		}
		if err := m.keys.Delete(ctx, ringPurpose, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, m.reload(ctx)
}
