package portal

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/store"
)

// Every response carries the CSP of the issue, nosniff and no-referrer.
func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/signin", "/cases/1", "/c/nonsense", "/nope", "/static/style.css"} {
		_, _, h := f.client().do("GET", p, nil)
		if got := h.Get("Content-Security-Policy"); got != "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'" {
			t.Errorf("%s: CSP %q", p, got)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", p, h)
		}
	}
}

// Visibility (R3, R1): a party sees their case; a named contact sees every
// case of their customer; an unauthorised contact only their own; nobody
// another customer's case, which answers exactly like a missing case and
// logs portal_denied.
func TestWhoSeesWhat(t *testing.T) {
	f := newFixture(t)
	bob := f.addCase(newCase("acme", "Bob's printer", "bob@acme.example"), inMsg("bob@acme.example", "printer broken"))
	carl := f.addCase(newCase("acme", "Carl's laptop", "carl@acme.example"), inMsg("carl@acme.example", "laptop broken"))
	gina := f.addCase(newCase("globex", "Globex outage", "gina@globex.example"), inMsg("gina@globex.example", "all down"))
	shared := f.addCase(newCase("acme", "Shared thread", "carl@acme.example", "bob@acme.example"), inMsg("carl@acme.example", "cc bob"))

	type want struct {
		email  string
		see    []*cases.Case
		notSee []*cases.Case
	}
	for _, w := range []want{
		{"ann@acme.example", []*cases.Case{bob, carl, shared}, []*cases.Case{gina}},  // named contact: all of acme
		{"bob@acme.example", []*cases.Case{bob, shared}, []*cases.Case{carl, gina}},  // unauthorised: own and party
		{"carl@acme.example", []*cases.Case{carl, shared}, []*cases.Case{bob, gina}}, // unauthorised
		{"gina@globex.example", []*cases.Case{gina}, []*cases.Case{bob, carl, shared}},
	} {
		c := f.client()
		c.signIn(w.email)
		_, list := c.get("/cases?status=all")
		for _, cs := range w.see {
			if !strings.Contains(list, html.EscapeString(cs.Subject)) {
				t.Errorf("%s: list lacks %q", w.email, cs.Subject)
			}
			if code, page := c.get("/cases/" + itoa(cs.ID)); code != 200 || !strings.Contains(page, html.EscapeString(cs.Subject)) {
				t.Errorf("%s: case %d: %d", w.email, cs.ID, code)
			}
		}
		_, missing := c.get("/cases/999")
		for _, cs := range w.notSee {
			if strings.Contains(list, html.EscapeString(cs.Subject)) {
				t.Errorf("%s: list shows %q", w.email, cs.Subject)
			}
			code, page := c.get("/cases/" + itoa(cs.ID))
			if code != http.StatusNotFound || page != missing {
				t.Errorf("%s: case %d: %d, body differs from a missing case: %v", w.email, cs.ID, code, page != missing)
			}
		}
	}
	if n := strings.Count(f.log(), "portal_denied"); n < 3+2+2+3 {
		t.Errorf("portal_denied logged %d times:\n%s", n, f.log())
	}
}

// A case link opens its one case for its one address without signing in,
// and nothing else; an edited or revoked link is "not found".
func TestCaseLink(t *testing.T) {
	f := newFixture(t)
	bob := f.addCase(newCase("acme", "Bob's printer", "bob@acme.example"), inMsg("bob@acme.example", "printer broken"))
	other := f.addCase(newCase("globex", "Globex outage", "gina@globex.example"), inMsg("gina@globex.example", "down"))
	link := strings.TrimPrefix(f.srv.CaseLink(bob.ID, "bob@acme.example"), "http://portal.test")
	c := f.client()
	if code, page := c.get(link); code != 200 || !strings.Contains(page, "Bob&#39;s printer") || !strings.Contains(page, "printer broken") {
		t.Fatalf("case link: %d\n%s", code, page)
	}
	if !strings.HasPrefix(link, "/c/") || strings.Contains(link, itoa(bob.ID)+"/") {
		t.Errorf("link %s carries a number", link)
	}
	// The link grants nothing else: not the list, not another case.
	if code, _ := c.get("/cases"); code != http.StatusSeeOther {
		t.Errorf("case link opened the list: %d", code)
	}
	_, missing := c.get(strings.TrimPrefix(f.srv.CaseLink(999, "bob@acme.example"), "http://portal.test"))
	// A link made for an address that is not a party does not open it.
	forged := strings.TrimPrefix(f.srv.CaseLink(other.ID, "bob@acme.example"), "http://portal.test")
	if code, page := c.get(forged); code != 404 || page != missing {
		t.Errorf("link for a non-party: %d", code)
	}
	// Tampering: every single-character edit of the token fails.
	tok := strings.TrimPrefix(link, "/c/")
	for i := 0; i < len(tok); i++ {
		b := []byte(tok)
		b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
		if code, page := c.get("/c/" + string(b)); code != 404 || page != missing {
			t.Fatalf("tampered at %d: %d", i, code)
		}
	}
	// Revocation: links issued before it stop working; a new one works.
	f.now = f.now.Add(time.Second)
	if err := f.db.Update(func(tx *store.Tx) error { return tx.RevokeCaseLinks(bob.ID, "bob@acme.example", f.now) }); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.get(link); code != 404 {
		t.Errorf("revoked link: %d", code)
	}
	f.now = f.now.Add(time.Second)
	if code, _ := c.get(strings.TrimPrefix(f.srv.CaseLink(bob.ID, "bob@acme.example"), "http://portal.test")); code != 200 {
		t.Errorf("link issued after the revocation: %d", code)
	}
	if !strings.Contains(f.log(), "portal_denied") {
		t.Errorf("no portal_denied logged")
	}
}

// What a case page never shows: each kind of the supplier's own traffic,
// with a marker in its text that must not appear anywhere on the page.
func TestHiddenKinds(t *testing.T) {
	f := newFixture(t)
	hidden := map[string]*cases.Message{
		"internal note": {Direction: cases.DirectionIn, Role: cases.RoleStaff, From: cases.Address{Email: "sam@desk.example"}, Text: "SECRET-NOTE", Visibility: cases.VisibilityInternal},
		"legacy staff":  {Direction: cases.DirectionIn, Role: cases.RoleStaff, From: cases.Address{Email: "sam@desk.example"}, Text: "SECRET-LEGACY"},
		"notify":        outMsg(string(cases.MailNotify), "SECRET-NOTIFY", cases.VisibilityInternal),
		"second line":   outMsg(string(cases.MailSecondLine), "SECRET-SECONDLINE", cases.VisibilityInternal),
		"sla warning":   outMsg(string(cases.MailSLAWarning), "SECRET-WARNING", cases.VisibilityInternal),
		"sla breach":    outMsg(string(cases.MailSLABreach), "SECRET-BREACH", cases.VisibilityInternal),
		"confirm":       outMsg(string(cases.MailConfirm), "SECRET-CONFIRM", cases.VisibilityInternal),
		"error":         outMsg(string(cases.MailError), "SECRET-ERROR", cases.VisibilityInternal),
		"unauthorised":  outMsg(string(cases.MailUnauthorised), "SECRET-R1NOTICE", cases.VisibilityCustomer),
		"machine":       {Direction: cases.DirectionIn, Role: cases.RoleMachine, From: cases.Address{Email: "mailer-daemon@acme.example"}, Text: "SECRET-BOUNCE", AutoReasons: []string{"dsn"}},
		"unknown kind":  outMsg("future_kind", "SECRET-FUTURE", cases.VisibilityCustomer),
	}
	shown := []*cases.Message{
		inMsg("bob@acme.example", "VISIBLE-CUSTOMER"),
		outMsg("ack", "VISIBLE-ACK", cases.VisibilityCustomer),
		outMsg(string(cases.MailRelay), "VISIBLE-RELAY", cases.VisibilityCustomer),
		outMsg(string(cases.MailPrioritySet), "VISIBLE-PRIORITY", cases.VisibilityCustomer),
		outMsg(string(cases.MailClosing), "VISIBLE-CLOSING", cases.VisibilityCustomer),
	}
	msgs := append([]*cases.Message{}, shown...)
	for _, m := range hidden {
		msgs = append(msgs, m)
	}
	c := newCase("acme", "Everything", "bob@acme.example", "eve@globex.example")
	c.Events = append(c.Events,
		cases.Event{At: t0, Type: cases.EventNote, Detail: "SECRET-EVENT-NOTE"},
		cases.Event{At: t0, Type: cases.EventSLAWarning, Detail: "SECRET-EVENT-SLA"},
		cases.Event{At: t0, Type: cases.EventStaffNotified, Detail: "SECRET-EVENT-NOTIFY"},
		cases.Event{At: t0, Type: cases.EventSecondLine, Detail: "SECRET-EVENT-2ND"})
	// A party from another customer writes in: their words are the
	// conversation, their address is not shown.
	eve := inMsg("eve@globex.example", "VISIBLE-EVE")
	eve.From.Name = "Eve Globex"
	msgs = append(msgs, eve)
	c = f.addCase(c, msgs...)
	// A quarantined mail names the case in its subject; it is not a
	// message of the case and must not appear.
	if err := f.db.Update(func(tx *store.Tx) error {
		return tx.PutQuarantine(&store.QuarantineRecord{Key: "q1", Subject: "[#1] SECRET-QUARANTINE", Reason: "test"}, []byte("Subject: SECRET-QUARANTINE\r\n\r\nSECRET-QUARANTINE"))
	}); err != nil {
		t.Fatal(err)
	}
	cl := f.client()
	cl.signIn("bob@acme.example")
	code, page := cl.get("/cases/" + itoa(c.ID))
	if code != 200 {
		t.Fatalf("case page: %d", code)
	}
	for name, m := range hidden {
		if strings.Contains(page, m.Text) {
			t.Errorf("%s shown", name)
		}
	}
	for _, m := range shown {
		if !strings.Contains(page, m.Text) {
			t.Errorf("%s (%s) not shown", m.Text, m.Kind)
		}
	}
	if !strings.Contains(page, "VISIBLE-EVE") || strings.Contains(page, "eve@globex.example") {
		t.Errorf("another customer's party: words shown %v, address hidden %v", strings.Contains(page, "VISIBLE-EVE"), !strings.Contains(page, "eve@globex.example"))
	}
	if strings.Contains(page, "SECRET") {
		i := strings.Index(page, "SECRET")
		t.Errorf("a secret leaked: %q", page[max(0, i-80):min(len(page), i+40)])
	}
	// Hidden messages cannot be fetched by index either.
	for i := range c.MessageKeys {
		code, body := cl.get("/cases/" + itoa(c.ID) + "/m/" + itoa(uint64(i)) + "/a/0")
		if strings.Contains(body, "SECRET") {
			t.Errorf("message %d leaks through the attachment endpoint (%d)", i, code)
		}
	}
}

// Sign-in: the same answer for a known, an unknown, a staff and a bounced
// address; only a known one gets a link; the link works once, expires, and
// the session it gives is a fresh token (no fixation).
func TestSignIn(t *testing.T) {
	f := newFixture(t)
	f.addCase(newCase("acme", "Bob's printer", "bob@acme.example"), inMsg("bob@acme.example", "x"))
	f.addCase(newCase("acme", "Dan's", "dan@acme.example"), inMsg("dan@acme.example", "x"))
	if err := f.db.Update(func(tx *store.Tx) error {
		return tx.SetUndeliverable("dan@acme.example", f.now.Add(time.Hour), "bounced")
	}); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, addr := range []string{"bob@acme.example", "nobody@acme.example", "sam@desk.example", "dan@acme.example", "ann@acme.example"} {
		c := f.client()
		_, page := c.get("/signin")
		code, body, _ := c.do("POST", "/signin", url.Values{"email": {addr}, "csrf": {csrfOf(t, page)}})
		if code != 200 {
			t.Errorf("%s: %d", addr, code)
		}
		bodies = append(bodies, body)
	}
	for i, b := range bodies {
		if b != bodies[0] {
			t.Errorf("answer %d differs from the first", i)
		}
	}
	f.drain()
	if f.lastLink("bob@acme.example") == "" || f.lastLink("ann@acme.example") == "" {
		t.Errorf("known addresses got no link: %+v", f.mailer.sent)
	}
	for _, a := range []string{"nobody@acme.example", "sam@desk.example", "dan@acme.example"} {
		if f.lastLink(a) != "" {
			t.Errorf("%s got a sign-in link", a)
		}
	}

	// Fixation: a session cookie the attacker planted is not promoted.
	c := f.client()
	u, _ := url.Parse(f.ts.URL)
	planted := randomToken()
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: planted}})
	path := strings.TrimPrefix(f.lastLink("bob@acme.example"), "http://portal.test")
	_, confirm := c.get(path)
	code, _, h := c.do("POST", path, url.Values{"csrf": {csrfOf(t, confirm)}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", code)
	}
	if sc := h.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") || strings.Contains(sc, planted) {
		t.Errorf("session cookie %q", sc)
	}
	if err := f.db.View(func(tx *store.Tx) error {
		if s, _ := tx.PortalSession(planted, f.now); s != nil {
			t.Errorf("planted session token became a session")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.get("/cases"); code != 200 {
		t.Errorf("list after sign-in: %d", code)
	}
	// Replay: the link was used.
	c2 := f.client()
	if code, _ := c2.get(path); code != 404 {
		t.Errorf("used link: %d", code)
	}
	// Expiry: a fresh link 16 minutes later is dead.
	c3 := f.client()
	_, page := c3.get("/signin")
	c3.do("POST", "/signin", url.Values{"email": {"ann@acme.example"}, "csrf": {csrfOf(t, page)}})
	f.drain()
	f.now = f.now.Add(16 * time.Minute)
	if code, _ := c3.get(strings.TrimPrefix(f.lastLink("ann@acme.example"), "http://portal.test")); code != 404 {
		t.Errorf("expired link: %d", code)
	}
	// The session lasts 8 hours by default.
	f.now = f.now.Add(8 * time.Hour)
	if code, _ := c.get("/cases"); code != http.StatusSeeOther {
		t.Errorf("list after the session expired: %d", code)
	}
}

// Sign-in is rate-limited per address and per client IP.
func TestSignInRateLimits(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	_, page := c.get("/signin")
	tok := csrfOf(t, page)
	codes := map[int]int{}
	for range 7 {
		code, _, _ := c.do("POST", "/signin", url.Values{"email": {"bob@acme.example"}, "csrf": {tok}})
		codes[code]++
	}
	if codes[200] != 5 || codes[429] != 2 {
		t.Errorf("per address: %v", codes)
	}
	codes = map[int]int{}
	for i := range 30 {
		code, _, _ := c.do("POST", "/signin", url.Values{"email": {"x" + itoa(uint64(i)) + "@acme.example"}, "csrf": {tok}})
		codes[code]++
	}
	if codes[429] == 0 || codes[200] != 25 {
		t.Errorf("per IP: %v", codes)
	}
}

// State-changing requests without a valid CSRF token are refused.
func TestCSRF(t *testing.T) {
	f := newFixture(t)
	f.addCase(newCase("acme", "Bob's printer", "bob@acme.example"), inMsg("bob@acme.example", "x"))
	c := f.client()
	c.get("/signin")
	for _, tok := range []string{"", "forged", randomToken()} {
		if code, _, _ := c.do("POST", "/signin", url.Values{"email": {"bob@acme.example"}, "csrf": {tok}}); code != http.StatusForbidden {
			t.Errorf("sign-in request with csrf %q: %d", tok, code)
		}
	}
	if code, _, _ := c.do("POST", "/signout", url.Values{}); code != http.StatusForbidden {
		t.Errorf("sign-out without csrf: %d", code)
	}
	f.drain()
	if f.sentCount() != 0 {
		t.Errorf("a request without a token sent mail")
	}
	// A token of another browser does not pass either.
	other := f.client()
	_, page := other.get("/signin")
	if code, _, _ := c.do("POST", "/signin", url.Values{"email": {"bob@acme.example"}, "csrf": {csrfOf(t, page)}}); code != http.StatusForbidden {
		t.Errorf("another browser's token: %d", code)
	}
}

func itoa(n uint64) string { return strings.TrimSpace(strings.Repeat(" ", 0) + uitoa(n)) }

func uitoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// The sign-in limiter counts an IPv6 client per /64 and holds a bounded
// number of keys per window: past the bound a new key is refused until the
// window turns, a known one still counts.
func TestSignInLimiterBounds(t *testing.T) {
	now := t0
	l := newLimiter(5, 3)
	for i := range 3 {
		if !l.allow(fmt.Sprintf("a%d@x.example", i), fmt.Sprintf("2001:db8:1:2::%x", i+1), now) {
			t.Fatalf("request %d from the /64 refused", i)
		}
	}
	if l.allow("b@x.example", "2001:db8:1:2:ffff::9", now) {
		t.Error("a fourth address of the same /64 passed")
	}
	if !l.allow("b@x.example", "2001:db8:1:3::1", now) || !l.allow("c@x.example", "::ffff:192.0.2.7", now) {
		t.Error("another /64, or an IPv4-mapped address, refused")
	}
	if networkKey("::ffff:192.0.2.7") != "192.0.2.7" || networkKey("2001:db8:1:2::5") != "2001:db8:1:2::/64" {
		t.Errorf("keys %q %q", networkKey("::ffff:192.0.2.7"), networkKey("2001:db8:1:2::5"))
	}

	big := newLimiter(5, 30)
	big.window = now.Truncate(time.Hour)
	for i := range maxTracked {
		big.byAddr[fmt.Sprintf("k%d", i)] = 1
	}
	if big.allow("new@x.example", "192.0.2.1", now) {
		t.Error("a new address passed with the map full")
	}
	if !big.allow("k7", "192.0.2.1", now) {
		t.Error("a known address was refused with the map full")
	}
	if !big.allow("new@x.example", "192.0.2.1", now.Add(time.Hour)) {
		t.Error("the next window did not start empty")
	}
}

// A follow link deskd mailed one party, in its own mail or quoted in a
// reply, is not shown to another who may see the case (a named contact
// sees every case of the customer, R1): the page shows a label instead.
func TestFollowLinksHidden(t *testing.T) {
	f := newFixture(t)
	c := newCase("acme", "Bob's printer", "bob@acme.example")
	bobLink := f.srv.CaseLink(1, "bob@acme.example")
	otherLink := "http://portal.test/c/AAAA-bbbb_CCCC.dddd"
	kase := f.addCase(c,
		inMsg("bob@acme.example", "printer broken"),
		outMsg("ack", "We received your question.\n\nFollow your case online:\n"+bobLink+"\n", cases.VisibilityCustomer),
		inMsg("bob@acme.example", "Still broken.\n\n> Follow your case online:\n> "+otherLink+"\n> thanks"),
	)
	if kase.ID != 1 {
		t.Fatalf("case %d, the link was made for case 1", kase.ID)
	}
	ann := f.client()
	ann.signIn("ann@acme.example") // Acme's named contact
	code, page := ann.get("/cases/" + itoa(kase.ID))
	if code != 200 || !strings.Contains(page, "printer broken") {
		t.Fatalf("named contact's case page: %d\n%s", code, page)
	}
	token := strings.TrimPrefix(bobLink, "http://portal.test/c/")
	if strings.Contains(page, token) || strings.Contains(page, "AAAA-bbbb_CCCC.dddd") {
		t.Errorf("another party's follow link shown on the page")
	}
	if n := strings.Count(page, "[link to this case]"); n != 2 {
		t.Errorf("%d labels for 2 hidden links", n)
	}
}
