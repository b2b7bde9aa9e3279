package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// OutboxState is where an outbox entry is in its life.
type OutboxState string

const (
	OutboxQueued OutboxState = "queued" // waiting for NextAttempt
	OutboxSent   OutboxState = "sent"   // accepted by the SMTP server; kept as history
	OutboxFailed OutboxState = "failed" // given up on; kept as history
)

// OutboxEntry is one rendered mail waiting to be, or having been, sent.
type OutboxEntry struct {
	ID           uint64   `json:"id"`
	CaseID       uint64   `json:"case_id,omitempty"`
	Kind         string   `json:"kind"` // "ack", "relay", "escalation", ...
	MessageID    string   `json:"message_id,omitempty"`
	EnvelopeFrom string   `json:"envelope_from"`
	Recipients   []string `json:"recipients"`
	// Raw is the complete RFC 5322 message. It is stored compressed apart
	// from the record and is fixed at Enqueue: PutOutbox ignores it.
	Raw         []byte      `json:"-"`
	State       OutboxState `json:"state"`
	Attempts    int         `json:"attempts,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	NextAttempt time.Time   `json:"next_attempt,omitzero"`
	SentAt      time.Time   `json:"sent_at,omitzero"`
	LastError   string      `json:"last_error,omitempty"`
}

// dueKey is the outbox_due key of a queued entry: NextAttempt first so a
// cursor walks entries in the order they fall due, the id to keep equal
// times apart and in enqueue order.
func dueKey(next time.Time, id uint64) []byte {
	k := make([]byte, tsLen+8)
	putTS(k, next)
	binary.BigEndian.PutUint64(k[tsLen:], id)
	return k
}

// Enqueue adds e to the outbox: it assigns e.ID, sets State to queued and
// NextAttempt to CreatedAt when unset, and makes it due.
func (tx *Tx) Enqueue(e *OutboxEntry) error {
	if len(e.Recipients) == 0 {
		return errors.New("enqueue: no recipients")
	}
	if len(e.Raw) == 0 {
		return errors.New("enqueue: empty message")
	}
	b, err := tx.bucket(bucketOutbox)
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	id, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	e.ID = id
	e.State = OutboxQueued
	if e.NextAttempt.IsZero() {
		e.NextAttempt = e.CreatedAt
	}
	rb, err := tx.bucket(bucketOutboxRaw)
	if err != nil {
		return fmt.Errorf("enqueue %d: %w", id, err)
	}
	if err := rb.Put(u64(id), tx.compress(e.Raw)); err != nil {
		return fmt.Errorf("enqueue %d: raw: %w", id, err)
	}
	if err := tx.putOutboxRecord(b, e, nil); err != nil {
		return fmt.Errorf("enqueue %d: %w", id, err)
	}
	return nil
}

// PutOutbox records the outcome of a delivery attempt: State, Attempts,
// NextAttempt, SentAt, LastError. A queued entry is (re)filed in the due
// index under its NextAttempt; a sent or failed one leaves it but keeps its
// record and raw mail as history.
func (tx *Tx) PutOutbox(e *OutboxEntry) error {
	switch e.State {
	case OutboxQueued, OutboxSent, OutboxFailed:
	default:
		return fmt.Errorf("put outbox %d: unknown state %q", e.ID, e.State)
	}
	b, err := tx.bucket(bucketOutbox)
	if err != nil {
		return fmt.Errorf("put outbox %d: %w", e.ID, err)
	}
	v := b.Get(u64(e.ID))
	if v == nil {
		return fmt.Errorf("put outbox %d: no such entry", e.ID)
	}
	old := new(OutboxEntry)
	if err := json.Unmarshal(v, old); err != nil {
		return fmt.Errorf("put outbox %d: old record: %w", e.ID, err)
	}
	if err := tx.putOutboxRecord(b, e, old); err != nil {
		return fmt.Errorf("put outbox %d: %w", e.ID, err)
	}
	return nil
}

// putOutboxRecord writes e's record and moves its due-index entry from where
// old (nil for a new entry) had it.
func (tx *Tx) putOutboxRecord(b bucket, e, old *OutboxEntry) error {
	due, err := tx.bucket(bucketOutboxDue)
	if err != nil {
		return err
	}
	if old != nil && old.State == OutboxQueued {
		if err := due.Delete(dueKey(old.NextAttempt, old.ID)); err != nil {
			return fmt.Errorf("due index: %w", err)
		}
	}
	if e.State == OutboxQueued {
		// The value carries CreatedAt so OutboxStats needs no record.
		if err := due.Put(dueKey(e.NextAttempt, e.ID), ts(e.CreatedAt)); err != nil {
			return fmt.Errorf("due index: %w", err)
		}
	}
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return b.Put(u64(e.ID), v)
}

// OutboxEntry returns entry id with its raw mail, or nil, nil.
func (tx *Tx) OutboxEntry(id uint64) (*OutboxEntry, error) {
	b, err := tx.bucket(bucketOutbox)
	if err != nil {
		return nil, fmt.Errorf("get outbox %d: %w", id, err)
	}
	v := b.Get(u64(id))
	if v == nil {
		return nil, nil
	}
	return tx.decodeOutbox(id, v)
}

func (tx *Tx) decodeOutbox(id uint64, v []byte) (*OutboxEntry, error) {
	e := new(OutboxEntry)
	if err := json.Unmarshal(v, e); err != nil {
		return nil, fmt.Errorf("get outbox %d: %w", id, err)
	}
	raw, err := tx.getRaw(bucketOutboxRaw, u64(id), fmt.Sprintf("outbox %d raw", id))
	if err != nil {
		return nil, err
	}
	e.Raw = raw
	return e, nil
}

// DueOutbox returns up to limit (all if limit <= 0) queued entries whose
// NextAttempt is not after now, earliest first, with their raw mail. It walks
// the due index from its start, so it reads only what is due.
func (tx *Tx) DueOutbox(now time.Time, limit int) ([]*OutboxEntry, error) {
	return tx.DueOutboxSkipping(now, limit, nil)
}

// DueOutboxSkipping is DueOutbox passing over the entries skip (nil: none)
// names without reading their records: the outbox loop's entries already
// with a sender, whose raw mail it need not decompress again.
func (tx *Tx) DueOutboxSkipping(now time.Time, limit int, skip func(id uint64) bool) ([]*OutboxEntry, error) {
	due, err := tx.bucket(bucketOutboxDue)
	if err != nil {
		return nil, fmt.Errorf("due outbox: %w", err)
	}
	b, err := tx.bucket(bucketOutbox)
	if err != nil {
		return nil, fmt.Errorf("due outbox: %w", err)
	}
	end := ts(now)
	var out []*OutboxEntry
	c := due.Cursor()
	for k, _ := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
		if len(k) != tsLen+8 {
			return nil, fmt.Errorf("due outbox: malformed index key %x", k)
		}
		if string(k[:tsLen]) > string(end) {
			break
		}
		id := binary.BigEndian.Uint64(k[tsLen:])
		if skip != nil && skip(id) {
			continue
		}
		v := b.Get(k[tsLen:])
		if v == nil {
			return nil, fmt.Errorf("due outbox: index names entry %d, which does not exist", id)
		}
		e, err := tx.decodeOutbox(id, v)
		if err != nil {
			return nil, fmt.Errorf("due outbox: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// NextOutboxDue returns the earliest NextAttempt of any queued entry, so the
// sender can sleep until then; false if nothing is queued.
func (tx *Tx) NextOutboxDue() (time.Time, bool, error) {
	due, err := tx.bucket(bucketOutboxDue)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next outbox due: %w", err)
	}
	k, _ := due.Cursor().First()
	if k == nil {
		return time.Time{}, false, nil
	}
	if len(k) != tsLen+8 {
		return time.Time{}, false, fmt.Errorf("next outbox due: malformed index key %x", k)
	}
	return parseTS(k), true, nil
}

// OutboxStats counts the queued entries and returns the CreatedAt of the
// one waiting longest (zero if none), for health checks. It reads only the
// due index. now is not needed by this layout (every queued entry counts,
// due yet or not) and is kept for the caller's sake.
func (tx *Tx) OutboxStats(now time.Time) (queued int, oldest time.Time, err error) {
	due, err := tx.bucket(bucketOutboxDue)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats: %w", err)
	}
	c := due.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(v) != tsLen {
			return 0, time.Time{}, fmt.Errorf("outbox stats: malformed index value %x", v)
		}
		queued++
		if created := parseTS(v); oldest.IsZero() || created.Before(oldest) {
			oldest = created
		}
	}
	return queued, oldest, nil
}
