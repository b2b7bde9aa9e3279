package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"deskd/cases"
)

// NextCaseID is the number the next new case will get. It only peeks: the
// number is taken when PutCase stores a case with it, so a transaction that
// rolls back (or never stores the case) consumes nothing and case numbers,
// which customers see, have no gaps.
func (tx *Tx) NextCaseID() (uint64, error) {
	b, err := tx.bucket(bucketCases)
	if err != nil {
		return 0, fmt.Errorf("next case id: %w", err)
	}
	return b.Sequence() + 1, nil
}

// Case returns case id, or nil, nil if there is none.
func (tx *Tx) Case(id uint64) (*cases.Case, error) {
	b, err := tx.bucket(bucketCases)
	if err != nil {
		return nil, fmt.Errorf("get case %d: %w", id, err)
	}
	v := b.Get(u64(id))
	if v == nil {
		return nil, nil
	}
	c := new(cases.Case)
	if err := json.Unmarshal(v, c); err != nil {
		return nil, fmt.Errorf("get case %d: %w", id, err)
	}
	return c, nil
}

// PutCase stores c, moves it in the status and customer indexes, and
// makes deadlines c's entries in the SLA deadline index (none given: c
// has none), all in this transaction (deadline.go). A new case must carry
// the id NextCaseID gave; anything beyond it would leave a gap. The
// caller computes the deadlines; the store calls nothing above it.
func (tx *Tx) PutCase(c *cases.Case, deadlines ...Deadline) error {
	return tx.PutCaseFigures(c, ClockFigures{}, deadlines...)
}

// PutCaseFigures is PutCase that also keeps fig as c's figures in the
// report index (caseclock.go), computed by the caller from c as given.
// PutCase writes the entry without figures.
func (tx *Tx) PutCaseFigures(c *cases.Case, fig ClockFigures, deadlines ...Deadline) error {
	if c.ID == 0 {
		return errors.New("put case: id 0")
	}
	if c.Status == "" {
		return fmt.Errorf("put case %d: empty status", c.ID)
	}
	// Checked before anything is written, so that a bad deadline fails
	// PutCase with the case unchanged.
	enc, err := encodeDeadlines(deadlines)
	if err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	b, err := tx.bucket(bucketCases)
	if err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	if seq := b.Sequence(); c.ID > seq+1 {
		return fmt.Errorf("put case %d: out of sequence, next case id is %d", c.ID, seq+1)
	} else if c.ID == seq+1 {
		if err := b.SetSequence(c.ID); err != nil {
			return fmt.Errorf("put case %d: %w", c.ID, err)
		}
	}
	key := u64(c.ID)
	var old struct {
		Status   cases.Status `json:"status"`
		Customer string       `json:"customer"`
		Parties  []string     `json:"parties"`
	}
	existed := false
	if v := b.Get(key); v != nil {
		existed = true
		// Only the status, customer and parties are needed to find the old index
		// entries.
		if err := json.Unmarshal(v, &old); err != nil {
			return fmt.Errorf("put case %d: old record: %w", c.ID, err)
		}
	}
	// Found before Put replaces the old record, which it may read.
	oldClock, err := tx.oldClockKey(c, existed, b.Get(key))
	if err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	if err := b.Put(key, v); err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	// The case's list line, if any, says what it was: its writer renews
	// it (caseline.go).
	if err := tx.dropCaseLine(c.ID); err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	if !existed {
		if err := tx.addCount(keyCountCases); err != nil {
			return fmt.Errorf("put case %d: %w", c.ID, err)
		}
	}
	if !existed || old.Customer != c.Customer {
		if err := tx.indexCustomer(c.ID, existed, old.Customer, c.Customer); err != nil {
			return fmt.Errorf("put case %d: %w", c.ID, err)
		}
	}
	if err := tx.indexParties(c.ID, old.Parties, c.Parties); err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	if err := tx.indexClock(c, oldClock, fig); err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	if err := tx.putSummary(c); err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	if old.Status != c.Status {
		if err := tx.indexStatus(c.ID, old.Status, c.Status); err != nil {
			return fmt.Errorf("put case %d: %w", c.ID, err)
		}
	}
	// Every PutCase, not only a status change: a new message, a priority
	// or a pause moves the deadlines too (R7, R11c).
	if err := tx.replaceDeadlines(c.ID, enc); err != nil {
		return fmt.Errorf("put case %d: %w", c.ID, err)
	}
	return nil
}

// indexStatus moves case id from status old ("" for a new case) to status
// in the case_status index.
func (tx *Tx) indexStatus(id uint64, old, status cases.Status) error {
	idx, err := tx.bucket(bucketCaseStatus)
	if err != nil {
		return err
	}
	key := u64(id)
	if old != "" {
		if sb := idx.Bucket([]byte(old)); sb.exists() && hasKey(sb, key) {
			if err := sb.Delete(key); err != nil {
				return fmt.Errorf("status index: %w", err)
			}
			if err := tx.addCountN(keyCountStatus+string(old), -1); err != nil {
				return fmt.Errorf("status index: %w", err)
			}
		}
	}
	sb, err := idx.CreateBucketIfNotExists([]byte(status))
	if err != nil {
		return fmt.Errorf("status index: %w", err)
	}
	if hasKey(sb, key) {
		return nil
	}
	if err := sb.Put(key, nil); err != nil {
		return fmt.Errorf("status index: %w", err)
	}
	if err := tx.addCount(keyCountStatus + string(status)); err != nil {
		return fmt.Errorf("status index: %w", err)
	}
	return nil
}

// hasKey says whether b holds key. Get cannot tell for the index's empty
// values: it may return nil for a key that is there.
func hasKey(b bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return bytes.Equal(k, key)
}

// ForEachCase calls fn for every case with the given status ("" for all), in
// ascending id order, and stops at fn's first error, which it returns. In an
// Update, fn may change the cases it is given (PutCase), even their status.
// In a ViewContext it stops with the context's error once that ends.
func (tx *Tx) ForEachCase(status cases.Status, fn func(*cases.Case) error) error {
	return tx.ForEachCaseAfter(status, 0, fn)
}

// ForEachCaseAfter is ForEachCase from the first case after id after
// (a page of a listing starts where the last one ended: --after).
func (tx *Tx) ForEachCaseAfter(status cases.Status, after uint64, fn func(*cases.Case) error) error {
	b, err := tx.bucket(bucketCases)
	if err != nil {
		return fmt.Errorf("list cases: %w", err)
	}
	decode := func(k, v []byte) error {
		if err := tx.Err(); err != nil {
			return err
		}
		id := binary.BigEndian.Uint64(k)
		if v == nil {
			return fmt.Errorf("list cases: status index names case %d, which does not exist", id)
		}
		c := new(cases.Case)
		if err := json.Unmarshal(v, c); err != nil {
			return fmt.Errorf("list cases: case %d: %w", id, err)
		}
		return fn(c)
	}
	// ids walks the keys to visit: the cases bucket itself or one status
	// sub-bucket of the index.
	ids := b
	if status != "" {
		idx, err := tx.bucket(bucketCaseStatus)
		if err != nil {
			return fmt.Errorf("list cases: %w", err)
		}
		if ids = idx.Bucket([]byte(status)); !ids.exists() {
			return nil
		}
	}
	if after == ^uint64(0) {
		return nil
	}
	start := u64(after + 1)
	if tx.tx.Writable() {
		// bbolt cursors are not safe across writes to their bucket, and fn
		// may write (PutCase moves ids between status buckets), so take the
		// ids first. A read-only tx cannot write and skips the copy.
		var keys [][]byte
		c := ids.Cursor()
		for k, _ := c.Seek(start); k != nil; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := decode(k, b.Get(k)); err != nil {
				return err
			}
		}
		return nil
	}
	c := ids.Cursor()
	for k, v := c.Seek(start); k != nil; k, v = c.Next() {
		if status != "" {
			v = b.Get(k)
		}
		if err := decode(k, v); err != nil {
			return err
		}
	}
	return nil
}

// CountCases counts cases per status from the counters kept with the
// status index, without reading a single case record. Statuses with no
// cases are absent.
func (tx *Tx) CountCases() (map[cases.Status]int, error) {
	idx, err := tx.bucket(bucketCaseStatus)
	if err != nil {
		return nil, fmt.Errorf("count cases: %w", err)
	}
	counts := make(map[cases.Status]int)
	err = idx.ForEachBucket(func(name []byte) error {
		n, err := tx.CountCasesWithStatus(cases.Status(name))
		if n > 0 {
			counts[cases.Status(name)] = n
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count cases: %w", err)
	}
	return counts, nil
}

// CountCasesWithStatus returns how many cases have status, from its
// counter (schema 7): no walk, however many there are.
func (tx *Tx) CountCasesWithStatus(status cases.Status) (int, error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return 0, fmt.Errorf("count %s cases: %w", status, err)
	}
	n, err := readCount(meta, keyCountStatus+string(status))
	if err != nil {
		return 0, fmt.Errorf("count %s cases: %w", status, err)
	}
	return int(n), nil
}

// CaseMessages returns c's messages in c.MessageKeys order. A key without a
// record is an error: messages and cases are written in one transaction.
func (tx *Tx) CaseMessages(c *cases.Case) ([]*cases.Message, error) {
	msgs := make([]*cases.Message, 0, len(c.MessageKeys))
	for _, key := range c.MessageKeys {
		m, err := tx.Message(key)
		if err != nil {
			return nil, fmt.Errorf("case %d messages: %w", c.ID, err)
		}
		if m == nil {
			return nil, fmt.Errorf("case %d messages: message %q missing", c.ID, key)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// Message returns the message stored under its dedupe key, or nil, nil.
func (tx *Tx) Message(key string) (*cases.Message, error) {
	m := new(cases.Message)
	if found, err := tx.getJSON(bucketMessages, []byte(key), m); err != nil || !found {
		if err != nil {
			err = fmt.Errorf("get message %q: %w", key, err)
		}
		return nil, err
	}
	return m, nil
}

// PutMessage stores m under m.Key and maps m.MessageID to m.CaseID. raw, if
// not nil, is stored zstd-compressed beside it; nil leaves any raw already
// stored for the key in place, so updating a record never loses the mail.
func (tx *Tx) PutMessage(m *cases.Message, raw []byte) error {
	if m.Key == "" {
		return errors.New("put message: empty key")
	}
	b, err := tx.bucket(bucketMessages)
	if err != nil {
		return fmt.Errorf("put message %q: %w", m.Key, err)
	}
	key := []byte(m.Key)
	v := b.Get(key)
	if v == nil {
		if err := tx.addCount(keyCountMessages); err != nil {
			return fmt.Errorf("put message %q: %w", m.Key, err)
		}
	} else {
		// A changed Message-ID or case must not leave the old mapping
		// behind pointing at this message's case.
		var old struct {
			CaseID    uint64 `json:"case_id"`
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal(v, &old); err != nil {
			return fmt.Errorf("put message %q: old record: %w", m.Key, err)
		}
		if old.MessageID != "" && (old.MessageID != m.MessageID || old.CaseID != m.CaseID) {
			if err := tx.unindexMessageID(old.MessageID, old.CaseID); err != nil {
				return fmt.Errorf("put message %q: %w", m.Key, err)
			}
		}
	}
	v, err = json.Marshal(m)
	if err != nil {
		return fmt.Errorf("put message %q: %w", m.Key, err)
	}
	if err := b.Put(key, v); err != nil {
		return fmt.Errorf("put message %q: %w", m.Key, err)
	}
	if raw != nil {
		rb, err := tx.bucket(bucketRaw)
		if err != nil {
			return fmt.Errorf("put message %q: %w", m.Key, err)
		}
		if err := rb.Put(key, tx.compress(raw)); err != nil {
			return fmt.Errorf("put message %q: raw: %w", m.Key, err)
		}
	}
	if m.MessageID != "" && m.CaseID != 0 {
		if err := tx.IndexMessageID(m.MessageID, m.CaseID); err != nil {
			return fmt.Errorf("put message %q: %w", m.Key, err)
		}
	}
	return nil
}

// Raw returns the decompressed raw mail stored for key, or nil if none.
func (tx *Tx) Raw(key string) ([]byte, error) {
	return tx.getRaw(bucketRaw, []byte(key), "raw "+quote(key))
}

func (tx *Tx) getRaw(bucket string, key []byte, what string) ([]byte, error) {
	b, err := tx.bucket(bucket)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", what, err)
	}
	v := b.Get(key)
	if v == nil {
		return nil, nil
	}
	raw, err := tx.decompress(v)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", what, err)
	}
	return raw, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// CaseIDForMessageID finds the case a Message-ID (one of ours or one we
// received) belongs to; threading follows In-Reply-To and References here.
func (tx *Tx) CaseIDForMessageID(messageID string) (uint64, bool, error) {
	b, err := tx.bucket(bucketMsgID)
	if err != nil {
		return 0, false, fmt.Errorf("look up message-id %q: %w", messageID, err)
	}
	if messageID == "" {
		return 0, false, nil
	}
	v := b.Get([]byte(messageID))
	if v == nil {
		return 0, false, nil
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("look up message-id %q: %d-byte value, want 8", messageID, len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// IndexMessageID maps messageID to caseID, replacing any earlier mapping. It
// is also used for Message-IDs of mails deskd sends before they are stored
// as messages, so replies to them thread at once.
func (tx *Tx) IndexMessageID(messageID string, caseID uint64) error {
	if messageID == "" {
		return errors.New("index message-id: empty message-id")
	}
	if caseID == 0 {
		return fmt.Errorf("index message-id %q: case id 0", messageID)
	}
	b, err := tx.bucket(bucketMsgID)
	if err != nil {
		return fmt.Errorf("index message-id %q: %w", messageID, err)
	}
	if err := b.Put([]byte(messageID), u64(caseID)); err != nil {
		return fmt.Errorf("index message-id %q: %w", messageID, err)
	}
	return nil
}

// unindexMessageID removes messageID's mapping if it still points at caseID.
func (tx *Tx) unindexMessageID(messageID string, caseID uint64) error {
	b, err := tx.bucket(bucketMsgID)
	if err != nil {
		return fmt.Errorf("unindex message-id %q: %w", messageID, err)
	}
	if v := b.Get([]byte(messageID)); len(v) == 8 && binary.BigEndian.Uint64(v) == caseID {
		if err := b.Delete([]byte(messageID)); err != nil {
			return fmt.Errorf("unindex message-id %q: %w", messageID, err)
		}
	}
	return nil
}

// Checkpoint returns the IMAP position reached in mailbox: the UIDVALIDITY it
// was taken under and the last UID committed. Zeros mean "never fetched".
func (tx *Tx) Checkpoint(mailbox string) (uidValidity, lastUID uint32, err error) {
	b, err := tx.bucket(bucketIMAP)
	if err != nil {
		return 0, 0, fmt.Errorf("checkpoint %q: %w", mailbox, err)
	}
	v := b.Get([]byte(mailbox))
	if v == nil {
		return 0, 0, nil
	}
	if len(v) != 8 {
		return 0, 0, fmt.Errorf("checkpoint %q: %d-byte value, want 8", mailbox, len(v))
	}
	return binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:]), nil
}

// SetCheckpoint records the IMAP position for mailbox; it is written in the
// same transaction as the messages up to lastUID (RFC 3501 §2.3.1.1: UIDs
// are only meaningful together with UIDVALIDITY).
func (tx *Tx) SetCheckpoint(mailbox string, uidValidity, lastUID uint32) error {
	if mailbox == "" {
		return errors.New("set checkpoint: empty mailbox name")
	}
	b, err := tx.bucket(bucketIMAP)
	if err != nil {
		return fmt.Errorf("set checkpoint %q: %w", mailbox, err)
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint32(v, uidValidity)
	binary.BigEndian.PutUint32(v[4:], lastUID)
	if err := b.Put([]byte(mailbox), v); err != nil {
		return fmt.Errorf("set checkpoint %q: %w", mailbox, err)
	}
	return nil
}
