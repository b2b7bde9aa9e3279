//go:build !linux

package store

// readAhead is a hint on Linux only (readahead_linux.go).
func (tx *Tx) readAhead(v []byte, ra *readahead) {}
