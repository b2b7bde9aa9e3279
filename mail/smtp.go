package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPConfig says how deskd reaches its outgoing relay (submission server).
type SMTPConfig struct {
	Host string
	Port int
	// TLS is "implicit" (TLS from the first byte, port 465, RFC 8314 §3.3),
	// "starttls" (RFC 3207; refused if the server does not offer it) or
	// "none".
	TLS      string
	Username string
	Password string // never logged
	// Auth is "plain", "login", "none", AuthXOAUTH2 or AuthOAuthBearer (a
	// token from Tokens, the source the IMAP side uses too). Credentials
	// are only sent over TLS or to a loopback host.
	Auth   string
	Tokens TokenSource
	// HELO is the name deskd gives in EHLO; "" means "localhost".
	HELO string
	// Timeout bounds every network step (dial, each command, the data
	// transfer); 0 means one minute.
	Timeout time.Duration
	// IdleTimeout is how long a connection is kept for the next mail
	// after its last one; 0 closes each connection after its mail.
	IdleTimeout        time.Duration
	InsecureSkipVerify bool
	// RootCAs overrides the system roots (tests use a self-signed cert).
	RootCAs *x509.CertPool
}

// Sender delivers mails over SMTP. It keeps the connections it opened
// (up to maxIdleConns) for the next mails, for IdleTimeout: a mail on a
// kept connection begins with RSET, which also proves the connection still
// works; one that does not is closed and the mail goes on a new one.
// Several Sends may run at once, each on its own connection.
type Sender struct {
	cfg SMTPConfig
	log *slog.Logger

	mu     sync.Mutex
	idle   []*smtpConn // most recently used last
	closed bool
}

// maxIdleConns is how many connections a Sender keeps: the outbox's
// workers, with room to spare.
const maxIdleConns = 8

// smtpConn is one signed-in session with the relay.
type smtpConn struct {
	conn net.Conn
	c    *smtp.Client
	// timer closes the connection when it stayed idle for IdleTimeout.
	timer *time.Timer
	// dead is set when the connection was closed under a step (its
	// context ended): it is never kept.
	dead bool
}

// NewSender returns a Sender for cfg. log may be nil.
func NewSender(cfg SMTPConfig, log *slog.Logger) *Sender {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	return &Sender{cfg: cfg, log: log.With("smtp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))}
}

// Close ends the kept connections (QUIT) and keeps none from now on; a
// Send in flight still finishes, on its own connection.
func (s *Sender) Close() {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, sc := range idle {
		sc.timer.Stop()
		sc.quit(s.cfg.Timeout)
	}
}

// take returns a kept connection, the most recently used, or nil.
func (s *Sender) take() *smtpConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.idle) > 0 {
		sc := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if sc.timer.Stop() {
			return sc
		}
		// Its idle time ran out just now: expire, which no longer finds
		// it kept, leaves the closing to us.
		sc.c.Close()
	}
	return nil
}

// keep puts sc back for the next mail, or ends it when the Sender keeps no
// connections (closed, IdleTimeout 0, enough kept).
func (s *Sender) keep(sc *smtpConn) {
	if sc.dead {
		sc.c.Close()
		return
	}
	s.mu.Lock()
	if s.closed || s.cfg.IdleTimeout <= 0 || len(s.idle) >= maxIdleConns {
		s.mu.Unlock()
		sc.quit(s.cfg.Timeout)
		return
	}
	sc.timer = time.AfterFunc(s.cfg.IdleTimeout, func() { s.expire(sc) })
	s.idle = append(s.idle, sc)
	s.mu.Unlock()
}

// expire ends sc after its idle time, unless a Send took it meanwhile.
func (s *Sender) expire(sc *smtpConn) {
	s.mu.Lock()
	i := slices.Index(s.idle, sc)
	if i >= 0 {
		s.idle = slices.Delete(s.idle, i, i+1)
	}
	s.mu.Unlock()
	if i >= 0 {
		s.log.Debug("closing idle smtp connection", "idle", s.cfg.IdleTimeout)
		sc.quit(s.cfg.Timeout)
	}
}

// quit says goodbye and closes, within timeout.
func (sc *smtpConn) quit(timeout time.Duration) {
	_ = sc.conn.SetDeadline(time.Now().Add(timeout))
	if err := sc.c.Quit(); err != nil {
		sc.c.Close()
	}
}

// SendError is every error Send returns (a *RecipientsError aside). Op says
// which step failed ("dial", "tls", "hello", "auth", "mail", "rcpt", "data");
// Temp is decided once, in classify.
type SendError struct {
	Op   string
	Err  error
	Temp bool
}

func (e *SendError) Error() string   { return "smtp " + e.Op + ": " + e.Err.Error() }
func (e *SendError) Unwrap() error   { return e.Err }
func (e *SendError) Temporary() bool { return e.Temp }

// RecipientsError reports recipients the server refused at RCPT time.
// Delivered lists those that got the message (possibly none).
type RecipientsError struct {
	Rejected  map[string]error
	Delivered []string
}

func (e *RecipientsError) Error() string {
	rs := make([]string, 0, len(e.Rejected))
	for r, err := range e.Rejected {
		rs = append(rs, r+": "+err.Error())
	}
	// Stable text for logs and tests.
	slices.Sort(rs)
	return fmt.Sprintf("smtp: %d recipient(s) rejected (%d delivered): %s", len(e.Rejected), len(e.Delivered), strings.Join(rs, "; "))
}

// Temporary reports whether sending the whole message again may succeed
// without duplicating it: only when nobody got it and some refusal was
// temporary. Once the message went to some recipients it is done; a caller
// wanting to retry the temporarily refused ones sends to TemporaryRejected()
// alone.
func (e *RecipientsError) Temporary() bool {
	return len(e.Delivered) == 0 && len(e.TemporaryRejected()) > 0
}

// TemporaryRejected lists the refused recipients whose refusal was temporary.
func (e *RecipientsError) TemporaryRejected() []string {
	var out []string
	for r, err := range e.Rejected {
		if IsTemporary(err) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// IsTemporary reports whether err is worth retrying later. It is the one place
// that decides: every error Send returns carries a Temporary method.
func IsTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// classify wraps err from step op with its retry verdict.
//
//   - An SMTP reply: 4xx temporary, 5xx permanent (RFC 5321 §4.2.1) — but
//     only for the steps about this message (MAIL, RCPT, DATA). A refusal at
//     EHLO, STARTTLS or AUTH (535 bad credentials) is the relay's or the
//     configuration's problem, not the message's: it stays temporary so the
//     outbox keeps the mail while an operator fixes it.
//   - Network errors, timeouts, EOF, an interrupted TLS handshake, a
//     cancelled context: temporary.
//   - A certificate the configuration does not trust: temporary as well, for
//     the same reason as 535.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *SendError
	if errors.As(err, &se) {
		return err
	}
	temp := true
	var smtpErr *smtp.SMTPError
	if errors.As(err, &smtpErr) && smtpErr.Code/100 == 5 {
		switch op {
		case "mail", "rcpt", "data":
			temp = false
		}
	}
	if errors.Is(err, errBadInput) {
		temp = false
	}
	return &SendError{Op: op, Err: err, Temp: temp}
}

// errBadInput marks a message that can never be sent as given.
var errBadInput = errors.New("invalid input")

// Send delivers raw to recipients with envelopeFrom as the reverse path (""
// sends with a null reverse path, "<>", as RFC 3834 §3.3 suggests for
// automatic replies). It returns nil when the server accepted the message for
// every recipient; a *RecipientsError when it refused some at RCPT time (the
// rest got the message); otherwise an error for which IsTemporary tells
// whether a retry may succeed.
//
// Cancelling ctx closes the connection, which aborts any command in flight.
// If ctx ends after the final "." was sent but before the server answered,
// the mail may have been delivered although Send reports an error; a retry
// then sends it twice (at-least-once, as any SMTP client).
func (s *Sender) Send(ctx context.Context, envelopeFrom string, recipients []string, raw []byte) error {
	if err := checkEnvelope(envelopeFrom, true); err != nil {
		return classify("mail", err)
	}
	rcpts := make([]string, 0, len(recipients))
	for _, r := range recipients {
		if err := checkEnvelope(r, false); err != nil {
			return classify("rcpt", err)
		}
		if !slices.Contains(rcpts, r) {
			rcpts = append(rcpts, r)
		}
	}
	if len(rcpts) == 0 {
		return classify("rcpt", fmt.Errorf("%w: no recipients", errBadInput))
	}
	if err := ctx.Err(); err != nil {
		return classify("dial", err)
	}
	err := s.send(ctx, envelopeFrom, rcpts, raw)
	var sie *SignInError
	if errors.As(err, &sie) && IsOAuth(s.cfg.Auth) {
		// The server refused the token (expired early, revoked): auth
		// invalidated it, so one more try signs in with a fresh one.
		// Nothing was sent yet.
		s.log.InfoContext(ctx, "smtp refused the token; trying once more with a fresh one", "err", err)
		err = s.send(ctx, envelopeFrom, rcpts, raw)
	}
	return err
}

// send delivers raw on a kept connection (after an RSET that proves it
// still works) or a new one. A kept connection that fails before the
// message's final "." was sent (the relay closed it while it was idle,
// say) cannot have delivered anything: the mail goes again on a new
// connection, once.
func (s *Sender) send(ctx context.Context, envelopeFrom string, rcpts []string, raw []byte) error {
	sc, kept, err := s.conn(ctx)
	if err != nil {
		return err
	}
	sent, err := s.transact(ctx, sc, envelopeFrom, rcpts, raw)
	s.release(sc, err)
	if err != nil && kept && !sent && !reusable(err) && ctx.Err() == nil {
		s.log.DebugContext(ctx, "kept smtp connection failed; sending on a new one", "err", err)
		if sc, err = s.open(ctx); err != nil {
			return err
		}
		_, err = s.transact(ctx, sc, envelopeFrom, rcpts, raw)
		s.release(sc, err)
	}
	return err
}

// conn returns a kept connection that answered RSET (RFC 5321 §4.1.1.5:
// a clean slate, and proof the relay still listens), or a new one.
func (s *Sender) conn(ctx context.Context) (sc *smtpConn, kept bool, err error) {
	for sc = s.take(); sc != nil; sc = s.take() {
		err := s.onConn(ctx, sc, sc.c.Reset)
		if err == nil {
			return sc, true, nil
		}
		s.log.DebugContext(ctx, "kept smtp connection failed RSET; closing it", "err", err)
		sc.c.Close()
	}
	sc, err = s.open(ctx)
	return sc, false, err
}

// release keeps sc for the next mail when the session is still good after
// err, and closes it otherwise.
func (s *Sender) release(sc *smtpConn, err error) {
	if err == nil || reusable(err) {
		s.keep(sc)
		return
	}
	sc.c.Close()
}

// reusable reports whether the connection is still good after err: the
// relay answered (a refusal is a reply, and the session goes on), unless
// it said it is closing (421, RFC 5321 §3.8).
func reusable(err error) bool {
	var re *RecipientsError
	if errors.As(err, &re) {
		return true
	}
	var smtpErr *smtp.SMTPError
	return errors.As(err, &smtpErr) && smtpErr.Code != 421
}

// open connects, greets and signs in: a new session for one or more mails.
func (s *Sender) open(ctx context.Context) (*smtpConn, error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	sc := &smtpConn{conn: conn}
	err = s.onConn(ctx, sc, func() error {
		c, err := s.session(conn)
		if err != nil {
			return classify("hello", err)
		}
		sc.c = c
		if err := s.auth(ctx, c); err != nil {
			return classify("auth", err)
		}
		return nil
	})
	if err != nil {
		if sc.c != nil {
			sc.c.Close()
		}
		conn.Close()
		return nil, err
	}
	return sc, nil
}

// onConn runs step on sc's connection, closing the connection when ctx
// ends meanwhile: that unblocks any read or write, which a deadline alone
// would not (go-smtp resets deadlines per command). The error then names
// the context's end rather than "use of closed network connection".
func (s *Sender) onConn(ctx context.Context, sc *smtpConn, step func() error) error {
	stop := context.AfterFunc(ctx, func() { sc.conn.Close() })
	err := step()
	if stop() {
		return err
	}
	// ctx ended during the step: the connection is (being) closed.
	sc.dead = true
	if err == nil {
		return nil
	}
	var se *SendError
	if errors.As(err, &se) {
		se.Err, se.Temp = fmt.Errorf("%w (%v)", ctx.Err(), se.Err), true
		return err
	}
	return fmt.Errorf("%w (%v)", ctx.Err(), err)
}

// transact is one mail on sc: MAIL, RCPT for each recipient, DATA. When
// the relay takes fewer recipients per transaction than the mail has
// (452, RFC 5321 §4.5.3.1.10), the rest go in the next transaction on the
// same connection. sent says whether a final "." went out (and a failure
// after it may have delivered the mail).
func (s *Sender) transact(ctx context.Context, sc *smtpConn, envelopeFrom string, rcpts []string, raw []byte) (sent bool, err error) {
	var opts *smtp.MailOptions
	if !envelopeASCII(envelopeFrom) || !envelopeAllASCII(rcpts) {
		opts = &smtp.MailOptions{UTF8: true} // RFC 6531
	}
	rejected := map[string]error{}
	var delivered []string
	c := sc.c
	for todo := rcpts; len(todo) > 0; {
		var accepted, later []string
		err := s.onConn(ctx, sc, func() error {
			if err := c.Mail(envelopeFrom, opts); err != nil {
				return classify("mail", err)
			}
			for i, r := range todo {
				if err := c.Rcpt(r, nil); err != nil {
					var smtpErr *smtp.SMTPError
					if !errors.As(err, &smtpErr) {
						// Not a refusal but a broken connection: the
						// whole transaction is lost.
						return classify("rcpt", err)
					}
					if smtpErr.Code == 452 && len(accepted) > 0 {
						// Too many recipients for one transaction:
						// the rest go in the next one.
						later = todo[i:]
						break
					}
					rejected[r] = classify("rcpt", err)
					continue
				}
				accepted = append(accepted, r)
			}
			if len(accepted) == 0 {
				return c.Reset()
			}
			w, err := c.Data()
			if err != nil {
				return classify("data", err)
			}
			// go-smtp puts no deadline on the transfer itself; a server
			// that stops reading must not hang us.
			_ = sc.conn.SetDeadline(time.Now().Add(s.cfg.Timeout))
			if _, err := w.Write(raw); err != nil {
				return classify("data", err)
			}
			sent = true
			if err := w.Close(); err != nil {
				return classify("data", err)
			}
			return nil
		})
		if err != nil {
			return sent, classify("data", err)
		}
		delivered = append(delivered, accepted...)
		todo = later
	}
	s.log.DebugContext(ctx, "mail sent", "recipients", len(delivered), "rejected", len(rejected), "bytes", len(raw))
	switch {
	case len(rejected) == 0:
		return true, nil
	case len(delivered) == 0 && len(rcpts) == 1:
		return sent, rejected[rcpts[0]]
	}
	return sent, &RecipientsError{Rejected: rejected, Delivered: delivered}
}

// dial connects and, for implicit TLS, handshakes. The returned connection
// is the one to close on cancellation and to put deadlines on.
func (s *Sender) dial(ctx context.Context) (net.Conn, error) {
	switch s.cfg.TLS {
	case "implicit", "starttls", "none", "":
	default:
		// A configuration mistake, not the message's: temporary, like a
		// bad password (see classify).
		return nil, classify("dial", fmt.Errorf("unknown tls mode %q", s.cfg.TLS))
	}
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	d := net.Dialer{Timeout: s.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, classify("dial", err)
	}
	if s.cfg.TLS != "implicit" {
		return conn, nil
	}
	tc := tls.Client(conn, s.tlsConfig())
	hctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, classify("tls", err)
	}
	return tc, nil
}

// session reads the greeting, says EHLO and, in starttls mode, upgrades the
// connection (RFC 3207), never falling back to plain text: that is what a
// downgrade attacker wants. go-smtp's first EHLO before STARTTLS says
// "localhost"; the one after it, which counts, says cfg.HELO. The whole
// setup is bounded by the timeout: go-smtp's own greeting timeout is five
// minutes and cannot be set before the client exists.
func (s *Sender) session(conn net.Conn) (*smtp.Client, error) {
	var expired atomic.Bool
	timer := time.AfterFunc(s.cfg.Timeout, func() {
		expired.Store(true)
		conn.Close()
	})
	defer timer.Stop()
	timedOut := func(err error) error {
		if expired.Load() {
			return fmt.Errorf("session setup took longer than %v: %w", s.cfg.Timeout, err)
		}
		return err
	}

	var c *smtp.Client
	if s.cfg.TLS == "starttls" {
		var err error
		c, err = smtp.NewClientStartTLS(conn, s.tlsConfig())
		if err != nil {
			return nil, timedOut(err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = s.cfg.Timeout
	c.SubmissionTimeout = s.cfg.Timeout
	helo := s.cfg.HELO
	if helo == "" {
		helo = "localhost"
	}
	// After STARTTLS this is also where the TLS handshake happens.
	if err := c.Hello(helo); err != nil {
		c.Close()
		return nil, timedOut(err)
	}
	return c, nil
}

func (s *Sender) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         s.cfg.Host,
		RootCAs:            s.cfg.RootCAs,
		InsecureSkipVerify: s.cfg.InsecureSkipVerify, //nolint:gosec // operator's explicit choice
		MinVersion:         tls.VersionTLS12,
	}
}

func (s *Sender) auth(ctx context.Context, c *smtp.Client) error {
	if s.cfg.Auth == "" || s.cfg.Auth == "none" {
		return nil
	}
	if _, isTLS := c.TLSConnectionState(); !isTLS && !isLoopback(s.cfg.Host) {
		// Like net/smtp's PlainAuth: a password (or a token) does not go
		// over plain text to another host.
		return errors.New("refusing to send credentials without TLS")
	}
	var client sasl.Client
	var token string
	switch s.cfg.Auth {
	case "plain":
		client = sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)
	case "login":
		client = sasl.NewLoginClient(s.cfg.Username, s.cfg.Password)
	case AuthXOAUTH2, AuthOAuthBearer:
		var err error
		client, token, _, err = oauthClient(ctx, s.cfg.Tokens, s.cfg.Auth, s.cfg.Username, s.cfg.Host, s.cfg.Port)
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown auth mechanism %q", s.cfg.Auth)
	}
	if err := c.Auth(client); err != nil {
		// The server's reply never echoes the password; go-sasl's errors
		// do not either.
		var smtpErr *smtp.SMTPError
		if token != "" && errors.As(err, &smtpErr) {
			s.cfg.Tokens.Invalidate(token)
			return &SignInError{Mech: strings.ToUpper(s.cfg.Auth), Err: err}
		}
		return err
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkEnvelope refuses envelope addresses that could smuggle SMTP syntax
// (a ">" ending the path early, parameters, line breaks).
func checkEnvelope(addr string, allowEmpty bool) error {
	if addr == "" {
		if allowEmpty {
			return nil
		}
		return fmt.Errorf("%w: empty recipient", errBadInput)
	}
	for _, r := range addr {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: bad envelope address %q", errBadInput, addr)
		}
	}
	if !strings.Contains(addr, "@") {
		return fmt.Errorf("%w: bad envelope address %q", errBadInput, addr)
	}
	return nil
}

func envelopeASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func envelopeAllASCII(ss []string) bool {
	for _, s := range ss {
		if !envelopeASCII(s) {
			return false
		}
	}
	return true
}

// CheckAuth connects and signs in, and sends nothing ("deskd oauth test").
func (s *Sender) CheckAuth(ctx context.Context) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := s.session(conn)
	if err != nil {
		return classify("hello", err)
	}
	defer c.Close()
	if err := s.auth(ctx, c); err != nil {
		return classify("auth", err)
	}
	_ = c.Quit()
	return nil
}
