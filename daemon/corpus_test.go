package daemon

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// corpusDir is the shared corpus of 1,260 real-world mails, referenced by
// path and never copied into the project.
var corpusDir = filepath.Join("..", "..", "shared", "corpus")

type corpusEntry struct{ path, category, isAuto string }

func readCorpusIndex(t *testing.T) []corpusEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "INDEX.tsv"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus missing under CI: %v", err)
		}
		t.Skipf("corpus not present: %v", err)
	}
	defer f.Close()
	var out []corpusEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 3 || cols[0] == "path" {
			continue
		}
		out = append(out, corpusEntry{cols[0], cols[1], cols[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every corpus mail goes through the whole daemon (IMAP fetch, parse,
// decide, commit, move): each ends in a case or in quarantine, the inbox
// ends empty, and no machine's mail (is_auto = yes) is acknowledged
// (RFC 3834).
func TestCorpusThroughDaemon(t *testing.T) {
	entries := readCorpusIndex(t)
	h := newHarness(t, func(o *Options) {
		// Lift the per-address limits so that only the machine signals
		// decide who is answered.
		o.Policy.AutoPerHour, o.Policy.AutoPerDay = 0, 0
		o.MaxMessageBytes, o.IMAP.MaxBytes = 25<<20, 25<<20
	})
	h.stop() // load the inbox first, then let one start-up scan take it all
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(corpusDir, e.path))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.imap.Deliver("INBOX", raw, time.Now()); err != nil {
			t.Fatalf("%s: %v", e.path, err)
		}
	}
	h.start()
	reps := h.waitReports(len(entries))
	h.waitInboxEmpty()

	byUID := map[uint32]Report{}
	for _, r := range reps {
		byUID[r.UID] = r
	}
	counts := map[string]int{}
	for i, e := range entries {
		r, ok := byUID[uint32(i+1)]
		if !ok {
			t.Errorf("%s: no decision", e.path)
			continue
		}
		counts[r.Decision]++
		switch {
		case r.Decision == "quarantine" && r.Reason == "":
			t.Errorf("%s: quarantined without a reason", e.path)
		case os.Getenv("DEBUGDUP") != "" && (r.Decision == "duplicate" || r.Decision == "quarantine"):
			t.Logf("%s %s key %s reason %s", r.Decision, e.path, r.DedupeKey, r.Reason)
		case r.Decision != "quarantine" && r.CaseID == 0:
			t.Errorf("%s: decision %s without a case", e.path, r.Decision)
		}
		if e.isAuto == "yes" && r.Ack != "" {
			t.Errorf("%s (%s) is a machine's mail but was acknowledged", e.path, e.category)
		}
	}
	if n := h.imap.Count("Processed") + h.imap.Count("Quarantine"); n != len(entries) {
		t.Errorf("processed + quarantine = %d, want %d", n, len(entries))
	}
	t.Logf("corpus through the daemon: %d mails, decisions %v", len(entries), counts)
}
