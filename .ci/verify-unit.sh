#!/usr/bin/env bash
# Checks contrib/deskd.service with `systemd-analyze verify` (the unit's
# syntax, every key known to this systemd, the Exec* commands executable)
# and prints `systemd-analyze security`'s rating of its hardening.
#
# Installs the systemd package (systemd-analyze) and procps (/bin/kill, the
# ExecReload= command) when missing, without starting any service; needs
# root only then. Exits non-zero if verify prints anything at all: an
# unknown or misspelt key is only a warning to systemd, but a key that does
# nothing is a bug in the unit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:${PATH}"

log() { printf 'verify-unit: %s\n' "$*"; }

# The unit to check (an argument, for trying out a change).
unit=${1:-contrib/deskd.service}

if ! command -v systemd-analyze >/dev/null 2>&1 || [ ! -x /bin/kill ]; then
	if [ "$(id -u)" -ne 0 ]; then
		log "systemd-analyze or /bin/kill missing, and installing them needs root" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# policy-rc.d exit 101 keeps the packages' scripts from starting any
	# service; only remove it afterwards if we created it (as
	# install-mailstack.sh does).
	created_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		created_policy=1
	fi
	cleanup_policy() {
		if [ "$created_policy" = 1 ]; then
			rm -f /usr/sbin/policy-rc.d
		fi
	}
	trap cleanup_policy EXIT
	log "apt-get update"
	apt-get update -q
	log "apt-get install systemd procps"
	apt-get install -y -q --no-install-recommends systemd procps
	cleanup_policy
	trap - EXIT
fi
log "$(systemd-analyze --version | sed -n 1p)"

# verify checks that ExecStart='s binary exists; on the CI machine deskd is
# not installed in /usr/local/bin (and must not be). So the unit is checked
# as a copy in a temporary directory whose ExecStart= names a freshly built
# deskd; every other line is verified exactly as shipped, except User= and
# Group=: the deskd account is created by the install (README), and CI does
# not create system accounts on the machine it runs on, so when the account
# does not exist the copy names the account running this check instead
# (some systemd versions check that the user exists; "nobody" would draw a
# warning of its own).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log "go build -o $tmp/deskd ./cmd/deskd"
go build -o "$tmp/deskd" ./cmd/deskd

grep -q '^ExecStart=/usr/local/bin/deskd ' "$unit" || {
	log "$unit: ExecStart= no longer starts with /usr/local/bin/deskd; update this script" >&2
	exit 1
}
sed_args=(-e "s#^ExecStart=/usr/local/bin/deskd #ExecStart=$tmp/deskd #")
if ! getent passwd deskd >/dev/null; then
	me=$(id -un) mygroup=$(id -gn)
	log "no deskd account here: the copy says User=$me, Group=$mygroup"
	sed_args+=(-e "s/^User=deskd\$/User=$me/" -e "s/^Group=deskd\$/Group=$mygroup/")
fi
# The copy keeps the unit's name: verify and security derive defaults from it.
sed "${sed_args[@]}" "$unit" >"$tmp/deskd.service"

log "systemd-analyze verify $unit"
set +e
out=$(systemd-analyze verify "$tmp/deskd.service" 2>&1)
rc=$?
set -e
if [ -n "$out" ]; then
	printf '%s\n' "$out" | sed "s#$tmp/deskd.service#$unit#g"
fi
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
	log "FAILED (exit $rc): the messages above concern $unit" >&2
	exit 1
fi
log "verify: no findings"

# For information only: the hardening rating (lower is better), of the unit
# with its own User= (the rating does not need the account).
if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
	mkdir "$tmp/asis"
	sed "${sed_args[0]}" "${sed_args[1]}" "$unit" >"$tmp/asis/deskd.service"
	systemd-analyze security --offline=true "$tmp/asis/deskd.service" 2>/dev/null | sed -n '/Overall exposure level/p' || true
fi
log "ok"
