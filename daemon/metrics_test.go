package daemon

import (
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"deskd/cases"
	"deskd/mail"
	"deskd/store"
)

// scrape GETs /metrics and parses the text exposition.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpDo(t, "GET", base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// findMetric returns the sample of family name whose labels include the
// given name, value pairs (nil if none).
func findMetric(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	fam := fams[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// metricValue is the value of a counter or gauge sample; it fails the test
// when there is none.
func metricValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := findMetric(fams, name, labels...)
	switch {
	case m == nil:
		t.Fatalf("no sample %s%v", name, labels)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

// A real daemon ingests a new case, its duplicate, an oversized mail
// (quarantined) and a second case, while the relay refuses one attempt;
// /metrics on the real listener then reports exactly that.
func TestMetricsExposition(t *testing.T) {
	h, clock := newOpsHarness(t, func(o *Options) {
		o.MaxMessageBytes = 2048
		o.IMAP.MaxBytes = 2048
		o.GiveUpAfter = 1000 * time.Hour
	}, nil)
	base := h.httpURL()
	h.smtp.FailNext(1)
	first := question("m1@jansen.example", "Anna <anna@jansen.example>", "Kassa kapot", "")
	h.deliver(first)
	h.deliver(first)
	h.deliver(question("big@acme.example", "bob@acme.example", "Huge", "") + strings.Repeat("x", 5000) + "\n")
	h.deliver(question("m2@acme.example", "bob@acme.example", "Printer", ""))
	reps := h.waitReports(4)
	for i, want := range []string{string(cases.OutcomeNewCase), "duplicate", "quarantine", string(cases.OutcomeNewCase)} {
		if reps[i].Decision != want {
			t.Fatalf("decision %d = %+v, want %s", i+1, reps[i], want)
		}
	}
	h.waitMails(2)
	// The sink accepts before the sender records the attempt: wait for
	// the records (1 refused + 2 accepted).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		h.mu.Lock()
		n := len(h.sent)
		h.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d send attempts recorded, want 3", n)
		}
	}
	h.waitInboxEmpty()

	// From here the clock stands still, so ages are exact.
	now := clock.now().Truncate(time.Second)
	clock.freeze(now)
	err := h.d.DB().Update(func(tx *store.Tx) error {
		// Staff set a priority on case 2 and it waits on the customer.
		c, err := tx.Case(reps[3].CaseID)
		if err != nil {
			return err
		}
		c.Priority, c.Status = cases.PriorityHigh, cases.StatusPending
		if err := tx.PutCase(c); err != nil {
			return err
		}
		// A mail queued 90 minutes ago whose next attempt is tomorrow.
		return tx.Enqueue(&store.OutboxEntry{
			CaseID: 1, Kind: "ack", EnvelopeFrom: support, Recipients: []string{"anna@jansen.example"},
			Raw: []byte("Subject: later\r\n\r\nlater\r\n"), CreatedAt: now.Add(-90 * time.Minute), NextAttempt: now.Add(24 * time.Hour),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	h.d.slaWarned("first_response")
	h.d.slaBreached("resolution")
	h.d.slaBreached("resolution")
	h.d.backupDone(now.Add(-time.Hour), true)
	h.d.backupDone(now, false)

	fams := scrape(t, base)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"deskd_messages_ingested_total", []string{"decision", "new_case"}, 2},
		{"deskd_messages_ingested_total", []string{"decision", "duplicate"}, 1},
		{"deskd_messages_ingested_total", []string{"decision", "quarantine"}, 1},
		{"deskd_messages_ingested_total", []string{"decision", "reply"}, 0}, // present from the start
		{"deskd_quarantined_messages", nil, 1},
		{"deskd_outbox_queued", nil, 1},
		{"deskd_outbox_oldest_age_seconds", nil, 5400},
		{"deskd_mails_sent_total", []string{"kind", "ack"}, 2},
		{"deskd_send_failures_total", []string{"kind", "ack", "final", "false"}, 1},
		{"deskd_imap_reconnects_total", nil, 0},
		{"deskd_open_cases", []string{"priority", "unset", "status", "open"}, 1},
		{"deskd_open_cases", []string{"priority", "high", "status", "pending"}, 1},
		{"deskd_open_cases", []string{"priority", "urgent", "status", "open"}, 0},
		{"deskd_open_cases", []string{"priority", "unset", "status", "pending"}, 0},
		{"deskd_sla_warnings_total", []string{"kind", "first_response"}, 1},
		{"deskd_sla_breaches_total", []string{"kind", "resolution"}, 2},
		{"deskd_last_backup_timestamp_seconds", nil, float64(now.Add(-time.Hour).Unix())},
		{"deskd_last_backup_age_seconds", nil, 3600},
		{"deskd_backups_total", []string{"result", "ok"}, 1},
		{"deskd_backups_total", []string{"result", "failed"}, 1},
		{"deskd_build_info", []string{"version", "1.2.3-test"}, 1},
	} {
		if got := metricValue(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if m := findMetric(fams, "deskd_send_failures_total", "final", "true"); m != nil {
		t.Errorf("a final send failure was counted: %v", m)
	}
	if n := len(fams["deskd_open_cases"].GetMetric()); n != 10 {
		t.Errorf("deskd_open_cases has %d series, want 10 (5 priorities × open, pending)", n)
	}
	hist := findMetric(fams, "deskd_ingest_duration_seconds")
	if hist == nil || hist.Histogram == nil {
		t.Fatal("no deskd_ingest_duration_seconds histogram")
	}
	if n := hist.Histogram.GetSampleCount(); n != 4 {
		t.Errorf("deskd_ingest_duration_seconds count = %d, want 4", n)
	}
	// Every decision is at least one store write (plus the outbox's
	// marks and the indexes' refreshes), each timed (issue 11).
	writes := findMetric(fams, "deskd_store_write_duration_seconds")
	if writes == nil || writes.Histogram == nil {
		t.Fatal("no deskd_store_write_duration_seconds histogram")
	}
	if n := writes.Histogram.GetSampleCount(); n < 4 {
		t.Errorf("deskd_store_write_duration_seconds count = %d, want at least the 4 decisions", n)
	}
	ok := h.d.imapState().ok
	if ts := metricValue(t, fams, "deskd_imap_last_success_timestamp_seconds"); ok.IsZero() || ts <= 0 || ts > float64(now.Unix()+1) { // now was truncated to the second
		t.Errorf("deskd_imap_last_success_timestamp_seconds = %v (last success %v, now %v)", ts, ok, now)
	}
	if s := metricValue(t, fams, "deskd_imap_seconds_since_last_success"); s < 0 {
		t.Errorf("deskd_imap_seconds_since_last_success = %v", s)
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s: Go/process collectors missing", name)
		}
	}
	// The SLA counters are fed by the escalation loop (sla_test.go counts
	// them); here only their presence with help text.
	for _, name := range []string{"deskd_sla_warnings_total", "deskd_sla_breaches_total"} {
		if help := fams[name].GetHelp(); !strings.Contains(help, "by target") {
			t.Errorf("%s HELP %q", name, help)
		}
	}
}

// Each daemon has its own registry: two in one process both serve their
// own figures (a global registry would panic on the second registration).
func TestMetricsPerDaemon(t *testing.T) {
	a, _ := newOpsHarness(t, nil, nil)
	b, _ := newOpsHarness(t, nil, nil)
	a.deliver(question("one@acme.example", "bob@acme.example", "One", ""))
	a.waitReports(1)
	fa, fb := scrape(t, a.httpURL()), scrape(t, b.httpURL())
	if v := metricValue(t, fa, "deskd_messages_ingested_total", "decision", "new_case"); v != 1 {
		t.Errorf("daemon a: %v new cases", v)
	}
	if v := metricValue(t, fb, "deskd_messages_ingested_total", "decision", "new_case"); v != 0 {
		t.Errorf("daemon b: %v new cases, want 0", v)
	}
}

// deskd_imap_reconnects_total counts failed sessions: a failing scan round
// and the session's end report the same error, which is one reconnect;
// every failed connection attempt after it is one more.
func TestIMAPReconnectCount(t *testing.T) {
	d, err := Open(Options{StorePath: filepath.Join(t.TempDir(), "deskd.db"), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.DB().Close()
	scanErr, dial1, dial2, eof := errors.New("fetch: broken pipe"), errors.New("dial: refused"), errors.New("dial: refused"), errors.New("EOF")
	for _, st := range []mail.SourceStatus{
		{Connected: true},
		{Err: scanErr}, // the round
		{Err: scanErr}, // the session's end: the same failure
		{Err: dial1},
		{Err: dial2},
		{Connected: true},
		{Err: eof},
		{Err: eof}, // the session's end
		{Err: eof}, // the next session failing with the same value
	} {
		d.observeSource(st)
	}
	fams, err := d.ops.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "deskd_imap_reconnects_total" {
			if got := f.Metric[0].GetCounter().GetValue(); got != 5 {
				t.Errorf("deskd_imap_reconnects_total = %v, want 5", got)
			}
			return
		}
	}
	t.Error("no deskd_imap_reconnects_total")
}
