package store

import (
	"context"
	"math"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// IngestHint is what the store can know of an inbound mail before it is
// decided: the keys under which its commit will read and write. Every
// field may be empty; a wrong hint costs a few page reads, never a wrong
// result.
type IngestHint struct {
	// DedupeKey is the mail's key in messages, raw and quarantine.
	DedupeKey string
	// MessageIDs are the mail's own Message-ID and those it refers to
	// (In-Reply-To, References): the msgid entries threading looks up,
	// and through them the case a reply goes to.
	MessageIDs []string
	// Customer is the customer a new case of this mail would belong to
	// (case_customer).
	Customer string
	// Parties are the addresses the case records as parties (case_party).
	Parties []string
	// Contacts are the named contacts whose R1 digests the mail may add
	// a notice to (notice_digest, notice_pending, notice_due).
	Contacts []string
}

// Preload reads the pages that committing mails with these hints will
// touch, so that the commit finds them in the page cache. At a million
// cases those pages are spread over gigabytes: the tail of each
// customer's and each contact's key range, and the leaves of the
// Message-ID keyed buckets, where a mail with a random Message-ID lands
// in a random leaf. After a backup or report has evicted the cache, each
// is a disk read, and the group commit would take them one after another
// while it holds the write lock (issue 11: ingest must not depend on the
// page cache). Run beside the commit, Preload takes those reads in
// parallel with the commit's work, one short read transaction per hint
// (a long one would hold up the writer when the file grows: bbolt remaps
// only with no reader open). It stops when ctx ends and reports nothing:
// what it did not read, the commit reads itself.
func (db *DB) Preload(ctx context.Context, hints []IngestHint) {
	if len(hints) == 0 {
		return
	}
	_ = db.bolt().View(func(btx *bolt.Tx) error {
		preloadTails(btx)
		return nil
	})
	for i := range hints {
		if ctx.Err() != nil {
			return
		}
		_ = db.bolt().View(func(btx *bolt.Tx) error {
			preloadOne(btx, &hints[i])
			return nil
		})
	}
}

// tailBuckets are the buckets keyed in the order things happen (case and
// outbox ids, times near now): every new case and every queued mail goes
// to their last leaf, which a group's first commit would read.
var tailBuckets = []string{
	bucketCases, bucketCaseSummary, bucketCaseLine, bucketCaseClock,
	bucketDeadlineCase, bucketOutbox, bucketOutboxRaw, bucketOutboxDue,
	bucketNoticeDue, bucketAutoMailTime,
}

// preloadTails reads the last leaf of each of tailBuckets, and of each
// status's list in case_status.
func preloadTails(btx *bolt.Tx) {
	last := func(b *bolt.Bucket) {
		if b != nil {
			c := b.Cursor()
			touch(c.Last())
			touch(c.Prev())
		}
	}
	for _, name := range tailBuckets {
		last(btx.Bucket([]byte(name)))
	}
	if st := btx.Bucket([]byte(bucketCaseStatus)); st != nil {
		_ = st.ForEachBucket(func(name []byte) error {
			last(st.Bucket(name))
			return nil
		})
	}
}

// preloadOne walks, for one hint, the paths from each bucket's root to
// the leaf its key is in, the same descent a Get or Put of that key
// takes. A key not there (a new mail's, or one past the end of a range,
// as for the customer's next case) descends to where it would be
// inserted. The commit rewrites that whole leaf, and a leaf of a few large
// values spans several pages, so the entries on either side are read to
// their last byte too.
func preloadOne(btx *bolt.Tx, h *IngestHint) {
	seek := func(bucket string, key []byte) []byte {
		b := btx.Bucket([]byte(bucket))
		if b == nil || len(key) == 0 {
			return nil
		}
		c := b.Cursor()
		k, v := c.Seek(key)
		touch(k, v)
		found := string(k) == string(key)
		touch(c.Prev())
		if found {
			touch(c.Next())
			touch(c.Next())
			return v
		}
		return nil
	}
	if h.DedupeKey != "" {
		key := []byte(h.DedupeKey)
		seek(bucketMessages, key)
		seek(bucketRaw, key)
		seek(bucketQuarantine, key)
	}
	for _, id := range h.MessageIDs {
		v := seek(bucketMsgID, []byte(id))
		if len(v) == 8 {
			// A reply: its case's records are read and rewritten.
			caseKey := v
			seek(bucketCases, caseKey)
			seek(bucketCaseSummary, caseKey)
			seek(bucketCaseLine, caseKey)
			seek(bucketDeadlineCase, caseKey)
		}
	}
	if h.Customer != "" {
		seek(bucketCaseCustomer, customerKey(h.Customer, math.MaxUint64))
	}
	for _, a := range h.Parties {
		seek(bucketCaseParty, partyKey(a, math.MaxUint64))
	}
	for _, a := range h.Contacts {
		a, err := normAddr(a)
		if err != nil {
			continue
		}
		seek(bucketNoticeDigest, []byte(a))
		seek(bucketNoticePending, append(pendingPrefix(a), u64(math.MaxUint64)...))
	}
}

// touched keeps touch's reads from being optimised away.
var touched atomic.Uint32

// touch reads a byte of every page k and v lie in (both point into the
// store's memory map).
func touch(k, v []byte) {
	var sum byte
	for _, b := range [][]byte{k, v} {
		for i := 0; i < len(b); i += pageSpan {
			sum += b[i]
		}
		if len(b) > 0 {
			sum += b[len(b)-1]
		}
	}
	touched.Add(uint32(sum))
}

// pageSpan is the stride of touch: no page is smaller.
const pageSpan = 4096
