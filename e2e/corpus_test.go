package e2e

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"deskd/cases"
	"deskd/internal/corpus"
)

// Every corpus mail, stored by Dovecot as it would store a delivery, goes
// through the real daemon: each ends in a case or in quarantine with a
// reason, nothing stays in the inbox, and no machine's mail (INDEX.tsv
// is_auto = yes) is acknowledged (RFC 3834). The test also reports how
// deskd's own view of who wrote each mail agrees with the index.
func TestCorpusThroughDovecot(t *testing.T) {
	entries := corpus.Entries(t)
	stack := newStack(t)
	opts := options(t, stack, t.TempDir())
	// Lift the per-address limits: here only the machine signals may
	// decide who is answered.
	opts.Policy.AutoPerHour, opts.Policy.AutoPerDay = 0, 0
	// Acknowledgements to the corpus's outside addresses are refused by
	// Postfix (nothing leaves the machine); that is expected, not news.
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))

	// Fill support@'s inbox first, remembering the UID Dovecot gave each
	// file. A mail Dovecot refuses to store never reaches deskd, so it is
	// not deskd's to lose; it is listed.
	c := stack.LoginIMAP(t, support)
	byUID := map[uint32]corpus.Entry{}
	refused := 0
	for _, e := range entries {
		raw := corpus.Read(t, e)
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		_, werr := cmd.Write(raw)
		cerr := cmd.Close()
		data, err := cmd.Wait()
		if werr != nil || cerr != nil || err != nil {
			refused++
			t.Logf("dovecot refused %s: %v %v %v", e.Path, werr, cerr, err)
			continue
		}
		byUID[uint32(data.UID)] = e
	}

	w := &world{t: t, stack: stack, opts: opts}
	w.start()
	reps := w.waitReports(len(byUID), 3*time.Minute)
	w.stop()

	counts := map[string]int{}
	agree, machineSeen := 0, 0
	var disagree []string
	for _, r := range reps {
		e, ok := byUID[r.UID]
		if !ok {
			t.Errorf("decision for unknown uid %d", r.UID)
			continue
		}
		delete(byUID, r.UID)
		counts[r.Decision]++
		switch {
		case r.Decision == "quarantine":
			if r.Reason == "" {
				t.Errorf("%s quarantined without a reason", e.Path)
			}
		case r.CaseID == 0:
			t.Errorf("%s: decision %s without a case", e.Path, r.Decision)
		}
		if e.IsAuto == "yes" && r.Ack != "" {
			t.Errorf("%s (%s) is a machine's mail but was acknowledged", e.Path, e.Category)
		}
		if r.Decision == "quarantine" || r.Decision == "duplicate" {
			continue
		}
		machine := r.Role == cases.RoleMachine || r.Role == cases.RoleDeskd
		machineSeen++
		if machine == (e.IsAuto == "yes") {
			agree++
		} else {
			disagree = append(disagree, e.Path+" (index is_auto="+e.IsAuto+", deskd "+string(r.Role)+")")
		}
	}
	for _, e := range byUID {
		t.Errorf("%s: no decision", e.Path)
	}
	t.Logf("corpus through Dovecot: %d files, %d refused by Dovecot, decisions %v", len(entries), refused, counts)
	t.Logf("who-wrote-it agreement with INDEX.tsv on %d decided mails: %d (%.1f%%)", machineSeen, agree, 100*float64(agree)/float64(max(machineSeen, 1)))
	for _, d := range disagree {
		t.Logf("  disagree: %s", d)
	}
}
