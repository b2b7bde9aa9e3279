package mailstack

import (
	"fmt"
	"os"
	"path/filepath"
)

// OAuth 2.0 on the stack (issue 13): with Options.OAuth2IntrospectURL set,
// Dovecot checks bearer tokens itself (passdb oauth2, RFC 7662
// introspection at that URL, the token's "email" must be the login) and
// offers XOAUTH2 and OAUTHBEARER on IMAP next to the passwords the test
// helpers use; Postfix gets a submission listener (SubmissionAddr) that
// takes SASL from Dovecot's auth service, with the same mechanisms, and
// accepts mail only from authenticated clients. Debian 12's dovecot-core
// (2.3.19) has the oauth2 passdb built in.

// oauth2Dovecot is what goes after the base dovecot.conf.
func (s *Stack) oauth2Dovecot(authPort int) error {
	dd := filepath.Join(s.Dir, "dovecot")
	ext := fmt.Sprintf(`introspection_mode = post
introspection_url = %s
force_introspection = yes
username_attribute = email
active_attribute = active
active_value = true
`, s.oauth2URL)
	if err := writeFile(filepath.Join(dd, "oauth2.conf.ext"), ext, 0o644); err != nil {
		return err
	}
	conf := fmt.Sprintf(`
# OAuth 2.0 bearer tokens (mailstack/oauth2.go).
auth_mechanisms = plain login xoauth2 oauthbearer
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = %s/oauth2.conf.ext
}
service auth {
  # Postfix's submission listener asks here (smtpd_sasl_type = dovecot).
  inet_listener {
    address = 127.0.0.1
    port = %d
  }
}
`, dd, authPort)
	f, err := os.OpenFile(s.dovecotConf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// oauth2Submission is the master.cf line of the submission listener.
func oauth2Submission(port, authPort int) string {
	return fmt.Sprintf(`127.0.0.1:%d inet n     -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=inet:127.0.0.1:%d
  -o smtpd_sasl_security_options=noanonymous
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
`, port, authPort)
}
