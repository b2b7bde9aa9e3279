package daemon

import (
	"context"
	"strings"

	"deskd/cases"
	"deskd/store"
)

// preload starts reading, beside a group commit, the store pages the
// group's mails will touch (store.DB.Preload), and returns the function
// that stops it once the commit is done. The hints come from what is
// known before a mail is decided: its keys and Message-IDs, and who its
// sender is (the engine's own classification); a wrong guess costs a
// few page reads, never a wrong decision.
func (d *Daemon) preload(rt *runtime, as []*arrival) (stop func()) {
	hints := make([]store.IngestHint, 0, len(as))
	for _, a := range as {
		if a != nil && a.perr == nil {
			hints = append(hints, ingestHint(rt.engine, a.in))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.db.Preload(ctx, hints)
	}()
	return func() {
		cancel()
		<-done
	}
}

// ingestHint is what the store may preload for in: its dedupe key, the
// Message-IDs threading looks up, the customer a new case goes to, its
// parties, and for a writer who is not a named contact the contacts
// whose R1 digests it adds to.
func ingestHint(e *cases.Engine, in *cases.Inbound) store.IngestHint {
	h := store.IngestHint{DedupeKey: in.DedupeKey}
	if in.MessageID != "" {
		h.MessageIDs = append(h.MessageIDs, in.MessageID)
	}
	h.MessageIDs = append(h.MessageIDs, in.InReplyTo...)
	h.MessageIDs = append(h.MessageIDs, in.References...)
	s := e.Classify(in)
	if s.Customer == nil {
		return h
	}
	h.Customer = s.Customer.Name
	for _, a := range append([]cases.Address{in.From}, in.Cc...) {
		h.Parties = append(h.Parties, strings.ToLower(a.Email))
	}
	if s.Role == cases.RoleContact {
		for _, c := range s.Customer.Contacts {
			h.Contacts = append(h.Contacts, c.Email)
		}
	}
	return h
}
