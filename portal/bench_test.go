package portal

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"deskd/cases"
	"deskd/store"
)

// BenchmarkPages times every portal page server-side (R16: p99 under
// 50 ms) for a named contact whose customer has 10,000 cases, one of them
// with 200 messages. Run: go test -run '^$' -bench Pages ./portal/
func BenchmarkPages(b *testing.B) {
	f := newFixture(b)
	const n = 10000
	err := f.db.Update(func(tx *store.Tx) error {
		for i := 1; i <= n; i++ {
			c := newCase("acme", fmt.Sprintf("Case %d", i), fmt.Sprintf("user%d@acme.example", i%300))
			c.ID = uint64(i)
			c.UpdatedAt = t0.Add(time.Duration(i) * time.Minute)
			msgs := 2
			if i == 1 {
				msgs = 200
			}
			for j := 0; j < msgs; j++ {
				m := inMsg(c.Requester.Email, "Hello,\n\nsomething is broken again.\n\n> quoted\n> history")
				if j%2 == 1 {
					m = outMsg(string(cases.MailRelay), "Hello,\n\nplease try again.", cases.VisibilityCustomer)
				}
				m.Key = fmt.Sprintf("mid:%d.%d@bench", i, j)
				m.CaseID = c.ID
				if err := tx.PutMessage(m, []byte("From: x@acme.example\r\nContent-Type: text/plain\r\n\r\n"+m.Text)); err != nil {
					return err
				}
				c.MessageKeys = append(c.MessageKeys, m.Key)
			}
			if err := tx.PutCase(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	cl := f.client()
	cl.signIn("ann@acme.example")
	h := f.srv.Handler()
	cookies := cl.hc.Jar.Cookies(mustURL(f.ts.URL))
	for _, p := range []struct{ name, path string }{
		{"list_all_10k", "/cases?status=all"},
		{"list_page_100", "/cases?status=all&page=100"},
		{"case_200_messages", "/cases/1"},
		{"case_2_messages", "/cases/5000"},
		{"signin_form", "/signin"},
	} {
		b.Run(p.name, func(b *testing.B) {
			var ds []time.Duration
			for b.Loop() {
				r := httptest.NewRequest("GET", p.path, nil)
				for _, c := range cookies {
					r.AddCookie(c)
				}
				w := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(w, r)
				ds = append(ds, time.Since(start))
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d", p.path, w.Code)
				}
			}
			b.ReportMetric(float64(percentile(ds, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(50, "limit-ms")
		})
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }
