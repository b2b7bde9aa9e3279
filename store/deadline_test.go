package store

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"deskd/cases"
)

const (
	kindWarn   = "first_response/warning"
	kindBreach = "first_response/breach"
	kindResW   = "resolution/warning"
)

// deadlineFunc computes a case's deadlines, as the daemon does (the
// store never calls one: the tests hand its result to PutCase).
type deadlineFunc func(c *cases.Case) []Deadline

// testDeadlines is the deadlineFunc the test running now hands to
// putCase (store tests run one at a time).
var testDeadlines deadlineFunc

// setDeadlines makes f what putCase hands to PutCase (nil: no
// deadlines) until the test ends.
func setDeadlines(t testing.TB, f deadlineFunc) {
	testDeadlines = f
	t.Cleanup(func() { testDeadlines = nil })
}

// putCase is PutCase with the deadlines testDeadlines computes for c.
func putCase(tx *Tx, c *cases.Case) error {
	if testDeadlines == nil {
		return tx.PutCase(c)
	}
	return tx.PutCase(c, testDeadlines(c)...)
}

// reindex is ReindexDeadlines with testDeadlines (none when nil).
func reindex(tx *Tx) (int, error) {
	f := testDeadlines
	if f == nil {
		f = func(*cases.Case) []Deadline { return nil }
	}
	return tx.ReindexDeadlines(f)
}

// tableFunc returns plan[c.ID]; tests change plan between transactions
// (never during one).
func tableFunc(plan map[uint64][]Deadline) deadlineFunc {
	return func(c *cases.Case) []Deadline { return plan[c.ID] }
}

func dl(at time.Time, id uint64, kind string) Deadline {
	return Deadline{At: at.UTC(), CaseID: id, Kind: kind}
}

// rawDeadlines reads the deadline bucket itself, in key order.
func rawDeadlines(t *testing.T, db *DB) []Deadline {
	t.Helper()
	var out []Deadline
	err := db.bolt().View(func(btx *bolt.Tx) error {
		return btx.Bucket([]byte(bucketDeadline)).ForEach(func(k, v []byte) error {
			if len(v) != 0 {
				t.Errorf("deadline key %x has a value %x", k, v)
			}
			d, err := parseDeadlineKey(k)
			out = append(out, d)
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkIndex verifies that deadline and deadline_case describe the same
// entries: each case's list names exactly its keys, and no key is left
// without a list. It returns the number of cases with entries.
func checkIndex(t *testing.T, db *DB) int {
	t.Helper()
	want := make(map[string]bool)
	ncases := 0
	err := db.bolt().View(func(btx *bolt.Tx) error {
		err := btx.Bucket([]byte(bucketDeadlineCase)).ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) == 0 {
				t.Errorf("deadline_case %x → %x: want an 8-byte key and a non-empty list", k, v)
			}
			ncases++
			return decodeCaseDeadlines(v, func(at, kind []byte) error {
				want[string(deadlineKey(at, binary.BigEndian.Uint64(k), kind))] = true
				return nil
			})
		})
		if err != nil {
			return err
		}
		got := make(map[string]bool)
		btx.Bucket([]byte(bucketDeadline)).ForEach(func(k, _ []byte) error {
			got[string(k)] = true
			return nil
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("deadline has %d keys, deadline_case lists %d; they differ", len(got), len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ncases
}

func caseDeadlinesOf(t *testing.T, db *DB, id uint64) []Deadline {
	t.Helper()
	var out []Deadline
	view(t, db, func(tx *Tx) error {
		var err error
		out, err = tx.CaseDeadlines(id)
		return err
	})
	return out
}

func dueDeadlines(t *testing.T, db *DB, until time.Time) []Deadline {
	t.Helper()
	var out []Deadline
	view(t, db, func(tx *Tx) error {
		var err error
		out, err = tx.DueDeadlines(until)
		return err
	})
	return out
}

func putCases(t *testing.T, db *DB, cs ...*cases.Case) {
	t.Helper()
	update(t, db, func(tx *Tx) error {
		for _, c := range cs {
			if err := putCase(tx, c); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutCase writes f's entries, replaces them on the next PutCase (the old
// ones are gone from both buckets) and clears them when f returns none,
// here because the case was closed.
func TestDeadlinePutCaseReplaces(t *testing.T) {
	db := openTest(t)
	plan := map[uint64][]Deadline{
		// CaseID as f gives it is ignored: the store fills it.
		1: {{At: t0.Add(4 * time.Hour), Kind: kindBreach, CaseID: 99}, {At: t0.Add(3 * time.Hour), Kind: kindWarn}},
		2: {{At: t0.Add(time.Hour), Kind: kindWarn}},
	}
	setDeadlines(t, tableFunc(plan))
	putCases(t, db, newCase(1, cases.StatusOpen), newCase(2, cases.StatusOpen))
	want1 := []Deadline{dl(t0.Add(3*time.Hour), 1, kindWarn), dl(t0.Add(4*time.Hour), 1, kindBreach)}
	if got := caseDeadlinesOf(t, db, 1); !reflect.DeepEqual(got, want1) {
		t.Errorf("case 1: %v, want %v", got, want1)
	}
	if got, want := rawDeadlines(t, db), append([]Deadline{dl(t0.Add(time.Hour), 2, kindWarn)}, want1...); !reflect.DeepEqual(got, want) {
		t.Errorf("index: %v, want %v", got, want)
	}
	checkIndex(t, db)

	// Staff raise the priority (R7): the deadlines move earlier, one kind
	// is new, one is dropped.
	plan[1] = []Deadline{{At: t0.Add(90 * time.Minute), Kind: kindWarn}, {At: t0.Add(2 * time.Hour), Kind: kindResW}}
	c1 := newCase(1, cases.StatusOpen)
	c1.Priority = cases.PriorityUrgent
	putCases(t, db, c1)
	want1 = []Deadline{dl(t0.Add(90*time.Minute), 1, kindWarn), dl(t0.Add(2*time.Hour), 1, kindResW)}
	if got := caseDeadlinesOf(t, db, 1); !reflect.DeepEqual(got, want1) {
		t.Errorf("case 1 replaced: %v, want %v", got, want1)
	}
	if got, want := rawDeadlines(t, db), []Deadline{dl(t0.Add(time.Hour), 2, kindWarn), want1[0], want1[1]}; !reflect.DeepEqual(got, want) {
		t.Errorf("index after replacing: %v, want %v (old entries must be gone)", got, want)
	}
	checkIndex(t, db)

	// The same set again (a message added, clock unchanged) is a no-op.
	putCases(t, db, c1)
	if got := caseDeadlinesOf(t, db, 1); !reflect.DeepEqual(got, want1) {
		t.Errorf("case 1 stored again: %v, want %v", got, want1)
	}

	// Closing stops the clock (R11c): f returns nil, the entries go.
	delete(plan, 1)
	putCases(t, db, newCase(1, cases.StatusClosed))
	if got := caseDeadlinesOf(t, db, 1); got != nil {
		t.Errorf("closed case 1 still has %v", got)
	}
	if got, want := rawDeadlines(t, db), []Deadline{dl(t0.Add(time.Hour), 2, kindWarn)}; !reflect.DeepEqual(got, want) {
		t.Errorf("index after closing case 1: %v, want %v", got, want)
	}
	if n := checkIndex(t, db); n != 1 {
		t.Errorf("%d cases in deadline_case, want 1", n)
	}
	// An empty (not nil) result clears too.
	plan[2] = []Deadline{}
	putCases(t, db, newCase(2, cases.StatusPending))
	if got := rawDeadlines(t, db); got != nil {
		t.Errorf("index after case 2's empty result: %v", got)
	}
	if n := checkIndex(t, db); n != 0 {
		t.Errorf("%d cases in deadline_case, want 0", n)
	}
	// The index survives a reopen.
	plan[2] = []Deadline{{At: t0, Kind: kindWarn}}
	putCases(t, db, newCase(2, cases.StatusOpen))
	db = reopen(t, db)
	if got, want := caseDeadlinesOf(t, db, 2), []Deadline{dl(t0, 2, kindWarn)}; !reflect.DeepEqual(got, want) {
		t.Errorf("case 2 after reopen: %v, want %v", got, want)
	}
}

// NextDeadline and DueDeadlines order by instant, then case id, then kind;
// the until bound is inclusive; instants in other zones sort as instants.
func TestDeadlineOrdering(t *testing.T) {
	db := openTest(t)
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	view(t, db, func(tx *Tx) error {
		if _, ok, err := tx.NextDeadline(); ok || err != nil {
			t.Errorf("NextDeadline on an empty index: ok %v, err %v", ok, err)
		}
		return nil
	})
	tie := t0.Add(2 * time.Hour)
	plan := map[uint64][]Deadline{
		3: {{At: tie, Kind: kindWarn}, {At: tie, Kind: kindBreach}, {At: t0.Add(-time.Hour), Kind: kindResW}},
		1: {{At: tie.In(ams), Kind: kindWarn}, {At: t0.Add(5 * time.Hour), Kind: kindBreach}},
		2: {{At: tie.Add(time.Nanosecond), Kind: kindWarn}, {At: t0.Add(time.Hour).In(ams), Kind: kindBreach}},
		// Before 1970 and far ahead still sort as time.
		4: {{At: time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), Kind: kindWarn}, {At: time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC), Kind: kindWarn}},
	}
	setDeadlines(t, tableFunc(plan))
	// Stored in reverse order of their deadlines on purpose.
	putCases(t, db, newCase(1, cases.StatusOpen), newCase(2, cases.StatusOpen), newCase(3, cases.StatusPending), newCase(4, cases.StatusOpen))
	all := []Deadline{
		dl(time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), 4, kindWarn),
		dl(t0.Add(-time.Hour), 3, kindResW),
		dl(t0.Add(time.Hour), 2, kindBreach),
		dl(tie, 1, kindWarn),
		dl(tie, 3, kindBreach),
		dl(tie, 3, kindWarn),
		dl(tie.Add(time.Nanosecond), 2, kindWarn),
		dl(t0.Add(5*time.Hour), 1, kindBreach),
		dl(time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC), 4, kindWarn),
	}
	if got := rawDeadlines(t, db); !reflect.DeepEqual(got, all) {
		t.Fatalf("index:\n%v\nwant\n%v", got, all)
	}
	view(t, db, func(tx *Tx) error {
		d, ok, err := tx.NextDeadline()
		if err != nil || !ok || !reflect.DeepEqual(d, all[0]) {
			t.Errorf("NextDeadline = %v, %v, %v; want %v", d, ok, err, all[0])
		}
		if d.At.Location() != time.UTC {
			t.Errorf("NextDeadline At in %v, want UTC", d.At.Location())
		}
		return nil
	})
	for _, tc := range []struct {
		until time.Time
		n     int
	}{
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{t0, 2},
		{t0.Add(time.Hour), 3}, // inclusive
		{tie.Add(-time.Nanosecond), 3},
		{tie, 6}, // all three ties
		{tie.In(ams), 6},
		{tie.Add(time.Nanosecond), 7},
		{time.Date(2399, 1, 1, 0, 0, 0, 0, time.UTC), 8},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 9},
	} {
		got := dueDeadlines(t, db, tc.until)
		if want := all[:tc.n]; len(got) != len(want) || len(want) > 0 && !reflect.DeepEqual(got, want) {
			t.Errorf("DueDeadlines(%v) = %v, want %v", tc.until, got, want)
		}
	}
	if got, want := caseDeadlinesOf(t, db, 3), []Deadline{all[1], all[4], all[5]}; !reflect.DeepEqual(got, want) {
		t.Errorf("CaseDeadlines(3) = %v, want %v", got, want)
	}
	if got := caseDeadlinesOf(t, db, 42); got != nil {
		t.Errorf("CaseDeadlines of no case = %v", got)
	}
}

// A failing Update rolls the index back with the case; a PutCase whose f
// gives a bad entry fails before writing anything.
func TestDeadlineRollback(t *testing.T) {
	db := openTest(t)
	plan := map[uint64][]Deadline{1: {{At: t0, Kind: kindWarn}}, 2: {{At: t0.Add(time.Hour), Kind: kindWarn}}}
	setDeadlines(t, tableFunc(plan))
	putCases(t, db, newCase(1, cases.StatusOpen), newCase(2, cases.StatusOpen))
	before := rawDeadlines(t, db)

	plan[1] = []Deadline{{At: t0.Add(time.Minute), Kind: kindBreach}}
	plan[3] = []Deadline{{At: t0.Add(-time.Minute), Kind: kindWarn}}
	boom := errors.New("smtp queue full")
	err := db.Update(func(tx *Tx) error {
		if err := putCase(tx, newCase(1, cases.StatusClosed)); err != nil {
			return err
		}
		if err := putCase(tx, newCase(3, cases.StatusOpen)); err != nil {
			return err
		}
		// Inside the transaction the change is visible...
		if got, _ := tx.CaseDeadlines(1); len(got) != 1 || got[0].Kind != kindBreach {
			t.Errorf("inside the tx: %v", got)
		}
		if _, err := reindex(tx); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update = %v", err)
	}
	// ...and after the rollback nothing of it is.
	if got := rawDeadlines(t, db); !reflect.DeepEqual(got, before) {
		t.Errorf("index after rollback: %v, want %v", got, before)
	}
	if got := caseDeadlinesOf(t, db, 3); got != nil {
		t.Errorf("rolled-back case 3 has %v", got)
	}
	checkIndex(t, db)

	// A bad entry: PutCase fails and has written nothing, not even the
	// case, so a caller that carries on does not commit half a change.
	plan[1] = []Deadline{{At: t0, Kind: "bad\nkind"}}
	plan[3] = []Deadline{{Kind: kindWarn}}
	update(t, db, func(tx *Tx) error {
		c := newCase(1, cases.StatusClosed)
		if err := putCase(tx, c); err == nil || !strings.Contains(err.Error(), "put case 1") {
			t.Errorf("PutCase with a bad kind = %v", err)
		}
		if err := putCase(tx, newCase(3, cases.StatusOpen)); err == nil || !strings.Contains(err.Error(), "zero time") {
			t.Errorf("PutCase with a zero time = %v", err)
		}
		if c, _ := tx.Case(1); c == nil || c.Status != cases.StatusOpen {
			t.Errorf("case 1 changed by a failed PutCase: %+v", c)
		}
		if c, _ := tx.Case(3); c != nil {
			t.Errorf("case 3 stored by a failed PutCase")
		}
		if id, _ := tx.NextCaseID(); id != 3 {
			t.Errorf("next case id %d after a failed PutCase, want 3", id)
		}
		return nil
	})
	if got := rawDeadlines(t, db); !reflect.DeepEqual(got, before) {
		t.Errorf("index after failed PutCases: %v, want %v", got, before)
	}
}

// ReindexDeadlines rebuilds from the open and pending cases with the
// current f: stale entries go, closed cases get none even when f would
// give them some, and the count is what was written.
func TestReindexDeadlines(t *testing.T) {
	db := openTest(t)
	// f1: one warning per case, whatever its status.
	f1 := func(c *cases.Case) []Deadline {
		return []Deadline{{At: c.CreatedAt.Add(time.Duration(c.ID) * time.Hour), Kind: kindWarn}}
	}
	setDeadlines(t, f1)
	statuses := map[uint64]cases.Status{1: cases.StatusOpen, 2: cases.StatusPending, 3: cases.StatusClosed, 4: cases.StatusOpen, 5: cases.StatusClosed}
	update(t, db, func(tx *Tx) error {
		for id := uint64(1); id <= 5; id++ {
			if err := putCase(tx, newCase(id, statuses[id])); err != nil {
				return err
			}
		}
		return nil
	})
	// PutCase follows f literally, closed or not.
	if got := len(rawDeadlines(t, db)); got != 5 {
		t.Fatalf("%d entries before reindex, want 5", got)
	}

	// A configuration reload: new targets, two kinds per case, plus a
	// duplicate that must be written once.
	f2 := func(c *cases.Case) []Deadline {
		at := c.CreatedAt.Add(time.Duration(c.ID) * time.Minute)
		return []Deadline{{At: at, Kind: kindBreach}, {At: at.Add(-time.Minute), Kind: kindWarn}, {At: at, Kind: kindBreach}}
	}
	setDeadlines(t, f2)
	update(t, db, func(tx *Tx) error {
		n, err := reindex(tx)
		if err != nil || n != 6 {
			t.Errorf("ReindexDeadlines = %d, %v; want 6 (3 open or pending cases, 2 each)", n, err)
		}
		return err
	})
	var want []Deadline
	for _, id := range []uint64{1, 2, 4} {
		at := t0.Add(time.Duration(id) * time.Minute)
		want = append(want, dl(at.Add(-time.Minute), id, kindWarn), dl(at, id, kindBreach))
	}
	// Case 1's breach and case 2's warning share an instant: by case id.
	if got := rawDeadlines(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("index after reindex:\n%v\nwant\n%v", got, want)
	}
	for _, id := range []uint64{3, 5} {
		if got := caseDeadlinesOf(t, db, id); got != nil {
			t.Errorf("closed case %d: %v", id, got)
		}
	}
	if n := checkIndex(t, db); n != 3 {
		t.Errorf("%d cases in deadline_case, want 3", n)
	}

	// A bad entry from f fails the reindex; the Update rolls back.
	setDeadlines(t, func(c *cases.Case) []Deadline {
		return []Deadline{{At: t0, Kind: strings.Repeat("x", 65)}}
	})
	err := db.Update(func(tx *Tx) error { _, err := reindex(tx); return err })
	if err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("reindex with a bad kind = %v", err)
	}
	if got := rawDeadlines(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("index after a failed reindex: %v", got)
	}
	// It needs a writable transaction.
	if err := db.View(func(tx *Tx) error { _, err := reindex(tx); return err }); err == nil {
		t.Error("ReindexDeadlines in a View succeeded")
	}
	// With no deadlines for any case it empties the index.
	setDeadlines(t, nil)
	update(t, db, func(tx *Tx) error {
		n, err := reindex(tx)
		if n != 0 {
			t.Errorf("ReindexDeadlines without a func = %d", n)
		}
		return err
	})
	if got := rawDeadlines(t, db); got != nil {
		t.Errorf("index after reindex without a func: %v", got)
	}
	checkIndex(t, db)
}

// Kinds are 1..64 printable ASCII bytes; zero instants are refused; a
// repeated (At, Kind), even given in another zone, is written once.
func TestDeadlineValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Deadline
		err  string // "" = accepted
	}{
		{"ok", Deadline{At: t0, Kind: kindWarn}, ""},
		{"64 bytes", Deadline{At: t0, Kind: strings.Repeat("k", 64)}, ""},
		{"space and punctuation", Deadline{At: t0, Kind: "a b/c-d_e.f:~"}, ""},
		{"65 bytes", Deadline{At: t0, Kind: strings.Repeat("k", 65)}, "at most 64"},
		{"empty", Deadline{At: t0, Kind: ""}, "empty"},
		{"NUL", Deadline{At: t0, Kind: "a\x00b"}, "not printable"},
		{"tab", Deadline{At: t0, Kind: "a\tb"}, "not printable"},
		{"DEL", Deadline{At: t0, Kind: "a\x7f"}, "not printable"},
		{"UTF-8", Deadline{At: t0, Kind: "reactie/waarschuwing/é"}, "not printable"},
		{"zero time", Deadline{Kind: kindWarn}, "zero time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := encodeDeadlines([]Deadline{{At: t0.Add(time.Hour), Kind: kindBreach}, tc.d})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("encodeDeadlines(%+v) = %v, want %q", tc.d, err, tc.err)
			}
		})
	}

	db := openTest(t)
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	setDeadlines(t, func(c *cases.Case) []Deadline {
		return []Deadline{
			{At: t0, Kind: kindWarn}, {At: t0.In(ams), Kind: kindWarn}, {At: t0, Kind: kindWarn},
			{At: t0, Kind: kindBreach}, {At: t0.Add(time.Second), Kind: kindWarn},
		}
	})
	putCases(t, db, newCase(1, cases.StatusOpen))
	want := []Deadline{dl(t0, 1, kindBreach), dl(t0, 1, kindWarn), dl(t0.Add(time.Second), 1, kindWarn)}
	if got := rawDeadlines(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("index with duplicates from f: %v, want %v", got, want)
	}
	if got := caseDeadlinesOf(t, db, 1); !reflect.DeepEqual(got, want) {
		t.Errorf("CaseDeadlines with duplicates from f: %v, want %v", got, want)
	}
}

// Corrupt index data is reported, not misread.
func TestDeadlineCorrupt(t *testing.T) {
	db := openTest(t)
	err := db.bolt().Update(func(btx *bolt.Tx) error {
		if err := btx.Bucket([]byte(bucketDeadlineCase)).Put(u64(1), []byte{1, 2, 3}); err != nil {
			return err
		}
		return btx.Bucket([]byte(bucketDeadline)).Put([]byte("short"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		if _, err := tx.CaseDeadlines(1); err == nil {
			t.Error("CaseDeadlines of a corrupt list succeeded")
		}
		if _, _, err := tx.NextDeadline(); err == nil {
			t.Error("NextDeadline of a corrupt key succeeded")
		}
		if _, err := tx.DueDeadlines(t0); err == nil {
			t.Error("DueDeadlines of a corrupt key succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	setDeadlines(t, func(*cases.Case) []Deadline { return nil })
	if err := db.Update(func(tx *Tx) error { return putCase(tx, newCase(1, cases.StatusOpen)) }); err == nil {
		t.Error("PutCase over a corrupt deadline_case list succeeded")
	}
}

// The schema-1 fixture migrates to 3 (through 2) and on: the index buckets exist
// and are empty, and ReindexDeadlines fills them from the open and pending
// cases.
func TestMigrateV1Deadlines(t *testing.T) {
	path := copyFixture(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := rawDeadlines(t, db); got != nil {
		t.Errorf("migrated store has deadlines %v", got)
	}
	setDeadlines(t, func(c *cases.Case) []Deadline {
		return []Deadline{{At: c.CreatedAt.Add(4 * time.Hour), Kind: kindBreach}, {At: c.CreatedAt.Add(3 * time.Hour), Kind: kindWarn}}
	})
	var counts map[cases.Status]int
	update(t, db, func(tx *Tx) error {
		var err error
		if counts, err = tx.CountCases(); err != nil {
			return err
		}
		n, err := reindex(tx)
		if want := 2 * (counts[cases.StatusOpen] + counts[cases.StatusPending]); n != want || n == 0 {
			t.Errorf("ReindexDeadlines = %d, want %d", n, want)
		}
		return err
	})
	if n := checkIndex(t, db); n != counts[cases.StatusOpen]+counts[cases.StatusPending] {
		t.Errorf("%d cases indexed, counts %v", n, counts)
	}
	view(t, db, func(tx *Tx) error {
		return tx.ForEachCase("", func(c *cases.Case) error {
			got, err := tx.CaseDeadlines(c.ID)
			want := 2
			if c.Status == cases.StatusClosed {
				want = 0
			}
			if len(got) != want {
				t.Errorf("case %d (%s): %v", c.ID, c.Status, got)
			}
			return err
		})
	})
	db.Close()
	if v, has := rawVersion(t, path, bucketDeadlineCase); v != schemaVersion || !has {
		t.Errorf("migrated file: version %d, deadline_case %v", v, has)
	}
	if baks, _ := filepath.Glob(path + ".pre-v*.bak"); len(baks) != 1 {
		t.Errorf("pre-migration backups %v, want one", baks)
	}
}

// A schema-2 store (no deadline buckets) migrates to 3; deadline buckets
// that somehow hold data in a schema-2 file stop the migration.
func TestMigrateV2toV3(t *testing.T) {
	db := openTest(t)
	path := db.Path()
	db.Close()
	drop := func(fill bool) {
		bdb, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer bdb.Close()
		err = bdb.Update(func(tx *bolt.Tx) error {
			for _, name := range []string{bucketDeadline, bucketDeadlineCase} {
				if err := tx.DeleteBucket([]byte(name)); err != nil {
					return err
				}
			}
			if fill {
				b, _ := tx.CreateBucket([]byte(bucketDeadline))
				b.Put([]byte("junk"), nil)
			}
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), u64(2))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	drop(false)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if v, has := rawVersion(t, path, bucketDeadline); v != schemaVersion || !has {
		t.Errorf("after the v2→v3 step: version %d, deadline %v", v, has)
	}
	drop(true)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "migrate schema 2 to 3") {
		t.Errorf("Open of a v2 store with a filled deadline bucket = %v", err)
	}
}

// BenchmarkDueDeadlines: 100,000 open cases with 3 deadlines each (300,000
// entries). "due" is the escalation loop's question answered by the index
// (10 entries due); "scan" is the same question without it: every case
// read and f run over it; "next" is the loop's sleep-until lookup.
func BenchmarkDueDeadlines(b *testing.B) {
	const total = 100_000
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// Case i: warning at i minutes, breach and resolution warning far
	// later, so that the first 10 minutes hold exactly 10 entries.
	f := func(c *cases.Case) []Deadline {
		at := t0.Add(time.Duration(c.ID) * time.Minute)
		return []Deadline{
			{At: at, Kind: kindWarn},
			{At: at.Add(total * time.Minute), Kind: kindBreach},
			{At: at.Add(2 * total * time.Minute), Kind: kindResW},
		}
	}
	setDeadlines(b, f)
	for start := uint64(1); start <= total; start += 10_000 {
		err := db.Update(func(tx *Tx) error {
			for id := start; id < start+10_000 && id <= total; id++ {
				if err := putCase(tx, newCase(id, cases.StatusOpen)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	until := t0.Add(10 * time.Minute)
	const wantDue = 10
	b.Run("due", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var n int
			err := db.View(func(tx *Tx) error {
				ds, err := tx.DueDeadlines(until)
				n = len(ds)
				return err
			})
			if err != nil || n != wantDue {
				b.Fatalf("%d due, %v; want %d", n, err, wantDue)
			}
		}
	})
	b.Run("next", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := db.View(func(tx *Tx) error {
				_, ok, err := tx.NextDeadline()
				if !ok {
					return errors.New("empty index")
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			err := db.View(func(tx *Tx) error {
				return tx.ForEachCase("", func(c *cases.Case) error {
					for _, d := range f(c) {
						if !d.At.After(until) {
							n++
						}
					}
					return nil
				})
			})
			if err != nil || n != wantDue {
				b.Fatalf("%d due, %v; want %d", n, err, wantDue)
			}
		}
	})
}

// The deadline version is kept in meta until set again; a reindex alone
// does not change it (the daemon sets it in the same transaction).
func TestDeadlineVersion(t *testing.T) {
	db := openTest(t)
	version := func() string {
		var v string
		if err := db.View(func(tx *Tx) error {
			var err error
			v, err = tx.DeadlineVersion()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(); v != "" {
		t.Fatalf("new store has version %q", v)
	}
	update(t, db, func(tx *Tx) error { return tx.SetDeadlineVersion("v1") })
	update(t, db, func(tx *Tx) error {
		_, err := tx.ReindexDeadlines(func(*cases.Case) []Deadline { return nil })
		return err
	})
	if v := version(); v != "v1" {
		t.Errorf("version %q, want v1", v)
	}
	update(t, db, func(tx *Tx) error { return tx.SetDeadlineVersion("") })
	if v := version(); v != "" {
		t.Errorf("version %q after clearing it", v)
	}
}
