package main

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"deskd/cases"
	"deskd/daemon"
	"deskd/sla"
)

// A table row read by tableSummary is the row of the line decoded by
// encoding/json, for every kind of value a listing line carries: escapes
// and HTML characters json.Marshal writes as \u003c, non-ASCII and
// invalid UTF-8, nulls, times with and without fractions; and a line it
// does not read itself (a nested value) still gives that row.
func TestTableSummaryAsUnmarshal(t *testing.T) {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	due := time.Date(2026, 12, 5, 14, 30, 0, 123456789, time.UTC)
	base := daemon.CaseSummary{
		ID: 1000000, Subject: "Printer", Status: cases.StatusOpen, Priority: cases.PriorityHigh,
		Customer: "Customer 001", Plan: "Premium", Requester: "anna@cust001.example", RequesterName: "Anna",
		CreatedAt: due.Add(-time.Hour), UpdatedAt: due.Add(-time.Minute), ReceivedAt: due.Add(-time.Hour),
		Messages: 3, SLAState: sla.State("warning"), NextDue: &due, FirstResponseDue: &due,
	}
	subjects := []string{"", `quote " and \ backslash`, "<b>&amp;</b>", "café ☕ 日本", "tab\tnewline\n", "\xff\xfe bad utf-8", "line\u2028sep", "{\"id\":1,[]}", "a,b}c"}
	var list []daemon.CaseSummary
	for i, s := range subjects {
		c := base
		c.ID = uint64(i + 1)
		c.Subject, c.Customer, c.Requester = s, s+" B.V.", s+"@x.example"
		list = append(list, c)
	}
	c := base
	c.Priority, c.ProposedPriority, c.NextDue, c.SLAState, c.Unauthorised = "", cases.PriorityLow, nil, "", true
	list = append(list, c)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		c := base
		r := make([]byte, rng.IntN(20))
		for i := range r {
			r[i] = byte(rng.IntN(256))
		}
		c.Subject, c.Messages = string(r), rng.IntN(100)
		c.UpdatedAt = time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).UTC()
		list = append(list, c)
	}
	for _, c := range list {
		line, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		var want, got daemon.CaseSummary
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		if err := tableSummary(line, &got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if w, g := caseRow(&want, ams), caseRow(&got, ams); !slices.Equal(w, g) {
			t.Errorf("%s:\n got %q\nwant %q", line, g, w)
		}
	}
	nested := []byte(`{"id":7,"subject":"x","extra":{"a":[1,2]},"updated_at":"2026-12-05T10:00:00Z","next_due":null}`)
	var got daemon.CaseSummary
	if err := tableSummary(nested, &got); err != nil || got.ID != 7 || got.Subject != "x" {
		t.Errorf("a nested value: %+v, %v", got, err)
	}
	if err := tableSummary([]byte(`{"id":`), &got); err == nil {
		t.Errorf("a cut line read without an error")
	}
}
