//go:build linux || darwin || freebsd

package audit

import (
	"errors"
	"syscall"
)

// errStatfsUnsupported reports a platform whose free space keyless cannot
// read.
var errStatfsUnsupported = errors.New("audit: statfs unsupported on this platform")

// statfs reads the free (available to unprivileged users) and total bytes
// of dir's filesystem.
func statfs(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Bsize)
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, nil
}
