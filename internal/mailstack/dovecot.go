package mailstack

import (
	"fmt"
	"path/filepath"
	"strings"
)

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
# The greeting names the stack, so that its start can tell its own
# Dovecot from another stack's that took the port first (waitGreeting).
login_greeting = Dovecot ready, %[1]s
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
