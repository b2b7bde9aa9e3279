package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// QuarantineRecord describes a mail deskd could not parse or decide. It is
// kept, with its raw bytes, until an operator releases or discards it.
type QuarantineRecord struct {
	Key       string    `json:"key"` // dedupe key of the mail
	MessageID string    `json:"message_id,omitempty"`
	Reason    string    `json:"reason"`
	From      string    `json:"from,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	UID       uint32    `json:"uid,omitempty"`
	At        time.Time `json:"at"`
	Size      int       `json:"size"`
	// Truncated is set when only the headers of an oversized mail were kept.
	Truncated bool `json:"truncated,omitempty"`
}

// PutQuarantine stores r under r.Key; raw, if not nil, is stored
// zstd-compressed beside it (see QuarantineRaw).
func (tx *Tx) PutQuarantine(r *QuarantineRecord, raw []byte) error {
	if r.Key == "" {
		return errors.New("put quarantine: empty key")
	}
	b, err := tx.bucket(bucketQuarantine)
	if err != nil {
		return fmt.Errorf("put quarantine %q: %w", r.Key, err)
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("put quarantine %q: %w", r.Key, err)
	}
	if err := b.Put([]byte(r.Key), v); err != nil {
		return fmt.Errorf("put quarantine %q: %w", r.Key, err)
	}
	if raw != nil {
		rb, err := tx.bucket(bucketQuarantineRaw)
		if err != nil {
			return fmt.Errorf("put quarantine %q: %w", r.Key, err)
		}
		if err := rb.Put([]byte(r.Key), tx.compress(raw)); err != nil {
			return fmt.Errorf("put quarantine %q: raw: %w", r.Key, err)
		}
	}
	return nil
}

// Quarantined returns the quarantine record for key, or nil, nil.
func (tx *Tx) Quarantined(key string) (*QuarantineRecord, error) {
	r := new(QuarantineRecord)
	if found, err := tx.getJSON(bucketQuarantine, []byte(key), r); err != nil || !found {
		if err != nil {
			err = fmt.Errorf("get quarantine %q: %w", key, err)
		}
		return nil, err
	}
	return r, nil
}

// QuarantineRaw returns the decompressed bytes kept for a quarantined mail,
// or nil if none.
func (tx *Tx) QuarantineRaw(key string) ([]byte, error) {
	return tx.getRaw(bucketQuarantineRaw, []byte(key), "quarantine raw "+quote(key))
}

// DeleteQuarantine removes a quarantined mail and its raw bytes, e.g. after
// an operator released it for processing again. Absent keys are no error.
func (tx *Tx) DeleteQuarantine(key string) error {
	for _, name := range []string{bucketQuarantine, bucketQuarantineRaw} {
		b, err := tx.bucket(name)
		if err != nil {
			return fmt.Errorf("delete quarantine %q: %w", key, err)
		}
		if err := b.Delete([]byte(key)); err != nil {
			return fmt.Errorf("delete quarantine %q: %w", key, err)
		}
	}
	return nil
}

// ForEachQuarantine calls fn for every quarantined mail in key order and
// stops at fn's first error, which it returns. In an Update, fn may delete or
// replace the record it is given.
func (tx *Tx) ForEachQuarantine(fn func(*QuarantineRecord) error) error {
	b, err := tx.bucket(bucketQuarantine)
	if err != nil {
		return fmt.Errorf("list quarantine: %w", err)
	}
	decode := func(k, v []byte) error {
		r := new(QuarantineRecord)
		if err := json.Unmarshal(v, r); err != nil {
			return fmt.Errorf("list quarantine: %q: %w", k, err)
		}
		return fn(r)
	}
	c := b.Cursor()
	if tx.tx.Writable() {
		// fn may write to this bucket, which invalidates a bbolt cursor:
		// decode everything first. The quarantine is small by nature.
		var recs [][2][]byte
		for k, v := c.First(); k != nil; k, v = c.Next() {
			recs = append(recs, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		}
		for _, kv := range recs {
			if err := decode(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	}
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := decode(k, v); err != nil {
			return err
		}
	}
	return nil
}
