package store

// Verification of a backup while it is written (WriteBackupFile): the
// bytes going to the file are also decompressed, on the fly, into a
// checker of the bbolt file inside, so no second copy of the store ever
// lands on disk (issue 11: at 1M cases that copy took 270 s and as much
// free disk as the store). What it proves: the file decompresses (zstd's
// frame checksums, gzip's CRC-32), into exactly the bytes the backup
// counted, which are a bbolt file that ends where its valid meta page
// says, whose root bucket and freelist pages are where the meta page
// puts them. bbolt's full consistency check (every page reachable once)
// needs the file at random access; `deskd restore` runs it (on the copy
// a restore writes anyway, and on a scratch copy in its dry run).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
)

// The bbolt file format (go.etcd.io/bbolt/internal/common), little-endian
// on the machines deskd runs on: a page starts with a 16-byte header (id
// uint64, flags uint16, count uint16, overflow uint32); a meta page's body
// is magic, version, page size, flags (uint32 each), the root bucket (root
// page id, sequence), the freelist page id, the page count, the txid and
// an FNV-64a checksum of the body before it.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltPageHeader   = 16
	boltMetaLen      = 64
	boltBranchPage   = 0x01
	boltLeafPage     = 0x02
	boltFreelistPage = 0x10
	boltNoFreelist   = ^uint64(0)
)

type boltMeta struct {
	pageSize          uint32
	root, freelist, n uint64
	txid              uint64
}

// parseBoltMeta reads the meta page at the start of page.
func parseBoltMeta(page []byte) (boltMeta, error) {
	var m boltMeta
	if len(page) < boltPageHeader+boltMetaLen {
		return m, errors.New("short meta page")
	}
	b := page[boltPageHeader:]
	le := binary.LittleEndian
	if le.Uint32(b) != boltMagic {
		return m, errors.New("not a bbolt file (no magic)")
	}
	if v := le.Uint32(b[4:]); v != boltVersion {
		return m, fmt.Errorf("bbolt format version %d", v)
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if h.Sum64() != le.Uint64(b[56:]) {
		return m, errors.New("meta page checksum mismatch")
	}
	m.pageSize = le.Uint32(b[8:])
	m.root = le.Uint64(b[16:])
	m.freelist = le.Uint64(b[32:])
	m.n = le.Uint64(b[40:])
	m.txid = le.Uint64(b[48:])
	if m.pageSize < 1024 || m.pageSize > 1<<16 || m.pageSize&(m.pageSize-1) != 0 {
		return m, fmt.Errorf("page size %d", m.pageSize)
	}
	return m, nil
}

// boltStreamCheck is an io.Writer for the decompressed bbolt file.
type boltStreamCheck struct {
	n      int64 // bytes seen
	head   []byte
	meta   *boltMeta
	probes []pageProbe
}

// pageProbe is a page header the stream must show at page id.
type pageProbe struct {
	id    uint64
	flags uint16 // any of these
	what  string
	hdr   [boltPageHeader]byte
	got   int
}

func (c *boltStreamCheck) Write(p []byte) (int, error) {
	start := c.n
	c.n += int64(len(p))
	if c.meta == nil {
		c.head = append(c.head, p...)
		if err := c.readMetas(); err != nil || c.meta == nil {
			return 0, err
		}
		p, start = c.head, 0 // replay what the metas were read from
		c.head = nil
	}
	for i := range c.probes {
		pr := &c.probes[i]
		off := int64(pr.id) * int64(c.meta.pageSize)
		for pr.got < boltPageHeader {
			at := off + int64(pr.got)
			if at < start || at >= start+int64(len(p)) {
				break
			}
			pr.got += copy(pr.hdr[pr.got:], p[at-start:])
		}
	}
	return len(p), nil
}

// readMetas picks the valid meta page with the higher txid once both
// pages are in head.
func (c *boltStreamCheck) readMetas() error {
	if len(c.head) < boltPageHeader+boltMetaLen {
		return nil
	}
	m0, err0 := parseBoltMeta(c.head)
	if err0 == nil && len(c.head) < 2*int(m0.pageSize) {
		return nil
	}
	var m1 boltMeta
	err1 := errors.New("no second meta page")
	if err0 == nil {
		m1, err1 = parseBoltMeta(c.head[m0.pageSize:])
	}
	switch {
	case err0 != nil && err1 != nil:
		return fmt.Errorf("bbolt meta page: %w", err0)
	case err0 != nil || (err1 == nil && m1.txid > m0.txid):
		m0 = m1
	}
	c.meta = &m0
	if m0.root >= m0.n {
		return fmt.Errorf("bbolt meta: root page %d beyond the %d pages", m0.root, m0.n)
	}
	c.probes = append(c.probes, pageProbe{id: m0.root, flags: boltBranchPage | boltLeafPage, what: "root bucket"})
	if m0.freelist != boltNoFreelist {
		if m0.freelist >= m0.n {
			return fmt.Errorf("bbolt meta: freelist page %d beyond the %d pages", m0.freelist, m0.n)
		}
		c.probes = append(c.probes, pageProbe{id: m0.freelist, flags: boltFreelistPage, what: "freelist"})
	}
	return nil
}

// done checks what only the end of the stream shows.
func (c *boltStreamCheck) done() error {
	if c.meta == nil {
		return fmt.Errorf("bbolt file of %d bytes: no valid meta page", c.n)
	}
	if want := int64(c.meta.n) * int64(c.meta.pageSize); c.n != want {
		return fmt.Errorf("bbolt file of %d bytes, its meta page says %d pages of %d (%d bytes)", c.n, c.meta.n, c.meta.pageSize, want)
	}
	for _, pr := range c.probes {
		id := binary.LittleEndian.Uint64(pr.hdr[:])
		flags := binary.LittleEndian.Uint16(pr.hdr[8:])
		if pr.got < boltPageHeader || id != pr.id || flags&pr.flags == 0 {
			return fmt.Errorf("bbolt %s page %d: header says page %d, flags %#x", pr.what, pr.id, id, flags)
		}
	}
	return nil
}

// streamVerifier checks a backup as it is written: its Write takes the
// backup's bytes (compressed or not); Close returns what the check found.
type streamVerifier struct {
	pw   *io.PipeWriter
	done chan struct{}
	info BackupInfo
	err  error
}

func newStreamVerifier(ctx context.Context) *streamVerifier {
	pr, pw := io.Pipe()
	v := &streamVerifier{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		check := &boltStreamCheck{}
		v.info, v.err = unpackReader(ctx, pr, "", check, nil)
		if v.err == nil {
			v.err = check.done()
		}
		// A failed check fails the writer at once (the backup stops);
		// a finished one drains what follows (a trailing byte).
		if v.err != nil {
			pr.CloseWithError(fmt.Errorf("verify: %w", v.err))
		} else {
			_, _ = io.Copy(io.Discard, pr)
		}
	}()
	return v
}

func (v *streamVerifier) Write(p []byte) (int, error) { return v.pw.Write(p) }

// Close ends the stream (with cause, when the backup itself failed) and
// waits for the check.
func (v *streamVerifier) Close(cause error) (BackupInfo, error) {
	v.pw.CloseWithError(cause)
	<-v.done
	return v.info, v.err
}
