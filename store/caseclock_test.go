package store

import (
	"reflect"
	"testing"
	"time"

	"deskd/cases"
)

type clockRow struct {
	ID       uint64
	Received time.Time
	Customer string
	Machine  bool
	Stamp    string
	Data     string
}

func clockRows(t *testing.T, db *DB, from, to time.Time) []clockRow {
	t.Helper()
	var out []clockRow
	view(t, db, func(tx *Tx) error {
		return tx.ForEachClockEntry(from, to, func(e *ClockEntry) error {
			out = append(out, clockRow{e.ID, e.Received, string(e.Customer), e.Machine, string(e.Stamp), string(e.Data)})
			return nil
		})
	})
	return out
}

// The report index follows every PutCase in its transaction: a case sits
// under its clock's receipt (R11b: the first received event, else
// ReceivedAt), moves when that changes, keeps the figures it was given
// with them, and an entry written without figures marks the index as
// needing the daemon's refresh.
func TestReportIndex(t *testing.T) {
	db := openTest(t)
	far := t0.AddDate(10, 0, 0)
	update(t, db, func(tx *Tx) error {
		for id := uint64(1); id <= 4; id++ {
			c := newCase(id, cases.StatusClosed)
			c.Events[0].At = t0.Add(time.Duration(id) * time.Hour)
			c.Customer = []string{"", "acme", "globex", "acme", "initech"}[id]
			c.Machine = id == 4
			fig := ClockFigures{}
			if id == 2 {
				fig = ClockFigures{Stamp: "v1", Data: []byte("figures of 2")}
			}
			if err := tx.PutCaseFigures(c, fig); err != nil {
				return err
			}
		}
		return tx.SetClockFiguresVersion("v1")
	})
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	want := []clockRow{
		{1, h(1), "acme", false, "", ""},
		{2, h(2), "globex", false, "v1", "figures of 2"},
		{3, h(3), "acme", false, "", ""},
		{4, h(4), "initech", true, "", ""},
	}
	if got := clockRows(t, db, time.Time{}, far); !reflect.DeepEqual(got, want) {
		t.Fatalf("index:\n got %+v\nwant %+v", got, want)
	}
	if got := clockRows(t, db, h(2), h(4)); !reflect.DeepEqual(got, want[1:3]) {
		t.Errorf("[2h, 4h): %+v", got)
	}
	view(t, db, func(tx *Tx) error {
		if first, ok, err := tx.FirstClockReceived(); err != nil || !ok || !first.Equal(h(1)) {
			t.Errorf("first receipt %v %v %v", first, ok, err)
		}
		stale, err := tx.StaleClockEntries("v1", nil, 1)
		if err != nil || len(stale) != 1 || stale[0].ID != 1 {
			t.Errorf("stale, first batch: %+v %v", stale, err)
		}
		// Case 2 is current and case 4 a machine's: only 3 is left.
		stale, err = tx.StaleClockEntries("v1", stale[0].Key, 10)
		if err != nil || len(stale) != 1 || stale[0].ID != 3 {
			t.Errorf("stale, rest: %+v %v", stale, err)
		}
		// PutCase without figures (case 1 to 3 above) cleared the version
		// before it was set; it stays set now.
		if v, err := tx.ClockFiguresVersion(); v != "v1" || err != nil {
			t.Errorf("version %q %v", v, err)
		}
		return nil
	})

	// The receipt moves (an earlier received event): the entry moves;
	// a rewrite without figures drops them and the version.
	update(t, db, func(tx *Tx) error {
		c, err := tx.Case(2)
		if err != nil {
			return err
		}
		c.Events = append([]cases.Event{{At: h(-5), Type: cases.EventOpenedByStaff}}, c.Events...)
		return tx.PutCase(c)
	})
	got := clockRows(t, db, time.Time{}, far)
	if len(got) != 4 || got[0] != (clockRow{2, h(-5), "globex", false, "", ""}) {
		t.Errorf("after the receipt moved: %+v", got)
	}
	update(t, db, func(tx *Tx) error {
		if v, _ := tx.ClockFiguresVersion(); v != "" {
			t.Errorf("version %q after an entry without figures", v)
		}
		c, err := tx.Case(3)
		if err != nil {
			return err
		}
		return tx.PutClockFigures(c, ClockFigures{Stamp: "v2", Data: []byte{1, 2}})
	})
	if got := clockRows(t, db, h(3), h(4)); len(got) != 1 || got[0].Stamp != "v2" || got[0].Data != "\x01\x02" {
		t.Errorf("refreshed: %+v", got)
	}
	// A case without any receipt sits first, read only from the start.
	update(t, db, func(tx *Tx) error {
		c := newCase(5, cases.StatusOpen)
		c.ReceivedAt, c.Events = time.Time{}, nil
		return tx.PutCase(c)
	})
	if got := clockRows(t, db, time.Time{}, far); len(got) != 5 || got[0].ID != 5 || !got[0].Received.IsZero() {
		t.Errorf("without receipt: %+v", got)
	}
	if got := clockRows(t, db, h(-100), far); len(got) != 4 {
		t.Errorf("from a time: %+v", got)
	}
}
