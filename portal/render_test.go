package portal

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/internal/i18n"
	"deskd/mail"
)

// The strict policy: formatting and links stay, everything active goes.
func TestSanitizeHTML(t *testing.T) {
	cid := func(c string) string { return "/c/x/m/0/cid/" + url.PathEscape(c) }
	for _, tc := range []struct{ in, mustNot, must string }{
		{`<p>Hi<script>alert(1)</script></p>`, "<script", "<p>Hi</p>"},
		{`<img src=x onerror=alert(1)>`, "onerror", ""},
		{`<a href="javascript:alert(1)">x</a>`, "javascript:", ""},
		{`<a href="data:text/html,<script>alert(1)</script>">x</a>`, "data:", ""},
		{`<svg><script>alert(1)</script></svg>`, "<svg", ""},
		{`<p style="background:url(http://evil.example/x)">x</p>`, "style", ""},
		{`<div style="width:expression(alert(1))">x</div>`, "expression", ""},
		{`<base href="http://evil.example/">`, "<base", ""},
		{`<meta http-equiv="refresh" content="0;url=http://evil.example/">`, "refresh", ""},
		{`<form action="http://evil.example"><input name=a></form>`, "<form", ""},
		{`<iframe src="http://evil.example"></iframe>`, "<iframe", ""},
		{`<img src="http://evil.example/track.gif">`, "evil.example", ""},
		{`<a href="&#106;avascript:alert(1)">x</a>`, "avascript", ""},
		{`<a href="https://ok.example/">ok</a>`, "javascript", `rel="nofollow noreferrer noopener"`},
		{`<img src="cid:logo@x">`, "cid:", `src="/c/x/m/0/cid/logo@x"`},
		{`<style>body{background:url(http://evil.example)}</style>`, "evil", ""},
	} {
		out := string(sanitizeHTML(tc.in, cid))
		if strings.Contains(strings.ToLower(out), tc.mustNot) {
			t.Errorf("%s → %s: contains %q", tc.in, out, tc.mustNot)
		}
		if tc.must != "" && !strings.Contains(out, tc.must) {
			t.Errorf("%s → %s: lacks %q", tc.in, out, tc.must)
		}
	}
}

func TestSplitQuoted(t *testing.T) {
	b := splitQuoted("Thanks, it works now.\n\nOn Mon, 2 Mar 2026 Support wrote:\n> Try rebooting.\n> Regards")
	if b.Text != "Thanks, it works now." || !strings.Contains(b.Quoted, "> Try rebooting.") {
		t.Errorf("split: %+v", b)
	}
}

func TestSafeFilename(t *testing.T) {
	for in, want := range map[string]string{
		"../../etc/passwd":  "passwd",
		`C:\x\report.pdf`:   "report.pdf",
		"a\"b;c\r\nd.txt":   "a_b_c__d.txt",
		"":                  "attachment",
		"...":               "attachment",
		"evil\u202etxt.exe": "evil_txt.exe",
		"résumé.pdf":        "résumé.pdf",
	} {
		if got := safeFilename(in); got != want {
			t.Errorf("safeFilename(%q) = %q, want %q", in, got, want)
		}
	}
	if cd := contentDisposition("résumé.pdf"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf") {
		t.Errorf("content disposition %q", cd)
	}
}

const htmlMail = "From: Bob <bob@acme.example>\r\nSubject: html\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=b\r\n\r\n" +
	"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Look <b>here</b><img src=\"cid:shot@x\"><img src=\"cid:vec@x\"><script>alert(1)</script></p>\r\n" +
	"--b\r\nContent-Type: image/png\r\nContent-ID: <shot@x>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n" +
	"--b\r\nContent-Type: image/svg+xml\r\nContent-ID: <vec@x>\r\n\r\n<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>\r\n" +
	"--b\r\nContent-Type: image/svg+xml\r\nContent-Disposition: attachment; filename=\"../x.svg\"\r\n\r\n<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>\r\n" +
	"--b--\r\n"

// An HTML-only mail is shown sanitised; its cid: image comes from the
// portal; an SVG is never rendered (neither inline nor as a page), and
// attachments are downloads with a safe name and the stored type.
func TestHTMLMailAndAttachments(t *testing.T) {
	f := newFixture(t)
	m := inMsg("bob@acme.example", "Look here")
	in, err := mail.Parse([]byte(htmlMail), t0, mail.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Attachments = in.Attachments // what ingest stores
	svg := slices.IndexFunc(m.Attachments, func(a cases.Attachment) bool { return a.Filename != "" && strings.HasSuffix(a.Filename, "x.svg") })
	if svg < 0 {
		t.Fatalf("parser found no svg attachment: %+v", m.Attachments)
	}
	rawOf[m] = []byte(htmlMail)
	c := f.addCase(newCase("acme", "HTML", "bob@acme.example"), m)
	link := strings.TrimPrefix(f.srv.CaseLink(c.ID, "bob@acme.example"), "http://portal.test")
	cl := f.client()
	code, page := cl.get(link)
	if code != 200 || !strings.Contains(page, "<b>here</b>") || strings.Contains(page, "<script") {
		t.Fatalf("html mail: %d\n%s", code, page)
	}
	if !strings.Contains(page, `src="`+link+`/m/0/cid/shot@x"`) {
		t.Errorf("cid image not rewritten:\n%s", page)
	}
	code, body, h := cl.do("GET", link+"/m/0/cid/shot@x", nil)
	if code != 200 || h.Get("Content-Type") != "image/png" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || !strings.HasPrefix(body, "\x89PNG") {
		t.Errorf("inline png: %d %v", code, h)
	}
	if code, _, _ := cl.do("GET", link+"/m/0/cid/vec@x", nil); code != 404 {
		t.Errorf("inline svg served: %d", code)
	}
	code, body, h = cl.do("GET", link+"/m/0/a/"+itoa(uint64(svg)), nil)
	if code != 200 || h.Get("Content-Disposition") != `attachment; filename=x.svg` || h.Get("Content-Type") != "image/svg+xml" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || !strings.Contains(body, "<svg") {
		t.Errorf("svg attachment: %d %v", code, h)
	}
	if code, _, _ := cl.do("GET", link+"/m/0/a/"+itoa(uint64(len(m.Attachments))), nil); code != 404 {
		t.Errorf("attachment out of range: %d", code)
	}
}

// Language: ?lang= wins and is remembered; Accept-Language next; then the
// customer's language.
func TestLanguage(t *testing.T) {
	f := newFixture(t)
	rec := func(q, al string, cookie *http.Cookie) (string, http.Header) {
		r := httptest.NewRequest("GET", "/signin"+q, nil)
		if al != "" {
			r.Header.Set("Accept-Language", al)
		}
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(w, r)
		return w.Body.String(), w.Header()
	}
	if b, _ := rec("", "nl-NL,nl;q=0.9", nil); !strings.Contains(b, `lang="nl"`) || !strings.Contains(b, "Inloggen") {
		t.Errorf("Accept-Language nl not honoured")
	}
	b, h := rec("?lang=en", "nl", nil)
	if !strings.Contains(b, `<html lang="en">`) {
		t.Errorf("?lang=en not honoured")
	}
	var lc *http.Cookie
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == langCookie {
			lc = c
		}
	}
	if b, _ := rec("", "nl", lc); lc == nil || !strings.Contains(b, `<html lang="en">`) {
		t.Errorf("the chosen language is not remembered")
	}
	if b, _ := rec("", "", nil); !strings.Contains(b, `<html lang="nl">`) {
		t.Errorf("default language not Dutch")
	}
	// Every key exists in both languages (the one wording scheme).
	for _, err := range i18n.CheckCatalog(text) {
		t.Error(err)
	}
}

// Enumeration by timing: the answer to a sign-in request does the same
// work whatever the address. Measured as work, not wall-clock: the
// request path touches no store at all (it answers the same with the store
// closed), and allocates the same for a known and an unknown address.
// BenchmarkSignInRequest compares the median times.
func TestSignInSameWork(t *testing.T) {
	f := newFixture(t)
	f.srv.limits = newLimiter(1<<30, 1<<30)
	f.addCase(newCase("acme", "Bob's printer", "bob@acme.example"), inMsg("bob@acme.example", "x"))
	h := f.srv.Handler()
	visitor := randomToken()
	csrf := f.srv.keys.csrfToken(visitor)
	req := func(addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/signin", strings.NewReader(url.Values{"email": {addr}, "csrf": {csrf}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: visitorCookie, Value: visitor})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		<-f.srv.signin // what the worker would take, so the queue never fills
		return w
	}
	known := testing.AllocsPerRun(200, func() { req("bob@acme.example") })
	unknown := testing.AllocsPerRun(200, func() { req("nobody@acme.example") })
	// Within 10% (the bound for the medians): an allocation of
	// the runtime's own lands on either side now and then (measured: 213
	// and 214, both ways round), which no address decides.
	if d := known - unknown; d > known/10 || -d > known/10 {
		t.Errorf("allocations: known %v, unknown %v", known, unknown)
	}
	f.db.Close()
	a, b := req("bob@acme.example"), req("nobody@acme.example")
	if a.Code != 200 || a.Body.String() != b.Body.String() {
		t.Errorf("with the store closed: %d, bodies equal %v", a.Code, a.Body.String() == b.Body.String())
	}
}

// BenchmarkSignInRequest reports the median time of the answer for a
// known and an unknown address, interleaved so that drift hits both.
func BenchmarkSignInRequest(b *testing.B) {
	f := newFixture(b)
	f.srv.limits = newLimiter(1<<30, 1<<30)
	f.addCase(newCase("acme", "Bob's printer", "bob@acme.example"), inMsg("bob@acme.example", "x"))
	h := f.srv.Handler()
	visitor := randomToken()
	csrf := f.srv.keys.csrfToken(visitor)
	one := func(addr string) time.Duration {
		r := httptest.NewRequest("POST", "/signin", strings.NewReader(url.Values{"email": {addr}, "csrf": {csrf}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: visitorCookie, Value: visitor})
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		d := time.Since(start)
		<-f.srv.signin
		return d
	}
	var k, u []time.Duration
	for b.Loop() {
		k = append(k, one("bob@acme.example"))
		u = append(u, one("nobody@acme.example"))
	}
	med := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	mk, mu := med(k), med(u)
	b.ReportMetric(float64(mk.Nanoseconds()), "known-median-ns")
	b.ReportMetric(float64(mu.Nanoseconds()), "unknown-median-ns")
	b.ReportMetric(100*float64(mu-mk)/float64(mk), "diff-%")
}
