//go:build !unix

package audit

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked reports a trail directory already opened by another process.
var ErrLocked = errors.New("audit: trail directory is in use by another process")

// lockDir only creates the lock file where advisory locks are unavailable.
func lockDir(r *trailRoot, rel string) (*os.File, error) {
	if err := r.check(rel, shapeLock); err != nil {
		return nil, err
	}
	f, err := r.root.OpenFile(rel, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open lock file: %w", err)
	}
	return f, nil
}
