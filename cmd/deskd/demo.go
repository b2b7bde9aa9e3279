package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"golang.org/x/text/encoding/charmap"

	"deskd/config"
	"deskd/daemon"
	"deskd/internal/peers"
)

const (
	demoSupport  = "support@example.test"
	demoPassword = "demo"
)

// cmdDemo runs the real daemon against an in-process IMAP server and SMTP
// sink on loopback, feeds it a few typical mails, prints what it decided
// and sent, and stays up for a person to try it with a mail client.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("verbose", false, "show deskd's log lines")
	exit := fs.Bool("exit", false, "stop after the sample mails instead of staying up")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	var out sync.Mutex // stdout is written from the daemon's callbacks too
	say := func(format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(stdout, format, a...)
	}

	imapSrv, err := peers.StartIMAP(demoSupport, demoPassword)
	if err != nil {
		return err
	}
	defer imapSrv.Close()
	// The sink keeps what deskd sends; mail a person sends to support@
	// through it lands in the IMAP inbox, as Postfix would deliver it.
	smtpSrv, err := peers.StartSMTP(func(m peers.Mail) {
		if slices.ContainsFunc(m.To, func(to string) bool { return strings.EqualFold(to, demoSupport) }) {
			_ = imapSrv.Deliver("INBOX", m.Data, time.Now())
			return
		}
		say("  ✉ deskd sent to %s: %s\n", strings.Join(m.To, ", "), describeMail(m.Data))
	})
	if err != nil {
		return err
	}
	defer smtpSrv.Close()

	dir, err := os.MkdirTemp("", "deskd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := demoConfig(imapSrv, smtpSrv, dir)
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := daemonOptions(cfg, log)
	decisions := make(chan daemon.Report, 16)
	opts.OnDecision = func(r daemon.Report) {
		line := fmt.Sprintf("  ▶ uid %d from %s: %s", r.UID, r.From, r.Decision)
		if r.CaseID != 0 {
			line += fmt.Sprintf(" → case %d", r.CaseID)
		}
		if r.Role != "" {
			line += fmt.Sprintf(" (%s)", r.Role)
		}
		switch {
		case r.Ack != "":
			line += ", acknowledgement queued"
		case r.NoAck != "":
			line += ", no acknowledgement: " + r.NoAck
		}
		if r.Reason != "" && r.Reason != "new" {
			line += " [" + r.Reason + "]"
		}
		say("%s\n", line)
		select {
		case decisions <- r:
		default:
		}
	}
	d, err := daemon.Open(opts)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()

	say("deskd demo: IMAP %s, SMTP sink %s, store %s\n\n", imapSrv.Addr, smtpSrv.Addr, cfg.Store.Path)
	var ackID string
	for i, s := range demoSamples() {
		raw := s.raw(ackID)
		say("%d. %s\n", i+1, s.title)
		if err := imapSrv.Deliver("INBOX", raw, time.Now()); err != nil {
			return err
		}
		select {
		case r := <-decisions:
			if r.Ack != "" && ackID == "" {
				ackID = r.Ack
			}
		case <-time.After(30 * time.Second):
			return fmt.Errorf("demo: no decision for sample %d within 30s", i+1)
		case <-ctx.Done():
			return nil
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	sent, err := smtpSrv.WaitFor(waitCtx, demoMailsSent)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted, as during the samples
		}
		return fmt.Errorf("demo: deskd sent %d of its %d mails within 10s: %w", len(sent), demoMailsSent, err)
	}
	time.Sleep(200 * time.Millisecond) // let the sink's printing finish

	say("\nCases now (deskd cases list --socket %s):\n", cfg.Admin.Socket)
	list, err := daemon.ListAll(cfg.Admin.Socket, "all")
	if err != nil {
		return err
	}
	out.Lock()
	zone := supportZone(cfg) // as `deskd cases list` shows them
	if zone == nil {
		zone = time.Local
	}
	_ = printList(stdout, list, zone)
	out.Unlock()

	if *exit {
		stop()
		return <-done
	}
	say(`
deskd keeps running. Point a mail client at it:
  IMAP  %s  user %s  password %s  (plain text, loopback only)
  SMTP  %s  no authentication; mail to %s lands in the inbox and deskd answers
  CLI   go run ./cmd/deskd cases list --socket %s
Press Ctrl-C to stop.
`, imapSrv.Addr, demoSupport, demoPassword, smtpSrv.Addr, demoSupport, cfg.Admin.Socket)
	<-ctx.Done()
	stop()
	return <-done
}

// demoConfig is the embedded defaults, pointed at the in-process servers,
// with one customer and one staff domain so the samples mean something.
func demoConfig(imapSrv *peers.IMAP, smtpSrv *peers.SMTP, dir string) *config.Config {
	cfg := config.Default()
	cfg.IMAP.Host, cfg.IMAP.Port, cfg.IMAP.TLS = "127.0.0.1", imapSrv.Port(), config.TLSNone
	cfg.IMAP.Username, cfg.IMAP.Password = demoSupport, config.Secret(demoPassword)
	cfg.IMAP.PollInterval = time.Minute
	cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.TLS, cfg.SMTP.Auth = "127.0.0.1", smtpSrv.Port(), config.TLSNone, config.AuthNone
	cfg.SMTP.RetryInitial = 2 * time.Second
	cfg.Support.Address, cfg.Support.Name = demoSupport, "Example Support"
	cfg.Staff.Domains = []string{"example.test"}
	cfg.Staff.Notify = []string{"team@example.test"}
	cfg.Customers = []config.Customer{{
		Name: "Bakkerij Jansen", Plan: config.PlanPremium, Language: config.LangDutch,
		Domains:  []string{"jansen.example"},
		Contacts: []config.Contact{{Name: "Anna Jansen", Email: "anna@jansen.example"}},
	}}
	cfg.Store.Path = filepath.Join(dir, "deskd.db")
	cfg.Admin.Socket = filepath.Join(dir, "admin.sock")
	// Not the real deskd's /var/lib/deskd/backups.
	cfg.Backup.Dir = filepath.Join(dir, "backups")
	cfg.HTTP.Listen = "" // the default port may belong to a real deskd on this host
	return cfg
}

type demoSample struct {
	title string
	raw   func(ackID string) []byte
}

func demoSamples() []demoSample {
	date := time.Now().Format(time.RFC1123Z)
	return []demoSample{
		{"a new question in Dutch from a named contact of a Premium customer", func(string) []byte {
			return crlf(`From: Anna Jansen <anna@jansen.example>
To: support@example.test
Subject: Kassa start niet op
Message-ID: <demo-1@jansen.example>
Date: ` + date + `
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Goedemorgen,

Sinds vanochtend start onze kassa niet meer op. Kunt u ons helpen?

Met vriendelijke groet,
Anna Jansen
`)
		}},
		{"her reply in the same thread", func(string) []byte {
			return crlf(`From: Anna Jansen <anna@jansen.example>
To: support@example.test
Subject: Re: Kassa start niet op
Message-ID: <demo-2@jansen.example>
In-Reply-To: <demo-1@jansen.example>
References: <demo-1@jansen.example>
Date: ` + date + `
Content-Type: text/plain; charset=utf-8

Aanvulling: het scherm blijft zwart, de printer werkt wel.
`)
		}},
		{"an out-of-office robot answering deskd's acknowledgement", func(ackID string) []byte {
			return crlf(`From: Piet Jansen <piet@jansen.example>
To: support@example.test
Subject: Afwezig: [Case #1] Kassa start niet op
Message-ID: <demo-3@jansen.example>
In-Reply-To: <` + ackID + `>
Auto-Submitted: auto-replied
Date: ` + date + `
Content-Type: text/plain; charset=utf-8

Ik ben tot maandag afwezig.
`)
		}},
		{"a stranger writing in KOI8-R", func(string) []byte {
			body, _ := charmap.KOI8R.NewEncoder().String("Здравствуйте! Не работает принтер.\n")
			subj, _ := charmap.KOI8R.NewEncoder().String("Принтер")
			return append(crlf(`From: Ivan <ivan@example.org>
To: support@example.test
Subject: =?koi8-r?b?`+b64(subj)+`?=
Message-ID: <demo-4@example.org>
Date: `+date+`
MIME-Version: 1.0
Content-Type: text/plain; charset=koi8-r
Content-Transfer-Encoding: 8bit

`), []byte(strings.ReplaceAll(body, "\n", "\r\n"))...)
		}},
		{"a staff member answers the notification, setting priority High", func(string) []byte {
			return crlf(`From: Jan de Vries <jan@example.test>
To: support@example.test
Subject: RE: [Case #1] [hoog] Kassa start niet op
Message-ID: <demo-5@example.test>
Date: ` + date + `
Content-Type: text/plain; charset=utf-8

Beste Anna,

Wilt u de kassa tien seconden van de stroom halen? Dan kijken wij mee.

-- 
Jan de Vries

Op ` + date + ` schreef Example Support:
> Anna Jansen schreef: Sinds vanochtend start onze kassa niet meer op.
`)
		}},
		{"the staff member closes the case", func(string) []byte {
			return crlf(`From: Jan de Vries <jan@example.test>
To: support@example.test
Subject: Re: [Case #1] [opgelost] Kassa start niet op
Message-ID: <demo-6@example.test>
Date: ` + date + `
Content-Type: text/plain; charset=utf-8

Fijn dat het weer werkt. Ik sluit de case.

Jan
`)
		}},
	}
}

// demoMailsSent is how many mails the samples make deskd send: two
// acknowledgements, three staff notifications, the relay, the priority
// mail to the customer (R7), the closing mail and two confirmations to
// the staff member.
const demoMailsSent = 10

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// describeMail summarises an outgoing mail for the demo's output.
func describeMail(raw []byte) string {
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	subject, _ := r.Header.Subject()
	from := ""
	if as, err := r.Header.AddressList("From"); err == nil && len(as) == 1 && as[0].Name != "" {
		from = fmt.Sprintf(" from %q", as[0].Name)
	}
	auto := r.Header.Get("Auto-Submitted")
	if auto == "" {
		auto = "no (a person's words)"
	}
	return fmt.Sprintf("%q%s (Auto-Submitted: %s, In-Reply-To: %s)", subject, from, auto, r.Header.Get("In-Reply-To"))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
