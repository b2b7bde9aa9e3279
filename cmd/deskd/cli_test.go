package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"deskd/daemon"
)

// runCLI runs deskd's CLI in-process and returns its output and exit code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
}

// check-config names the key of every problem, one per line, and exits
// 78; a good file exits 0.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("imap:\n  host: mail.example.com\n  tls: none\n  usrname: x\nsupport:\n  address: not-an-address\n"), 0o600)
	out, _, code := runCLI(t, "check-config", "--config", bad)
	if code != exitConfig {
		t.Errorf("exit %d, want %d", code, exitConfig)
	}
	for _, key := range []string{"imap.tls:", "imap.usrname:", "support.address:", "smtp.host:", "imap.password:"} {
		if !strings.Contains(out, "\n"+key) && !strings.HasPrefix(out, key) {
			t.Errorf("no line for %s in:\n%s", key, out)
		}
	}

	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("imap:\n  host: 127.0.0.1\n  tls: none\n  username: s@x.example\n  password: pw\nsmtp:\n  host: 127.0.0.1\n  tls: none\nsupport:\n  address: s@x.example\n"), 0o600)
	out, errOut, code := runCLI(t, "check-config", "--config", good)
	if code != 0 {
		t.Errorf("good config: exit %d\n%s%s", code, out, errOut)
	}
	// A holiday the calendar does not know is a configuration error too
	// (R11), named by its key.
	holiday := filepath.Join(dir, "holiday.yaml")
	os.WriteFile(holiday, append(mustRead(t, good), []byte("sla:\n  holidays:\n    skip: [carnival]\n")...), 0o600)
	if out, _, code := runCLI(t, "check-config", "--config", holiday); code != exitConfig || !strings.Contains(out, "sla.holidays") || !strings.Contains(out, "carnival") {
		t.Errorf("unknown holiday: exit %d\n%s", code, out)
	}
	// The shipped example validates (with its password from the
	// environment, as a service would have it).
	t.Setenv("DESKD_IMAP_PASSWORD", "x")
	t.Setenv("DESKD_SMTP_PASSWORD", "y")
	if out, errOut, code := runCLI(t, "check-config", "--config", "../../config.example.yaml"); code != 0 {
		t.Errorf("config.example.yaml: exit %d\n%s%s", code, out, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"cases"}, {"cases", "show"}, {"cases", "show", "x"}} {
		if _, _, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("deskd %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// `deskd cases list/show` answer through the admin socket while the daemon
// runs (it holds bbolt's lock) and from the store file once it stopped,
// with the same JSON either way. SIGHUP reloads the configuration and
// keeps the old one when the new one has problems.
func TestCasesCLIAndReload(t *testing.T) {
	imapSrv, smtpSrv, dir, configPath := startPeers(t)
	// info level, so the reload lines show.
	cfgText, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(configPath, bytes.Replace(cfgText, []byte("level: warn"), []byte("level: info"), 1), 0o600); err != nil {
		t.Fatal(err)
	}

	for i := 1; i <= 2; i++ {
		raw := fmt.Sprintf("From: Bob <bob%d@acme.example>\r\nTo: support@example.test\r\nSubject: Vraag %d\r\nMessage-ID: <cli%d@acme.example>\r\n\r\nHallo %d\r\n", i, i, i, i)
		if err := imapSrv.Deliver("INBOX", []byte(raw), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncBuffer
	cmd := deskdProcess(t, &logs, "run", "--config", configPath)
	defer cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := smtpSrv.WaitFor(ctx, 2); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}

	socket := filepath.Join(dir, "admin.sock")
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("admin socket %v mode %v, want 0660", err, fi)
	}
	live, _, code := runCLI(t, "cases", "list", "--status", "all", "--json", "--config", configPath)
	if code != 0 {
		t.Fatalf("cases list via socket: exit %d", code)
	}
	var list []daemon.CaseSummary
	if err := json.Unmarshal([]byte(live), &list); err != nil || len(list) != 2 {
		t.Fatalf("cases list --json: %v\n%s", err, live)
	}
	if list[0].ID != 1 || list[0].Subject != "Vraag 1" || list[0].Messages != 2 || list[0].Requester != "bob1@acme.example" || list[0].Status != "open" {
		t.Errorf("case 1 summary %+v", list[0])
	}
	liveShow, _, code := runCLI(t, "cases", "show", "2", "--json", "--config", configPath)
	if code != 0 {
		t.Fatalf("cases show via socket: exit %d", code)
	}
	var det daemon.CaseDetail
	if err := json.Unmarshal([]byte(liveShow), &det); err != nil || len(det.Messages) != 2 || det.Messages[0].Direction != "in" || det.Messages[1].Direction != "out" {
		t.Fatalf("cases show --json: %v\n%s", err, liveShow)
	}
	if text, _, _ := runCLI(t, "cases", "list", "--config", configPath); !strings.Contains(text, "Vraag 2") {
		t.Errorf("table output lacks the cases:\n%s", text)
	}

	// SIGHUP: a broken file is refused, a good one swapped in.
	os.WriteFile(configPath, []byte("imap:\n  hots: x\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, &logs, "reload refused")
	os.WriteFile(configPath, bytes.Replace(cfgText, []byte("Example Support"), []byte("Renamed Support"), 1), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, &logs, "configuration reloaded")

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}

	// Stopped: the same answers from the file.
	stopped, _, code := runCLI(t, "cases", "list", "--status", "all", "--json", "--config", configPath)
	if code != 0 || stopped != live {
		t.Errorf("list from the store differs from the daemon's (exit %d):\n%s\nvs\n%s", code, stopped, live)
	}
	stoppedShow, _, _ := runCLI(t, "cases", "show", "2", "--json", "--config", configPath)
	if stoppedShow != liveShow {
		t.Errorf("show from the store differs from the daemon's:\n%s\nvs\n%s", stoppedShow, liveShow)
	}
	if _, errOut, code := runCLI(t, "cases", "show", "99", "--config", configPath); code != exitFail || !strings.Contains(errOut, "case 99 does not exist") {
		t.Errorf("show 99: exit %d, %q", code, errOut)
	}
}

func waitFor(t *testing.T, b *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", s, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
