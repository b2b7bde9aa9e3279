package cases

import (
	"testing"
	"time"
)

// TestSolvedWish: the portal's "my problem is solved" button records an
// event and tells staff once; pressing it again says nothing new, a later
// reply makes a new wish possible, and a closed case takes none (only
// staff close).
func TestSolvedWish(t *testing.T) {
	p := &Policy{SupportAddress: "support@desk.example", StaffNotify: []string{"team@desk.example"}, StaffLanguage: "nl"}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	c := &Case{ID: 7, Status: StatusOpen, Thread: []string{"a@x", "b@x"}, Events: []Event{{At: now, Type: EventReceived}}}
	ann := Address{Name: "Ann", Email: "Ann@Acme.example"}
	m, ok := c.SolvedWish(p, ann, now)
	if !ok || m == nil || m.Kind != MailNotify || m.Event != EventSolvedWish || len(m.To) != 1 || m.To[0].Email != "team@desk.example" ||
		m.From != ann || len(m.References) != 2 || m.Automatic == "" || m.RateLimited {
		t.Fatalf("first wish: %+v, %v", m, ok)
	}
	if c.Status != StatusOpen {
		t.Errorf("a wish changed the status to %s: only staff close", c.Status)
	}
	last := c.Events[len(c.Events)-2]
	if last.Type != EventSolvedWish || last.By != "ann@acme.example" {
		t.Errorf("events %+v", c.Events)
	}
	n := len(c.Events)
	if m, ok := c.SolvedWish(p, ann, now.Add(time.Minute)); ok || m != nil || len(c.Events) != n {
		t.Errorf("the same wish again: %+v, %v, %d events", m, ok, len(c.Events))
	}
	c.Events = append(c.Events, Event{At: now.Add(2 * time.Minute), Type: EventCustomerReply})
	if m, ok := c.SolvedWish(p, ann, now.Add(3*time.Minute)); !ok || m == nil {
		t.Errorf("a wish after a reply: %+v, %v", m, ok)
	}
	c.Status = StatusClosed
	if _, ok := c.SolvedWish(p, Address{Email: "bob@acme.example"}, now.Add(4*time.Minute)); ok {
		t.Error("a closed case took a wish")
	}
	c.Status = StatusOpen
	if m, ok := c.SolvedWish(&Policy{}, Address{Email: "bob@acme.example"}, now); !ok || m != nil {
		t.Errorf("without staff.notify: %+v, %v (the wish is still recorded)", m, ok)
	}
}
