package main

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/portal"
	"deskd/sla"
	"deskd/store"
)

// deskd portal sessions list|revoke on a stopped daemon's store: the list
// shows live sessions (never a token), revoke ends one by id or all of an
// address.
func TestPortalSessionsCLI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deskd.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = db.Update(func(tx *store.Tx) error {
		for i, email := range []string{"bob@acme.example", "bob@acme.example", "ann@acme.example"} {
			if err := tx.PutPortalSession("token-"+string(rune('a'+i)), &store.PortalSession{Email: email, CreatedAt: now, ExpiresAt: now.Add(time.Hour), IP: "192.0.2.1"}); err != nil {
				return err
			}
		}
		return tx.PutPortalSession("expired", &store.PortalSession{Email: "old@acme.example", ExpiresAt: now.Add(-time.Hour)})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "portal", "sessions", "list", "--store", path)
	if code != 0 || strings.Count(out, "bob@acme.example") != 2 || !strings.Contains(out, "ann@acme.example") || strings.Contains(out, "old@") || strings.Contains(out, "token-") {
		t.Fatalf("list: %d %s %s", code, out, errOut)
	}
	if out, _, code := runCLI(t, "portal", "sessions", "revoke", "BOB@acme.example", "--store", path); code != 0 || !strings.Contains(out, "2 session(s) revoked") {
		t.Fatalf("revoke by address: %d %s", code, out)
	}
	out, _, _ = runCLI(t, "portal", "sessions", "list", "--store", path)
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	if out, _, code := runCLI(t, "portal", "sessions", "revoke", id, "--store", path); code != 0 || !strings.Contains(out, "1 session(s) revoked") {
		t.Fatalf("revoke by id %s: %d %s", id, code, out)
	}
	if out, _, _ := runCLI(t, "portal", "sessions", "list", "--store", path); strings.Contains(out, "@") {
		t.Errorf("sessions left: %s", out)
	}
	if _, _, code := runCLI(t, "portal", "sessions"); code == 0 {
		t.Errorf("portal sessions without list/revoke succeeded")
	}
}

// deskd portal links revoke CASE [ADDRESS] on a stopped daemon's store: a
// follow link of that address stops opening the case, another address's
// keeps working until the whole case is revoked; a link minted later
// works; a case that does not exist is an error.
func TestPortalLinksRevokeCLI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deskd.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var key []byte
	err = db.Update(func(tx *store.Tx) error {
		if key, err = tx.HMACKey(); err != nil {
			return err
		}
		id, err := tx.NextCaseID()
		if err != nil {
			return err
		}
		now := time.Now()
		return tx.PutCase(&cases.Case{
			ID: id, Subject: "Printer", Status: cases.StatusOpen, Customer: "acme", Requester: cases.Address{Email: "bob@acme.example"},
			Parties: []string{"bob@acme.example", "carl@acme.example"}, CreatedAt: now, UpdatedAt: now, ReceivedAt: now,
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	link := portal.CaseLinker("http://portal.test", key, func() time.Time { return at })
	bob, carl := link(1, "bob@acme.example"), link(1, "carl@acme.example")
	opens := func(l string) bool {
		t.Helper()
		srv, err := portal.New(portal.Config{
			BaseURL: "http://portal.test", Store: db, Key: key,
			Policy: &cases.Policy{SupportAddress: "support@desk.example", DefaultCustomer: "default"},
			Clocks: &sla.Clocks{Default: &sla.Clock{Calendar: sla.DefaultCalendar(time.UTC), Targets: sla.Default()}},
		})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", strings.TrimPrefix(l, "http://portal.test"), nil))
		return w.Code == 200
	}
	if !opens(bob) || !opens(carl) {
		t.Fatal("the links do not open the case before any revocation")
	}
	db.Close()
	run := func(args ...string) (string, int) {
		t.Helper()
		out, errOut, code := runCLI(t, append([]string{"portal", "links", "revoke"}, append(args, "--store", path)...)...)
		return out + errOut, code
	}
	if out, code := run("1", "BOB@acme.example"); code != 0 || !strings.Contains(out, "case 1: follow links for bob@acme.example issued until") {
		t.Fatalf("revoke bob's: %d %s", code, out)
	}
	if out, code := run("7"); code == 0 || !strings.Contains(out, "no case 7") {
		t.Errorf("revoke a case that does not exist: %d %s", code, out)
	}
	if out, code := run(); code != 2 {
		t.Errorf("no case number: %d %s", code, out)
	}
	if db, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	if opens(bob) || !opens(carl) {
		t.Errorf("after revoking bob's: bob's opens %v, carl's %v", opens(bob), opens(carl))
	}
	db.Close()
	if out, code := run("#1"); code != 0 || !strings.Contains(out, "every address (parties: bob@acme.example, carl@acme.example)") {
		t.Fatalf("revoke the case's: %d %s", code, out)
	}
	if db, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	later := portal.CaseLinker("http://portal.test", key, func() time.Time { return time.Now().Add(2 * time.Second) })(1, "carl@acme.example")
	if opens(carl) || !opens(later) {
		t.Errorf("after revoking the case's: carl's old link opens %v, a new one %v", opens(carl), opens(later))
	}
}
