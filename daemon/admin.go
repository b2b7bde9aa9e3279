package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"deskd/store"
)

// The admin socket speaks one JSON request per connection, then the
// answer: {"op":"cases.show","id":12} → {"result":{...}} or
// {"error":"..."}. The CLI uses it while the daemon holds the store's lock;
// access is the socket file's mode (0660 by default: the deskd user and
// its group).
//
// Long answers stream, so neither side ever holds a whole answer:
// "cases.list" as JSON lines (adminlist.go), "backup" and "export" in
// frames (adminbackup.go, adminexport.go). There is no wall on a whole
// request, only on inactivity (admin.inactivity_timeout): every write
// pushes the deadline on, and while a short answer is being computed
// (a report) the daemon writes a newline every few seconds, which JSON
// readers skip as whitespace. The client sends nothing after its request,
// so the daemon reads on: when that read ends (EOF: the client closed
// or died), the request's context is cancelled, and with it the read
// transaction (store.DB.ViewContext) and the writes in flight. The
// daemon's own stop cancels every request the same way (Run).

// AdminRequest is one admin-socket request.
type AdminRequest struct {
	Op     string `json:"op"` // "cases.list", "cases.show", "ping", "backup", "export", "report", "report.mail", "portal.sessions", "portal.revoke", "portal.revoke_links"
	Status string `json:"status,omitempty"`
	ID     uint64 `json:"id,omitempty"`
	// After and Limit page "cases.list": the cases after id After, at
	// most Limit of them (0 = all).
	After uint64 `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
	// Compression of "backup": zstd, gzip or none (adminbackup.go).
	Compression string `json:"compression,omitempty"`
	// ReportArgs of "report" and "report.mail" (report.go).
	ReportArgs
	// Session is what "portal.revoke" revokes: a session id (a prefix of
	// the hash "portal.sessions" lists) or an address (all its sessions).
	Session string `json:"session,omitempty"`
	// Address is whose follow links of case ID "portal.revoke_links"
	// revokes ("" = every address's), or with Node a cluster member's
	// address (cluster.add-voter; Node also for cluster.remove,
	// cluster.transfer).
	Address string `json:"address,omitempty"`
	Node    string `json:"node,omitempty"`
	// Export is what "export" exports (adminexport.go).
	Export *ExportArgs `json:"export,omitempty"`
}

type adminResponse struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	// Note is printed by the CLI on stderr (a cluster follower saying how
	// far behind its copy is).
	Note string `json:"note,omitempty"`
}

// DefaultAdminTimeout is admin.inactivity_timeout's default.
const DefaultAdminTimeout = time.Minute

// heartbeatEvery is how often a request still computing its answer
// writes a newline: well inside the other side's inactivity timeout.
func heartbeatEvery(timeout time.Duration) time.Duration {
	return min(10*time.Second, timeout/3)
}

func (d *Daemon) adminTimeout() time.Duration {
	if t := d.rt.Load().opts.AdminTimeout; t > 0 {
		return t
	}
	return DefaultAdminTimeout
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

// serveAdmin accepts until ctx ends. Every request runs under a context
// derived from ctx and is counted in d.admin, which Run waits for.
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
		d.admin.Add(1)
		go func() {
			defer d.admin.Done()
			d.serveAdminConn(ctx, conn)
		}()
	}
}

// idleConn pushes a deadline on before every read and write: the
// inactivity timeout of both ends of the admin socket.
type idleConn struct {
	net.Conn
	timeout time.Duration
	// werr is the first failed write: the other side went away or
	// stopped reading.
	werr error
}

func (c *idleConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(p)
	if err != nil && c.werr == nil {
		c.werr = err
	}
	return n, err
}

func (c *idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(p)
}

func (d *Daemon) serveAdminConn(ctx context.Context, raw net.Conn) {
	defer raw.Close()
	start := time.Now()
	timeout := d.adminTimeout()
	conn := &idleConn{Conn: raw, timeout: timeout}
	var req AdminRequest
	if err := json.NewDecoder(conn).Decode(&req); err != nil {
		_ = writeLine(conn, adminResponse{Error: "bad request: " + err.Error()})
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Nothing more comes after the request: this read ends when the
	// client closes or dies (or when we close the conn).
	_ = raw.SetReadDeadline(time.Time{})
	go func() {
		_, _ = io.Copy(io.Discard, raw)
		cancel()
	}()
	// A cancelled request's blocked write fails now, not after the
	// inactivity timeout.
	stop := context.AfterFunc(rctx, func() { _ = raw.SetDeadline(time.Now()) })
	defer stop()
	switch req.Op {
	case "backup":
		d.serveBackup(rctx, conn, req)
	case "cases.list":
		d.serveList(rctx, conn, req)
	case "export":
		d.serveExport(rctx, conn, req)
	default:
		d.serveAnswer(rctx, conn, req)
	}
	if rctx.Err() != nil || conn.werr != nil {
		why := "the client went away or stopped reading"
		if ctx.Err() != nil {
			why = "the daemon is stopping"
		}
		d.log.Info("admin request abandoned", "op", req.Op, "why", why, "after", time.Since(start).Round(time.Millisecond))
	}
}

// writeLine writes one JSON line.
func writeLine(w io.Writer, resp adminResponse) error {
	return json.NewEncoder(w).Encode(resp)
}

// serveAnswer computes a short answer (one JSON value), writing a
// newline every heartbeat meanwhile so the client's inactivity deadline
// does not end a report that takes a while.
func (d *Daemon) serveAnswer(ctx context.Context, conn *idleConn, req AdminRequest) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		v   any
		err error
	}
	done := make(chan answer, 1)
	go func() {
		v, err := d.answer(ctx, req)
		done <- answer{v, err}
	}()
	tick := time.NewTicker(heartbeatEvery(conn.timeout))
	defer tick.Stop()
	for {
		select {
		case a := <-done:
			var resp adminResponse
			if a.err != nil {
				resp.Error = a.err.Error()
			} else {
				resp.Result, _ = json.Marshal(a.v)
				if !strings.HasPrefix(req.Op, "cluster.") { // the status says it all
					resp.Note = d.followerNote()
				}
			}
			_ = writeLine(conn, resp)
			return
		case <-tick.C:
			if _, err := conn.Write([]byte{'\n'}); err != nil {
				cancel() // nobody reads: stop the work and its read tx
				<-done
				return
			}
		}
	}
}

func (d *Daemon) answer(ctx context.Context, req AdminRequest) (any, error) {
	if req.Op == "report" || req.Op == "report.mail" {
		return d.answerReport(ctx, req) // report.go: its own transactions
	}
	if strings.HasPrefix(req.Op, "cluster.") {
		return d.answerCluster(req) // cluster.go
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
	err := d.db.ViewContext(ctx, func(tx *store.Tx) error {
		var err error
		switch req.Op {
		case "ping":
			result = "pong"
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

// AdminClient talks to the daemon on Socket. Timeout is its side's
// inactivity timeout (admin.inactivity_timeout; 0 = a minute).
type AdminClient struct {
	Socket  string
	Timeout time.Duration
	// Notes receives what a cluster follower says of the copy it
	// answers from (a "deskd: ..." line); nil means os.Stderr.
	Notes io.Writer
}

// note passes a follower's note on to c.Notes.
func (c AdminClient) note(note string) {
	if note == "" {
		return
	}
	w := c.Notes
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintln(w, "deskd: "+note)
}

// dial connects and sends req. It returns an error matching ErrNoDaemon
// when no daemon answers on the socket.
func (c AdminClient) dial(req AdminRequest) (*idleConn, error) {
	raw, err := net.DialTimeout("unix", c.Socket, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultAdminTimeout
	}
	conn := &idleConn{Conn: raw, timeout: timeout}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		raw.Close()
		return nil, fmt.Errorf("admin request: %w", err)
	}
	return conn, nil
}

// Call sends req and decodes the result into out.
func (c AdminClient) Call(req AdminRequest, out any) error {
	conn, err := c.dial(req)
	if err != nil {
		return err
	}
	defer conn.Close()
	var resp adminResponse
	// The decoder skips the daemon's heartbeat newlines.
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return fmt.Errorf("admin response: %w", err)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	c.note(resp.Note)
	return json.Unmarshal(resp.Result, out)
}

// AdminCall sends req to the daemon at socket and decodes the result into
// out. It returns ErrNoDaemon when no daemon answers there.
func AdminCall(socket string, req AdminRequest, out any) error {
	return AdminClient{Socket: socket}.Call(req, out)
}

// readLine reads one line of the answer (a JSON line, heartbeats
// skipped) of any length.
func readLine(br *bufio.Reader) ([]byte, error) {
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) > 1 {
			return line[:len(line)-1], nil
		}
	}
}

// readResponse reads one JSON line as an adminResponse, its error as an
// error.
func readResponse(br *bufio.Reader) (adminResponse, error) {
	var resp adminResponse
	line, err := readLine(br)
	if err != nil {
		return resp, err
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, err
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
