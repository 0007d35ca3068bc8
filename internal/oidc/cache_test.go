package oidc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

// These tests run inside testing/synctest bubbles: the validator's clock,
// its fetch timeouts and the issuer's delays all use the bubble's fake
// time, and the issuer is reached in-process (oidctest.Transport), so hours
// of cache behaviour run in milliseconds and deterministically.

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type onesReader struct{}

func (onesReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0xff
	}
	return len(p), nil
}

// newSyncFixture is a fixture on the bubble's clock, without TTL jitter.
func newSyncFixture(t *testing.T, fo fixtureOpts) *fixture {
	fo.now = time.Now
	prev := fo.opts
	fo.opts = func(o *Options) {
		o.Rand = zeroReader{}
		if prev != nil {
			prev(o)
		}
	}
	return newFixture(t, fo)
}

func mustValidate(t *testing.T, f *fixture, raw string) *Token {
	t.Helper()
	tok, err := f.validate(raw)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return tok
}

func wantCode(t *testing.T, err error, code, msg string, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Validate accepted the token; want %s", code)
	}
	e := asError(t, err)
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Fatalf("got %s %q (%s); want %s %q", e.Code, e.Message, e.Reason, code, msg)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("errors.Is(%v, %v) = false", err, sentinel)
	}
}

func (f *fixture) tokenWithKey(t *testing.T, k *oidctest.Key) string {
	return f.baseToken().WithKey(k).MustSerialize(t)
}

func (f *fixture) tokenWithKID(t *testing.T, kid string) string {
	tok := f.baseToken().WithKey(keys(t).p256)
	tok.Header["kid"] = kid
	return tok.MustSerialize(t)
}

func TestStaleKeysServedDuringOutage(t *testing.T) {
	keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{})
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		if got := f.gh.Requests(); got != (oidctest.Counts{Discovery: 1, JWKS: 1}) {
			t.Fatalf("warm-up requests %+v", got)
		}
		f.gh.SetFailure(oidctest.Failure{Status: 503})
		time.Sleep(time.Hour + time.Second) // past the 1 h TTL

		// Stale keys still verify; a background refresh is attempted.
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		synctest.Wait()
		iss := map[string]string{"issuer": githubURL}
		if v := metricValue(t, f.reg, "keyless_oidc_jwks_fetches_total", map[string]string{"issuer": githubURL, "result": "http_status"}); v != 1 {
			t.Errorf("failed fetches = %v, want 1", v)
		}
		if v := metricValue(t, f.reg, "keyless_oidc_jwks_stale", iss); v != 1 {
			t.Errorf("stale gauge = %v, want 1", v)
		}
		// An unknown kid cannot be resolved while the issuer is down.
		_, err := f.validate(f.tokenWithKID(t, "rotated-during-outage"))
		wantCode(t, err, CodeIDPCommunicationError, msgNoKey, ErrFetch)

		// More tokens during the outage: served stale, no extra fetch
		// within the refresh interval.
		before := f.gh.Requests()
		for range 5 {
			time.Sleep(5 * time.Second)
			mustValidate(t, f, f.baseToken().MustSerialize(t))
		}
		synctest.Wait()
		if got := f.gh.Requests(); got != before {
			t.Errorf("requests during back-off: %+v, before %+v", got, before)
		}
		if v := metricValue(t, f.reg, "keyless_oidc_jwks_stale_served_total", iss); v != 6 {
			t.Errorf("stale served = %v, want 6", v)
		}

		// Recovery: the next stale use refreshes, and the cache is fresh.
		f.gh.SetFailure(oidctest.Failure{})
		time.Sleep(30 * time.Second)
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		synctest.Wait()
		st, _ := f.v.CacheState(githubURL)
		if st.Stale || st.LastError != "" || !st.ExpiresAt.After(time.Now()) {
			t.Errorf("after recovery: %+v", st)
		}
		if v := metricValue(t, f.reg, "keyless_oidc_jwks_stale", iss); v != 0 {
			t.Errorf("stale gauge = %v, want 0", v)
		}
		if v := metricValue(t, f.reg, "keyless_oidc_jwks_fetches_total", map[string]string{"issuer": githubURL, "result": "ok"}); v != 2 {
			t.Errorf("successful fetches = %v, want 2", v)
		}
		if v := metricValue(t, f.reg, "keyless_oidc_jwks_last_success_timestamp_seconds", iss); v != float64(time.Now().Unix()) {
			t.Errorf("last success = %v, want %d", v, time.Now().Unix())
		}
	})
}

func TestNoCachedKeysOutage(t *testing.T) {
	keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{issuer: func(i *oidctest.Issuer) { i.SetFailure(oidctest.Failure{Status: 503}) }})
		_, err := f.validate(f.baseToken().MustSerialize(t))
		wantCode(t, err, CodeIDPCommunicationError, msgNoKey, ErrHTTPStatus)
		// Back-off: failures within the interval do not hammer the issuer.
		_, err = f.validate(f.baseToken().MustSerialize(t))
		wantCode(t, err, CodeIDPCommunicationError, msgNoKey, ErrHTTPStatus)
		if got := f.gh.Requests().Discovery; got != 1 {
			t.Errorf("discovery requests = %d, want 1", got)
		}
		time.Sleep(30 * time.Second)
		_, err = f.validate(f.baseToken().MustSerialize(t))
		wantCode(t, err, CodeIDPCommunicationError, msgNoKey, ErrHTTPStatus)
		if got := f.gh.Requests().Discovery; got != 2 {
			t.Errorf("discovery requests = %d, want 2", got)
		}
		f.gh.SetFailure(oidctest.Failure{})
		time.Sleep(30 * time.Second)
		mustValidate(t, f, f.baseToken().MustSerialize(t))
	})
}

func TestSlowIssuerBoundedByFetchTimeout(t *testing.T) {
	keys(t)
	for _, tc := range []struct {
		name    string
		failure oidctest.Failure
		timeout time.Duration
		want    time.Duration
		ok      bool
	}{
		{name: "slow JWKS, default 5 s", failure: oidctest.Failure{Delay: 30 * time.Second, JWKSOnly: true}, want: 5 * time.Second},
		{name: "hanging discovery", failure: oidctest.Failure{Hang: true, DiscoveryOnly: true}, want: 5 * time.Second},
		{name: "slow JWKS, 2 s timeout", failure: oidctest.Failure{Delay: 30 * time.Second, JWKSOnly: true}, timeout: 2 * time.Second, want: 2 * time.Second},
		{name: "slow but within the timeout", failure: oidctest.Failure{Delay: 2 * time.Second}, want: 4 * time.Second, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newSyncFixture(t, fixtureOpts{
					issuer: func(i *oidctest.Issuer) { i.SetFailure(tc.failure) },
					opts:   func(o *Options) { o.FetchTimeout = tc.timeout },
				})
				raw := f.baseToken().MustSerialize(t)
				start := time.Now()
				_, err := f.validate(raw)
				if elapsed := time.Since(start); elapsed != tc.want {
					t.Errorf("Validate took %s, want %s", elapsed, tc.want)
				}
				if tc.ok {
					if err != nil {
						t.Fatalf("Validate: %v", err)
					}
					return
				}
				wantCode(t, err, CodeIDPCommunicationError, msgNoKey, ErrFetchTimeout)
				if v := metricValue(t, f.reg, "keyless_oidc_jwks_fetches_total", map[string]string{"issuer": githubURL, "result": "timeout"}); v != 1 {
					t.Errorf("timeout fetches = %v", v)
				}
			})
		})
	}
}

func TestCallerGivesUpWhileFetchContinues(t *testing.T) {
	keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{issuer: func(i *oidctest.Issuer) {
			i.SetFailure(oidctest.Failure{Delay: 3 * time.Second, JWKSOnly: true})
		}})
		raw := f.baseToken().MustSerialize(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := f.v.Validate(ctx, raw, f.lookup)
		wantCode(t, err, CodeIDPCommunicationError, msgNoKey, context.DeadlineExceeded)
		// The shared fetch was not cancelled with the first caller.
		synctest.Wait()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		mustValidate(t, f, raw)
		if got := f.gh.Requests().JWKS; got != 1 {
			t.Errorf("JWKS requests = %d, want 1", got)
		}
	})
}

func TestKeyRotationPickedUpWithOneRefresh(t *testing.T) {
	kr := keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{})
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		time.Sleep(time.Minute)

		k2 := alias(kr.rsaOther, "gh-rsa-2")
		f.gh.RotateTo(k2)
		tok := mustValidate(t, f, f.tokenWithKey(t, k2))
		if tok.Header.KID != "gh-rsa-2" {
			t.Fatalf("kid %q", tok.Header.KID)
		}
		if got := f.gh.Requests().JWKS; got != 2 {
			t.Fatalf("JWKS requests after rotation = %d, want 2", got)
		}
		// Tokens of the previous key still verify while it is published.
		mustValidate(t, f, f.tokenWithKey(t, kr.rsa))

		// A second rotation within the refresh interval waits for it.
		time.Sleep(10 * time.Second)
		k3 := alias(kr.p256, "gh-ec-3")
		f.gh.RotateTo(k3)
		_, err := f.validate(f.tokenWithKey(t, k3))
		wantCode(t, err, CodeInvalidIdentityToken, msgNoKey, ErrKeyNotFound)
		if got := f.gh.Requests().JWKS; got != 2 {
			t.Fatalf("JWKS requests inside the interval = %d, want 2", got)
		}
		time.Sleep(20 * time.Second)
		mustValidate(t, f, f.tokenWithKey(t, k3))
		if got := f.gh.Requests().JWKS; got != 3 {
			t.Fatalf("JWKS requests = %d, want 3", got)
		}
	})
}

func TestUnknownKIDFloodIsBounded(t *testing.T) {
	keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{})
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		f.gh.ResetRequests()

		const workers, rounds = 100, 12 // 120 s of attack, one token per worker every 10 s
		var mu sync.Mutex
		codes := map[string]int{}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					_, err := f.validate(f.tokenWithKID(t, fmt.Sprintf("random-%d-%d", w, r)))
					code := "ok"
					if e, ok := errors.AsType[*Error](err); ok {
						code = e.Code + "/" + e.Message
					}
					mu.Lock()
					codes[code]++
					mu.Unlock()
					time.Sleep(10 * time.Second)
				}
			})
		}
		wg.Wait()
		if want := map[string]int{CodeInvalidIdentityToken + "/" + msgNoKey: workers * rounds}; fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Errorf("outcomes %v, want %v", codes, want)
		}
		// One refresh per 30 s at most: t=0 (the interval since warm-up
		// has not passed, so none), 30, 60, 90 → at most 4 in 120 s.
		got := f.gh.Requests()
		if got.JWKS > 4 || got.JWKS < 3 {
			t.Errorf("JWKS requests during the flood = %d, want 3..4", got.JWKS)
		}
		iss := map[string]string{"issuer": githubURL, "outcome": "rate_limited"}
		if v := metricValue(t, f.reg, "keyless_oidc_unknown_kid_total", iss); v < workers*rounds/2 {
			t.Errorf("rate-limited unknown kids = %v", v)
		}
	})
}

func TestConcurrentColdStartSharesOneFetch(t *testing.T) {
	keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{issuer: func(i *oidctest.Issuer) {
			i.SetFailure(oidctest.Failure{Delay: time.Second})
		}})
		raw := f.baseToken().MustSerialize(t)
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				_, err := f.validate(raw)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Validate: %v", err)
			}
		}
		if got := f.gh.Requests(); got != (oidctest.Counts{Discovery: 1, JWKS: 1}) {
			t.Errorf("requests %+v, want one of each", got)
		}
	})
}

func TestKeyTTLFromCacheControl(t *testing.T) {
	keys(t)
	for _, tc := range []struct {
		cacheControl string
		rand         func() any
		want         time.Duration
	}{
		{"max-age=60", nil, 5 * time.Minute},
		{"public, max-age=7200", nil, 2 * time.Hour},
		{"", nil, time.Hour},
		{"max-age=999999999", nil, 24 * time.Hour},
		{"no-store", nil, 5 * time.Minute},
		{"max-age=7200", func() any { return onesReader{} }, 2*time.Hour - 12*time.Minute}, // 10 % jitter
	} {
		t.Run(fmt.Sprintf("%q", tc.cacheControl), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fo := fixtureOpts{issuer: func(i *oidctest.Issuer) { i.SetCacheControl(tc.cacheControl) }}
				if tc.rand != nil {
					fo.opts = func(o *Options) { o.Rand = onesReader{} }
				}
				f := newSyncFixture(t, fo)
				mustValidate(t, f, f.baseToken().MustSerialize(t))
				st, _ := f.v.CacheState(githubURL)
				if ttl := st.ExpiresAt.Sub(st.FetchedAt); ttl.Round(time.Second) != tc.want {
					t.Fatalf("TTL %s, want %s", ttl, tc.want)
				}
				// Just before expiry: no refresh. At expiry: one.
				time.Sleep(time.Until(st.ExpiresAt) - time.Second)
				mustValidate(t, f, f.baseToken().MustSerialize(t))
				synctest.Wait()
				if got := f.gh.Requests().JWKS; got != 1 {
					t.Fatalf("JWKS requests before expiry = %d", got)
				}
				time.Sleep(time.Second)
				mustValidate(t, f, f.baseToken().MustSerialize(t))
				synctest.Wait()
				if got := f.gh.Requests().JWKS; got != 2 {
					t.Fatalf("JWKS requests after expiry = %d, want 2", got)
				}
			})
		})
	}
}

func TestRemovedKeyAgesOut(t *testing.T) {
	kr := keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{})
		old := f.tokenWithKey(t, kr.p256)
		mustValidate(t, f, old)
		f.gh.Unpublish("ec-p256")
		time.Sleep(time.Hour)
		// The first use after the TTL is still served (stale) and
		// triggers the refresh that drops the key.
		mustValidate(t, f, f.tokenWithKey(t, kr.p256))
		synctest.Wait()
		_, err := f.validate(f.tokenWithKey(t, kr.p256))
		wantCode(t, err, CodeInvalidIdentityToken, msgNoKey, ErrKeyNotFound)
	})
}

func TestNegativeCacheOfUnknownKIDs(t *testing.T) {
	keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{})
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		time.Sleep(31 * time.Second)
		_, err := f.validate(f.tokenWithKID(t, "bogus"))
		wantCode(t, err, CodeInvalidIdentityToken, msgNoKey, ErrKeyNotFound)
		if got := f.gh.Requests().JWKS; got != 2 {
			t.Fatalf("JWKS requests = %d, want 2", got)
		}
		time.Sleep(31 * time.Second)
		// The same kid is answered from the negative cache …
		_, err = f.validate(f.tokenWithKID(t, "bogus"))
		wantCode(t, err, CodeInvalidIdentityToken, msgNoKey, ErrKeyNotFound)
		if got := f.gh.Requests().JWKS; got != 2 {
			t.Fatalf("negative-cached kid refetched: %d requests", got)
		}
		if v := metricValue(t, f.reg, "keyless_oidc_unknown_kid_total", map[string]string{"issuer": githubURL, "outcome": "negative_cached"}); v != 1 {
			t.Errorf("negative_cached = %v", v)
		}
		// … another kid still refreshes …
		_, err = f.validate(f.tokenWithKID(t, "other"))
		wantCode(t, err, CodeInvalidIdentityToken, msgNoKey, ErrKeyNotFound)
		if got := f.gh.Requests().JWKS; got != 3 {
			t.Fatalf("JWKS requests = %d, want 3", got)
		}
		// … and a key published late is found once the entry expires.
		f.gh.PublishKey(alias(keys(t).p256, "bogus"))
		time.Sleep(negativeTTL)
		mustValidate(t, f, f.tokenWithKID(t, "bogus"))
	})
}

func TestMaxStaleLimitsOutageTolerance(t *testing.T) {
	keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{opts: func(o *Options) { o.MaxStale = 2 * time.Hour }})
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		f.gh.SetFailure(oidctest.Failure{Status: 500})
		time.Sleep(3 * time.Hour) // TTL 1 h + MaxStale 2 h
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		time.Sleep(time.Second)
		_, err := f.validate(f.baseToken().MustSerialize(t))
		wantCode(t, err, CodeIDPCommunicationError, msgNoKey, ErrHTTPStatus)
	})
}

func TestProviderChangeInvalidatesCache(t *testing.T) {
	keys(t)
	synctest.Test(t, func(t *testing.T) {
		f := newSyncFixture(t, fixtureOpts{})
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		// A client-ID change does not touch the keys …
		f.ghProv.ClientIDs = append(f.ghProv.ClientIDs, "another")
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		if got := f.gh.Requests().JWKS; got != 1 {
			t.Fatalf("JWKS requests = %d, want 1", got)
		}
		// … a thumbprint change drops them.
		f.ghProv.Thumbprints = []string{"990f4193972f2becf12ddeda5237f9c952f20d9e"}
		mustValidate(t, f, f.baseToken().MustSerialize(t))
		if got := f.gh.Requests().JWKS; got != 2 {
			t.Fatalf("JWKS requests = %d, want 2", got)
		}
		f.v.Forget(githubURL)
		if _, ok := f.v.CacheState(githubURL); ok {
			t.Error("Forget kept the cache")
		}
		if v := metricValue(t, f.reg, "keyless_oidc_jwks_keys", map[string]string{"issuer": githubURL}); v != -1 {
			t.Errorf("Forget kept the keys gauge: %v", v)
		}
	})
}
