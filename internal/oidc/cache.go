package oidc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// maxKIDLessCandidates bounds the verifications spent on a token
	// without kid (V04): each RSA verification costs tens of microseconds.
	maxKIDLessCandidates = 10
	// negativeTTL is how long a kid confirmed absent by a fetch is rejected
	// without another fetch. Short, so a key published late (CDN lag) is
	// picked up within minutes, not at the next TTL refresh.
	negativeTTL = 5 * time.Minute
	// maxNegative bounds the negative cache of one issuer.
	maxNegative = 1024
)

// keyCache holds one issuer's keys. It is keyed by the provider URL and by
// the thumbprints it was created with: a provider whose thumbprints change
// gets a fresh entry, because keys fetched under the old trust settings may
// no longer be acceptable.
type keyCache struct {
	issuer      string
	thumbprints []string

	mu          sync.Mutex
	set         *keySet
	method      string
	fetchedAt   time.Time // last successful fetch
	expiresAt   time.Time // fetchedAt + TTL
	lastAttempt time.Time // start of the last fetch, successful or not
	lastErr     error     // nil when the last fetch succeeded
	flight      *flight
	negative    map[string]time.Time // kid → rejected without fetching until
}

// flight is one in-progress refresh; callers that need its result wait on
// done (single flight per issuer).
type flight struct{ done chan struct{} }

func sameThumbprints(a, b []string) bool {
	return slices.EqualFunc(a, b, strings.EqualFold)
}

// cacheFor returns the cache entry for p, replacing it when the provider's
// configuration changed.
func (v *Validator) cacheFor(p *Provider) *keyCache {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.caches[p.URL]
	if c == nil || !sameThumbprints(c.thumbprints, p.Thumbprints) {
		if c != nil {
			v.log.Info("oidc: provider configuration changed; key cache dropped", "issuer", p.URL)
		}
		c = &keyCache{issuer: p.URL, thumbprints: slices.Clone(p.Thumbprints)}
		v.caches[p.URL] = c
	}
	return c
}

// lookupLocked returns the keys a token with header h may be verified with:
// every key under its kid (the caller checks their type), or, without kid,
// the keys whose type fits the algorithm.
func (c *keyCache) lookupLocked(h Header) []*jwk {
	if c.set == nil {
		return nil
	}
	if h.HasKID {
		return c.set.byKID[h.KID]
	}
	var out []*jwk
	for _, k := range c.set.all {
		if k.fits(h.Alg) && (k.alg == "" || k.alg == h.Alg) {
			out = append(out, k)
		}
	}
	return out
}

// resolveKeys finds the verification keys for a token of provider p (V03,
// V04, V16). Keys come only from the provider's JWKS. An unknown kid causes
// at most one refresh per issuer per UnknownKIDRefreshInterval; concurrent
// callers share it. Keys past their TTL are served while a background
// refresh runs, and while the issuer is down, up to MaxStale.
func (v *Validator) resolveKeys(ctx context.Context, c *keyCache, h Header) ([]*jwk, string, *Error) {
	waited := false
	for {
		now := v.now()
		c.mu.Lock()
		usable := c.set != nil && (v.opts.MaxStale < 0 || !now.After(c.expiresAt.Add(v.opts.MaxStale)))
		var found []*jwk
		if usable {
			found = c.lookupLocked(h)
		}
		if len(found) > 0 {
			method := c.method
			if !now.Before(c.expiresAt) {
				// Stale: refresh in the background unless a refresh ran
				// (or failed) recently, and serve what we have.
				if c.flight == nil && now.Sub(c.lastAttempt) >= v.opts.UnknownKIDRefreshInterval {
					v.startFetch(ctx, c, now)
				}
				v.metrics.staleServed.WithLabelValues(c.issuer).Inc()
				v.metrics.stale.WithLabelValues(c.issuer).Set(1)
			}
			c.mu.Unlock()
			return found, method, nil
		}
		if usable && h.HasKID {
			if until, ok := c.negative[h.KID]; ok && now.Before(until) {
				c.mu.Unlock()
				v.metrics.unknownKID.WithLabelValues(c.issuer, "negative_cached").Inc()
				return nil, "", noKeyErr(fmt.Sprintf("kid %q was not in the issuer's JWKS at the last refresh", truncate(h.KID, 64)))
			}
		}
		if !waited {
			var f *flight
			switch {
			case c.flight != nil:
				f = c.flight
			case c.lastAttempt.IsZero() || now.Sub(c.lastAttempt) >= v.opts.UnknownKIDRefreshInterval:
				f = v.startFetch(ctx, c, now)
				if usable {
					v.metrics.unknownKID.WithLabelValues(c.issuer, "refreshed").Inc()
				}
			}
			if f != nil {
				c.mu.Unlock()
				select {
				case <-f.done:
				case <-ctx.Done():
					return nil, "", &Error{Code: CodeIDPCommunicationError, Message: msgNoKey, Rule: "V16",
						Reason: "gave up waiting for the issuer's keys: " + ctx.Err().Error(),
						Err:    fmt.Errorf("%w: %w", ErrFetch, ctx.Err())}
				}
				waited = true
				continue
			}
			if usable {
				v.metrics.unknownKID.WithLabelValues(c.issuer, "rate_limited").Inc()
			}
		}
		err := v.missingKeyErrorLocked(c, h, now, usable, waited)
		c.mu.Unlock()
		return nil, "", err
	}
}

// missingKeyErrorLocked explains why no key was found and remembers kids a
// successful fetch has just confirmed absent.
//
// Error codes (trust-pitfalls §7.4): when the issuer could not be reached,
// timed out, answered with an error status, an oversized or malformed
// document, or a refused address, and no usable keys are cached, the answer
// is IDPCommunicationError, which SDKs retry (the failure is usually
// transient). When the issuer's certificate is neither trusted nor pinned,
// it is InvalidIdentityToken with AWS's thumbprint message (retrying cannot
// help). When the issuer answered with a valid JWKS that has no usable key
// for this token — unknown kid, keys dropped by hygiene rules — it is
// InvalidIdentityToken with AWS's "Couldn't retrieve verification key"
// message, as AWS answers.
func (v *Validator) missingKeyErrorLocked(c *keyCache, h Header, now time.Time, usable, waited bool) *Error {
	if !usable || (c.lastErr != nil && c.lastAttempt.After(c.fetchedAt)) {
		if errors.Is(c.lastErr, ErrThumbprintMismatch) && !usable {
			return &Error{Code: CodeInvalidIdentityToken, Message: msgThumbprint, Rule: "V16",
				Reason: "the issuer's TLS certificate is not trusted and matches no configured thumbprint",
				Err:    fmt.Errorf("%w: %w", ErrFetch, c.lastErr)}
		}
		cause := c.lastErr
		if cause == nil {
			cause = errors.New("no successful fetch yet")
		}
		reason := "no usable keys cached for the issuer and fetching them failed"
		if usable {
			reason = "kid not in the cached keys and refreshing them failed"
		}
		return &Error{Code: CodeIDPCommunicationError, Message: msgNoKey, Rule: "V16",
			Reason: reason + ": " + cause.Error(), Err: fmt.Errorf("%w: %w", ErrFetch, cause)}
	}
	if !h.HasKID {
		return noKeyErr(fmt.Sprintf("token has no kid and the issuer's JWKS has no %s key", h.Alg))
	}
	if waited {
		if c.negative == nil || len(c.negative) >= maxNegative {
			c.negative = make(map[string]time.Time)
		}
		c.negative[h.KID] = now.Add(negativeTTL)
		return noKeyErr(fmt.Sprintf("kid %q is not in the issuer's JWKS (refreshed)", truncate(h.KID, 64)))
	}
	return noKeyErr(fmt.Sprintf("kid %q is not in the issuer's JWKS; refresh skipped, the last one was %s ago",
		truncate(h.KID, 64), now.Sub(c.lastAttempt).Round(time.Second)))
}

func noKeyErr(reason string) *Error {
	return &Error{Code: CodeInvalidIdentityToken, Message: msgNoKey, Rule: "V04", Reason: reason, Err: ErrKeyNotFound}
}

// startFetch begins a refresh of c in its own goroutine, bounded by
// FetchTimeout, so that a caller that gives up does not cancel the fetch
// other callers wait for. c.mu must be held.
func (v *Validator) startFetch(ctx context.Context, c *keyCache, now time.Time) *flight {
	f := &flight{done: make(chan struct{})}
	c.flight = f
	c.lastAttempt = now
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.opts.FetchTimeout)
	go func() {
		defer close(f.done)
		defer cancel()
		start := v.now()
		res, err := v.fetchKeys(fctx, c.issuer, c.thumbprints)
		end := v.now()
		v.metrics.fetchSeconds.WithLabelValues(c.issuer).Observe(end.Sub(start).Seconds())
		v.metrics.fetches.WithLabelValues(c.issuer, fetchErrorClass(err)).Inc()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.flight = nil
		if err != nil {
			c.lastErr = err
			v.log.Warn("oidc: fetching provider keys failed", "issuer", c.issuer, "class", fetchErrorClass(err), "err", err)
			return
		}
		c.set, c.method, c.lastErr = res.keys, res.method, nil
		c.fetchedAt, c.expiresAt = end, end.Add(res.ttl)
		c.negative = nil
		v.metrics.keys.WithLabelValues(c.issuer).Set(float64(len(res.keys.all)))
		v.metrics.lastSuccess.WithLabelValues(c.issuer).Set(float64(end.UnixMilli()) / 1000)
		v.metrics.stale.WithLabelValues(c.issuer).Set(0)
		for _, d := range res.keys.dropped {
			v.log.Warn("oidc: JWK ignored", "issuer", c.issuer, "index", d.Index, "kid", d.KID, "reason", d.Reason)
		}
	}()
	return f
}

// jitter shortens ttl by up to 10 % so that many nodes (or many issuers
// cached at start-up) do not refresh in lock step.
func (v *Validator) jitter(ttl time.Duration) time.Duration {
	var b [8]byte
	if _, err := v.opts.Rand.Read(b[:]); err != nil {
		return ttl
	}
	frac := float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53) // [0, 1)
	return ttl - time.Duration(frac*0.1*float64(ttl))
}

// CacheState describes one issuer's key cache, for the console and tests.
type CacheState struct {
	Issuer             string
	KeyIDs             []string
	DroppedKeys        int
	FetchedAt          time.Time
	ExpiresAt          time.Time
	LastAttempt        time.Time
	LastError          string
	Stale              bool
	Fetching           bool
	VerificationMethod string
}

// CacheState reports the key cache of issuer, if there is one.
func (v *Validator) CacheState(issuer string) (CacheState, bool) {
	v.mu.Lock()
	c := v.caches[issuer]
	v.mu.Unlock()
	if c == nil {
		return CacheState{}, false
	}
	now := v.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := CacheState{Issuer: issuer, FetchedAt: c.fetchedAt, ExpiresAt: c.expiresAt, LastAttempt: c.lastAttempt,
		Fetching: c.flight != nil, VerificationMethod: c.method}
	if c.lastErr != nil {
		s.LastError = c.lastErr.Error()
	}
	if c.set != nil {
		for _, k := range c.set.all {
			s.KeyIDs = append(s.KeyIDs, k.kid)
		}
		s.DroppedKeys = len(c.set.dropped)
		s.Stale = !now.Before(c.expiresAt)
	}
	return s, true
}

// Forget drops the key cache and metrics of issuer (for example when its
// provider is deleted).
func (v *Validator) Forget(issuer string) {
	v.mu.Lock()
	delete(v.caches, issuer)
	v.mu.Unlock()
	v.metrics.forget(issuer)
}
