package store

// Counters of the records a backup describes (BackupInfo's cases and
// messages), kept in meta by the transactions that add the records, so
// that a backup or export can say what it holds without walking every
// page of the cases and messages buckets first (issue 11: at 1M cases
// that walk took 17 s warm and over a minute cold, all before the first
// byte). Nothing deletes a case or a message, so the counters only grow.

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

const (
	keyCountCases    = "count:cases"
	keyCountMessages = "count:messages"
)

// addCount adds one to the counter under key in meta.
func (tx *Tx) addCount(key string) error {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return err
	}
	n, err := readCount(meta, key)
	if err != nil {
		return err
	}
	return meta.Put([]byte(key), u64(n+1))
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
