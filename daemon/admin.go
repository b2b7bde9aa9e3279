package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"deskd/store"
)

// The admin socket speaks one JSON request per connection, one JSON
// response back: {"op":"cases.list","status":"open"} →
// {"result":[...]} or {"error":"..."}. The CLI uses it while the daemon
// holds the store's lock; access is the socket file's mode (0660 by
// default: the deskd user and its group).

// AdminRequest is one admin-socket request.
type AdminRequest struct {
	Op     string `json:"op"` // "cases.list", "cases.show", "ping", "backup", "report", "report.mail"
	Status string `json:"status,omitempty"`
	ID     uint64 `json:"id,omitempty"`
	// Compression of "backup": zstd, gzip or none (adminbackup.go).
	Compression string `json:"compression,omitempty"`
	// ReportArgs of "report" and "report.mail" (report.go).
	ReportArgs
	// Session is what "portal.revoke" revokes: a session id (a prefix of
	// the hash "portal.sessions" lists) or an address (all its sessions).
	Session string `json:"session,omitempty"`
	// Address is whose follow links of case ID "portal.revoke_links"
	// revokes ("" = every address's).
	Address string `json:"address,omitempty"`
}

type adminResponse struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

func (d *Daemon) listenAdmin(path string, mode uint32) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("admin socket dir: %w", err)
	}
	// A socket left by a killed daemon blocks Listen; we hold the store's
	// lock, so no other daemon can be using it.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if mode == 0 {
		mode = 0o660
	}
	if err := os.Chmod(path, fs.FileMode(mode)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket mode: %w", err)
	}
	return ln, nil
}

func (d *Daemon) serveAdmin(ctx context.Context, ln net.Listener) {
	context.AfterFunc(ctx, func() { ln.Close() })
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("admin socket accept", "err", err)
			}
			return
		}
		go d.serveAdminConn(ctx, conn)
	}
}

func (d *Daemon) serveAdminConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	var req AdminRequest
	var resp adminResponse
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else if req.Op == "backup" {
		d.serveBackup(ctx, conn, req) // streams; adminbackup.go
		return
	} else if result, err := d.answer(req); err != nil {
		resp.Error = err.Error()
	} else {
		resp.Result, _ = json.Marshal(result)
	}
	_ = json.NewEncoder(conn).Encode(resp)
}

func (d *Daemon) answer(req AdminRequest) (any, error) {
	if req.Op == "report" || req.Op == "report.mail" {
		return d.answerReport(req) // report.go: its own transactions
	}
	if req.Op == "portal.revoke_links" {
		var r CaseLinkRevocation
		err := d.db.Update(func(tx *store.Tx) error {
			var err error
			r, err = RevokeCaseLinks(tx, req.ID, req.Address, d.now())
			return err
		})
		if err == nil {
			d.log.Info("portal: case links revoked", "case", r.CaseID, "address", r.Address, "before", r.Before)
		}
		return r, err
	}
	if req.Op == "portal.revoke" {
		var n int
		err := d.db.Update(func(tx *store.Tx) error {
			var err error
			n, err = tx.RevokePortalSessions(req.Session)
			return err
		})
		return n, err
	}
	var result any
	err := d.db.View(func(tx *store.Tx) error {
		var err error
		switch req.Op {
		case "ping":
			result = "pong"
		case "cases.list":
			result, err = ListCases(tx, req.Status, d.CaseView())
		case "cases.show":
			result, err = ShowCase(tx, req.ID, d.CaseView())
		case "portal.sessions":
			result, err = PortalSessions(tx, d.now())
		default:
			err = fmt.Errorf("unknown op %q", req.Op)
		}
		return err
	})
	return result, err
}

// ErrNoDaemon means nothing listens on the admin socket: the CLI may open
// the store itself.
var ErrNoDaemon = errors.New("no daemon on the admin socket")

// AdminCall sends req to the daemon at socket and decodes the result into
// out. It returns ErrNoDaemon when no daemon answers there.
func AdminCall(socket string, req AdminRequest, out any) error {
	conn, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("admin request: %w", err)
	}
	var resp adminResponse
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return fmt.Errorf("admin response: %w", err)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	return json.Unmarshal(resp.Result, out)
}
