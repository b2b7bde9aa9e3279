package store

// The SLA deadline index (schema 3). The escalation loop sleeps until the
// earliest entry (NextDeadline) and then handles what is due
// (DueDeadlines), reading only those entries instead of every case. The
// store does not compute deadlines and calls nothing above it: the daemon
// computes them (the sla package's arithmetic, R7..R11d) and hands them to
// PutCase with the case, which replaces the case's entries in the same
// transaction as the case record, so the index can never be ahead of or
// behind the cases it describes.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"deskd/cases"
)

// Deadline is one entry of the deadline index: at At, something of kind
// Kind is due for case CaseID (a warning or a breach, see the daemon).
type Deadline struct {
	At     time.Time
	CaseID uint64
	Kind   string
}

// maxKindLen bounds a Kind: it is part of every key, and its length is
// stored in one byte in deadline_case.
const maxKindLen = 64

// deadlineKeyMin is the length of a deadline key with an empty kind.
const deadlineKeyMin = tsLen + 8

// NextDeadline returns the earliest entry; ok=false when the index is empty.
// At is in UTC.
func (tx *Tx) NextDeadline() (d Deadline, ok bool, err error) {
	b, err := tx.bucket(bucketDeadline)
	if err != nil {
		return Deadline{}, false, fmt.Errorf("next deadline: %w", err)
	}
	k, _ := b.Cursor().First()
	if k == nil {
		return Deadline{}, false, nil
	}
	d, err = parseDeadlineKey(k)
	if err != nil {
		return Deadline{}, false, fmt.Errorf("next deadline: %w", err)
	}
	return d, true, nil
}

// DueDeadlines returns every entry with At <= until, earliest first (ties by case id, then kind).
// It reads only those entries (and one key past them). At is in UTC.
func (tx *Tx) DueDeadlines(until time.Time) ([]Deadline, error) {
	b, err := tx.bucket(bucketDeadline)
	if err != nil {
		return nil, fmt.Errorf("due deadlines: %w", err)
	}
	end := ts(until)
	var out []Deadline
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		d, err := parseDeadlineKey(k)
		if err != nil {
			return nil, fmt.Errorf("due deadlines: %w", err)
		}
		if bytes.Compare(k[:tsLen], end) > 0 {
			break
		}
		out = append(out, d)
	}
	return out, nil
}

// CaseDeadlines returns case id's entries, earliest first (ties by kind).
// It reads deadline_case only. At is in UTC.
func (tx *Tx) CaseDeadlines(id uint64) ([]Deadline, error) {
	b, err := tx.bucket(bucketDeadlineCase)
	if err != nil {
		return nil, fmt.Errorf("deadlines of case %d: %w", id, err)
	}
	var out []Deadline
	err = decodeCaseDeadlines(b.Get(u64(id)), func(at, kind []byte) error {
		out = append(out, Deadline{At: parseTS(at), CaseID: id, Kind: string(kind)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deadlines of case %d: %w", id, err)
	}
	return out, nil
}

// ReindexDeadlines drops the whole index and rebuilds it from every case
// that is not closed (the case_status index: open and pending; closed
// cases have none), with the deadlines deadlinesOf computes for each.
// Returns the number of entries written. The daemon calls it at start and
// after a configuration reload (the calendar or targets may have
// changed). It must run in an Update; an invalid entry fails it (and the
// caller's transaction rolls back, keeping the old index).
func (tx *Tx) ReindexDeadlines(deadlinesOf func(*cases.Case) []Deadline) (int, error) {
	// Deleting and recreating the buckets frees their pages wholesale
	// instead of deleting key by key.
	for _, name := range []string{bucketDeadline, bucketDeadlineCase} {
		if err := tx.recreateBucket(name); err != nil {
			return 0, fmt.Errorf("reindex deadlines: %w", err)
		}
	}
	n := 0
	// Open and pending only: a pending case's resolution clock is paused
	// (R11c), but deadlinesOf decides what that means, e.g. a first
	// response still due. Closing stops the clock, so closed cases, the
	// bulk of a store, are not even read.
	for _, status := range []cases.Status{cases.StatusOpen, cases.StatusPending} {
		err := tx.ForEachCase(status, func(c *cases.Case) error {
			enc, err := encodeDeadlines(deadlinesOf(c))
			if err != nil {
				return fmt.Errorf("case %d: %w", c.ID, err)
			}
			if err := tx.replaceDeadlines(c.ID, enc); err != nil {
				return fmt.Errorf("case %d: %w", c.ID, err)
			}
			n += countDeadlines(enc)
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("reindex deadlines: %w", err)
		}
	}
	return n, nil
}

// replaceDeadlines makes enc (encodeDeadlines) case id's entries: the
// keys listed in its old deadline_case value are deleted (no scan of the
// index), enc's are written. An unchanged set, the common case when a mail
// is added to a case without moving its clock, writes nothing.
func (tx *Tx) replaceDeadlines(id uint64, enc []byte) error {
	idx, err := tx.bucket(bucketDeadline)
	if err != nil {
		return fmt.Errorf("deadline index: %w", err)
	}
	byCase, err := tx.bucket(bucketDeadlineCase)
	if err != nil {
		return fmt.Errorf("deadline index: %w", err)
	}
	caseKey := u64(id)
	old := byCase.Get(caseKey)
	if bytes.Equal(old, enc) {
		return nil
	}
	// Collected before the first Delete: old lives in the mmap (or a
	// node) that writing to the transaction may change.
	var stale [][]byte
	err = decodeCaseDeadlines(old, func(at, kind []byte) error {
		stale = append(stale, deadlineKey(at, id, kind))
		return nil
	})
	if err != nil {
		return fmt.Errorf("deadline index: case %d's entry: %w", id, err)
	}
	for _, k := range stale {
		if err := idx.Delete(k); err != nil {
			return fmt.Errorf("deadline index: %w", err)
		}
	}
	err = decodeCaseDeadlines(enc, func(at, kind []byte) error {
		return idx.Put(deadlineKey(at, id, kind), nil)
	})
	if err != nil {
		return fmt.Errorf("deadline index: %w", err)
	}
	if len(enc) == 0 {
		err = byCase.Delete(caseKey)
	} else {
		err = byCase.Put(caseKey, enc)
	}
	if err != nil {
		return fmt.Errorf("deadline index: %w", err)
	}
	return nil
}

// encodeDeadlines checks ds and encodes them as a deadline_case value:
// per entry ts(At), uint8 len(Kind), Kind, sorted in deadline key order
// (At, then Kind; the case id is the same for all), each (At, Kind) once.
// No entries encode as nil. CaseID in ds is ignored.
func encodeDeadlines(ds []Deadline) ([]byte, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	type entry struct {
		at   [tsLen]byte
		kind string
	}
	entries := make([]entry, len(ds))
	for i, d := range ds {
		if d.At.IsZero() {
			return nil, fmt.Errorf("deadline %q: zero time", d.Kind)
		}
		if err := checkKind(d.Kind); err != nil {
			return nil, err
		}
		putTS(entries[i].at[:], d.At)
		entries[i].kind = d.Kind
	}
	cmp := func(a, b entry) int {
		if c := bytes.Compare(a.at[:], b.at[:]); c != 0 {
			return c
		}
		return strings.Compare(a.kind, b.kind)
	}
	slices.SortFunc(entries, cmp)
	// Duplicates (the same instant in another zone is the same key) are
	// adjacent after sorting.
	entries = slices.CompactFunc(entries, func(a, b entry) bool { return cmp(a, b) == 0 })
	size := 0
	for _, e := range entries {
		size += tsLen + 1 + len(e.kind)
	}
	enc := make([]byte, 0, size)
	for _, e := range entries {
		enc = append(enc, e.at[:]...)
		enc = append(enc, byte(len(e.kind)))
		enc = append(enc, e.kind...)
	}
	return enc, nil
}

// checkKind admits 1 to maxKindLen printable ASCII bytes: a kind ends a
// key and is shown in logs and on the admin socket.
func checkKind(kind string) error {
	if kind == "" {
		return errors.New("deadline kind empty")
	}
	if len(kind) > maxKindLen {
		return fmt.Errorf("deadline kind %.20q...: %d bytes, at most %d", kind, len(kind), maxKindLen)
	}
	for i := 0; i < len(kind); i++ {
		if kind[i] < 0x20 || kind[i] > 0x7e {
			return fmt.Errorf("deadline kind %q: byte %#x at %d is not printable ASCII", kind, kind[i], i)
		}
	}
	return nil
}

// decodeCaseDeadlines calls fn for each entry of a deadline_case value,
// in order. at and kind alias enc.
func decodeCaseDeadlines(enc []byte, fn func(at, kind []byte) error) error {
	for len(enc) > 0 {
		if len(enc) < tsLen+1 {
			return fmt.Errorf("malformed deadline list: %d trailing bytes", len(enc))
		}
		n := int(enc[tsLen])
		if len(enc) < tsLen+1+n {
			return fmt.Errorf("malformed deadline list: kind of %d bytes, %d left", n, len(enc)-tsLen-1)
		}
		if err := fn(enc[:tsLen], enc[tsLen+1:tsLen+1+n]); err != nil {
			return err
		}
		enc = enc[tsLen+1+n:]
	}
	return nil
}

// countDeadlines is the number of entries in a valid deadline_case value.
func countDeadlines(enc []byte) int {
	n := 0
	_ = decodeCaseDeadlines(enc, func(_, _ []byte) error { n++; return nil })
	return n
}

// deadlineKey is a deadline key: ts At, the case id, the kind. The
// fixed-width prefix makes byte order (At, case id, kind) order.
func deadlineKey(at []byte, id uint64, kind []byte) []byte {
	k := make([]byte, 0, deadlineKeyMin+len(kind))
	k = append(k, at...)
	k = binary.BigEndian.AppendUint64(k, id)
	return append(k, kind...)
}

func parseDeadlineKey(k []byte) (Deadline, error) {
	if len(k) <= deadlineKeyMin {
		return Deadline{}, fmt.Errorf("malformed deadline key %x", k)
	}
	return Deadline{
		At:     parseTS(k[:tsLen]),
		CaseID: binary.BigEndian.Uint64(k[tsLen:deadlineKeyMin]),
		Kind:   string(k[deadlineKeyMin:]),
	}, nil
}

// keyDeadlineVersion in meta is the version (the SLA clocks' fingerprint,
// sla.Clocks.Fingerprint) the deadline index was last rebuilt under. The
// daemon rebuilds the index at start only when its clocks' fingerprint
// differs, so that a start reads no case at all.
const keyDeadlineVersion = "deadline_version"

// DeadlineVersion is what SetDeadlineVersion last recorded; "" when the
// index was never rebuilt under a version (a store of an older deskd, or
// one filled by another writer, such as internal/gen, that cleared it).
func (tx *Tx) DeadlineVersion() (string, error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return "", fmt.Errorf("deadline version: %w", err)
	}
	return string(meta.Get([]byte(keyDeadlineVersion))), nil
}

// SetDeadlineVersion records the version the index was just rebuilt
// under (ReindexDeadlines, in the same transaction).
func (tx *Tx) SetDeadlineVersion(v string) error {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return fmt.Errorf("set deadline version: %w", err)
	}
	if err := meta.Put([]byte(keyDeadlineVersion), []byte(v)); err != nil {
		return fmt.Errorf("set deadline version: %w", err)
	}
	return nil
}
