package daemon

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"deskd/internal/peers"
	"deskd/mail"
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
	path := strings.TrimPrefix(link, "https://portal.example.test")
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
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

	resp, err := http.Get("http://" + h.d.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`deskd_portal_requests_total{code="200",page="case"}`, "deskd_portal_signin_mails_total 1", "deskd_portal_request_duration_seconds_bucket", "deskd_portal_denied_total 0"} {
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
