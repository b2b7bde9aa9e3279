package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"deskd/cases"
)

// The digests of R1 notices, kept in three buckets (schema 7) so that
// neither adding a notice nor finding the next digest due reads the
// others: notice_digest holds each named contact's record (who, when
// their last digest went out), notice_pending one entry per notice not
// yet sent, and notice_due one key per contact with notices pending,
// ordered by their last digest, so the first key is the next one due.
// Before schema 7 a contact's pending notices were a list inside their
// record, rewritten whole with every notice, and finding the next digest
// meant decoding every record: at a thousand mails a second that was
// half of ingest's CPU.

// NoticeDigest is one named contact's digest of R1 notices: what was not
// yet sent to them, and when their last digest went out. It changes only
// in the transaction that adds a notice or queues the digest, so a
// restart neither loses a notice nor sends one twice.
type NoticeDigest struct {
	Contact  cases.Address `json:"contact"`
	LastSent time.Time     `json:"last_sent,omitzero"`
	// Pending is read from notice_pending by NoticeDigest and
	// PendingNoticeDigests, in the order the notices were added; the
	// record itself no longer holds it (schema 7).
	Pending []cases.Notice `json:"pending,omitempty"`
}

// noticeDigestRecord is what notice_digest stores for a contact.
type noticeDigestRecord struct {
	Contact  cases.Address `json:"contact"`
	LastSent time.Time     `json:"last_sent,omitzero"`
}

// pendingPrefix is the start of a contact's keys in notice_pending: the
// lower-cased address and a 0x00, which no address contains.
func pendingPrefix(addr string) []byte { return append([]byte(addr), 0) }

// noticeDueKey is a contact's key in notice_due: the time of their last digest
// (the zero time, which sorts first, for one never sent), then the
// address.
func noticeDueKey(lastSent time.Time, addr string) []byte {
	return append(ts(lastSent), addr...)
}

// noticeRecord reads the record of the lower-cased address a; nil when
// deskd never noted anything for them.
func (tx *Tx) noticeRecord(a string) (*noticeDigestRecord, error) {
	var r noticeDigestRecord
	found, err := tx.getJSON(bucketNoticeDigest, []byte(a), &r)
	if err != nil || !found {
		return nil, err
	}
	return &r, nil
}

// AddNotice adds n to the pending notices of the named contact to and
// returns their digest without the pending notices (Contact, LastSent),
// which is what decides whether it is due now. The contact's name is
// taken from to, as the latest notice knows it.
func (tx *Tx) AddNotice(to cases.Address, n cases.Notice) (*NoticeDigest, error) {
	a, err := normAddr(to.Email)
	if err != nil {
		return nil, fmt.Errorf("add notice: %w", err)
	}
	r, err := tx.noticeRecord(a)
	if err != nil {
		return nil, fmt.Errorf("add notice for %s: %w", a, err)
	}
	if r == nil {
		r = &noticeDigestRecord{}
	}
	if r.Contact != to {
		r.Contact = to
		if err := tx.putJSON(bucketNoticeDigest, []byte(a), r); err != nil {
			return nil, fmt.Errorf("add notice for %s: %w", a, err)
		}
	}
	if err := tx.putPendingNotice(a, n); err != nil {
		return nil, fmt.Errorf("add notice for %s: %w", a, err)
	}
	due, err := tx.bucket(bucketNoticeDue)
	if err != nil {
		return nil, fmt.Errorf("add notice for %s: %w", a, err)
	}
	if err := due.Put(noticeDueKey(r.LastSent, a), nil); err != nil {
		return nil, fmt.Errorf("add notice for %s: %w", a, err)
	}
	return &NoticeDigest{Contact: r.Contact, LastSent: r.LastSent}, nil
}

// putPendingNotice appends n to the pending notices of the lower-cased
// address a.
func (tx *Tx) putPendingNotice(a string, n cases.Notice) error {
	b, err := tx.bucket(bucketNoticePending)
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(&n)
	if err != nil {
		return err
	}
	return b.Put(append(pendingPrefix(a), u64(seq)...), v)
}

// NoticeDigest returns the digest of the named contact addr with its
// pending notices, or nil when deskd never noted anything for them.
func (tx *Tx) NoticeDigest(addr string) (*NoticeDigest, error) {
	a, err := normAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("notice digest: %w", err)
	}
	r, err := tx.noticeRecord(a)
	if err != nil || r == nil {
		if err != nil {
			err = fmt.Errorf("notice digest %s: %w", a, err)
		}
		return nil, err
	}
	d := &NoticeDigest{Contact: r.Contact, LastSent: r.LastSent}
	b, err := tx.bucket(bucketNoticePending)
	if err != nil {
		return nil, fmt.Errorf("notice digest %s: %w", a, err)
	}
	prefix := pendingPrefix(a)
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var n cases.Notice
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, fmt.Errorf("notice digest %s: notice %x: %w", a, k[len(prefix):], err)
		}
		d.Pending = append(d.Pending, n)
	}
	return d, nil
}

// MarkDigestSent records that the digest of the named contact addr went
// out at, with every notice pending for them: those are removed.
func (tx *Tx) MarkDigestSent(addr string, at time.Time) error {
	a, err := normAddr(addr)
	if err != nil {
		return fmt.Errorf("mark digest sent: %w", err)
	}
	r, err := tx.noticeRecord(a)
	if err != nil {
		return fmt.Errorf("mark digest sent to %s: %w", a, err)
	}
	if r == nil {
		return fmt.Errorf("mark digest sent to %s: no digest", a)
	}
	pending, err := tx.bucket(bucketNoticePending)
	if err != nil {
		return fmt.Errorf("mark digest sent to %s: %w", a, err)
	}
	prefix := pendingPrefix(a)
	var keys [][]byte
	c := pending.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := pending.Delete(k); err != nil {
			return fmt.Errorf("mark digest sent to %s: %w", a, err)
		}
	}
	due, err := tx.bucket(bucketNoticeDue)
	if err != nil {
		return fmt.Errorf("mark digest sent to %s: %w", a, err)
	}
	if err := due.Delete(noticeDueKey(r.LastSent, a)); err != nil {
		return fmt.Errorf("mark digest sent to %s: %w", a, err)
	}
	r.LastSent = at
	if err := tx.putJSON(bucketNoticeDigest, []byte(a), r); err != nil {
		return fmt.Errorf("mark digest sent to %s: %w", a, err)
	}
	return nil
}

// NextNoticeDigest returns the earliest last digest among the contacts
// with notices pending (the zero time for one who never had a digest):
// the next digest falls due a digest period after it. ok is false when
// nothing is pending. It reads one key.
func (tx *Tx) NextNoticeDigest() (lastSent time.Time, ok bool, err error) {
	due, err := tx.bucket(bucketNoticeDue)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next notice digest: %w", err)
	}
	k, _ := due.Cursor().First()
	if k == nil {
		return time.Time{}, false, nil
	}
	if len(k) <= tsLen {
		return time.Time{}, false, fmt.Errorf("next notice digest: key %x too short", k)
	}
	return parseTS(k), true, nil
}

// NoticeDigestsSentBy returns, in due order, the addresses of the
// contacts with notices pending whose last digest went out at or before
// t (or never): with t = now minus the digest period, those due now.
func (tx *Tx) NoticeDigestsSentBy(t time.Time) ([]string, error) {
	due, err := tx.bucket(bucketNoticeDue)
	if err != nil {
		return nil, fmt.Errorf("notice digests due: %w", err)
	}
	var out []string
	c := due.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) <= tsLen {
			return nil, fmt.Errorf("notice digests due: key %x too short", k)
		}
		if parseTS(k).After(t) {
			break
		}
		out = append(out, string(k[tsLen:]))
	}
	return out, nil
}

// PendingNoticeDigests returns every digest with notices not yet sent,
// with those notices, in due order.
func (tx *Tx) PendingNoticeDigests() ([]*NoticeDigest, error) {
	addrs, err := tx.NoticeDigestsSentBy(time.Unix(1<<62, 0)) // any time at all
	if err != nil {
		return nil, err
	}
	out := make([]*NoticeDigest, 0, len(addrs))
	for _, a := range addrs {
		d, err := tx.NoticeDigest(a)
		if err != nil {
			return nil, err
		}
		if d == nil {
			return nil, fmt.Errorf("notice digests: %s is due but has no digest", a)
		}
		out = append(out, d)
	}
	return out, nil
}
