package daemon

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// While a backlog waits in the inbox the outbox steps aside (ingestFirst):
// with 300 questions waiting and groups of 4, no acknowledgement reaches
// the relay before the backlog is down to ingestFirstBacklog, and then
// every question gets its one.
func TestOutboxStepsAsideForBacklog(t *testing.T) {
	const n = 300
	var mu sync.Mutex
	var decidedAt []time.Time
	h := newHarnessNotStarted(t, func(o *Options) {
		o.IMAP.CommitBatch = 4
		o.OnDecision = func(Report) {
			mu.Lock()
			decidedAt = append(decidedAt, time.Now())
			mu.Unlock()
		}
	})
	for i := range n {
		h.deliver(question(fmt.Sprintf("b%d@acme.example", i), fmt.Sprintf("c%d@acme.example", i), fmt.Sprintf("Vraag %d", i), ""))
	}
	h.start()
	h.waitReports(n)
	h.waitMails(n)
	// The records of the last sends come after the relay has them.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		h.mu.Lock()
		sent := len(h.sent)
		h.mu.Unlock()
		if sent >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sends recorded, want %d", sent, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	firstSend := h.sent[0].At
	for _, s := range h.sent {
		if s.At.Before(firstSend) {
			firstSend = s.At
		}
	}
	// The backlog reported after a group is what is left of the scan;
	// the outbox may hand out once it is under ingestFirstBacklog.
	mustBeDecided := n - ingestFirstBacklog
	if at := decidedAt[mustBeDecided-1]; firstSend.Before(at) {
		t.Errorf("first acknowledgement at %v, before decision %d of %d at %v", firstSend.Format(time.StampMicro), mustBeDecided, n, at.Format(time.StampMicro))
	}
}

// ingestFirst steps aside only for a backlog, and for one backlog at most
// ingestFirstFor; a new backlog (after the last fell under the bound) is
// waited for again.
func TestIngestFirstBounded(t *testing.T) {
	d := &Daemon{}
	var paused time.Time
	if d.ingestFirst(&paused) {
		t.Fatal("steps aside without a backlog")
	}
	d.ingestBacklog.Store(ingestFirstBacklog)
	if !d.ingestFirst(&paused) || paused.IsZero() {
		t.Fatal("does not step aside for a backlog")
	}
	paused = time.Now().Add(-ingestFirstFor)
	if d.ingestFirst(&paused) {
		t.Fatal("still steps aside after ingestFirstFor")
	}
	d.ingestBacklog.Store(ingestFirstBacklog - 1)
	if d.ingestFirst(&paused) || !paused.IsZero() {
		t.Fatal("under the bound: should hand out and forget the pause")
	}
	d.ingestBacklog.Store(ingestFirstBacklog * 2)
	if !d.ingestFirst(&paused) {
		t.Fatal("a new backlog is not waited for")
	}
}
