package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// syncFunc makes a file's (or directory's) contents durable. It is injected
// so tests can count fsyncs or make them slow.
type syncFunc func(*os.File) error

func defaultSync(f *os.File) error { return f.Sync() }

// syncDir fsyncs a directory of the trail so that entries created, renamed
// or removed in it survive a crash.
func (r *trailRoot) syncDir(sync syncFunc, rel string) error {
	if err := r.checkParents(rel + "/"); err != nil {
		return err
	}
	d, err := r.root.Open(rel)
	if err != nil {
		return fmt.Errorf("audit: open dir for sync: %w", err)
	}
	defer d.Close()
	if err := sync(d); err != nil {
		return fmt.Errorf("audit: sync dir %s: %w", rel, err)
	}
	return nil
}

// mkdirAllSync creates the trail directory rel and its missing parents,
// fsyncing each parent whose entries changed. Existing parts must be real
// directories.
func (r *trailRoot) mkdirAllSync(sync syncFunc, rel string) error {
	if rel == "." {
		return nil
	}
	if err := r.checkDir(rel); err != nil {
		return err
	}
	if fi, err := r.root.Lstat(rel); err == nil && fi.IsDir() {
		return nil
	}
	parent := parentDir(rel)
	if err := r.mkdirAllSync(sync, parent); err != nil {
		return err
	}
	if err := r.root.Mkdir(rel, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("audit: mkdir: %w", err)
	}
	return r.syncDir(sync, parent)
}

// writeFileAtomic writes data to rel (of one of shapes) through a temporary
// file in journal/tmp (same filesystem), fsyncs it, renames it into place
// and fsyncs the target directory. Readers never see a partial file.
func (r *trailRoot) writeFileAtomic(sync syncFunc, rel string, shapes pathShape, data []byte) error {
	if err := r.check(rel, shapes); err != nil {
		return err
	}
	if err := r.mkdirAllSync(sync, parentDir(rel)); err != nil {
		return err
	}
	if err := r.checkDir(tmpDir); err != nil {
		return err
	}
	var (
		f   *os.File
		tmp string
	)
	for {
		var err error
		tmp = tmpDir + "/w-" + strconv.FormatUint(r.tmpSeq.Add(1), 10) + ".tmp"
		f, err = r.root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: create temp file: %w", err)
		}
		break
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			r.root.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("audit: write %s: %w", rel, err)
	}
	if err := sync(f); err != nil {
		return fmt.Errorf("audit: sync %s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit: close %s: %w", rel, err)
	}
	if err := r.root.Rename(tmp, rel); err != nil {
		return fmt.Errorf("audit: rename into %s: %w", rel, err)
	}
	ok = true
	return r.syncDir(sync, parentDir(rel))
}
