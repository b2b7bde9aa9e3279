package daemon

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"deskd/internal/safeio"
	"deskd/store"
)

// The "backup" admin op. After the request
// {"op":"backup","compression":"zstd"|"gzip"|"none"} the daemon answers
// one JSON line ({"result":{"compression":...}} or {"error":...}), then the
// backup in frames (a big-endian uint32 length, that many bytes; a zero
// length ends them), then one JSON line with the outcome: {"result":
// store.BackupInfo} or {"error":...}. Framing lets the client tell a
// complete backup from one cut short, and the trailer's SHA-256 (of the
// bytes sent) lets it check what it received end to end.

// maxFrame bounds a frame; a client refuses a longer one.
const maxFrame = 1 << 20

func validCompression(c string) bool {
	return c == store.CompressionZstd || c == store.CompressionGzip || c == store.CompressionNone
}

// serveBackup answers the "backup" op on conn. A client that stops
// reading fails the next write after the inactivity timeout (idleConn),
// one that goes away cancels ctx (admin.go): either way the backup's
// read transaction ends, since bbolt reuses no page freed after it began
// and a remap would wait for it.
func (d *Daemon) serveBackup(ctx context.Context, conn io.Writer, req AdminRequest) {
	comp := req.Compression
	if comp == "" {
		comp = store.CompressionZstd
	}
	if !validCompression(comp) {
		_ = writeLine(conn, adminResponse{Error: fmt.Sprintf("backup: unknown compression %q (zstd, gzip or none)", comp)})
		return
	}
	hdr, _ := json.Marshal(map[string]string{"compression": comp})
	// A follower says how far behind its copy is, before the read: the
	// backup is no older than that.
	if err := writeLine(conn, adminResponse{Result: hdr, Note: d.followerNote()}); err != nil {
		return
	}
	start := time.Now()
	fw := &frameWriter{ctx: ctx, w: conn}
	info, err := d.db.Backup(fw, comp)
	if fw.err != nil {
		// The connection is gone (or we are stopping): no trailer.
		d.log.Warn("backup over the admin socket aborted", "err", fw.err)
		return
	}
	if endErr := fw.end(); endErr != nil {
		return
	}
	var trailer adminResponse
	if err != nil {
		trailer.Error = err.Error()
		d.log.Error("backup over the admin socket failed", "err", err)
	} else {
		trailer.Result, _ = json.Marshal(info)
		d.log.Info("backup sent over the admin socket", "compression", comp, "size", info.Size,
			"took", time.Since(start).Round(time.Millisecond), "sha256", info.SHA256)
	}
	_ = writeLine(conn, trailer)
}

// frameWriter writes frames: a big-endian uint32 length, that many bytes.
type frameWriter struct {
	ctx context.Context
	w   io.Writer
	err error
	hdr [4]byte
}

func (f *frameWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 && f.err == nil {
		if f.err = f.ctx.Err(); f.err != nil {
			break
		}
		n := min(len(p), maxFrame)
		binary.BigEndian.PutUint32(f.hdr[:], uint32(n))
		if _, f.err = f.w.Write(f.hdr[:]); f.err != nil {
			break
		}
		if _, f.err = f.w.Write(p[:n]); f.err == nil {
			written += n
			p = p[n:]
		}
	}
	return written, f.err
}

// end writes the zero-length frame that ends a run of frames.
func (f *frameWriter) end() error {
	if f.err != nil {
		return f.err
	}
	_, f.err = f.w.Write([]byte{0, 0, 0, 0})
	return f.err
}

// readFrames copies a run of frames from br to w, up to the zero-length
// frame that ends it, and returns the bytes copied.
func readFrames(br *bufio.Reader, w io.Writer) (int64, error) {
	var n int64
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return n, fmt.Errorf("cut short after %d bytes: %w", n, err)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size == 0 {
			return n, nil
		}
		if size > maxFrame {
			return n, fmt.Errorf("frame of %d bytes", size)
		}
		m, err := io.CopyN(w, br, int64(size))
		n += m
		if err != nil {
			return n, fmt.Errorf("after %d bytes: %w", n, err)
		}
	}
}

// FetchBackup asks the daemon on the admin socket for a backup in the given
// compression (store.CompressionZstd, CompressionGzip, or CompressionNone
// for the raw bbolt file) and writes it to w as it arrives. It checks the
// received bytes against the SHA-256 the daemon computed. It returns an
// error matching ErrNoDaemon when no daemon answers on socket.
func FetchBackup(socket string, w io.Writer, compression string) (store.BackupInfo, error) {
	return AdminClient{Socket: socket}.Backup(w, compression)
}

// Backup is FetchBackup through c.
func (c AdminClient) Backup(w io.Writer, compression string) (store.BackupInfo, error) {
	var info store.BackupInfo
	conn, err := c.dial(AdminRequest{Op: "backup", Compression: compression})
	if err != nil {
		return info, err
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, maxFrame+4)
	hdr, err := readResponse(br)
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	c.note(hdr.Note)
	h := sha256.New()
	n, err := readFrames(br, io.MultiWriter(w, h))
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	resp, err := readResponse(br)
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if err := json.Unmarshal(resp.Result, &info); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != info.SHA256 || n != info.Size {
		return info, fmt.Errorf("backup: received %d bytes with SHA-256 %s, the daemon sent %d with %s", n, got, info.Size, info.SHA256)
	}
	return info, nil
}

// Snapshot copies the running daemon's store, uncompressed, to dstPath: a
// consistent bbolt file (one read transaction) that store.Open (ReadOnly)
// or bbolt can open, written to a temporary name beside dstPath, fsynced
// and renamed (internal/safeio). It returns an error matching ErrNoDaemon when no daemon
// answers on socket (the caller may then open the store file itself).
func Snapshot(socket, dstPath string) error {
	err := safeio.Write(dstPath, func(w io.Writer) error {
		_, err := FetchBackup(socket, w, store.CompressionNone)
		return err
	}, safeio.Options{SyncEvery: safeio.SyncEvery})
	if err != nil && !errors.Is(err, ErrNoDaemon) {
		return fmt.Errorf("snapshot %s: %w", dstPath, err)
	}
	return err
}
