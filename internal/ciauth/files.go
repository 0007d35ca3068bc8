package ciauth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// secretFileMode is the mode of every file ciauth writes secrets to.
const secretFileMode fs.FileMode = 0o600

// lockRetry is how often a blocked writer polls for the lock.
const lockRetry = 10 * time.Millisecond

// resolveTarget follows symlinks so that writing replaces the file a link
// points to rather than the link itself (dotfiles managers link ~/.aws).
// A missing file resolves to itself.
func resolveTarget(path string) (string, error) {
	for range 40 { // as Linux's own symlink limit
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		dest, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(path), dest)
		}
		path = dest
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// lockPath takes an exclusive advisory lock (flock) on path+".lock". The
// lock lives in its own file because the data file is replaced by rename,
// which would leave a lock on the old inode.
func lockPath(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	l := flock.New(path+".lock", flock.SetPermissions(secretFileMode))
	ok, err := l.TryLockContext(ctx, lockRetry)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("locking %s: %w", path, ctx.Err())
	}
	return func() { _ = l.Unlock() }, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, fsync, rename, fsync of the directory. Readers see the old or
// the new file, never a torn one, even across a crash.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // best effort: some file systems refuse fsync on directories
		_ = d.Close()
	}
	return nil
}

// updateFileLocked rewrites path under its lock: read (a missing file reads
// as empty), edit, write atomically with mode 0600. Concurrent writers, in
// this process or others, serialise, so none loses another's change.
func updateFileLocked(ctx context.Context, path string, edit func(old []byte) ([]byte, error)) error {
	target, err := resolveTarget(path)
	if err != nil {
		return err
	}
	unlock, err := lockPath(ctx, target)
	if err != nil {
		return err
	}
	defer unlock()
	old, err := os.ReadFile(target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := edit(old)
	if err != nil {
		return err
	}
	return writeFileAtomic(target, data, secretFileMode)
}

// appendFile appends data to an existing CI environment file ($GITHUB_ENV,
// $BASH_ENV) in one write call. O_APPEND makes concurrent appends from
// several steps land whole.
func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, secretFileMode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
