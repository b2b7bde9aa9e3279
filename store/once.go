package store

import (
	"fmt"
	"time"
)

// MarkOnce records, in the caller's transaction, that the once-only
// notice name went out at at, and reports whether this is the first time:
// a caller queues its notice only when first is true, in the same
// transaction, so the notice goes out exactly once, across restarts
// (the daemon's warning that the OAuth 2.0 credential expires soon).
func (tx *Tx) MarkOnce(name string, at time.Time) (first bool, err error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return false, fmt.Errorf("mark once %s: %w", name, err)
	}
	key := []byte("once:" + name)
	if meta.Get(key) != nil {
		return false, nil
	}
	if err := meta.Put(key, ts(at)); err != nil {
		return false, fmt.Errorf("mark once %s: %w", name, err)
	}
	return true, nil
}
