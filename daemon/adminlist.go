package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"deskd/cases"
	"deskd/store"
)

// The "cases.list" admin op streams: after the request
// {"op":"cases.list","status":"all","after":1200,"limit":500} the daemon
// writes one JSON line per case (a CaseSummary, which always starts with
// {"id":), as it reads them in one read transaction, then one line that
// ends the answer: {"end":{"count":N,"next_after":ID}} (next_after: the
// last case sent, when more follow it; the next page's --after) or
// {"error":"..."}. Neither side holds more than a case at a time.

// ListEnd ends a listing.
type ListEnd struct {
	// Count is how many cases were listed.
	Count int `json:"count"`
	// NextAfter is the id to continue after, when Limit cut the listing
	// short; 0 when nothing follows.
	NextAfter uint64 `json:"next_after,omitempty"`
	// Note is what a cluster follower says of its copy (how far behind
	// the leader it was when the listing began), as the short answers'
	// note; the CLI prints it on stderr.
	Note string `json:"note,omitempty"`
}

type listTrailer struct {
	End    *ListEnd        `json:"end"`
	Error  string          `json:"error"`
	Result json.RawMessage `json:"result"`
}

// caseLinePrefix starts every case line of a listing (CaseSummary's first
// field) and no line that ends one.
var caseLinePrefix = []byte(`{"id":`)

func (d *Daemon) serveList(ctx context.Context, conn io.Writer, req AdminRequest) {
	bw := bufio.NewWriterSize(conn, 64<<10)
	var end ListEnd
	note := d.followerNote() // before the read: the copy listed is no older
	err := d.db.ViewContext(ctx, func(tx *store.Tx) error {
		var err error
		end, err = WriteCaseLines(tx, req.Status, req.After, req.Limit, d.CaseView(), bw)
		return err
	})
	end.Note = note
	if ctx.Err() != nil {
		return // no one to tell; serveAdminConn logs it
	}
	if err != nil {
		_ = writeLine(bw, adminResponse{Error: err.Error()})
	} else {
		b, _ := json.Marshal(map[string]ListEnd{"end": end})
		_, _ = bw.Write(append(b, '\n'))
	}
	_ = bw.Flush()
}

var errPageFull = errors.New("page full")

// WriteCaseLines writes the cases with the given status ("" or "all" for
// every case) after id after, at most limit (0 = all), oldest first, one
// JSON line each, to w, as it reads them. The daemon (admin socket) and
// the CLI on a stopped store both list through it, so they answer alike.
//
// Open and pending cases come from their list lines (caselines.go) while
// those are true and were computed with v's clocks: no history decoded,
// no clock replayed; any other case is summarised from its record.
func WriteCaseLines(tx *store.Tx, status string, after uint64, limit int, v SLAView, w io.Writer) (ListEnd, error) {
	var end ListEnd
	if ok, err := linesUsable(tx, status, v); err != nil || ok {
		if err != nil {
			return end, err
		}
		err := writeFromLines(tx, cases.Status(status), after, limit, v, w, &end)
		return end, err
	}
	err := forEachSummary(tx, status, after, limit, v, &end, func(s *CaseSummary) error {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
	return end, err
}

// linesUsable says whether a listing of status can use the case lines.
func linesUsable(tx *store.Tx, status string, v SLAView) (bool, error) {
	if (status != string(cases.StatusOpen) && status != string(cases.StatusPending)) || v.Clocks == nil {
		return false, nil
	}
	version, err := tx.CaseLineVersion()
	return err == nil && version != "" && version == linesVersion(v.Clocks), err
}

func writeFromLines(tx *store.Tx, status cases.Status, after uint64, limit int, v SLAView, w io.Writer, end *ListEnd) error {
	var last uint64
	var buf []byte
	err := tx.ForEachCaseIDAfter(status, after, func(id uint64) error {
		if limit > 0 && end.Count == limit {
			end.NextAfter = last
			return errPageFull
		}
		line, ok := tx.CaseLine(id, v.Now)
		if !ok {
			c, err := tx.Case(id)
			if err != nil {
				return err
			}
			if c == nil {
				return fmt.Errorf("list cases: status index names case %d, which does not exist", id)
			}
			s := summarize(c, v)
			if line, err = json.Marshal(&s); err != nil {
				return err
			}
		}
		// One write per line (the CLI's lineFunc takes whole lines);
		// buf is reused, line belongs to the transaction.
		buf = append(append(buf[:0], line...), '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
		end.Count++
		last = id
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	return err
}

func forEachSummary(tx *store.Tx, status string, after uint64, limit int, v SLAView, end *ListEnd, fn func(*CaseSummary) error) error {
	st, err := listStatus(status)
	if err != nil {
		return err
	}
	var last uint64
	err = tx.ForEachCaseAfter(st, after, func(c *cases.Case) error {
		if limit > 0 && end.Count == limit {
			end.NextAfter = last
			return errPageFull
		}
		s := summarize(c, v)
		if err := fn(&s); err != nil {
			return err
		}
		end.Count++
		last = c.ID
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	return err
}

// ListCases streams a listing from the daemon on the client's socket:
// each case's JSON line (without its newline; valid until the next call)
// goes to each, in order. It returns an error matching ErrNoDaemon when
// no daemon answers.
func (c AdminClient) ListCases(status string, after uint64, limit int, each func(line []byte) error) (ListEnd, error) {
	conn, err := c.dial(AdminRequest{Op: "cases.list", Status: status, After: after, Limit: limit})
	if err != nil {
		return ListEnd{}, err
	}
	defer conn.Close()
	return ReadCaseLines(bufio.NewReaderSize(conn, 64<<10), each)
}

// ReadCaseLines reads a listing written as "cases.list" answers.
func ReadCaseLines(br *bufio.Reader, each func(line []byte) error) (ListEnd, error) {
	n := 0
	for {
		line, err := readLine(br)
		if err != nil {
			return ListEnd{Count: n}, fmt.Errorf("cases list: cut short after %d cases: %w", n, err)
		}
		if bytes.HasPrefix(line, caseLinePrefix) {
			if err := each(line); err != nil {
				return ListEnd{Count: n}, err
			}
			n++
			continue
		}
		var t listTrailer
		if err := json.Unmarshal(line, &t); err != nil {
			return ListEnd{Count: n}, fmt.Errorf("cases list: %w", err)
		}
		switch {
		case t.Error != "":
			return ListEnd{Count: n}, errors.New(t.Error)
		case t.End != nil:
			if t.End.Count != n {
				return ListEnd{Count: n}, fmt.Errorf("cases list: %d cases received, the daemon sent %d", n, t.End.Count)
			}
			return *t.End, nil
		case t.Result != nil:
			// A daemon from before streaming: the whole list at once.
			var all []json.RawMessage
			if err := json.Unmarshal(t.Result, &all); err != nil {
				return ListEnd{Count: n}, fmt.Errorf("cases list: %w", err)
			}
			for _, l := range all {
				if err := each(l); err != nil {
					return ListEnd{Count: n}, err
				}
				n++
			}
			return ListEnd{Count: n}, nil
		default:
			return ListEnd{Count: n}, fmt.Errorf("cases list: unexpected line %.80q", line)
		}
	}
}

// ListAll collects a whole listing from the daemon at socket (for small
// stores: tests, the demo).
func ListAll(socket, status string) ([]CaseSummary, error) {
	var out []CaseSummary
	_, err := AdminClient{Socket: socket}.ListCases(status, 0, 0, func(line []byte) error {
		var s CaseSummary
		if err := json.Unmarshal(line, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}
