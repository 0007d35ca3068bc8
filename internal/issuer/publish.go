package issuer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Static file layout written by Publish, relative to the directory a static
// host serves at the issuer URL.
const (
	DiscoveryFile = ".well-known/openid-configuration"
	JWKSFile      = ".well-known/jwks.json"
)

// PublishResult reports what Publish wrote.
type PublishResult struct {
	Files []string `json:"files"` // paths written
	Keys  []string `json:"keys"`  // kids in the JWKS, pending ones included
	// NextChange is when the key set next changes on schedule (a rotation
	// falls due or a key expires): publish again by then, and in any case
	// every Config.PublishInterval.
	NextChange time.Time `json:"next_change,omitzero"`
}

// Publish writes issuerID's discovery document and JWKS (pending keys
// included) under dir, laid out so that a static host (an S3 bucket, a web
// server) serving dir at the issuer URL serves the issuer:
// dir/.well-known/openid-configuration and dir/.well-known/jwks.json. Files
// are replaced atomically. Run Sync first so that due rotations happen.
func (s *Service) Publish(ctx context.Context, dir, issuerID string) (*PublishResult, error) {
	is, ok := s.issuers[issuerID]
	if !ok {
		return nil, noSuchIssuer(issuerID)
	}
	now := s.now()
	v := is.view.Load()
	if !v.fresh(now, s.timing) {
		is.mu.Lock()
		_, err := s.reload(ctx, is)
		is.mu.Unlock()
		if err != nil {
			return nil, err
		}
		v = is.view.Load()
	}
	d := s.publicDocsAt(is, v, now)
	if d.nkeys == 0 {
		return nil, fmt.Errorf("%w: issuer %s has no keys to publish (run a rotation first)", ErrNoSigningKey, issuerID)
	}
	res := &PublishResult{}
	for _, k := range v.published(now) {
		res.Keys = append(res.Keys, k.kid)
	}
	for _, f := range []struct {
		name string
		body []byte
	}{{DiscoveryFile, d.discovery}, {JWKSFile, d.jwks}} {
		path := filepath.Join(dir, filepath.FromSlash(f.name))
		if err := writeFileAtomic(path, f.body); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, path)
	}
	next := planFor(v.times(), now, is.cfg, s.timing, false).dueAt
	for _, k := range v.keys {
		if k.expire.After(now) && (next.IsZero() || k.expire.Before(next)) {
			next = k.expire
		}
	}
	res.NextChange = next
	return res, nil
}

// writeFileAtomic replaces path with body (mode 0644: these are public
// documents), creating parent directories.
func writeFileAtomic(path string, body []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("issuer: publish: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("issuer: publish: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(body); err != nil {
		f.Close()
		return fmt.Errorf("issuer: publish %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("issuer: publish %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("issuer: publish %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("issuer: publish %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("issuer: publish %s: %w", path, err)
	}
	return nil
}
