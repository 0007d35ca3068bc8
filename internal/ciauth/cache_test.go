package ciauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// countingExchange issues credentials that live `life` from the bubble's
// current time, numbering them.
type countingExchange struct {
	life  time.Duration
	calls atomic.Int32
	fail  atomic.Bool
	delay time.Duration
}

func (c *countingExchange) exchange(context.Context) (Credentials, error) {
	n := c.calls.Add(1)
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	if c.fail.Load() {
		return Credentials{}, errors.New("Throttling: Rate exceeded")
	}
	return Credentials{AccessKeyID: fmt.Sprintf("ASIA%016d", n), SecretAccessKey: "s", SessionToken: "t", Expiration: time.Now().Add(c.life)}, nil
}

func TestCredentialCacheRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		ex := &countingExchange{life: time.Hour}
		cache := &CredentialCache{Dir: dir, Now: time.Now}
		get := func() string {
			t.Helper()
			c, err := cache.Get(t.Context(), "k", ex.exchange)
			if err != nil {
				t.Fatal(err)
			}
			return c.AccessKeyID
		}
		first := get()
		steps := []struct {
			after     time.Duration
			wantCalls int32
			wantSame  bool
		}{
			{time.Minute, 1, true},
			{43 * time.Minute, 1, true}, // 44 min: 16 min left, outside the 15 min margin
			{2 * time.Minute, 2, false}, // 46 min: inside the margin: re-exchange
			{30 * time.Minute, 2, true}, // the new credentials are cached in turn
			{30 * time.Minute, 3, false},
		}
		prev := first
		for i, s := range steps {
			time.Sleep(s.after)
			got := get()
			if n := ex.calls.Load(); n != s.wantCalls {
				t.Fatalf("step %d: %d exchanges, want %d", i, n, s.wantCalls)
			}
			if (got == prev) != s.wantSame {
				t.Fatalf("step %d: key %s after %s, same=%v want %v", i, got, prev, got == prev, s.wantSame)
			}
			prev = got
		}
		entries, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		fi, err := os.Stat(entries[0])
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("cache entry mode: %v %v", fi, err)
		}
	})
}

func TestCredentialCacheShortSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &countingExchange{life: 15 * time.Minute}
		cache := &CredentialCache{Dir: t.TempDir(), Now: time.Now}
		for range 3 {
			if _, err := cache.Get(t.Context(), "k", ex.exchange); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Minute)
		}
		// A 15 min session is reused for three quarters of its life rather
		// than re-exchanged on every call.
		if n := ex.calls.Load(); n != 1 {
			t.Fatalf("%d exchanges within 3 minutes of a 15 minute session", n)
		}
		time.Sleep(9 * time.Minute) // 12 min: past 3/4
		if _, err := cache.Get(t.Context(), "k", ex.exchange); err != nil {
			t.Fatal(err)
		}
		if n := ex.calls.Load(); n != 2 {
			t.Fatalf("%d exchanges, want a refresh after 3/4 of the lifetime", n)
		}
	})
}

func TestCredentialCacheServesStaleOnFailureUntilExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &countingExchange{life: time.Hour}
		cache := &CredentialCache{Dir: t.TempDir(), Now: time.Now}
		first, err := cache.Get(t.Context(), "k", ex.exchange)
		if err != nil {
			t.Fatal(err)
		}
		ex.fail.Store(true)
		time.Sleep(50 * time.Minute)
		got, err := cache.Get(t.Context(), "k", ex.exchange)
		if err != nil || got.AccessKeyID != first.AccessKeyID {
			t.Fatalf("inside the margin with a failing exchange: %v, %v; want the cached credentials", got, err)
		}
		time.Sleep(11 * time.Minute) // expired
		if _, err := cache.Get(t.Context(), "k", ex.exchange); err == nil {
			t.Fatal("expired credentials were served")
		}
	})
}

func TestCredentialCacheSingleExchangeUnderConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &countingExchange{life: time.Hour, delay: time.Second}
		cache := &CredentialCache{Dir: t.TempDir(), Now: time.Now}
		var wg sync.WaitGroup
		keys := make([]string, 8)
		for i := range keys {
			wg.Go(func() {
				c, err := cache.Get(context.Background(), "k", ex.exchange)
				if err != nil {
					t.Error(err)
				}
				keys[i] = c.AccessKeyID
			})
		}
		wg.Wait()
		if n := ex.calls.Load(); n != 1 {
			t.Errorf("%d exchanges for 8 concurrent callers", n)
		}
		for _, k := range keys {
			if k != keys[0] {
				t.Errorf("callers got different credentials: %v", keys)
			}
		}
	})
}

func TestCredentialCacheIgnoresCorruptEntries(t *testing.T) {
	dir := t.TempDir()
	cache := &CredentialCache{Dir: dir, Now: time.Now}
	for _, junk := range []string{"", "{", `{"Version":2}`, `{"Version":1,"AccessKeyId":"A"}`} {
		if err := os.WriteFile(cache.path("k"), []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		ex := &countingExchange{life: time.Hour}
		if _, err := cache.Get(t.Context(), "k", ex.exchange); err != nil || ex.calls.Load() != 1 {
			t.Errorf("entry %q: err %v, exchanges %d", junk, err, ex.calls.Load())
		}
	}
}

// TestAssumeCredentialProcessRefreshesWithFreshGitHubToken runs the whole
// `--output credential-process` path in a synctest bubble: GitHub's token
// endpoint and STS are served in-process, and the SDK-side caller is
// simulated by calling Assume repeatedly over a long job.
func TestAssumeCredentialProcessRefreshesWithFreshGitHubToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sts := newFakeSTS(t, nil)
		var ghHits atomic.Int32
		gh := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := ghHits.Add(1)
			if r.Header.Get("Authorization") != "bearer gh-request-token" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, `{"value":%q}`, makeJWT(t, map[string]any{"aud": r.URL.Query().Get("audience"), "n": n, "exp": time.Now().Add(5 * time.Minute).Unix()}))
		})
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == "token.github.test" {
				return handlerTransport{gh}.RoundTrip(r)
			}
			return handlerTransport{sts}.RoundTrip(r)
		})}
		env := Env{
			"GITHUB_ACTIONS": "true", "RUNNER_TEMP": t.TempDir(),
			"ACTIONS_ID_TOKEN_REQUEST_URL":   "https://token.github.test/?api-version=2.0",
			"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "gh-request-token",
			"GITHUB_REPOSITORY":              "acme/web", "GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "long",
		}
		run := func() map[string]any {
			t.Helper()
			var out bytes.Buffer
			err := Assume(t.Context(), Options{RoleARN: testRole, EndpointURL: "http://sts.test", Output: OutputCredentialProcess},
				Runtime{Env: env, Stdout: &out, HTTPClient: client, Now: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
				t.Fatalf("%v: %q", err, out.String())
			}
			if doc["Version"] != float64(1) {
				t.Fatalf("Version = %v", doc["Version"])
			}
			return doc
		}
		first := run()
		time.Sleep(30 * time.Minute)
		if second := run(); second["AccessKeyId"] != first["AccessKeyId"] || len(sts.Calls()) != 1 || ghHits.Load() != 1 {
			t.Fatalf("at 30 min: STS calls %d, GitHub hits %d; want the cache", len(sts.Calls()), ghHits.Load())
		}
		time.Sleep(20 * time.Minute) // 50 min: inside the refresh margin
		third := run()
		if third["AccessKeyId"] == first["AccessKeyId"] || len(sts.Calls()) != 2 || ghHits.Load() != 2 {
			t.Fatalf("at 50 min: STS calls %d, GitHub hits %d; want a new exchange with a new token", len(sts.Calls()), ghHits.Load())
		}
		calls := sts.Calls()
		if calls[0].Get("WebIdentityToken") == calls[1].Get("WebIdentityToken") {
			t.Error("the refresh reused the first GitHub token")
		}
		exp, _ := time.Parse(time.RFC3339, third["Expiration"].(string))
		if !exp.After(time.Now().Add(55 * time.Minute)) {
			t.Errorf("refreshed Expiration %v is not an hour out", exp)
		}
	})
}

// TestCredentialCacheRefusesSharedPaths (issue 11 item 13c): a cache
// directory or entry another user could write, or that points elsewhere,
// is refused with an error naming the fix, before any exchange; the cache
// creates its directory 0700 and its files 0600.
func TestCredentialCacheRefusesSharedPaths(t *testing.T) {
	fresh := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "keyless", "credential-process")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	key := "k"
	tests := []struct {
		name    string
		setup   func(t *testing.T) string // returns the cache dir
		wantMsg string
		root    bool // needs root (to give a file to another user)
	}{
		{name: "directory writable by others", wantMsg: "chmod go-w", setup: func(t *testing.T) string {
			dir := fresh(t)
			os.Chmod(dir, 0o777)
			return dir
		}},
		{name: "directory writable by group", wantMsg: "mode 0770", setup: func(t *testing.T) string {
			dir := fresh(t)
			os.Chmod(dir, 0o770)
			return dir
		}},
		{name: "directory is a symlink", wantMsg: "symbolic link", setup: func(t *testing.T) string {
			target := fresh(t)
			link := filepath.Join(t.TempDir(), "cache")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}},
		{name: "entry is a directory", wantMsg: "not a regular file", setup: func(t *testing.T) string {
			dir := fresh(t)
			os.Mkdir(filepath.Join(dir, key+".json"), 0o700)
			return dir
		}},
		{name: "entry is a symlink", wantMsg: "symbolic link", setup: func(t *testing.T) string {
			dir := fresh(t)
			other := filepath.Join(t.TempDir(), "planted.json")
			os.WriteFile(other, []byte(`{}`), 0o600)
			if err := os.Symlink(other, filepath.Join(dir, key+".json")); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{name: "entry writable by others", wantMsg: "rm ", setup: func(t *testing.T) string {
			dir := fresh(t)
			p := filepath.Join(dir, key+".json")
			os.WriteFile(p, []byte(`{}`), 0o600)
			os.Chmod(p, 0o666)
			return dir
		}},
		{name: "lock file is a symlink", wantMsg: "symbolic link", setup: func(t *testing.T) string {
			dir := fresh(t)
			if err := os.Symlink(filepath.Join(t.TempDir(), "x"), filepath.Join(dir, key+".json.lock")); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{name: "directory owned by another user", wantMsg: "owned by uid 65534", root: true, setup: func(t *testing.T) string {
			dir := fresh(t)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{name: "entry owned by another user", wantMsg: "owned by uid 65534", root: true, setup: func(t *testing.T) string {
			dir := fresh(t)
			p := filepath.Join(dir, key+".json")
			os.WriteFile(p, []byte(`{}`), 0o600)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("giving a file to another user needs root")
			}
			ex := &countingExchange{life: time.Hour}
			cache := &CredentialCache{Dir: tc.setup(t), Now: time.Now}
			_, err := cache.Get(t.Context(), key, ex.exchange)
			if !errors.Is(err, ErrCacheNotPrivate) {
				t.Fatalf("Get = %v, want ErrCacheNotPrivate", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.Contains(err.Error(), "--cache-dir") {
				t.Errorf("error %q does not say %q and --cache-dir", err, tc.wantMsg)
			}
			if n := ex.calls.Load(); n != 0 {
				t.Errorf("%d exchanges despite the refused cache", n)
			}
		})
	}

	t.Run("creates 0700 and 0600", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new", "cache")
		cache := &CredentialCache{Dir: dir, Now: time.Now}
		if _, err := cache.Get(t.Context(), key, (&countingExchange{life: time.Hour}).exchange); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, key+".json"): 0o600, filepath.Join(dir, key+".json.lock"): 0o600} {
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: mode %04o, want %04o", p, got, want)
			}
		}
		// A second call reads the entry the first wrote: a private cache
		// is accepted.
		if _, err := cache.Get(t.Context(), key, func(context.Context) (Credentials, error) {
			return Credentials{}, errors.New("must not exchange again")
		}); err != nil {
			t.Fatal(err)
		}
	})
}
