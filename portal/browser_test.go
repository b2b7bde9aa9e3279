package portal

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"deskd/cases"
	"deskd/internal/browser"
	"deskd/internal/corpus"
)

// hostile are the payloads a customer's (or an attacker's) HTML mail may
// carry; none may run script or reach another origin.
var hostile = []string{
	`<script>alert(1)</script>`,
	`<img src=x onerror="alert(2)">`,
	`<a href="javascript:alert(3)">click</a>`,
	`<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCg0KTwvc2NyaXB0Pg==">data</a>`,
	`<iframe src="data:text/html,<script>alert(5)</script>"></iframe>`,
	`<svg onload="alert(6)"><script>alert(7)</script></svg>`,
	`<math><mtext><table><mglyph><style><img src=x onerror=alert(8)>`,
	`<div style="background:url(http://evil.example/css.png)">css url</div>`,
	`<div style="width:expression(alert(9))">css expression</div>`,
	`<style>@import "http://evil.example/x.css"; body{background:url(http://evil.example/b.png)}</style>`,
	`<base href="http://evil.example/"><a href="/rel">relative</a>`,
	`<meta http-equiv="refresh" content="0;url=http://evil.example/">`,
	`<img src="http://evil.example/track.gif" width=1 height=1>`,
	`<img srcset="http://evil.example/a.png 1x">`,
	`<video poster="http://evil.example/p.png"></video><audio src="http://evil.example/a.mp3"></audio>`,
	`<object data="http://evil.example/x.swf"></object><embed src="http://evil.example/e.swf">`,
	`<link rel="stylesheet" href="http://evil.example/s.css"><link rel="prefetch" href="http://evil.example/p">`,
	`<form action="http://evil.example/"><input name="q"><button>go</button></form>`,
	`<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(10)">entities</a>`,
	`<a href="jav&#x09;ascript:alert(11)">tab</a>`,
	`<img src="x" onerror="&#97;lert(12)">`,
	`<scr<script>ipt>alert(13)</scr</script>ipt>`,
	`%3Cscript%3Ealert(14)%3C/script%3E`,
	`<noscript><p title="</noscript><img src=x onerror=alert(15)>"></noscript>`,
	`<table background="http://evil.example/t.png"><tr><td>bg</td></tr></table>`,
	`<a href="vbscript:msgbox(16)">vb</a>`,
	`<img src="cid:../../../signin">`,
}

// events records what a page did that it must not: script output, dialogs,
// exceptions, CSP violations, and requests to any origin but the portal's.
type events struct {
	mu     sync.Mutex
	origin string
	bad    []string
	loaded int
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.bad = append(e.bad, s)
	e.mu.Unlock()
}

func (e *events) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		e.add(fmt.Sprintf("console.%s", ev.Type))
	case *runtime.EventExceptionThrown:
		e.add("exception: " + ev.ExceptionDetails.Text)
	case *page.EventJavascriptDialogOpening:
		e.add("dialog: " + ev.Message)
	case *log.EventEntryAdded:
		if ev.Entry.Source == log.EntrySourceNetwork {
			// A failed load (a cid: image whose part is not in the
			// mail, the missing case's 404): the requests themselves
			// are checked below, same origin only.
			return
		}
		e.add(fmt.Sprintf("log %s %s: %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text))
	case *network.EventRequestWillBeSent:
		u, err := url.Parse(ev.Request.URL)
		if err != nil || (u.Scheme+"://"+u.Host) != e.origin {
			e.add("request to " + ev.Request.URL)
		}
	}
}

// TestXSSInChromium renders every HTML mail of the shared corpus, and the
// hostile payloads above (in bodies, names and RFC 2047 subjects), in
// headless Chromium: no script runs (alert, prompt and confirm are hooked
// and console is watched), nothing is logged (a CSP violation would be),
// and no request leaves for another origin.
func TestXSSInChromium(t *testing.T) {
	f := newFixture(t)
	ctx := browser.New(t)

	var ids []uint64
	add := func(subject string, bodies []string) {
		var msgs []*cases.Message
		for i, b := range bodies {
			m := inMsg("bob@acme.example", "")
			m.Key = fmt.Sprintf("mid:x%d.%d.%d@test", len(ids), i, len(b))
			m.From.Name = `Bob "<img src=x onerror=alert(20)>" =?utf-8?q?=3Cscript=3Ealert(21)=3C/script=3E?=`
			m.Subject = subject
			rawOf[m] = []byte("From: bob@acme.example\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + b)
			msgs = append(msgs, m)
		}
		c := f.addCase(newCase("acme", subject, "bob@acme.example"), msgs...)
		ids = append(ids, c.ID)
	}
	add(`=?utf-8?b?PHNjcmlwdD5hbGVydCgyMik8L3NjcmlwdD4=?= <script>alert(23)</script>`, hostile)
	// A text mail with the payloads is shown as text.
	tm := inMsg("bob@acme.example", strings.Join(hostile, "\n"))
	f.addCase(newCase("acme", "text payloads", "bob@acme.example"), tm)

	var batch []string
	n := 0
	for _, e := range corpus.Entries(t) {
		if e.Path == corpus.ZeroByte {
			continue
		}
		if ps := walk(corpus.Read(t, e)); ps.html != "" {
			batch = append(batch, ps.html)
			n++
		}
		if len(batch) == 25 {
			add(fmt.Sprintf("corpus batch %d", len(ids)), batch)
			batch = nil
		}
	}
	if len(batch) > 0 {
		add(fmt.Sprintf("corpus batch %d", len(ids)), batch)
	}
	if n < 50 {
		t.Fatalf("only %d HTML mails found in the corpus", n)
	}
	t.Logf("%d corpus HTML mails in %d pages", n, len(ids)-1)

	ev := &events{origin: f.ts.URL}
	if err := chromedp.Listen(ctx, ev.listen); err != nil {
		t.Fatal(err)
	}
	hook := `(() => { for (const f of ["alert", "prompt", "confirm", "print"]) { window[f] = () => { window.__fired = (window.__fired || 0) + 1; }; } })();`
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: hook}); err != nil {
		t.Fatal(err)
	}
	cl := f.client()
	cl.signIn("bob@acme.example")
	u, _ := url.Parse(f.ts.URL)
	for _, c := range cl.hc.Jar.Cookies(u) {
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: f.ts.URL}); err != nil {
			t.Fatal(err)
		}
	}
	pages := []string{"/cases?status=all"}
	for _, id := range append(ids, ids[len(ids)-1]+1) {
		pages = append(pages, fmt.Sprintf("/cases/%d", id))
	}
	for _, p := range pages {
		if err := chromedp.Do(ctx, chromedp.Navigate(f.ts.URL+p)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		fired, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__fired || 0`))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if fired != 0 {
			t.Errorf("%s: %d dialogs called", p, fired)
		}
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, b := range ev.bad {
		t.Errorf("page did: %s", b)
	}
}
