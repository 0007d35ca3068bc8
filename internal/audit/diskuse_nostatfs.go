//go:build !(linux || darwin || freebsd)

package audit

import "errors"

// errStatfsUnsupported reports a platform whose free space keyless cannot
// read.
var errStatfsUnsupported = errors.New("audit: statfs unsupported on this platform")

// statfs is not available here: the filesystem reserve is not enforced
// (the trail's own ceiling, max_disk_bytes, still is).
func statfs(string) (free, total uint64, err error) { return 0, 0, errStatfsUnsupported }
