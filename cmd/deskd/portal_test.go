package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

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
