package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testBackend is a go-smtp backend that records what it receives; its hooks
// make it refuse, stall or drop the connection the way real servers do.
type testBackend struct {
	mu   sync.Mutex
	msgs []received

	user, pass string // non-empty: AUTH is required
	rcptErr    func(to string, attempt int) error
	dataErr    func(attempt int) error
	onData     func(c *smtp.Conn) // runs before the data is read
	attempts   int
	// maxRcpts > 0 refuses recipients beyond it in one transaction with
	// 452 (RFC 5321 §4.5.3.1.10).
	maxRcpts int
}

type received struct {
	from string
	to   []string
	data []byte
	tls  bool
	helo string
	user string
}

func (b *testBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	b.attempts++
	n := b.attempts
	b.mu.Unlock()
	return &testSession{b: b, c: c, attempt: n}, nil
}

func (b *testBackend) received() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

type testSession struct {
	b       *testBackend
	c       *smtp.Conn
	attempt int
	user    string
	from    string
	to      []string
}

func (s *testSession) AuthMechanisms() []string {
	if s.b.user == "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != s.b.user || pass != s.b.pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.maxRcpts > 0 && len(s.to) >= s.b.maxRcpts {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
	}
	if s.b.rcptErr != nil {
		if err := s.b.rcptErr(to, s.attempt); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	if s.b.onData != nil {
		s.b.onData(s.c)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.b.dataErr != nil {
		if err := s.b.dataErr(s.attempt); err != nil {
			return err
		}
	}
	_, isTLS := s.c.TLSConnectionState()
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, received{from: s.from, to: slices.Clone(s.to), data: data, tls: isTLS, helo: s.c.Hostname(), user: s.user})
	s.b.mu.Unlock()
	return nil
}

func (s *testSession) Reset()        { s.from, s.to = "", nil }
func (s *testSession) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// only implements as a client.
type loginServer struct {
	check      func(user, pass string) error
	user       string
	step       int
	gotInitial bool
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		l.user = string(resp)
		l.step = 2
		return []byte("Password:"), false, nil
	case 1:
		l.user = string(resp)
		l.step = 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost and a pool
// that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "deskd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

type serverOpts struct {
	tls          *tls.Config // offered with STARTTLS, or implicit
	implicit     bool
	insecureAuth bool
}

// startServer runs a go-smtp server on 127.0.0.1:0 and returns its port.
func startServer(t *testing.T, be smtp.Backend, o serverOpts) int {
	t.Helper()
	s := smtp.NewServer(be)
	s.Domain = "localhost"
	s.AllowInsecureAuth = o.insecureAuth
	s.ErrorLog = log.New(io.Discard, "", 0)
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	var l net.Listener
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicit {
		l = tls.NewListener(l, o.tls)
	} else {
		s.TLSConfig = o.tls
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// rawListener accepts connections and hands them to handle, for servers
// that misbehave below SMTP.
func rawListener(t *testing.T, handle func(net.Conn)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); handle(c) }()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

var testRaw = []byte("From: support@desk.example.com\r\nTo: a@klant.example\r\nSubject: test\r\n\r\nHallo.\r\n.leading dot\r\n")

func cfgFor(port int) SMTPConfig {
	return SMTPConfig{Host: "127.0.0.1", Port: port, TLS: "none", Auth: "none", HELO: "deskd.test", Timeout: 5 * time.Second}
}

func TestSendDelivers(t *testing.T) {
	be := &testBackend{}
	port := startServer(t, be, serverOpts{})
	err := NewSender(cfgFor(port), nil).Send(context.Background(), "bounce@desk.example.com", []string{"a@klant.example", "b@klant.example", "a@klant.example"}, testRaw)
	if err != nil {
		t.Fatal(err)
	}
	got := be.received()
	if len(got) != 1 {
		t.Fatalf("%d messages received", len(got))
	}
	m := got[0]
	if m.from != "bounce@desk.example.com" || !slices.Equal(m.to, []string{"a@klant.example", "b@klant.example"}) || m.helo != "deskd.test" || m.tls {
		t.Errorf("envelope: %+v", m)
	}
	if !bytes.Equal(m.data, testRaw) {
		t.Errorf("data = %q, want %q", m.data, testRaw)
	}
}

func TestSendNullReversePath(t *testing.T) {
	be := &testBackend{}
	port := startServer(t, be, serverOpts{})
	if err := NewSender(cfgFor(port), nil).Send(context.Background(), "", []string{"a@klant.example"}, testRaw); err != nil {
		t.Fatal(err)
	}
	if got := be.received(); len(got) != 1 || got[0].from != "" {
		t.Errorf("got %+v", got)
	}
}

func TestSendTemporaryThenAccepted(t *testing.T) {
	be := &testBackend{rcptErr: func(_ string, attempt int) error {
		if attempt == 1 { // greylisting
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, try again later"}
		}
		return nil
	}}
	port := startServer(t, be, serverOpts{})
	s := NewSender(cfgFor(port), nil)
	err := s.Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw)
	if err == nil || !IsTemporary(err) {
		t.Fatalf("first attempt: err = %v, temporary = %v; want a temporary error", err, IsTemporary(err))
	}
	if n := len(be.received()); n != 0 {
		t.Fatalf("%d messages delivered on a refused attempt", n)
	}
	if err := s.Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if n := len(be.received()); n != 1 {
		t.Errorf("%d messages delivered", n)
	}
}

var errUnknownUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}

func TestSendOneRecipientRejected(t *testing.T) {
	be := &testBackend{rcptErr: func(to string, _ int) error {
		if strings.HasPrefix(to, "unknown@") {
			return errUnknownUser
		}
		return nil
	}}
	port := startServer(t, be, serverOpts{})
	err := NewSender(cfgFor(port), nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example", "unknown@klant.example"}, testRaw)
	var re *RecipientsError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RecipientsError", err)
	}
	if IsTemporary(err) {
		t.Error("a partly delivered message is reported temporary (a retry would duplicate it)")
	}
	if len(re.Rejected) != 1 || re.Rejected["unknown@klant.example"] == nil || IsTemporary(re.Rejected["unknown@klant.example"]) {
		t.Errorf("Rejected = %v", re.Rejected)
	}
	var smtpErr *smtp.SMTPError
	if !errors.As(re.Rejected["unknown@klant.example"], &smtpErr) || smtpErr.Code != 550 {
		t.Errorf("the 550 reply is not reachable with errors.As: %v", re.Rejected)
	}
	if !slices.Equal(re.Delivered, []string{"a@klant.example"}) {
		t.Errorf("Delivered = %v", re.Delivered)
	}
	if got := be.received(); len(got) != 1 || !slices.Equal(got[0].to, []string{"a@klant.example"}) {
		t.Errorf("received %+v", got)
	}
}

func TestSendAllRejected(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rcpts    []string
		rcptErr  func(string, int) error
		wantTemp bool
	}{
		{"one permanent", []string{"x@klant.example"}, func(string, int) error { return errUnknownUser }, false},
		{"all permanent", []string{"x@klant.example", "y@klant.example"}, func(string, int) error { return errUnknownUser }, false},
		{"one temporary one permanent", []string{"x@klant.example", "y@klant.example"}, func(to string, _ int) error {
			if to == "x@klant.example" {
				return &smtp.SMTPError{Code: 452, Message: "mailbox full"}
			}
			return errUnknownUser
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &testBackend{rcptErr: tc.rcptErr}
			port := startServer(t, be, serverOpts{})
			err := NewSender(cfgFor(port), nil).Send(context.Background(), "d@desk.example.com", tc.rcpts, testRaw)
			if err == nil {
				t.Fatal("no error")
			}
			if IsTemporary(err) != tc.wantTemp {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, !tc.wantTemp, tc.wantTemp)
			}
			if len(be.received()) != 0 {
				t.Error("a message was delivered")
			}
		})
	}
}

func TestSendDataReplies(t *testing.T) {
	for _, tc := range []struct {
		code     int
		wantTemp bool
	}{{451, true}, {452, true}, {554, false}, {552, false}} {
		be := &testBackend{dataErr: func(int) error { return &smtp.SMTPError{Code: tc.code, Message: "no"} }}
		port := startServer(t, be, serverOpts{})
		err := NewSender(cfgFor(port), nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw)
		if err == nil || IsTemporary(err) != tc.wantTemp {
			t.Errorf("DATA %d: err = %v, temporary = %v; want temporary = %v", tc.code, err, IsTemporary(err), tc.wantTemp)
		}
		var se *SendError
		if !errors.As(err, &se) || se.Op != "data" {
			t.Errorf("DATA %d: op = %+v", tc.code, se)
		}
	}
}

func TestSendAuth(t *testing.T) {
	const pass = "s3cret-Pa55word"
	for _, mech := range []string{"plain", "login"} {
		t.Run(mech, func(t *testing.T) {
			be := &testBackend{user: "deskd", pass: pass}
			port := startServer(t, be, serverOpts{insecureAuth: true}) // loopback: no TLS needed
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

			cfg := cfgFor(port)
			cfg.Auth, cfg.Username, cfg.Password = mech, "deskd", pass
			if err := NewSender(cfg, logger).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw); err != nil {
				t.Fatalf("good credentials: %v", err)
			}
			if got := be.received(); len(got) != 1 || got[0].user != "deskd" {
				t.Fatalf("received %+v", got)
			}

			cfg.Password = "wrong-" + pass
			err := NewSender(cfg, logger).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw)
			var se *SendError
			if !errors.As(err, &se) || se.Op != "auth" {
				t.Fatalf("wrong password: err = %v", err)
			}
			// A bad password is the configuration's fault, not the
			// message's: keep the mail queued.
			if !IsTemporary(err) {
				t.Error("auth failure is permanent")
			}
			if strings.Contains(err.Error(), pass) || strings.Contains(logs.String(), pass) {
				t.Error("the password leaked into an error or a log line")
			}

			cfg.Auth = "none"
			err = NewSender(cfg, logger).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw)
			if err == nil {
				t.Error("no auth, server requires it: sent anyway")
			}
		})
	}
}

func TestSendSTARTTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	be := &testBackend{user: "deskd", pass: "pw"}
	// AllowInsecureAuth off: AUTH only works after STARTTLS.
	port := startServer(t, be, serverOpts{tls: &tls.Config{Certificates: []tls.Certificate{cert}}})
	cfg := cfgFor(port)
	cfg.TLS, cfg.RootCAs = "starttls", pool
	cfg.Auth, cfg.Username, cfg.Password = "plain", "deskd", "pw"
	if err := NewSender(cfg, nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw); err != nil {
		t.Fatal(err)
	}
	got := be.received()
	if len(got) != 1 || !got[0].tls || got[0].helo != "deskd.test" {
		t.Errorf("received %+v", got)
	}
}

func TestSendImplicitTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	be := &testBackend{user: "deskd", pass: "pw"}
	port := startServer(t, be, serverOpts{tls: &tls.Config{Certificates: []tls.Certificate{cert}}, implicit: true})
	cfg := cfgFor(port)
	cfg.TLS, cfg.RootCAs = "implicit", pool
	cfg.Auth, cfg.Username, cfg.Password = "login", "deskd", "pw"
	if err := NewSender(cfg, nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw); err != nil {
		t.Fatal(err)
	}
	if got := be.received(); len(got) != 1 || !got[0].tls {
		t.Errorf("received %+v", got)
	}
}

func TestSendUntrustedCertificate(t *testing.T) {
	cert, _ := selfSigned(t)
	be := &testBackend{}
	port := startServer(t, be, serverOpts{tls: &tls.Config{Certificates: []tls.Certificate{cert}}, implicit: true})
	cfg := cfgFor(port)
	cfg.TLS = "implicit" // system roots: the self-signed cert is not trusted
	err := NewSender(cfg, nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw)
	var se *SendError
	if !errors.As(err, &se) || se.Op != "tls" {
		t.Fatalf("err = %v, want a tls error", err)
	}
	if len(be.received()) != 0 {
		t.Error("delivered over an untrusted connection")
	}
	cfg.InsecureSkipVerify = true
	if err := NewSender(cfg, nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw); err != nil {
		t.Errorf("InsecureSkipVerify: %v", err)
	}
}

func TestSendSTARTTLSNotOffered(t *testing.T) {
	be := &testBackend{}
	port := startServer(t, be, serverOpts{})
	cfg := cfgFor(port)
	cfg.TLS = "starttls"
	err := NewSender(cfg, nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw)
	if err == nil || !IsTemporary(err) {
		t.Fatalf("err = %v; want a temporary error, never a plain-text fallback", err)
	}
	if len(be.received()) != 0 {
		t.Error("delivered without TLS")
	}
}

func TestSendServerClosesMidTransaction(t *testing.T) {
	be := &testBackend{onData: func(c *smtp.Conn) { c.Conn().Close() }}
	port := startServer(t, be, serverOpts{})
	err := NewSender(cfgFor(port), nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw)
	if err == nil || !IsTemporary(err) {
		t.Fatalf("err = %v, temporary = %v; want temporary", err, IsTemporary(err))
	}
}

func TestSendTLSHandshakeInterrupted(t *testing.T) {
	port := rawListener(t, func(c net.Conn) {
		buf := make([]byte, 10)
		_, _ = c.Read(buf) // the start of the ClientHello, then hang up
		c.Close()
	})
	cfg := cfgFor(port)
	cfg.TLS = "implicit"
	err := NewSender(cfg, nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw)
	if err == nil || !IsTemporary(err) {
		t.Fatalf("err = %v, temporary = %v; want temporary", err, IsTemporary(err))
	}
}

func TestSendConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	err = NewSender(cfgFor(port), nil).Send(context.Background(), "d@desk.example.com", []string{"a@klant.example"}, testRaw)
	if err == nil || !IsTemporary(err) {
		t.Fatalf("err = %v; want temporary", err)
	}
}

// hangingServer accepts connections and never says a word.
func hangingServer(t *testing.T) int {
	done := make(chan struct{})
	port := rawListener(t, func(c net.Conn) {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		c.Close()
	})
	// Cleanups run last-in first-out: release the handlers before
	// rawListener waits for them.
	t.Cleanup(func() { close(done) })
	return port
}

func TestSendContextCancelsHungServer(t *testing.T) {
	port := hangingServer(t)
	cfg := cfgFor(port)
	cfg.Timeout = time.Minute // only the context can save us
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// No clock in the assertion: had the context not ended the send, the
	// server's silence would have, after cfg.Timeout, with an I/O timeout
	// rather than the context's error.
	err := NewSender(cfg, nil).Send(ctx, "d@desk.example.com", []string{"a@klant.example"}, testRaw)
	if !errors.Is(err, context.DeadlineExceeded) || !IsTemporary(err) {
		t.Errorf("err = %v; want a temporary context.DeadlineExceeded", err)
	}
}

func TestSendContextCancelsHungData(t *testing.T) {
	release := make(chan struct{})
	be := &testBackend{onData: func(*smtp.Conn) { <-release }}
	port := startServer(t, be, serverOpts{})
	t.Cleanup(func() { close(release) })
	cfg := cfgFor(port)
	cfg.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	// As above: only the cancel can end this send with context.Canceled.
	err := NewSender(cfg, nil).Send(ctx, "d@desk.example.com", []string{"a@klant.example"}, testRaw)
	if !errors.Is(err, context.Canceled) || !IsTemporary(err) {
		t.Errorf("err = %v; want a temporary context.Canceled", err)
	}
}

func TestSendTimeoutOnSilentServer(t *testing.T) {
	port := hangingServer(t)
	cfg := cfgFor(port)
	cfg.Timeout = 300 * time.Millisecond
	// The server never answers; only cfg.Timeout can end the send, with
	// an I/O timeout. The context (a minute) is a backstop so that a
	// broken timeout fails as "context deadline exceeded" instead of
	// hanging the suite; it is not what is measured.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := NewSender(cfg, nil).Send(ctx, "d@desk.example.com", []string{"a@klant.example"}, testRaw)
	// cfg.Timeout ends it either as the connection's deadline (an I/O
	// timeout) or as the session-setup timer closing the connection.
	var ne net.Error
	byTimeout := errors.As(err, &ne) && ne.Timeout() || err != nil && strings.Contains(err.Error(), "took longer than "+cfg.Timeout.String())
	if err == nil || !IsTemporary(err) || errors.Is(err, context.DeadlineExceeded) || !byTimeout {
		t.Errorf("err = %v; want a temporary error from cfg.Timeout", err)
	}
}

func TestSendBadInput(t *testing.T) {
	s := NewSender(SMTPConfig{Host: "127.0.0.1", Port: 1}, nil) // never dialled
	for _, tc := range []struct {
		name  string
		from  string
		rcpts []string
	}{
		{"no recipients", "d@x.example", nil},
		{"path injection", "d@x.example", []string{"a@x.example> NOTIFY=NEVER"}},
		{"crlf", "d@x.example\r\nRCPT TO:<evil@x.example>", []string{"a@x.example"}},
		{"no at", "d@x.example", []string{"postmaster"}},
	} {
		err := s.Send(context.Background(), tc.from, tc.rcpts, testRaw)
		if err == nil || IsTemporary(err) {
			t.Errorf("%s: err = %v; want a permanent error", tc.name, err)
		}
	}
	bad := NewSender(SMTPConfig{Host: "127.0.0.1", Port: 1, TLS: "sometimes"}, nil)
	// A configuration mistake keeps the mail queued, like a bad password.
	if err := bad.Send(context.Background(), "d@x.example", []string{"a@x.example"}, testRaw); err == nil || !IsTemporary(err) {
		t.Errorf("unknown TLS mode: err = %v", err)
	}
}

func TestIsTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("plain"), false},
		{&SendError{Op: "rcpt", Err: errUnknownUser}, false},
		{&SendError{Op: "dial", Err: errors.New("refused"), Temp: true}, true},
		{&smtp.SMTPError{Code: 421}, true},
		{&RecipientsError{Rejected: map[string]error{"a@x": &SendError{Temp: true, Err: io.EOF}}}, true},
		{&RecipientsError{Rejected: map[string]error{"a@x": &SendError{Temp: true, Err: io.EOF}}, Delivered: []string{"b@x"}}, false},
	} {
		if got := IsTemporary(tc.err); got != tc.want {
			t.Errorf("IsTemporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if tc.err != nil {
			if got := IsTemporary(errors.Join(errors.New("outbox"), tc.err)); got != tc.want {
				t.Errorf("IsTemporary(wrapped %v) = %v, want %v", tc.err, got, tc.want)
			}
		}
	}
}

func TestAuthRefusedOverPlainTextToRemoteHost(t *testing.T) {
	// isLoopback gates sending a password without TLS.
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "smtp.example.com": false, "10.0.0.1": false} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}
