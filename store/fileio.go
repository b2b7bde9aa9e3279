package store

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
)

// syncEvery is how much a backup, verification or restore writes between
// two fsyncs. Left to the kernel, a whole store's worth of dirty pages sits
// in the page cache and is flushed in one go; on ext4 (data=ordered) the
// daemon's next commit fsync then waits for all of it: seconds of stalled
// ingest, measured in bench_backup_test.go.
const syncEvery = 16 << 20

// syncingWriter writes to f, fsyncing every syncEvery bytes (unless never)
// and at Sync.
type syncingWriter struct {
	f        *os.File
	never    bool
	unsynced int64
}

func (w *syncingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.unsynced += int64(n)
	if err == nil && !w.never && w.unsynced >= syncEvery {
		err = w.Sync()
	}
	return n, err
}

func (w *syncingWriter) Sync() error {
	if w.never {
		return nil
	}
	w.unsynced = 0
	return w.f.Sync()
}

// WriteFileAtomic writes a file through write: to a hidden temporary name
// beside path, fsynced as it goes (every 16 MiB, see syncEvery) and at the
// end, then renamed to path. On error nothing is left under either name.
func WriteFileAtomic(path string, write func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	sw := &syncingWriter{f: tmp}
	bw := bufio.NewWriterSize(sw, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = sw.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// ctxWriter fails writes once ctx ends, so a backup stops (and its read
// transaction closes) when the daemon shuts down.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
