package ciauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultRefreshMargin is how long before expiry cached credentials are
// replaced. It matches botocore's advisory refresh window (15 min; its
// mandatory window is 10 min): botocore calls credential_process again from
// then on, and would fail if handed credentials inside the mandatory window.
const DefaultRefreshMargin = 15 * time.Minute

// CredentialCache keeps credential_process results on disk, so the SDK
// calling `keyless assume --output credential-process` again and again costs
// one exchange per credential lifetime, and a long job gets new credentials
// before the old ones expire.
type CredentialCache struct {
	Dir    string
	Now    func() time.Time
	Margin time.Duration // DefaultRefreshMargin when zero
	Logger *slog.Logger
}

type cacheEntry struct {
	Version         int       `json:"Version"`
	AccessKeyID     string    `json:"AccessKeyId"`
	SecretAccessKey string    `json:"SecretAccessKey"`
	SessionToken    string    `json:"SessionToken"`
	Expiration      time.Time `json:"Expiration"`
	Obtained        time.Time `json:"Obtained"`
}

// CacheKey names a cache entry from everything that changes which
// credentials would be issued: the role, where they are issued, the token
// source, an explicit session name, the duration, and the CI job's identity
// (so jobs sharing a self-hosted machine never read each other's entries).
func CacheKey(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

func (c *CredentialCache) path(key string) string { return filepath.Join(c.Dir, key+".json") }

// refreshAt is when an entry should be replaced: Margin before expiry, but
// never earlier than three quarters into its lifetime, so short sessions
// (900 s) are not re-exchanged on every call.
func (c *CredentialCache) refreshAt(e cacheEntry) time.Time {
	margin := c.Margin
	if margin <= 0 {
		margin = DefaultRefreshMargin
	}
	if life := e.Expiration.Sub(e.Obtained); life > 0 && life/4 < margin {
		margin = life / 4
	}
	return e.Expiration.Add(-margin)
}

// Get returns cached credentials for key while they are fresh, and
// otherwise calls exchange and caches its answer. The entry is locked for
// the whole decision, so concurrent callers (the SDK in parallel processes)
// exchange once. If the exchange fails while the cached credentials have
// not yet expired, those are returned with a warning.
func (c *CredentialCache) Get(ctx context.Context, key string, exchange func(context.Context) (Credentials, error)) (Credentials, error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return Credentials{}, fmt.Errorf("credential cache: %w", err)
	}
	if err := checkPrivate(c.Dir, true); err != nil {
		return Credentials{}, err
	}
	p := c.path(key)
	for _, f := range []string{p, p + ".lock"} {
		if err := checkPrivate(f, false); err != nil {
			return Credentials{}, err
		}
	}
	unlock, err := lockPath(ctx, p)
	if err != nil {
		return Credentials{}, fmt.Errorf("credential cache: %w", err)
	}
	defer unlock()

	now := c.Now()
	cached, haveCached := c.read(p)
	if haveCached && now.Before(c.refreshAt(cached)) {
		return cached.credentials(), nil
	}
	fresh, err := exchange(ctx)
	if err != nil {
		if haveCached && now.Before(cached.Expiration) {
			if c.Logger != nil {
				c.Logger.Warn("refreshing cached credentials failed; using the cached ones until they expire",
					"expiration", cached.Expiration.Format(time.RFC3339), "error", err.Error())
			}
			return cached.credentials(), nil
		}
		return Credentials{}, err
	}
	e := cacheEntry{
		Version:         1,
		AccessKeyID:     fresh.AccessKeyID,
		SecretAccessKey: fresh.SecretAccessKey,
		SessionToken:    fresh.SessionToken,
		Expiration:      fresh.Expiration.UTC(),
		Obtained:        now.UTC(),
	}
	data, err := json.Marshal(e)
	if err != nil {
		return Credentials{}, err
	}
	if err := writeFileAtomic(p, data, secretFileMode); err != nil {
		// The credentials are good; a cache that cannot be written only
		// costs the next call an exchange.
		if c.Logger != nil {
			c.Logger.Warn("could not write the credential cache", "path", p, "error", err.Error())
		}
	}
	return fresh, nil
}

// ErrCacheNotPrivate is the cause of a refused credential cache directory
// or file: one another user owns or could write would let that user read
// this job's credentials or hand it credentials of their choosing.
var ErrCacheNotPrivate = errors.New("credential cache is not private to this user")

// checkPrivate refuses a cache directory (isDir) or entry that is a
// symbolic link, is not what it should be, is owned by another user, or
// is writable by group or others. A missing entry is fine (it will be
// created 0600 in a directory already checked).
func checkPrivate(path string, isDir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		if !isDir && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("credential cache: %w", err)
	}
	what := "file"
	if isDir {
		what = "directory"
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("credential cache %s %s %s: %w", what, path, fmt.Sprintf(format, args...), ErrCacheNotPrivate)
	}
	mode := fi.Mode()
	switch {
	case mode&fs.ModeSymlink != 0:
		return refuse("is a symbolic link; remove it, or pass --cache-dir with a real directory of your own")
	case isDir && !mode.IsDir(), !isDir && !mode.IsRegular():
		return refuse("is not a regular %s; remove it, or pass --cache-dir", what)
	}
	uid, ok := fileOwner(fi)
	if !ok {
		return nil // no uids or POSIX modes here (Windows): ACLs protect the profile
	}
	if uid != currentUID() {
		return refuse("is owned by uid %d, not by you (uid %d); remove it, or pass --cache-dir with a directory of your own", uid, currentUID())
	}
	if perm := mode.Perm(); perm&0o022 != 0 {
		fix := "chmod go-w " + path
		if !isDir {
			fix = "rm " + path
		}
		return refuse("is writable by group or others (mode %04o); run `%s`, or pass --cache-dir", perm, fix)
	}
	return nil
}

// read loads an entry; a missing, unreadable or malformed one is a miss.
func (c *CredentialCache) read(p string) (cacheEntry, bool) {
	data, err := os.ReadFile(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && c.Logger != nil {
			c.Logger.Warn("ignoring unreadable credential cache entry", "path", p, "error", err.Error())
		}
		return cacheEntry{}, false
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil || e.Version != 1 || e.AccessKeyID == "" ||
		e.SecretAccessKey == "" || e.Expiration.IsZero() {
		return cacheEntry{}, false
	}
	return e, true
}

func (e cacheEntry) credentials() Credentials {
	return Credentials{e.AccessKeyID, e.SecretAccessKey, e.SessionToken, e.Expiration}
}

// DefaultCacheDir picks where credential_process results live: inside
// $RUNNER_TEMP on GitHub Actions (emptied at the start and end of every
// job), else $XDG_CACHE_HOME/keyless, else ~/.cache/keyless.
func DefaultCacheDir(env Env) (string, error) {
	switch {
	case env.Get("RUNNER_TEMP") != "":
		return filepath.Join(env.Get("RUNNER_TEMP"), "keyless-credential-cache"), nil
	case env.Get("XDG_CACHE_HOME") != "":
		return filepath.Join(env.Get("XDG_CACHE_HOME"), "keyless", "credential-process"), nil
	case env.home() != "":
		return filepath.Join(env.home(), ".cache", "keyless", "credential-process"), nil
	}
	return "", errors.New("no cache directory: set HOME or pass --cache-dir")
}
