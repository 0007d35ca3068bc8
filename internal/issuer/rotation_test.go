package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/store/sqlite"
	"github.com/keylessci/keyless/internal/testenv"
)

// rotationCfg rotates twice a day so that two weeks of simulated time see
// many rotations; pre-publication is 1 h + 2×2 min + 1 min = 65 min.
func rotationCfg() Config {
	return Config{
		ID: "ci", URL: "https://keyless.example.com/ci", Algorithm: ES256,
		RotationPeriod: 12 * time.Hour, JWKSMaxAge: time.Hour, MaxTokenLifetime: 6 * time.Hour,
	}
}

var rotationTiming = timing{reload: 2 * time.Minute, skew: time.Minute}

func TestPlanFor(t *testing.T) {
	c := rotationCfg()
	c.RotationPeriod = 24 * time.Hour
	c = c.withDefaults()
	pre := rotationTiming.prePublish(c) // 65 min
	now := t0
	h := time.Hour
	active := keyTimes{ID: "a", Create: now.Add(-30 * h), Activate: now.Add(-20 * h)}
	tests := []struct {
		name   string
		keys   []keyTimes
		manual bool
		want   plan
	}{
		{"first key signs at once", nil, false, plan{create: true, activate: now}},
		{"expired keys count as none", []keyTimes{{ID: "old", Activate: now.Add(-90 * h), Retire: now.Add(-40 * h), Expire: now.Add(-30 * h)}}, false,
			plan{create: true, activate: now}},
		{"only a retired but published key: the new one is pre-published", []keyTimes{{ID: "r", Activate: now.Add(-30 * h), Retire: now.Add(-h), Expire: now.Add(5 * h)}}, false,
			plan{create: true, activate: now.Add(pre)}},
		{"not due yet", []keyTimes{active}, false, plan{dueAt: now.Add(4*h - pre)}},
		{"due on time: the next key signs when the period ends", []keyTimes{{ID: "a", Activate: now.Add(pre - 24*h)}}, false,
			plan{create: true, activate: now.Add(pre), retire: "a", reschedule: true, dueAt: now}},
		{"due late: the next key still gets its full pre-publication", []keyTimes{{ID: "a", Activate: now.Add(-23 * h)}}, false,
			plan{create: true, activate: now.Add(pre), retire: "a", reschedule: true, dueAt: now.Add(h - pre)}},
		{"overdue", []keyTimes{{ID: "a", Activate: now.Add(-30 * h)}}, false,
			plan{create: true, activate: now.Add(pre), retire: "a", reschedule: true, dueAt: now.Add(-6*h - pre)}},
		{"pending key: nothing to do", []keyTimes{
			{ID: "a", Activate: now.Add(-23 * h), Retire: now.Add(h), Expire: now.Add(7 * h)},
			{ID: "b", Create: now.Add(-10 * time.Minute), Activate: now.Add(h)}}, false,
			plan{next: "b", activate: now.Add(h), retire: "a"}},
		{"manual: next key signs after pre-publication", []keyTimes{active}, true,
			plan{create: true, activate: now.Add(pre), retire: "a", reschedule: true}},
		{"manual with a long-published pending key: it signs now", []keyTimes{
			{ID: "a", Activate: now.Add(-23 * h), Retire: now.Add(3 * h), Expire: now.Add(9 * h)},
			{ID: "b", Create: now.Add(-2 * h), Activate: now.Add(3 * h)}}, true,
			plan{next: "b", bringForward: "b", activate: now, retire: "a", reschedule: true}},
		{"manual with a fresh pending key: it waits out its pre-publication", []keyTimes{
			{ID: "a", Activate: now.Add(-23 * h), Retire: now.Add(3 * h), Expire: now.Add(9 * h)},
			{ID: "b", Create: now.Add(-5 * time.Minute), Activate: now.Add(3 * h)}}, true,
			plan{next: "b", bringForward: "b", activate: now.Add(pre - 5*time.Minute), retire: "a", reschedule: true}},
		{"manual when the pending key cannot come sooner", []keyTimes{
			{ID: "a", Activate: now.Add(-23 * h), Retire: now.Add(30 * time.Minute), Expire: now.Add(7 * h)},
			{ID: "b", Create: now.Add(-5 * time.Minute), Activate: now.Add(30 * time.Minute)}}, true,
			plan{next: "b", activate: now.Add(30 * time.Minute), retire: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planFor(tt.keys, now, c, rotationTiming, tt.manual)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(plan{})); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// node is one simulated server sharing the store file.
type node struct {
	svc *Service
	h   http.Handler
}

func newNode(t *testing.T, path string, cfg Config) *node {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := New(Options{
		Keys: st.KeyMaterial(), Master: testMaster(t), Issuers: []Config{cfg},
		ReloadInterval: rotationTiming.reload, ClockSkew: rotationTiming.skew,
		Authenticate: func(*http.Request, []byte) (*Caller, error) { return &Caller{Admin: true}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return &node{svc: svc, h: svc.Handler()}
}

// jwks fetches a node's JWKS as a verifier would.
func (n *node) jwks(t *testing.T) (*jose.JSONWebKeySet, time.Duration) {
	t.Helper()
	w := httptest.NewRecorder()
	n.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ci/.well-known/jwks.json", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("%s: JWKS answered %d %s", time.Now().Format(time.RFC3339), w.Code, w.Body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	var maxAge int
	if _, err := fmt.Sscanf(w.Header().Get("Cache-Control"), "public, max-age=%d", &maxAge); err != nil {
		t.Fatalf("Cache-Control %q", w.Header().Get("Cache-Control"))
	}
	return &set, time.Duration(maxAge) * time.Second
}

// cachingVerifier holds a JWKS for exactly its max-age and never refetches
// on an unknown kid: the strictest verifier the rotation must satisfy.
type cachingVerifier struct {
	set     *jose.JSONWebKeySet
	expires time.Time
}

// TestRotationNeverLeavesATokenUnverifiable simulates two weeks of two
// nodes sharing one store, rotating twice a day on schedule and sometimes by
// hand, while tokens of random lifetimes are minted every few minutes from
// either node. At every step it asserts that every unexpired token's kid is
// in both nodes' JWKS and in every caching verifier's JWKS, and at the end
// that every key was in every node's JWKS at least max-age before it first
// signed.
func TestRotationNeverLeavesATokenUnverifiable(t *testing.T) {
	if testenv.Short() {
		t.Skip("long simulation; runs without -short and always under CI")
	}
	synctest.Test(t, func(t *testing.T) {
		cfg := rotationCfg()
		path := filepath.Join(t.TempDir(), "keyless.db")
		nodes := []*node{newNode(t, path, cfg), newNode(t, path, cfg)}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for _, n := range nodes {
			if err := n.svc.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rng := mathrand.New(mathrand.NewPCG(7, 7))
		type issued struct {
			kid string
			exp time.Time
		}
		var live []issued
		firstSeen := map[string][]time.Time{} // kid -> per node
		firstSign := map[string]time.Time{}
		verifiers := make([]*cachingVerifier, 3)
		start := time.Now()
		const step = 3 * time.Minute
		manualRotations := 0
		mint := func(n *node, lifetime time.Duration) {
			t.Helper()
			tok, err := n.svc.Mint(ctx, "ci", MintRequest{Subject: "job", Audience: "sts", Lifetime: lifetime})
			if err != nil {
				t.Fatalf("%s: mint: %v", time.Now(), err)
			}
			if _, ok := firstSign[tok.KeyID]; !ok {
				firstSign[tok.KeyID] = time.Now()
			}
			live = append(live, issued{tok.KeyID, tok.ExpiresAt})
		}
		// observe fetches every node's JWKS, refreshes the caching
		// verifiers whose copy expired, and checks that every unexpired
		// token's kid is in all of them.
		var sets []*jose.JSONWebKeySet
		observe := func() {
			t.Helper()
			now := time.Now()
			sets = make([]*jose.JSONWebKeySet, len(nodes))
			for j, n := range nodes {
				set, maxAge := n.jwks(t)
				if maxAge != cfg.JWKSMaxAge {
					t.Fatalf("max-age %s, want %s", maxAge, cfg.JWKSMaxAge)
				}
				sets[j] = set
				for _, k := range set.Keys {
					if firstSeen[k.KeyID] == nil {
						firstSeen[k.KeyID] = make([]time.Time, len(nodes))
					}
					if firstSeen[k.KeyID][j].IsZero() {
						firstSeen[k.KeyID][j] = now
					}
				}
			}
			// Verifiers start staggered and refresh from either node.
			for j := range verifiers {
				if now.Before(start.Add(time.Duration(j) * 23 * time.Minute)) {
					continue
				}
				if v := verifiers[j]; v == nil || !now.Before(v.expires) {
					verifiers[j] = &cachingVerifier{set: sets[(j+int(now.Unix()/60))%len(nodes)], expires: now.Add(cfg.JWKSMaxAge)}
				}
			}
			kept := live[:0]
			for _, it := range live {
				if !now.Before(it.exp) {
					continue
				}
				kept = append(kept, it)
				for j, set := range sets {
					if len(set.Key(it.kid)) != 1 {
						t.Fatalf("%s: node %d's JWKS lacks kid %s of a token valid until %s", now, j, it.kid, it.exp)
					}
				}
				for j, v := range verifiers {
					if v != nil && len(v.set.Key(it.kid)) != 1 {
						t.Fatalf("%s: verifier %d's cached JWKS lacks kid %s of a token valid until %s", now, j, it.kid, it.exp)
					}
				}
			}
			live = kept
		}
		worstCase := 0
		for i := 0; time.Since(start) < 14*24*time.Hour; i++ {
			next := start.Add(time.Duration(i+1) * step)
			// Between ticks, the critical instants: one second before a
			// pending key activates, mint the longest tokens with the old
			// key (the worst case for retention); one second before a
			// token expires, check its key is still published.
			type event struct {
				at   time.Time
				mint bool
			}
			var events []event
			keys, err := nodes[0].svc.Keys("ci")
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if at := k.ActivateAt.Add(-time.Second); k.State == "pending" && at.After(time.Now()) && at.Before(next) {
					events = append(events, event{at, true})
				}
			}
			for _, it := range live {
				if at := it.exp.Add(-time.Second); at.After(time.Now()) && at.Before(next) {
					events = append(events, event{at, false})
				}
			}
			slices.SortFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
			for _, e := range events {
				time.Sleep(time.Until(e.at))
				if e.mint {
					for _, n := range nodes {
						mint(n, cfg.MaxTokenLifetime)
					}
					worstCase++
				}
				observe()
			}

			time.Sleep(time.Until(next))
			// An operator rotates by hand about every five days, from
			// either node.
			if rng.IntN(5*24*20) == 0 {
				if _, err := nodes[rng.IntN(2)].svc.Rotate(ctx, "ci"); err != nil {
					t.Fatal(err)
				}
				manualRotations++
			}
			n := nodes[i%len(nodes)]
			mint(n, time.Duration(1+rng.IntN(int(cfg.MaxTokenLifetime/time.Minute)))*time.Minute)
			observe()
			tok, err := n.svc.Mint(ctx, "ci", MintRequest{Subject: "job", Audience: "sts"})
			if err != nil {
				t.Fatal(err)
			}
			verifyWith(t, sets[0], tok)
		}

		if len(firstSign) < 20 {
			t.Fatalf("only %d keys signed in two weeks of rotation twice a day", len(firstSign))
		}
		if worstCase < 15 {
			t.Fatalf("only %d worst-case mints just before an activation", worstCase)
		}
		if manualRotations == 0 {
			t.Fatal("the simulation made no manual rotation")
		}
		for kid, signed := range firstSign {
			for j, seen := range firstSeen[kid] {
				if seen.IsZero() || signed.Sub(seen) < cfg.JWKSMaxAge {
					if signed.Sub(start) < time.Hour {
						continue // the first key signs at once: no JWKS existed before it
					}
					t.Errorf("kid %s: published on node %d at %s, first signed at %s: less than max-age %s", kid, j, seen, signed, cfg.JWKSMaxAge)
				}
			}
		}
		// Expired keys are deleted from the store, not kept forever.
		docs, err := nodes[0].svc.keys.List(ctx, purposeOf("ci"))
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) > 4 {
			t.Errorf("%d keys remain in the store; expired keys are not deleted", len(docs))
		}
		cancel()
	})
}

func verifyWith(t *testing.T, set *jose.JSONWebKeySet, tok *Token) {
	t.Helper()
	p, err := jwt.ParseSigned(tok.Raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(p.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("token kid %s not in JWKS", p.Headers[0].KeyID)
	}
	var c jwt.Claims
	if err := p.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("signature: %v", err)
	}
}

// TestManualRotation checks "rotate now" semantics on one
// node with a settable clock: the new key never signs before PrePublish.
func TestManualRotation(t *testing.T) {
	f := newFixture(t, []Config{rotationCfg()}, func(o *Options) {
		o.ReloadInterval, o.ClockSkew = rotationTiming.reload, rotationTiming.skew
	})
	ctx := context.Background()
	pre, _ := f.svc.PrePublish("ci")
	first, err := f.svc.Mint(ctx, "ci", MintRequest{Subject: "s", Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.svc.Rotate(ctx, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created || r.KeyID == first.KeyID || !r.ActivateAt.Equal(t0.Add(pre)) || r.RetiringKeyID != first.KeyID {
		t.Fatalf("rotation %+v", r)
	}
	if want := t0.Add(pre).Add(rotationTiming.retention(f.svc.order[0].cfg)); !r.RetiredKeyExpireAt.Equal(want) {
		t.Errorf("old key leaves the JWKS at %s, want %s", r.RetiredKeyExpireAt, want)
	}
	// Rotating again agrees on the same next key.
	r2, err := f.svc.Rotate(ctx, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if r2.Created || r2.KeyID != r.KeyID || r2.RetiringKeyID != first.KeyID || !r2.RetiredKeyExpireAt.Equal(r.RetiredKeyExpireAt) {
		t.Errorf("second rotation made another key: %+v", r2)
	}
	keys, _ := f.svc.Keys("ci")
	if len(keys) != 2 || keys[1].State != "pending" || keys[1].KeyID != r.KeyID {
		t.Fatalf("keys after rotation: %+v", keys)
	}
	// Until PrePublish has passed the old key signs.
	f.clock.Advance(pre - time.Second)
	if err := f.svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if tok, _ := f.svc.Mint(ctx, "ci", MintRequest{Subject: "s", Audience: "a"}); tok.KeyID != first.KeyID {
		t.Errorf("new key signed %s before its pre-publication ended", time.Second)
	}
	f.clock.Advance(time.Second)
	if tok, _ := f.svc.Mint(ctx, "ci", MintRequest{Subject: "s", Audience: "a"}); tok.KeyID != r.KeyID {
		t.Errorf("after pre-publication kid %s signs, want %s", tok.KeyID, r.KeyID)
	}
	// A third rotation much later brings the (now active) key's successor;
	// the first key is still published until its tokens expired.
	jw := func() []string {
		w := httptest.NewRecorder()
		f.svc.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ci/.well-known/jwks.json", nil))
		var set jose.JSONWebKeySet
		_ = json.Unmarshal(w.Body.Bytes(), &set)
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.KeyID)
		}
		return kids
	}
	if kids := jw(); len(kids) != 2 {
		t.Errorf("JWKS after activation: %v, want old and new", kids)
	}
	f.clock.Advance(rotationTiming.retention(f.svc.order[0].cfg))
	if err := f.svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := jw(); len(kids) != 1 || kids[0] != r.KeyID {
		t.Errorf("JWKS after the old key's tokens expired: %v, want only %s", kids, r.KeyID)
	}
}

// TestConcurrentRotationsAgree runs rotations from two Services on two
// handles of one SQLite file at once: they must agree on one new key.
func TestConcurrentRotationsAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyless.db")
	cfg := Config{ID: "ci", URL: "https://keyless.example.com/ci", Algorithm: RS256}
	mk := func() *Service {
		st := openStore(t, path)
		s, err := New(Options{Keys: st.KeyMaterial(), Master: testMaster(t), Issuers: []Config{cfg}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := mk(), mk()
	ctx := context.Background()

	// Two first starts at once create one first key.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*Service{a, b} {
		wg.Go(func() { errs[i] = s.Sync(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ka, _ := a.Keys("ci")
	kb, _ := b.Keys("ci")
	if len(ka) != 1 || len(kb) != 1 || ka[0].KeyID != kb[0].KeyID {
		t.Fatalf("first start: node a has %+v, node b %+v", ka, kb)
	}

	// Concurrent manual rotations (several per node) agree on one next key.
	results := make([]*Rotation, 6)
	for i := range results {
		s := []*Service{a, b}[i%2]
		wg.Go(func() {
			r, err := s.Rotate(ctx, "ci")
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = r
		})
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		if r == nil {
			t.FailNow()
		}
		if r.Created {
			created++
		}
		if r.KeyID != results[0].KeyID {
			t.Errorf("rotations disagree: %s and %s", r.KeyID, results[0].KeyID)
		}
	}
	if created != 1 {
		t.Errorf("%d rotations created a key, want exactly 1", created)
	}
	docs, err := a.keys.List(ctx, purposeOf("ci"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Errorf("%d keys in the store, want 2", len(docs))
	}
}

// TestStaleViewRefuses: a node that cannot reload stops signing and stops
// serving the JWKS (which might lack a pre-published key) rather than
// risk a verification gap.
func TestStaleViewRefuses(t *testing.T) {
	f := newFixture(t, []Config{{ID: "ci", URL: "https://keyless.example.com/ci", Algorithm: ES256}})
	ctx := context.Background()
	if _, err := f.svc.Mint(ctx, "ci", MintRequest{Subject: "s", Audience: "a"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2*DefaultReloadInterval + time.Second) // no Sync ran
	if _, err := f.svc.Mint(ctx, "ci", MintRequest{Subject: "s", Audience: "a"}); !errors.Is(err, ErrStale) {
		t.Errorf("mint from a stale view: %v", err)
	}
	w := httptest.NewRecorder()
	f.svc.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ci/.well-known/jwks.json", nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("stale JWKS answered %d, Cache-Control %q", w.Code, w.Header().Get("Cache-Control"))
	}
	if err := f.svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Mint(ctx, "ci", MintRequest{Subject: "s", Audience: "a"}); err != nil {
		t.Errorf("after a reload: %v", err)
	}
}
