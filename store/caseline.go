package store

// The case list's lines: for each open or pending case, the JSON line
// `deskd cases list` prints for it, as the daemon last computed it, and
// until when that line stays true (the next SLA threshold a running
// target crosses). A listing of the open cases then reads these small,
// dense records instead of decoding every case's history and replaying
// its clock (issue 11: under 200 ms for 20,000 open cases of a million).
// The store does not know what a line says: the daemon writes them
// (PutCaseLine) and says which SLA clocks they were computed with
// (SetCaseLineVersion); a reader uses them only under the same clocks.
// PutCase drops a case's line, so no line outlives a change of its case
// unless its writer renews it in the same transaction.

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"deskd/cases"
)

const keyCaseLineVersion = "case_line_version"

// PutCaseLine stores case id's list line, true from from until until.
func (tx *Tx) PutCaseLine(id uint64, from, until time.Time, line []byte) error {
	b, err := tx.bucket(bucketCaseLine)
	if err != nil {
		return fmt.Errorf("case line %d: %w", id, err)
	}
	v := make([]byte, 16, 16+len(line))
	binary.BigEndian.PutUint64(v, uint64(lineNanos(from)))
	binary.BigEndian.PutUint64(v[8:], uint64(lineNanos(until)))
	return b.Put(u64(id), append(v, line...))
}

// lineNanos is t in Unix nanoseconds, clamped to what an int64 holds
// (1678-2262): a line true "forever" (no SLA threshold ahead, e.g. a
// breached or paused case) must not wrap around to 1970 and be stale at
// once, which made a listing replay three quarters of the open cases.
func lineNanos(t time.Time) int64 {
	switch {
	case t.After(maxLineTime):
		return math.MaxInt64
	case t.Before(minLineTime):
		return math.MinInt64
	}
	return t.UnixNano()
}

var (
	maxLineTime = time.Unix(0, math.MaxInt64)
	minLineTime = time.Unix(0, math.MinInt64)
)

// dropCaseLine removes case id's line (PutCase).
func (tx *Tx) dropCaseLine(id uint64) error {
	b, err := tx.bucket(bucketCaseLine)
	if err != nil {
		return err
	}
	return b.Delete(u64(id))
}

// CaseLine returns case id's list line if there is one still true at
// now. The line is valid only inside the transaction.
func (tx *Tx) CaseLine(id uint64, now time.Time) ([]byte, bool) {
	b := tx.tx.Bucket([]byte(bucketCaseLine))
	if b == nil {
		return nil, false
	}
	v := b.Get(u64(id))
	if len(v) < 16 {
		return nil, false
	}
	n := now.UnixNano()
	if n < int64(binary.BigEndian.Uint64(v)) || n >= int64(binary.BigEndian.Uint64(v[8:])) {
		return nil, false
	}
	return v[16:], true
}

// CaseLineVersion is what SetCaseLineVersion last recorded ("" for none).
func (tx *Tx) CaseLineVersion() (string, error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return "", err
	}
	return string(meta.Get([]byte(keyCaseLineVersion))), nil
}

// SetCaseLineVersion records the SLA clocks (their fingerprint) the lines
// were computed with, once every open and pending case has its line.
func (tx *Tx) SetCaseLineVersion(v string) error {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return err
	}
	return meta.Put([]byte(keyCaseLineVersion), []byte(v))
}

// ForEachCaseIDAfter calls fn with the id of every case with the given
// status (not ""), after id after, in ascending order, reading no case;
// in a ViewContext it stops once the context ends.
func (tx *Tx) ForEachCaseIDAfter(status cases.Status, after uint64, fn func(id uint64) error) error {
	idx, err := tx.bucket(bucketCaseStatus)
	if err != nil {
		return fmt.Errorf("list cases: %w", err)
	}
	ids := idx.Bucket([]byte(status))
	if !ids.exists() || after == ^uint64(0) {
		return nil
	}
	c := ids.Cursor()
	for k, _ := c.Seek(u64(after + 1)); k != nil; k, _ = c.Next() {
		if err := tx.Err(); err != nil {
			return err
		}
		if len(k) != 8 {
			return fmt.Errorf("list cases: status key %x", k)
		}
		if err := fn(binary.BigEndian.Uint64(k)); err != nil {
			return err
		}
	}
	return nil
}
