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
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
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
	// Domains that Postfix accepts mail for. The domains of Users are always
	// included; list extra ones only to make Postfix answer "user unknown"
	// rather than "relay access denied" for them.
	Domains []string
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
	// Dir is the stack's private directory (config, queue, mail, logs).
	Dir string

	users   map[string]string // lower-case address -> password
	domains []string

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
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("mailstack: %s (CI=true, so this is an error, not a skip; run .ci/install-mailstack.sh)", msg)
		return
	}
	t.Skipf("mailstack: %s; run `sudo bash .ci/install-mailstack.sh` to enable these tests", msg)
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
		s, err := start(users, domains)
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

func start(users map[string]string, domains []string) (*Stack, error) {
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
		domains:     domains,
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
	ports, err := freePorts(2)
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
	if err := s.writePostfixConfig(name, ports[1]); err != nil {
		return s, err
	}

	// Dovecot first, so that Postfix's first LMTP attempt finds it.
	if out, err := run(dovecotBin, "-c", s.dovecotConf); err != nil {
		return s, fmt.Errorf("dovecot start: %v: %s", err, out)
	}
	if err := waitGreeting(s.IMAPAddr, "* OK"); err != nil {
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
	if err := waitGreeting(s.SMTPAddr, "220 "); err != nil {
		return s, fmt.Errorf("postfix smtpd: %w", err)
	}
	return s, nil
}

func (s *Stack) writeDovecotConfig(name string, imapPort, uid, gid int) error {
	dd := filepath.Join(s.Dir, "dovecot")
	var pw strings.Builder
	for _, addr := range sortedKeys(s.users) {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s::::::\n", addr, s.users[addr])
	}
	// Readable by the "dovecot" user that runs the auth process.
	if err := writeFile(filepath.Join(dd, "users"), pw.String(), 0o644); err != nil {
		return err
	}
	conf := fmt.Sprintf(`# Private Dovecot for one internal/mailstack Stack.
instance_name = %[1]s
base_dir = %[2]s/run
state_dir = %[2]s/state
log_path = %[3]s
listen = 127.0.0.1
protocols = imap lmtp
ssl = no
# Tests log in with plain passwords over loopback.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %%Lu
mail_uid = %[4]d
mail_gid = %[5]d
first_valid_uid = %[4]d
last_valid_uid = %[4]d
first_valid_gid = %[5]d
mail_location = maildir:~/Maildir
# Benchmarks and tests open many connections from the same user and IP.
mail_max_userip_connections = 100
login_trusted_networks = 127.0.0.0/8
# Shows the user and IP in ps output, which helps when debugging a stack.
verbose_proctitle = yes

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%Lu %[2]s/users
}
userdb {
  driver = static
  args = uid=%[4]d gid=%[5]d home=%[6]s/%%d/%%n
}

namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[7]d
  }
  inet_listener imaps {
    port = 0
  }
}

service lmtp {
  # Postfix's lmtp client runs as user postfix.
  unix_listener lmtp {
    mode = 0666
  }
}

protocol imap {
  mail_max_userip_connections = 100
}

protocol lmtp {
  postmaster_address = postmaster@%[8]s
}
`, name, dd, s.LogPath(), uid, gid, filepath.Join(s.Dir, "mail"), imapPort, s.domains[0])
	return writeFile(s.dovecotConf, conf, 0o644)
}

func (s *Stack) writePostfixConfig(name string, smtpPort int) error {
	pd := filepath.Join(s.Dir, "postfix")
	var vm strings.Builder
	for _, addr := range sortedKeys(s.users) {
		fmt.Fprintf(&vm, "%s %s\n", addr, addr)
	}
	vmaps := filepath.Join(pd, "etc", "virtual_mailboxes")
	if err := writeFile(vmaps, vm.String(), 0o644); err != nil {
		return err
	}
	main := fmt.Sprintf(`# Private Postfix for one internal/mailstack Stack.
compatibility_level = 3.6
syslog_name = postfix-%[1]s
queue_directory = %[2]s/spool
data_directory = %[2]s/data
maillog_file = %[3]s
maillog_file_prefixes = %[4]s
myhostname = mailstack.test
mydomain = mailstack.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8

# No local delivery, no aliases: every accepted address is virtual.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
virtual_mailbox_domains = %[5]s
virtual_mailbox_maps = texthash:%[6]s
virtual_transport = lmtp:unix:%[7]s
# Nothing may leave the machine: refuse foreign recipients at RCPT time, and
# turn every transport that could reach another host into a bounce.
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
default_transport = error:mailstack delivers locally only
relay_transport = error:mailstack delivers locally only
smtp_dns_support_level = disabled
disable_dns_lookups = yes
relayhost =
smtpd_tls_security_level = none
smtp_tls_security_level = none
lmtp_tls_security_level = none

# Tests should not wait on retry back-off or anti-abuse throttling.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maximal_queue_lifetime = 5m
bounce_queue_lifetime = 5m
in_flow_delay = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
message_size_limit = 52428800
biff = no
append_dot_mydomain = no
`, name, pd, s.LogPath(), s.Dir, strings.Join(s.domains, ", "), vmaps,
		filepath.Join(s.Dir, "dovecot", "run", "lmtp"))
	// Every service runs unchrooted (chroot "n"): a chroot would need copies
	// of /etc files inside the queue directory.
	master := fmt.Sprintf(`# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:%d inet n     -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, smtpPort)
	if err := writeFile(filepath.Join(pd, "etc", "main.cf"), main, 0o644); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(pd, "etc", "master.cf"), master, 0o644); err != nil {
		return err
	}
	// Postfix re-reads configuration files younger than 2 s ("file has
	// changed" races) and would restart services needlessly: backdate them.
	old := time.Now().Add(-10 * time.Second)
	for _, f := range []string{"main.cf", "master.cf", "virtual_mailboxes"} {
		if err := os.Chtimes(filepath.Join(pd, "etc", f), old, old); err != nil {
			return err
		}
	}
	return nil
}

// makePostfixQueue creates the queue and data directories as listed, with
// owners and modes, in the installed Postfix's own postfix-files (so it
// follows the installed version), then drops the quick-start marker. Without
// that file it leaves the work to "postfix start", only more slowly.
func (s *Stack) makePostfixQueue() error {
	b, err := os.ReadFile("/etc/postfix/postfix-files")
	if err != nil {
		return nil
	}
	pu, err := user.Lookup("postfix")
	if err != nil {
		return err
	}
	puid, _ := strconv.Atoi(pu.Uid)
	pg, err := user.LookupGroup("postdrop")
	if err != nil {
		return err
	}
	pgid, _ := strconv.Atoi(pg.Gid)
	dirs := map[string]string{
		"$queue_directory": filepath.Join(s.Dir, "postfix", "spool"),
		"$data_directory":  filepath.Join(s.Dir, "postfix", "data"),
	}
	for _, line := range strings.Split(string(b), "\n") {
		// path:type:owner:group:mode[:flags]
		f := strings.Split(line, ":")
		if len(f) < 5 || f[1] != "d" {
			continue
		}
		base, rest, _ := strings.Cut(f[0], "/")
		root, ok := dirs[base]
		if !ok {
			continue
		}
		path := filepath.Join(root, rest)
		mode, err := strconv.ParseUint(f[4], 8, 32)
		if err != nil {
			return fmt.Errorf("postfix-files: %q: %w", line, err)
		}
		uid, gid := 0, 0
		switch f[2] {
		case "$mail_owner":
			uid = puid
		case "root":
		default:
			return fmt.Errorf("postfix-files: unexpected owner in %q", line)
		}
		switch f[3] {
		case "$setgid_group":
			gid = pgid
		case "-", "root":
		default:
			return fmt.Errorf("postfix-files: unexpected group in %q", line)
		}
		if err := os.MkdirAll(path, 0o755); err != nil {
			return err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(path, os.FileMode(mode)); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dirs["$queue_directory"], "quick-start"), nil, 0o644)
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

// Stop stops both daemons and removes the stack directory. It is idempotent
// and also runs on t.Cleanup.
func (s *Stack) Stop() error { return s.stop(true) }

func (s *Stack) stop(removeDir bool) error {
	s.stopOnce.Do(func() {
		var errs []error
		// Postfix first: otherwise its queue manager would log LMTP failures
		// against a vanishing Dovecot.
		if pid := readPid(s.postfixPid); pid > 0 && alive(pid) {
			if out, err := run(postfixBin, "-c", s.postfixConf, "stop"); err != nil {
				errs = append(errs, fmt.Errorf("postfix stop: %v: %s", err, out))
			}
			if err := waitDead(pid, stopTimeout); err != nil {
				errs = append(errs, fmt.Errorf("postfix master: %w", err))
			}
		}
		if pid := readPid(s.dovecotPid); pid > 0 && alive(pid) {
			// This is what "dovecot stop" does, but doveadm then polls for the
			// exit once a second, which costs a second per stack.
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				errs = append(errs, fmt.Errorf("dovecot stop: %w", err))
			}
			if err := waitDead(pid, stopTimeout); err != nil {
				errs = append(errs, fmt.Errorf("dovecot master: %w", err))
			}
		}
		// Children normally exit with their master; anything still tied to
		// the stack directory after that is killed so that no test leaks
		// processes (or the ports they hold) into the next one.
		if left := stackProcesses(s.Dir); len(left) > 0 {
			time.Sleep(200 * time.Millisecond)
			for _, pid := range stackProcesses(s.Dir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				_ = waitDead(pid, 5*time.Second)
			}
		}
		if left := stackProcesses(s.Dir); len(left) > 0 {
			errs = append(errs, fmt.Errorf("processes still running after stop: %v", left))
		}
		if removeDir && len(errs) == 0 {
			if err := os.RemoveAll(s.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// Deliver sends raw through Postfix's SMTP listener with envelope sender from
// and recipients to. It returns once Postfix has queued the message; use
// WaitForMessages to wait for the LMTP delivery into Dovecot.
func (s *Stack) Deliver(t testing.TB, from string, to []string, raw []byte) {
	t.Helper()
	if err := s.SendSMTP(from, to, raw); err != nil {
		t.Fatalf("mailstack: deliver: %v", err)
	}
}

// SendSMTP is Deliver without a testing.TB, for use from goroutines.
func (s *Stack) SendSMTP(from string, to []string, raw []byte) error {
	conn, err := net.DialTimeout("tcp", s.SMTPAddr, 10*time.Second)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("mailstack-client.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return fmt.Errorf("MAIL FROM:<%s>: %w", from, err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return fmt.Errorf("RCPT TO:<%s>: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

// LoginIMAP returns an IMAP client logged in as user; it is logged out on
// test cleanup.
func (s *Stack) LoginIMAP(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := s.dialIMAP(user)
	if err != nil {
		t.Fatalf("mailstack: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Stack) dialIMAP(user string) (*imapclient.Client, error) {
	pw := s.Password(user)
	if pw == "" {
		return nil, fmt.Errorf("no such user %q", user)
	}
	c, err := imapclient.DialInsecure(s.IMAPAddr, &imapclient.Options{
		Dialer: &net.Dialer{Timeout: 10 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("imap dial: %w", err)
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imap login %s: %w", user, err)
	}
	return c, nil
}

// WaitForMessages polls mailbox of user over IMAP until it holds at least n
// messages, then returns the full raw text of all of them, in mailbox order.
// It fails the test (with the logs and the Postfix queue) after timeout.
func (s *Stack) WaitForMessages(t testing.TB, user, mailbox string, n int, timeout time.Duration) [][]byte {
	t.Helper()
	msgs, err := s.waitForMessages(user, mailbox, n, timeout)
	if err != nil {
		s.DumpLogs(t)
		q, _ := run("/usr/sbin/postqueue", "-c", s.postfixConf, "-p")
		t.Fatalf("mailstack: %v\npostfix queue:\n%s", err, q)
	}
	return msgs
}

func (s *Stack) waitForMessages(user, mailbox string, n int, timeout time.Duration) ([][]byte, error) {
	c, err := s.dialIMAP(user)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	var have uint32
	var lastErr error
	for {
		// STATUS sees new deliveries without the 500 ms IDLE notification delay
		// and works before the mailbox exists (it fails until then).
		st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err == nil && st.NumMessages != nil {
			have = *st.NumMessages
			if int(have) >= n {
				break
			}
		} else if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s %s: have %d messages, want %d after %v (last error: %v)",
				user, mailbox, have, n, timeout, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return nil, fmt.Errorf("select %s: %w", mailbox, err)
	}
	if have == 0 {
		return [][]byte{}, nil
	}
	var set imap.SeqSet
	set.AddRange(1, have)
	section := &imap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(set, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	sort.Slice(bufs, func(i, j int) bool { return bufs[i].SeqNum < bufs[j].SeqNum })
	out := make([][]byte, 0, len(bufs))
	for _, b := range bufs {
		out = append(out, b.FindBodySection(section))
	}
	return out, nil
}

// AppendIMAP stores msgs into mailbox of user over IMAP APPEND on one
// pipelined connection, creating the mailbox if needed. It bypasses Postfix,
// so it is the quick way to fill an inbox for benchmarks.
func (s *Stack) AppendIMAP(t testing.TB, user, mailbox string, msgs ...[]byte) {
	t.Helper()
	c, err := s.dialIMAP(user)
	if err != nil {
		t.Fatalf("mailstack: %v", err)
	}
	defer c.Close()
	if !strings.EqualFold(mailbox, "INBOX") {
		if err := c.Create(mailbox, nil).Wait(); err != nil {
			var ierr *imap.Error
			if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeAlreadyExists {
				t.Fatalf("mailstack: create %s: %v", mailbox, err)
			}
		}
	}
	// Dovecot announces LITERAL+, so the client streams each message without
	// waiting for a continuation; waiting in batches keeps the pipeline full
	// while bounding memory.
	const batch = 64
	pending := make([]*imapclient.AppendCommand, 0, batch)
	flush := func() {
		for _, cmd := range pending {
			if _, err := cmd.Wait(); err != nil {
				t.Fatalf("mailstack: append to %s: %v", mailbox, err)
			}
		}
		pending = pending[:0]
	}
	for _, raw := range msgs {
		cmd := c.Append(mailbox, int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			t.Fatalf("mailstack: append write: %v", err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatalf("mailstack: append close: %v", err)
		}
		pending = append(pending, cmd)
		if len(pending) == batch {
			flush()
		}
	}
	flush()
	if err := c.Logout().Wait(); err != nil {
		t.Logf("mailstack: logout: %v", err)
	}
}

// --- helpers ---

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Output goes to a file, not a pipe: the daemons inherit the command's
	// stdout/stderr when they fork into the background, and a pipe held open
	// by them would make Wait (and "go test", which waits for its own output
	// pipe) hang until they exit.
	out, err := os.CreateTemp("", "mailstack-cmd-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout = out
	cmd.Stderr = out
	// Own process group: a Ctrl-C on the test must not reach the daemons
	// before Stop does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return strings.TrimSpace(string(b)), err
}

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

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// freePorts asks the kernel for n free loopback ports. Ports already handed
// out by this process are never returned again, so parallel stacks in one
// test binary cannot race each other for the same port.
func freePorts(n int) ([]int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l) // held until all are picked, so they differ
		p := l.Addr().(*net.TCPAddr).Port
		if usedPorts[p] {
			continue
		}
		usedPorts[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// waitGreeting waits until addr accepts a connection and greets with prefix.
func waitGreeting(addr, prefix string) error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			// Say goodbye politely so the servers don't log aborted sessions.
			if strings.HasPrefix(prefix, "*") {
				io.WriteString(conn, "a LOGOUT\r\n")
			} else {
				io.WriteString(conn, "QUIT\r\n")
			}
			conn.Close()
			if rerr == nil && strings.HasPrefix(line, prefix) {
				return nil
			}
			lastErr = fmt.Errorf("greeting %q, err %v", line, rerr)
		} else {
			lastErr = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", addr, startTimeout, lastErr)
}

func waitPath(path string) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear after %v", path, startTimeout)
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// alive reports whether pid is a live (not zombie) process. kill(pid, 0)
// alone is not enough: a zombie nobody reaped yet still answers it.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

func waitDead(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
			if alive(pid) {
				return fmt.Errorf("pid %d still alive after SIGKILL", pid)
			}
			return fmt.Errorf("pid %d did not exit within %v; killed", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// stackProcesses lists live processes that belong to the stack in dir: those
// whose working directory, root (Dovecot chroots its login processes),
// command line or environment (Postfix passes MAIL_CONFIG) points into dir.
// Matching on dir rather than on process names keeps parallel stacks and any
// system instance out of it.
func stackProcesses(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !alive(pid) {
			continue
		}
		if belongsTo(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func belongsTo(pid int, dir string) bool {
	inDir := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	proc := fmt.Sprintf("/proc/%d/", pid)
	for _, link := range []string{"cwd", "root"} {
		if p, err := os.Readlink(proc + link); err == nil && inDir(p) {
			return true
		}
	}
	for _, f := range []string{"cmdline", "environ"} {
		if b, err := os.ReadFile(proc + f); err == nil && bytes.Contains(b, []byte(dir+"/")) {
			return true
		}
	}
	return false
}
