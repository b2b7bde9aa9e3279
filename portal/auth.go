package portal

import (
	"context"
	"net/http"
	"net/mail"
	"net/netip"
	"strings"
	"sync"
	"time"

	"deskd/cases"
	"deskd/store"
)

// Passwordless sign-in. The form takes an address and always answers the
// same page after the same work: checking the rate limits and handing the
// address to a worker. Whether the address is known, bounced or staff is
// decided only by the worker (Run), after the answer has gone, so neither
// the body nor the time of the answer says anything about the address.
// The link a known address receives works once, for LinkLifetime, and
// leads to a confirmation page whose button (a POST) signs in: a mail
// scanner that fetches links cannot use it up. Signing in always mints a
// new session token (no fixation: a token the browser brings is never
// promoted), stored in bbolt as its SHA-256.

const (
	sessionCookie = "deskd_session"
	visitorCookie = "deskd_visitor"
)

type signInRequest struct {
	email, lang, ip string
}

// visitor returns the browser's CSRF binding: its session token when it
// has a live one, else its visitor cookie, set here when missing.
func (s *Server) binding(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil && validRandomToken(c.Value) {
		if sess, _ := s.session(r); sess != nil {
			return c.Value
		}
	}
	if c, err := r.Cookie(visitorCookie); err == nil && validRandomToken(c.Value) {
		return c.Value
	}
	v := randomToken()
	http.SetCookie(w, s.cookie(visitorCookie, v, 0))
	return v
}

// checkCSRF verifies a state-changing request's form token.
func (s *Server) checkCSRF(r *http.Request) bool {
	tok := r.PostFormValue("csrf")
	for _, name := range []string{sessionCookie, visitorCookie} {
		if c, err := r.Cookie(name); err == nil && validRandomToken(c.Value) && s.keys.checkCSRF(c.Value, tok) {
			return true
		}
	}
	return false
}

func (s *Server) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name: name, Value: value, Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else if maxAge < 0 {
		c.MaxAge = -1
	}
	return c
}

// session returns the live session of the request's cookie, or nil.
func (s *Server) session(r *http.Request) (*store.PortalSession, string) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !validRandomToken(c.Value) {
		return nil, ""
	}
	var sess *store.PortalSession
	err = s.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		sess, err = tx.PortalSession(c.Value, s.now())
		return err
	})
	if err != nil {
		s.log.Error("portal session", "err", err)
		return nil, ""
	}
	if sess == nil {
		return nil, ""
	}
	return sess, c.Value
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) int {
	if sess, _ := s.session(r); sess != nil {
		http.Redirect(w, r, "/cases", http.StatusSeeOther)
		return http.StatusSeeOther
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return http.StatusSeeOther
}

func (s *Server) signInForm(w http.ResponseWriter, r *http.Request) int {
	lang := pickLang(w, r, "", s.cfg.Policy.DefaultLanguage)
	return s.render(w, http.StatusOK, "signin", lang, pageData{CSRF: s.keys.csrfToken(s.binding(w, r))})
}

// signInRequest answers every well-formed request with the same page. The
// answer's work does not depend on the address: parse, two rate limits,
// a non-blocking send to the worker.
func (s *Server) signInRequest(w http.ResponseWriter, r *http.Request) int {
	lang := pickLang(w, r, "", s.cfg.Policy.DefaultLanguage)
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if !s.checkCSRF(r) {
		return s.badRequest(w, lang)
	}
	addr, err := mail.ParseAddress(strings.TrimSpace(r.PostFormValue("email")))
	if err != nil || len(addr.Address) > maxAddressLen {
		return s.render(w, http.StatusOK, "signin", lang, pageData{CSRF: s.keys.csrfToken(s.binding(w, r)), Error: T(lang, "signin.email")})
	}
	email := strings.ToLower(addr.Address)
	ip := clientIP(r)
	if !s.limits.allow(email, ip, s.now()) {
		return s.render(w, http.StatusTooManyRequests, "message", lang, pageData{Title: T(lang, "limited"), Message: T(lang, "limited")})
	}
	select {
	case s.signin <- signInRequest{email: email, lang: lang, ip: ip}:
	default:
		s.log.Warn("portal sign-in queue full, request dropped", "ip", ip)
	}
	return s.render(w, http.StatusOK, "message", lang, pageData{Title: T(lang, "signin.sent"), Message: T(lang, "signin.sentbody")})
}

// Run is the sign-in worker: it decides whether an address may sign in
// and, when it may, stores a token and has the daemon send the link.
func (s *Server) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-s.signin:
			s.handleSignIn(req)
		}
	}
}

// mayContact reports whether email may sign in: it is a party of a case
// or a named contact (R1), it is not staff, and its mail does not bounce
// (limits.undeliverable_for).
func (s *Server) mayContact(tx *store.Tx, email string, now time.Time) (bool, error) {
	p := s.cfg.Policy
	if p.IsStaff(email) || strings.EqualFold(email, p.SupportAddress) {
		return false, nil
	}
	if until, err := tx.UndeliverableUntil(email); err != nil || now.Before(until) {
		return false, err
	}
	if _, named := p.CustomerOf(email); named {
		return true, nil
	}
	ids, err := tx.CaseIDsOfParty(email)
	return len(ids) > 0, err
}

func (s *Server) handleSignIn(req signInRequest) {
	now := s.now()
	token := randomToken()
	var ok bool
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		var err error
		if ok, err = s.mayContact(tx, req.email, now); err != nil || !ok {
			return err
		}
		if _, err := tx.PrunePortal(now); err != nil {
			return err
		}
		return tx.PutPortalSignIn(token, &store.PortalSignIn{Email: req.email, ExpiresAt: now.Add(s.cfg.LinkLifetime)})
	})
	if err != nil {
		s.log.Error("portal sign-in", "err", err)
		return
	}
	if !ok {
		s.log.Info("portal sign-in refused", "ip", req.ip)
		return
	}
	lang := req.lang
	if c, _ := s.cfg.Policy.CustomerOf(req.email); c != nil && normLang(c.Language) != "" && lang == "" {
		lang = c.Language
	}
	if s.cfg.Mailer == nil {
		s.log.Error("portal sign-in: no mailer")
		return
	}
	link := s.base.String() + "/signin/" + token
	if err := s.cfg.Mailer.SendSignIn(cases.Address{Email: req.email}, lang, link, now.Add(s.cfg.LinkLifetime)); err != nil {
		s.log.Error("portal sign-in mail", "err", err)
		return
	}
	if s.cfg.SignInSent != nil {
		s.cfg.SignInSent()
	}
}

func (s *Server) signInConfirm(w http.ResponseWriter, r *http.Request) int {
	lang := pickLang(w, r, "", s.cfg.Policy.DefaultLanguage)
	tok := r.PathValue("token")
	var si *store.PortalSignIn
	if validRandomToken(tok) {
		s.cfg.Store.View(func(tx *store.Tx) error {
			si, _ = tx.PortalSignIn(tok, s.now())
			return nil
		})
	}
	if si == nil {
		return s.render(w, http.StatusNotFound, "signin_bad", lang, pageData{})
	}
	return s.render(w, http.StatusOK, "signin_confirm", lang, pageData{CSRF: s.keys.csrfToken(s.binding(w, r)), Action: "/signin/" + tok})
}

// signInUse consumes the link and starts a fresh session.
func (s *Server) signInUse(w http.ResponseWriter, r *http.Request) int {
	lang := pickLang(w, r, "", s.cfg.Policy.DefaultLanguage)
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if !s.checkCSRF(r) {
		return s.badRequest(w, lang)
	}
	tok := r.PathValue("token")
	if !validRandomToken(tok) {
		return s.render(w, http.StatusNotFound, "signin_bad", lang, pageData{})
	}
	now := s.now()
	session := randomToken()
	var si *store.PortalSignIn
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		var err error
		if si, err = tx.ConsumePortalSignIn(tok, now); err != nil || si == nil {
			return err
		}
		// Checked again: the address may have bounced since.
		if ok, err := s.mayContact(tx, si.Email, now); err != nil || !ok {
			si = nil
			return err
		}
		return tx.PutPortalSession(session, &store.PortalSession{
			Email: si.Email, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionLifetime), IP: clientIP(r),
		})
	})
	if err != nil {
		s.log.Error("portal sign-in", "err", err)
		return s.render(w, http.StatusInternalServerError, "message", lang, pageData{Title: T(lang, "error"), Message: T(lang, "error")})
	}
	if si == nil {
		return s.render(w, http.StatusNotFound, "signin_bad", lang, pageData{})
	}
	http.SetCookie(w, s.cookie(sessionCookie, session, s.cfg.SessionLifetime))
	s.log.Info("portal sign-in", "email", si.Email, "ip", clientIP(r))
	http.Redirect(w, r, "/cases", http.StatusSeeOther)
	return http.StatusSeeOther
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) int {
	lang := pickLang(w, r, "", s.cfg.Policy.DefaultLanguage)
	if !s.checkCSRF(r) {
		return s.badRequest(w, lang)
	}
	if _, tok := s.session(r); tok != "" {
		s.cfg.Store.Update(func(tx *store.Tx) error { return tx.DeletePortalSession(tok) })
	}
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return http.StatusSeeOther
}

// limiter counts sign-in requests per address and per client network in
// fixed one-hour windows (the form's own limit, portal.signin_per_address
// and signin_per_ip).
//
// It lives in memory, and a restart forgets it. That is a decision, not an
// accident: what the limit protects is (1) an address from a flood of
// sign-in mails, and (2) the daemon from being worked by one client. For
// (1) the memory limit is only the first layer: every sign-in mail goes on
// the one road as a rate-limited kind of its own, counted per address in
// the store (limits.auto_reply_per_hour and per_day, kind "signin"), which
// a restart does not reset; so a restart, which an attacker cannot cause,
// buys at most one more hour's worth of form answers, not one more mail
// over the daily cap. Enumeration is not what it stops either: the answer
// is the same whatever the address (signInRequest). Persisting every
// request would put a bbolt write (an fsync) in the path of an
// unauthenticated form, a cheaper way to load the daemon than the one it
// guards against.
//
// What memory does need is bounds: an IPv6 client counts per /64 (one
// host has a whole /64 to pick addresses from), and each map holds at most
// maxTracked keys per window; past that, requests with a key it has not
// seen are refused until the window turns, so a flood of fresh addresses
// or networks costs a fixed amount of memory.
type limiter struct {
	mu             sync.Mutex
	perAddr, perIP int
	window         time.Time
	byAddr, byIP   map[string]int
}

// maxTracked bounds each of the limiter's maps per window.
const maxTracked = 100000

func newLimiter(perAddr, perIP int) *limiter {
	return &limiter{perAddr: perAddr, perIP: perIP, byAddr: map[string]int{}, byIP: map[string]int{}}
}

func (l *limiter) allow(addr, ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := now.Truncate(time.Hour); !w.Equal(l.window) {
		l.window = w
		clear(l.byAddr)
		clear(l.byIP)
	}
	nk := networkKey(ip)
	a, seenA := l.byAddr[addr]
	n, seenN := l.byIP[nk]
	if (!seenA && len(l.byAddr) >= maxTracked) || (!seenN && len(l.byIP) >= maxTracked) {
		return false
	}
	if a >= l.perAddr || n >= l.perIP {
		return false
	}
	l.byAddr[addr] = a + 1
	l.byIP[nk] = n + 1
	return true
}

// networkKey is what the per-IP limit counts: an IPv4 address, or an IPv6
// address's /64.
func networkKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
