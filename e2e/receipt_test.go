package e2e

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"deskd/daemon"
)

// lockedLog keeps what the daemon logs while the test reads it.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// R11b on Dovecot: the SLA clock starts at the server's INTERNALDATE, to
// the second, never at the sender's Date: (days later, or years in the
// future). An APPEND dated in the future is dated now by Dovecot. The
// deadlines are worked out by hand from SLA.md (R7 Medium by default, R9,
// R11 08:00-17:00 Europe/Amsterdam, CET = UTC+1 in November 2026).
func TestReceiptTimeIsInternalDate(t *testing.T) {
	stack := newStack(t)
	w := &world{t: t, stack: stack, opts: options(t, stack, t.TempDir())}
	var logs lockedLog
	w.opts.Log = slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &logs), &slog.HandlerOptions{Level: slog.LevelWarn}))

	utc := func(s string) time.Time {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	type want struct {
		received                      time.Time
		firstDue, resDue, resDueTier2 string // RFC 3339 UTC; "" = not checked
	}
	c := stack.LoginIMAP(t, support)
	appendAt := func(raw string, at time.Time) uint32 {
		t.Helper()
		b := []byte(strings.ReplaceAll(raw, "\n", "\r\n"))
		cmd := c.Append("INBOX", int64(len(b)), &imap.AppendOptions{Time: at})
		if _, err := cmd.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := cmd.Wait()
		if err != nil {
			t.Fatalf("append dated %v: %v", at, err)
		}
		return uint32(data.UID)
	}
	dated := func(from, subject, id string, date time.Time) string {
		return "From: " + from + "\nTo: " + support + "\nSubject: " + subject + "\nMessage-ID: <" + id + ">\n" +
			"Date: " + date.Format(time.RFC1123Z) + "\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nDe kassa doet het niet.\n"
	}

	wants := map[uint32]want{}
	// Anna (Premium, R9 4 h): received Tuesday 10:15:27 Amsterdam, but
	// her Date: says three days later.
	t0 := utc("2026-11-17T09:15:27Z")
	wants[appendAt(dated("Anna Jansen <"+anna+">", "Kassa", "r11b-1@jansen.test", t0.Add(72*time.Hour)), t0)] = want{
		received:    t0,
		firstDue:    "2026-11-17T13:15:27Z", // +4 working hours, same day
		resDue:      "2026-11-24T09:15:27Z", // Medium, 1 week = 5 working days
		resDueTier2: "2026-12-01T09:15:27Z", // 2 weeks
	}
	// Bob (Business, R9 8 h): received Wednesday 16:59:59, one second
	// before the working day ends; his Date: lies in 2031.
	t1 := utc("2026-11-18T15:59:59Z")
	wants[appendAt(dated("Bob <"+bob+">", "Printer", "r11b-2@acme.test", utc("2031-01-01T12:00:00Z")), t1)] = want{
		received:    t1,
		firstDue:    "2026-11-19T14:59:59Z", // 1 s on Wednesday, 7:59:59 on Thursday
		resDue:      "2026-11-25T15:59:59Z",
		resDueTier2: "2026-12-02T15:59:59Z",
	}
	// An APPEND dated 30 days ahead: Dovecot does not keep a date in the
	// future, it dates the mail at the APPEND (its own clock). So on
	// Dovecot, skew shows only as Dovecot's clock itself running ahead;
	// deskd's rule for an INTERNALDATE after its fetch (start the clock at
	// the fetch, warn) is tested against go-imap's server, which keeps any
	// date: mail.TestSourceReceiptTime.
	skewed := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	beforeAppend := time.Now().Truncate(time.Second)
	skewedUID := appendAt(dated("Anna Jansen <"+anna+">", "Scherm", "r11b-3@jansen.test", time.Now()), skewed)
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(skewedUID)), &imap.FetchOptions{InternalDate: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch INTERNALDATE: %v, %d messages", err, len(msgs))
	}
	dovecotDate := msgs[0].InternalDate
	if dovecotDate.Before(beforeAppend) || dovecotDate.After(time.Now()) {
		t.Fatalf("Dovecot dated an APPEND for %v at %v; this test assumes it dates it at the APPEND", skewed, dovecotDate)
	}
	w.start()
	reps := w.waitReports(3, 60*time.Second)
	rfc := func(p *time.Time) string {
		if p == nil {
			return "null"
		}
		return p.UTC().Format(time.RFC3339)
	}
	for _, r := range reps {
		var det daemon.CaseDetail
		if err := daemon.AdminCall(w.opts.AdminSocket, daemon.AdminRequest{Op: "cases.show", ID: r.CaseID}, &det); err != nil {
			t.Fatal(err)
		}
		if r.UID == skewedUID {
			if !det.ReceivedAt.Equal(dovecotDate) {
				t.Errorf("case %d: received_at %v, want Dovecot's INTERNALDATE %v", det.ID, det.ReceivedAt, dovecotDate)
			}
			continue
		}
		wt, ok := wants[r.UID]
		if !ok {
			t.Fatalf("decision for unknown uid %d: %+v", r.UID, r)
		}
		delete(wants, r.UID)
		if !det.ReceivedAt.Equal(wt.received) {
			t.Errorf("case %d: received_at %v, want INTERNALDATE %v", det.ID, det.ReceivedAt, wt.received)
		}
		if got := rfc(det.FirstResponseDue); got != wt.firstDue {
			t.Errorf("case %d (%s): first response due %s, want %s", det.ID, det.Plan, got, wt.firstDue)
		}
		if got := rfc(det.ResolutionDue); got != wt.resDue {
			t.Errorf("case %d (%s %s): resolution due %s, want %s", det.ID, det.Priority, det.Kind, got, wt.resDue)
		}
		if got := rfc(det.ResolutionDueTier2); got != wt.resDueTier2 {
			t.Errorf("case %d (%s %s): resolution tier 2 due %s, want %s", det.ID, det.Priority, det.Kind, got, wt.resDueTier2)
		}
	}
	if len(wants) != 0 {
		t.Errorf("no decision for %d mails", len(wants))
	}
	w.stop()
	if strings.Contains(logs.String(), "R11b") {
		t.Errorf("an R11b warning without an INTERNALDATE in the future, log:\n%s", logs.String())
	}
}
