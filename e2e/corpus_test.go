package e2e

import (
	"bufio"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deskd/cases"
)

// corpusDir is the shared corpus of 1,260 real-world mails, referenced by
// path and never copied into the project.
var corpusDir = filepath.Join("..", "..", "shared", "corpus")

type corpusEntry struct{ path, category, isAuto string }

func readCorpus(t *testing.T) []corpusEntry {
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
		if len(cols) >= 3 && cols[0] != "path" {
			out = append(out, corpusEntry{cols[0], cols[1], cols[2]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every corpus mail, stored by Dovecot as it would store a delivery, goes
// through the real daemon: each ends in a case or in quarantine with a
// reason, nothing stays in the inbox, and no machine's mail (INDEX.tsv
// is_auto = yes) is acknowledged (RFC 3834). The test also reports how
// deskd's own view of who wrote each mail agrees with the index.
func TestCorpusThroughDovecot(t *testing.T) {
	entries := readCorpus(t)
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
	byUID := map[uint32]corpusEntry{}
	refused := 0
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(corpusDir, e.path))
		if err != nil {
			t.Fatal(err)
		}
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		_, werr := cmd.Write(raw)
		cerr := cmd.Close()
		data, err := cmd.Wait()
		if werr != nil || cerr != nil || err != nil {
			refused++
			t.Logf("dovecot refused %s: %v %v %v", e.path, werr, cerr, err)
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
				t.Errorf("%s quarantined without a reason", e.path)
			}
		case r.CaseID == 0:
			t.Errorf("%s: decision %s without a case", e.path, r.Decision)
		}
		if e.isAuto == "yes" && r.Ack != "" {
			t.Errorf("%s (%s) is a machine's mail but was acknowledged", e.path, e.category)
		}
		if r.Decision == "quarantine" || r.Decision == "duplicate" {
			continue
		}
		machine := r.Role == cases.RoleMachine || r.Role == cases.RoleDeskd
		machineSeen++
		if machine == (e.isAuto == "yes") {
			agree++
		} else {
			disagree = append(disagree, e.path+" (index is_auto="+e.isAuto+", deskd "+string(r.Role)+")")
		}
	}
	for _, e := range byUID {
		t.Errorf("%s: no decision", e.path)
	}
	t.Logf("corpus through Dovecot: %d files, %d refused by Dovecot, decisions %v", len(entries), refused, counts)
	t.Logf("who-wrote-it agreement with INDEX.tsv on %d decided mails: %d (%.1f%%)", machineSeen, agree, 100*float64(agree)/float64(max(machineSeen, 1)))
	for _, d := range disagree {
		t.Logf("  disagree: %s", d)
	}
}
