package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"deskd/internal/crashtest"
)

// imapPeer is go-imap's own server with its in-memory backend: a real IMAP
// peer, configurable in what it offers.
type imapPeer struct {
	addr string
	user *imapmemserver.User
	// commands is what clients sent, in order (without TLS only;
	// recordingListener).
	commands *crashtest.SyncBuffer
}

// recordingListener hands out connections whose reads are copied to log.
type recordingListener struct {
	net.Listener
	log *crashtest.SyncBuffer
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recordingConn{c, l.log}, nil
}

type recordingConn struct {
	net.Conn
	log *crashtest.SyncBuffer
}

func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	_, _ = c.log.Write(p[:n])
	return n, err
}

func startIMAPPeer(t *testing.T, caps imap.CapSet, tlsCfg *tls.Config, implicit bool) *imapPeer {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("support@example.test", "pw")
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		TLSConfig:    tlsCfg,
		InsecureAuth: tlsCfg == nil,
	})
	var ln net.Listener
	var err error
	if implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	commands := &crashtest.SyncBuffer{}
	if tlsCfg == nil {
		// The server must see a TLS listener's *tls.Conn as it is.
		ln = recordingListener{ln, commands}
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return &imapPeer{addr: ln.Addr().String(), user: user, commands: commands}
}

type lit struct {
	io.Reader
	n int64
}

func (l lit) Size() int64 { return l.n }

func (p *imapPeer) deliver(t *testing.T, raw string) {
	t.Helper()
	b := []byte(strings.ReplaceAll(raw, "\n", "\r\n"))
	if _, err := p.user.Append("INBOX", lit{bytes.NewReader(b), int64(len(b))}, &imap.AppendOptions{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// deliverDeleted appends raw flagged \Deleted: what another client
// leaves behind when it deletes a message without expunging it.
func (p *imapPeer) deliverDeleted(t *testing.T, raw string) {
	t.Helper()
	b := []byte(strings.ReplaceAll(raw, "\n", "\r\n"))
	if _, err := p.user.Append("INBOX", lit{bytes.NewReader(b), int64(len(b))},
		&imap.AppendOptions{Time: time.Now(), Flags: []imap.Flag{imap.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
}

func (p *imapPeer) count(mailbox string) int {
	st, err := p.user.Status(mailbox, &imap.StatusOptions{NumMessages: true})
	if err != nil || st.NumMessages == nil {
		return 0
	}
	return int(*st.NumMessages)
}

func (p *imapPeer) sourceConfig(t *testing.T, tlsMode string) IMAPConfig {
	host, port, _ := net.SplitHostPort(p.addr)
	var n int
	fmt.Sscan(port, &n)
	return IMAPConfig{
		Host: host, Port: n, TLS: tlsMode, Username: "support@example.test", Password: "pw",
		Mailbox: "INBOX", ProcessedMailbox: "Processed", QuarantineMailbox: "Quarantine",
		Idle: true, PollInterval: time.Minute, IdleRefresh: time.Minute, ConnectTimeout: 5 * time.Second,
	}
}

// recorder is a Handler that records what it was given.
type recorder struct {
	mu   sync.Mutex
	got  []*Fetched
	disp func(n int) Disposition
	seen chan struct{}
}

func newRecorder(disp func(n int) Disposition) *recorder {
	if disp == nil {
		disp = func(int) Disposition { return Processed }
	}
	return &recorder{disp: disp, seen: make(chan struct{}, 100)}
}

func (r *recorder) handle(_ context.Context, m *Fetched) Disposition {
	r.mu.Lock()
	r.got = append(r.got, m)
	n := len(r.got)
	r.mu.Unlock()
	r.seen <- struct{}{}
	return r.disp(n)
}

// checkHandledWithout checks that r handled n mails, none of them the one
// with Message-ID <notID>.
func (r *recorder) checkHandledWithout(t *testing.T, n int, notID string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != n {
		t.Errorf("handled %d times, want %d", len(r.got), n)
	}
	for _, m := range r.got {
		if strings.Contains(string(m.Raw), "<"+notID+">") {
			t.Errorf("handled <%s>, which another client flagged \\Deleted", notID)
		}
	}
}

func (r *recorder) wait(t *testing.T, n int) []*Fetched {
	t.Helper()
	for {
		r.mu.Lock()
		got := append([]*Fetched(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("handler saw %d messages, want %d", len(got), n)
		}
	}
}

func runSource(t *testing.T, cfg IMAPConfig, h Handler) (stop func()) {
	t.Helper()
	return runSourceStatus(t, cfg, h, nil)
}

// runSourceStatus is runSource with onStatus seeing every scan round.
func runSourceStatus(t *testing.T, cfg IMAPConfig, h Handler, onStatus func(SourceStatus)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	src := NewSource(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), onStatus)
	go func() { _ = src.Run(ctx, h); close(done) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("source did not stop")
		}
	}
}

func waitCount(t *testing.T, p *imapPeer, mailbox string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.count(mailbox) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d, want %d", mailbox, p.count(mailbox), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const sample = "From: a@b.example\nTo: support@example.test\nSubject: hi\nMessage-ID: <%d@b.example>\n\nbody %d\n"

// Implicit TLS (993) and STARTTLS (143) both reach the mailbox, verify the
// server's certificate, and a mail that arrives while the source is in
// IDLE (RFC 2177) is handled and moved to the processed mailbox.
func TestSourceTLSModesAndIdle(t *testing.T) {
	cert, pool := selfSigned(t)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapStartTLS: {}}
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			p := startIMAPPeer(t, caps, tlsCfg, mode == "implicit")
			cfg := p.sourceConfig(t, mode)
			cfg.RootCAs = pool
			p.deliver(t, fmt.Sprintf(sample, 1, 1))
			rec := newRecorder(nil)
			stop := runSource(t, cfg, rec.handle)
			defer stop()
			rec.wait(t, 1)
			waitCount(t, p, "Processed", 1)
			// Now the source sits in IDLE; new mail must wake it.
			time.Sleep(100 * time.Millisecond)
			p.deliver(t, fmt.Sprintf(sample, 2, 2))
			got := rec.wait(t, 2)
			if got[1].UID <= got[0].UID || !strings.Contains(string(got[1].Raw), "body 2") {
				t.Errorf("second fetch: uid %d raw %q", got[1].UID, got[1].Raw)
			}
			waitCount(t, p, "Processed", 2)
			waitCount(t, p, "INBOX", 0)
		})
	}
}

// A certificate the client does not trust is refused: no fallback.
func TestSourceRefusesUntrustedCertificate(t *testing.T) {
	cert, _ := selfSigned(t)
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}}, &tls.Config{Certificates: []tls.Certificate{cert}}, true)
	src := NewSource(p.sourceConfig(t, "implicit"), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if _, err := src.Login(context.Background()); err == nil {
		t.Fatal("login over an untrusted certificate succeeded")
	}
}

// A server with neither MOVE nor UIDPLUS gets COPY and \Deleted, never an
// EXPUNGE that could remove other people's flagged mail; the next scans
// skip the flagged copies instead of handling them again. Without IDLE the
// source polls.
func TestSourceWithoutMoveOrIdle(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	cfg.PollInterval = 50 * time.Millisecond
	p.deliver(t, fmt.Sprintf(sample, 1, 1))
	p.deliver(t, fmt.Sprintf(sample, 2, 2))
	rec := newRecorder(nil)
	rounds := make(chan struct{}, 100)
	stop := runSourceStatus(t, cfg, rec.handle, func(SourceStatus) {
		select {
		case rounds <- struct{}{}:
		default:
		}
	})
	rec.wait(t, 2)
	waitCount(t, p, "Processed", 2)
	// Four more scan rounds reported after both were moved (the first
	// may have begun before), so at least three whole rounds saw the
	// flagged copies in INBOX and had to skip them.
	for range len(rounds) {
		<-rounds
	}
	for i := range 4 {
		select {
		case <-rounds:
		case <-time.After(10 * time.Second):
			t.Fatalf("scan round %d of 4 after the moves did not come", i+1)
		}
	}
	stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != 2 {
		t.Errorf("handled %d times, want 2 (flagged copies must be skipped)", len(rec.got))
	}
	if n := p.count("INBOX"); n != 2 {
		t.Errorf("INBOX holds %d; deskd must not expunge without UIDPLUS", n)
	}
}

// A server with UIDPLUS (RFC 4315) but no MOVE (RFC 6851) gets COPY,
// \Deleted and UID EXPUNGE of deskd's own UIDs only: a message another
// client flagged \Deleted stays in the inbox, untouched and unhandled.
// go-imap's server offers exactly this when it advertises IMAP4rev1 and
// UIDPLUS without IMAP4rev2 (which would imply MOVE).
func TestSourceUIDPlusWithoutMove(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	p.deliverDeleted(t, fmt.Sprintf(sample, 9, 9))
	p.deliver(t, fmt.Sprintf(sample, 1, 1))
	p.deliver(t, fmt.Sprintf(sample, 2, 2))
	rec := newRecorder(nil)
	stop := runSource(t, cfg, rec.handle)
	rec.wait(t, 2)
	waitCount(t, p, "Processed", 2)
	waitCount(t, p, "INBOX", 1)
	stop()
	rec.checkHandledWithout(t, 2, "9@b.example")
}

// R11b: the INTERNALDATE is the receipt time, to the second, whatever the
// Date: header says; one the server dates after deskd fetched it (server
// clock ahead) becomes the fetch time, with a warning.
func TestSourceReceiptTime(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	past := time.Date(2026, 11, 17, 9, 15, 27, 0, time.UTC)
	future := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	for i, at := range []time.Time{past, future} {
		b := []byte(strings.ReplaceAll(fmt.Sprintf(sample, i, i), "\n", "\r\n"))
		if _, err := p.user.Append("INBOX", lit{bytes.NewReader(b), int64(len(b))}, &imap.AppendOptions{Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer // read after Run has returned
	rec := newRecorder(nil)
	before := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = NewSource(cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil).Run(ctx, rec.handle)
		close(done)
	}()
	got := rec.wait(t, 2)
	cancel()
	<-done
	if !got[0].InternalDate.Equal(past) {
		t.Errorf("INTERNALDATE %v, want the server's %v", got[0].InternalDate, past)
	}
	if at := got[1].InternalDate; at.Before(before) || at.After(time.Now()) {
		t.Errorf("future INTERNALDATE became %v, want the fetch time (between %v and now)", at, before)
	}
	if n := strings.Count(logs.String(), "INTERNALDATE lies in the future"); n != 1 || !strings.Contains(logs.String(), "R11b") {
		t.Errorf("want one R11b warning, log:\n%s", logs.String())
	}
}

// A message above MaxBytes is fetched header-only, so one huge mail cannot
// exhaust memory; the handler sees HeaderOnly and the full size.
func TestSourceHeaderOnlyAboveMaxBytes(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	cfg.MaxBytes = 1000
	p.deliver(t, fmt.Sprintf(sample, 1, 1)+strings.Repeat("x", 5000)+"\n")
	rec := newRecorder(func(int) Disposition { return Quarantine })
	stop := runSource(t, cfg, rec.handle)
	defer stop()
	got := rec.wait(t, 1)[0]
	if !got.HeaderOnly || got.Size < 5000 || len(got.Raw) > 1000 || !strings.Contains(string(got.Raw), "Subject: hi") {
		t.Errorf("header-only fetch: HeaderOnly=%v size=%d raw=%d bytes", got.HeaderOnly, got.Size, len(got.Raw))
	}
	waitCount(t, p, "Quarantine", 1)
}

// A handler that could not commit (Leave) gets the message again on the
// next full scan; the mail is never moved before it is handled.
func TestSourceLeaveRetries(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	cfg.PollInterval = 50 * time.Millisecond
	p.deliver(t, fmt.Sprintf(sample, 1, 1))
	rec := newRecorder(func(n int) Disposition {
		if n == 1 {
			return Leave
		}
		return Processed
	})
	stop := runSource(t, cfg, rec.handle)
	defer stop()
	got := rec.wait(t, 2)
	if got[0].UID != got[1].UID {
		t.Errorf("retried a different message: %d then %d", got[0].UID, got[1].UID)
	}
	waitCount(t, p, "Processed", 1)
}

// freezableProxy forwards TCP to target until frozen; a frozen proxy
// keeps its connections open but passes nothing: a half-open connection,
// as after a NAT timeout.
type freezableProxy struct {
	addr   string
	mu     sync.Mutex
	frozen bool
}

func startProxy(t *testing.T, target string) *freezableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &freezableProxy{addr: ln.Addr().String()}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						dst.Close()
						return
					}
					p.mu.Lock()
					frozen := p.frozen
					p.mu.Unlock()
					if frozen {
						continue // swallow: the peer hears nothing
					}
					if _, err := dst.Write(buf[:n]); err != nil {
						src.Close()
						return
					}
				}
			}
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
	return p
}

func (p *freezableProxy) setFrozen(f bool) {
	p.mu.Lock()
	p.frozen = f
	p.mu.Unlock()
}

// A server that goes silent (half-open connection) cannot wedge the
// source: the read deadline ends the session, the source reconnects, and
// mail that arrived meanwhile is handled.
func TestSourceSurvivesSilentServer(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
	proxy := startProxy(t, p.addr)
	cfg := p.sourceConfig(t, "none")
	host, port, _ := net.SplitHostPort(proxy.addr)
	cfg.Host = host
	fmt.Sscan(port, &cfg.Port)
	cfg.IdleRefresh = 200 * time.Millisecond
	cfg.CommandTimeout = 300 * time.Millisecond
	var mu sync.Mutex
	var errs []error
	onStatus := func(st SourceStatus) {
		if st.Err != nil {
			mu.Lock()
			errs = append(errs, st.Err)
			mu.Unlock()
		}
	}
	rec := newRecorder(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	src := NewSource(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), onStatus)
	go func() { _ = src.Run(ctx, rec.handle); close(done) }()
	defer func() { cancel(); <-done }()

	p.deliver(t, fmt.Sprintf(sample, 1, 1))
	rec.wait(t, 1)
	proxy.setFrozen(true)
	p.deliver(t, fmt.Sprintf(sample, 2, 2))
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(errs)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a silent server did not end the session")
		}
		time.Sleep(10 * time.Millisecond)
	}
	proxy.setFrozen(false)
	rec.wait(t, 2)
	waitCount(t, p, "INBOX", 0)
}

// A backlog reaches a BatchHandler in groups of at most CommitBatch, in
// UID order, and each group's mails go where the handler said; a mail that
// arrives alone is handed over alone, without waiting for company.
func TestSourceGroups(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	cfg.CommitBatch = 4
	for i := 1; i <= 10; i++ {
		p.deliver(t, fmt.Sprintf(sample, i, i))
	}
	var mu sync.Mutex
	var sizes []int
	var uids []uint32
	groups := make(chan struct{}, 100)
	handle := func(_ context.Context, ms []*Fetched) []Disposition {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(ms))
		ds := make([]Disposition, len(ms))
		for i, m := range ms {
			uids = append(uids, m.UID)
			ds[i] = Processed
			if strings.Contains(string(m.Raw), "body 3\r\n") {
				ds[i] = Quarantine
			}
		}
		groups <- struct{}{}
		return ds
	}
	defer runBatchSource(cfg, handle)()
	waitCount(t, p, "Processed", 9)
	waitCount(t, p, "Quarantine", 1)
	time.Sleep(100 * time.Millisecond) // the scan has ended
	p.deliver(t, fmt.Sprintf(sample, 11, 11))
	waitCount(t, p, "Processed", 10)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sizes, []int{4, 4, 2, 1}) {
		t.Errorf("group sizes %v, want [4 4 2 1]", sizes)
	}
	if !slices.IsSorted(uids) || len(uids) != 11 {
		t.Errorf("uids handed over %v, want 11 in order", uids)
	}
}

// After a scan that handled mail the source looks again every
// burstPollEvery (NOOP, then a scan) rather than waiting in IDLE, whose news
// Dovecot holds back 500 ms; BurstFor after the last mail it is in IDLE
// again, and new mail still wakes it.
func TestSourcePollsDuringBurstThenIdles(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	cfg.BurstFor = 300 * time.Millisecond
	defer runBatchSource(cfg, processAll)()
	command := regexp.MustCompile(`(?m)^\S+ (UID MOVE|NOOP|IDLE)\b`)
	// The commands since the first move, once the source is in IDLE.
	afterMove := func() []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var seq []string
			for _, m := range command.FindAllStringSubmatch(p.commands.String(), -1) {
				if m[1] == "UID MOVE" || len(seq) > 0 {
					seq = append(seq, m[1])
				}
			}
			if i := slices.Index(seq, "IDLE"); i > 0 {
				return seq[:i+1]
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no IDLE after a move within 10 s; commands:\n%s", p.commands.String())
		return nil
	}
	p.deliver(t, fmt.Sprintf(sample, 1, 1))
	waitCount(t, p, "Processed", 1)
	seq := afterMove()
	if polls := slices.Index(seq, "IDLE") - 1; polls < 2 || seq[1] != "NOOP" {
		t.Errorf("after the move %v, want NOOP polls before IDLE", seq)
	}
	p.deliver(t, fmt.Sprintf(sample, 2, 2))
	waitCount(t, p, "Processed", 2)
}

// SourceHooks.Backlog follows a scan: what it found, what is left after
// each group, and 0 when it ends, so that the daemon's outbox can let a
// backlog go first and never waits on a scan that is over.
func TestSourceBacklogHook(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	cfg.CommitBatch = 4
	for i := 1; i <= 10; i++ {
		p.deliver(t, fmt.Sprintf(sample, i, i))
	}
	var mu sync.Mutex
	var seen []int
	cfg.Hooks = &SourceHooks{Backlog: func(n int) {
		mu.Lock()
		seen = append(seen, n)
		mu.Unlock()
	}}
	defer runBatchSource(cfg, processAll)()
	waitCount(t, p, "Processed", 10)
	time.Sleep(100 * time.Millisecond) // the scan has ended
	p.deliver(t, fmt.Sprintf(sample, 11, 11))
	waitCount(t, p, "Processed", 11)
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 8 || !slices.Equal(seen[:5], []int{10, 6, 2, 0, 0}) {
		t.Fatalf("backlog seen %v, want [10 6 2 0 0] (the first scan) and then the new mail's", seen)
	}
	if rest := seen[5:]; !slices.Contains(rest, 1) || rest[len(rest)-1] != 0 {
		t.Errorf("after the first scan: %v, want the new mail (1) and 0 at the end", rest)
	}
}

// processAll is a BatchHandler that moves every mail to Processed.
func processAll(_ context.Context, ms []*Fetched) []Disposition {
	ds := make([]Disposition, len(ms))
	for i := range ds {
		ds[i] = Processed
	}
	return ds
}

// runBatchSource runs a Source with a BatchHandler until the returned stop
// is called.
func runBatchSource(cfg IMAPConfig, handle BatchHandler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = NewSource(cfg, slog.New(slog.DiscardHandler), nil).RunBatch(ctx, handle)
		close(done)
	}()
	return func() { cancel(); <-done }
}

// Between full scans the source asks for what came after the last UID it
// handled, sizes and dates at once (one UID FETCH n:*, no UID SEARCH
// before it): one round trip fewer per scan on a busy server. A message
// another client flagged \Deleted is left alone there too.
func TestSourceIncrementalScanIsOneFetch(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	p.deliver(t, fmt.Sprintf(sample, 1, 1))
	rec := newRecorder(nil)
	stop := runSource(t, cfg, rec.handle)
	defer stop()
	rec.wait(t, 1)
	waitCount(t, p, "Processed", 1)
	first := len(p.commands.String())

	p.deliverDeleted(t, fmt.Sprintf(sample, 9, 9))
	p.deliver(t, fmt.Sprintf(sample, 2, 2))
	rec.wait(t, 2)
	waitCount(t, p, "Processed", 2)
	stop()

	later := p.commands.String()[first:]
	if strings.Contains(later, "UID SEARCH") {
		t.Errorf("an incremental scan searched:\n%s", later)
	}
	// The items come in any order.
	var items []string
	if m := regexp.MustCompile(`UID FETCH 2:\* \(([^)]*)\)`).FindStringSubmatch(later); m != nil {
		items = strings.Fields(m[1])
	}
	for _, want := range []string{"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"} {
		if !slices.Contains(items, want) {
			t.Errorf("no UID FETCH 2:* of sizes and dates after the first scan (%s missing):\n%s", want, later)
		}
	}
	if slices.ContainsFunc(items, func(item string) bool { return strings.HasPrefix(item, "BODY") }) {
		t.Errorf("the UID FETCH 2:* reads bodies too: %v", items)
	}
	rec.checkHandledWithout(t, 2, "9@b.example")
	if n := p.count("INBOX"); n != 1 {
		t.Errorf("INBOX holds %d, want the \\Deleted one", n)
	}
}
