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
	Timeout            time.Duration
	InsecureSkipVerify bool
	// RootCAs overrides the system roots (tests use a self-signed cert).
	RootCAs *x509.CertPool
}

// Sender delivers mails over SMTP. It opens one connection per Send: deskd
// sends few mails, and a fresh connection cannot be half-broken by an earlier
// failure. Connection reuse can come later behind the same API.
type Sender struct {
	cfg SMTPConfig
	log *slog.Logger
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

// send is one SMTP session delivering raw.
func (s *Sender) send(ctx context.Context, envelopeFrom string, rcpts []string, raw []byte) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	// Close the connection when ctx ends: that unblocks any read or write,
	// which a deadline alone would not (go-smtp resets deadlines per command).
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	// wrap reports the context's error rather than "use of closed network
	// connection" when we closed the connection ourselves.
	wrap := func(op string, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return classify(op, err)
	}

	c, err := s.session(conn)
	if err != nil {
		return wrap("hello", err)
	}
	defer c.Close()
	if err := s.auth(ctx, c); err != nil {
		return wrap("auth", err)
	}

	var opts *smtp.MailOptions
	if !envelopeASCII(envelopeFrom) || !envelopeAllASCII(rcpts) {
		opts = &smtp.MailOptions{UTF8: true} // RFC 6531
	}
	if err := c.Mail(envelopeFrom, opts); err != nil {
		return wrap("mail", err)
	}
	rejected := map[string]error{}
	var accepted []string
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			var smtpErr *smtp.SMTPError
			if !errors.As(err, &smtpErr) {
				// Not a refusal but a broken connection: the whole
				// transaction is lost.
				return wrap("rcpt", err)
			}
			rejected[r] = classify("rcpt", err)
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		_ = c.Reset()
		if len(rcpts) == 1 {
			return rejected[rcpts[0]]
		}
		return &RecipientsError{Rejected: rejected}
	}

	w, err := c.Data()
	if err != nil {
		return wrap("data", err)
	}
	// go-smtp puts no deadline on the transfer itself; a server that stops
	// reading must not hang us.
	_ = conn.SetDeadline(time.Now().Add(s.cfg.Timeout))
	if _, err := w.Write(raw); err != nil {
		return wrap("data", err)
	}
	if err := w.Close(); err != nil {
		return wrap("data", err)
	}
	// The message is delivered; a failing QUIT changes nothing.
	_ = c.Quit()

	s.log.DebugContext(ctx, "mail sent", "recipients", len(accepted), "rejected", len(rejected), "bytes", len(raw))
	if len(rejected) > 0 {
		return &RecipientsError{Rejected: rejected, Delivered: accepted}
	}
	return nil
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
