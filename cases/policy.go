package cases

import (
	"strings"
	"time"
)

// Customer is a configured customer organisation (R1).
type Customer struct {
	Name     string
	Plan     string // Premium, Business or Basic (R9)
	Language string // nl or en
	// Domains are the customer's mail domains, lower-cased.
	Domains []string
	// Contacts are the named functional administrators allowed to contact
	// the desk directly (R1).
	Contacts []Address
}

// Policy is everything the decision engine needs from the configuration,
// as plain values so the engine stays free of I/O and of the config package.
type Policy struct {
	// SupportAddress is the address customers write to; OwnAddresses are
	// further addresses that are deskd itself (aliases). Mail from any of
	// them is deskd talking to itself and never gets an answer.
	SupportAddress string
	OwnAddresses   []string
	// TokenPrefix makes the subject token "[<prefix> #<n>]".
	TokenPrefix string
	// ReopenWindow: a customer reply to a closed case within it reopens the
	// case; a later one opens a new linked case.
	ReopenWindow time.Duration

	StaffAddresses []string
	StaffDomains   []string
	// StaffNotify hears of every new case and customer reply; SecondLine
	// gets the cases staff hand over with [bug] (R5). Escalation lists
	// are here only so that no relay ever goes to them.
	StaffNotify     []string
	SecondLine      []string
	EscalationLists []string
	// TrustedAuthservID is the authserv-id of the Authentication-Results
	// header deskd's own mail server adds (RFC 8601). When set, a mail
	// from a staff address counts as staff only when that header shows a
	// DKIM, SPF or DMARC pass for the sender's domain; when empty, the
	// address alone decides (say so to operators: From can be forged).
	TrustedAuthservID string
	// StaffLanguage is the language of the mails to staff.
	StaffLanguage string
	Customers     []Customer

	// DefaultCustomer, DefaultPlan and DefaultLanguage apply to senders who
	// belong to no configured customer.
	DefaultCustomer string
	DefaultPlan     string
	DefaultLanguage string

	// AutoPerHour and AutoPerDay cap the automatic mails (acknowledgements)
	// sent to one address, so that no loop with a robot can get past them.
	AutoPerHour int
	AutoPerDay  int
	// UndeliverableFor is how long an address whose mail bounced gets no
	// automatic mail.
	UndeliverableFor time.Duration

	// VerifyOwnMessageID reports the case number carried by one of deskd's
	// own Message-IDs, after checking its HMAC; nil means none verify.
	VerifyOwnMessageID func(id string) (uint64, bool)
}

// Sender is who wrote a mail, as far as deskd can tell.
type Sender struct {
	Role     Role
	Email    string
	Customer *Customer // nil for staff, machines and deskd
	// Authorised is true for a named contact of the customer (R1).
	Authorised bool
	// Suspicious says why a mail that claimed a staff address is not
	// treated as staff ("" = nothing suspicious).
	Suspicious string
}

// isOwn reports whether addr is deskd's own address.
func (p *Policy) isOwn(addr string) bool {
	if addr == "" {
		return false
	}
	if strings.EqualFold(addr, p.SupportAddress) {
		return true
	}
	for _, a := range p.OwnAddresses {
		if strings.EqualFold(addr, a) {
			return true
		}
	}
	return false
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

// IsStaff reports whether addr is a configured staff address or lies in a
// staff domain.
func (p *Policy) IsStaff(addr string) bool {
	addr = strings.ToLower(addr)
	for _, a := range p.StaffAddresses {
		if strings.EqualFold(a, addr) {
			return true
		}
	}
	d := domainOf(addr)
	for _, sd := range p.StaffDomains {
		if d != "" && strings.EqualFold(sd, d) {
			return true
		}
	}
	return false
}

// staffSide reports whether addr is on the supplier's side: deskd itself,
// staff, or one of the lists staff mail goes to. Such an address is never
// a party of a case and never gets a relay.
func (p *Policy) staffSide(addr string) bool {
	if p.isOwn(addr) || p.IsStaff(addr) {
		return true
	}
	for _, list := range [][]string{p.StaffNotify, p.SecondLine, p.EscalationLists} {
		for _, a := range list {
			if strings.EqualFold(a, addr) {
				return true
			}
		}
	}
	return false
}

// CustomerOf returns the customer addr belongs to and whether it is one of
// that customer's named contacts. A named contact wins over a domain match,
// so a contact with a private address is still recognised.
func (p *Policy) CustomerOf(addr string) (*Customer, bool) {
	addr = strings.ToLower(addr)
	for i := range p.Customers {
		for _, c := range p.Customers[i].Contacts {
			if strings.EqualFold(c.Email, addr) {
				return &p.Customers[i], true
			}
		}
	}
	d := domainOf(addr)
	for i := range p.Customers {
		for _, cd := range p.Customers[i].Domains {
			if d != "" && strings.EqualFold(cd, d) {
				return &p.Customers[i], false
			}
		}
	}
	return nil, false
}

// defaultCustomer is the customer of senders nobody configured.
func (p *Policy) defaultCustomer() *Customer {
	for i := range p.Customers {
		if p.Customers[i].Name == p.DefaultCustomer {
			return &p.Customers[i]
		}
	}
	return &Customer{Name: p.DefaultCustomer, Plan: p.DefaultPlan, Language: p.DefaultLanguage}
}

// Classify says who wrote in. Machine signals win over everything: a robot
// at a customer's domain is still a robot (RFC 3834).
func (p *Policy) Classify(in *Inbound) Sender {
	from := strings.ToLower(in.From.Email)
	s := Sender{Email: from}
	switch {
	case p.isOwn(from) || in.LoopHeader != "" || p.ownMessageID(in.MessageID) != 0:
		s.Role = RoleDeskd
	case in.Auto.IsAuto():
		s.Role = RoleMachine
	case p.IsStaff(from) && p.staffAuthenticated(in, &s):
		s.Role = RoleStaff
	default:
		c, named := p.CustomerOf(from)
		switch {
		case c == nil:
			s.Role, s.Customer = RoleStranger, p.defaultCustomer()
		case named:
			s.Role, s.Customer, s.Authorised = RoleCustomer, c, true
		default:
			s.Role, s.Customer = RoleContact, c
		}
	}
	return s
}

// staffAuthenticated checks a mail from a staff address against the
// receiving server's Authentication-Results when an authserv-id is
// trusted. A failure is recorded in s.Suspicious: the mail is then a
// stranger's, so a forged From: can never close or re-prioritise a case.
func (p *Policy) staffAuthenticated(in *Inbound, s *Sender) bool {
	if p.TrustedAuthservID == "" {
		return true
	}
	ok, why := StaffAuthenticated(in.AuthResults, p.TrustedAuthservID, domainOf(s.Email))
	if !ok {
		s.Suspicious = why
	}
	return ok
}

// ownMessageID returns the case number carried by one of deskd's own,
// HMAC-checked Message-IDs, or 0 when id is not one of them.
func (p *Policy) ownMessageID(id string) uint64 {
	if id == "" || p.VerifyOwnMessageID == nil {
		return 0
	}
	if n, ok := p.VerifyOwnMessageID(id); ok {
		return n
	}
	return 0
}
