// Package peers runs real protocol peers in-process on loopback: go-imap's
// IMAP server with its in-memory backend and a go-smtp server that keeps
// what it receives. The demo points deskd at them, and so do the fast
// tests: they speak the same protocols as Dovecot and Postfix, in
// milliseconds.
package peers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
)

// IMAP is an in-memory IMAP server with one user.
type IMAP struct {
	Addr     string // host:port on 127.0.0.1
	Username string
	Password string

	user   *imapmemserver.User
	server *imapserver.Server
	ln     net.Listener

	mu       sync.Mutex
	oauth    *OAuth // EnableOAuth
	byes     int
	sessions map[*oauthIMAPSession]struct{}
}

// StartIMAP starts an IMAP server on 127.0.0.1 with one user whose INBOX
// exists. It offers IMAP4rev2 (and so IDLE, MOVE and UIDPLUS).
func StartIMAP(username, password string) (*IMAP, error) {
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(username, password)
	if err := user.Create("INBOX", nil); err != nil {
		return nil, fmt.Errorf("create inbox: %w", err)
	}
	mem.AddUser(user)
	s := &IMAP{Username: username, Password: password, user: user, sessions: map[*oauthIMAPSession]struct{}{}}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(conn *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			s.mu.Lock()
			o := s.oauth
			s.mu.Unlock()
			if o != nil {
				// The in-memory session speaks IMAP4rev2, as the server
				// advertises; the wrapper must say so too.
				inner := idleFlush{mem.NewSession().(imapserver.SessionIMAP4rev2)}
				return &oauthIMAPSession{SessionIMAP4rev2: inner, peer: s, conn: conn, o: o}, nil, nil
			}
			return idleFlush{mem.NewSession().(imapserver.SessionIMAP4rev2)}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true, // loopback only
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve(ln) }()
	s.Addr, s.server, s.ln = ln.Addr().String(), srv, ln
	return s, nil
}

// idlePoll is how often a session in IDLE looks for news (idleFlush).
const idlePoll = 20 * time.Millisecond

// idleFlush is the in-memory session with an IDLE that reports every
// change, as Dovecot does. go-imap v2's SessionTracker.Idle only reports
// changes made while it waits: a message appended between the client's
// last command and its IDLE stays queued, unannounced, until another
// change or command comes (seen as deskd idling for the whole poll
// interval with mail in INBOX: `deskd demo` giving up on a sample, a
// benchmark waiting minutes). Polling the session's queue instead
// reports those too, within idlePoll.
type idleFlush struct{ imapserver.SessionIMAP4rev2 }

func (s idleFlush) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	tick := time.NewTicker(idlePoll)
	defer tick.Stop()
	for {
		if err := s.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

// Port is the listening port.
func (s *IMAP) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Deliver appends raw to mailbox as the mail server would on delivery,
// with receivedAt as INTERNALDATE (zero: now).
func (s *IMAP) Deliver(mailbox string, raw []byte, receivedAt time.Time) error {
	if receivedAt.IsZero() {
		receivedAt = time.Now()
	}
	_, err := s.user.Append(mailbox, literal{bytes.NewReader(raw), int64(len(raw))}, &imap.AppendOptions{Time: receivedAt})
	return err
}

// Count returns the number of messages in mailbox (0 if it does not exist).
func (s *IMAP) Count(mailbox string) int {
	st, err := s.user.Status(mailbox, &imap.StatusOptions{NumMessages: true})
	if err != nil || st.NumMessages == nil {
		return 0
	}
	return int(*st.NumMessages)
}

// Close stops the server.
func (s *IMAP) Close() error {
	err := s.server.Close()
	// Serve may not have started yet when Close runs: then the server
	// does not know the listener, and it would stay open, unserved, with
	// clients hanging on the greeting.
	_ = s.ln.Close()
	return err
}

type literal struct {
	io.Reader
	size int64
}

func (l literal) Size() int64 { return l.size }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// Mail is one message the SMTP sink accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	At   time.Time
}

// SMTP is an SMTP server that accepts everything and keeps it. FailNext
// makes it answer the next n transactions with a temporary error, to test
// retries.
type SMTP struct {
	Addr string

	mu       sync.Mutex
	mails    []Mail
	failNext int
	notify   chan struct{}
	onMail   func(Mail)
	oauth    *OAuth // EnableOAuth: AUTH required
	server   *smtp.Server
	ln       net.Listener
	// conns are the client connections open now; sessions counts every
	// connection accepted, rsets every RSET command received.
	conns    map[net.Conn]struct{}
	sessions int
	rsets    int
}

// StartSMTP starts the sink on 127.0.0.1; onMail (may be nil) sees every
// accepted mail.
func StartSMTP(onMail func(Mail)) (*SMTP, error) {
	s := &SMTP{notify: make(chan struct{}, 1), onMail: onMail}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ErrorLog = discardLogger{} // a client killed mid-transaction is expected in tests
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Addr = ln.Addr().String()
	s.ln = ln
	s.server = srv
	s.conns = map[net.Conn]struct{}{}
	go func() { _ = srv.Serve(smtpListener{ln, s}) }()
	return s, nil
}

// Sessions is how many connections the sink accepted so far.
func (s *SMTP) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Resets is how many RSET commands the sink received so far.
func (s *SMTP) Resets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rsets
}

// OpenConnections is how many client connections are open now.
func (s *SMTP) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// DropConnections closes every client connection open now, as a relay
// that ends idle sessions does; it returns how many it closed.
func (s *SMTP) DropConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	return len(s.conns)
}

// smtpListener hands the server connections that count what the sink
// wants to know about its clients.
type smtpListener struct {
	net.Listener
	sink *SMTP
}

func (l smtpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.sink.mu.Lock()
	l.sink.sessions++
	l.sink.conns[c] = struct{}{}
	l.sink.mu.Unlock()
	return &smtpConn{Conn: c, sink: l.sink}, nil
}

// smtpConn watches the client's lines for RSET (a DATA line "RSET" would
// count too; the tests' mails have none) and forgets itself when closed.
type smtpConn struct {
	net.Conn
	sink *SMTP
	line []byte
}

func (c *smtpConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for _, b := range p[:n] {
		if b != '\n' {
			if len(c.line) < 16 {
				c.line = append(c.line, b)
			}
			continue
		}
		if string(bytes.ToUpper(bytes.TrimSpace(c.line))) == "RSET" {
			c.sink.mu.Lock()
			c.sink.rsets++
			c.sink.mu.Unlock()
		}
		c.line = c.line[:0]
	}
	return n, err
}

func (c *smtpConn) Close() error {
	c.sink.mu.Lock()
	delete(c.sink.conns, c.Conn)
	c.sink.mu.Unlock()
	return c.Conn.Close()
}

// Port is the listening port.
func (s *SMTP) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// FailNext makes the next n transactions fail with 451.
func (s *SMTP) FailNext(n int) {
	s.mu.Lock()
	s.failNext = n
	s.mu.Unlock()
}

// Mails returns a copy of everything accepted so far.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// WaitFor waits until at least n mails were accepted or ctx ends.
func (s *SMTP) WaitFor(ctx context.Context, n int) ([]Mail, error) {
	for {
		if m := s.Mails(); len(m) >= n {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return s.Mails(), fmt.Errorf("waiting for %d mails: %w", n, ctx.Err())
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops the server.
func (s *SMTP) Close() error { return s.server.Close() }

// NewSession implements smtp.Backend.
func (s *SMTP) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{sink: s}, nil }

type smtpSession struct {
	sink   *SMTP
	from   string
	to     []string
	authed bool
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.sink.tokens() != nil && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}
func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.sink
	s.mu.Lock()
	if s.failNext > 0 {
		s.failNext--
		s.mu.Unlock()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	m := Mail{From: ss.from, To: ss.to, Data: data, At: time.Now()}
	s.mails = append(s.mails, m)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	if s.onMail != nil {
		s.onMail(m)
	}
	return nil
}
func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }

var _ smtp.Backend = (*SMTP)(nil)
