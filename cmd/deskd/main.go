// Command deskd is an e-mail-driven helpdesk daemon: it watches the support
// mailbox over IMAP, threads every mail into a case kept in a bbolt file,
// and answers over SMTP under the customer's service level agreement.
//
// This file is wiring only: subcommands, flags and signals. The work is
// done by the daemon, cases, mail and store packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses. exitConfig is listed in the systemd unit's
// RestartPreventExitStatus: restarting cannot fix a bad configuration.
const (
	exitOK     = 0
	exitFail   = 1
	exitUsage  = 2
	exitConfig = 78 // EX_CONFIG from sysexits.h
)

// usageError marks errors the user fixes by changing the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// configError marks errors in the configuration.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "deskd:", err)
	var ue usageError
	var ce configError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ce):
		return exitConfig
	}
	return exitFail
}

const usage = `usage: deskd <command> [flags]

commands:
  run           --config FILE   run the daemon against the configured mailbox
  demo                          run deskd against a built-in IMAP server and SMTP sink
  check-config  --config FILE   validate a configuration file (exit 0, or one line per problem)
  cases list    [--status open|pending|closed|all] [--overdue] [--due-within DURATION] [--json] [--config FILE]
  cases show N  [--json] [--config FILE]
  backup        --out FILE [--compression zstd|gzip] [--config FILE|--socket PATH|--store PATH]
                                write a verified backup (and FILE.sha256), daemon running or not
  restore       --from FILE [--config FILE|--store PATH] [--yes]
                                verify a backup; with --yes replace the stopped daemon's store
  export        --customer NAME | --all [--internal] [--out DIR|FILE.zip] [--config FILE|--socket PATH|--store PATH]
                                a customer's cases (mbox + JSON + checksums) to hand back (R18)
  report        --month YYYY-MM [--customer NAME] [--format text|csv|json|html] [--lang nl|en] [--out FILE] [--mail-to ADDRESS]
                [--config FILE|--socket PATH|--store PATH]
                                a month's service report: targets met per priority, missed cases,
                                discount due (R12, R13); --mail-to has the running daemon mail it
  portal sessions list [--json] [--config FILE|--socket PATH|--store PATH]
  portal sessions revoke ID|ADDRESS [--config FILE|--socket PATH|--store PATH]
                                the customer portal's sign-ins: list them, end one (by id) or all of an address
  portal links revoke CASE [ADDRESS] [--json] [--config FILE|--socket PATH|--store PATH]
                                the case's "follow your case" links (of ADDRESS, or of everyone) sent so far
                                stop working; mails sent later carry new ones
  calendar      [--year YYYY] [--customer NAME] [--config FILE]
                                the working hours and the weekdays off the SLA clock uses (R11)
  oauth test    --config FILE   get an OAuth 2.0 token, sign in to IMAP (SELECT) and SMTP (AUTH only),
                                say what worked and the fix for what did not
  oauth login   --config FILE   delegated access: device-code sign-in in a browser; writes
                                oauth2.refresh_token_file (mode 0600)
  cluster status [--json] | add-voter ID ADDRESS | remove ID | transfer-leadership [ID]
                [--config FILE|--socket PATH]
                                a cluster node's view (state, term, indexes, leader, members);
                                change the members or hand the leadership over (through the
                                running daemon; membership changes on the leader)
  version                       print the version
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is main without the process: tests call it with their own context,
// arguments and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "check-config":
		return cmdCheckConfig(ctx, args[1:], stdout, stderr)
	case "cases":
		return cmdCases(ctx, args[1:], stdout, stderr)
	case "backup":
		return cmdBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		return cmdRestore(ctx, args[1:], stdout, stderr)
	case "export":
		return cmdExport(ctx, args[1:], stdout, stderr)
	case "report":
		return cmdReport(ctx, args[1:], stdout, stderr)
	case "portal":
		return cmdPortal(ctx, args[1:], stdout, stderr)
	case "calendar":
		return cmdCalendar(ctx, args[1:], stdout, stderr)
	case "oauth":
		return cmdOAuth(ctx, args[1:], stdout, stderr)
	case "cluster":
		return cmdCluster(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "deskd", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}
