package portal

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"deskd/cases"
	"deskd/mail"
)

var nonceRE = regexp.MustCompile(`name="nonce" value="([^"]+)"`)

// postReply sends the reply form of path's case page as a browser does
// (multipart/form-data); fields override the page's csrf and nonce.
func (c *client) postReply(path, text string, fields map[string]string, files map[string][]byte) (int, string, http.Header) {
	t := c.f.t
	t.Helper()
	_, page := c.get(path)
	vals := map[string]string{"text": text}
	if m := csrfRE.FindStringSubmatch(page); m != nil {
		vals["csrf"] = m[1]
	}
	if m := nonceRE.FindStringSubmatch(page); m != nil {
		vals["nonce"] = m[1]
	}
	for k, v := range fields {
		vals[k] = v
	}
	return c.postMultipart(path+"/reply", vals, files)
}

func (c *client) postMultipart(path string, vals map[string]string, files map[string][]byte) (int, string, http.Header) {
	t := c.f.t
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range vals {
		w.WriteField(k, v)
	}
	for name, data := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="files"; filename="`+name+`"`)
		h.Set("Content-Type", "application/pdf")
		p, _ := w.CreatePart(h)
		p.Write(data)
	}
	w.Close()
	req, _ := http.NewRequest("POST", c.f.ts.URL+path, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Accept-Language", "en")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), resp.Header
}

func (f *fixture) replies() [][]byte {
	f.mailer.mu.Lock()
	defer f.mailer.mu.Unlock()
	return append([][]byte(nil), f.mailer.replies...)
}

// A reply from the portal (R3) is the mail the customer's client would
// have sent: from the signed-in contact to support, in the case's thread
// (In-Reply-To/References of deskd's ids, the subject token), a
// Message-ID of the portal's own that is never one of deskd's signed ids
// (the engine would take it for its own mail), a Date, the attachments in
// a multipart/mixed; handed to the daemon's ingest, after which the
// customer lands on the case the ingest put it on. The same form sent
// twice gives the same Message-ID, so the ingest's dedupe keeps one.
func TestReplyBuildsTheMail(t *testing.T) {
	f := newFixture(t)
	c := newCase("acme", "Printer jams", "bob@acme.example")
	c.Thread = []string{"deskd.1.aaaaaaaaaaaa.bbbbbbbbbbbbbbbb@desk.example", "deskd.1.cccccccccccc.dddddddddddddddd@desk.example"}
	f.addCase(c, inMsg("bob@acme.example", "it jams"))
	cl := f.client()
	cl.signIn("ann@acme.example")
	_, page := cl.get("/cases/1")
	for _, want := range []string{`action="/cases/1/reply"`, `enctype="multipart/form-data"`, `name="nonce"`, `action="/cases/1/solved"`, `<label for="text">`} {
		if !strings.Contains(page, want) {
			t.Errorf("case page lacks %s", want)
		}
	}
	pdf := []byte("%PDF-1.4 photo of the display")
	code, _, h := cl.postReply("/cases/1", "Here is the photo.\r\nAnn", nil, map[string][]byte{`C:\Users\ann\display.pdf`: pdf})
	if code != http.StatusSeeOther || h.Get("Location") != "/cases/1?done=reply" {
		t.Fatalf("reply: %d %v", code, h)
	}
	raws := f.replies()
	if len(raws) != 1 {
		t.Fatalf("%d replies delivered", len(raws))
	}
	in, err := mail.Parse(raws[0], f.now, mail.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.From.Email != "ann@acme.example" || in.From.Name != "Ann Admin" || len(in.To) != 1 || in.To[0].Email != "support@desk.example" {
		t.Errorf("from %v to %v", in.From, in.To)
	}
	if !strings.Contains(in.Subject, "[Case #1]") || !strings.Contains(in.Subject, "Printer jams") {
		t.Errorf("subject %q", in.Subject)
	}
	if len(in.InReplyTo) != 1 || in.InReplyTo[0] != c.Thread[1] || len(in.References) != 2 || in.References[0] != c.Thread[0] {
		t.Errorf("in-reply-to %v references %v", in.InReplyTo, in.References)
	}
	if !strings.HasPrefix(in.MessageID, "portal.") || !strings.HasSuffix(in.MessageID, "@desk.example") {
		t.Errorf("message-id %q", in.MessageID)
	}
	if _, own := mail.VerifyMessageID(f.key(), in.MessageID); own {
		t.Errorf("the reply's Message-ID passes as deskd's own")
	}
	if in.Date.IsZero() || !strings.Contains(in.Text, "Here is the photo.") || in.Auto.IsAuto() {
		t.Errorf("date %v text %q auto %+v", in.Date, in.Text, in.Auto)
	}
	if len(in.Attachments) != 1 || in.Attachments[0].Filename != "display.pdf" || in.Attachments[0].ContentType != "application/pdf" || !bytes.Equal(in.Attachments[0].Data, pdf) {
		t.Errorf("attachments %+v", in.Attachments)
	}
	if !bytes.Contains(raws[0], []byte("Received: from [127.0.0.1] by deskd portal with HTTP;")) {
		t.Errorf("no trace field:\n%s", raws[0][:400])
	}

	// The same form twice: the same Message-ID (one message after dedupe).
	_, page = cl.get("/cases/1")
	nonce := nonceRE.FindStringSubmatch(page)[1]
	for range 2 {
		cl.postReply("/cases/1", "Once.", map[string]string{"nonce": nonce}, nil)
	}
	raws = f.replies()
	a, _ := mail.Parse(raws[1], f.now, mail.ParseOptions{})
	b, _ := mail.Parse(raws[2], f.now, mail.ParseOptions{})
	if a.MessageID != b.MessageID || a.MessageID == in.MessageID {
		t.Errorf("resent form: %q and %q (first %q)", a.MessageID, b.MessageID, in.MessageID)
	}

	// A reply the daemon put on another case (a closed case too old to
	// reopen continues in a linked case) leads there.
	f.mailer.mu.Lock()
	f.mailer.landOn = 2
	f.mailer.mu.Unlock()
	f.addCase(newCase("acme", "Printer jams", "ann@acme.example"))
	if code, _, h := cl.postReply("/cases/1", "Still jams.", nil, nil); code != http.StatusSeeOther || h.Get("Location") != "/cases/2?done=linked" {
		t.Errorf("linked: %d %v", code, h)
	}
	if _, page := cl.get("/cases/2?done=linked"); !strings.Contains(page, "opened a new case") {
		t.Errorf("no notice of the new case")
	}
}

// A reply or a wish needs a session, a case the session may see (another
// customer's case, or none, is the same "not found", logged), a valid
// CSRF token, and a body within limits.max_message_bytes; otherwise
// nothing reaches the daemon.
func TestReplyRefused(t *testing.T) {
	f := newFixture(t)
	f.srv.cfg.MaxMessageBytes = 8 << 10
	f.addCase(newCase("acme", "Printer jams", "bob@acme.example"), inMsg("bob@acme.example", "it jams"))
	gina := f.addCase(newCase("globex", "Globex outage", "gina@globex.example"), inMsg("gina@globex.example", "down"))
	bob := f.client()
	bob.signIn("bob@acme.example")

	// CSRF missing, wrong, or another browser's.
	other := f.client()
	other.signIn("ann@acme.example")
	_, otherPage := other.get("/cases/1")
	for _, tok := range []string{"", "forged", randomToken(), csrfOf(t, otherPage)} {
		if code, _, _ := bob.postReply("/cases/1", "hello", map[string]string{"csrf": tok}, nil); code != http.StatusForbidden {
			t.Errorf("reply with csrf %q: %d", tok, code)
		}
		if code, _, _ := bob.do("POST", "/cases/1/solved", url.Values{"csrf": {tok}}); code != http.StatusForbidden {
			t.Errorf("wish with csrf %q: %d", tok, code)
		}
	}
	if code, _, _ := bob.do("POST", "/cases/1/solved", nil); code != http.StatusForbidden {
		t.Errorf("wish without a form: %d", code)
	}

	// Too large: over the limit outright, and text and files that fit
	// but whose encoded mail does not.
	if code, page, _ := bob.postReply("/cases/1", "big", nil, map[string][]byte{"big.bin": bytes.Repeat([]byte("x"), 200<<10)}); code != http.StatusRequestEntityTooLarge || !strings.Contains(page, "too large") {
		t.Errorf("oversize reply: %d", code)
	}
	if code, page, _ := bob.postReply("/cases/1", "keep this text", nil, map[string][]byte{"a.bin": bytes.Repeat([]byte{0xff}, 7<<10)}); code != http.StatusRequestEntityTooLarge || !strings.Contains(page, "keep this text") {
		t.Errorf("reply too large once encoded: %d (the text stays in the form)", code)
	}
	if code, page, _ := bob.postReply("/cases/1", "  ", nil, nil); code != http.StatusBadRequest || !strings.Contains(page, "Please write a message") {
		t.Errorf("empty reply: %d", code)
	}

	// Another customer's case, and one that does not exist: the same
	// "not found", before the body is looked at.
	_, missing, _ := bob.do("GET", "/cases/999", nil)
	_, page := bob.get("/cases/1")
	tok := csrfOf(t, page)
	for _, p := range []string{"/cases/" + itoa(gina.ID), "/cases/999"} {
		code, body, _ := bob.postMultipart(p+"/reply", map[string]string{"csrf": tok, "text": "let me in"}, nil)
		if code != http.StatusNotFound || body != missing {
			t.Errorf("reply to %s: %d, same body as a missing case: %v", p, code, body == missing)
		}
		code, body, _ = bob.do("POST", p+"/solved", url.Values{"csrf": {tok}})
		if code != http.StatusNotFound || body != missing {
			t.Errorf("wish on %s: %d, same body as a missing case: %v", p, code, body == missing)
		}
	}
	if n := strings.Count(f.log(), "portal_denied"); n < 4 {
		t.Errorf("portal_denied logged %d times", n)
	}

	// A case link reads, it does not write: no form, and a post without
	// a session signs in first.
	link := strings.TrimPrefix(f.srv.CaseLink(1, "bob@acme.example"), "http://portal.test")
	anon := f.client()
	if _, page := anon.get(link); strings.Contains(page, "/reply") || !strings.Contains(page, "sign in") {
		t.Errorf("a case link's page offers a reply form")
	}
	if code, _, h := anon.postMultipart("/cases/1/reply", map[string]string{"text": "x"}, nil); code != http.StatusSeeOther || h.Get("Location") != "/signin" {
		t.Errorf("reply without a session: %d %v", code, h)
	}
	if code, _, _ := anon.postMultipart(link+"/reply", map[string]string{"text": "x"}, nil); code != http.StatusNotFound {
		t.Errorf("reply through a case link: %d", code)
	}
	if r, w := f.mailer.counts(); r != 0 || w != 0 {
		t.Errorf("refused requests reached the daemon: %d replies, %d wishes", r, w)
	}
}

// "My problem is solved": the wish goes to the daemon (an event and a
// mail to staff) with the contact's name; the case is not closed by it,
// and a closed case offers no such button.
func TestSolvedWish(t *testing.T) {
	f := newFixture(t)
	f.addCase(newCase("acme", "Printer jams", "ann@acme.example"), inMsg("ann@acme.example", "it jams"))
	closed := newCase("acme", "Old", "ann@acme.example")
	closed.Status = cases.StatusClosed
	f.addCase(closed)
	cl := f.client()
	cl.signIn("ann@acme.example")
	_, page := cl.get("/cases/1")
	code, _, h := cl.do("POST", "/cases/1/solved", url.Values{"csrf": {csrfOf(t, page)}})
	if code != http.StatusSeeOther || h.Get("Location") != "/cases/1?done=solved" {
		t.Fatalf("wish: %d %v", code, h)
	}
	f.mailer.mu.Lock()
	ws := f.mailer.wishes
	f.mailer.mu.Unlock()
	if len(ws) != 1 || ws[0].caseID != 1 || ws[0].by.Email != "ann@acme.example" || ws[0].by.Name != "Ann Admin" {
		t.Errorf("wishes %+v", ws)
	}
	if _, page := cl.get("/cases/1?done=solved"); !strings.Contains(page, "they will close the case") {
		t.Errorf("no notice after the wish")
	}
	if _, page := cl.get("/cases/2"); strings.Contains(page, "/solved") || !strings.Contains(page, "This case is closed") {
		t.Errorf("a closed case offers the wish, or does not say a reply reopens it")
	}
}
