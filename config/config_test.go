package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"

	"deskd/sla"
)

const examplePath = "../config.example.yaml"

// isolateEnv blanks every DESKD_ variable deskd reads (viper and Load treat
// an empty variable as unset), so the caller's environment cannot leak in.
func isolateEnv(t *testing.T) {
	t.Helper()
	keys, _ := envKeys()
	for _, k := range keys {
		t.Setenv(EnvName(k), "")
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// minimalYAML is a configuration that validates once the IMAP password is
// given.
const minimalYAML = `
imap:
  host: mail.example.com
  username: support
smtp:
  host: smtp.example.com
support:
  address: support@example.com
`

func loadProblems(t *testing.T, path string) []Problem {
	t.Helper()
	c, err := Load(path)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Load: want *LoadError, got %v (config %v)", err, c != nil)
	}
	if c != nil {
		t.Error("Load returned a config along with its error")
	}
	return le.Problems
}

func hasProblem(problems []Problem, key, substr string) bool {
	for _, p := range problems {
		if p.Key == key && strings.Contains(p.Message, substr) {
			return true
		}
	}
	return false
}

func TestDefault(t *testing.T) {
	c := Default()
	checks := []struct {
		key       string
		got, want any
	}{
		{"imap.port", c.IMAP.Port, 993},
		{"imap.tls", c.IMAP.TLS, TLSImplicit},
		{"imap.mailbox", c.IMAP.Mailbox, "INBOX"},
		{"imap.processed_mailbox", c.IMAP.ProcessedMailbox, "Processed"},
		{"imap.quarantine_mailbox", c.IMAP.QuarantineMailbox, "Quarantine"},
		{"imap.idle", c.IMAP.IDLE, true},
		{"imap.poll_interval", c.IMAP.PollInterval, 5 * time.Minute},
		{"imap.idle_refresh", c.IMAP.IdleRefresh, 25 * time.Minute},
		{"imap.insecure_skip_verify", c.IMAP.InsecureSkipVerify, false},
		{"imap.connect_timeout", c.IMAP.ConnectTimeout, 30 * time.Second},
		{"imap.commit_batch", c.IMAP.CommitBatch, 64},
		{"smtp.tls", c.SMTP.TLS, TLSImplicit},
		{"smtp.port", c.SMTP.Port, 465},
		{"smtp.auth", c.SMTP.Auth, AuthNone},
		{"smtp.give_up_after", c.SMTP.GiveUpAfter, 72 * time.Hour},
		{"smtp.retry_initial", c.SMTP.RetryInitial, time.Minute},
		{"smtp.retry_max", c.SMTP.RetryMax, time.Hour},
		{"smtp.timeout", c.SMTP.Timeout, 30 * time.Second},
		{"smtp.idle_timeout", c.SMTP.IdleTimeout, 30 * time.Second},
		{"support.name", c.Support.Name, "Support"},
		{"support.token_prefix", c.Support.TokenPrefix, "Case"},
		{"support.reopen_window", c.Support.ReopenWindow, 14 * 24 * time.Hour},
		{"support.default_language", c.Support.DefaultLanguage, "nl"},
		{"support.default_customer", c.Support.DefaultCustomer, "unknown"},
		{"support.default_plan", c.Support.DefaultPlan, PlanBasic},
		{"support.timezone", c.Support.Timezone, "Europe/Amsterdam"},
		{"limits.max_message_bytes", c.Limits.MaxMessageBytes, int64(26214400)},
		{"limits.auto_reply_per_hour", c.Limits.AutoReplyPerHour, 5},
		{"limits.auto_reply_per_day", c.Limits.AutoReplyPerDay, 20},
		{"limits.undeliverable_for", c.Limits.UndeliverableFor, 72 * time.Hour},
		{"limits.notice_digest", c.Limits.NoticeDigest, time.Hour},
		{"store.path", c.Store.Path, "/var/lib/deskd/deskd.db"},
		{"store.lock_timeout", c.Store.LockTimeout, time.Second},
		{"admin.socket", c.Admin.Socket, "/run/deskd/admin.sock"},
		{"admin.socket_mode", c.Admin.SocketMode, os.FileMode(0o660)},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"sla.first_response.premium", c.SLA.FirstResponse.Premium, 4 * time.Hour},
		{"sla.first_response.business", c.SLA.FirstResponse.Business, 8 * time.Hour},
		{"sla.first_response.basic", c.SLA.FirstResponse.Basic, 48 * time.Hour},
		// R7 with R11a: a working day is 9h, a week 5 of them, 3 months 65.
		{"sla.resolution.urgent", c.SLA.Resolution.Urgent, Tier{4 * time.Hour, 6 * time.Hour}},
		{"sla.resolution.high", c.SLA.Resolution.High, Tier{9 * time.Hour, 18 * time.Hour}},
		{"sla.resolution.medium", c.SLA.Resolution.Medium, Tier{45 * time.Hour, 90 * time.Hour}},
		{"sla.resolution.low", c.SLA.Resolution.Low, Tier{135 * time.Hour, 585 * time.Hour}},
		{"sla.question", c.SLA.Question, Tier{27 * time.Hour, 45 * time.Hour}}, // R10
		{"sla.warn_at", c.SLA.WarnAt, 0.75},
		{"sla.working_hours.start", c.SLA.WorkingHours.Start.String(), "08:00"}, // R11
		{"sla.working_hours.end", c.SLA.WorkingHours.End.String(), "17:00"},
		{"backup.daily_at", c.Backup.DailyAt.String(), "02:05"}, // R19
		{"sla.holidays.good_friday", c.SLA.Holidays.GoodFriday, false},
		{"sla.holidays.liberation_day", c.SLA.Holidays.LiberationDay, LiberationLustrum},
		{"sla.holidays.skip", len(c.SLA.Holidays.Skip), 0},
		{"sla.closures", len(c.SLA.Closures), 0},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
	if c.SMTP.HELO == "" {
		t.Error("smtp.helo not derived")
	}

	// The defaults lack exactly the keys that have none.
	var got []string
	for _, p := range c.Validate() {
		got = append(got, p.Key)
	}
	want := []string{"imap.host", "imap.username", "imap.password", "smtp.host", "support.address"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Default().Validate() keys = %v, want %v", got, want)
	}
}

func TestLoadWithoutFileEqualsDefault(t *testing.T) {
	isolateEnv(t)
	t.Setenv("DESKD_IMAP_HOST", "mail.example.com")
	t.Setenv("DESKD_IMAP_USERNAME", "support")
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	t.Setenv("DESKD_SMTP_HOST", "smtp.example.com")
	t.Setenv("DESKD_SUPPORT_ADDRESS", "Support@Example.com")
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.IMAP.Host, want.IMAP.Username, want.IMAP.Password = "mail.example.com", "support", "pw"
	want.SMTP.Host = "smtp.example.com"
	want.Support.Address = "support@example.com" // lower-cased
	// DeepEqual, not %#v: daily_at and the zone are pointers.
	if !reflect.DeepEqual(c.Redacted(), want.Redacted()) {
		t.Errorf("Load(\"\") =\n%#v\nwant\n%#v", c.Redacted(), want.Redacted())
	}
}

func TestExampleValidates(t *testing.T) {
	isolateEnv(t)
	t.Setenv("DESKD_IMAP_PASSWORD", "imap-secret")
	t.Setenv("DESKD_SMTP_PASSWORD", "smtp-secret")
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if p := c.Validate(); p != nil {
		t.Errorf("Validate after Load: %v", p)
	}
	if c.IMAP.Password.Reveal() != "imap-secret" || c.IMAP.PasswordFile != "" {
		t.Errorf("imap password %q file %q: the environment should win over password_file", c.IMAP.Password.Reveal(), c.IMAP.PasswordFile)
	}
	if len(c.Customers) != 2 || c.Customers[0].Plan != PlanPremium || c.Customers[1].Plan != PlanBasic {
		t.Errorf("customers = %+v", c.Customers)
	}
	if c.Admin.SocketMode != 0o660 {
		t.Errorf("socket_mode = %#o", c.Admin.SocketMode)
	}
	if got := c.Staff.Notify; len(got) != 1 || got[0] != "teamleiders@helder.example" {
		t.Errorf("staff.notify = %q (a single address is a one-element list)", got)
	}
	if c.SMTPAddr() != "smtp.helder.example:587" || c.IMAPAddr() != "mail.helder.example:993" {
		t.Errorf("addrs %s %s", c.IMAPAddr(), c.SMTPAddr())
	}
	// The example states the agreement's targets and calendar: apart from
	// the dates, its sla section is the defaults.
	want := Default().SLA
	want.Closures = dates("2026-12-24", "2026-12-31")
	want.Holidays.Skip = []string{} // "skip: []"
	if fmt.Sprintf("%#v", c.SLA) != fmt.Sprintf("%#v", want) {
		t.Errorf("sla =\n%#v\nwant\n%#v", c.SLA, want)
	}
	if cu := c.Customers[0]; joinDates(cu.Closures) != "2026-05-15" || joinDates(cu.OpenDates) != "2026-12-31" {
		t.Errorf("customers[0] closures %q open_dates %q", cu.Closures, cu.OpenDates)
	}
}

// TestExampleDocumentsEveryKey keeps config.example.yaml complete: every key
// of Config is set in it and the environment name of every key that has one
// is mentioned.
func TestExampleDocumentsEveryKey(t *testing.T) {
	v := viper.New()
	v.SetConfigFile(examplePath)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	settings := v.AllSettings()
	keys := Keys()
	if len(keys) < 60 {
		t.Fatalf("Keys() found only %d keys: %v", len(keys), keys)
	}
	for _, key := range keys {
		if !present(settings, strings.Split(key, ".")) {
			t.Errorf("config.example.yaml lacks %s", key)
		}
	}

	text, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	envs, _ := envKeys()
	for _, k := range envs {
		if !bytes.Contains(text, []byte(EnvName(k))) {
			t.Errorf("config.example.yaml does not mention %s (for %s)", EnvName(k), k)
		}
	}
}

// present follows a Keys() path through viper's settings; "x[]" means some
// element of the list x has the rest of the path.
func present(m map[string]any, path []string) bool {
	head := path[0]
	if name, ok := strings.CutSuffix(head, "[]"); ok {
		list, _ := m[name].([]any)
		if len(path) == 1 {
			return len(list) > 0
		}
		for _, item := range list {
			if im, ok := item.(map[string]any); ok && present(im, path[1:]) {
				return true
			}
		}
		return false
	}
	val, ok := m[head]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	sub, ok := val.(map[string]any)
	return ok && present(sub, path[1:])
}

func TestEnvOverridesNestedKeys(t *testing.T) {
	isolateEnv(t)
	path := writeFile(t, "deskd.yaml", `
imap:
  host: mail.example.com
  port: 993
  username: support
support:
  address: support@example.com
sla:
  first_response:
    Premium: 4h
`)
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	t.Setenv("DESKD_IMAP_PORT", "1993")                // in the file
	t.Setenv("DESKD_SMTP_HOST", "SMTP.example.com")    // section absent from the file
	t.Setenv("DESKD_SMTP_TLS", "starttls")             // derived port follows
	t.Setenv("DESKD_IMAP_IDLE", "false")               // bool
	t.Setenv("DESKD_IMAP_POLL_INTERVAL", "90s")        // duration, absent
	t.Setenv("DESKD_SLA_FIRST_RESPONSE_PREMIUM", "2h") // three levels deep
	t.Setenv("DESKD_SLA_FIRST_RESPONSE_BASIC", "40h")  // absent
	t.Setenv("DESKD_STAFF_ADDRESSES", "Jan@example.com, piet@example.com")
	t.Setenv("DESKD_ADMIN_SOCKET_MODE", "0640")
	t.Setenv("DESKD_LIMITS_MAX_MESSAGE_BYTES", "1048576")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"imap.port", c.IMAP.Port, 1993},
		{"smtp.host", c.SMTP.Host, "smtp.example.com"},
		{"smtp.port", c.SMTP.Port, 587},
		{"imap.idle", c.IMAP.IDLE, false},
		{"imap.poll_interval", c.IMAP.PollInterval, 90 * time.Second},
		{"sla.first_response.premium", c.SLA.FirstResponse.Premium, 2 * time.Hour},
		{"sla.first_response.business", c.SLA.FirstResponse.Business, 8 * time.Hour},
		{"sla.first_response.basic", c.SLA.FirstResponse.Basic, 40 * time.Hour},
		{"staff.addresses", strings.Join(c.Staff.Addresses, "|"), "jan@example.com|piet@example.com"},
		{"admin.socket_mode", c.Admin.SocketMode, os.FileMode(0o640)},
		{"limits.max_message_bytes", c.Limits.MaxMessageBytes, int64(1 << 20)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
}

// TestEnvOverridesSLA covers the kinds of value the sla section has: a
// float, a duration four levels deep, a time of day, a bool, a word and
// lists.
func TestEnvOverridesSLA(t *testing.T) {
	isolateEnv(t)
	path := writeFile(t, "deskd.yaml", minimalYAML+`
sla:
  warn_at: 0.9
  resolution:
    urgent:
      tier2: 8h
  holidays:
    skip: [christmas]
`)
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	env := map[string]string{
		"DESKD_SLA_WARN_AT":                 "0.5",   // float, beats the file
		"DESKD_SLA_RESOLUTION_URGENT_TIER1": "3h",    // duration, absent from the file
		"DESKD_SLA_QUESTION_TIER2":          "54h",   // two levels
		"DESKD_SLA_WORKING_HOURS_START":     "09:00", // string
		"DESKD_SLA_WORKING_HOURS_END":       " 18:00 ",
		"DESKD_SLA_HOLIDAYS_GOOD_FRIDAY":    "true",
		"DESKD_SLA_HOLIDAYS_LIBERATION_DAY": "Always",                            // lower-cased
		"DESKD_SLA_HOLIDAYS_SKIP":           "kings_day, Boxing_Day",             // list beats the file's list
		"DESKD_SLA_CLOSURES":                "2026-12-24,2026-12-31, 2027-01-02", // list
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"sla.warn_at", c.SLA.WarnAt, 0.5},
		{"sla.resolution.urgent", c.SLA.Resolution.Urgent, Tier{3 * time.Hour, 8 * time.Hour}},
		{"sla.resolution.high", c.SLA.Resolution.High, Tier{9 * time.Hour, 18 * time.Hour}},
		{"sla.question", c.SLA.Question, Tier{27 * time.Hour, 54 * time.Hour}},
		{"sla.working_hours", c.SLA.WorkingHours, WorkingHours{clock("09:00"), clock("18:00")}},
		{"sla.holidays.good_friday", c.SLA.Holidays.GoodFriday, true},
		{"sla.holidays.liberation_day", c.SLA.Holidays.LiberationDay, LiberationAlways},
		{"sla.holidays.skip", strings.Join(c.SLA.Holidays.Skip, "|"), "kings_day|boxing_day"},
		{"sla.closures", joinDates(c.SLA.Closures), "2026-12-24 2026-12-31 2027-01-02"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}

	// What does not decode is named by its key.
	t.Setenv("DESKD_SLA_WARN_AT", "most")
	t.Setenv("DESKD_SLA_HOLIDAYS_GOOD_FRIDAY", "ja")
	t.Setenv("DESKD_SLA_RESOLUTION_LOW_TIER1", "3w")
	problems := loadProblems(t, path)
	for _, want := range []struct{ key, msg string }{
		{"sla.warn_at", `cannot read "most" as a number`},
		{"sla.holidays.good_friday", "true or false"},
		{"sla.resolution.low.tier1", "not a duration"},
	} {
		if !hasProblem(problems, want.key, want.msg) {
			t.Errorf("want %s: %s in %v", want.key, want.msg, problems)
		}
	}
}

// TestLoadSLAFile sets every key of the sla section and a customer's
// calendar in a file, dates written both quoted and bare (YAML would take
// a bare 2026-12-24 for a timestamp).
func TestLoadSLAFile(t *testing.T) {
	isolateEnv(t)
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	c, err := Load(writeFile(t, "deskd.yaml", minimalYAML+`
sla:
  first_response: {premium: 2h, business: 6h, basic: 40h}
  resolution:
    urgent: {tier1: 2h, tier2: 4h}
    high:   {tier1: 8h, tier2: 16h}
    medium: {tier1: 40h, tier2: 80h}
    low:    {tier1: 120h, tier2: 500h}
  question: {tier1: 18h, tier2: 36h}
  warn_at: 0.8
  working_hours: {start: "07:30", end: "16:30"}
  holidays:
    good_friday: true
    liberation_day: never
    skip: [Easter_Monday, whit_monday]
  closures: [2026-12-24, "2026-12-31"]
customers:
  - name: Acme
    plan: Business
    domains: [acme.example]
    closures: [2026-05-15]
    open_dates: ["2026-12-24", 2026-12-31]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := SLA{
		FirstResponse: FirstResponse{2 * time.Hour, 6 * time.Hour, 40 * time.Hour},
		Resolution: Resolution{
			Urgent: Tier{2 * time.Hour, 4 * time.Hour},
			High:   Tier{8 * time.Hour, 16 * time.Hour},
			Medium: Tier{40 * time.Hour, 80 * time.Hour},
			Low:    Tier{120 * time.Hour, 500 * time.Hour},
		},
		Question:     Tier{18 * time.Hour, 36 * time.Hour},
		WarnAt:       0.8,
		WorkingHours: WorkingHours{clock("07:30"), clock("16:30")},
		Holidays:     Holidays{GoodFriday: true, LiberationDay: LiberationNever, Skip: []string{"easter_monday", "whit_monday"}},
		Closures:     dates("2026-12-24", "2026-12-31"),
	}
	if fmt.Sprintf("%#v", c.SLA) != fmt.Sprintf("%#v", want) {
		t.Errorf("sla =\n%#v\nwant\n%#v", c.SLA, want)
	}
	cu := c.Customers[0]
	if joinDates(cu.Closures) != "2026-05-15" || joinDates(cu.OpenDates) != "2026-12-24 2026-12-31" {
		t.Errorf("customer closures %q open_dates %q", cu.Closures, cu.OpenDates)
	}

	// A bare timestamp with a time of day is no date.
	problems := loadProblems(t, writeFile(t, "deskd.yaml", minimalYAML+"sla:\n  closures: [2026-12-24 10:00:00]\n"))
	if !hasProblem(problems, "sla.closures[0]", `"2026-12-24T10:00:00Z" is not a date`) {
		t.Errorf("problems = %v", problems)
	}

	// Typos inside the new sections are caught like any other.
	problems = loadProblems(t, writeFile(t, "deskd.yaml", minimalYAML+`
sla:
  resolution:
    urgent: {tier1: 2h, teir2: 4h}
  holidays:
    goodfriday: true
customers:
  - name: Acme
    plan: Basic
    open_date: [2026-12-24]
`))
	for _, want := range []struct{ key, msg string }{
		{"sla.resolution.urgent.teir2", `did you mean "sla.resolution.urgent.tier2"?`},
		{"sla.holidays.goodfriday", `did you mean "sla.holidays.good_friday"?`},
		{"customers[0].open_date", `did you mean "customers[0].open_dates"?`},
	} {
		if !hasProblem(problems, want.key, want.msg) {
			t.Errorf("want %s: %s in %v", want.key, want.msg, problems)
		}
	}
}

func TestSecrets(t *testing.T) {
	secretFile := writeFile(t, "imap-password", "  s3cret-from-file\n")
	otherFile := writeFile(t, "other", "other-secret\n")
	emptyFile := writeFile(t, "empty", "\n")
	missing := filepath.Join(t.TempDir(), "missing")

	tests := []struct {
		name     string
		yaml     string
		env      map[string]string
		want     string // the IMAP password, or "" when a problem is expected
		problem  string // key of the expected problem
		contains string
	}{
		{name: "password_file", yaml: "password_file: " + secretFile, want: "s3cret-from-file"},
		{name: "password in file", yaml: "password: plain", want: "plain"},
		{name: "env password", env: map[string]string{"DESKD_IMAP_PASSWORD": "from-env"}, want: "from-env"},
		{name: "env password_file", env: map[string]string{"DESKD_IMAP_PASSWORD_FILE": secretFile}, want: "s3cret-from-file"},
		{name: "env value beats file's password_file", yaml: "password_file: " + missing,
			env: map[string]string{"DESKD_IMAP_PASSWORD": "from-env"}, want: "from-env"},
		{name: "env password_file beats file's password", yaml: "password: plain",
			env: map[string]string{"DESKD_IMAP_PASSWORD_FILE": otherFile}, want: "other-secret"},
		{name: "both in file", yaml: "password: plain\n  password_file: " + secretFile,
			problem: "imap.password_file", contains: "not both"},
		{name: "both in env", env: map[string]string{"DESKD_IMAP_PASSWORD": "a", "DESKD_IMAP_PASSWORD_FILE": secretFile},
			problem: "imap.password_file", contains: "set one"},
		{name: "unreadable", yaml: "password_file: " + missing, problem: "imap.password_file", contains: "cannot read"},
		{name: "empty file", yaml: "password_file: " + emptyFile, problem: "imap.password_file", contains: "empty"},
		{name: "missing", problem: "imap.password", contains: "DESKD_IMAP_PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			yaml := strings.Replace(minimalYAML, "username: support", "username: support\n  "+tt.yaml, 1)
			path := writeFile(t, "deskd.yaml", yaml)
			if tt.problem == "" {
				c, err := Load(path)
				if err != nil {
					t.Fatal(err)
				}
				if got := c.IMAP.Password.Reveal(); got != tt.want {
					t.Errorf("password = %q, want %q", got, tt.want)
				}
				return
			}
			problems := loadProblems(t, path)
			if !hasProblem(problems, tt.problem, tt.contains) {
				t.Errorf("want problem %s: ...%s..., got %v", tt.problem, tt.contains, problems)
			}
			if len(problems) != 1 {
				t.Errorf("want one problem, got %v", problems)
			}
		})
	}
}

func TestHMACKeyFile(t *testing.T) {
	isolateEnv(t)
	key := strings.Repeat("k", 40)
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	t.Setenv("DESKD_SUPPORT_HMAC_KEY_FILE", writeFile(t, "hmac", key+"\n"))
	c, err := Load(writeFile(t, "deskd.yaml", minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Support.HMACKey.Reveal() != key {
		t.Errorf("hmac key = %q", c.Support.HMACKey.Reveal())
	}
}

func TestUnknownKeys(t *testing.T) {
	isolateEnv(t)
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	path := writeFile(t, "deskd.yaml", minimalYAML+`
  tokn_prefix: X
limit:
  max_message_bytes: 1
sla:
  first_response:
    enterprise: 1h
customers:
  - name: Acme
    plan: Basic
    contacts:
      - name: A
        emial: a@acme.example
`)
	problems := loadProblems(t, path)
	for _, want := range []struct{ key, msg string }{
		{"support.tokn_prefix", `unknown key (did you mean "support.token_prefix"?)`},
		{"limit", `unknown key (did you mean "limits"?)`},
		{"sla.first_response.enterprise", "unknown key"},
		{"customers[0].contacts[0].emial", `did you mean "customers[0].contacts[0].email"?`},
	} {
		if !hasProblem(problems, want.key, want.msg) {
			t.Errorf("want %s: %s in %v", want.key, want.msg, problems)
		}
	}
}

func TestDecodeErrorsNameTheKey(t *testing.T) {
	isolateEnv(t)
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	path := writeFile(t, "deskd.yaml", minimalYAML+`
  reopen_window: 14
limits:
  max_message_bytes: lots
admin:
  socket_mode: "rw-rw----"
customers:
  - name: Acme
    plan: Basic
    max_contacts: [1]
`)
	problems := loadProblems(t, path)
	for _, want := range []struct{ key, msg string }{
		{"support.reopen_window", "has no unit"},
		{"limits.max_message_bytes", `"lots"`},
		{"admin.socket_mode", "octal"},
		{"customers[0].max_contacts", "expected a whole number"},
	} {
		if !hasProblem(problems, want.key, want.msg) {
			t.Errorf("want %s: %s in %v", want.key, want.msg, problems)
		}
	}
	// A key whose value did not decode gets no second complaint from Validate.
	n := 0
	for _, p := range problems {
		if p.Key == "limits.max_message_bytes" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("limits.max_message_bytes reported %d times: %v", n, problems)
	}
}

func TestSocketModeAsYAMLInteger(t *testing.T) {
	isolateEnv(t)
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	c, err := Load(writeFile(t, "deskd.yaml", minimalYAML+"admin:\n  socket_mode: 0600\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.SocketMode != 0o600 {
		t.Errorf("socket_mode = %#o, want 0600", c.Admin.SocketMode)
	}
	// 660 without the leading 0 is decimal to YAML: refused, not 0o1224.
	problems := loadProblems(t, writeFile(t, "deskd.yaml", minimalYAML+"admin:\n  socket_mode: 660\n"))
	if !hasProblem(problems, "admin.socket_mode", "0777") {
		t.Errorf("problems = %v", problems)
	}
}

func TestLoadNormalises(t *testing.T) {
	isolateEnv(t)
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	c, err := Load(writeFile(t, "deskd.yaml", minimalYAML+`
  default_language: EN
staff:
  domains: ["@Helder.Example."]
customers:
  - name: Acme
    plan: premium
    domains: [ACME.example]
    contacts:
      - {name: A, email: A.Person@ACME.example}
`))
	if err != nil {
		t.Fatal(err)
	}
	cu := c.Customers[0]
	if cu.Plan != PlanPremium || cu.Domains[0] != "acme.example" || cu.Contacts[0].Email != "a.person@acme.example" ||
		cu.Language != "en" || cu.MaxContacts != DefaultMaxContacts || c.Staff.Domains[0] != "helder.example" {
		t.Errorf("not normalised: %+v staff %v", cu, c.Staff.Domains)
	}
}

// validConfig is a configuration that passes Validate; each rule's test
// breaks one thing in it.
func validConfig() *Config {
	c := Default()
	c.IMAP.Host, c.IMAP.Username, c.IMAP.Password = "mail.example.com", "support", "imap-pass"
	c.SMTP.Host, c.SMTP.Username, c.SMTP.Password, c.SMTP.Auth = "smtp.example.com", "support", "smtp-pass", AuthPlain
	c.Support.Address = "support@example.com"
	c.Staff.Addresses = []string{"jan@example.com"}
	c.Staff.Domains = []string{"example.com"}
	c.Staff.Notify = []string{"team@example.com"}
	c.Customers = []Customer{
		{Name: "Acme", Plan: PlanPremium, Domains: []string{"acme.example"}, Language: "nl", MaxContacts: 3,
			Contacts: []Contact{{Name: "A", Email: "a@acme.example"}}},
		{Name: "Beta", Plan: PlanBasic, Domains: []string{"beta.example"}, Language: "en", MaxContacts: 3,
			Contacts: []Contact{{Name: "B", Email: "b@beta.example"}}},
	}
	return c
}

func TestValidConfig(t *testing.T) {
	if p := validConfig().Validate(); p != nil {
		t.Fatalf("validConfig has problems: %v", p)
	}
	// A hand-built customer may leave language and max_contacts unset.
	c := validConfig()
	c.Customers[0].Language, c.Customers[0].MaxContacts = "", 0
	if p := c.Validate(); p != nil {
		t.Errorf("unset language/max_contacts: %v", p)
	}
	// Loopback hosts may go without TLS and skip verification (tests).
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "127.1.2.3"} {
		c := validConfig()
		c.IMAP.Host, c.IMAP.TLS, c.IMAP.InsecureSkipVerify = h, TLSNone, true
		c.SMTP.Host, c.SMTP.TLS, c.SMTP.InsecureSkipVerify = h, TLSNone, true
		if p := c.Validate(); p != nil {
			t.Errorf("host %s: %v", h, p)
		}
	}
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		key      string
		contains string
		breakIt  func(c *Config)
	}{
		{"imap.host", "required", func(c *Config) { c.IMAP.Host = "" }},
		{"imap.host", "not a host name", func(c *Config) { c.IMAP.Host = "mail.example.com:993" }},
		{"imap.port", "between 1 and 65535", func(c *Config) { c.IMAP.Port = 0 }},
		{"imap.port", "between 1 and 65535", func(c *Config) { c.IMAP.Port = 70000 }},
		{"imap.tls", `"ssl" is not one of`, func(c *Config) { c.IMAP.TLS = "ssl" }},
		{"imap.tls", "clear text", func(c *Config) { c.IMAP.TLS = TLSNone }},
		{"imap.tls", "clear text", func(c *Config) { c.IMAP.Host, c.IMAP.TLS = "10.0.0.1", TLSNone }},
		{"imap.tls", "clear text", func(c *Config) { c.IMAP.Host, c.IMAP.TLS = "localhost.example.com", TLSNone }},
		{"imap.insecure_skip_verify", "tests", func(c *Config) { c.IMAP.InsecureSkipVerify = true }},
		{"imap.username", "required", func(c *Config) { c.IMAP.Username = "" }},
		{"imap.password", "required", func(c *Config) { c.IMAP.Password = "" }},
		{"imap.mailbox", "required", func(c *Config) { c.IMAP.Mailbox = "" }},
		{"imap.processed_mailbox", "must differ", func(c *Config) { c.IMAP.ProcessedMailbox = "inbox" }},
		{"imap.quarantine_mailbox", "required", func(c *Config) { c.IMAP.QuarantineMailbox = "" }},
		{"imap.poll_interval", "positive", func(c *Config) { c.IMAP.PollInterval = 0 }},
		{"imap.idle_refresh", "RFC 2177", func(c *Config) { c.IMAP.IdleRefresh = 29 * time.Minute }},
		{"imap.idle_refresh", "positive", func(c *Config) { c.IMAP.IdleRefresh = -time.Minute }},
		{"imap.connect_timeout", "positive", func(c *Config) { c.IMAP.ConnectTimeout = 0 }},
		{"imap.commit_batch", "between 1 and 1000", func(c *Config) { c.IMAP.CommitBatch = 0 }},
		{"imap.commit_batch", "between 1 and 1000", func(c *Config) { c.IMAP.CommitBatch = 1001 }},

		{"smtp.host", "required", func(c *Config) { c.SMTP.Host = "" }},
		{"smtp.port", "between 1 and 65535", func(c *Config) { c.SMTP.Port = -1 }},
		{"smtp.tls", "is not one of", func(c *Config) { c.SMTP.TLS = "tls" }},
		{"smtp.tls", "clear text", func(c *Config) { c.SMTP.TLS = TLSNone }},
		{"smtp.insecure_skip_verify", "tests", func(c *Config) { c.SMTP.InsecureSkipVerify = true }},
		{"smtp.auth", "is not one of", func(c *Config) { c.SMTP.Auth = "cram-md5" }},
		{"smtp.username", "required when smtp.auth", func(c *Config) { c.SMTP.Username = "" }},
		{"smtp.password", "required when smtp.auth", func(c *Config) { c.SMTP.Password = "" }},
		{"smtp.helo", "not a host name", func(c *Config) { c.SMTP.HELO = "my host" }},
		{"smtp.give_up_after", "positive", func(c *Config) { c.SMTP.GiveUpAfter = 0 }},
		{"smtp.retry_initial", "positive", func(c *Config) { c.SMTP.RetryInitial = 0 }},
		{"smtp.retry_initial", "exceeds smtp.retry_max", func(c *Config) { c.SMTP.RetryInitial = 2 * time.Hour }},
		{"smtp.retry_max", "positive", func(c *Config) { c.SMTP.RetryMax = 0 }},
		{"smtp.timeout", "positive", func(c *Config) { c.SMTP.Timeout = 0 }},
		{"smtp.idle_timeout", "not be negative", func(c *Config) { c.SMTP.IdleTimeout = -time.Second }},

		{"support.address", "required", func(c *Config) { c.Support.Address = "" }},
		{"support.address", "not an e-mail address", func(c *Config) { c.Support.Address = "Support <support@example.com>" }},
		{"support.address", "not an e-mail address", func(c *Config) { c.Support.Address = "support" }},
		{"support.name", "control characters", func(c *Config) { c.Support.Name = "Support\r\nBcc: x@evil.example" }},
		{"support.token_prefix", "required", func(c *Config) { c.Support.TokenPrefix = "" }},
		{"support.token_prefix", "letters, digits", func(c *Config) { c.Support.TokenPrefix = "Case #" }},
		{"support.reopen_window", "positive", func(c *Config) { c.Support.ReopenWindow = 0 }},
		{"support.default_language", "is not one of", func(c *Config) { c.Support.DefaultLanguage = "de" }},
		{"support.default_customer", "required", func(c *Config) { c.Support.DefaultCustomer = "" }},
		{"support.default_plan", "is not one of", func(c *Config) { c.Support.DefaultPlan = "Gold" }},
		{"support.hmac_key", "at least 32 bytes", func(c *Config) { c.Support.HMACKey = "short" }},
		{"support.timezone", "IANA", func(c *Config) { c.Support.Timezone = "Europe/Atlantis" }},

		{"staff.addresses[0]", "not an e-mail address", func(c *Config) { c.Staff.Addresses[0] = "jan" }},
		{"staff.addresses[0]", "support.address itself", func(c *Config) { c.Staff.Addresses[0] = "support@example.com" }},
		{"staff.domains[0]", "not a domain", func(c *Config) { c.Staff.Domains[0] = "exa mple.com" }},
		{"staff.domains[0]", "lower-case", func(c *Config) { c.Staff.Domains[0] = "Example.com" }},
		{"staff.notify[0]", "not an e-mail address", func(c *Config) { c.Staff.Notify[0] = "team" }},
		{"staff.second_line[0]", "not an e-mail address", func(c *Config) { c.Staff.SecondLine = []string{"@x"} }},
		{"staff.escalation[0]", "not an e-mail address", func(c *Config) { c.Staff.Escalation = []string{"x"} }},
		{"staff.escalation_tier2[1]", "not an e-mail address", func(c *Config) {
			c.Staff.EscalationTier2 = []string{"boss@example.com", "y"}
		}},
		{"staff.trusted_authserv_id", "single token", func(c *Config) { c.Staff.TrustedAuthservID = "mx 1" }},

		{"customers[1].name", "required", func(c *Config) { c.Customers[1].Name = "" }},
		{"customers[1].name", "also the name of customers[0]", func(c *Config) { c.Customers[1].Name = "ACME" }},
		{"customers[0].plan", "required", func(c *Config) { c.Customers[0].Plan = "" }},
		{"customers[0].plan", `"Gold" is not one of`, func(c *Config) { c.Customers[0].Plan = "Gold" }},
		{"customers[1].domains[0]", "also claimed by customers[0] (Acme)", func(c *Config) { c.Customers[1].Domains[0] = "acme.example" }},
		{"customers[0].domains[1]", "listed twice", func(c *Config) { c.Customers[0].Domains = append(c.Customers[0].Domains, "acme.example") }},
		{"customers[0].domains[0]", "lower-case", func(c *Config) { c.Customers[0].Domains[0] = "ACME.example" }},
		{"customers[0].domains[0]", "staff domain", func(c *Config) { c.Customers[0].Domains[0] = "example.com" }},
		{"customers[0].contacts", "more than max_contacts 3 (R1)", func(c *Config) {
			for i := range 3 {
				c.Customers[0].Contacts = append(c.Customers[0].Contacts, Contact{Email: fmt.Sprintf("c%d@acme.example", i)})
			}
		}},
		{"customers[0].contacts", "more than max_contacts 3", func(c *Config) {
			c.Customers[0].MaxContacts = 0 // the default, R1
			for i := range 3 {
				c.Customers[0].Contacts = append(c.Customers[0].Contacts, Contact{Email: fmt.Sprintf("c%d@acme.example", i)})
			}
		}},
		{"customers[0].contacts", "more than max_contacts 1", func(c *Config) {
			c.Customers[0].MaxContacts = 1
			c.Customers[0].Contacts = append(c.Customers[0].Contacts, Contact{Email: "c@acme.example"})
		}},
		{"customers[0].max_contacts", "at least 1", func(c *Config) { c.Customers[0].MaxContacts = -1 }},
		{"customers[0].contacts[0].email", "not an e-mail address", func(c *Config) { c.Customers[0].Contacts[0].Email = "a at acme" }},
		{"customers[1].contacts[0].email", "also a contact of customers[0]", func(c *Config) { c.Customers[1].Contacts[0].Email = "a@acme.example" }},
		{"customers[0].language", "is not one of", func(c *Config) { c.Customers[0].Language = "fr" }},

		{"limits.max_message_bytes", "positive", func(c *Config) { c.Limits.MaxMessageBytes = 0 }},
		{"limits.auto_reply_per_hour", "at least 1", func(c *Config) { c.Limits.AutoReplyPerHour = 0 }},
		{"limits.auto_reply_per_hour", "exceeds limits.auto_reply_per_day", func(c *Config) { c.Limits.AutoReplyPerHour = 50 }},
		{"limits.auto_reply_per_day", "at least 1", func(c *Config) { c.Limits.AutoReplyPerDay = 0 }},
		{"limits.undeliverable_for", "positive", func(c *Config) { c.Limits.UndeliverableFor = 0 }},
		{"limits.notice_digest", "positive", func(c *Config) { c.Limits.NoticeDigest = 0 }},
		{"store.path", "required", func(c *Config) { c.Store.Path = "" }},
		{"store.lock_timeout", "positive", func(c *Config) { c.Store.LockTimeout = 0 }},
		{"admin.socket", "required", func(c *Config) { c.Admin.Socket = "" }},
		{"admin.socket_mode", "permission mode", func(c *Config) { c.Admin.SocketMode = 0o1224 }},
		{"admin.socket_mode", "permission mode", func(c *Config) { c.Admin.SocketMode = 0 }},
		{"log.level", "is not one of", func(c *Config) { c.Log.Level = "verbose" }},
		{"log.format", "is not one of", func(c *Config) { c.Log.Format = "xml" }},
		{"sla.first_response.premium", "positive", func(c *Config) { c.SLA.FirstResponse.Premium = 0 }},
		{"sla.first_response.business", "positive", func(c *Config) { c.SLA.FirstResponse.Business = -time.Hour }},
		{"sla.first_response.basic", "positive", func(c *Config) { c.SLA.FirstResponse.Basic = 0 }},
		{"sla.resolution.urgent.tier1", "positive", func(c *Config) { c.SLA.Resolution.Urgent.Tier1 = 0 }},
		{"sla.resolution.urgent.tier2", "positive", func(c *Config) { c.SLA.Resolution.Urgent.Tier2 = -time.Hour }},
		{"sla.resolution.high.tier1", "exceeds sla.resolution.high.tier2 18h", func(c *Config) { c.SLA.Resolution.High.Tier1 = 19 * time.Hour }},
		{"sla.resolution.medium.tier2", "positive", func(c *Config) { c.SLA.Resolution.Medium.Tier2 = 0 }},
		{"sla.resolution.low.tier1", "exceeds sla.resolution.low.tier2", func(c *Config) { c.SLA.Resolution.Low.Tier2 = 100 * time.Hour }},
		{"sla.question.tier1", "positive", func(c *Config) { c.SLA.Question.Tier1 = 0 }},
		{"sla.question.tier1", "exceeds sla.question.tier2", func(c *Config) { c.SLA.Question.Tier1 = 46 * time.Hour }},
		{"sla.warn_at", "between 0 and 1", func(c *Config) { c.SLA.WarnAt = 0 }},
		{"sla.warn_at", "between 0 and 1", func(c *Config) { c.SLA.WarnAt = 1 }},
		{"sla.warn_at", "between 0 and 1", func(c *Config) { c.SLA.WarnAt = -0.5 }},
		{"sla.warn_at", "between 0 and 1", func(c *Config) { c.SLA.WarnAt = math.NaN() }},
		{"sla.working_hours.start", "not before sla.working_hours.end", func(c *Config) { c.SLA.WorkingHours.Start = clock("17:00") }},
		{"sla.working_hours.start", "not before sla.working_hours.end", func(c *Config) {
			c.SLA.WorkingHours.Start, c.SLA.WorkingHours.End = clock("22:00"), clock("06:00")
		}},
		{"sla.holidays.liberation_day", `"sometimes" is not one of lustrum, always, never`, func(c *Config) { c.SLA.Holidays.LiberationDay = "sometimes" }},
		{"sla.holidays.liberation_day", "is not one of", func(c *Config) { c.SLA.Holidays.LiberationDay = "" }},
		{"sla.holidays.skip[1]", "not a holiday key", func(c *Config) { c.SLA.Holidays.Skip = []string{"christmas", ""} }},
		{"sla.holidays.skip[0]", "not a holiday key", func(c *Config) { c.SLA.Holidays.Skip = []string{"Christmas"} }},
		{"sla.holidays.skip[0]", "not a holiday key", func(c *Config) { c.SLA.Holidays.Skip = []string{"whit monday"} }},
		{"sla.closures", "more than the 1000 allowed", func(c *Config) { c.SLA.Closures = manyDates(1001) }},
		{"customers[0].closures", "more than the 1000 allowed", func(c *Config) { c.Customers[0].Closures = manyDates(1001) }},
		{"customers[1].open_dates", "more than the 1000 allowed", func(c *Config) { c.Customers[1].OpenDates = manyDates(1001) }},
		{"customers[1].open_dates[1]", "also in customers[1].closures", func(c *Config) {
			c.Customers[1].Closures = dates("2026-05-15", "2026-12-24")
			c.Customers[1].OpenDates = dates("2026-12-31", "2026-12-24")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+tt.contains, func(t *testing.T) {
			c := validConfig()
			tt.breakIt(c)
			problems := c.Validate()
			if !hasProblem(problems, tt.key, tt.contains) {
				t.Errorf("want %s: ...%s..., got %v", tt.key, tt.contains, problems)
			}
			for _, p := range problems {
				if !strings.HasPrefix(p.String(), p.Key+": ") || p.Key == "" {
					t.Errorf("problem %q does not start with its key", p)
				}
			}
		})
	}
}

// manyDates returns n distinct dates from 2026-01-01 on.
func manyDates(n int) []sla.Date {
	d := sla.Date{Year: 2026, Month: time.January, Day: 1}
	out := make([]sla.Date, n)
	for i := range out {
		out[i] = d.AddDays(i)
	}
	return out
}

// clock and dates are test values; Load parses the real ones.
func clock(s string) sla.ClockTime {
	c, err := sla.ParseClockTime(s)
	if err != nil {
		panic(err)
	}
	return c
}

func dates(ss ...string) []sla.Date {
	out := make([]sla.Date, len(ss))
	for i, s := range ss {
		d, err := sla.ParseDate(s)
		if err != nil {
			panic(err)
		}
		out[i] = d
	}
	return out
}

func joinDates(ds []sla.Date) string {
	ss := make([]string, len(ds))
	for i, d := range ds {
		ss[i] = d.String()
	}
	return strings.Join(ss, " ")
}

// TestTimesAndDatesParsedOnce: times of day and dates are parsed when the
// configuration is loaded, from the file or the environment, and a value
// that does not parse is named by its key (R11, R19).
func TestTimesAndDatesParsedOnce(t *testing.T) {
	tests := []struct {
		yaml     string
		env      map[string]string
		key, msg string
	}{
		{yaml: "sla:\n  working_hours: {start: \"\", end: \"17:00\"}\n", key: "sla.working_hours.start", msg: "required"},
		{yaml: "sla:\n  working_hours: {start: 8am}\n", key: "sla.working_hours.start", msg: `"8am" is not a time of day HH:MM`},
		{yaml: "sla:\n  working_hours: {end: \"24:00\"}\n", key: "sla.working_hours.end", msg: "HH:MM"},
		{yaml: "sla:\n  working_hours: {start: 8}\n", key: "sla.working_hours.start", msg: "a time of day HH:MM"},
		{env: map[string]string{"DESKD_SLA_WORKING_HOURS_END": "5pm"}, key: "sla.working_hours.end", msg: "HH:MM"},
		{yaml: "backup:\n  daily_at: \"25:00\"\n", key: "backup.daily_at", msg: `"25:00" is not a time of day HH:MM`},
		{yaml: "sla:\n  closures: [\"2026-12-24\", \"24-12-2026\"]\n", key: "sla.closures[1]", msg: `"24-12-2026" is not a date YYYY-MM-DD`},
		{yaml: "sla:\n  closures: [\"2026-02-30\"]\n", key: "sla.closures[0]", msg: "not a date"},
		{env: map[string]string{"DESKD_SLA_CLOSURES": "2026-12-24, nope"}, key: "sla.closures[1]", msg: `"nope" is not a date`},
		{yaml: "customers:\n  - {name: Acme, plan: Basic, closures: [\"2026-5-15\"]}\n", key: "customers[0].closures[0]", msg: "not a date"},
		{yaml: "customers:\n  - {name: Acme, plan: Basic, open_dates: [tomorrow]}\n", key: "customers[0].open_dates[0]", msg: "not a date"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+tt.msg, func(t *testing.T) {
			isolateEnv(t)
			t.Setenv("DESKD_IMAP_PASSWORD", "pw")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			problems := loadProblems(t, writeFile(t, "deskd.yaml", minimalYAML+tt.yaml))
			if !hasProblem(problems, tt.key, tt.msg) {
				t.Errorf("want %s: ...%s..., got %v", tt.key, tt.msg, problems)
			}
		})
	}

	// Parsed, they arrive as the SLA's types; "" turns the daily backup off.
	isolateEnv(t)
	t.Setenv("DESKD_IMAP_PASSWORD", "pw")
	t.Setenv("DESKD_BACKUP_DAILY_AT", " 03:30 ")
	c, err := Load(writeFile(t, "deskd.yaml", minimalYAML+"sla:\n  working_hours: {start: \"7:05\", end: \"16:00\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := (WorkingHours{sla.ClockTime{Hour: 7, Minute: 5}, sla.ClockTime{Hour: 16}}); c.SLA.WorkingHours != got {
		t.Errorf("working hours %v, want %v", c.SLA.WorkingHours, got)
	}
	if c.Backup.DailyAt == nil || *c.Backup.DailyAt != (sla.ClockTime{Hour: 3, Minute: 30}) {
		t.Errorf("backup.daily_at = %v, want 03:30", c.Backup.DailyAt)
	}
	if loc, err := c.Support.Location(); err != nil || loc.String() != "Europe/Amsterdam" {
		t.Errorf("support zone %v, %v", loc, err)
	}
	t.Setenv("DESKD_BACKUP_DAILY_AT", "")
	c, err = Load(writeFile(t, "deskd.yaml", minimalYAML+"backup:\n  daily_at: \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backup.DailyAt != nil {
		t.Errorf("backup.daily_at \"\" = %v, want none", *c.Backup.DailyAt)
	}
}

func TestSLACalendarLimits(t *testing.T) {
	c := validConfig()
	c.SLA.Closures = manyDates(MaxDates) // exactly the limit is fine
	c.Customers[0].Closures = dates("2029-05-15")
	c.Customers[0].OpenDates = append(manyDates(MaxDates-1), dates("2026-12-31")...)
	c.SLA.Holidays.Skip = []string{"new_year", "good_friday", "easter_monday", "kings_day", "liberation_day",
		"ascension_day", "whit_monday", "christmas", "boxing_day"}
	c.SLA.WorkingHours = WorkingHours{clock("00:00"), clock("23:59")}
	c.SLA.WarnAt = 0.01
	c.SLA.Resolution.Urgent = Tier{time.Hour, time.Hour} // tier1 == tier2 is allowed
	if p := c.Validate(); p != nil {
		t.Errorf("at the limits: %v", p)
	}
}

func TestLoadErrorListsProblemsOnePerLine(t *testing.T) {
	isolateEnv(t)
	_, err := Load(writeFile(t, "deskd.yaml", "imap:\n  port: 0\n  tls: none\n  host: mail.example.com\n"))
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *LoadError, got %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(le.Problems) || len(lines) < 5 {
		t.Fatalf("%d lines for %d problems:\n%s", len(lines), len(le.Problems), err)
	}
	for i, line := range lines {
		if line != le.Problems[i].Key+": "+le.Problems[i].Message {
			t.Errorf("line %q", line)
		}
	}
	for _, key := range []string{"imap.port", "imap.tls", "imap.username", "imap.password", "smtp.host", "support.address"} {
		if !hasProblem(le.Problems, key, "") {
			t.Errorf("no problem for %s in\n%s", key, err)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	isolateEnv(t)
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil {
		t.Error("missing file: no error")
	}
	_, err := Load(writeFile(t, "bad.yaml", "imap: [unclosed\n"))
	var le *LoadError
	if err == nil || errors.As(err, &le) {
		t.Errorf("syntax error: want a plain error, got %v", err)
	}
}

func TestSecretsNeverShown(t *testing.T) {
	const imapPW, smtpPW, hmac = "imap-pw-Xq7", "smtp-pw-Zr9", "hmac-key-0123456789abcdef0123456789abcdef"
	c := validConfig()
	c.IMAP.Password, c.SMTP.Password, c.Support.HMACKey = imapPW, smtpPW, hmac

	var buf bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewTextHandler(&buf, nil),
		slog.NewJSONHandler(&buf, nil),
	} {
		log := slog.New(h)
		log.Info("loaded", "config", c)
		log.Info("loaded", "config", *c)
		log.Info("loaded", "redacted", c.Redacted())
		log.Info("imap", "imap", c.IMAP, "password", c.IMAP.Password)
		log.Info("any", slog.Any("smtp", c.SMTP))
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(j)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		fmt.Fprintf(&buf, verb, c)
		fmt.Fprintf(&buf, verb, *c)
		fmt.Fprintf(&buf, verb, c.IMAP.Password)
		fmt.Fprintf(&buf, verb, c.Redacted())
	}
	fmt.Fprint(&buf, c.Redacted().IMAP.Password.Reveal())

	out := buf.String()
	for _, s := range []string{imapPW, smtpPW, hmac, fmt.Sprintf("%x", imapPW)} {
		if strings.Contains(out, s) {
			t.Errorf("output contains secret %q", s)
		}
	}
	// The log still says something useful.
	for _, s := range []string{"config.imap.host=mail.example.com", `"password":"[redacted]"`, "config.customers.0.plan=Premium",
		"config.sla.first_response.basic=48h0m0s", `"socket_mode":"0660"`} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %s", s)
		}
	}
	// Redacted is a copy: the original keeps its secrets.
	r := c.Redacted()
	r.Customers[0].Domains[0] = "changed.example"
	if c.IMAP.Password.Reveal() != imapPW || c.Customers[0].Domains[0] != "acme.example" {
		t.Error("Redacted changed the original")
	}
	if got := (Secret("")).String(); got != "" {
		t.Errorf("unset secret shows %q", got)
	}
}

func TestAddrs(t *testing.T) {
	c := validConfig()
	c.IMAP.Host, c.IMAP.Port = "::1", 1143
	c.SMTP.Host, c.SMTP.Port, c.SMTP.TLS = "127.0.0.1", 0, TLSStartTLS
	if got := c.IMAPAddr(); got != "[::1]:1143" {
		t.Errorf("IMAPAddr = %s", got)
	}
	if got := c.SMTPAddr(); got != "127.0.0.1:587" {
		t.Errorf("SMTPAddr = %s", got)
	}
}

func TestFirstResponseFor(t *testing.T) {
	fr := Default().SLA.FirstResponse
	for plan, want := range map[string]time.Duration{PlanPremium: 4 * time.Hour, PlanBusiness: 8 * time.Hour, PlanBasic: 48 * time.Hour} {
		if got, ok := fr.For(plan); !ok || got != want {
			t.Errorf("For(%s) = %v %v", plan, got, ok)
		}
	}
	if _, ok := fr.For("Gold"); ok {
		t.Error("For(Gold) ok")
	}
}

func TestResolutionFor(t *testing.T) {
	r := Default().SLA.Resolution
	for prio, want := range map[string]Tier{
		PriorityUrgent: {4 * time.Hour, 6 * time.Hour},
		PriorityHigh:   {9 * time.Hour, 18 * time.Hour},
		PriorityMedium: {45 * time.Hour, 90 * time.Hour},
		PriorityLow:    {135 * time.Hour, 585 * time.Hour},
	} {
		if got, ok := r.For(prio); !ok || got != want {
			t.Errorf("For(%s) = %v %v, want %v", prio, got, ok, want)
		}
	}
	for _, bad := range []string{"", "Urgent", "critical"} {
		if got, ok := r.For(bad); ok || got != (Tier{}) {
			t.Errorf("For(%q) = %v %v", bad, got, ok)
		}
	}
}

func TestLoadUnvalidated(t *testing.T) {
	isolateEnv(t)
	// No password and an unreadable password_file: fine for the CLI.
	path := writeFile(t, "deskd.yaml", "imap:\n  password_file: /nonexistent/deskd\nstore:\n  path: /srv/deskd.db\n")
	c, err := LoadUnvalidated(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Path != "/srv/deskd.db" || c.Admin.Socket != Default().Admin.Socket || c.IMAP.Password != "" {
		t.Errorf("got store %s socket %s", c.Store.Path, c.Admin.Socket)
	}
	// A typo is still an error.
	_, err = LoadUnvalidated(writeFile(t, "deskd.yaml", "stor:\n  path: x\n"))
	var le *LoadError
	if !errors.As(err, &le) || !hasProblem(le.Problems, "stor", "unknown key") {
		t.Errorf("err = %v", err)
	}
}

// The configured targets reach the SLA engine as its own type; the
// defaults are the agreement's (R7, R9, R10).
func TestSLATargets(t *testing.T) {
	c := Default()
	if got, want := c.SLA.Targets(), sla.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("default targets %+v, want the agreement's %+v", got, want)
	}
	c.SLA.FirstResponse.Basic = 40 * time.Hour
	c.SLA.Resolution.Low = Tier{Tier1: 10 * sla.WorkingDay, Tier2: 20 * sla.WorkingDay}
	c.SLA.Question.Tier2 = 4 * sla.WorkingDay
	got := c.SLA.Targets()
	if d, _ := got.FirstResponseFor(sla.PlanBasic); d != 40*time.Hour {
		t.Errorf("Basic first response %v", d)
	}
	if got.Resolution[sla.PriorityLow] != (sla.Tier{Tier1: 10 * sla.WorkingDay, Tier2: 20 * sla.WorkingDay}) || got.Question.Tier2 != 4*sla.WorkingDay {
		t.Errorf("targets %+v", got)
	}
}

// The portal section (R3): off by default; when on, a plain-http base_url
// on a host that is not loopback is refused, as is sharing the operators'
// listener, and lifetimes and limits must be positive.
func TestPortalSection(t *testing.T) {
	t.Setenv("DESKD_IMAP_PASSWORD", "secret")
	c, err := Load(writeFile(t, "deskd.yaml", minimalYAML))
	if err != nil || c.Portal.Listen != "" || c.Portal.SessionLifetime != 8*time.Hour || c.Portal.LinkLifetime != 15*time.Minute {
		t.Fatalf("defaults: %+v %v", c.Portal, err)
	}
	for _, ok := range []string{
		"portal:\n  listen: 127.0.0.1:8080\n  base_url: https://support.example.com\n",
		"portal:\n  listen: 127.0.0.1:8080\n  base_url: http://127.0.0.1:8080/\n",
		"portal:\n  listen: \"[::1]:8080\"\n  base_url: http://localhost:8080\n",
	} {
		if _, err := Load(writeFile(t, "deskd.yaml", minimalYAML+ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, tc := range []struct{ yaml, key, msg string }{
		{"portal:\n  listen: 0.0.0.0:8080\n  base_url: http://support.example.com\n", "portal.base_url", "plain http"},
		{"portal:\n  listen: 0.0.0.0:8080\n", "portal.base_url", ""},
		{"portal:\n  listen: 0.0.0.0:8080\n  base_url: support.example.com\n", "portal.base_url", "absolute"},
		{"portal:\n  listen: 127.0.0.1:9465\n  base_url: https://s.example\n", "portal.listen", "operators' listener"},
		{"portal:\n  listen: nonsense\n  base_url: https://s.example\n", "portal.listen", "host:port"},
		{"portal:\n  session_lifetime: 0s\n", "portal.session_lifetime", ""},
		{"portal:\n  link_lifetime: 48h\n", "portal.link_lifetime", "24h"},
		{"portal:\n  signin_per_ip: 0\n", "portal.signin_per_ip", "positive"},
	} {
		if p := loadProblems(t, writeFile(t, "deskd.yaml", minimalYAML+tc.yaml)); !hasProblem(p, tc.key, tc.msg) {
			t.Errorf("%s: problems %v, want %s %q", tc.yaml, p, tc.key, tc.msg)
		}
	}
}

func TestClusterSection(t *testing.T) {
	t.Setenv("DESKD_IMAP_PASSWORD", "secret")
	c, err := Load(writeFile(t, "deskd.yaml", minimalYAML))
	if err != nil || c.Cluster.Enabled() || c.Cluster.MaxEntryBytes != 512<<10 {
		t.Fatalf("defaults: %+v %v", c.Cluster, err)
	}
	const loop = "cluster:\n  node_id: a\n  bind: 127.0.0.1:7001\n  peers:\n    - {id: a, address: 127.0.0.1:7001}\n    - {id: b, address: 127.0.0.1:7002}\n    - {id: c, address: 127.0.0.1:7003}\n"
	const remote = "cluster:\n  node_id: a\n  bind: 10.0.0.1:7001\n  peers:\n    - {id: a, address: 10.0.0.1:7001}\n    - {id: b, address: 10.0.0.2:7001}\n    - {id: c, address: 10.0.0.3:7001}\n"
	const tlsKeys = "  tls:\n    cert: /c.pem\n    key: /k.pem\n    ca: /ca.pem\n"
	for _, ok := range []string{loop, remote + tlsKeys} {
		c, err := Load(writeFile(t, "deskd.yaml", minimalYAML+ok))
		if err != nil || !c.Cluster.Enabled() || len(c.Cluster.Peers) != 3 {
			t.Errorf("%s: %v %+v", ok, err, c.Cluster)
		}
	}
	for _, tc := range []struct{ yaml, key, msg string }{
		{remote, "cluster.tls", "loopback"},
		{remote + "  tls:\n    cert: /c.pem\n", "cluster.tls.ca", ""},
		{"cluster:\n  node_id: a\n  bind: 127.0.0.1:7001\n  peers:\n    - {id: a, address: 127.0.0.1:7001}\n    - {id: b, address: 127.0.0.1:7002}\n", "cluster.peers", "two voters"},
		{"cluster:\n  node_id: z\n  bind: 127.0.0.1:7001\n  peers:\n    - {id: a, address: 127.0.0.1:7001}\n", "cluster.peers", "this node"},
		{"cluster:\n  node_id: a\n  bind: nowhere\n  peers:\n    - {id: a, address: 127.0.0.1:7001}\n", "cluster.bind", "host:port"},
		{loop + "  max_entry_bytes: 10\n", "cluster.max_entry_bytes", "outside"},
	} {
		if p := loadProblems(t, writeFile(t, "deskd.yaml", minimalYAML+tc.yaml)); !hasProblem(p, tc.key, tc.msg) {
			t.Errorf("%s: problems %v, want %s %q", tc.yaml, p, tc.key, tc.msg)
		}
	}
}
