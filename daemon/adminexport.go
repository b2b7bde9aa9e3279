package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"deskd/export"
	"deskd/store"
)

// The "export" admin op (R18) runs the export in the daemon, in one read
// transaction of the live store, case by case (package export), and
// streams its files to the client, which writes them where it was asked
// (an export.Output). After the request {"op":"export","export":{...}}
// the daemon answers one JSON line ({"result":{"cases":N}}, N the cases
// to come, or {"error":...}), then per file two runs of frames (the
// framing of adminbackup.go, each run ended by a zero-length frame): its
// name, then its contents. An empty name ends the files; one JSON line
// follows with the outcome: {"result": export.Stats} or {"error":...}.

// ExportArgs are the arguments of "export".
type ExportArgs struct {
	export.Selection
	// Now is the export's time and Generator the program, both for
	// index.json (export.Options).
	Now       time.Time `json:"now"`
	Generator string    `json:"generator"`
}

// ExportHeader is the first answer of "export".
type ExportHeader struct {
	Cases int `json:"cases"`
}

// frameDest is an export.Destination sending each file as frames.
type frameDest struct {
	fw   *frameWriter
	open bool
}

func (f *frameDest) Create(name string) (io.Writer, error) {
	if err := f.close(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("export: a file without a name")
	}
	if _, err := f.fw.Write([]byte(name)); err != nil {
		return nil, err
	}
	if err := f.fw.end(); err != nil {
		return nil, err
	}
	f.open = true
	return f.fw, nil
}

// close ends the file being sent, if any.
func (f *frameDest) close() error {
	if !f.open {
		return nil
	}
	f.open = false
	return f.fw.end()
}

func (d *Daemon) serveExport(ctx context.Context, conn io.Writer, req AdminRequest) {
	bw := bufio.NewWriterSize(conn, 256<<10)
	defer bw.Flush()
	if req.Export == nil {
		_ = writeLine(bw, adminResponse{Error: "export: no selection"})
		return
	}
	args := *req.Export
	start := time.Now()
	fd := &frameDest{fw: &frameWriter{ctx: ctx, w: bw}}
	var st export.Stats
	headerSent := false
	note := d.followerNote() // before the read: the copy exported is no older
	err := d.db.ViewContext(ctx, func(tx *store.Tx) error {
		n, err := exportTotal(tx, args.Selection)
		if err != nil {
			return err
		}
		hdr, _ := json.Marshal(ExportHeader{Cases: n})
		if err := writeLine(bw, adminResponse{Result: hdr, Note: note}); err != nil {
			return err
		}
		headerSent = true
		st, err = export.Write(ctx, tx, args.Selection, fd, export.Options{
			Now: args.Now, Generator: args.Generator, Clocks: d.CaseView().Clocks,
		})
		return err
	})
	if fd.fw.err != nil || ctx.Err() != nil {
		d.log.Warn("export over the admin socket aborted", "err", errors.Join(fd.fw.err, ctx.Err()))
		return // the connection is gone, or we are stopping: no trailer
	}
	if !headerSent {
		_ = writeLine(bw, adminResponse{Error: err.Error()})
		return
	}
	if cerr := fd.close(); cerr != nil {
		return
	}
	if fd.fw.end() != nil {
		return
	}
	var trailer adminResponse
	if err != nil {
		trailer.Error = err.Error()
	} else {
		trailer.Result, _ = json.Marshal(st)
		d.log.Info("export sent over the admin socket", "customer", args.Customer, "all", args.All,
			"cases", st.Cases, "bytes", st.Bytes, "took", time.Since(start).Round(time.Millisecond))
	}
	_ = writeLine(bw, trailer)
}

// exportTotal is how many cases sel exports, from the indexes and
// counters (no walk).
func exportTotal(tx *store.Tx, sel export.Selection) (int, error) {
	if sel.All {
		n, _, err := tx.Counts()
		return n, err
	}
	ids, err := tx.CaseIDsOfCustomer(sel.Customer)
	return len(ids), err
}

// Export runs an export in the daemon on c's socket and writes its files
// into dst as they arrive, until ctx ends; started, if not nil, learns how many cases
// come, and file is called after each file. It returns an error
// matching ErrNoDaemon when no daemon answers.
func (c AdminClient) Export(ctx context.Context, args ExportArgs, dst export.Destination, started func(cases int), file func(name string)) (export.Stats, error) {
	var st export.Stats
	conn, err := c.dial(AdminRequest{Op: "export", Export: &args})
	if err != nil {
		return st, err
	}
	defer conn.Close()
	// Closing the connection is what stops the daemon's side.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	br := bufio.NewReaderSize(conn, maxFrame+4)
	resp, err := readResponse(br)
	if err != nil {
		return st, err
	}
	c.note(resp.Note)
	var hdr ExportHeader
	if err := json.Unmarshal(resp.Result, &hdr); err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	if started != nil {
		started(hdr.Cases)
	}
	var name []byte
	for {
		name = name[:0]
		nb := &sliceWriter{b: &name}
		if _, err := readFrames(br, nb); err != nil {
			return st, fmt.Errorf("export: %w", err)
		}
		if len(name) == 0 {
			break
		}
		w, err := dst.Create(string(name))
		if err != nil {
			return st, err
		}
		if _, err := readFrames(br, w); err != nil {
			return st, fmt.Errorf("export: %s: %w", name, err)
		}
		if file != nil {
			file(string(name))
		}
	}
	resp, err = readResponse(br)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(resp.Result, &st); err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	return st, nil
}

// sliceWriter appends to a byte slice.
type sliceWriter struct{ b *[]byte }

func (s *sliceWriter) Write(p []byte) (int, error) {
	if len(*s.b)+len(p) > 4096 {
		return 0, errors.New("file name over 4096 bytes")
	}
	*s.b = append(*s.b, p...)
	return len(p), nil
}
