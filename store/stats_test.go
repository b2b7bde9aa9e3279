package store

import (
	"testing"
	"time"

	"deskd/cases"
)

// The figures behind /metrics and /healthz: quarantine count, open and
// pending cases per priority (closed ones not read), the health probe key.
func TestStats(t *testing.T) {
	db := openTest(t)
	view(t, db, func(tx *Tx) error {
		n, err := tx.CountQuarantine()
		if err == nil && n != 0 {
			t.Errorf("empty store: %d quarantined", n)
		}
		open, err := tx.OpenCasesByPriority()
		if err == nil && len(open) != 0 {
			t.Errorf("empty store: open cases %v", open)
		}
		at, err := tx.HealthTouched()
		if err == nil && !at.IsZero() {
			t.Errorf("empty store: health touched at %v", at)
		}
		return err
	})

	update(t, db, func(tx *Tx) error {
		for i, c := range []struct {
			status   cases.Status
			priority cases.Priority
		}{
			{cases.StatusOpen, cases.PriorityHigh},
			{cases.StatusOpen, cases.PriorityHigh},
			{cases.StatusOpen, ""},
			{cases.StatusPending, cases.PriorityLow},
			{cases.StatusClosed, cases.PriorityUrgent},
		} {
			k := newCase(uint64(i+1), c.status)
			k.Priority = c.priority
			if err := tx.PutCase(k); err != nil {
				return err
			}
		}
		// A case that moves from open to closed leaves the count.
		k, err := tx.Case(2)
		if err != nil {
			return err
		}
		k.Status = cases.StatusClosed
		if err := tx.PutCase(k); err != nil {
			return err
		}
		for _, key := range []string{"mid:a", "mid:b"} {
			if err := tx.PutQuarantine(&QuarantineRecord{Key: key, Reason: "test", At: t0}, []byte("raw")); err != nil {
				return err
			}
		}
		return tx.TouchHealth(t0)
	})

	view(t, db, func(tx *Tx) error {
		n, err := tx.CountQuarantine()
		if err != nil {
			return err
		}
		if n != 2 {
			t.Errorf("CountQuarantine = %d, want 2", n)
		}
		open, err := tx.OpenCasesByPriority()
		if err != nil {
			return err
		}
		want := map[StatusPriority]int{
			{cases.StatusOpen, cases.PriorityHigh}:   1,
			{cases.StatusOpen, ""}:                   1,
			{cases.StatusPending, cases.PriorityLow}: 1,
		}
		if len(open) != len(want) {
			t.Errorf("OpenCasesByPriority = %v, want %v", open, want)
		}
		for k, v := range want {
			if open[k] != v {
				t.Errorf("OpenCasesByPriority[%v] = %d, want %d", k, open[k], v)
			}
		}
		at, err := tx.HealthTouched()
		if err != nil {
			return err
		}
		if !at.Equal(t0) {
			t.Errorf("HealthTouched = %v, want %v", at, t0)
		}
		return nil
	})

	// The probe key is rewritten, not added to.
	update(t, db, func(tx *Tx) error { return tx.TouchHealth(t0.Add(time.Hour)) })
	view(t, db, func(tx *Tx) error {
		at, err := tx.HealthTouched()
		if err == nil && !at.Equal(t0.Add(time.Hour)) {
			t.Errorf("HealthTouched = %v after the second touch", at)
		}
		return err
	})
}
