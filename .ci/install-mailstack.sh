#!/usr/bin/env bash
# Installs the Dovecot (IMAP + LMTP) and Postfix binaries that
# internal/mailstack needs to run private, per-test mail servers.
#
# Idempotent: does nothing but a check when the binaries are already there.
# The packages' own system instances must never run: they would hold ports
# 25 and 143 and read /etc config we do not control. Tests start their own
# instances from private config directories instead.
set -euo pipefail

log() { printf 'install-mailstack: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
	log "must run as root (apt-get install)" >&2
	exit 1
fi

have_binaries() {
	# dovecot-lmtpd ships only a helper under /usr/lib/dovecot, so check it
	# explicitly: the imapd package alone would make dovecot start without LMTP.
	command -v dovecot >/dev/null 2>&1 &&
		[ -x /usr/lib/dovecot/lmtp ] &&
		[ -x /usr/lib/dovecot/imap ] &&
		command -v postfix >/dev/null 2>&1 &&
		command -v postconf >/dev/null 2>&1
}

stop_system_instances() {
	# There is no systemd here and policy-rc.d kept the packages from starting
	# them, but a machine handed over from an earlier session might have them
	# running. Stop them by their pid files only: never by process name, which
	# would also hit private test instances.
	if [ -f /var/spool/postfix/pid/master.pid ] && [ -f /etc/postfix/main.cf ]; then
		postfix stop >/dev/null 2>&1 || true
	fi
	if [ -f /run/dovecot/master.pid ]; then
		pid=$(cat /run/dovecot/master.pid 2>/dev/null || true)
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			log "stopping system dovecot (pid $pid)"
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 1 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
	fi
}

if have_binaries; then
	log "dovecot and postfix already installed"
else
	export DEBIAN_FRONTEND=noninteractive

	# apt-get update only when the lists are missing or apt does not know the
	# packages (a fresh machine); it is slow and needs the mirror.
	if ! apt-cache show dovecot-lmtpd postfix >/dev/null 2>&1; then
		log "apt-get update"
		apt-get update -q
	fi

	# "No configuration" keeps postfix's postinst from writing /etc/postfix/main.cf
	# and starting a system MTA.
	echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections

	# policy-rc.d exit 101 forbids invoke-rc.d from starting any service during
	# the install. Only remove it afterwards if we created it.
	created_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		created_policy=1
	fi
	cleanup() {
		if [ "$created_policy" = 1 ]; then
			rm -f /usr/sbin/policy-rc.d
		fi
	}
	trap cleanup EXIT

	# dovecot-core carries the oauth2 passdb (XOAUTH2, OAUTHBEARER with
	# token introspection) that internal/mailstack/oauth2.go configures:
	# Debian 12's 2.3.19 builds it in, no extra package is needed.
	pkgs=(dovecot-core dovecot-imapd dovecot-lmtpd postfix)
	log "apt-get install ${pkgs[*]}"
	if ! apt-get install -y -q --no-install-recommends "${pkgs[@]}"; then
		# Lists that are present but stale name package versions the mirror
		# no longer has: refresh them once and retry.
		log "install failed; apt-get update and retry"
		apt-get update -q
		apt-get install -y -q --no-install-recommends "${pkgs[@]}"
	fi

	cleanup
	trap - EXIT

	if ! have_binaries; then
		log "binaries still missing after install" >&2
		exit 1
	fi
fi

stop_system_instances

log "$(dovecot --version | sed 's/^/dovecot /'); postfix $(postconf -d -h mail_version 2>/dev/null)"
