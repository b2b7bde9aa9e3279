package store

// The report index (schema 6): every case under the receipt its SLA
// clock starts from (cases.Case.ClockReceived, R11b), with the figures
// the daemon evaluated for it when they can no longer change. A monthly
// report (R12, R13) reads the cases of the months it shows, not every
// case, and replays only the cases whose figures are missing or were
// computed under another calendar or other targets (a different Stamp).
//
// Keyed by receipt rather than by the month the clock started: the start
// is the receipt moved to the next working period (R8), so it depends on
// the calendar, while the receipt does not. A changed calendar therefore
// leaves every key where it is (only the figures' stamps go stale), and
// the reader widens its range by the longest closure before a month.
//
// Like every index, an entry changes in PutCase's transaction. The store
// does not compute figures and calls nothing above it: the daemon hands
// them to PutCaseFigures; PutCase (and the migration) write an entry
// without any, which the report replays until the daemon refreshes it
// (PutClockFigures).

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"deskd/cases"
)

// ClockFigures are what the daemon keeps of a case's SLA clock in the
// report index. The store does not read Data.
type ClockFigures struct {
	// Stamp is the version of the calendar and targets Data was computed
	// under (sla.Clocks.Fingerprint); "" for none.
	Stamp string
	// Data is the daemon's encoding of the figures (sla.AppendFigures),
	// nil when it has none (an open case: the report replays it).
	Data []byte
}

// ClockEntry is one case in the report index. Customer, Stamp and Data
// alias the store's memory: valid only during the callback they are
// given to.
type ClockEntry struct {
	ID       uint64
	Received time.Time // the clock's receipt (zero: the case has none)
	Machine  bool      // a machine's case: no SLA figure counts it
	Customer []byte
	Stamp    []byte
	Data     []byte
}

const clockKeyLen = tsLen + 8

// clockFlagMachine marks a machine's case in an entry's flags byte.
const clockFlagMachine = 1

// clockKey is a case_clock key: ts(the clock's receipt), the case id.
func clockKey(received time.Time, id uint64) []byte {
	k := make([]byte, clockKeyLen)
	putTS(k, received)
	binary.BigEndian.PutUint64(k[tsLen:], id)
	return k
}

// clockValue is a case_clock value: flags, uvarint len + customer,
// uvarint len + stamp, then the figures to the end.
func clockValue(c *cases.Case, fig ClockFigures) []byte {
	v := make([]byte, 0, 1+2+len(c.Customer)+1+len(fig.Stamp)+len(fig.Data))
	var flags byte
	if c.Machine {
		flags |= clockFlagMachine
	}
	v = append(v, flags)
	v = binary.AppendUvarint(v, uint64(len(c.Customer)))
	v = append(v, c.Customer...)
	v = binary.AppendUvarint(v, uint64(len(fig.Stamp)))
	v = append(v, fig.Stamp...)
	return append(v, fig.Data...)
}

func parseClockEntry(k, v []byte, e *ClockEntry) error {
	if len(k) != clockKeyLen || len(v) < 1 {
		return fmt.Errorf("case_clock entry %x: malformed", k)
	}
	e.Received = parseTS(k) // the zero time's key parses as the zero time
	e.ID = binary.BigEndian.Uint64(k[tsLen:])
	e.Machine = v[0]&clockFlagMachine != 0
	rest := v[1:]
	field := func() []byte {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return nil
		}
		f := rest[w : w+int(n)]
		rest = rest[w+int(n):]
		return f
	}
	e.Customer = field()
	if e.Customer == nil {
		return fmt.Errorf("case_clock entry of case %d: malformed", e.ID)
	}
	e.Stamp = field()
	if e.Stamp == nil {
		return fmt.Errorf("case_clock entry of case %d: malformed", e.ID)
	}
	e.Data = rest
	return nil
}

// oldClockKey is the key of the entry PutCase must delete before it
// writes c's: nil when c is new or keeps its key (the common case: only
// a moved receipt, which is rare, reads the old record, raw).
func (tx *Tx) oldClockKey(c *cases.Case, existed bool, raw []byte) ([]byte, error) {
	if !existed {
		return nil, nil
	}
	b, err := tx.bucket(bucketCaseClock)
	if err != nil {
		return nil, fmt.Errorf("report index: %w", err)
	}
	if b.Get(clockKey(c.ClockReceived(), c.ID)) != nil {
		return nil, nil
	}
	var old cases.Case
	if err := json.Unmarshal(raw, &struct {
		ReceivedAt *time.Time     `json:"received_at"`
		Events     *[]cases.Event `json:"events"`
	}{&old.ReceivedAt, &old.Events}); err != nil {
		return nil, fmt.Errorf("report index: old record: %w", err)
	}
	return clockKey(old.ClockReceived(), c.ID), nil
}

// indexClock writes c's entry in case_clock with fig, after deleting the
// one under oldKey (oldClockKey).
func (tx *Tx) indexClock(c *cases.Case, oldKey []byte, fig ClockFigures) error {
	b, err := tx.bucket(bucketCaseClock)
	if err != nil {
		return fmt.Errorf("report index: %w", err)
	}
	if oldKey != nil {
		if err := b.Delete(oldKey); err != nil {
			return fmt.Errorf("report index: %w", err)
		}
	}
	if err := b.Put(clockKey(c.ClockReceived(), c.ID), clockValue(c, fig)); err != nil {
		return fmt.Errorf("report index: %w", err)
	}
	if fig.Stamp == "" {
		// An entry without figures: the daemon must go over the index
		// again (its refresh, then SetClockFiguresVersion).
		return tx.SetClockFiguresVersion("")
	}
	return nil
}

// PutClockFigures replaces the figures of c's entry, and nothing else:
// the daemon's refresh of entries computed under another stamp. c must be
// the case as stored in this transaction.
func (tx *Tx) PutClockFigures(c *cases.Case, fig ClockFigures) error {
	b, err := tx.bucket(bucketCaseClock)
	if err != nil {
		return fmt.Errorf("put clock figures %d: %w", c.ID, err)
	}
	key := clockKey(c.ClockReceived(), c.ID)
	if b.Get(key) == nil {
		return fmt.Errorf("put clock figures %d: no entry in the report index", c.ID)
	}
	if err := b.Put(key, clockValue(c, fig)); err != nil {
		return fmt.Errorf("put clock figures %d: %w", c.ID, err)
	}
	return nil
}

// ForEachClockEntry calls fn for every entry whose receipt lies in
// [from, to), in receipt order; a zero from starts at the first entry
// (cases without a receipt included). It stops at fn's first error. fn
// must not write to the store.
func (tx *Tx) ForEachClockEntry(from, to time.Time, fn func(*ClockEntry) error) error {
	b, err := tx.bucket(bucketCaseClock)
	if err != nil {
		return fmt.Errorf("report index: %w", err)
	}
	end := ts(to)
	c := b.Cursor()
	var k, v []byte
	if from.IsZero() {
		k, v = c.First()
	} else {
		k, v = c.Seek(ts(from))
	}
	var e ClockEntry
	for ; k != nil && bytes.Compare(k[:min(len(k), tsLen)], end) < 0; k, v = c.Next() {
		if err := parseClockEntry(k, v, &e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// FirstClockReceived is the earliest receipt in the report index, cases
// without one (keyed by the zero time) not counted: zero when those are
// all there is. ok is false when the index is empty.
func (tx *Tx) FirstClockReceived() (first time.Time, ok bool, err error) {
	b, err := tx.bucket(bucketCaseClock)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("report index: %w", err)
	}
	c := b.Cursor()
	if k, _ := c.First(); k == nil {
		return time.Time{}, false, nil
	}
	// Past every key of the zero time (whose nanoseconds are 0).
	k, _ := c.Seek(ts(time.Time{}.Add(time.Nanosecond)))
	if k == nil {
		return time.Time{}, true, nil
	}
	if len(k) != clockKeyLen {
		return time.Time{}, false, fmt.Errorf("case_clock key %x: malformed", k)
	}
	return parseTS(k), true, nil
}

// StaleClockEntry is an entry whose figures are not under the stamp
// asked for: its case, and its key, to continue after.
type StaleClockEntry struct {
	ID  uint64
	Key []byte
}

// StaleClockEntries returns up to limit entries after the key after
// (nil: from the first) whose stamp is not stamp, machine cases
// excepted, in key order; fewer than limit means there are no more.
func (tx *Tx) StaleClockEntries(stamp string, after []byte, limit int) ([]StaleClockEntry, error) {
	b, err := tx.bucket(bucketCaseClock)
	if err != nil {
		return nil, fmt.Errorf("report index: %w", err)
	}
	c := b.Cursor()
	var k, v []byte
	if after == nil {
		k, v = c.First()
	} else if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	var out []StaleClockEntry
	var e ClockEntry
	for ; k != nil && len(out) < limit; k, v = c.Next() {
		if err := parseClockEntry(k, v, &e); err != nil {
			return nil, err
		}
		if !e.Machine && string(e.Stamp) != stamp {
			out = append(out, StaleClockEntry{ID: e.ID, Key: bytes.Clone(k)})
		}
	}
	return out, nil
}

// keyClockFiguresVersion in meta is the stamp under which every entry of
// the report index last had its figures (the daemon's full refresh);
// removed whenever an entry is written without a stamp.
const keyClockFiguresVersion = "clock_figures_version"

// ClockFiguresVersion is what SetClockFiguresVersion last recorded, ""
// when the index has entries without figures of any stamp.
func (tx *Tx) ClockFiguresVersion() (string, error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return "", fmt.Errorf("clock figures version: %w", err)
	}
	return string(meta.Get([]byte(keyClockFiguresVersion))), nil
}

// SetClockFiguresVersion records that every entry has figures under v
// ("" removes the record).
func (tx *Tx) SetClockFiguresVersion(v string) error {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return fmt.Errorf("set clock figures version: %w", err)
	}
	if v == "" {
		if meta.Get([]byte(keyClockFiguresVersion)) == nil {
			return nil
		}
		err = meta.Delete([]byte(keyClockFiguresVersion))
	} else {
		err = meta.Put([]byte(keyClockFiguresVersion), []byte(v))
	}
	if err != nil {
		return fmt.Errorf("set clock figures version: %w", err)
	}
	return nil
}

// migrateV5toV6 builds case_clock from the cases bucket: every case under
// its clock's receipt, without figures (the daemon computes them). Only
// the fields the key and entry need are decoded.
func migrateV5toV6(tx *bolt.Tx) error {
	cb := tx.Bucket([]byte(bucketCases))
	idx := tx.Bucket([]byte(bucketCaseClock))
	if cb == nil || idx == nil {
		return errors.New("cases or case_clock bucket missing")
	}
	return cb.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("case key %x: %d bytes, want 8", k, len(k))
		}
		var c cases.Case
		if err := json.Unmarshal(v, &struct {
			Customer   *string        `json:"customer"`
			Machine    *bool          `json:"machine"`
			ReceivedAt *time.Time     `json:"received_at"`
			Events     *[]cases.Event `json:"events"`
		}{&c.Customer, &c.Machine, &c.ReceivedAt, &c.Events}); err != nil {
			return fmt.Errorf("case %d: %w", binary.BigEndian.Uint64(k), err)
		}
		c.ID = binary.BigEndian.Uint64(k)
		return idx.Put(clockKey(c.ClockReceived(), c.ID), clockValue(&c, ClockFigures{}))
	})
}
