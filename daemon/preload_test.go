package daemon

import (
	"slices"
	"testing"

	"deskd/cases"
	"deskd/store"
)

// TestIngestHint checks what the store is asked to preload for a mail
// (issue 11): the keys threading reads, and the customer, parties and
// named contacts (R1) a new case or a notice of that sender touches.
func TestIngestHint(t *testing.T) {
	policy := cases.Policy{
		SupportAddress: support, StaffDomains: []string{"example.test"}, DefaultCustomer: "unknown",
		Customers: []cases.Customer{{
			Name: "Bakkerij Jansen", Domains: []string{"jansen.example"},
			Contacts: []cases.Address{{Name: "Anna", Email: "Anna@jansen.example"}, {Email: "piet@jansen.example"}},
		}},
	}
	engine := cases.NewEngine(&policy)
	mail := func(from string) *cases.Inbound {
		return &cases.Inbound{
			DedupeKey: "mid:m1@x", MessageID: "m1@x", InReplyTo: []string{"m0@x"}, References: []string{"r1@x", "m0@x"},
			From: cases.Address{Email: from}, To: []cases.Address{{Email: support}}, Cc: []cases.Address{{Email: "Colleague@Jansen.example"}},
		}
	}
	ids := []string{"m1@x", "m0@x", "r1@x", "m0@x"}
	for _, tc := range []struct {
		name, from string
		want       store.IngestHint
	}{
		{"a colleague who is not a named contact: the contacts' digests (R1)", "kees@jansen.example", store.IngestHint{
			DedupeKey: "mid:m1@x", MessageIDs: ids, Customer: "Bakkerij Jansen",
			Parties: []string{"kees@jansen.example", "colleague@jansen.example"}, Contacts: []string{"Anna@jansen.example", "piet@jansen.example"}}},
		{"a named contact: no digest", "anna@jansen.example", store.IngestHint{
			DedupeKey: "mid:m1@x", MessageIDs: ids, Customer: "Bakkerij Jansen",
			Parties: []string{"anna@jansen.example", "colleague@jansen.example"}}},
		{"a stranger: the default customer", "someone@elsewhere.example", store.IngestHint{
			DedupeKey: "mid:m1@x", MessageIDs: ids, Customer: "unknown",
			Parties: []string{"someone@elsewhere.example", "colleague@jansen.example"}}},
		{"staff: no customer", "agent@example.test", store.IngestHint{DedupeKey: "mid:m1@x", MessageIDs: ids}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ingestHint(engine, mail(tc.from))
			if got.DedupeKey != tc.want.DedupeKey || got.Customer != tc.want.Customer ||
				!slices.Equal(got.MessageIDs, tc.want.MessageIDs) || !slices.Equal(got.Parties, tc.want.Parties) ||
				!slices.Equal(got.Contacts, tc.want.Contacts) {
				t.Errorf("hint\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
