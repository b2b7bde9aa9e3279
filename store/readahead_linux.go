//go:build linux

package store

import (
	"syscall"
	"unsafe"
)

// readAhead asks the kernel to read window bytes of the store's map, from
// the page holding v on, into the page cache, unless v lies in the first
// half of the range asked last (ra). bbolt maps the file with
// MADV_RANDOM, so a walk over a cold bucket waits for one 4 KiB read per
// major fault: 20,096 faults for 20,000 cases of `cases list --status
// all` on the 1,000,000-case store, about a million for all of them
// (issue 11). MADV_WILLNEED starts the reads of the range at once; a
// bucket written in key order (a generated, migrated or compacted store)
// has its leaves in file order, so the walk then finds them in memory.
// It is a hint: its error is ignored, and it changes nothing read.
func (tx *Tx) readAhead(v []byte, ra *readahead) {
	const window = 8 << 20
	if len(v) == 0 {
		return
	}
	info := tx.tx.DB().Info()
	start := uintptr(unsafe.Pointer(&v[0]))
	end := info.Data + uintptr(tx.tx.Size())
	if start < info.Data || start >= end {
		return // not in the map (a value of a dirty page: a writable tx)
	}
	if start >= ra.lo && start < ra.lo+(ra.hi-ra.lo)/2 {
		return
	}
	page := uintptr(info.PageSize)
	p := unsafe.Add(unsafe.Pointer(&v[0]), -int(start%page))
	n := min(uintptr(window), end-(start-start%page))
	_ = syscall.Madvise(unsafe.Slice((*byte)(p), n), syscall.MADV_WILLNEED)
	ra.lo, ra.hi = start-start%page, start-start%page+n
}
