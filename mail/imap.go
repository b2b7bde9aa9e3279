package mail

import (
	"bytes"
	"cmp"
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

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// IMAPConfig says where the support mailbox is and how to watch it.
type IMAPConfig struct {
	Host     string
	Port     int
	TLS      string // "implicit", "starttls" or "none" (loopback only; config refuses it elsewhere)
	Username string
	Password string
	// Auth is "" or "password" (IMAP LOGIN with Password), AuthXOAUTH2 or
	// AuthOAuthBearer (AUTHENTICATE with a token from Tokens).
	Auth   string
	Tokens TokenSource
	// Mailbox is watched; handled mail moves to ProcessedMailbox or
	// QuarantineMailbox (both created when missing).
	Mailbox           string
	ProcessedMailbox  string
	QuarantineMailbox string
	// Idle uses IMAP IDLE (RFC 2177) when the server offers it.
	Idle bool
	// PollInterval is the full re-scan interval: the main loop without
	// IDLE and a safety net with it.
	PollInterval time.Duration
	// IdleRefresh re-issues IDLE before servers drop it (RFC 2177 §3: at
	// least every 29 minutes).
	IdleRefresh    time.Duration
	ConnectTimeout time.Duration
	// CommandTimeout is how long the server may stay silent while deskd
	// waits for an answer (default 2 minutes); renewed on every read, so a
	// long FETCH that keeps sending is never cut off.
	CommandTimeout     time.Duration
	InsecureSkipVerify bool
	RootCAs            *x509.CertPool // tests
	// MaxBytes is the largest message fetched whole; of a larger one only
	// the header is fetched (and the caller quarantines it).
	MaxBytes int64
	// BatchSize is how many messages one FETCH asks for.
	BatchSize int
	// CommitBatch is the most messages one BatchHandler call gets (default
	// 64): of what one FETCH brought, the next CommitBatch are handed over
	// together, and moved out of the inbox once handled (see mover).
	// Nothing waits to fill a batch: a mail alone is handed over alone.
	CommitBatch int
	// Hooks, if set, sees the watch loop's heartbeats and login attempts
	// (see SourceHooks).
	Hooks *SourceHooks
	// BurstFor is how long after a scan that handled mail the loop polls
	// (a NOOP and a scan every 25 ms) instead of waiting in IDLE; 0 means
	// 2 s (see burstPollEvery).
	BurstFor time.Duration
}

// Fetched is one message as the server holds it.
type Fetched struct {
	UID          uint32
	UIDValidity  uint32
	Mailbox      string
	InternalDate time.Time
	Size         int64
	Raw          []byte
	// HeaderOnly is set when Size exceeded MaxBytes and Raw holds only the
	// message header.
	HeaderOnly bool
	// FetchedAt is when the source had the message's size and date, just
	// before its bytes: the end of the mail server's part of its latency.
	FetchedAt time.Time
}

// Disposition says where a handled message goes.
type Disposition int

const (
	// Leave keeps the message in the inbox: the handler could not commit
	// (store error) and wants it offered again on the next scan.
	Leave Disposition = iota
	// Processed moves it to the processed mailbox.
	Processed
	// Quarantine moves it to the quarantine mailbox.
	Quarantine
)

// Handler decides one message and commits the decision before it returns;
// only then does the Source move the message out of the inbox. A crash in
// between leaves the message in the inbox, to be recognised as already
// handled on the next scan.
type Handler func(ctx context.Context, m *Fetched) Disposition

// BatchHandler decides several messages, in UID order, and commits the
// decisions before it returns (in one store transaction, if it likes: a
// group commit); it returns one Disposition per message, in the same
// order. Only then does the Source move them out of the inbox, with one
// command per destination.
type BatchHandler func(ctx context.Context, ms []*Fetched) []Disposition

// Each handles the messages of a batch one by one with h.
func (h Handler) Each() BatchHandler {
	return func(ctx context.Context, ms []*Fetched) []Disposition {
		out := make([]Disposition, len(ms))
		for i, m := range ms {
			out[i] = h(ctx, m)
		}
		return out
	}
}

// SourceStatus is reported after each scan round (for health checks).
type SourceStatus struct {
	At        time.Time
	Connected bool
	Idle      bool // the server offers IDLE and deskd uses it
	Err       error
	Handled   int
}

// Source watches one IMAP mailbox and hands every message in it to a
// Handler. It never relies on \Seen (it fetches with BODY.PEEK and looks
// at every message still in the inbox), so a person reading the mailbox in
// another client changes nothing.
type Source struct {
	cfg      IMAPConfig
	log      *slog.Logger
	onStatus func(SourceStatus)
	now      func() time.Time
	// signedIn is set when the current session got past sign-in (Run's
	// goroutine only).
	signedIn bool
}

// NewSource returns a source; onStatus may be nil.
func NewSource(cfg IMAPConfig, log *slog.Logger, onStatus func(SourceStatus)) *Source {
	if cfg.Mailbox == "" {
		cfg.Mailbox = "INBOX"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Minute
	}
	if cfg.BurstFor <= 0 {
		cfg.BurstFor = defaultBurstFor
	}
	if cfg.IdleRefresh <= 0 || cfg.IdleRefresh >= 29*time.Minute {
		cfg.IdleRefresh = 25 * time.Minute
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 2 * time.Minute
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	if cfg.CommitBatch <= 0 {
		cfg.CommitBatch = DefaultCommitBatch
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 25 << 20
	}
	if onStatus == nil {
		onStatus = func(SourceStatus) {}
	}
	return &Source{cfg: cfg, log: log, onStatus: onStatus, now: time.Now}
}

// SetClock sets deskd's clock, which no INTERNALDATE may be later than
// (R11b, see receipt); the default is time.Now. The daemon passes its own
// before Run.
func (s *Source) SetClock(now func() time.Time) { s.now = now }

// DefaultCommitBatch is IMAPConfig.CommitBatch's default: large enough
// that a backlog's commits (each a disk flush) and moves are few, small
// enough that one transaction stays short for the other writers.
const DefaultCommitBatch = 64

// Run watches the mailbox until ctx ends, handing handle one message at a
// time; see RunBatch.
func (s *Source) Run(ctx context.Context, handle Handler) error {
	return s.RunBatch(ctx, handle.Each())
}

// RunBatch watches the mailbox until ctx ends, reconnecting with backoff
// after any failure, and hands handle up to CommitBatch messages at a
// time. It returns nil when ctx ends. A batch whose handling has begun is
// finished (committed and moved) before RunBatch returns.
func (s *Source) RunBatch(ctx context.Context, handle BatchHandler) error {
	backoff := time.Second
	// quick is how many reconnects may skip the backoff: a session that
	// ended for its token (the server's BYE on expiry, deskd's own renewal,
	// a refused token) reconnects at once with a fresh one, but a sign-in
	// that then fails too waits out the backoff like any other failure.
	quick := 1
	for ctx.Err() == nil {
		start := time.Now()
		s.signedIn = false
		err := s.session(ctx, handle)
		if ctx.Err() != nil {
			return nil
		}
		if s.signedIn {
			quick = 1
		}
		var te *TokenEndError
		if errors.As(err, &te) && quick > 0 {
			quick--
			s.log.Info("imap session ended for its token; reconnecting now with a fresh one", "reason", te.Reason)
			s.reconnected(te.Reason)
			continue
		}
		s.onStatus(SourceStatus{At: time.Now(), Err: err})
		s.log.Warn("imap session ended, reconnecting", "err", err, "in", backoff)
		s.reconnected("error")
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		if !s.sleep(ctx, backoff) {
			return nil
		}
		backoff = min(backoff*2, time.Minute)
	}
	return nil
}

// Login connects and logs in once, to check credentials (check-config and
// start-up); it returns the server's capabilities.
func (s *Source) Login(ctx context.Context) (imap.CapSet, error) {
	c, _, err := s.dial(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	caps := c.Caps()
	_ = c.Logout().Wait()
	return caps, nil
}

func (s *Source) dial(ctx context.Context, handler *imapclient.UnilateralDataHandler) (*imapclient.Client, *watchedConn, error) {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	tlsCfg := &tls.Config{
		ServerName:         s.cfg.Host,
		InsecureSkipVerify: s.cfg.InsecureSkipVerify, //nolint:gosec // operator's explicit choice, loopback only (config enforces it)
		RootCAs:            s.cfg.RootCAs,
		NextProtos:         []string{"imap"},
	}
	opts := &imapclient.Options{TLSConfig: tlsCfg, UnilateralDataHandler: handler}
	dialer := &net.Dialer{Timeout: s.cfg.ConnectTimeout}
	raw, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	// Every read on the connection carries an inactivity deadline, so a
	// server that stops answering (a half-open connection after a NAT
	// timeout, a wedged server) ends the session instead of hanging it.
	wc := &watchedConn{Conn: raw}
	wc.setTimeout(s.cfg.ConnectTimeout)
	var c *imapclient.Client
	switch s.cfg.TLS {
	case "none":
		c = imapclient.New(wc, opts)
	case "starttls":
		c, err = imapclient.NewStartTLS(wc, opts)
	default:
		tc := tls.Client(wc, tlsCfg)
		if err = tc.HandshakeContext(ctx); err == nil {
			c = imapclient.New(tc, opts)
		}
	}
	if err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("connect %s (%s): %w", addr, s.cfg.TLS, err)
	}
	// A server that accepts the connection but never answers must not
	// wedge the loop: close the connection when ctx ends during login.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if IsOAuth(s.cfg.Auth) {
		sc, tok, exp, err := oauthClient(ctx, s.cfg.Tokens, s.cfg.Auth, s.cfg.Username, s.cfg.Host, s.cfg.Port)
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		if err := c.Authenticate(sc); err != nil {
			c.Close()
			// Never offer a refused token again: the next attempt
			// fetches a new one.
			s.cfg.Tokens.Invalidate(tok)
			return nil, nil, &TokenEndError{Reason: "refused", Err: fmt.Errorf("authenticate as %s: %w", s.cfg.Username,
				&SignInError{Mech: strings.ToUpper(s.cfg.Auth), Err: err})}
		}
		wc.tokenSince(tok, time.Now(), exp)
	} else if err := c.Login(s.cfg.Username, s.cfg.Password).Wait(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("login as %s: %w", s.cfg.Username, err)
	}
	wc.setTimeout(s.cfg.CommandTimeout)
	return c, wc, nil
}

// watchedConn puts an inactivity deadline on every read, and keeps the
// last bytes the server sent: go-imap's client closes on a BYE without
// saying why, and the why (Exchange: "BYE Session invalidated -
// AccessTokenExpired") decides whether deskd reconnects at once.
type watchedConn struct {
	net.Conn
	timeout atomic.Int64 // time.Duration

	mu   sync.Mutex
	tail []byte // the last tailBytes read
	// token is the session's access token, renewAt when it is about to
	// expire, expiry when it does (zero for a password session).
	token           string
	renewAt, expiry time.Time
}

const tailBytes = 512

func (c *watchedConn) Read(p []byte) (int, error) {
	if t := time.Duration(c.timeout.Load()); t > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(t))
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.tail = append(c.tail, p[:n]...)
		if len(c.tail) > tailBytes {
			c.tail = append(c.tail[:0], c.tail[len(c.tail)-tailBytes:]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

// tokenSince records the session's token: signed in at now, valid until
// exp. The session ends itself at renewAt, a tenth of the token's life
// (at least a second) before it expires, so no command and no IDLE runs
// on a token the server is about to drop.
func (c *watchedConn) tokenSince(token string, now, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token, c.expiry = token, exp
	c.renewAt = exp.Add(-max(exp.Sub(now)/10, time.Second))
}

func (c *watchedConn) tokenRenewAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renewAt
}

// bye is the text of the last untagged BYE the server sent, if any.
func (c *watchedConn) bye() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := bytes.LastIndex(c.tail, []byte("* BYE "))
	if i < 0 {
		return ""
	}
	line, _, _ := bytes.Cut(c.tail[i+len("* BYE "):], []byte("\r\n"))
	return string(line)
}

// TokenEndError is a session that ended because of its token: the server
// said it expired (BYE ... AccessTokenExpired), deskd renewed it before it
// did, or the server refused it at sign-in. Run reconnects at once.
type TokenEndError struct {
	Reason string // "expired", "renew", "refused"
	Err    error
}

func (e *TokenEndError) Error() string { return e.Err.Error() }
func (e *TokenEndError) Unwrap() error { return e.Err }

// errRenew ends a session whose token is about to expire.
var errRenew = errors.New("token about to expire: signing in again with a fresh one")

// tokenEnd tells a session that ended for its token from any other end.
func tokenEnd(wc *watchedConn, err error) error {
	if err == nil || wc == nil {
		return err
	}
	if errors.Is(err, errRenew) {
		return &TokenEndError{Reason: "renew", Err: err}
	}
	wc.mu.Lock()
	exp := wc.expiry
	wc.mu.Unlock()
	if exp.IsZero() {
		return err
	}
	if bye := wc.bye(); bye != "" {
		low := strings.ToLower(bye)
		if strings.Contains(low, "expired") || strings.Contains(low, "session invalidated") {
			return &TokenEndError{Reason: "expired", Err: fmt.Errorf("server ended the session (BYE %s): %w", bye, err)}
		}
	}
	if !time.Now().Before(exp) {
		return &TokenEndError{Reason: "expired", Err: fmt.Errorf("session token expired: %w", err)}
	}
	return err
}

// setTimeout changes the inactivity limit, including for a read already
// waiting (the client's reader goroutine always is).
func (c *watchedConn) setTimeout(d time.Duration) {
	c.timeout.Store(int64(d))
	_ = c.Conn.SetReadDeadline(time.Now().Add(d))
}

// session is one connection's life: select, scan everything, then wait for
// news (IDLE or poll) and scan again, until an error or ctx ends.
func (s *Source) session(ctx context.Context, handle BatchHandler) (err error) {
	// EXISTS responses arrive on the client's reader goroutine; a buffered
	// channel of one turns any number of them into a single wake-up.
	news := make(chan struct{}, 1)
	handler := &imapclient.UnilateralDataHandler{
		Mailbox: func(data *imapclient.UnilateralDataMailbox) {
			if data.NumMessages != nil {
				select {
				case news <- struct{}{}:
				default:
				}
			}
		},
	}
	c, wc, err := s.dial(ctx, handler)
	s.loginDone(ctx, err)
	if err != nil {
		return err
	}
	s.signedIn = true
	defer c.Close()
	defer func() {
		err = tokenEnd(wc, err)
		var te *TokenEndError
		if errors.As(err, &te) {
			// The token is spent (or about to be): the next sign-in, and
			// the SMTP side sharing the source, get a new one.
			wc.mu.Lock()
			s.cfg.Tokens.Invalidate(wc.token)
			wc.mu.Unlock()
		}
	}()
	// Closing the connection is the only way to interrupt a blocked
	// command; do it when ctx ends, but never in the middle of a handler
	// (see scan: handlers run to completion).
	var inFlight sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		inFlight.Lock()
		defer inFlight.Unlock()
		c.Close()
	})
	defer stop()

	for _, mbox := range []string{s.cfg.ProcessedMailbox, s.cfg.QuarantineMailbox} {
		if err := ensureMailbox(c, mbox); err != nil {
			return err
		}
	}
	sel, err := c.Select(s.cfg.Mailbox, &imap.SelectOptions{}).Wait()
	if err != nil {
		return fmt.Errorf("select %s: %w", s.cfg.Mailbox, err)
	}
	useIdle := s.cfg.Idle && (c.Caps().Has(imap.CapIdle) || c.Caps().Has(imap.CapIMAP4rev2))
	s.log.Info("imap connected", "mailbox", s.cfg.Mailbox, "uidvalidity", sel.UIDValidity,
		"messages", sel.NumMessages, "idle", useIdle, "move", c.Caps().Has(imap.CapMove))

	var lastUID uint32     // 0: the first scan looks at every message (start-up, new UIDVALIDITY)
	var lastMail time.Time // when a scan last handled mail (BurstFor)
	lastFull := time.Now()
	renewAt := wc.tokenRenewAt()
	for {
		s.heartbeat()
		if !renewAt.IsZero() && !time.Now().Before(renewAt) {
			return errRenew
		}
		full := lastUID == 0 || time.Since(lastFull) >= s.cfg.PollInterval
		// The scan sees everything the server has now; a wake-up that
		// arrives from here on means mail the scan may have missed, and
		// must survive until the IDLE below, which then ends at once.
		select {
		case <-news:
		default:
		}
		n, maxUID, err := s.scan(ctx, c, &inFlight, sel.UIDValidity, lastUID, full, handle)
		if full && err == nil {
			lastFull = time.Now()
		}
		if maxUID > lastUID {
			lastUID = maxUID
		}
		s.onStatus(SourceStatus{At: time.Now(), Connected: err == nil, Idle: useIdle, Err: err, Handled: n})
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if n > 0 {
			// Mail may have arrived while we worked: look again before
			// going idle.
			lastMail = time.Now()
			continue
		}
		wait := s.cfg.PollInterval - time.Since(lastFull)
		if !renewAt.IsZero() {
			// IDLE (or the poll's sleep) ends before the token does; the
			// loop's top then signs in again with a fresh one.
			wait = min(wait, time.Until(renewAt))
			if wait <= 0 {
				return errRenew
			}
		}
		switch {
		case useIdle && time.Since(lastMail) < s.cfg.BurstFor:
			// Mail is coming in: look again in a moment rather than wait
			// for IDLE's news, which a server may hold back to gather
			// changes (Dovecot: 500 ms after the first), a wait that
			// would fall on every mail arriving between two scans.
			if !s.sleep(ctx, burstPollEvery) {
				return nil
			}
		case useIdle:
			if err := s.idle(ctx, c, wc, news, min(wait, s.cfg.IdleRefresh)); err != nil {
				return err
			}
		default:
			if !s.sleep(ctx, wait) {
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		// A NOOP after IDLE makes the server report EXISTS changes it may
		// have held back, and proves the connection still works.
		if err := c.Noop().Wait(); err != nil {
			return fmt.Errorf("noop: %w", err)
		}
		if mb := c.Mailbox(); mb == nil {
			return errors.New("mailbox no longer selected")
		}
	}
}

// While mail keeps arriving (a scan handled some within IMAPConfig.BurstFor,
// default defaultBurstFor), the loop looks for more every burstPollEvery (a
// NOOP and a UID FETCH of what is new) instead of going into IDLE; after
// BurstFor of quiet it waits in IDLE again. A server may hold IDLE's news
// back to gather changes (Dovecot: 500 ms after the first), and under a
// steady flow that wait would fall on every mail that arrives between two
// scans. It costs at most 80 polls after each burst.
const (
	defaultBurstFor = 2 * time.Second
	burstPollEvery  = 25 * time.Millisecond
)

// idle waits in IDLE until the server reports new mail, d passes or ctx
// ends. deskd re-issues IDLE itself every IdleRefresh (under RFC 2177's
// 29 minutes).
func (s *Source) idle(ctx context.Context, c *imapclient.Client, wc *watchedConn, news <-chan struct{}, d time.Duration) error {
	// A server says nothing during IDLE until there is news (some send a
	// keep-alive every few minutes); allow the whole IDLE period.
	wc.setTimeout(d + s.cfg.CommandTimeout)
	defer wc.setTimeout(s.cfg.CommandTimeout)
	cmd, err := c.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(s.heartbeatEvery())
	defer tick.Stop()
wait:
	for {
		select {
		case <-news:
			break wait
		case <-timer.C:
			break wait
		case <-ctx.Done():
			break wait
		case <-c.Closed():
			break wait
		case <-tick.C:
			s.heartbeat()
		}
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("idle done: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	return nil
}

// scan hands every message with a UID above after (all of them when full)
// to handle, in UID order, CommitBatch at a time, and moves each group out
// of the inbox once handle returned (all its messages committed).
//
// Three things overlap, so that a backlog goes as fast as the slowest of
// them rather than their sum: the next FETCH batch is read while the
// current one is handled (prefetch), and moves run while the next groups
// are handled (mover: one move per destination in flight; what is
// committed meanwhile goes together in the next). The server works through
// the FETCH and the MOVE in the order they were sent, so a slow MOVE
// (Dovecot expunging from a big inbox while it delivers other mail) no
// longer holds up the commits, and a backlog needs a few large moves
// instead of one per group.
func (s *Source) scan(ctx context.Context, c *imapclient.Client, inFlight *sync.Mutex, uidValidity, after uint32, full bool, handle BatchHandler) (handled int, maxUID uint32, err error) {
	uids, known, err := s.find(c, after, full)
	if err != nil {
		return 0, 0, err
	}
	s.backlog(len(uids))
	defer s.backlog(0)
	// Moves are pipelined: that is safe because every mail is committed
	// before its move is sent, and a move that never happened (crash,
	// lost connection) only means the mail is seen again and recognised
	// as handled. Every move sent is waited for before scan returns.
	mv := &mover{s: s, c: c}
	defer func() {
		if merr := mv.finish(); err == nil {
			err = merr
		}
	}()
	var next <-chan fetchResult
	if len(uids) > 0 {
		next = s.prefetch(c, uids[:min(s.cfg.BatchSize, len(uids))], known)
	}
	for start := 0; start < len(uids); start += s.cfg.BatchSize {
		r := s.awaitFetch(next)
		if r.err != nil {
			return handled, maxUID, r.err
		}
		if ctx.Err() != nil {
			return handled, maxUID, nil
		}
		if rest := uids[min(start+s.cfg.BatchSize, len(uids)):]; len(rest) > 0 {
			next = s.prefetch(c, rest[:min(s.cfg.BatchSize, len(rest))], known)
		}
		msgs := r.msgs
		for g := 0; g < len(msgs); g += s.cfg.CommitBatch {
			group := msgs[g:min(g+s.cfg.CommitBatch, len(msgs))]
			for _, m := range group {
				m.UIDValidity = uidValidity
				m.Mailbox = s.cfg.Mailbox
			}
			inFlight.Lock()
			ds := handle(context.WithoutCancel(ctx), group)
			inFlight.Unlock()
			s.heartbeat()
			for i, m := range group {
				var d Disposition
				if i < len(ds) {
					d = ds[i]
				}
				mv.add(m.UID, d)
				if d != Leave {
					handled++
					maxUID = max(maxUID, m.UID)
				}
			}
			s.backlog(len(uids) - start - g - len(group))
			// The inbox shows progress within moments: what is committed
			// moves as soon as the move before it is done.
			if err := mv.pump(); err != nil {
				return handled, maxUID, err
			}
		}
	}
	return handled, maxUID, nil
}

// find lists the messages a scan handles, in UID order, without those
// flagged \Deleted. A full scan searches the whole mailbox (UID SEARCH,
// which answers with ranges however many messages wait). Between full
// scans, deskd asks only for what came after the last UID it handled,
// and asks for their sizes and dates at once (UID FETCH after+1:*), one
// round trip instead of a search and then a fetch: during a burst that
// is most of a scan's time on a busy server. known holds those sizes and
// dates by UID (nil after a search), which fetch then does not ask for
// again.
func (s *Source) find(c *imapclient.Client, after uint32, full bool) (uids []imap.UID, known *fetchedMeta, err error) {
	if full {
		found, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
		if err != nil {
			return nil, nil, fmt.Errorf("uid search: %w", err)
		}
		return found.AllUIDs(), nil, nil
	}
	set := imap.UIDSet{imap.UIDRange{Start: imap.UID(after + 1), Stop: 0}}
	meta, err := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true}).Collect()
	if err != nil {
		return nil, nil, fmt.Errorf("fetch new: %w", err)
	}
	known = &fetchedMeta{at: s.now(), byUID: make(map[imap.UID]*imapclient.FetchMessageBuffer, len(meta))}
	for _, m := range meta {
		// "UID n:*" always matches the highest UID, even below n (RFC
		// 3501 §6.4.8).
		if uint32(m.UID) <= after || slices.Contains(m.Flags, imap.FlagDeleted) {
			continue
		}
		uids = append(uids, m.UID)
		known.byUID[m.UID] = m
	}
	slices.Sort(uids)
	return uids, known, nil
}

// fetchedMeta are the sizes and dates find read, and when.
type fetchedMeta struct {
	at    time.Time
	byUID map[imap.UID]*imapclient.FetchMessageBuffer
}

// fetchResult is one batch read by prefetch.
type fetchResult struct {
	msgs []*Fetched
	err  error
}

// prefetch starts reading a batch (fetch) on its own goroutine; the
// result arrives on the returned channel. The client takes commands from
// several goroutines; FETCH and MOVE both go by UID, so the EXPUNGEs a
// move brings cannot confuse the fetch (RFC 9051 §5.5).
func (s *Source) prefetch(c *imapclient.Client, uids []imap.UID, known *fetchedMeta) <-chan fetchResult {
	ch := make(chan fetchResult, 1)
	go func() {
		msgs, err := s.fetch(c, uids, known)
		ch <- fetchResult{msgs, err}
	}()
	return ch
}

// awaitFetch waits for a prefetched batch, beating meanwhile (a backlog of
// large mails takes a while). The beat comes from the loop's own
// goroutine, so a handler that never returns still stops it.
func (s *Source) awaitFetch(ch <-chan fetchResult) fetchResult {
	tick := time.NewTicker(s.heartbeatEvery())
	defer tick.Stop()
	for {
		select {
		case r := <-ch:
			return r
		case <-tick.C:
			s.heartbeat()
		}
	}
}

// mover takes handled messages out of the inbox: at most one move per
// destination in flight, and the UIDs committed while it runs gathered
// for the next (a group's own move when the server keeps up, a larger one
// when it does not).
type mover struct {
	s      *Source
	c      *imapclient.Client
	moving []*pendingMove
	// waiting are committed UIDs not yet sent, per destination.
	processed, quarantined imap.UIDSet
}

// add notes where a handled message goes (Leave: nowhere).
func (m *mover) add(uid uint32, d Disposition) {
	switch d {
	case Processed:
		m.processed.AddNum(imap.UID(uid))
	case Quarantine:
		m.quarantined.AddNum(imap.UID(uid))
	}
}

// pump collects the moves that finished and, when none is left in flight,
// sends what waits; it never blocks on the server.
func (m *mover) pump() error {
	for len(m.moving) > 0 && m.moving[0].done() {
		if err := m.moving[0].wait(); err != nil {
			return err
		}
		m.moving = m.moving[1:]
	}
	if len(m.moving) > 0 {
		return nil
	}
	return m.send()
}

// finish sends what waits and waits for every move.
func (m *mover) finish() error {
	for {
		for _, pm := range m.moving {
			if err := pm.wait(); err != nil {
				m.moving = nil
				return err
			}
		}
		m.moving = nil
		if len(m.processed) == 0 && len(m.quarantined) == 0 {
			return nil
		}
		if err := m.send(); err != nil {
			return err
		}
	}
}

func (m *mover) send() error {
	for _, g := range []struct {
		set     *imap.UIDSet
		mailbox string
	}{{&m.processed, m.s.cfg.ProcessedMailbox}, {&m.quarantined, m.s.cfg.QuarantineMailbox}} {
		if len(*g.set) == 0 {
			continue
		}
		pm, err := m.s.startMove(m.c, *g.set, g.mailbox)
		*g.set = nil
		if err != nil {
			return err
		}
		m.moving = append(m.moving, pm)
	}
	return nil
}

// fetch reads a batch: first sizes and dates (unless find read them:
// known), then the whole message for those within MaxBytes and only the
// header for the rest, so one huge message can never exhaust memory.
func (s *Source) fetch(c *imapclient.Client, uids []imap.UID, known *fetchedMeta) ([]*Fetched, error) {
	var meta []*imapclient.FetchMessageBuffer
	var fetchedAt time.Time
	if known != nil {
		for _, uid := range uids {
			meta = append(meta, known.byUID[uid])
		}
		fetchedAt = known.at
	} else {
		var err error
		meta, err = c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, InternalDate: true, RFC822Size: true}).Collect()
		if err != nil {
			return nil, fmt.Errorf("fetch sizes: %w", err)
		}
		fetchedAt = s.now()
	}
	// Bodies are fetched in groups of at most fetchBytes, so a batch of
	// large mails cannot exhaust memory either.
	const fetchBytes = 32 << 20
	type group struct {
		set     imap.UIDSet
		section *imap.FetchItemBodySection
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	var groups []group
	var big imap.UIDSet
	var cur imap.UIDSet
	var curBytes int64
	byUID := make(map[imap.UID]*Fetched, len(meta))
	out := make([]*Fetched, 0, len(meta))
	for _, m := range meta {
		f := &Fetched{UID: uint32(m.UID), InternalDate: s.receipt(m.UID, m.InternalDate, fetchedAt), Size: m.RFC822Size, FetchedAt: fetchedAt}
		byUID[m.UID] = f
		out = append(out, f)
		if TooLarge(m.RFC822Size, s.cfg.MaxBytes) != nil {
			f.HeaderOnly = true
			big.AddNum(m.UID)
			continue
		}
		if curBytes+m.RFC822Size > fetchBytes && len(cur) > 0 {
			groups = append(groups, group{cur, whole})
			cur, curBytes = nil, 0
		}
		cur.AddNum(m.UID)
		curBytes += m.RFC822Size
	}
	if len(cur) > 0 {
		groups = append(groups, group{cur, whole})
	}
	if len(big) > 0 {
		groups = append(groups, group{big, header})
	}
	for _, g := range groups {
		bodies, err := c.Fetch(g.set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{g.section}}).Collect()
		if err != nil {
			return nil, fmt.Errorf("fetch bodies: %w", err)
		}
		for _, b := range bodies {
			if f := byUID[b.UID]; f != nil {
				f.Raw = b.FindBodySection(g.section)
			}
		}
	}
	// Sort by UID: the server may answer in any order.
	slices.SortFunc(out, func(a, b *Fetched) int { return cmp.Compare(a.UID, b.UID) })
	return out, nil
}

// receipt is the time the SLA clock of a mail starts at: the server's
// INTERNALDATE (R11b), except when the server dates the mail after deskd
// fetched it. That is the mail server's clock running ahead of deskd's
// (clock skew): the server cannot have received a mail after handing it
// over, and a clock started in the future would push every deadline back
// by the skew. Then the receipt is the moment of the fetch, the latest
// instant the mail can have arrived, and a warning says so.
func (s *Source) receipt(uid imap.UID, internal, fetchedAt time.Time) time.Time {
	if !internal.After(fetchedAt) {
		return internal
	}
	s.log.Warn("INTERNALDATE lies in the future (mail server clock ahead of deskd's?): the SLA clock starts at the fetch instead (R11b)",
		"uid", uid, "internaldate", internal.UTC(), "fetched", fetchedAt.UTC(), "ahead", internal.Sub(fetchedAt).Round(time.Second))
	return fetchedAt
}

// pendingMove is a move sent to the server whose answer is still due.
type pendingMove struct {
	cmd     *imapclient.MoveCommand // nil when the move already completed
	set     imap.UIDSet
	mailbox string
	// answered is closed, and err set, once the server answered cmd.
	answered chan struct{}
	err      error
}

// done reports, without waiting, whether the server answered.
func (pm *pendingMove) done() bool {
	if pm.cmd == nil {
		return true
	}
	select {
	case <-pm.answered:
		return true
	default:
		return false
	}
}

func (pm *pendingMove) wait() error {
	if pm.cmd == nil {
		return nil
	}
	<-pm.answered
	if pm.err != nil {
		return fmt.Errorf("move %v to %s: %w", pm.set, pm.mailbox, pm.err)
	}
	return nil
}

// startMove takes messages out of the inbox. With MOVE (RFC 6851), or COPY
// and UID EXPUNGE (RFC 4315), only these messages are touched, and the
// command is left in flight. A server with neither gets COPY and \Deleted
// but no EXPUNGE: deskd never expunges messages it did not flag itself,
// and scans skip \Deleted messages.
func (s *Source) startMove(c *imapclient.Client, set imap.UIDSet, mailbox string) (*pendingMove, error) {
	pm := &pendingMove{set: set, mailbox: mailbox}
	caps := c.Caps()
	if caps.Has(imap.CapMove) || caps.Has(imap.CapUIDPlus) || caps.Has(imap.CapIMAP4rev2) {
		pm.cmd = c.Move(set, mailbox)
		pm.answered = make(chan struct{})
		go func() {
			_, pm.err = pm.cmd.Wait()
			close(pm.answered)
		}()
		return pm, nil
	}
	if _, err := c.Copy(set, mailbox).Wait(); err != nil {
		return pm, fmt.Errorf("copy %v to %s: %w", set, mailbox, err)
	}
	flags := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := c.Store(set, flags, nil).Close(); err != nil {
		return pm, fmt.Errorf("flag %v deleted: %w", set, err)
	}
	return pm, nil
}

// ensureMailbox creates mailbox unless it exists.
func ensureMailbox(c *imapclient.Client, name string) error {
	if name == "" {
		return nil
	}
	list, err := c.List("", name, nil).Collect()
	if err != nil {
		return fmt.Errorf("list %s: %w", name, err)
	}
	if len(list) > 0 {
		return nil
	}
	if err := c.Create(name, nil).Wait(); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

// CheckMailbox signs in and selects the watched mailbox, for "deskd oauth
// test": it returns the number of messages in it.
func (s *Source) CheckMailbox(ctx context.Context) (uint32, error) {
	c, _, err := s.dial(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	sel, err := c.Select(s.cfg.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return 0, fmt.Errorf("select %s: %w", s.cfg.Mailbox, err)
	}
	_ = c.Logout().Wait()
	return sel.NumMessages, nil
}
