package daemon

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"deskd/store"
)

// The open-case listing from the case list lines is byte for byte the
// listing that replays every case's clock, whenever it is asked: before
// the warning share, after it, after the deadline (R9: Premium's first
// response in 4 working hours), days later; and the lines are what it
// reads while they are true.
func TestCaseLinesListAsReplayed(t *testing.T) {
	s := newSLAHarness(t, ams(time.November, 30, 9, 0), nil) // a Monday
	id := s.newPremiumCase()
	d := s.d
	version := linesVersion(d.rt.Load().clocks)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var v string
		_ = d.DB().View(func(tx *store.Tx) error { v, _ = tx.CaseLineVersion(); return nil })
		if v == version {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the case lines' version never became %q (is %q)", version, v)
		}
	}
	start := s.clock.now()
	for _, after := range []time.Duration{0, time.Hour, 3*time.Hour + 30*time.Minute, 4*time.Hour + time.Minute, 26 * time.Hour, 5 * 24 * time.Hour} {
		now := start.Add(after)
		v := SLAView{Clocks: d.rt.Load().clocks, Now: now}
		var fast, slow bytes.Buffer
		var usedLine bool
		err := d.DB().View(func(tx *store.Tx) error {
			_, usedLine = tx.CaseLine(id, now)
			if _, err := WriteCaseLines(tx, "open", 0, 0, v, &fast); err != nil {
				return err
			}
			list, err := ListCases(tx, "open", v)
			for _, c := range list {
				b, _ := json.Marshal(&c)
				slow.Write(append(b, '\n'))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if fast.String() != slow.String() || fast.Len() == 0 {
			t.Errorf("+%s: from the lines\n%s\nreplayed\n%s", after, fast.String(), slow.String())
		}
		if after == 0 && !usedLine {
			t.Errorf("+0: no line for case %d at its own time", id)
		}
		if after == 5*24*time.Hour && usedLine {
			t.Errorf("+5 days: the line computed at the start is still taken as true, past the deadline")
		}
	}
}
