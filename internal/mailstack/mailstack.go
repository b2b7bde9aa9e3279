// Package mailstack runs a private Dovecot (IMAP + LMTP) and Postfix (SMTP)
// mail system for tests, so that deskd is exercised against real servers
// rather than fakes.
//
// Each Stack lives in its own short directory under /tmp (Unix socket paths
// are limited to 107 bytes, and t.TempDir paths are both long and inside a
// 0700 directory that the daemons' unprivileged users cannot traverse). It
// listens only on 127.0.0.1, on ports picked free at start, and keeps its own
// queue, state, pid files and logs, so several stacks (parallel tests, parallel
// test binaries) never collide. Postfix accepts mail only for the stack's
// virtual domains and hands it to Dovecot over LMTP; every other destination
// is refused at RCPT time, and the transports that could reach another machine
// are replaced by Postfix's error transport, so nothing leaves the host.
//
// Mailboxes are Maildirs with "/" as the hierarchy separator; every user has
// INBOX plus subscribed Sent, Drafts, Trash and Junk with their special-use
// flags. IMAP logins are the full address, plaintext, without TLS.
//
// Typical use:
//
//	s := mailstack.Start(t, mailstack.Options{Users: []mailstack.User{
//		{Address: "support@example.test", Password: "pw1"},
//		{Address: "alice@customer.test", Password: "pw2"},
//	}})
//	s.Deliver(t, "alice@customer.test", []string{"support@example.test"}, raw)
//	msgs := s.WaitForMessages(t, "support@example.test", "INBOX", 1, 30*time.Second)
//
// The daemons need root (Postfix's master refuses to run otherwise) and the
// Debian packages installed by .ci/install-mailstack.sh. When they are
// missing, Start skips the test, except under CI=true where a skip would hide
// a broken CI setup, so it fails instead.
package mailstack

import (
	"deskd/internal/ciskip"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is a virtual mailbox owner. Address is also the IMAP login name.
type User struct {
	Address  string
	Password string
}

// Options configures a Stack.
type Options struct {
	// Users get a mailbox each. At least one is required.
	Users []User
	// OAuth2IntrospectURL, when set, makes Dovecot check XOAUTH2 and
	// OAUTHBEARER tokens at this RFC 7662 introspection endpoint, and adds
	// a submission listener (Stack.SubmissionAddr) that takes them too
	// (oauth2.go).
	OAuth2IntrospectURL string
	// Domains that Postfix accepts mail for. The domains of Users are always
	// included; list extra ones only to make Postfix answer "user unknown"
	// rather than "relay access denied" for them.
	Domains []string
	// Vanished are addresses Postfix accepts (they are in its mailbox map)
	// but Dovecot's LMTP refuses as unknown, like a mailbox closed after
	// the fact: Postfix returns mail to them to its sender with a DSN
	// (RFC 3464), a real bounce. Their domains must be Users' or Domains'.
	Vanished []string
}

// Stack is a running private Dovecot + Postfix pair. Its methods that take a
// testing.TB fail that test on error; the others are safe to call from any
// goroutine.
type Stack struct {
	// IMAPAddr is Dovecot's plaintext IMAP listener, "127.0.0.1:port".
	IMAPAddr string
	// SMTPAddr is Postfix's smtpd, "127.0.0.1:port". Clients on loopback may
	// submit without authentication (mynetworks = 127.0.0.0/8).
	SMTPAddr string
	// SubmissionAddr is Postfix's submission listener, "127.0.0.1:port",
	// with Options.OAuth2IntrospectURL only: AUTH (from Dovecot) required.
	SubmissionAddr string
	// Dir is the stack's private directory (config, queue, mail, logs).
	Dir string

	users map[string]string // lower-case address -> password
	// vanished are in Postfix's mailbox map only (Options.Vanished).
	vanished  []string
	domains   []string
	oauth2URL string

	dovecotConf string
	postfixConf string
	dovecotPid  string // pid file path
	postfixPid  string

	stopOnce sync.Once
	stopErr  error
}

const (
	dovecotBin  = "/usr/sbin/dovecot"
	postfixBin  = "/usr/sbin/postfix"
	lmtpBin     = "/usr/lib/dovecot/lmtp"
	imapBin     = "/usr/lib/dovecot/imap"
	postconfBin = "/usr/sbin/postconf"

	// mailUser owns all virtual mailboxes. Debian's base-passwd always has
	// it, so no extra account needs creating on a fresh machine.
	mailUser = "mail"

	startTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
)

// Available reports whether the Dovecot and Postfix binaries are installed.
// It does not check for root.
func Available() bool {
	for _, p := range []string{dovecotBin, postfixBin, lmtpBin, imapBin, postconfBin} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// skipOrFail skips the test, unless running in CI where a skipped mail test
// would silently turn a broken install into a green run.
func skipOrFail(t testing.TB, missing string) {
	t.Helper()
	ciskip.SkipOrFail(t, "mailstack: "+missing, "run `sudo bash .ci/install-mailstack.sh`")
}

// Start launches a private stack and registers its Stop with t.Cleanup. On
// test failure the daemons' log is written to the test log and the stack
// directory is kept for inspection.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	if !Available() {
		skipOrFail(t, "dovecot/postfix binaries not installed")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "must run as root (postfix's master refuses to run otherwise)")
	}
	users, domains, err := checkOptions(opts)
	if err != nil {
		t.Fatalf("mailstack: %v", err)
	}

	// A port picked free can be taken by another process before the daemon
	// binds it; only that failure is worth a retry with fresh ports.
	for attempt := 1; ; attempt++ {
		s, err := start(users, domains, opts.Vanished, opts.OAuth2IntrospectURL)
		if err == nil {
			t.Cleanup(func() {
				failed := t.Failed()
				if failed {
					s.DumpLogs(t)
					t.Logf("mailstack: keeping %s for inspection", s.Dir)
				}
				if err := s.stop(!failed); err != nil {
					t.Errorf("mailstack: stop: %v", err)
				}
			})
			return s
		}
		var log string
		if s != nil {
			log = s.tailLog(100)
		}
		if attempt < 3 && strings.Contains(err.Error()+log, "in use") {
			t.Logf("mailstack: start attempt %d: port taken, retrying: %v", attempt, err)
			if s != nil {
				_ = s.stop(true)
			}
			continue
		}
		if s != nil {
			_ = s.stop(false)
			log = fmt.Sprintf("log of %s (kept for inspection):\n%s", s.Dir, log)
		}
		t.Fatalf("mailstack: start: %v\n%s", err, log)
	}
}

// checkOptions returns the users (lower-case address -> password) and the
// sorted accepted domains.
func checkOptions(opts Options) (map[string]string, []string, error) {
	if len(opts.Users) == 0 {
		return nil, nil, errors.New("Options.Users is empty")
	}
	users := make(map[string]string, len(opts.Users))
	domainSet := map[string]bool{}
	for _, u := range opts.Users {
		addr := strings.ToLower(strings.TrimSpace(u.Address))
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 {
			return nil, nil, fmt.Errorf("user address %q has no local part or domain", u.Address)
		}
		// The passwd-file format is colon separated, and the maps are
		// whitespace separated: keep test data simple rather than escape it.
		if strings.ContainsAny(addr, ": \t\r\n") || strings.ContainsAny(u.Password, ":\r\n") {
			return nil, nil, fmt.Errorf("user %q: address or password contains ':' or whitespace", u.Address)
		}
		if u.Password == "" {
			return nil, nil, fmt.Errorf("user %q: empty password", u.Address)
		}
		users[addr] = u.Password
		domainSet[addr[at+1:]] = true
	}
	for _, d := range opts.Domains {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			domainSet[d] = true
		}
	}
	domains := make([]string, 0, len(domainSet))
	for d := range domainSet {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	return users, domains, nil
}

func start(users map[string]string, domains, vanished []string, oauth2URL string) (*Stack, error) {
	mu, err := user.Lookup(mailUser)
	if err != nil {
		return nil, fmt.Errorf("look up %s user: %w", mailUser, err)
	}
	uid, _ := strconv.Atoi(mu.Uid)
	gid, _ := strconv.Atoi(mu.Gid)

	dir, err := os.MkdirTemp("/tmp", "ms-")
	if err != nil {
		return nil, err
	}
	name := filepath.Base(dir) // unique; used as instance/syslog name
	s := &Stack{
		Dir:         dir,
		users:       users,
		vanished:    vanished,
		domains:     domains,
		oauth2URL:   oauth2URL,
		dovecotConf: filepath.Join(dir, "dovecot", "dovecot.conf"),
		postfixConf: filepath.Join(dir, "postfix", "etc"),
		dovecotPid:  filepath.Join(dir, "dovecot", "run", "master.pid"),
		postfixPid:  filepath.Join(dir, "postfix", "spool", "pid", "master.pid"),
	}
	// MkdirTemp makes it 0700; dovenull, dovecot, postfix and mail must all
	// traverse it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return s, err
	}
	ports, err := freePorts(4) // imap, smtp, submission, dovecot auth
	if err != nil {
		return s, err
	}
	s.IMAPAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	s.SMTPAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])

	for _, d := range []string{"log", "dovecot", "postfix/etc", "postfix/spool"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return s, err
		}
	}
	mailDir := filepath.Join(dir, "mail")
	if err := os.Mkdir(mailDir, 0o700); err != nil {
		return s, err
	}
	if err := os.Chown(mailDir, uid, gid); err != nil {
		return s, err
	}
	if err := s.writeDovecotConfig(name, ports[0], uid, gid); err != nil {
		return s, err
	}
	submission := ""
	if oauth2URL != "" {
		s.SubmissionAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
		if err := s.oauth2Dovecot(ports[3]); err != nil {
			return s, err
		}
		submission = oauth2Submission(ports[2], ports[3])
	}
	if err := s.writePostfixConfig(name, ports[1], submission); err != nil {
		return s, err
	}

	// Dovecot first, so that Postfix's first LMTP attempt finds it.
	if out, err := run(dovecotBin, "-c", s.dovecotConf); err != nil {
		return s, fmt.Errorf("dovecot start: %v: %s", err, out)
	}
	if err := waitGreeting(s.IMAPAddr, "* OK", name); err != nil {
		return s, fmt.Errorf("dovecot imap: %w", err)
	}
	if err := waitPath(filepath.Join(dir, "dovecot", "run", "lmtp")); err != nil {
		return s, fmt.Errorf("dovecot lmtp: %w", err)
	}

	// Postfix chdirs into queue_directory before anything else and exits 1
	// without a word if it is missing; we made it above. "postfix start" then
	// runs its integrity checks, whose "post-install create-missing" makes the
	// queue subdirectories: a shell loop that takes seconds on a busy 2-core
	// machine. makePostfixQueue does the same work directly and leaves the
	// quick-start marker that makes "start" skip those checks.
	if err := s.makePostfixQueue(); err != nil {
		return s, fmt.Errorf("postfix queue: %w", err)
	}
	if out, err := run(postfixBin, "-c", s.postfixConf, "start"); err != nil {
		return s, fmt.Errorf("postfix start: %v: %s", err, out)
	}
	if err := waitGreeting(s.SMTPAddr, "220 ", name); err != nil {
		return s, fmt.Errorf("postfix smtpd: %w", err)
	}
	if s.SubmissionAddr != "" {
		if err := waitGreeting(s.SubmissionAddr, "220 ", name); err != nil {
			return s, fmt.Errorf("postfix submission: %w", err)
		}
	}
	return s, nil
}

// LogPath is the file both daemons log to.
func (s *Stack) LogPath() string { return filepath.Join(s.Dir, "log", "mail.log") }

// DumpLogs writes the stack's log to the test log.
func (s *Stack) DumpLogs(t testing.TB) {
	t.Helper()
	t.Logf("mailstack %s log (%s):\n%s", s.Dir, s.LogPath(), s.tailLog(400))
}

func (s *Stack) tailLog(n int) string {
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// Password returns the password of user (case-insensitive address), or ""
// when the stack has no such user.
func (s *Stack) Password(user string) string {
	return s.users[strings.ToLower(user)]
}

// Users returns the stack's mailbox addresses, sorted.
func (s *Stack) Users() []string { return sortedKeys(s.users) }

// Domains returns the domains Postfix accepts mail for, sorted.
func (s *Stack) Domains() []string { return append([]string(nil), s.domains...) }

func writeFile(path, content string, mode os.FileMode) error {
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		return err
	}
	return os.Chmod(path, mode) // WriteFile's mode is subject to umask
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
