package daemon

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/cases"
	"deskd/sla"
	"deskd/store"
)

// lockedBuffer is a log sink safe for the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A start with the clocks the deadline index was built under reads no
// case: the index is rebuilt only for a store without a version (an older
// deskd's, or one the generator filled), or after a change of calendar
// or targets (R7, R9, R11).
func TestStartRebuildsDeadlineIndexOnlyWhenClocksChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deskd.db")
	now := time.Date(2026, time.November, 30, 9, 0, 0, 0, time.UTC)
	open := func(targets sla.Targets) (*Daemon, *lockedBuffer) {
		t.Helper()
		var buf lockedBuffer
		d, err := Open(Options{StorePath: path, SLA: targets, Now: func() time.Time { return now },
			Log: slog.New(slog.NewTextHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return d, &buf
	}
	entries := func(d *Daemon) []store.Deadline {
		t.Helper()
		var ds []store.Deadline
		if err := d.DB().View(func(tx *store.Tx) error {
			var err error
			ds, err = tx.CaseDeadlines(1)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ds
	}
	rebuilt := func(buf *lockedBuffer) bool { return strings.Contains(buf.String(), "sla deadline index rebuilt") }

	// A store of an older deskd: one open Premium case without index
	// entries and no version.
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &cases.Case{ID: 1, Subject: "Kassa kapot", Status: cases.StatusOpen, Customer: "Jansen", Plan: sla.PlanPremium,
		CreatedAt: now, UpdatedAt: now, ReceivedAt: now,
		Events: []cases.Event{{At: now, Type: cases.EventReceived}}}
	if err := db.Update(func(tx *store.Tx) error { return tx.PutCase(c) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	d, buf := open(sla.Default())
	if !rebuilt(buf) || len(entries(d)) == 0 {
		t.Fatalf("first start: rebuilt %v, entries %v", rebuilt(buf), entries(d))
	}
	first := entries(d)
	d.DB().Close()

	d, buf = open(sla.Default())
	if rebuilt(buf) {
		t.Error("second start with the same clocks rebuilt the index")
	}
	if got := entries(d); len(got) != len(first) || !got[0].At.Equal(first[0].At) {
		t.Errorf("entries after a start without rebuild %v, want %v", got, first)
	}
	d.DB().Close()

	// R9: another first-response target moves the deadlines.
	faster := sla.Default()
	faster.FirstResponse[sla.PlanPremium] = 2 * time.Hour
	d, buf = open(faster)
	if !rebuilt(buf) {
		t.Error("start with other targets did not rebuild the index")
	}
	if got := entries(d); len(got) == 0 || !got[0].At.Before(first[0].At) {
		t.Errorf("entries under a 2 h target %v, want earlier than %v", got, first)
	}
	d.DB().Close()

	// A store another writer filled (the generator clears the version)
	// is rebuilt even with the same clocks.
	d, _ = open(faster)
	if err := d.DB().Update(func(tx *store.Tx) error { return tx.SetDeadlineVersion("") }); err != nil {
		t.Fatal(err)
	}
	d.DB().Close()
	d, buf = open(faster)
	if !rebuilt(buf) {
		t.Error("start after the version was cleared did not rebuild the index")
	}
	d.DB().Close()
}
