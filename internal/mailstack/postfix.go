package mailstack

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func (s *Stack) writePostfixConfig(name string, smtpPort int, extraServices string) error {
	pd := filepath.Join(s.Dir, "postfix")
	var vm strings.Builder
	for _, addr := range append(sortedKeys(s.users), s.vanished...) {
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
# The banner names the stack (see login_greeting in dovecot.go).
smtpd_banner = $myhostname ESMTP %[1]s
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
`, smtpPort) + extraServices
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
