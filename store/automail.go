package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// autoMailKeep is how long automatic-mail records are kept: long enough for
// any rate-limit window deskd uses (RFC 3834 §2 asks for a limit per address
// over days; deskd counts per day), short enough to stay small.
const autoMailKeep = 48 * time.Hour

// normAddr lower-cases an address so rate limits and bounces cannot be
// dodged by case; the parser already does, this keeps the store honest.
func normAddr(addr string) (string, error) {
	a := strings.ToLower(strings.TrimSpace(addr))
	if a == "" {
		return "", errors.New("empty address")
	}
	if strings.IndexByte(a, 0) >= 0 {
		return "", errors.New("address contains NUL")
	}
	return a, nil
}

// budgetKey is the key prefix of addr's budget for automatic mails of
// kind: each kind is counted apart, so that mail of one kind (an R1
// digest) never uses up the budget of another (the acknowledgement).
func budgetKey(kind, addr string) (string, error) {
	a, err := normAddr(addr)
	if err != nil {
		return "", err
	}
	if kind == "" || strings.IndexByte(kind, 0) >= 0 {
		return "", fmt.Errorf("bad kind %q", kind)
	}
	return kind + "\x00" + a, nil
}

// RecordAutoMail notes that deskd sent an automatic mail of kind ("ack",
// "unauthorised", ...) to addr at at, and drops records older than 48h
// before at, for every address, so the buckets stay bounded without a
// separate sweeper.
func (tx *Tx) RecordAutoMail(kind, addr string, at time.Time) error {
	a, err := budgetKey(kind, addr)
	if err != nil {
		return fmt.Errorf("record auto mail: %w", err)
	}
	b, err := tx.bucket(bucketAutoMail)
	if err != nil {
		return fmt.Errorf("record auto mail %s: %w", a, err)
	}
	tb, err := tx.bucket(bucketAutoMailTime)
	if err != nil {
		return fmt.Errorf("record auto mail %s: %w", a, err)
	}
	if err := pruneAutoMail(b, tb, at.Add(-autoMailKeep)); err != nil {
		return fmt.Errorf("record auto mail %s: prune: %w", a, err)
	}
	t := ts(at)
	key := append(append([]byte(a), 0), t...)
	// Two mails at the same instant share a key, so the value counts them.
	n := uint32(0)
	if v := b.Get(key); len(v) == 4 {
		n = binary.BigEndian.Uint32(v)
	}
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, n+1)
	if err := b.Put(key, v); err != nil {
		return fmt.Errorf("record auto mail %s: %w", a, err)
	}
	if err := tb.Put(append(t, a...), nil); err != nil {
		return fmt.Errorf("record auto mail %s: %w", a, err)
	}
	return nil
}

// pruneAutoMail deletes every record older than cutoff. The time-ordered
// index makes the cost proportional to what expired, not to how many
// addresses there are.
func pruneAutoMail(b, tb bucket, cutoff time.Time) error {
	end := ts(cutoff)
	var expired [][]byte
	c := tb.Cursor()
	// Collect first: deleting under a bbolt cursor can skip the next key.
	for k, _ := c.First(); k != nil && bytes.Compare(k[:tsLen], end) < 0; k, _ = c.Next() {
		expired = append(expired, bytes.Clone(k))
	}
	for _, k := range expired {
		if len(k) < tsLen {
			return fmt.Errorf("malformed index key %x", k)
		}
		addrKey := append(append(bytes.Clone(k[tsLen:]), 0), k[:tsLen]...)
		if err := b.Delete(addrKey); err != nil {
			return err
		}
		if err := tb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// AutoMailCount counts the automatic mails of kind recorded for addr at or
// after since (RFC 3834 §2: limit automatic responses per address). Records
// are kept 48h, so since must be within that.
func (tx *Tx) AutoMailCount(kind, addr string, since time.Time) (int, error) {
	a, err := budgetKey(kind, addr)
	if err != nil {
		return 0, fmt.Errorf("count auto mail: %w", err)
	}
	b, err := tx.bucket(bucketAutoMail)
	if err != nil {
		return 0, fmt.Errorf("count auto mail %s: %w", a, err)
	}
	prefix := append([]byte(a), 0)
	n := 0
	c := b.Cursor()
	for k, v := c.Seek(append(bytes.Clone(prefix), ts(since)...)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) != 4 {
			return 0, fmt.Errorf("count auto mail %s: malformed value %x", a, v)
		}
		n += int(binary.BigEndian.Uint32(v))
	}
	return n, nil
}

type undeliverable struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
}

// SetUndeliverable marks addr as not to be mailed until until, e.g. after a
// bounce (RFC 3464) for a mail deskd sent, so an ack cannot loop with a
// broken mailbox. A later call replaces the earlier one.
func (tx *Tx) SetUndeliverable(addr string, until time.Time, reason string) error {
	a, err := normAddr(addr)
	if err != nil {
		return fmt.Errorf("set undeliverable: %w", err)
	}
	if err := tx.putJSON(bucketUndeliverable, []byte(a), undeliverable{Until: until, Reason: reason}); err != nil {
		return fmt.Errorf("set undeliverable %s: %w", a, err)
	}
	return nil
}

// UndeliverableUntil returns until when addr may be mailed again, zero if it
// was never marked. A time in the past is returned as stored; the caller
// compares it with its clock.
func (tx *Tx) UndeliverableUntil(addr string) (time.Time, error) {
	a, err := normAddr(addr)
	if err != nil {
		return time.Time{}, fmt.Errorf("undeliverable: %w", err)
	}
	var u undeliverable
	if _, err := tx.getJSON(bucketUndeliverable, []byte(a), &u); err != nil {
		return time.Time{}, fmt.Errorf("undeliverable %s: %w", a, err)
	}
	return u.Until, nil
}
