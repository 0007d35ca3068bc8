package sqlstore

import (
	"slices"
	"sync"
	"time"

	"github.com/keylessci/keyless/internal/store"
)

// readCacheTTL bounds how stale a cached role or provider can be. Writes
// through this Store clear the cache at once; writes by another node or by
// the CLI are seen within the TTL — IAM itself is eventually consistent,
// and every STS exchange and IAM read would otherwise pay a SQLite query.
const readCacheTTL = time.Second

type cacheEntry[T any] struct {
	v     *T
	until time.Time
}

// readCache is a small TTL cache of documents by key.
type readCache[T any] struct {
	mu    sync.Mutex
	m     map[string]cacheEntry[T]
	clone func(*T) *T
	now   func() time.Time
}

func newReadCache[T any](clone func(*T) *T) *readCache[T] {
	return &readCache[T]{m: map[string]cacheEntry[T]{}, clone: clone, now: time.Now}
}

func (c *readCache[T]) get(key string) (*T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || c.now().After(e.until) {
		return nil, false
	}
	return c.clone(e.v), true
}

func (c *readCache[T]) put(key string, v *T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= 4096 {
		clear(c.m)
	}
	c.m[key] = cacheEntry[T]{v: c.clone(v), until: c.now().Add(readCacheTTL)}
}

// invalidate drops everything: writes are rare, and one role write can
// change what several keys (name, id) return.
func (c *readCache[T]) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

func cloneRole(r *store.Role) *store.Role {
	c := *r
	c.Tags = slices.Clone(r.Tags)
	return &c
}

func cloneProvider(p *store.Provider) *store.Provider {
	c := *p
	c.ClientIDs = slices.Clone(p.ClientIDs)
	c.Thumbprints = slices.Clone(p.Thumbprints)
	c.Tags = slices.Clone(p.Tags)
	return &c
}
