//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked reports a trail directory already opened by another process.
var ErrLocked = errors.New("audit: trail directory is in use by another process")

// lockDir takes an exclusive advisory lock on the trail file rel; the kernel releases it
// when the process dies, so a crash never leaves the trail locked.
func lockDir(r *trailRoot, rel string) (*os.File, error) {
	if err := r.check(rel, shapeLock); err != nil {
		return nil, err
	}
	f, err := r.root.OpenFile(rel, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("audit: lock trail: %w", err)
	}
	return f, nil
}
