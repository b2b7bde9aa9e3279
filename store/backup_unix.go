//go:build unix

package store

import (
	"os"
	"syscall"
)

// fileOwner returns the owner of a file, to give a restored store the
// replaced one's.
func fileOwner(fi os.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
