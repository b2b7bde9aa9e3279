// Package safeio writes files so that whoever reads them, a crash and a
// restart included, sees either the old file or the whole new one, never
// a part: the data goes to a hidden temporary file beside the target, is
// fsynced, optionally verified, renamed over the target, and the directory
// is fsynced so that the rename itself survives a crash. Every file deskd
// writes whole (backups and their checksum files, the copy before a
// migration, snapshots, reports) goes through Write.
package safeio

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
)

// SyncEvery is the interval, in bytes, that large writers (backups,
// snapshots) pass as Options.SyncEvery. Left to the kernel, a whole
// store's worth of dirty pages sits in the page cache and is flushed in
// one go; on ext4 (data=ordered) the daemon's next commit fsync then waits
// for all of it: seconds of stalled ingest, measured in
// store/bench_backup_test.go.
const SyncEvery = 16 << 20

// Options tune Write.
type Options struct {
	// Perm is the new file's permission bits; 0 keeps os.CreateTemp's 0600.
	Perm os.FileMode
	// SyncEvery, when positive, fsyncs the temporary file every this many
	// bytes while it is written (see the constant SyncEvery), besides the
	// fsync at the end.
	SyncEvery int64
	// Verify, if set, is called with the name of the complete, fsynced and
	// closed temporary file before it is renamed. An error from it stops
	// there: the temporary file is removed, the target is not touched, and
	// Write returns the error.
	Verify func(tmpPath string) error
}

// ErrDirNotSynced is wrapped by Write's error when the file was renamed
// into place but the directory could not be fsynced: the new file is
// there, but a crash may still undo the rename.
var ErrDirNotSynced = errors.New("directory not synced after rename")

// Write creates or replaces path with what write writes, through a hidden
// temporary file "."+base+".tmp-*" in path's directory. On any error
// before the rename, including one from write or Verify, nothing is left
// under the temporary name and path is unchanged.
func Write(path string, write func(w io.Writer) error, opts Options) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close() // a second Close only errs
			os.Remove(tmp.Name())
		}
	}()
	sw := &SyncingWriter{F: tmp, Every: opts.SyncEvery}
	size := 64 << 10
	if opts.SyncEvery > 0 {
		size = 1 << 20 // a stream: fewer, larger writes
	}
	bw := bufio.NewWriterSize(sw, size)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if opts.Perm != 0 {
		if err := tmp.Chmod(opts.Perm); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if opts.Verify != nil {
		if err := opts.Verify(tmp.Name()); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	renamed = true
	if err := SyncDir(dir); err != nil {
		return errors.Join(ErrDirNotSynced, err)
	}
	return nil
}

// WriteFile is Write of data.
func WriteFile(path string, data []byte, opts Options) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, opts)
}

// SyncDir makes renames, links and removals in dir durable.
func SyncDir(dir string) error {
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

// SyncingWriter writes to F, fsyncing it every Every bytes (never while
// writing when Every <= 0), so that a long write does not pile up dirty
// pages (see SyncEvery). Write uses one; so does a restore, which unpacks
// a backup into a file of its own before renaming it.
type SyncingWriter struct {
	F        *os.File
	Every    int64
	unsynced int64
}

func (w *SyncingWriter) Write(p []byte) (int, error) {
	n, err := w.F.Write(p)
	w.unsynced += int64(n)
	if err == nil && w.Every > 0 && w.unsynced >= w.Every {
		w.unsynced = 0
		err = w.F.Sync()
	}
	return n, err
}
