//go:build unix

package ciauth

import (
	"io/fs"
	"os"
	"syscall"
)

// fileOwner is the uid owning fi, and whether the platform reports one.
func fileOwner(fi fs.FileInfo) (uid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// currentUID is the effective uid of this process.
func currentUID() int { return os.Geteuid() }
