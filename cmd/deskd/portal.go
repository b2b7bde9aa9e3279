package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"deskd/daemon"
	"deskd/store"
)

// cmdPortal answers `deskd portal sessions list|revoke` and `deskd portal
// links revoke`: through the running daemon's admin socket when one
// answers, else on the store file (read-only for list; revoking needs
// the daemon stopped).
func cmdPortal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) >= 2 && args[0] == "links" && args[1] == "revoke" {
		return cmdPortalLinks(args[2:], stdout, stderr)
	}
	if len(args) < 2 || args[0] != "sessions" || (args[1] != "list" && args[1] != "revoke") {
		return usageError{"portal: sessions list, sessions revoke ID|ADDRESS, or links revoke CASE [ADDRESS]"}
	}
	sub := args[1]
	fs := flag.NewFlagSet("portal sessions "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "list: print JSON")
	var target string
	rest := args[2:]
	for {
		if err := fs.Parse(rest); err != nil {
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		if target != "" {
			return usageError{"portal sessions revoke: give one session id or address"}
		}
		target, rest = fs.Arg(0), fs.Args()[1:]
	}
	loc, err := sf.locate()
	if err != nil {
		return err
	}
	if sub == "list" {
		var list []daemon.PortalSessionInfo
		err := query(loc, daemon.AdminRequest{Op: "portal.sessions"}, &list, func(tx *store.Tx) (any, error) {
			return daemon.PortalSessions(tx, time.Now())
		})
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tSIGNED IN\tEXPIRES\tIP")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Email, s.CreatedAt.In(loc.zone).Format("2006-01-02 15:04"), s.ExpiresAt.In(loc.zone).Format("2006-01-02 15:04"), s.IP)
		}
		return tw.Flush()
	}
	if target == "" {
		return usageError{"portal sessions revoke: give a session id (from list) or an address"}
	}
	var n int
	if loc.socket != "" {
		err := daemon.AdminCall(loc.socket, daemon.AdminRequest{Op: "portal.revoke", Session: target}, &n)
		if err == nil {
			fmt.Fprintf(stdout, "%d session(s) revoked\n", n)
			return nil
		}
		if !errors.Is(err, daemon.ErrNoDaemon) {
			return err
		}
	}
	db, err := store.Open(loc.path, store.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Update(func(tx *store.Tx) error {
		var err error
		n, err = tx.RevokePortalSessions(target)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d session(s) revoked\n", n)
	return nil
}

// cmdPortalLinks answers `deskd portal links revoke CASE [ADDRESS]`: the
// case's follow links for ADDRESS, or for every address, issued until now
// stop opening it (a leaked or forwarded link). Mails sent later carry
// new links, which work.
func cmdPortalLinks(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("portal links revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageError{"portal links revoke: give a case number and, optionally, an address"}
	}
	id, err := strconv.ParseUint(strings.TrimPrefix(pos[0], "#"), 10, 64)
	if err != nil || id == 0 {
		return usageError{fmt.Sprintf("portal links revoke: %q is not a case number", pos[0])}
	}
	var addr string
	if len(pos) == 2 {
		addr = pos[1]
	}
	loc, err := sf.locate()
	if err != nil {
		return err
	}
	var r daemon.CaseLinkRevocation
	err = daemon.ErrNoDaemon
	if loc.socket != "" {
		err = daemon.AdminCall(loc.socket, daemon.AdminRequest{Op: "portal.revoke_links", ID: id, Address: addr}, &r)
	}
	if errors.Is(err, daemon.ErrNoDaemon) {
		var db *store.DB
		if db, err = store.Open(loc.path, store.Options{Timeout: time.Second}); err != nil {
			return err
		}
		defer db.Close()
		err = db.Update(func(tx *store.Tx) error {
			var err error
			r, err = daemon.RevokeCaseLinks(tx, id, addr, time.Now())
			return err
		})
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, r)
	}
	who := r.Address
	if who == "" {
		who = "every address"
		if len(r.Parties) > 0 {
			who += " (parties: " + strings.Join(r.Parties, ", ") + ")"
		}
	}
	fmt.Fprintf(stdout, "case %d: follow links for %s issued until %s revoked\n", r.CaseID, who, r.Before.In(loc.zone).Format("2006-01-02 15:04:05"))
	return nil
}
