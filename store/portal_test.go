package store

import (
	"slices"
	"testing"
	"time"

	"deskd/cases"
)

// The party index and the summaries follow every PutCase in its own
// transaction: a party added or dropped moves the case in case_party.
func TestPartyIndexAndSummary(t *testing.T) {
	db := openTest(t)
	c := newCase(1, cases.StatusOpen)
	c.Parties = []string{"Ann@Acme.example", "bob@acme.example"}
	update(t, db, func(tx *Tx) error { return tx.PutCase(c) })
	c2 := newCase(2, cases.StatusOpen)
	c2.Parties = []string{"ann@acme.example"}
	update(t, db, func(tx *Tx) error { return tx.PutCase(c2) })
	view(t, db, func(tx *Tx) error {
		ids, err := tx.CaseIDsOfParty("ANN@acme.example")
		if err != nil || !slices.Equal(ids, []uint64{1, 2}) {
			t.Errorf("ann's cases: %v %v", ids, err)
		}
		return nil
	})
	c.Parties = []string{"bob@acme.example"}
	c.Status = cases.StatusClosed
	update(t, db, func(tx *Tx) error { return tx.PutCase(c) })
	view(t, db, func(tx *Tx) error {
		if ids, _ := tx.CaseIDsOfParty("ann@acme.example"); !slices.Equal(ids, []uint64{2}) {
			t.Errorf("ann's cases after she left case 1: %v", ids)
		}
		if ids, _ := tx.CaseIDsOfParty("bob@acme.example"); !slices.Equal(ids, []uint64{1}) {
			t.Errorf("bob's cases: %v", ids)
		}
		s, err := tx.CaseSummary(1)
		if err != nil || s == nil || s.Status != cases.StatusClosed || s.Subject != c.Subject {
			t.Errorf("summary: %+v %v", s, err)
		}
		ids, err := tx.CaseIDsOfCustomer(c.Customer)
		if err != nil || len(ids) != 2 {
			t.Errorf("customer's cases: %v %v", ids, err)
		}
		return nil
	})
}

// Sign-in tokens are single use and expire; sessions expire and can be
// revoked by hash prefix or address; only hashes of tokens are stored.
func TestPortalSessionsAndSignIns(t *testing.T) {
	db := openTest(t)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	update(t, db, func(tx *Tx) error {
		if err := tx.PutPortalSignIn("tok", &PortalSignIn{Email: "a@x.example", ExpiresAt: now.Add(15 * time.Minute)}); err != nil {
			return err
		}
		return tx.PutPortalSession("sess", &PortalSession{Email: "a@x.example", ExpiresAt: now.Add(time.Hour)})
	})
	update(t, db, func(tx *Tx) error {
		if s, err := tx.ConsumePortalSignIn("tok", now.Add(16*time.Minute)); err != nil || s != nil {
			t.Errorf("expired sign-in consumed: %+v %v", s, err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error {
		if err := tx.PutPortalSignIn("tok", &PortalSignIn{Email: "a@x.example", ExpiresAt: now.Add(15 * time.Minute)}); err != nil {
			return err
		}
		if s, err := tx.ConsumePortalSignIn("tok", now); err != nil || s == nil || s.Email != "a@x.example" {
			t.Errorf("first use: %+v %v", s, err)
		}
		if s, _ := tx.ConsumePortalSignIn("tok", now); s != nil {
			t.Errorf("second use of a sign-in token succeeded")
		}
		if s, _ := tx.PortalSession("sess", now); s == nil {
			t.Errorf("live session not found")
		}
		if s, _ := tx.PortalSession("sess", now.Add(time.Hour)); s != nil {
			t.Errorf("expired session found")
		}
		if n, err := tx.RevokePortalSessions("A@x.example"); n != 1 || err != nil {
			t.Errorf("revoke by address: %d %v", n, err)
		}
		if s, _ := tx.PortalSession("sess", now); s != nil {
			t.Errorf("revoked session found")
		}
		return nil
	})
}

// CaseListEntries reads status, machine and last activity out of the
// summaries without decoding them, and reads what a whole decode reads,
// whatever a subject holds (one that spells the keys, quotes, escapes);
// a missing case is left out.
func TestCaseListEntries(t *testing.T) {
	db := openTest(t)
	at := time.Date(2026, 3, 2, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	subjects := []string{
		`plain`,
		`x","status":"closed","updated_at":"1999-01-01T00:00:00Z","machine":true,"`,
		`"status":"closed"`,
		`back\slash and \"quote`,
		"ünïcode \u2028 line",
	}
	update(t, db, func(tx *Tx) error {
		for i, subj := range subjects {
			c := &cases.Case{ID: uint64(i + 1), Subject: subj, Status: cases.StatusOpen, Customer: "acme",
				Machine: i == 4, UpdatedAt: at.Add(time.Duration(i) * time.Minute), Parties: []string{"a@acme.example"}}
			if i == 2 {
				c.Status = cases.StatusPending
			}
			if err := tx.PutCase(c); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, db, func(tx *Tx) error {
		es, err := tx.CaseListEntries([]uint64{1, 2, 3, 4, 5, 99})
		if err != nil || len(es) != 5 {
			t.Fatalf("entries %+v, %v", es, err)
		}
		for _, e := range es {
			s, err := tx.CaseSummary(e.ID)
			if err != nil {
				return err
			}
			if e.Status != s.Status || e.Machine != s.Machine || !e.UpdatedAt.Equal(s.UpdatedAt) {
				t.Errorf("case %d (%q): entry %+v, summary %+v", e.ID, s.Subject, e, s)
			}
		}
		// Any order, gaps and repeats: the same entries as one by one.
		mixed, err := tx.CaseListEntries([]uint64{5, 1, 7, 2, 3, 3, 0, 4})
		var got []uint64
		for _, e := range mixed {
			got = append(got, e.ID)
		}
		if err != nil || !slices.Equal(got, []uint64{5, 1, 2, 3, 3, 4}) {
			t.Errorf("entries of mixed ids: %v, %v", got, err)
		}
		if es[1].Status != cases.StatusOpen || es[1].Machine || es[2].Status != cases.StatusPending || !es[4].Machine {
			t.Errorf("entries %+v", es)
		}
		if v, _ := quickEntry([]byte(`{"id":1,"status":"op\"en","updated_at":"x"}`)); v.Status != "" {
			t.Errorf("an escaped value was read quickly: %+v", v)
		}
		return nil
	})
}
