package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `deskd calendar` lists what the SLA clock counts in (R11): the window
// and the weekdays off, with a customer's own days on request.
func TestCalendarCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deskd.yaml")
	os.WriteFile(path, []byte(`sla:
  closures: ["2027-12-24"]
  holidays:
    good_friday: true
customers:
  - name: Acme
    plan: Premium
    domains: [acme.example]
    open_dates: ["2027-05-06"]
`), 0o600)
	out, errOut, code := runCLI(t, "calendar", "--year", "2027", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Working time (Europe/Amsterdam): Monday to Friday, 08:00 to 17:00",
		"2027-03-26 Fri  good_friday", "2027-03-29 Mon  easter_monday", "2027-04-27 Tue  kings_day",
		"2027-05-06 Thu  ascension_day", "2027-12-24 Fri  closure",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("calendar lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "2027-05-05") {
		t.Errorf("5 May 2027 is no lustrum year:\n%s", out)
	}
	acme, _, _ := runCLI(t, "calendar", "--year", "2027", "--customer", "Acme", "--config", path)
	if strings.Contains(acme, "2027-05-06") || !strings.Contains(acme, "for Acme") {
		t.Errorf("Acme works Ascension 2027:\n%s", acme)
	}
	if _, _, code := runCLI(t, "calendar", "--customer", "Nobody", "--config", path); code != exitFail {
		t.Errorf("unknown customer: exit %d", code)
	}
	os.WriteFile(path, []byte("sla:\n  holidays:\n    skip: [carnival]\n"), 0o600)
	if _, _, code := runCLI(t, "calendar", "--config", path); code != exitConfig {
		t.Errorf("unknown holiday: exit %d, want %d", code, exitConfig)
	}
}
