package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
)

// Confinement. Someone who can write the data directory but not read the
// master key must not be able to make keyless delete, write or read files
// outside its trail, nor inside it through a path keyless did not create.
// Paths reach the trail code from its own state (intents, pending files,
// the newest digest), from digests (previous digest, log files), from the
// head store and from directory listings: every one goes through
// [trailRoot.check] before it is used, and every file operation goes
// through an [os.Root] opened on the trail directory, so even a symbolic
// link swapped in after the check cannot lead outside it.

// ErrUnsafePath reports a path keyless would not have written (absolute,
// with "..", of an unexpected shape) or one reached through a symbolic
// link. Opening a trail stops on it, deleting nothing; Verify reports it
// and does not follow it.
var ErrUnsafePath = errors.New("audit: unsafe path")

// pathShape is a set of the path shapes keyless writes under a trail.
type pathShape uint8

const (
	shapeLog     pathShape = 1 << iota // AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_…json.gz
	shapeDigest                        // AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/…json.gz
	shapeIndex                         // index/<a delivery file path>.idx
	shapeSegment                       // journal/<20 digits>.wal
	shapeTemp                          // journal/tmp/w-<letters and digits>.tmp
	shapeState                         // journal/seal-state.json
	shapeLock                          // journal/LOCK
)

func (s pathShape) String() string {
	var names []string
	for _, n := range []struct {
		s    pathShape
		name string
	}{{shapeLog, "delivery file"}, {shapeDigest, "digest file"}, {shapeIndex, "event index"}, {shapeSegment, "journal segment"},
		{shapeTemp, "temporary file"}, {shapeState, "seal state"}, {shapeLock, "lock file"}} {
		if s&n.s != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, " or ")
}

// ownedDirs are the directories directly under the trail that keyless
// creates; none may be a symbolic link.
var ownedDirs = []string{journalDir, tmpDir, indexDir, awsLogsDir}

// checkShape reports whether rel (slash-separated, relative to the trail
// directory) is a clean relative path of one of shapes.
func checkShape(rel string, shapes pathShape) error {
	if rel == "" || !fs.ValidPath(rel) || strings.ContainsAny(rel, "\\\x00") {
		return fmt.Errorf("%w: %q is not a clean relative path inside the trail directory", ErrUnsafePath, rel)
	}
	if shapes&shapeLog != 0 && parseTrailPath(rel).Kind == kindLog ||
		shapes&shapeDigest != 0 && parseTrailPath(rel).Kind == kindDigest ||
		shapes&shapeState != 0 && rel == stateFile ||
		shapes&shapeLock != 0 && rel == lockFile {
		return nil
	}
	if shapes&shapeIndex != 0 {
		if log, ok := strings.CutPrefix(rel, indexDir+"/"); ok {
			if log, ok = strings.CutSuffix(log, indexExt); ok && parseTrailPath(log).Kind == kindLog {
				return nil
			}
		}
	}
	if shapes&shapeSegment != 0 {
		if name, ok := strings.CutPrefix(rel, journalDir+"/"); ok {
			if _, ok := parseSegmentName(name); ok {
				return nil
			}
		}
	}
	if shapes&shapeTemp != 0 {
		if name, ok := strings.CutPrefix(rel, tmpDir+"/"); ok && isTempName(name) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not a %s path keyless writes", ErrUnsafePath, rel, shapes)
}

func isTempName(name string) bool {
	stem, ok := strings.CutPrefix(name, "w-")
	if !ok {
		return false
	}
	stem, ok = strings.CutSuffix(stem, ".tmp")
	return ok && isAlnum(stem)
}

// trailRoot is a trail directory opened as an [os.Root].
type trailRoot struct {
	dir  string // for messages
	root *os.Root
	// checked caches directories found to be real directories (Verify and
	// Read check thousands of files in a few dozen folders). Nil: no cache.
	checked map[string]bool
	// tmpSeq names temporary files (unique with O_EXCL; journal/tmp is
	// emptied when the trail is opened).
	tmpSeq atomic.Uint64
}

func openTrailRoot(dir string) (*trailRoot, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: open trail directory: %w", err)
	}
	return &trailRoot{dir: dir, root: root}, nil
}

func (r *trailRoot) Close() error { return r.root.Close() }

// check refuses rel unless it is of one of shapes and no part of it below
// the trail directory is a symbolic link: every existing parent must be a
// directory, and the file, if it exists, a regular file.
func (r *trailRoot) check(rel string, shapes pathShape) error {
	if err := checkShape(rel, shapes); err != nil {
		return err
	}
	if err := r.checkParents(rel); err != nil {
		return err
	}
	fi, err := r.root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("audit: %s: %w", rel, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: %s is a symbolic link; keyless never follows links in its trail directory", ErrUnsafePath, rel)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file (%s)", ErrUnsafePath, rel, fi.Mode().Type())
	}
	return nil
}

// checkParents checks the directories leading to rel.
func (r *trailRoot) checkParents(rel string) error {
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' {
			if err := r.checkDir(rel[:i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDir refuses a directory of the trail that exists but is a symbolic
// link or not a directory. Its parents must have been checked.
func (r *trailRoot) checkDir(rel string) error {
	if r.checked != nil && r.checked[rel] {
		return nil
	}
	fi, err := r.root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("audit: %s: %w", rel, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: %s is a symbolic link; keyless never follows links in its trail directory (replace it with a real directory)", ErrUnsafePath, rel)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory (%s)", ErrUnsafePath, rel, fi.Mode().Type())
	}
	if r.checked != nil {
		r.checked[rel] = true
	}
	return nil
}

// checkOwnedDirs checks journal, journal/tmp, index and AWSLogs.
func (r *trailRoot) checkOwnedDirs() error {
	for _, d := range ownedDirs {
		if err := r.checkDir(d); err != nil {
			return err
		}
	}
	return nil
}

// open opens rel for reading after checking it.
func (r *trailRoot) open(rel string, shapes pathShape) (*os.File, error) {
	if err := r.check(rel, shapes); err != nil {
		return nil, err
	}
	return r.root.Open(rel)
}

// readFile reads rel after checking it.
func (r *trailRoot) readFile(rel string, shapes pathShape) ([]byte, error) {
	f, err := r.open(rel, shapes)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// remove deletes rel (a missing file is not an error) after checking it.
func (r *trailRoot) remove(rel string, shapes pathShape) error {
	if err := r.check(rel, shapes); err != nil {
		return err
	}
	if err := r.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: remove %s: %w", rel, err)
	}
	return nil
}

// readDir lists a directory of the trail after checking it and its parents.
func (r *trailRoot) readDir(rel string) ([]fs.DirEntry, error) {
	if err := r.checkParents(rel + "/"); err != nil {
		return nil, err
	}
	d, err := r.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

// parentDir is the slash-separated parent of rel ("." at the top).
func parentDir(rel string) string { return path.Dir(rel) }
