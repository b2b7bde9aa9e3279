package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"deskd/cases"
)

// keyHealth in the meta bucket holds the ts of the last write probe of the
// health check (TouchHealth).
const keyHealth = "health"

// CountQuarantine is the number of quarantined mails. bbolt's bucket
// statistics count the keys page by page; no record is decoded.
func (tx *Tx) CountQuarantine() (int, error) {
	b, err := tx.bucket(bucketQuarantine)
	if err != nil {
		return 0, fmt.Errorf("count quarantine: %w", err)
	}
	return b.Stats().KeyN, nil
}

// StatusPriority is one cell of OpenCasesByPriority.
type StatusPriority struct {
	Status   cases.Status
	Priority cases.Priority // "" when staff has not set one
}

// OpenCasesByPriority counts the open and pending cases per (status,
// priority). It visits only the ids in those two sub-buckets of the status
// index and decodes nothing of each case but its priority, so closed cases
// (the bulk of a store) cost nothing. Cells with no cases are absent.
func (tx *Tx) OpenCasesByPriority() (map[StatusPriority]int, error) {
	b, err := tx.bucket(bucketCases)
	if err != nil {
		return nil, fmt.Errorf("count open cases: %w", err)
	}
	idx, err := tx.bucket(bucketCaseStatus)
	if err != nil {
		return nil, fmt.Errorf("count open cases: %w", err)
	}
	counts := make(map[StatusPriority]int)
	for _, status := range []cases.Status{cases.StatusOpen, cases.StatusPending} {
		ids := idx.Bucket([]byte(status))
		if !ids.exists() {
			continue
		}
		c := ids.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			v := b.Get(k)
			if v == nil {
				return nil, fmt.Errorf("count open cases: status index names case %d, which does not exist", binary.BigEndian.Uint64(k))
			}
			var rec struct {
				Priority cases.Priority `json:"priority"`
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return nil, fmt.Errorf("count open cases: case %d: %w", binary.BigEndian.Uint64(k), err)
			}
			counts[StatusPriority{Status: status, Priority: rec.Priority}]++
		}
	}
	return counts, nil
}

// TouchHealth writes now under meta "health": the health check's proof that
// the store still takes a write (the disk is not full or read-only, the
// writer lock is not stuck). It must run in an Update; the caller limits
// how often.
func (tx *Tx) TouchHealth(now time.Time) error {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return fmt.Errorf("touch health: %w", err)
	}
	if err := meta.Put([]byte(keyHealth), ts(now)); err != nil {
		return fmt.Errorf("touch health: %w", err)
	}
	return nil
}

// HealthTouched is the time the last TouchHealth wrote (zero if none).
func (tx *Tx) HealthTouched() (time.Time, error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return time.Time{}, fmt.Errorf("health touched: %w", err)
	}
	v := meta.Get([]byte(keyHealth))
	if v == nil {
		return time.Time{}, nil
	}
	if len(v) != tsLen {
		return time.Time{}, fmt.Errorf("health touched: %d bytes, want %d", len(v), tsLen)
	}
	return parseTS(v), nil
}
