package peers

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// tokenChecker is what the IMAP and SMTP peers ask about a token.
type tokenChecker interface {
	Check(token string) (user string, expiry time.Time, ok bool)
}

// xoauth2Server is the server side of XOAUTH2 as Google documents it: a
// refused token gets a JSON challenge, the client's empty answer the
// failure.
type xoauth2Server struct {
	check  func(user, token string) error
	failed error
}

func (s *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if s.failed != nil {
		return nil, true, s.failed
	}
	if resp == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	user, token, ok := parseXOAUTH2(resp)
	if !ok {
		return nil, true, errors.New("malformed XOAUTH2 response")
	}
	if err := s.check(user, token); err != nil {
		s.failed = err
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	return nil, true, nil
}

func parseXOAUTH2(resp []byte) (user, token string, ok bool) {
	for _, f := range bytes.Split(resp, []byte{1}) {
		switch {
		case bytes.HasPrefix(f, []byte("user=")):
			user = string(f[len("user="):])
		case bytes.HasPrefix(f, []byte("auth=Bearer ")):
			token = string(f[len("auth=Bearer "):])
		}
	}
	return user, token, user != "" && token != ""
}

// checkToken is the peers' one rule: the token is live and was issued for
// this mailbox.
func checkToken(tc tokenChecker, user, token string) (time.Time, error) {
	owner, exp, ok := tc.Check(token)
	if !ok {
		return time.Time{}, errors.New("token invalid or expired")
	}
	if !strings.EqualFold(owner, user) {
		return time.Time{}, errors.New("token is not for " + user)
	}
	return exp, nil
}

// EnableOAuth makes the IMAP server offer XOAUTH2 and OAUTHBEARER (and no
// LOGIN) with tokens of o for its user. Like Exchange Online, it ends a
// session when its token expires: "* BYE Session invalidated -
// AccessTokenExpired". Call it before the first connection.
func (s *IMAP) EnableOAuth(o *OAuth) {
	s.mu.Lock()
	s.oauth = o
	s.mu.Unlock()
}

// EndSessions ends every signed-in session now the way Exchange does when
// it decides a session's token is no longer good: "* BYE Session
// invalidated - AccessTokenExpired".
func (s *IMAP) EndSessions() {
	s.mu.Lock()
	sessions := make([]*oauthIMAPSession, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.bye()
	}
}

// Byes counts the sessions ended for an expired token.
func (s *IMAP) Byes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byes
}

type oauthIMAPSession struct {
	imapserver.SessionIMAP4rev2
	peer *IMAP
	conn *imapserver.Conn
	o    *OAuth

	mu    sync.Mutex
	timer *time.Timer
}

func (ss *oauthIMAPSession) Login(string, string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired, Text: "use XOAUTH2 or OAUTHBEARER"}
}

func (ss *oauthIMAPSession) AuthenticateMechanisms() []string {
	return []string{"XOAUTH2", sasl.OAuthBearer}
}

func (ss *oauthIMAPSession) Authenticate(mech string) (sasl.Server, error) {
	signIn := func(user, token string) error {
		exp, err := checkToken(ss.o, user, token)
		if err != nil || !strings.EqualFold(user, ss.peer.Username) {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "AUTHENTICATE failed."}
		}
		if err := ss.SessionIMAP4rev2.Login(ss.peer.Username, ss.peer.Password); err != nil {
			return err
		}
		ss.mu.Lock()
		ss.timer = time.AfterFunc(time.Until(exp), ss.bye)
		ss.mu.Unlock()
		ss.peer.mu.Lock()
		ss.peer.sessions[ss] = struct{}{}
		ss.peer.mu.Unlock()
		return nil
	}
	switch mech {
	case "XOAUTH2":
		return &xoauth2Server{check: signIn}, nil
	case sasl.OAuthBearer:
		return sasl.NewOAuthBearerServer(func(opts sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if err := signIn(opts.Username, opts.Token); err != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			return nil
		}), nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

func (ss *oauthIMAPSession) bye() {
	ss.peer.mu.Lock()
	ss.peer.byes++
	delete(ss.peer.sessions, ss)
	ss.peer.mu.Unlock()
	_ = ss.conn.Bye("Session invalidated - AccessTokenExpired")
}

func (ss *oauthIMAPSession) Close() error {
	ss.mu.Lock()
	if ss.timer != nil {
		ss.timer.Stop()
	}
	ss.mu.Unlock()
	ss.peer.mu.Lock()
	delete(ss.peer.sessions, ss)
	ss.peer.mu.Unlock()
	return ss.SessionIMAP4rev2.Close()
}

// EnableOAuth makes the SMTP sink require XOAUTH2 or OAUTHBEARER with a
// token of o for one of users.
func (s *SMTP) EnableOAuth(o *OAuth) {
	s.mu.Lock()
	s.oauth = o
	s.mu.Unlock()
}

// AuthMechanisms implements smtp.AuthSession.
func (ss *smtpSession) AuthMechanisms() []string {
	if ss.sink.tokens() == nil {
		return nil
	}
	return []string{"XOAUTH2", sasl.OAuthBearer}
}

// Auth implements smtp.AuthSession.
func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	o := ss.sink.tokens()
	if o == nil {
		return nil, smtp.ErrAuthUnsupported
	}
	check := func(user, token string) error {
		if _, err := checkToken(o, user, token); err != nil {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful"}
		}
		ss.authed = true
		return nil
	}
	switch mech {
	case "XOAUTH2":
		return &xoauth2Server{check: check}, nil
	case sasl.OAuthBearer:
		return sasl.NewOAuthBearerServer(func(opts sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if check(opts.Username, opts.Token) != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			return nil
		}), nil
	}
	return nil, smtp.ErrAuthUnsupported
}

func (s *SMTP) tokens() *OAuth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oauth
}
