package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/store"
)

// A backlog is committed in groups (one transaction for several mails),
// and one mail that cannot be committed does not hold back the others of
// its group: they are committed without it, and it ends in quarantine with
// its reason after its own retries. The poisoned mail's commit step fails
// (Daemon.commitFault, the tests' seam for a store error of one mail)
// after part of its work was written in the group's transaction, which
// must therefore be rolled back.
func TestGroupCommitIsolatesAPoisonedMail(t *testing.T) {
	var logs lockedBuffer
	h := newHarnessNotStarted(t, func(o *Options) {
		o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		o.IMAP.PollInterval = 200 * time.Millisecond // the poisoned mail's retries come with the full scans
	})
	const n = 12
	const poisoned = "batch5@acme.example"
	for i := range n {
		h.deliver(question(fmt.Sprintf("batch%d@acme.example", i), fmt.Sprintf("bob%d@shop%d.example", i, i), fmt.Sprintf("Vraag %d", i), ""))
	}
	h.prepare = func(d *Daemon) {
		d.commitFault = func(a *arrival) error {
			if a.in.MessageID == poisoned {
				return errors.New("disk says no to " + poisoned)
			}
			return nil
		}
	}
	h.start()
	reps := h.waitReports(n)
	h.waitInboxEmpty()
	var quarantined []Report
	cases0 := map[uint64]bool{}
	for _, r := range reps {
		switch r.Decision {
		case "quarantine":
			quarantined = append(quarantined, r)
		case string(cases.OutcomeNewCase):
			if r.Ack == "" || cases0[r.CaseID] {
				t.Errorf("decision %+v: no ack, or a case twice", r)
			}
			cases0[r.CaseID] = true
		default:
			t.Errorf("unexpected decision %+v", r)
		}
	}
	if len(quarantined) != 1 || len(cases0) != n-1 {
		t.Fatalf("%d quarantined, %d new cases; want 1 and %d", len(quarantined), len(cases0), n-1)
	}
	q := quarantined[0]
	if q.MessageID != poisoned || q.Reason != "commit failed 3 times: disk says no to "+poisoned {
		t.Errorf("quarantine reason %q", q.Reason)
	}
	if got := h.imap.Count("Quarantine"); got != 1 {
		t.Errorf("Quarantine mailbox holds %d, want 1", got)
	}
	if got := h.imap.Count("Processed"); got != n-1 {
		t.Errorf("Processed holds %d, want %d", got, n-1)
	}
	if !strings.Contains(logs.String(), "mail failed inside a group commit") {
		t.Errorf("the poisoned mail was never in a group commit; logs:\n%s", logs.String())
	}
	h.waitMails(n - 1)
	err := h.d.DB().View(func(tx *store.Tx) error {
		k := 0
		err := tx.ForEachQuarantine(func(r *store.QuarantineRecord) error {
			k++
			if r.MessageID != poisoned || r.Reason != q.Reason {
				t.Errorf("quarantine record %s reason %q", r.MessageID, r.Reason)
			}
			return nil
		})
		if k != 1 {
			t.Errorf("%d quarantine records, want 1", k)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
