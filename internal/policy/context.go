package policy

import (
	"strconv"
	"time"
)

// Context is a request context: condition keys and their values. Keys are
// case-insensitive (aws:CurrentTime is AWS:currenttime); values are
// case-sensitive strings and a key may hold several values (a multivalued
// key such as aws:TagKeys or an OIDC amr claim).
//
// A key with one value is single-valued. A key with several values is
// multivalued: only the ForAnyValue:/ForAllValues: operators compare it
// value by value (see Evaluate). A key set with no values, like a missing
// key, is an empty data set.
//
// The zero value is empty and ready to use. A Context is built once per
// request (typically ~10 keys) and read concurrently by evaluations; it
// must not be modified while an evaluation runs. Reset lets a caller reuse
// its storage.
type Context struct {
	hashes []uint32 // keyHash of keys, compared before the strings
	keys   []string // folded (foldKey) for lookups
	names  []string // as set, for Keys
	spans  []valueSpan
	vals   []string
}

type valueSpan struct{ start, n int }

// NewContext returns a context with room for n keys.
func NewContext(n int) *Context {
	return &Context{
		hashes: make([]uint32, 0, n),
		keys:   make([]string, 0, n),
		names:  make([]string, 0, n),
		spans:  make([]valueSpan, 0, n),
		vals:   make([]string, 0, n),
	}
}

// Set sets key to values, replacing any earlier values of a key that is
// equal ignoring case. The values are copied.
func (c *Context) Set(key string, values ...string) {
	start := len(c.vals)
	c.vals = append(c.vals, values...)
	sp := valueSpan{start: start, n: len(values)}
	fk := foldKey(key)
	if i := c.index(fk); i >= 0 {
		c.spans[i] = sp // the old values stay in vals until Reset; contexts are short-lived
		return
	}
	c.hashes = append(c.hashes, keyHash(fk))
	c.keys = append(c.keys, fk)
	c.names = append(c.names, key)
	c.spans = append(c.spans, sp)
}

// SetBool sets key to "true" or "false".
func (c *Context) SetBool(key string, v bool) { c.Set(key, strconv.FormatBool(v)) }

// SetInt sets key to the decimal form of v.
func (c *Context) SetInt(key string, v int64) { c.Set(key, strconv.FormatInt(v, 10)) }

// SetTime sets key to t in UTC, RFC 3339 with seconds (aws:CurrentTime's
// form).
func (c *Context) SetTime(key string, t time.Time) {
	c.Set(key, t.UTC().Format(time.RFC3339))
}

// Delete removes key.
func (c *Context) Delete(key string) {
	if i := c.index(foldKey(key)); i >= 0 {
		c.hashes = append(c.hashes[:i], c.hashes[i+1:]...)
		c.keys = append(c.keys[:i], c.keys[i+1:]...)
		c.names = append(c.names[:i], c.names[i+1:]...)
		c.spans = append(c.spans[:i], c.spans[i+1:]...)
	}
}

// Reset empties the context, keeping its storage.
func (c *Context) Reset() {
	c.hashes = c.hashes[:0]
	c.keys = c.keys[:0]
	c.names = c.names[:0]
	c.spans = c.spans[:0]
	clear(c.vals)
	c.vals = c.vals[:0]
}

// Get returns the values of key and whether the key is present.
func (c *Context) Get(key string) ([]string, bool) {
	if c == nil {
		return nil, false
	}
	fk := foldKey(key)
	return c.lookup(fk, keyHash(fk))
}

// Keys returns the keys as they were set, in order.
func (c *Context) Keys() []string {
	if c == nil {
		return nil
	}
	return append([]string(nil), c.names...)
}

// Len is the number of keys.
func (c *Context) Len() int {
	if c == nil {
		return 0
	}
	return len(c.keys)
}

// index finds a folded key.
func (c *Context) index(fk string) int {
	h := keyHash(fk)
	for i, k := range c.keys {
		if c.hashes[i] == h && k == fk {
			return i
		}
	}
	return -1
}

// lookup finds the values of a folded key with hash h; compiled conditions
// hold both, so the evaluator's inner loop mostly compares integers.
func (c *Context) lookup(fk string, h uint32) ([]string, bool) {
	if c == nil {
		return nil, false
	}
	for i, kh := range c.hashes {
		if kh == h && c.keys[i] == fk {
			sp := c.spans[i]
			return c.vals[sp.start : sp.start+sp.n : sp.start+sp.n], true
		}
	}
	return nil, false
}

// keyHash is FNV-1a over a folded key.
func keyHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
