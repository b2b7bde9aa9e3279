package daemon

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/internal/peers"
	"deskd/mail"
	"deskd/store"
)

// portalClient is a browser against the daemon's portal listener; links
// in mails name the configured base_url, which it maps to the listener.
type portalClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newPortalClient(t *testing.T, addr string) *portalClient {
	jar, _ := cookiejar.New(nil)
	return &portalClient{t: t, base: "http://" + addr, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (c *portalClient) do(method, link string, form url.Values) (int, string) {
	c.t.Helper()
	if form == nil {
		return c.send(method, link, nil, "")
	}
	return c.send(method, link, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

func (c *portalClient) send(method, link string, body io.Reader, contentType string) (int, string) {
	c.t.Helper()
	path := strings.TrimPrefix(link, "https://portal.example.test")
	req, _ := http.NewRequest(method, c.base+path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func formToken(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in\n%s", page)
	}
	return m[1]
}

var portalLink = regexp.MustCompile(`https://portal\.example\.test/(c|signin)/[A-Za-z0-9_.-]+`)

func linkIn(t *testing.T, m peers.Mail) string {
	t.Helper()
	in, err := mail.Parse(m.Data, time.Now(), mail.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := portalLink.FindString(in.Text)
	if l == "" {
		t.Fatalf("no portal link in the mail:\n%s", in.Text)
	}
	return l
}

// The daemon serves the portal on its own listener (R3): the
// acknowledgement carries a follow link that opens the case with its
// deadline; a sign-in request sends a single-use link on the one road of
// outgoing mail, which signs the customer in to their case list; the
// portal's requests show in /metrics.
func TestPortalThroughDaemon(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.HTTPListen = "127.0.0.1:0"
		o.Portal = PortalOptions{Listen: "127.0.0.1:0", BaseURL: "https://portal.example.test"}
	})
	h.deliver(question("q1@acme.example", "Bob <bob@acme.example>", "Printer on fire", ""))
	h.waitReports(1)
	ack := h.waitMails(1)[0]
	follow := linkIn(t, ack)
	if !strings.Contains(follow, "/c/") {
		t.Fatalf("ack link %s is not a case link", follow)
	}
	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		addr = h.d.PortalAddr()
	}
	c := newPortalClient(t, addr)
	code, page := c.do("GET", follow, nil)
	if code != 200 || !strings.Contains(page, "Printer on fire") || !strings.Contains(page, "First response") {
		t.Fatalf("follow link: %d\n%s", code, page)
	}

	_, form := c.do("GET", "/signin?lang=en", nil)
	if code, page := c.do("POST", "/signin", url.Values{"email": {"bob@acme.example"}, "csrf": {formToken(t, form)}}); code != 200 || !strings.Contains(page, "Check your mail") {
		t.Fatalf("sign-in request: %d\n%s", code, page)
	}
	signin := h.waitMails(2)[1]
	if signin.To[0] != "bob@acme.example" {
		t.Fatalf("sign-in mail to %v", signin.To)
	}
	link := linkIn(t, signin)
	_, confirm := c.do("GET", link, nil)
	if code, page := c.do("POST", link, url.Values{"csrf": {formToken(t, confirm)}}); code != 200 || !strings.Contains(page, "Printer on fire") {
		t.Fatalf("signed in: %d\n%s", code, page)
	}

	// deskd portal links revoke, through the admin socket: the follow
	// link stops opening the case, the same "not found" as any.
	var r CaseLinkRevocation
	if err := AdminCall(h.opts.AdminSocket, AdminRequest{Op: "portal.revoke_links", ID: 1, Address: "Bob@acme.example"}, &r); err != nil || r.CaseID != 1 || r.Address != "bob@acme.example" {
		t.Fatalf("revoke links: %+v, %v", r, err)
	}
	if code, _ := newPortalClient(t, addr).do("GET", follow, nil); code != http.StatusNotFound {
		t.Errorf("a revoked follow link: %d", code)
	}
	if err := AdminCall(h.opts.AdminSocket, AdminRequest{Op: "portal.revoke_links", ID: 99}, &r); err == nil || !strings.Contains(err.Error(), "no case 99") {
		t.Errorf("revoke links of a case that does not exist: %v", err)
	}

	resp, err := http.Get("http://" + h.d.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`deskd_portal_requests_total{code="200",page="case"}`, "deskd_portal_signin_mails_total 1", "deskd_portal_request_duration_seconds_bucket", "deskd_portal_denied_total 1"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The operators' listener does not serve the portal.
	if resp, err := http.Get("http://" + h.d.HTTPAddr() + "/signin"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("the operators' listener serves the portal")
		}
	}
}

// postReply sends a case page's reply form as a browser does.
func (c *portalClient) postReply(casePath, text, fileName string, file []byte) (int, string) {
	c.t.Helper()
	_, page := c.do("GET", casePath, nil)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("csrf", formToken(c.t, page))
	if m := regexp.MustCompile(`name="nonce" value="([^"]+)"`).FindStringSubmatch(page); m != nil {
		w.WriteField("nonce", m[1])
	}
	w.WriteField("text", text)
	if fileName != "" {
		fw, _ := w.CreateFormFile("files", fileName)
		fw.Write(file)
	}
	w.Close()
	return c.send("POST", casePath+"/reply", &body, w.FormDataContentType())
}

// waitMailTo waits for a mail to addr whose text contains want, after the
// first skip mails, and returns its index.
func (h *harness) waitMailTo(skip int, addr, want string) (int, peers.Mail) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms := h.smtp.Mails()
		for i := skip; i < len(ms); i++ {
			in, err := mail.Parse(ms[i].Data, time.Now(), mail.ParseOptions{})
			if err == nil && slices.Contains(ms[i].To, addr) && strings.Contains(in.Text, want) {
				return i, ms[i]
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no mail to %s with %q among %d", addr, want, len(ms))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A reply typed into the portal goes through the daemon's ingest as a
// mail from the customer (R3): on a pending case it resumes the clock
// (R11c), staff are notified with the attachment, the raw message is
// stored (export, mbox) and the history shows it; the wish to close is an
// event and a mail to staff, and the case stays open (only staff close);
// after staff close it, a reply from the portal reopens it within
// reopen_window.
func TestPortalReplyThroughDaemon(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Portal = PortalOptions{Listen: "127.0.0.1:0", BaseURL: "https://portal.example.test"}
		o.Policy.StaffNotify = []string{"team@example.test"}
	})
	h.deliver(question("q1@acme.example", "Bob <bob@acme.example>", "Printer on fire", ""))
	rep := h.waitReports(1)[0]
	ack, _ := h.waitMailTo(0, "bob@acme.example", "Printer on fire")
	h.deliver(question("s1@example.test", "Sam <sam@example.test>", "[pending] Re: [Case #1] Printer on fire", "In-Reply-To: <"+rep.Ack+">\n"))
	h.waitReports(2)
	status := func() (*cases.Case, []*cases.Message) {
		var c *cases.Case
		var ms []*cases.Message
		err := h.d.DB().View(func(tx *store.Tx) error {
			var err error
			if c, err = tx.Case(1); err != nil {
				return err
			}
			for _, k := range c.MessageKeys {
				m, err := tx.Message(k)
				if err != nil {
					return err
				}
				ms = append(ms, m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return c, ms
	}
	if c, _ := status(); c.Status != cases.StatusPending {
		t.Fatalf("staff's [pending]: %s", c.Status)
	}

	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		addr = h.d.PortalAddr()
	}
	c := newPortalClient(t, addr)
	_, form := c.do("GET", "/signin?lang=en", nil)
	c.do("POST", "/signin", url.Values{"email": {"bob@acme.example"}, "csrf": {formToken(t, form)}})
	i, signin := h.waitMailTo(ack, "bob@acme.example", "/signin/")
	link := linkIn(t, signin)
	_, confirm := c.do("GET", link, nil)
	c.do("POST", link, url.Values{"csrf": {formToken(t, confirm)}})

	photo := []byte("\x89PNG\r\n\x1a\nphoto of the display")
	if code, page := c.postReply("/cases/1", "Here is the photo you asked for.", "display.png", photo); code != 200 || !strings.Contains(page, "Your reply was added") {
		t.Fatalf("reply: %d\n%s", code, page)
	}
	cs, ms := status()
	if cs.Status != cases.StatusOpen {
		t.Errorf("R11c: the portal reply left the case %s", cs.Status)
	}
	last := ms[len(ms)-1]
	for _, m := range ms {
		if m.Direction == cases.DirectionIn && strings.Contains(m.Text, "Here is the photo") {
			last = m
		}
	}
	if last.From.Email != "bob@acme.example" || last.Role != cases.RoleCustomer || len(last.Attachments) != 1 || last.Attachments[0].Filename != "display.png" {
		t.Errorf("the reply on the case: %+v", last)
	}
	err := h.d.DB().View(func(tx *store.Tx) error {
		raw, err := tx.Raw(last.Key)
		if err != nil || !bytes.Contains(raw, []byte("Message-Id: <portal.")) {
			t.Errorf("raw reply stored for export: %v\n%.600s", err, raw)
		}
		// It threads by one of deskd's own signed ids of this case.
		in, _ := mail.Parse(raw, time.Now(), mail.ParseOptions{})
		if len(in.InReplyTo) != 1 {
			t.Fatalf("In-Reply-To %v", in.InReplyTo)
		}
		if n, own := mail.VerifyMessageID(h.d.rt.Load().hmacKey, in.InReplyTo[0]); !own || n != 1 {
			t.Errorf("In-Reply-To <%s> is not deskd's own id of case 1", in.InReplyTo[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	j, notify := h.waitMailTo(i, "team@example.test", "Here is the photo you asked for.")
	if !bytes.Contains(notify.Data, []byte("display.png")) {
		t.Errorf("the staff notification lacks the attachment")
	}

	// The wish to close: an event, a mail to staff, the case still open.
	_, page := c.do("GET", "/cases/1", nil)
	if code, page := c.do("POST", "/cases/1/solved", url.Values{"csrf": {formToken(t, page)}}); code != 200 || !strings.Contains(page, "You asked to close it") {
		t.Fatalf("wish: %d\n%s", code, page)
	}
	h.waitMailTo(j, "team@example.test", "klantportaal") // staff_language nl
	cs, _ = status()
	if cs.Status != cases.StatusOpen || !slices.ContainsFunc(cs.Events, func(e cases.Event) bool {
		return e.Type == cases.EventSolvedWish && e.By == "bob@acme.example"
	}) {
		t.Errorf("after the wish: %s %+v", cs.Status, cs.Events)
	}

	// Staff close; a reply from the portal reopens within the window.
	h.deliver(question("s2@example.test", "Sam <sam@example.test>", "[opgelost] Re: [Case #1] Printer on fire", "In-Reply-To: <"+rep.Ack+">\n"))
	h.waitReports(4)
	if cs, _ = status(); cs.Status != cases.StatusClosed {
		t.Fatalf("staff's [opgelost]: %s", cs.Status)
	}
	if code, page := c.postReply("/cases/1", "It jams again.", "", nil); code != 200 || !strings.Contains(page, "Your reply was added") {
		t.Fatalf("reply to the closed case: %d\n%s", code, page)
	}
	reps := h.waitReports(5)
	if r := reps[len(reps)-1]; r.Decision != string(cases.OutcomeReopened) || r.CaseID != 1 {
		t.Errorf("reply to a closed case: %+v", r)
	}
	if cs, _ = status(); cs.Status != cases.StatusOpen {
		t.Errorf("reopened case %s", cs.Status)
	}
}
