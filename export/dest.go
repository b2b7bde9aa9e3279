package export

import (
	"archive/zip"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	kflate "github.com/klauspost/compress/flate"
)

// Destination receives the files of an export, one at a time.
type Destination interface {
	// Create starts the file name (slash-separated, relative to the
	// export's top). The writer is valid until the next Create.
	Create(name string) (io.Writer, error)
}

// Output is an export being written to its final place: a directory, or a
// single .zip file when the path ends so. Nothing appears at the path
// until Commit: the files go to a hidden sibling first, so a failed or
// interrupted export leaves no half-export that looks complete.
type Output struct {
	path string
	tmp  string
	dir  bool
	cur  *os.File      // directory: the file being written
	f    *os.File      // zip: the archive
	zw   *zip.Writer   // zip
	bw   *bufio.Writer // the buffer in front of cur or f
	mod  time.Time
	done bool
	// lastDir is the directory made last: the files of a case follow
	// each other, so most Creates need no MkdirAll (a stat per file).
	lastDir string
}

// IsArchive reports whether path names a .zip archive rather than a
// directory. Other archive suffixes are refused by Create, so that
// "export.tar.gz" does not silently become a directory of that name.
func IsArchive(path string) bool {
	return strings.EqualFold(filepath.Ext(path), ".zip")
}

// CheckPath says why path cannot receive an export, or nil: an archive
// must not exist yet; a directory must not exist or be empty.
func CheckPath(path string) error {
	if path == "" {
		return errors.New("no path given for the export")
	}
	lower := strings.ToLower(path)
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".gz", ".tar.zst", ".7z", ".rar"} {
		if strings.HasSuffix(lower, ext) {
			return fmt.Errorf("%s: the only archive format is .zip; give a .zip file or a directory", path)
		}
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case IsArchive(path) || !fi.IsDir():
		return fmt.Errorf("%s already exists", path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty", path)
	}
	return nil
}

// Create prepares an export to path: a .zip archive when path ends in
// .zip, else a directory. Files and directories are created readable by
// their owner only (the export holds personal data); modified is the time
// the archive records for its entries.
func Create(path string, modified time.Time) (*Output, error) {
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	parent, base := filepath.Split(filepath.Clean(path))
	if parent == "" {
		parent = "."
	}
	o := &Output{path: path, mod: modified}
	if !IsArchive(path) {
		tmp, err := os.MkdirTemp(parent, "."+base+".partial-")
		if err != nil {
			return nil, fmt.Errorf("export to %s: %w", path, err)
		}
		o.tmp, o.dir = tmp, true
		return o, nil
	}
	f, err := os.CreateTemp(parent, "."+base+".partial-")
	if err != nil {
		return nil, fmt.Errorf("export to %s: %w", path, err)
	}
	o.tmp, o.f = f.Name(), f
	o.bw = bufio.NewWriterSize(f, 1<<20)
	o.zw = zip.NewWriter(o.bw)
	// klauspost's deflate writes the same format as compress/flate,
	// faster. Entries are written one after the other, so one writer,
	// Reset for each, serves them all (a new one per entry would allocate
	// its large state for every small case.json).
	var fw *kflate.Writer
	o.zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		if fw == nil {
			var err error
			if fw, err = kflate.NewWriter(w, kflate.DefaultCompression); err != nil {
				return nil, err
			}
			return fw, nil
		}
		fw.Reset(w)
		return fw, nil
	})
	return o, nil
}

// Path is where the export appears on Commit.
func (o *Output) Path() string { return o.path }

// Create implements Destination.
func (o *Output) Create(name string) (io.Writer, error) {
	if o.done {
		return nil, errors.New("export: Create after Commit or Abort")
	}
	if !validName(name) {
		return nil, fmt.Errorf("export: bad file name %q", name)
	}
	if !o.dir {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: o.mod}
		h.SetMode(0o600)
		w, err := o.zw.CreateHeader(h)
		if err != nil {
			return nil, fmt.Errorf("export: %s: %w", name, err)
		}
		return w, nil
	}
	if err := o.closeFile(); err != nil {
		return nil, err
	}
	p := filepath.Join(o.tmp, filepath.FromSlash(name))
	if d := filepath.Dir(p); d != o.lastDir {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		o.lastDir = d
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	o.cur = f
	if o.bw == nil {
		o.bw = bufio.NewWriterSize(f, 256<<10)
	} else {
		o.bw.Reset(f)
	}
	return o.bw, nil
}

// validName refuses names that could leave the export's top.
func validName(name string) bool {
	return name != "" && !strings.HasPrefix(name, "/") && !strings.Contains(name, "\\") &&
		filepath.ToSlash(filepath.Clean(filepath.FromSlash(name))) == name && !strings.HasPrefix(name, "../") && name != ".."
}

// closeFile finishes the directory file being written.
func (o *Output) closeFile() error {
	if o.cur == nil {
		return nil
	}
	f := o.cur
	o.cur = nil
	err := o.bw.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// Commit finishes the export and moves it to its path.
func (o *Output) Commit() error {
	if o.done {
		return errors.New("export: Commit after Commit or Abort")
	}
	o.done = true
	var err error
	if o.dir {
		err = o.closeFile()
	} else {
		err = o.zw.Close()
		if err == nil {
			err = o.bw.Flush()
		}
		if err == nil {
			err = o.f.Sync()
		}
		if cerr := o.f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		// An empty directory at path gives way (os.Remove fails on one
		// that is not empty, os.Rename refuses to replace a directory);
		// anything else there was refused by CheckPath, but check again:
		// another process may have put it there meanwhile.
		if fi, serr := os.Lstat(o.path); serr == nil {
			if o.dir && fi.IsDir() {
				err = os.Remove(o.path)
			} else {
				err = fmt.Errorf("%s already exists", o.path)
			}
		}
		if err == nil {
			err = os.Rename(o.tmp, o.path)
		}
	}
	if err != nil {
		os.RemoveAll(o.tmp)
		return fmt.Errorf("export to %s: %w", o.path, err)
	}
	return nil
}

// Abort removes everything written so far. It may be called after a
// failed Commit, and does nothing after a successful one.
func (o *Output) Abort() {
	if o.done {
		return
	}
	o.done = true
	if o.cur != nil {
		o.cur.Close()
	}
	if o.f != nil {
		o.f.Close()
	}
	os.RemoveAll(o.tmp)
}
