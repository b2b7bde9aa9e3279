package store

// Counters of the records a backup describes (BackupInfo's cases and
// messages), kept in meta by the transactions that add the records, so
// that a backup or export can say what it holds without walking every
// page of the cases and messages buckets first (issue 11: at 1M cases
// that walk took 17 s warm and over a minute cold, all before the first
// byte). Nothing deletes a case or a message, so those counters only
// grow. The cases per status (schema 7) go up and down with the status
// index: the daemon's status line counts the open cases after every IMAP
// scan round, up to 40 a second, and a walk of their ids read every page
// of the open index each time (hundreds of pages at 50,000 open cases).

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

const (
	keyCountCases    = "count:cases"
	keyCountMessages = "count:messages"
	// keyCountStatus + a status name: the cases with that status.
	keyCountStatus = "count:status:"
)

// addCount adds one to the counter under key in meta.
func (tx *Tx) addCount(key string) error { return tx.addCountN(key, 1) }

// addCountN adds delta (which may be negative) to the counter under key
// in meta. A counter stays at zero rather than fail the transaction: it
// only informs (a status line, an export's summary), and the mail whose
// commit it is part of matters more.
func (tx *Tx) addCountN(key string, delta int64) error {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return err
	}
	n, err := readCount(meta, key)
	if err != nil {
		return err
	}
	next := int64(n) + delta
	if next < 0 {
		next = 0
	}
	return meta.Put([]byte(key), u64(uint64(next)))
}

// getter is what the counters read: a store bucket or a bare bbolt one
// (describe reads a backup without a store).
type getter interface{ Get(key []byte) []byte }

func readCount(meta getter, key string) (uint64, error) {
	v := meta.Get([]byte(key))
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%s: %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Counts returns how many cases and messages the store holds, from the
// counters (no walk).
func (tx *Tx) Counts() (cases, messages int, err error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return 0, 0, err
	}
	return readCounts(meta)
}

func readCounts(meta getter) (cases, messages int, err error) {
	c, err := readCount(meta, keyCountCases)
	if err != nil {
		return 0, 0, err
	}
	m, err := readCount(meta, keyCountMessages)
	if err != nil {
		return 0, 0, err
	}
	return int(c), int(m), nil
}

// migrateV4toV5 counts the cases and messages once (the walk the
// counters save every later backup).
func migrateV4toV5(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	cb := tx.Bucket([]byte(bucketCases))
	mb := tx.Bucket([]byte(bucketMessages))
	if meta == nil || cb == nil || mb == nil {
		return errors.New("meta, cases or messages bucket missing")
	}
	if err := meta.Put([]byte(keyCountCases), u64(uint64(cb.Stats().KeyN))); err != nil {
		return err
	}
	return meta.Put([]byte(keyCountMessages), u64(uint64(mb.Stats().KeyN)))
}

// countStatuses sets the counter of every status from the status index:
// the schema 7 step.
func countStatuses(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	idx := tx.Bucket([]byte(bucketCaseStatus))
	if meta == nil || idx == nil {
		return errors.New("meta or case_status bucket missing")
	}
	return idx.ForEachBucket(func(name []byte) error {
		n := idx.Bucket(name).Stats().KeyN
		return meta.Put([]byte(keyCountStatus+string(name)), u64(uint64(n)))
	})
}
