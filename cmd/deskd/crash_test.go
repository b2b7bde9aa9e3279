package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
	"deskd/internal/peers"
	"deskd/store"
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
// ingests 500 mails, restarts it each time, and then checks that nothing
// was lost or doubled: every mail is in exactly one case, every new case
// got exactly one acknowledgement (counted as distinct Message-IDs: a kill
// inside an SMTP transaction makes a resend with the same Message-ID
// unavoidable), and the inbox is empty.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test is long; run without -short")
	}
	imapSrv, smtpSrv, dir, configPath := startPeers(t)

	const questions, replies = 400, 100
	for i := range questions {
		raw := fmt.Sprintf("From: c%d@customer%d.example\r\nTo: support@example.test\r\nSubject: Vraag %d\r\nMessage-ID: <q%d@crash.example>\r\n\r\nVraag nummer %d.\r\n", i, i%37, i, i, i)
		if err := imapSrv.Deliver("INBOX", []byte(raw), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range replies {
		q := i * 3
		raw := fmt.Sprintf("From: c%d@customer%d.example\r\nTo: support@example.test\r\nSubject: Re: Vraag %d\r\nMessage-ID: <r%d@crash.example>\r\nIn-Reply-To: <q%d@crash.example>\r\n\r\nAanvulling.\r\n", q, q%37, q, i, q)
		if err := imapSrv.Deliver("INBOX", []byte(raw), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}

	// The kill moments come from a seed printed here and taken from
	// DESKD_CRASH_SEED when set, so a failure can be replayed.
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("DESKD_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("DESKD_CRASH_SEED=%q: %v", v, err)
		}
	}
	t.Logf("crash seed %d (replay with DESKD_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	kills, midIngest := 0, 0
	var logs syncBuffer
	for range 6 {
		// Kill at a random moment after the process shows signs of work
		// (a mail moved or sent), so every kill lands mid-ingest however
		// slowly the binary starts (a -race build starts slowly).
		before := imapSrv.Count("Processed") + len(smtpSrv.Mails())
		cmd := deskdProcess(t, &logs, "run", "--config", configPath)
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if imapSrv.Count("Processed")+len(smtpSrv.Mails()) > before || imapSrv.Count("INBOX") == 0 {
				break
			}
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		// Mid-ingest: the process had done some of the work and mail was
		// still waiting when it died.
		worked := imapSrv.Count("Processed")+len(smtpSrv.Mails()) > before
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if worked && imapSrv.Count("INBOX") > 0 {
			midIngest++
		}
		kills++
		t.Logf("kill %d: inbox %d, processed %d, sent %d", kills, imapSrv.Count("INBOX"), imapSrv.Count("Processed"), len(smtpSrv.Mails()))
	}

	if midIngest == 0 {
		t.Errorf("none of the %d kills landed mid-ingest (seed %d): the test proved nothing", kills, seed)
	}

	// A last run finishes the work; SIGTERM must then end it with status 0
	// within 10 seconds: an "exits after SIGTERM" bound, generous against
	// a shutdown that takes milliseconds, there only so that a hang fails
	// here rather than at go test's timeout.
	cmd := deskdProcess(t, &logs, "run", "--config", configPath)
	deadline := time.Now().Add(60 * time.Second)
	for imapSrv.Count("INBOX") > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mails, _ := smtpSrv.WaitFor(ctx, questions)
	time.Sleep(300 * time.Millisecond) // let any last resend land
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("deskd exited with %v after SIGTERM; log:\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Error("deskd did not exit within 10s of SIGTERM")
	}

	if n := imapSrv.Count("INBOX"); n != 0 {
		t.Errorf("inbox still holds %d messages", n)
	}
	if n := imapSrv.Count("Processed"); n != questions+replies {
		t.Errorf("Processed holds %d, want %d", n, questions+replies)
	}

	// Acknowledgements: exactly one distinct Message-ID per case, each of
	// deskd's form, each to its case's requester alone.
	mails = smtpSrv.Mails()
	ackIDs := map[uint64]map[string]bool{}
	ackTo := map[uint64][]string{}
	for _, m := range mails {
		r, err := gomail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := r.Header.MessageID()
		caseID, ok := caseFromMessageID(id)
		if !ok {
			t.Errorf("mail to %v has Message-ID <%s>, not deskd's deskd.<case>.<hex>.<hex>@example.test", m.To, id)
			continue
		}
		if m.From != "support@example.test" {
			t.Errorf("<%s>: envelope sender %q", id, m.From)
		}
		if ackIDs[caseID] == nil {
			ackIDs[caseID] = map[string]bool{}
		}
		ackIDs[caseID][id] = true
		ackTo[caseID] = append(ackTo[caseID], strings.Join(m.To, ","))
	}

	db, err := store.Open(filepath.Join(dir, "deskd.db"), store.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seen := map[string]uint64{}
	caseCount := 0
	err = db.View(func(tx *store.Tx) error {
		return tx.ForEachCase("", func(c *cases.Case) error {
			caseCount++
			for _, k := range c.MessageKeys {
				if strings.HasPrefix(k, "out:") {
					continue
				}
				if prev, dup := seen[k]; dup {
					t.Errorf("message %s in case %d and case %d", k, prev, c.ID)
				}
				seen[k] = c.ID
			}
			if n := len(ackIDs[c.ID]); n != 1 {
				t.Errorf("case %d got %d distinct acknowledgements, want 1", c.ID, n)
			}
			for _, to := range ackTo[c.ID] {
				if to != c.Requester.Email {
					t.Errorf("case %d (requester %s): acknowledgement sent to %s", c.ID, c.Requester.Email, to)
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if caseCount != questions {
		t.Errorf("%d cases, want %d", caseCount, questions)
	}
	if len(seen) != questions+replies {
		t.Errorf("%d messages recorded, want %d", len(seen), questions+replies)
	}
	t.Logf("crash test: %d kills (%d mid-ingest), %d cases, %d messages, %d acknowledgements sent, %d resends (same Message-ID)",
		kills, midIngest, caseCount, len(seen), len(mails), len(mails)-len(ackIDs))
}

// caseFromMessageID reads the case number out of one of deskd's
// Message-IDs, deskd.<case>.<hex>.<hex>@example.test (its HMAC is checked
// elsewhere); ok is false for anything else.
func caseFromMessageID(id string) (uint64, bool) {
	local, domain, _ := strings.Cut(id, "@")
	parts := strings.Split(local, ".")
	if domain != "example.test" || len(parts) != 4 || parts[0] != "deskd" || !isHex(parts[2]) || !isHex(parts[3]) {
		return 0, false
	}
	n, err := strconv.ParseUint(parts[1], 10, 64)
	return n, err == nil && n > 0
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return s != "" && err == nil
}

// syncBuffer collects a child process's output while the test reads it.
// The buffer is a field, not embedded: an embedded bytes.Buffer would lend
// its ReadFrom to os/exec, which would then write around the lock.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
