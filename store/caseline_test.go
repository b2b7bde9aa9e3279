package store

import (
	"testing"
	"time"
)

// A line true "forever" (the daemon's end for a case with no SLA
// threshold ahead, far past what Unix nanoseconds hold) stays true: its
// end is clamped, not wrapped around to 1970, and a line is never true
// before it was computed nor at its end.
func TestCaseLineForever(t *testing.T) {
	db := openTest(t)
	from := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	forever := time.Unix(1<<62, 0)
	until := from.Add(time.Hour)
	if err := db.Update(func(tx *Tx) error {
		if err := tx.PutCaseLine(1, from, forever, []byte(`{"id":1}`)); err != nil {
			return err
		}
		return tx.PutCaseLine(2, from, until, []byte(`{"id":2}`))
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *Tx) error {
		for _, c := range []struct {
			id   uint64
			now  time.Time
			want bool
		}{
			{1, from, true}, {1, from.AddDate(200, 0, 0), true}, {1, from.Add(-time.Second), false},
			{2, from, true}, {2, until.Add(-time.Nanosecond), true}, {2, until, false},
		} {
			line, ok := tx.CaseLine(c.id, c.now)
			if ok != c.want {
				t.Errorf("case %d at %s: line %q true=%v, want %v", c.id, c.now, line, ok, c.want)
			}
		}
		return nil
	})
}
