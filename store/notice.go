package store

import (
	"encoding/json"
	"fmt"
	"time"

	"deskd/cases"
)

// NoticeDigest is one named contact's digest of R1 notices: what was not
// yet sent to them, and when their last digest went out. It changes only
// in the transaction that adds a notice or queues the digest, so a
// restart neither loses a notice nor sends one twice.
type NoticeDigest struct {
	Contact  cases.Address  `json:"contact"`
	LastSent time.Time      `json:"last_sent,omitzero"`
	Pending  []cases.Notice `json:"pending,omitempty"`
}

// NoticeDigest returns the digest of the named contact addr, or nil when
// deskd never noted anything for them.
func (tx *Tx) NoticeDigest(addr string) (*NoticeDigest, error) {
	a, err := normAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("notice digest: %w", err)
	}
	var d NoticeDigest
	if found, err := tx.getJSON(bucketNoticeDigest, []byte(a), &d); err != nil || !found {
		if err != nil {
			err = fmt.Errorf("notice digest %s: %w", a, err)
		}
		return nil, err
	}
	return &d, nil
}

// PutNoticeDigest stores d under its contact's address.
func (tx *Tx) PutNoticeDigest(d *NoticeDigest) error {
	a, err := normAddr(d.Contact.Email)
	if err != nil {
		return fmt.Errorf("put notice digest: %w", err)
	}
	if err := tx.putJSON(bucketNoticeDigest, []byte(a), d); err != nil {
		return fmt.Errorf("put notice digest %s: %w", a, err)
	}
	return nil
}

// PendingNoticeDigests returns every digest with notices not yet sent, in
// address order. There is at most one per named contact, a number the
// configuration bounds, so a scan is cheap.
func (tx *Tx) PendingNoticeDigests() ([]*NoticeDigest, error) {
	b, err := tx.bucket(bucketNoticeDigest)
	if err != nil {
		return nil, fmt.Errorf("notice digests: %w", err)
	}
	var out []*NoticeDigest
	err = b.ForEach(func(k, v []byte) error {
		var d NoticeDigest
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if len(d.Pending) > 0 {
			out = append(out, &d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("notice digests: %w", err)
	}
	return out, nil
}
