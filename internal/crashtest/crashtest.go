// Package crashtest is deskd's crash-safety scenario, shared by the test
// against the in-process IMAP and SMTP peers (cmd/deskd) and the one
// against Dovecot and Postfix (e2e): a backlog of questions and replies in
// support's inbox, deskd as a real process SIGKILLed at random moments
// while it ingests them and restarted each time, then one last run that
// finishes the work. The kills must meet group commits (several mails in
// one transaction). Afterwards nothing may be lost or doubled: every mail
// is in exactly one case, the inbox is empty, and every case got exactly
// one acknowledgement, to its requester alone (counted as distinct
// Message-IDs: a kill inside an SMTP transaction makes a resend with the
// same Message-ID unavoidable).
//
// The kill moments come from a seed printed in the test log and taken from
// DESKD_CRASH_SEED when set, so a failure can be replayed.
package crashtest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
	"deskd/store"
)

// Mail is one mail deskd handed to its relay, as the relay saw it.
type Mail struct {
	From string   // envelope sender
	To   []string // envelope recipients
	Data []byte
}

// World is the mail system deskd runs against, and how to start deskd.
type World struct {
	// Support is support's address: deskd's envelope sender, and the
	// domain of its Message-IDs.
	Support string
	// Customer is the address that asks question i.
	Customer func(i int) string
	// Deliver puts the backlog into support's INBOX, in order.
	Deliver func(raws [][]byte)
	// Count is the number of messages in one of support's mailboxes.
	Count func(mailbox string) int
	// Sent is every mail the relay has taken from deskd, once all of it
	// has arrived (the caller waits for its relay's queue).
	Sent func() []Mail
	// Command is an unstarted `deskd run --config …`. Its configuration
	// must set http.listen (port 0 is fine): the scenario reads the
	// outbox's size from /metrics to know when the last run is done.
	Command func() *exec.Cmd
	// StorePath is the store in that configuration.
	StorePath string
}

// The backlog: questions open a case each; replies add to every third
// question's case.
const (
	Questions = 400
	Replies   = 100
	kills     = 6
)

// Run plays the scenario against w and checks its outcome.
func Run(t *testing.T, w World) {
	var raws [][]byte
	for i := range Questions {
		raws = append(raws, fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: Vraag %d\r\nMessage-ID: <q%d@crash.example>\r\n\r\nVraag nummer %d.\r\n",
			w.Customer(i), w.Support, i, i, i))
	}
	for i := range Replies {
		q := i * 3
		raws = append(raws, fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: Re: Vraag %d\r\nMessage-ID: <r%d@crash.example>\r\nIn-Reply-To: <q%d@crash.example>\r\n\r\nAanvulling.\r\n",
			w.Customer(q), w.Support, q, i, q))
	}
	w.Deliver(raws)
	total := Questions + Replies
	if n := w.Count("INBOX"); n != total {
		t.Fatalf("inbox holds %d messages after delivering the backlog, want %d", n, total)
	}

	seed := Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	killed, midIngest := 0, 0
	var logs SyncBuffer
	for range kills {
		// Kill at a random moment after the process shows signs of work
		// (a mail moved), so every kill lands mid-ingest however slowly
		// the binary starts (a -race build starts slowly).
		before := w.Count("Processed")
		cmd := start(t, w, &logs)
		waitFor(t, 60*time.Second, "deskd to move a mail", func() bool {
			return w.Count("Processed") > before || w.Count("INBOX") == 0
		})
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // the random moment
		// Mid-ingest: the process had done some of the work and mail was
		// still waiting when it died.
		worked := w.Count("Processed") > before
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if worked && w.Count("INBOX") > 0 {
			midIngest++
		}
		killed++
		t.Logf("kill %d: inbox %d, processed %d", killed, w.Count("INBOX"), w.Count("Processed"))
	}
	if midIngest == 0 {
		t.Errorf("none of the %d kills landed mid-ingest (seed %d): the test proved nothing", killed, seed)
	}
	// The backlog must have met deskd's group commit (several mails
	// decided and committed in one transaction), which it logs.
	if groups := strings.Count(logs.String(), `"msg":"group committed"`); groups == 0 {
		t.Errorf("no group commit before the last run: the backlog was committed one mail at a time")
	} else {
		t.Logf("%d group commits before the last run", groups)
	}

	// A last run finishes the work: the inbox empty and the outbox
	// drained, resends of mails sent before a kill included.
	offset := logs.Len()
	cmd := start(t, w, &logs)
	var metrics string
	waitFor(t, 60*time.Second, "deskd's http listener", func() bool {
		metrics = listenAddr(logs.String()[offset:])
		return metrics != ""
	})
	metrics = "http://" + metrics + "/metrics"
	waitFor(t, 120*time.Second, "an empty inbox and outbox", func() bool {
		return w.Count("INBOX") == 0 && w.Count("Processed") == total && outboxQueued(metrics) == 0
	})
	// SIGTERM must then end it with status 0 within 10 seconds: an "exits
	// after SIGTERM" bound, generous against a shutdown that takes
	// milliseconds, there only so that a hang fails here rather than at
	// go test's timeout.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("deskd exited with %v after SIGTERM; log:\n%s", err, tail(logs.String(), 4000))
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Error("deskd did not exit within 10s of SIGTERM")
	}

	if n := w.Count("INBOX"); n != 0 {
		t.Errorf("inbox still holds %d messages", n)
	}
	if n := w.Count("Processed"); n != total {
		t.Errorf("Processed holds %d, want %d", n, total)
	}
	check(t, w, seed, killed, midIngest)
}

// EachMessageOnce walks every case of tx and checks what a run without
// loss or doubling leaves: each inbound message in exactly one case, and
// one distinct acknowledgement Message-ID per case (ackIDs: case → the
// ids the relay took). each, when not nil, sees every case after those
// checks. It returns how many cases and inbound messages it saw.
func EachMessageOnce(t testing.TB, tx *store.Tx, ackIDs map[uint64]map[string]bool, each func(*cases.Case)) (caseCount, messages int, err error) {
	t.Helper()
	seen := map[string]uint64{}
	err = tx.ForEachCase("", func(c *cases.Case) error {
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
		if each != nil {
			each(c)
		}
		return nil
	})
	return caseCount, len(seen), err
}

// check compares what the store holds with what the relay took.
func check(t *testing.T, w World, seed uint64, killed, midIngest int) {
	// Acknowledgements: exactly one distinct Message-ID per case, each of
	// deskd's form, each to its case's requester alone.
	_, domain, _ := strings.Cut(w.Support, "@")
	mails := w.Sent()
	ackIDs := map[uint64]map[string]bool{}
	ackTo := map[uint64][]string{}
	for _, m := range mails {
		r, err := gomail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := r.Header.MessageID()
		caseID, ok := CaseFromMessageID(id, domain)
		if !ok {
			t.Errorf("mail to %v has Message-ID <%s>, not deskd's deskd.<case>.<hex>.<hex>@%s", m.To, id, domain)
			continue
		}
		if !strings.EqualFold(m.From, w.Support) {
			t.Errorf("<%s>: envelope sender %q", id, m.From)
		}
		if ackIDs[caseID] == nil {
			ackIDs[caseID] = map[string]bool{}
		}
		ackIDs[caseID][id] = true
		ackTo[caseID] = append(ackTo[caseID], strings.Join(m.To, ","))
	}

	db, err := store.Open(w.StorePath, store.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var caseCount, messages int
	err = db.View(func(tx *store.Tx) (err error) {
		caseCount, messages, err = EachMessageOnce(t, tx, ackIDs, func(c *cases.Case) {
			for _, to := range ackTo[c.ID] {
				if !strings.EqualFold(to, c.Requester.Email) {
					t.Errorf("case %d (requester %s): acknowledgement sent to %s", c.ID, c.Requester.Email, to)
				}
			}
			delete(ackIDs, c.ID)
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for id := range ackIDs {
		t.Errorf("acknowledgement for case %d, which the store does not hold", id)
	}
	if caseCount != Questions {
		t.Errorf("%d cases, want %d", caseCount, Questions)
	}
	if messages != Questions+Replies {
		t.Errorf("%d messages recorded, want %d", messages, Questions+Replies)
	}
	if t.Failed() {
		t.Logf("replay with DESKD_CRASH_SEED=%d", seed)
	}
	t.Logf("crash test: %d kills (%d mid-ingest), %d cases, %d messages, %d acknowledgements sent",
		killed, midIngest, caseCount, messages, len(mails))
}

// Seed is the scenario's random seed: DESKD_CRASH_SEED when set, else
// the time; it is logged so that a failure can be replayed.
func Seed(t testing.TB) uint64 {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("DESKD_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("DESKD_CRASH_SEED=%q: %v", v, err)
		}
	}
	t.Logf("crash seed %d (replay with DESKD_CRASH_SEED=%d)", seed, seed)
	return seed
}

// start starts deskd with its log (JSON, info, so that the http
// listener's address is in it) going to logs.
func start(t *testing.T, w World, logs io.Writer) *exec.Cmd {
	t.Helper()
	cmd := w.Command()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "DESKD_LOG_LEVEL=info", "DESKD_LOG_FORMAT=json")
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// listenAddr finds the http listener's address in a JSON log.
func listenAddr(log string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "http listening" {
			return line.Addr
		}
	}
	return ""
}

// outboxQueued reads deskd_outbox_queued from /metrics; -1 when it cannot.
func outboxQueued(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "deskd_outbox_queued "); ok {
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// waitFor polls cond until it holds, failing t after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// CaseFromMessageID reads the case number out of one of deskd's
// Message-IDs, deskd.<case>.<hex>.<hex>@domain (its HMAC is checked
// elsewhere); ok is false for anything else.
func CaseFromMessageID(id, domain string) (uint64, bool) {
	local, d, _ := strings.Cut(id, "@")
	parts := strings.Split(local, ".")
	if !strings.EqualFold(d, domain) || len(parts) != 4 || parts[0] != "deskd" || !isHex(parts[2]) || !isHex(parts[3]) {
		return 0, false
	}
	n, err := strconv.ParseUint(parts[1], 10, 64)
	return n, err == nil && n > 0
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return s != "" && err == nil
}

// SyncBuffer collects a child process's output while the test reads it.
// The buffer is a field, not embedded: an embedded bytes.Buffer would lend
// its ReadFrom to os/exec, which would then write around the lock.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len is the number of bytes written so far.
func (b *SyncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
