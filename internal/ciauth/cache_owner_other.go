//go:build !unix

package ciauth

import "io/fs"

// fileOwner reports no owner where the platform has no uids (Windows: the
// directory's ACL, inherited from the user profile, protects it).
func fileOwner(fs.FileInfo) (uid int, ok bool) { return 0, false }

func currentUID() int { return -1 }
