// Package portal is the customer case portal (R3, R16, R17): a web page on
// its own listener where a customer follows their cases without a
// password. A case link in every mail deskd sends a customer opens that
// one case (a capability, token.go); an e-mail sign-in link opens a
// session that lists every case the address may see (auth.go, view.go).
// Mail is rendered safely (render.go). The portal only reads the store,
// except for its own sessions and sign-in tokens; mail it sends (sign-in
// links) and customer replies go through the daemon (Mailer).
package portal

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"deskd/cases"
	"deskd/sla"
	"deskd/store"
)

// Mailer is the daemon as the portal sees it: what it sends and what it
// takes in (reply.go).
type Mailer interface {
	// SendSignIn queues the sign-in mail with link to to, in lang.
	SendSignIn(to cases.Address, lang, link string, expires time.Time) error
	// DeliverReply takes a customer's reply, built by the portal as a raw
	// RFC 5322 message, through the ingest as if it had arrived by IMAP
	// at receivedAt (Daemon.Deliver), and says where it landed. An error
	// means nothing was written.
	DeliverReply(raw []byte, receivedAt time.Time) (Delivery, error)
	// SolvedWish records that by asks to close case caseID and tells
	// staff; false when there was nothing new to record.
	SolvedWish(caseID uint64, by cases.Address) (bool, error)
}

// Config is everything the portal needs, as plain values.
type Config struct {
	// BaseURL is the public address of the portal ("https://support.example/"),
	// used in links; a https one makes cookies Secure.
	BaseURL string
	// SessionLifetime is how long a sign-in lasts (0 = 8h); LinkLifetime
	// how long a sign-in link works (0 = 15m).
	SessionLifetime time.Duration
	LinkLifetime    time.Duration
	// SignInPerAddress and SignInPerIP cap sign-in requests per hour
	// (0 = 5 and 30).
	SignInPerAddress int
	SignInPerIP      int
	// MaxMessageBytes bounds a reply with its attachments.
	MaxMessageBytes int

	Store  *store.DB
	Policy *cases.Policy
	Clocks *sla.Clocks
	// Key is the store's HMAC key; the portal derives its own keys from it.
	Key    []byte
	Mailer Mailer
	Log    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Observe, if set, is told of every request (page name, status code,
	// duration) for the metrics; Denied of every portal_denied.
	Observe func(page string, code int, d time.Duration)
	Denied  func()
	// SignInSent, if set, is called after each sign-in mail queued.
	SignInSent func()
}

// Server serves the portal.
type Server struct {
	cfg    Config
	keys   keys
	base   *url.URL
	secure bool
	now    func() time.Time
	log    *slog.Logger
	pages  map[string]*template.Template
	static http.Handler
	limits *limiter
	signin chan signInRequest
	// followLinks matches this portal's case links in a mail's text
	// (hideFollowLinks).
	followLinks *regexp.Regexp
}

//go:embed web
var webFS embed.FS

// New checks cfg and builds the server. Start its sign-in worker with Run.
func New(cfg Config) (*Server, error) {
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("portal: base_url must be an absolute http(s) URL")
	}
	if len(cfg.Key) < 16 {
		return nil, errors.New("portal: no HMAC key")
	}
	if cfg.Store == nil || cfg.Policy == nil || cfg.Clocks == nil {
		return nil, errors.New("portal: store, policy and clocks are required")
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = 8 * time.Hour
	}
	if cfg.LinkLifetime <= 0 {
		cfg.LinkLifetime = 15 * time.Minute
	}
	if cfg.SignInPerAddress <= 0 {
		cfg.SignInPerAddress = 5
	}
	if cfg.SignInPerIP <= 0 {
		cfg.SignInPerIP = 30
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, keys: deriveKeys(cfg.Key), base: base, secure: base.Scheme == "https",
		now: cfg.Now, log: cfg.Log,
		limits:      newLimiter(cfg.SignInPerAddress, cfg.SignInPerIP),
		signin:      make(chan signInRequest, 256),
		followLinks: regexp.MustCompile(regexp.QuoteMeta(base.String()+"/c/") + `[^\s<>"'()\[\]]+`),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.loadPages(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(webFS, "web/static")
	s.static = http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	return s, nil
}

// CaseLink returns the "follow your case" URL of case caseID for the
// address it is sent to: the capability (token.go).
func (s *Server) CaseLink(caseID uint64, email string) string {
	return s.base.String() + "/c/" + s.keys.signLink(caseID, email, s.now())
}

// CaseLinker makes follow links without a running server (the daemon
// renders mails whether or not the portal listens in this process).
func CaseLinker(baseURL string, key []byte, now func() time.Time) func(caseID uint64, email string) string {
	k := deriveKeys(key)
	base := strings.TrimRight(baseURL, "/")
	if now == nil {
		now = time.Now
	}
	return func(caseID uint64, email string) string {
		if caseID == 0 || email == "" {
			return ""
		}
		return base + "/c/" + k.signLink(caseID, email, now())
	}
}

// Serve serves the portal on ln until ctx ends, and runs the sign-in
// worker alongside.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go s.Run(ctx)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler is the portal's HTTP handler, every route behind the security
// headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, page string, h func(w http.ResponseWriter, r *http.Request) int) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			code := h(w, r)
			if s.cfg.Observe != nil {
				s.cfg.Observe(page, code, time.Since(start))
			}
		})
	}
	route("GET /{$}", "home", s.home)
	route("GET /signin", "signin", s.signInForm)
	route("POST /signin", "signin", s.signInRequest)
	route("GET /signin/{token}", "signin_link", s.signInConfirm)
	route("POST /signin/{token}", "signin_link", s.signInUse)
	route("POST /signout", "signout", s.signOut)
	route("GET /cases", "list", s.list)
	route("GET /cases/{id}", "case", s.casePage)
	route("POST /cases/{id}/reply", "reply", s.reply)
	route("POST /cases/{id}/solved", "solved", s.solved)
	route("GET /cases/{id}/m/{msg}/a/{att}", "attachment", s.attachment)
	route("GET /cases/{id}/m/{msg}/cid/{cid}", "inline", s.inline)
	route("GET /c/{cap}", "case", s.casePage)
	route("GET /c/{cap}/m/{msg}/a/{att}", "attachment", s.attachment)
	route("GET /c/{cap}/m/{msg}/cid/{cid}", "inline", s.inline)
	route("GET /static/", "static", func(w http.ResponseWriter, r *http.Request) int {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		s.static.ServeHTTP(w, r)
		return http.StatusOK
	})
	route("/", "other", func(w http.ResponseWriter, r *http.Request) int {
		return s.notFound(w, r, "")
	})
	return securityHeaders(mux)
}

// csp is the Content-Security-Policy of every response: nothing inline,
// nothing from elsewhere (the exact policy).
const csp = "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// No Cross-Origin-Opener-Policy: a page that sets it makes Chromium swap
// the new tab's renderer process (BrowsingInstance) on every first load
// from a mail, which more than doubled that load (BenchmarkFirstPageLoad:
// p50 720 ms with it, 280 ms without, in one run), against R16's 300 ms.
// What it would defend (a cross-origin window holding a handle on the
// portal's) finds nothing here: no script, no frames, one "not found"
// for everything that is not theirs; framing is refused
// (frame-ancestors, X-Frame-Options) and resources are same-origin only
// (CORP).
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// clientIP is the peer's address; behind a reverse proxy on loopback, the
// last X-Forwarded-For entry (the one the proxy added).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if p := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(p) != nil {
				return p
			}
		}
	}
	return host
}

func parseID(s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
