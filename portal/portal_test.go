package portal

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/sla"
	"deskd/store"
)

var ams, _ = time.LoadLocation("Europe/Amsterdam")

// t0 is a Monday morning in working hours.
var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, ams)

// sentMail is one sign-in mail the portal asked the daemon to send.
type sentMail struct {
	to, lang, link string
}

// recMailer records the sign-in mails, replies and wishes (the daemon's
// ingest and outbox are tested in daemon, through this very handler; here
// what matters is what the portal asks for).
type recMailer struct {
	mu   sync.Mutex
	sent []sentMail
	ch   chan sentMail
	// replies are the raw replies delivered; landOn, when set, is the
	// case the daemon says a reply landed on (default: the one it
	// threads into, by its subject token).
	replies [][]byte
	landOn  uint64
	wishes  []wish
}

type wish struct {
	caseID uint64
	by     cases.Address
}

func (m *recMailer) DeliverReply(raw []byte, _ time.Time) (Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replies = append(m.replies, raw)
	id := m.landOn
	if id == 0 {
		in, err := mail.Parse(raw, time.Now(), mail.ParseOptions{})
		if err != nil {
			return Delivery{}, err
		}
		id, _ = cases.NewTokens("Case").Find(in.Subject)
	}
	dec := "reply"
	if m.landOn != 0 {
		dec = "linked_case"
	}
	return Delivery{CaseID: id, Decision: dec}, nil
}

func (m *recMailer) SolvedWish(caseID uint64, by cases.Address) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wishes = append(m.wishes, wish{caseID, by})
	return true, nil
}

func (m *recMailer) counts() (replies, wishes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.replies), len(m.wishes)
}

func (m *recMailer) SendSignIn(to cases.Address, lang, link string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := sentMail{to.Email, lang, link}
	m.sent = append(m.sent, s)
	if m.ch != nil {
		m.ch <- s
	}
	return nil
}

type fixture struct {
	t      testing.TB
	db     *store.DB
	srv    *Server
	ts     *httptest.Server
	mailer *recMailer
	now    time.Time
	logs   *strings.Builder
	logMu  *sync.Mutex
	hmac   []byte
}

// key is the store's HMAC key.
func (f *fixture) key() []byte { return f.hmac }

func testPolicy() *cases.Policy {
	return &cases.Policy{
		SupportAddress: "support@desk.example",
		TokenPrefix:    "Case",
		StaffAddresses: []string{"sam@desk.example"},
		StaffDomains:   []string{"desk.example"},
		ReopenWindow:   14 * 24 * time.Hour,
		Customers: []cases.Customer{
			{Name: "acme", Plan: "Premium", Language: "en", Domains: []string{"acme.example"},
				Contacts: []cases.Address{{Name: "Ann Admin", Email: "ann@acme.example"}}},
			{Name: "globex", Plan: "Business", Language: "nl", Domains: []string{"globex.example"},
				Contacts: []cases.Address{{Name: "Gina", Email: "gina@globex.example"}}},
		},
		DefaultCustomer: "default", DefaultPlan: "Basic", DefaultLanguage: "nl",
	}
}

type syncWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureAt(t, filepath.Join(t.TempDir(), "deskd.db"), testPolicy())
}

// newFixtureAt is a fixture on the store at path (created when missing),
// with policy.
func newFixtureAt(t testing.TB, path string, policy *cases.Policy) *fixture {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var key []byte
	if err := db.Update(func(tx *store.Tx) error { key, err = tx.HMACKey(); return err }); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, mailer: &recMailer{}, now: t0.Add(2 * time.Hour), logs: &strings.Builder{}, logMu: &sync.Mutex{}}
	f.srv, err = New(Config{
		BaseURL: "http://portal.test", Store: db, Policy: policy, Key: key, Mailer: f.mailer,
		Clocks: &sla.Clocks{Default: &sla.Clock{Calendar: sla.DefaultCalendar(ams), Targets: sla.Default()}},
		Now:    func() time.Time { return f.now },
		Log:    slogTo(syncWriter{f.logMu, f.logs}),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.hmac = key
	f.ts = httptest.NewServer(f.srv.Handler())
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fixture) log() string {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.logs.String()
}

// addCase stores a case with the given messages (each with a raw body).
func (f *fixture) addCase(c *cases.Case, msgs ...*cases.Message) *cases.Case {
	f.t.Helper()
	err := f.db.Update(func(tx *store.Tx) error {
		id, err := tx.NextCaseID()
		if err != nil {
			return err
		}
		c.ID = id
		for i, m := range msgs {
			if m.Key == "" {
				m.Key = fmt.Sprintf("mid:%d.%d@test", id, i)
			}
			m.CaseID = id
			raw := []byte("From: " + m.From.Email + "\r\nSubject: " + m.Subject + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + m.Text)
			if r, ok := rawOf[m]; ok {
				raw = r
			}
			if err := tx.PutMessage(m, raw); err != nil {
				return err
			}
			c.MessageKeys = append(c.MessageKeys, m.Key)
		}
		return tx.PutCase(c)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

var rawOf = map[*cases.Message][]byte{}

func newCase(customer, subject string, requester string, parties ...string) *cases.Case {
	return &cases.Case{
		Subject: subject, Status: cases.StatusOpen, Customer: customer, Plan: "Premium", Language: "en",
		Requester: cases.Address{Email: requester}, Parties: append([]string{requester}, parties...),
		Kind: cases.KindIncident, Priority: cases.PriorityHigh,
		CreatedAt: t0, UpdatedAt: t0, ReceivedAt: t0,
		Events: []cases.Event{{At: t0, Type: cases.EventReceived, By: requester}},
	}
}

func inMsg(from, text string) *cases.Message {
	return &cases.Message{Direction: cases.DirectionIn, Role: cases.RoleCustomer, From: cases.Address{Email: from},
		Subject: "help", Date: t0, Text: text, Visibility: cases.VisibilityCustomer}
}

func outMsg(kind, text string, vis string) *cases.Message {
	return &cases.Message{Key: "out:" + kind + text[:min(8, len(text))] + "@desk", Direction: cases.DirectionOut, Role: cases.RoleDeskd,
		From: cases.Address{Email: "support@desk.example"}, Subject: "Re: help", Date: t0.Add(time.Minute), Text: text, Kind: kind, Visibility: vis}
}

// client is a browser: a cookie jar, no redirects followed automatically.
type client struct {
	f   *fixture
	hc  *http.Client
	ip  string
	lng string
}

func (f *fixture) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{f: f, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values) (int, string, http.Header) {
	c.f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.f.ts.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept-Language", "en")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (c *client) get(path string) (int, string) {
	code, body, _ := c.do("GET", path, nil)
	return code, body
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf token in page:\n%s", body)
	}
	return m[1]
}

// signIn goes the whole way: form, worker, link, confirmation, session.
func (c *client) signIn(email string) {
	t := c.f.t
	t.Helper()
	_, page := c.get("/signin")
	code, body, _ := c.do("POST", "/signin", url.Values{"email": {email}, "csrf": {csrfOf(t, page)}})
	if code != 200 || !strings.Contains(body, "Check your mail") {
		t.Fatalf("sign-in request: %d\n%s", code, body)
	}
	c.f.drain()
	link := c.f.lastLink(email)
	if link == "" {
		t.Fatalf("no sign-in mail for %s", email)
	}
	path := strings.TrimPrefix(link, "http://portal.test")
	code, page = c.get(path)
	if code != 200 {
		t.Fatalf("sign-in link: %d\n%s", code, page)
	}
	code, _, h := c.do("POST", path, url.Values{"csrf": {csrfOf(t, page)}})
	if code != http.StatusSeeOther || h.Get("Location") != "/cases" {
		t.Fatalf("sign-in: %d %v", code, h)
	}
}

// drain runs the sign-in worker over what is queued.
func (f *fixture) drain() {
	for {
		select {
		case req := <-f.srv.signin:
			f.srv.handleSignIn(req)
		default:
			return
		}
	}
}

func (f *fixture) lastLink(email string) string {
	f.mailer.mu.Lock()
	defer f.mailer.mu.Unlock()
	for i := len(f.mailer.sent) - 1; i >= 0; i-- {
		if f.mailer.sent[i].to == email {
			return f.mailer.sent[i].link
		}
	}
	return ""
}

func (f *fixture) sentCount() int {
	f.mailer.mu.Lock()
	defer f.mailer.mu.Unlock()
	return len(f.mailer.sent)
}

var _ = context.Background
