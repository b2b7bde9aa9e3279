package daemon

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"deskd/cases"
	"deskd/portal"
	"deskd/store"
)

// PortalOptions configure the customer case portal (the portal package),
// served by the daemon on its own listener, never the operators' one.
type PortalOptions struct {
	// Listen is host:port ("" = no portal); BaseURL the public address
	// used in links (a https one makes its cookies Secure).
	Listen  string
	BaseURL string
	// SessionLifetime (0 = 8h) and LinkLifetime (0 = 15m): a sign-in, and
	// a sign-in link.
	SessionLifetime time.Duration
	LinkLifetime    time.Duration
	// SignInPerAddress and SignInPerIP cap sign-in requests per hour.
	SignInPerAddress int
	SignInPerIP      int
}

// portalMailKinds are the mails to a customer that carry the "follow
// your case" link: every mail deskd sends the customer about a case.
var portalMailKinds = map[cases.MailKind]bool{
	cases.MailAck: true, cases.MailRelay: true, cases.MailPrioritySet: true, cases.MailClosing: true,
}

// followURL is the portal link of case c for m's first recipient, or ""
// (portal off, a mail to staff, no case).
func (rt *runtime) followURL(c *cases.Case, m *cases.OutMail) string {
	if rt.follow == nil || c == nil || len(m.To) == 0 || !portalMailKinds[m.Kind] {
		return ""
	}
	return rt.follow(c.ID, m.To[0].Email)
}

// SendSignIn queues the portal's sign-in mail on the one road (SendMail):
// no case, its own budget per address, nothing to a bounced address.
func (d *Daemon) SendSignIn(to cases.Address, lang, link string, expires time.Time) error {
	_, err := d.SendMail(0, &cases.OutMail{
		Kind: cases.MailSignIn, To: []cases.Address{to}, Language: lang,
		Link: link, LinkExpires: expires, Automatic: "auto-generated", RateLimited: true,
	})
	return err
}

// portalMailer is the daemon as the portal's Mailer: its sign-in mails
// and solved-wish notifications go on the one road (SendMail), its
// replies through the ingest (Deliver).
type portalMailer struct{ d *Daemon }

func (p portalMailer) SendSignIn(to cases.Address, lang, link string, expires time.Time) error {
	return p.d.SendSignIn(to, lang, link, expires)
}

// DeliverReply takes a reply the portal built through Deliver and tells
// the portal where it landed: the report's case and decision are what
// the engine decided in the commit's own transaction.
func (p portalMailer) DeliverReply(raw []byte, receivedAt time.Time) (portal.Delivery, error) {
	rep, err := p.d.Deliver(raw, receivedAt)
	return portal.Delivery{CaseID: rep.CaseID, Decision: rep.Decision, Reason: rep.Reason}, err
}

func (p portalMailer) SolvedWish(caseID uint64, by cases.Address) (bool, error) {
	return p.d.SolvedWish(caseID, by)
}

// SolvedWish records that by asks, in the customer portal, to close case
// caseID because their problem is solved (cases.Case.SolvedWish: an
// event, nothing else; only staff close), and tells staff.notify on the
// one road, in one transaction. It reports false when there was nothing
// new to record (a closed case, the same wish again).
func (d *Daemon) SolvedWish(caseID uint64, by cases.Address) (recorded bool, err error) {
	policy := d.rt.Load().opts.Policy
	_, err = d.sendOnCase(caseID, func(c *cases.Case) (*cases.OutMail, bool) {
		var m *cases.OutMail
		m, recorded = c.SolvedWish(&policy, by, d.now())
		return m, recorded
	})
	if err != nil {
		return false, err
	}
	if recorded {
		d.log.Info("portal: customer asks to close", "case", caseID, "by", by.Email)
	}
	return recorded, nil
}

// newPortal builds the portal server and binds its listener.
func (d *Daemon) newPortal(rt *runtime) (*portal.Server, net.Listener, error) {
	p := rt.opts.Portal
	policy := rt.opts.Policy
	srv, err := portal.New(portal.Config{
		BaseURL: p.BaseURL, SessionLifetime: p.SessionLifetime, LinkLifetime: p.LinkLifetime,
		SignInPerAddress: p.SignInPerAddress, SignInPerIP: p.SignInPerIP,
		MaxMessageBytes: rt.opts.MaxMessageBytes,
		Store:           d.db, Policy: &policy, Clocks: rt.clocks, Key: rt.hmacKey,
		Mailer: portalMailer{d}, Log: d.log.With("component", "portal"), Now: d.now,
		Observe: d.ops.observePortal, Denied: d.ops.portalDenied.Inc, SignInSent: d.ops.portalSignIns.Inc,
	})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", p.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("portal listener: %w", err)
	}
	d.ops.mu.Lock()
	d.ops.portalAddr = ln.Addr().String()
	d.ops.mu.Unlock()
	return srv, ln, nil
}

// PortalAddr is the portal's bound address ("" when it is off or Run has
// not bound it yet).
func (d *Daemon) PortalAddr() string {
	d.ops.mu.Lock()
	defer d.ops.mu.Unlock()
	return d.ops.portalAddr
}

// PortalSessionInfo is one portal session as "deskd portal sessions list"
// shows it: ID is a prefix of the token's SHA-256 (the token itself is not
// stored), enough to revoke it.
type PortalSessionInfo struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	IP        string    `json:"ip,omitempty"`
}

// PortalSessions lists the live portal sessions, newest first.
func PortalSessions(tx *store.Tx, now time.Time) ([]PortalSessionInfo, error) {
	all, err := tx.PortalSessions()
	if err != nil {
		return nil, err
	}
	out := []PortalSessionInfo{}
	for _, s := range all {
		if now.Before(s.ExpiresAt) {
			out = append(out, PortalSessionInfo{ID: s.Hash, Email: s.Email, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, IP: s.IP})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// CaseLinkRevocation is what "deskd portal links revoke" did: case CaseID's
// follow links for Address ("" = every address) issued up to Before no
// longer open the case. Parties lists the case's parties, whose links a
// case-wide revocation ends.
type CaseLinkRevocation struct {
	CaseID  uint64    `json:"case_id"`
	Address string    `json:"address,omitempty"`
	Before  time.Time `json:"before"`
	Parties []string  `json:"parties,omitempty"`
}

// RevokeCaseLinks revokes case caseID's follow links for addr ("" = every
// address) issued up to now (store.Tx.RevokeCaseLinks; second-granular,
// so a link minted in the same second goes too). New mails carry new
// links, which work: revoking stops a leaked link, not the customer.
func RevokeCaseLinks(tx *store.Tx, caseID uint64, addr string, now time.Time) (CaseLinkRevocation, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	c, err := tx.Case(caseID)
	if err != nil {
		return CaseLinkRevocation{}, err
	}
	if c == nil {
		return CaseLinkRevocation{}, fmt.Errorf("no case %d", caseID)
	}
	if addr != "" && !strings.Contains(addr, "@") {
		return CaseLinkRevocation{}, fmt.Errorf("%q is not an address", addr)
	}
	before := now.Truncate(time.Second)
	if err := tx.RevokeCaseLinks(caseID, addr, before); err != nil {
		return CaseLinkRevocation{}, err
	}
	r := CaseLinkRevocation{CaseID: caseID, Address: addr, Before: before}
	if addr == "" {
		r.Parties = c.Parties
	}
	return r, nil
}
