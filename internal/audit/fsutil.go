package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// syncFunc makes a file's (or directory's) contents durable. It is injected
// so tests can count fsyncs or make them slow.
type syncFunc func(*os.File) error

func defaultSync(f *os.File) error { return f.Sync() }

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it survive a crash.
func syncDir(sync syncFunc, dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: open dir for sync: %w", err)
	}
	defer d.Close()
	if err := sync(d); err != nil {
		return fmt.Errorf("audit: sync dir %s: %w", dir, err)
	}
	return nil
}

// mkdirAllSync creates dir and its missing parents up to root, fsyncing each
// parent whose entries changed.
func mkdirAllSync(sync syncFunc, root, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && len(parent) >= len(root) {
		if err := mkdirAllSync(sync, root, parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("audit: mkdir: %w", err)
	}
	return syncDir(sync, parent)
}

// writeFileAtomic writes data to path through a temporary file in tmpDir
// (same filesystem), fsyncs it, renames it into place and fsyncs the target
// directory. Readers never see a partial file.
func writeFileAtomic(sync syncFunc, root, tmpDir, path string, data []byte) error {
	if err := mkdirAllSync(sync, root, filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, "w-*.tmp")
	if err != nil {
		return fmt.Errorf("audit: create temp file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("audit: write %s: %w", path, err)
	}
	if err := sync(f); err != nil {
		return fmt.Errorf("audit: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("audit: rename into %s: %w", path, err)
	}
	ok = true
	return syncDir(sync, filepath.Dir(path))
}
