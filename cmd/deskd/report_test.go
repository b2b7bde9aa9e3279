package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
	"deskd/daemon"
	"deskd/store"
)

// writeReportStore creates a store at path with cases whose figures for
// March 2025 are known (Europe/Amsterdam, R11 working hours). Every case
// is closed or waiting on the customer, so the figures do not move with
// the time the test runs.
//
//	1  Acme urgent    4 Mar 09:00, answered 09:30, closed 11:00: 2h, met
//	2  Acme urgent    5 Mar 09:00, closed 6 Mar 12:00: 12h, both tiers missed (R7)
//	3  Acme question 10 Mar 10:00, answered 11 Mar 10:00: 9h, within 3 days (R10)
//	4  Acme change   12 Mar: counted apart (R14)
//	5  Acme machine case: counts nowhere
//	6  Acme medium   31 Mar 18:00 (after hours): starts 1 April (R8)
//	7  Acme urgent    2 Apr: April's
//	8  Globex urgent  6 Jan, closed 7 Jan: missed
//	9  Globex high   10 Feb, closed 14 Feb: missed
//	10 Globex high    3 Mar 09:00, pending 5 Mar 12:00: 21h, paused past both tiers (R11c)
func writeReportStore(t *testing.T, path string) {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	at := func(m time.Month, d, h, min int) time.Time { return time.Date(2025, m, d, h, min, 0, 0, loc).UTC() }
	ev := func(when time.Time, typ string) cases.Event { return cases.Event{At: when, Type: typ} }
	mk := func(customer, plan string, kind cases.Kind, prio cases.Priority, received time.Time, status cases.Status, events ...cases.Event) *cases.Case {
		return &cases.Case{
			Subject: "Case of " + customer, Status: status, Priority: prio, Kind: kind, Customer: customer, Plan: plan,
			Requester: cases.Address{Email: "contact@" + strings.ToLower(customer) + ".example"},
			CreatedAt: received, UpdatedAt: received, ReceivedAt: received,
			Events: append([]cases.Event{ev(received, cases.EventReceived)}, events...),
		}
	}
	machine := mk("Acme", "Premium", "", "", at(time.March, 7, 9, 0), cases.StatusOpen)
	machine.Machine = true
	list := []*cases.Case{
		mk("Acme", "Premium", cases.KindIncident, cases.PriorityUrgent, at(time.March, 4, 9, 0), cases.StatusClosed,
			ev(at(time.March, 4, 9, 30), cases.EventStaffResponse), ev(at(time.March, 4, 11, 0), cases.EventClosed)),
		mk("Acme", "Premium", cases.KindIncident, cases.PriorityUrgent, at(time.March, 5, 9, 0), cases.StatusClosed,
			ev(at(time.March, 5, 10, 0), cases.EventStaffResponse), ev(at(time.March, 6, 12, 0), cases.EventClosed)),
		mk("Acme", "Premium", cases.KindQuestion, "", at(time.March, 10, 10, 0), cases.StatusClosed,
			ev(at(time.March, 11, 10, 0), cases.EventStaffResponse), ev(at(time.March, 11, 10, 0), cases.EventClosed)),
		mk("Acme", "Premium", cases.KindChange, "", at(time.March, 12, 10, 0), cases.StatusOpen),
		machine,
		mk("Acme", "Premium", "", cases.PriorityMedium, at(time.March, 31, 18, 0), cases.StatusPending,
			ev(at(time.April, 1, 9, 0), cases.EventStaffResponse), ev(at(time.April, 1, 9, 0), cases.EventPending)),
		mk("Acme", "Premium", cases.KindIncident, cases.PriorityUrgent, at(time.April, 2, 9, 0), cases.StatusClosed,
			ev(at(time.April, 2, 9, 5), cases.EventStaffResponse), ev(at(time.April, 2, 10, 0), cases.EventClosed)),
		mk("Globex", "Basic", cases.KindIncident, cases.PriorityUrgent, at(time.January, 6, 9, 0), cases.StatusClosed,
			ev(at(time.January, 6, 10, 0), cases.EventStaffResponse), ev(at(time.January, 7, 12, 0), cases.EventClosed)),
		mk("Globex", "Basic", cases.KindIncident, cases.PriorityHigh, at(time.February, 10, 9, 0), cases.StatusClosed,
			ev(at(time.February, 10, 10, 0), cases.EventStaffResponse), ev(at(time.February, 14, 12, 0), cases.EventClosed)),
		mk("Globex", "Basic", cases.KindIncident, cases.PriorityHigh, at(time.March, 3, 9, 0), cases.StatusPending,
			ev(at(time.March, 3, 10, 0), cases.EventStaffResponse), ev(at(time.March, 5, 12, 0), cases.EventPending)),
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *store.Tx) error {
		for _, c := range list {
			id, err := tx.NextCaseID()
			if err != nil {
				return err
			}
			c.ID = id
			if err := tx.PutCase(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// reportJSON is the part of `deskd report --format json` the tests read.
type reportJSON struct {
	Month     string `json:"month"`
	AsOf      string `json:"as_of"`
	Customers []struct {
		Customer  string
		Plan      string
		Verdict   string
		Incidents []struct {
			Priority        string
			Cases, Resolved int
			Open            int
			Tier1, Tier2    struct{ Met, Known, Pending int }
			FirstResponse   struct{ Met, Known int } `json:"first_response"`
		}
		Questions struct {
			Cases, Answered int
			Tier1           struct{ Met, Known int }
		}
		Changes int
		Missed  []struct {
			ID     uint64
			Target string
			Over   struct{ Seconds int64 }
			Open   bool
		}
		Compensation struct {
			MissedMonths    int `json:"missed_months"`
			DiscountPercent int `json:"discount_percent"`
		}
		History []struct {
			Month   string
			Cases   int
			Verdict string
		}
	}
}

// checkMarch checks every figure of the March 2025 report of
// writeReportStore's cases.
func checkMarch(t *testing.T, out string) {
	t.Helper()
	var r reportJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Month != "2025-03" || len(r.Customers) != 2 || r.Customers[0].Customer != "Acme" || r.Customers[1].Customer != "Globex" {
		t.Fatalf("report: %+v", r)
	}
	acme, globex := r.Customers[0], r.Customers[1]
	u := acme.Incidents[0]
	if u.Priority != "urgent" || u.Cases != 2 || u.Resolved != 2 || u.Tier1.Met != 1 || u.Tier1.Known != 2 || u.Tier2.Met != 1 || u.FirstResponse.Met != 2 {
		t.Errorf("Acme urgent (R7, R9): %+v", u)
	}
	if m := acme.Incidents[2]; m.Cases != 0 {
		t.Errorf("Acme medium: the case received 31 March 18:00 starts in April (R8): %+v", m)
	}
	if acme.Questions.Cases != 1 || acme.Questions.Answered != 1 || acme.Questions.Tier1.Met != 1 {
		t.Errorf("Acme questions (R10): %+v", acme.Questions)
	}
	if acme.Changes != 1 || acme.Verdict != "missed" {
		t.Errorf("Acme changes (R14) %d, verdict %s", acme.Changes, acme.Verdict)
	}
	if len(acme.Missed) != 2 || acme.Missed[0].ID != 2 || acme.Missed[0].Target != "resolution" || acme.Missed[0].Over.Seconds != 8*3600 ||
		acme.Missed[1].Target != "resolution_tier2" || acme.Missed[1].Over.Seconds != 6*3600 {
		t.Errorf("Acme missed: %+v", acme.Missed)
	}
	if acme.Compensation.MissedMonths != 1 || acme.Compensation.DiscountPercent != 0 {
		t.Errorf("Acme R13: %+v", acme.Compensation)
	}
	h := globex.Incidents[1]
	if h.Cases != 1 || h.Open != 1 || h.Tier1.Known != 1 || h.Tier1.Met != 0 || h.Tier2.Known != 1 {
		t.Errorf("Globex high, pending past both tiers (R11c): %+v", h)
	}
	if len(globex.Missed) != 2 || globex.Missed[0].ID != 10 || !globex.Missed[0].Open || globex.Missed[0].Over.Seconds != 12*3600 {
		t.Errorf("Globex missed: %+v", globex.Missed)
	}
	// January, February and March missed: the meeting and two follow-ups
	// without progress, 5% due (R13).
	if globex.Compensation.MissedMonths != 3 || globex.Compensation.DiscountPercent != 5 {
		t.Errorf("Globex R13: %+v", globex.Compensation)
	}
	if n := len(globex.History); n != 12 || globex.History[11].Month != "2025-03" || globex.History[9].Verdict != "missed" || globex.History[8].Verdict != "no cases" {
		t.Errorf("Globex history: %+v", globex.History)
	}
}

// `deskd report` on a stopped store, in every format, to standard output
// and to a file; usage and configuration errors exit 2 and 78.
func TestReportCLIStoppedStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deskd.db")
	writeReportStore(t, path)
	cfg := filepath.Join(dir, "absent.yaml") // the defaults: Europe/Amsterdam, R11
	reportCLI := func(args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := runCLI(t, append([]string{"report", "--month", "2025-03", "--store", path, "--config", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("deskd report %v: exit %d\n%s%s", args, code, stdout, stderr)
		}
		return stdout, stderr
	}

	out, stderr := reportCLI("--format", "json")
	checkMarch(t, out)
	if !strings.Contains(stderr, "read 10/10 cases") {
		t.Errorf("progress on stderr: %q", stderr)
	}

	text, _ := reportCLI()
	for _, want := range []string{"service report March 2025", "== Acme (Premium): missed ==", "== Globex (Basic): missed ==",
		"urgent    2      2         0", "5% discount due", "Change requests (R14, in none of the figures above): 1", "#2    incident  urgent    resolution, 90% tier (R7)"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}

	csvOut, _ := reportCLI("--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil || len(recs) != 1+2*(5+1+1+12+1)+4 {
		t.Errorf("csv: %v, %d records", err, len(recs))
	}

	file := filepath.Join(dir, "acme.html")
	msg, _ := reportCLI("--format", "html", "--customer", "Acme", "--out", file)
	page, err := os.ReadFile(file)
	if err != nil || !strings.Contains(msg, "wrote the html report of 2025-03 (1 customers)") {
		t.Fatalf("--out: %v, %q", err, msg)
	}
	if !bytes.Contains(page, []byte("<svg")) || bytes.Contains(page, []byte("Globex")) || bytes.Contains(page, []byte("http")) {
		t.Errorf("acme.html: %d bytes, svg %v, Globex %v", len(page), bytes.Contains(page, []byte("<svg")), bytes.Contains(page, []byte("Globex")))
	}

	// Errors: an unknown customer (1), flags (2), a calendar the
	// configuration cannot build (78), --mail-to without a daemon (1).
	if _, errOut, code := runCLI(t, "report", "--month", "2025-03", "--store", path, "--config", cfg, "--customer", "Nobody"); code != exitFail || !strings.Contains(errOut, `no cases of customer "Nobody"`) {
		t.Errorf("unknown customer: exit %d, %q", code, errOut)
	}
	for _, args := range [][]string{
		{},
		{"--month", "2025-13"},
		{"--month", "March"},
		{"--month", "2025-03", "--format", "pdf"},
		{"--month", "2025-03", "stray"},
		{"--month", "2025-03", "--mail-to", "x@example.test", "--out", filepath.Join(dir, "x")},
		{"--month", "2025-03", "--out", dir},
	} {
		if _, errOut, code := runCLI(t, append([]string{"report", "--store", path, "--config", cfg}, args...)...); code != exitUsage {
			t.Errorf("deskd report %v: exit %d, want %d\n%s", args, code, exitUsage, errOut)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("sla:\n  holidays:\n    skip: [midsummer]\n"), 0o600)
	if _, errOut, code := runCLI(t, "report", "--month", "2025-03", "--store", path, "--config", bad); code != exitConfig {
		t.Errorf("bad holiday key: exit %d, want %d\n%s", code, exitConfig, errOut)
	}
	_, errOut, code := runCLI(t, "report", "--month", "2025-03", "--config", cfg, "--socket", filepath.Join(dir, "none.sock"), "--mail-to", "boss@acme.example")
	if code != exitFail || !strings.Contains(errOut, "deskd is not running") {
		t.Errorf("--mail-to without a daemon: exit %d, %q", code, errOut)
	}
}

// Through a running daemon's admin socket `deskd report` gives the same
// report as from its stopped store, and --mail-to queues one mail (HTML
// and text, from the support address) that the outbox delivers.
func TestReportCLIThroughDaemon(t *testing.T) {
	_, smtpSrv, dir, configPath := startPeers(t)
	writeReportStore(t, filepath.Join(dir, "deskd.db"))
	var logs syncBuffer
	cmd := deskdProcess(t, &logs, "run", "--config", configPath)
	defer cmd.Process.Kill()
	socket := filepath.Join(dir, "admin.sock")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var pong string
		if daemon.AdminCall(socket, daemon.AdminRequest{Op: "ping"}, &pong) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never answered on its socket\n%s", logs.String())
		}
	}

	live, stderr, code := runCLI(t, "report", "--month", "2025-03", "--format", "json", "--config", configPath)
	if code != 0 {
		t.Fatalf("report via the socket: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "cases") {
		t.Errorf("the daemon did the work, yet the CLI showed progress: %q", stderr)
	}
	checkMarch(t, live)

	stdout, stderr, code := runCLI(t, "report", "--month", "2025-03", "--customer", "Globex", "--mail-to", "Boss@Globex.example", "--config", configPath)
	if code != 0 || !strings.Contains(stdout, "queued \"Example Support: service report March 2025, Globex\" (1 customers) to boss@globex.example") {
		t.Fatalf("--mail-to: exit %d\n%s%s", code, stdout, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var sent []byte
	for sent == nil {
		mails, err := smtpSrv.WaitFor(ctx, 1)
		if err != nil {
			t.Fatalf("%v\n%s", err, logs.String())
		}
		for _, m := range mails {
			if len(m.To) == 1 && m.To[0] == "boss@globex.example" {
				sent = m.Data
			}
		}
		if sent == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	mr, err := gomail.CreateReader(bytes.NewReader(sent))
	if err != nil {
		t.Fatal(err)
	}
	if from, _ := mr.Header.AddressList("From"); len(from) != 1 || from[0].Address != "support@example.test" {
		t.Errorf("From %v", from)
	}
	if v := mr.Header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q (RFC 3834 §5)", v)
	}
	parts := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		ct, _, _ := p.Header.(*gomail.InlineHeader).ContentType()
		b := new(bytes.Buffer)
		b.ReadFrom(p.Body)
		parts[ct] = b.String()
	}
	if !strings.Contains(parts["text/plain"], "== Globex (Basic): missed ==") || strings.Contains(parts["text/plain"], "Acme") {
		t.Errorf("text part:\n%s", parts["text/plain"])
	}
	if !strings.Contains(parts["text/html"], "<svg") || !strings.Contains(parts["text/html"], "5% discount due") {
		t.Errorf("html part: %d bytes", len(parts["text/html"]))
	}
	if _, errOut, code := runCLI(t, "report", "--month", "2025-03", "--mail-to", "not an address", "--config", configPath); code != exitFail || !strings.Contains(errOut, "not an address deskd can send to") {
		t.Errorf("bad --mail-to: exit %d, %q", code, errOut)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	stopped, _, code := runCLI(t, "report", "--month", "2025-03", "--format", "json", "--config", configPath)
	if code != 0 {
		t.Fatalf("report from the stopped store: exit %d", code)
	}
	var a, b map[string]any
	json.Unmarshal([]byte(live), &a)
	json.Unmarshal([]byte(stopped), &b)
	delete(a, "as_of")
	delete(b, "as_of")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("the daemon's report differs from the stopped store's:\n%s\nvs\n%s", live, stopped)
	}
}
