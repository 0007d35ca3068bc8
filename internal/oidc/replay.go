package oidc

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ReplayCache makes tokens single-use (V19, off by default: AWS accepts a
// token any number of times until it expires). Implementations shared by
// several nodes belong in the store; MemoryReplayCache serves one node.
type ReplayCache interface {
	// Use records key as used until expiry and reports whether it was
	// unused before.
	Use(ctx context.Context, key string, expiry time.Time) (bool, error)
}

// ErrReplayCacheFull is returned when no entry can be added; the token is
// then refused (fail closed) rather than admitted unrecorded.
var ErrReplayCacheFull = errors.New("replay cache full")

// MemoryReplayCache is a bounded in-memory ReplayCache.
type MemoryReplayCache struct {
	now func() time.Time
	max int

	mu      sync.Mutex
	entries map[string]time.Time
}

// NewMemoryReplayCache returns a cache holding at most max unexpired
// entries; now is the clock (time.Now when nil).
func NewMemoryReplayCache(max int, now func() time.Time) *MemoryReplayCache {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{now: now, max: max, entries: make(map[string]time.Time)}
}

// Use implements ReplayCache.
func (c *MemoryReplayCache) Use(_ context.Context, key string, expiry time.Time) (bool, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.entries[key]; ok && now.Before(until) {
		return false, nil
	}
	if len(c.entries) >= c.max {
		for k, until := range c.entries {
			if !now.Before(until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			return false, ErrReplayCacheFull
		}
	}
	c.entries[key] = expiry
	return true, nil
}
