package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/daemon"
	"deskd/store"
)

// `deskd cases list --overdue` and `--due-within` filter on the SLA
// clock replayed at the moment of asking (R7, R9, R11c), and the JSON
// carries the deadlines in RFC 3339.
func TestCasesListDeadlines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deskd.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mk := func(id uint64, received time.Time, prio cases.Priority, status cases.Status, extra ...cases.Event) *cases.Case {
		c := &cases.Case{
			ID: id, Subject: "case", Status: status, Priority: prio, Customer: "Acme", Plan: "Premium",
			Requester: cases.Address{Email: "bob@acme.example"}, CreatedAt: received, UpdatedAt: received, ReceivedAt: received,
			Events: append([]cases.Event{{At: received, Type: cases.EventReceived}}, extra...),
		}
		return c
	}
	old := now.AddDate(0, -2, 0)
	list := []*cases.Case{
		mk(1, old, cases.PriorityUrgent, cases.StatusOpen), // long overdue
		mk(2, now, cases.PriorityLow, cases.StatusOpen),    // first response due within days
		mk(3, old, cases.PriorityHigh, cases.StatusPending, cases.Event{At: old, Type: cases.EventStaffResponse}, cases.Event{At: old, Type: cases.EventPending}), // paused: R11c
		mk(4, old, cases.PriorityHigh, cases.StatusClosed, cases.Event{At: old, Type: cases.EventClosed}),                                                         // closed
	}
	err = db.Update(func(tx *store.Tx) error {
		for _, c := range list {
			if _, err := tx.NextCaseID(); err != nil {
				return err
			}
			if err := tx.PutCase(c); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "absent.yaml")
	ids := func(args ...string) []uint64 {
		t.Helper()
		out, errOut, code := runCLI(t, append([]string{"cases", "list", "--status", "all", "--json", "--store", path, "--config", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("cases list %v: exit %d: %s", args, code, errOut)
		}
		var got []daemon.CaseSummary
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var n []uint64
		for _, c := range got {
			n = append(n, c.ID)
		}
		return n
	}
	if got := ids("--overdue"); len(got) != 1 || got[0] != 1 {
		t.Errorf("--overdue: %v, want [1]", got)
	}
	// Within 30 days: the overdue one first, then the new one (its first
	// response is due within 4 working hours).
	if got := ids("--due-within", "720h"); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("--due-within 720h: %v, want [1 2]", got)
	}
	out, _, _ := runCLI(t, "cases", "list", "--status", "all", "--json", "--store", path, "--config", cfg)
	var all []map[string]any
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 4 {
		t.Fatalf("%v: %s", err, out)
	}
	for _, key := range []string{"priority", "proposed_priority", "kind", "plan", "received_at", "first_response_at", "first_response_due", "resolution_due", "resolution_due_tier2", "sla_state"} {
		if _, ok := all[0][key]; !ok {
			t.Errorf("JSON lacks %q: %v", key, all[0])
		}
	}
	if due, _ := all[1]["first_response_due"].(string); due == "" {
		t.Errorf("case 2 has no first_response_due: %v", all[1])
	} else if _, err := time.Parse(time.RFC3339, due); err != nil {
		t.Errorf("first_response_due %q is not RFC 3339", due)
	}
	for i, want := range []string{"breached", "", "paused", "met"} {
		if want != "" && all[i]["sla_state"] != want {
			t.Errorf("case %d sla_state %v, want %s", i+1, all[i]["sla_state"], want)
		}
	}
	if all[2]["resolution_due"] != nil {
		t.Errorf("a paused case has a resolution deadline: %v", all[2]["resolution_due"])
	}
	text, _, _ := runCLI(t, "cases", "list", "--overdue", "--store", path, "--config", cfg)
	if !strings.Contains(text, "NEXT DUE") || !strings.Contains(text, "breached") {
		t.Errorf("text list:\n%s", text)
	}
}
