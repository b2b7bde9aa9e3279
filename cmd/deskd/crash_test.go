package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"deskd/internal/crashtest"
	"deskd/internal/peers"
)

// TestMain lets the test binary stand in for the deskd binary: with
// DESKD_TEST_MAIN=1 it runs main, so tests can start and SIGKILL real
// deskd processes without a separate build step.
func TestMain(m *testing.M) {
	if os.Getenv("DESKD_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// deskdProcess starts `deskd args...` as a child process.
func deskdProcess(t *testing.T, stderr io.Writer, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DESKD_TEST_MAIN=1")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// startPeers starts the in-process IMAP server and SMTP sink and writes a
// deskd configuration for them into a fresh directory.
func startPeers(t *testing.T) (imapSrv *peers.IMAP, smtpSrv *peers.SMTP, dir, configPath string) {
	t.Helper()
	imapSrv, err := peers.StartIMAP("support@example.test", "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imapSrv.Close() })
	smtpSrv, err = peers.StartSMTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtpSrv.Close() })
	dir = t.TempDir()
	return imapSrv, smtpSrv, dir, writeTestConfig(t, dir, imapSrv, smtpSrv)
}

func writeTestConfig(t *testing.T, dir string, imapSrv *peers.IMAP, smtpSrv *peers.SMTP) string {
	t.Helper()
	cfg := fmt.Sprintf(`imap:
  host: 127.0.0.1
  port: %d
  tls: none
  username: support@example.test
  password: pw
  poll_interval: 2s
smtp:
  host: 127.0.0.1
  port: %d
  tls: none
  auth: none
  retry_initial: 100ms
  retry_max: 1s
support:
  address: support@example.test
  name: Example Support
staff:
  domains: [example.test]
limits:
  auto_reply_per_hour: 100
  auto_reply_per_day: 100
store:
  path: %s
admin:
  socket: %s
http:
  listen: 127.0.0.1:0
backup:
  dir: %s
log:
  level: warn
`, imapSrv.Port(), smtpSrv.Port(), filepath.Join(dir, "deskd.db"), filepath.Join(dir, "admin.sock"), filepath.Join(dir, "backups"))
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCrashSafety kills deskd with SIGKILL at random moments while it
// ingests 500 mails from the in-process IMAP peer, restarts it each time,
// and then checks that nothing was lost or doubled (internal/crashtest;
// e2e runs the same scenario against Dovecot and Postfix).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test is long; run without -short")
	}
	imapSrv, smtpSrv, dir, configPath := startPeers(t)
	crashtest.Run(t, crashtest.World{
		Support:  "support@example.test",
		Customer: func(i int) string { return fmt.Sprintf("c%d@customer%d.example", i, i%37) },
		Deliver: func(raws [][]byte) {
			for _, raw := range raws {
				if err := imapSrv.Deliver("INBOX", raw, time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
		},
		Count: imapSrv.Count,
		Sent: func() []crashtest.Mail {
			var out []crashtest.Mail
			for _, m := range smtpSrv.Mails() {
				out = append(out, crashtest.Mail{From: m.From, To: m.To, Data: m.Data})
			}
			return out
		},
		Command: func() *exec.Cmd {
			cmd := exec.Command(os.Args[0], "run", "--config", configPath)
			// Groups of 16 mails in one transaction (group commit), so
			// that the kills meet several group boundaries.
			cmd.Env = append(os.Environ(), "DESKD_TEST_MAIN=1", "DESKD_IMAP_COMMIT_BATCH=16")
			return cmd
		},
		StorePath: filepath.Join(dir, "deskd.db"),
	})
}

// syncBuffer collects a child process's output while the test reads it.
type syncBuffer = crashtest.SyncBuffer
