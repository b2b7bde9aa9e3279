package portal

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"deskd/cases"
	"deskd/internal/browser"
)

// TestScreenshots writes the README's picture of the case list to
// $DESKD_PORTAL_SCREENSHOTS (run it by hand: it asserts only that the page
// renders; the picture is for people to look at). The case page's comes
// from the end-to-end run (e2e.TestPortalInChromium): a real conversation
// with a reply sent from the portal.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("DESKD_PORTAL_SCREENSHOTS")
	if dir == "" {
		t.Skip("set DESKD_PORTAL_SCREENSHOTS=docs to write the README's screenshots")
	}
	f := newFixture(t)
	subjects := []string{"Printer on the second floor jams", "VPN drops every hour", "New laptop for Carl", "Invoice PDF does not open"}
	for i, s := range subjects {
		c := newCase("acme", s, "ann@acme.example")
		c.UpdatedAt = t0.Add(time.Duration(i) * time.Hour)
		c.Priority = []cases.Priority{cases.PriorityHigh, cases.PriorityUrgent, "", cases.PriorityLow}[i]
		if i == 2 {
			c.ProposedPriority, c.Kind = cases.PriorityMedium, cases.KindChange
		}
		if i == 3 {
			c.Status = cases.StatusPending
			c.Events = append(c.Events, cases.Event{At: t0.Add(time.Hour), Type: cases.EventPending})
		}
		in := inMsg("ann@acme.example", "Good morning,\n\nThe printer on the second floor jams on every second page since this morning.\n\nKind regards,\nAnn")
		in.From.Name = "Ann Admin"
		ack := outMsg("ack", fmt.Sprintf("Dear Ann,\n\nThank you for your message. We have registered it as case number %d.\n\nKind regards,\nDesk Support", i+1), cases.VisibilityCustomer)
		ack.Key += fmt.Sprint(i)
		relay := outMsg(string(cases.MailRelay), "Hello Ann,\n\nCould you send us a photo of the display when it jams?\n\nPiet\n\n> The printer on the second floor jams", cases.VisibilityCustomer)
		relay.Key += fmt.Sprint(i)
		relay.Date = t0.Add(40 * time.Minute)
		c.Events = append(c.Events, cases.Event{At: t0.Add(40 * time.Minute), Type: cases.EventStaffResponse})
		f.addCase(c, in, ack, relay)
	}
	ctx := browser.New(t)
	cl := f.client()
	cl.signIn("ann@acme.example")
	u, _ := url.Parse(f.ts.URL)
	for _, c := range cl.hc.Jar.Cookies(u) {
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: f.ts.URL}); err != nil {
			t.Fatal(err)
		}
	}
	for name, path := range map[string]string{"portal-list.png": "/cases?status=all&lang=en"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(f.ts.URL+path)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
