package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
	"deskd/daemon"
	"deskd/internal/peers"
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
	// The report reads the cases of the months it shows (the store's
	// report index), so the count has no total.
	if !regexp.MustCompile(`read [1-9][0-9]* cases`).MatchString(stderr) {
		t.Errorf("progress on stderr: %q", stderr)
	}

	text, _ := reportCLI("--lang", "en")
	for _, want := range []string{"service report March 2025", "== Acme (Premium): missed ==", "== Globex (Basic): missed ==",
		"urgent    2      2         0", "5% discount due", "Change requests (R14, in none of the figures above): 1", "#2    incident  urgent    resolution, 90% tier (R7)"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	// Without --lang and without a configured customer: the desk's
	// default language, Dutch unless support.default_language says not.
	text, _ = reportCLI()
	for _, want := range []string{"Support: servicerapportage maart 2025", "== Acme (Premium): niet gehaald ==", "== Globex (Basic): niet gehaald ==",
		"Urgent      2      2         0", "5% korting op de volgende maandfactuur", "Wijzigingsverzoeken (R14, tellen in geen van de cijfers hierboven mee): 1",
		"#2    incident  Urgent      oplostijd, 90%-norm (R7)", "50,0%"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dutch text lacks %q:\n%s", want, text)
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
	if !bytes.Contains(page, []byte(`<html lang="nl">`)) || !bytes.Contains(page, []byte("Servicerapportage maart 2025 – Acme")) {
		t.Errorf("acme.html is not the Dutch page")
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
		{"--month", "2025-03", "--lang", "de"},
		{"--month", "2025-03", "--lang", ""},
		{"--month", "2025-03", "--lang", "fr-NL"},
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

// The language of a report for people: --lang when given (any case),
// else the configured language of the customer --customer names, else
// support.default_language (also for a report on all customers). CSV and
// JSON do not change with it.
func TestReportCLILanguage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deskd.db")
	writeReportStore(t, path)
	cfg := filepath.Join(dir, "deskd.yaml")
	os.WriteFile(cfg, []byte(`support:
  name: Example Support
  default_language: en
customers:
  - name: Acme
    plan: Premium
    language: nl
    domains: [acme.example]
  - name: Globex
    plan: Basic
    domains: [globex.example]
`), 0o600)
	for _, tc := range []struct {
		args []string
		want string // the first line
	}{
		{nil, "Example Support: service report March 2025"},
		{[]string{"--customer", "Acme"}, "Example Support: servicerapportage maart 2025"},
		{[]string{"--customer", "Globex"}, "Example Support: service report March 2025"}, // no language of its own: the default
		{[]string{"--customer", "Acme", "--lang", "en"}, "Example Support: service report March 2025"},
		{[]string{"--lang", "NL"}, "Example Support: servicerapportage maart 2025"},
		{[]string{"--customer", "Globex", "--lang", "nl"}, "Example Support: servicerapportage maart 2025"},
	} {
		out, errOut, code := runCLI(t, append([]string{"report", "--month", "2025-03", "--store", path, "--config", cfg}, tc.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", tc.args, code, errOut)
		}
		if first, _, _ := strings.Cut(out, "\n"); first != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, first, tc.want)
		}
	}
	page, _, code := runCLI(t, "report", "--month", "2025-03", "--store", path, "--config", cfg, "--customer", "Acme", "--format", "html")
	if code != 0 || !strings.Contains(page, `<html lang="nl">`) || !strings.Contains(page, "Eerste reactie ≤ 4u") {
		t.Errorf("Acme's page: exit %d, not Dutch", code)
	}
	for _, format := range []string{"csv", "json"} {
		nl, _, _ := runCLI(t, "report", "--month", "2025-03", "--store", path, "--config", cfg, "--format", format, "--lang", "nl")
		en, _, _ := runCLI(t, "report", "--month", "2025-03", "--store", path, "--config", cfg, "--format", format, "--lang", "en")
		if format == "json" { // as_of is the time of the run
			nl, en = dropAsOf(t, nl), dropAsOf(t, en)
		}
		if nl != en || nl == "" {
			t.Errorf("%s differs between --lang nl and --lang en", format)
		}
	}
}

func dropAsOf(t *testing.T, doc string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "as_of")
	b, _ := json.Marshal(m)
	return string(b)
}

// Through a running daemon's admin socket `deskd report` gives the same
// report as from its stopped store, and --mail-to queues one mail (HTML
// and text, from the support address, in the customer's language) that
// the outbox delivers.
func TestReportCLIThroughDaemon(t *testing.T) {
	_, smtpSrv, dir, configPath := startPeers(t)
	writeReportStore(t, filepath.Join(dir, "deskd.db"))
	// The desk writes English; Globex reads Dutch, Acme English.
	conf := string(mustRead(t, configPath))
	conf = strings.Replace(conf, "  name: Example Support\n", "  name: Example Support\n  default_language: en\n", 1) + `customers:
  - name: Acme
    plan: Premium
    language: en
    domains: [acme.example]
  - name: Globex
    plan: Basic
    language: nl
    domains: [globex.example]
`
	if err := os.WriteFile(configPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
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

	// Globex is configured Dutch: without --lang its report mail is Dutch,
	// words, subject, page and Content-Language (RFC 3282) alike.
	stdout, stderr, code := runCLI(t, "report", "--month", "2025-03", "--customer", "Globex", "--mail-to", "Boss@Globex.example", "--config", configPath)
	if code != 0 || !strings.Contains(stdout, "queued \"Example Support: servicerapportage maart 2025, Globex\" (1 customers) to boss@globex.example") {
		t.Fatalf("--mail-to: exit %d\n%s%s", code, stdout, stderr)
	}
	sent := waitReportMail(t, smtpSrv, "boss@globex.example", &logs)
	if from, _ := sent.header.AddressList("From"); len(from) != 1 || from[0].Address != "support@example.test" {
		t.Errorf("From %v", from)
	}
	if v := sent.header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q (RFC 3834 §5)", v)
	}
	if subj, _ := sent.header.Subject(); subj != "Example Support: servicerapportage maart 2025, Globex" || sent.header.Get("Content-Language") != "nl" {
		t.Errorf("Subject %q, Content-Language %q", subj, sent.header.Get("Content-Language"))
	}
	text, html := sent.parts["text/plain"], sent.parts["text/html"]
	if !strings.Contains(text, "== Globex (Basic): niet gehaald ==") || !strings.Contains(text, "Hoog        1") || strings.Contains(text, "Acme") {
		t.Errorf("text part:\n%s", text)
	}
	if !strings.Contains(html, "<svg") || !strings.Contains(html, `<html lang="nl">`) || !strings.Contains(html, "5% korting op de volgende maandfactuur") {
		t.Errorf("html part: %d bytes\n%s", len(html), html)
	}
	for _, english := range []string{"missed", "Incidents", "Questions", "discount", "service report", "Priority", "within"} {
		if strings.Contains(text, english) || strings.Contains(html, ">"+english) || strings.Contains(html, english+" ") {
			t.Errorf("the Dutch mail says %q", english)
		}
	}

	// --lang overrides the customer's language.
	if stdout, stderr, code := runCLI(t, "report", "--month", "2025-03", "--customer", "Globex", "--lang", "en", "--mail-to", "en@globex.example", "--config", configPath); code != 0 ||
		!strings.Contains(stdout, "queued \"Example Support: service report March 2025, Globex\"") {
		t.Fatalf("--lang en --mail-to: exit %d\n%s%s", code, stdout, stderr)
	}
	sent = waitReportMail(t, smtpSrv, "en@globex.example", &logs)
	if !strings.Contains(sent.parts["text/plain"], "== Globex (Basic): missed ==") || sent.header.Get("Content-Language") != "en" ||
		!strings.Contains(sent.parts["text/html"], `<html lang="en">`) || !strings.Contains(sent.parts["text/html"], "5% discount due") {
		t.Errorf("--lang en: Content-Language %q, text:\n%s", sent.header.Get("Content-Language"), sent.parts["text/plain"])
	}

	// Another admin client that names no language: the daemon takes the
	// customer's from its own configuration (Globex: Dutch), and the
	// desk's (English) for a report on all customers.
	var res daemon.ReportMailResult
	err := daemon.AdminCall(socket, daemon.AdminRequest{Op: "report.mail", ReportArgs: daemon.ReportArgs{Month: "2025-03", Customer: "Globex", MailTo: "admin@globex.example"}}, &res)
	if err != nil || res.Subject != "Example Support: servicerapportage maart 2025, Globex" {
		t.Fatalf("report.mail without lang: %v, %+v", err, res)
	}
	if sent = waitReportMail(t, smtpSrv, "admin@globex.example", &logs); !strings.Contains(sent.parts["text/plain"], "== Globex (Basic): niet gehaald ==") {
		t.Errorf("Globex's mail:\n%s", sent.parts["text/plain"])
	}
	err = daemon.AdminCall(socket, daemon.AdminRequest{Op: "report.mail", ReportArgs: daemon.ReportArgs{Month: "2025-03", MailTo: "boss@example.test"}}, &res)
	if err != nil || res.Subject != "Example Support: service report March 2025, all customers" {
		t.Fatalf("report.mail of all customers without lang: %v, %+v", err, res)
	}
	err = daemon.AdminCall(socket, daemon.AdminRequest{Op: "report.mail", ReportArgs: daemon.ReportArgs{Month: "2025-03", MailTo: "x@acme.example", Lang: "de"}}, &res)
	if err == nil || !strings.Contains(err.Error(), `unknown language "de"`) {
		t.Errorf("report.mail, lang de: %v", err)
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

// reportMail is a delivered report mail: its header and its parts by
// content type.
type reportMail struct {
	header gomail.Header
	parts  map[string]string
}

// waitReportMail waits for the outbox to deliver a mail to rcpt.
func waitReportMail(t *testing.T, smtpSrv *peers.SMTP, rcpt string, logs *syncBuffer) reportMail {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var sent []byte
	for sent == nil {
		for _, m := range smtpSrv.Mails() {
			if len(m.To) == 1 && m.To[0] == rcpt {
				sent = m.Data
			}
		}
		if sent == nil {
			if time.Now().After(deadline) {
				t.Fatalf("no mail to %s\n%s", rcpt, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	mr, err := gomail.CreateReader(bytes.NewReader(sent))
	if err != nil {
		t.Fatal(err)
	}
	rm := reportMail{header: mr.Header, parts: map[string]string{}}
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		ct, _, _ := p.Header.(*gomail.InlineHeader).ContentType()
		b := new(bytes.Buffer)
		b.ReadFrom(p.Body)
		rm.parts[ct] = b.String()
	}
	return rm
}
