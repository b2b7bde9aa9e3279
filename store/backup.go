package store

// Backups (R19): a backup is the bbolt file as one read transaction sees it
// (Tx.WriteTo: a consistent copy while the writer goes on), compressed with
// zstd or gzip, with a sidecar NAME.sha256 in sha256sum's format so that
// `sha256sum -c NAME.sha256` checks it with the usual tools. The compressed
// formats carry their own checksums as well (zstd's frame checksum, gzip's
// CRC-32), so even a file separated from its sidecar cannot decompress into
// silently wrong bytes; the SHA-256 is the one an operator can compare with
// a copy kept elsewhere. A backup is first written under a hidden temporary
// name, fsynced, verified (decompressed, opened, checked by bbolt), and only
// then renamed: the final name never holds a half or unverified backup.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Compression formats of a backup. CompressionNone is the raw bbolt file
// (a snapshot another tool opens directly, e.g. an export).
const (
	CompressionZstd = "zstd"
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// BackupInfo describes one backup.
type BackupInfo struct {
	Compression string `json:"compression"`
	// Size is the number of bytes of the backup as written (compressed);
	// SHA256 is their hex digest, the one in the sidecar file.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// RawSize is the size of the bbolt file inside.
	RawSize       int64  `json:"raw_size"`
	SchemaVersion uint64 `json:"schema_version"`
	// Cases and Messages count the records in the copy.
	Cases    int `json:"cases"`
	Messages int `json:"messages"`
}

// ChecksumSuffix names a backup's sidecar: NAME + ChecksumSuffix.
const ChecksumSuffix = ".sha256"

// magic numbers of the formats, to recognise a backup by its contents
// rather than by a file name someone may have changed.
var (
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicGzip = []byte{0x1f, 0x8b}
)

// Backup writes a backup of the store to w in the given compression
// (CompressionZstd, CompressionGzip or CompressionNone), streaming: the
// file is never held in memory. It runs in one read transaction, so ingest
// goes on meanwhile; see bench_backup_test.go for what that costs it.
func (db *DB) Backup(w io.Writer, compression string) (BackupInfo, error) {
	info, err := backupBolt(db.bolt, w, compression)
	if err != nil {
		return info, fmt.Errorf("backup %s: %w", db.path, err)
	}
	return info, nil
}

// BackupStore writes a backup of the store file at path, which no daemon
// may hold open (the file is opened read-only with a shared lock; a daemon
// holding it gives ErrLocked). Unlike Open it accepts any schema version,
// so a store can be saved before an upgrade migrates it, or after a
// downgrade refused it.
func BackupStore(path string, w io.Writer, compression string) (BackupInfo, error) {
	bdb, err := openRaw(path, defaultTimeout)
	if err != nil {
		return BackupInfo{}, err
	}
	defer bdb.Close()
	info, err := backupBolt(bdb, w, compression)
	if err != nil {
		return info, fmt.Errorf("backup %s: %w", path, err)
	}
	return info, nil
}

// openRaw opens a deskd store read-only without checking its version.
func openRaw(path string, timeout time.Duration) (*bolt.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, &lockedError{path: path}
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return bdb, nil
}

func backupBolt(bdb *bolt.DB, w io.Writer, compression string) (BackupInfo, error) {
	info := BackupInfo{Compression: compression}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, h)}
	var comp io.WriteCloser
	switch compression {
	case CompressionZstd:
		// SpeedFastest: the raw mail inside is zstd-compressed already,
		// so a higher level buys little and lengthens the read
		// transaction the backup runs in. Two encoder goroutines keep
		// one core for ingest on a small machine.
		enc, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(2))
		if err != nil {
			return info, err
		}
		comp = enc
	case CompressionGzip:
		// klauspost's gzip writes the standard format, several times
		// faster than compress/gzip.
		gz, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
		if err != nil {
			return info, err
		}
		comp = gz
	case CompressionNone:
		comp = nopCloser{bufio.NewWriterSize(cw, 1<<20)}
	default:
		return info, fmt.Errorf("unknown compression %q (zstd, gzip or none)", compression)
	}
	err := bdb.View(func(tx *bolt.Tx) error {
		var err error
		if info.SchemaVersion, info.Cases, info.Messages, err = describe(tx); err == nil {
			info.RawSize, err = tx.WriteTo(comp)
		}
		if cerr := comp.Close(); err == nil {
			err = cerr
		}
		return err
	})
	info.Size = cw.n
	info.SHA256 = hex.EncodeToString(h.Sum(nil))
	return info, err
}

// describe reads what BackupInfo says about a store's contents.
func describe(tx *bolt.Tx) (version uint64, cases, messages int, err error) {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		return 0, 0, 0, errors.New("not a deskd store: no meta bucket")
	}
	if version, err = readVersion(meta); err != nil {
		return 0, 0, 0, err
	}
	if version == 0 {
		return 0, 0, 0, errors.New("not a deskd store: no schema version")
	}
	// KeyN walks the record buckets' pages only, not the raw mail.
	if b := tx.Bucket([]byte(bucketCases)); b != nil {
		cases = b.Stats().KeyN
	}
	if b := tx.Bucket([]byte(bucketMessages)); b != nil {
		messages = b.Stats().KeyN
	}
	return version, cases, messages, nil
}

// mmapSize is the mapping Open asks bbolt for: the file's size plus
// initialMmapSize of headroom, so that a read transaction as long as a
// backup (seconds for a store of a GB) does not meet a remap, which would
// wait for it and stop every commit and every new transaction meanwhile.
// bbolt rounds it up to a power of two below 1 GiB and to whole GiB above.
// The headroom is used up only after the store grew by a GiB within one
// run of the daemon. On 32-bit systems bbolt cannot map more than 2 GiB,
// so there the fixed size stays.
func mmapSize(path string) int {
	if strconv.IntSize < 64 {
		return initialMmapSize
	}
	fi, err := os.Stat(path)
	if err != nil {
		return initialMmapSize
	}
	return int(fi.Size()) + initialMmapSize
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type nopCloser struct{ *bufio.Writer }

func (c nopCloser) Close() error { return c.Flush() }

// ChecksumLine is the sidecar's content: sha256sum's format (two spaces:
// text mode, which on Unix is the same bytes), naming the file by its base
// name so `cd DIR && sha256sum -c NAME.sha256` works.
func ChecksumLine(sum, path string) string {
	return sum + "  " + filepath.Base(path) + "\n"
}

var checksumLineRE = regexp.MustCompile(`^([0-9a-fA-F]{64}) [ *](.+)$`)

// readChecksum reads the digest from path's sidecar.
func readChecksum(path string) (string, error) {
	b, err := os.ReadFile(path + ChecksumSuffix)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("checksum file %s is missing (every backup is written with one beside it)", path+ChecksumSuffix)
		}
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	m := checksumLineRE.FindStringSubmatch(strings.TrimRight(line, "\r"))
	if m == nil {
		return "", fmt.Errorf("checksum file %s: not in sha256sum format", path+ChecksumSuffix)
	}
	return strings.ToLower(m[1]), nil
}

// BackupWriter produces a backup's bytes, e.g. a DB's Backup method or a
// fetch from a running daemon.
type BackupWriter func(w io.Writer) (BackupInfo, error)

// WriteBackupFile writes a backup to path and its checksum to
// path.sha256, atomically: both go to hidden temporary files in path's
// directory first, which are fsynced; the backup is verified (checksum,
// decompression, bbolt's consistency check, schema version) unless it is
// CompressionNone; then the sidecar and the backup are renamed into
// place and the directory is fsynced. On any error, including ctx ending,
// nothing is left under either name.
func WriteBackupFile(ctx context.Context, path string, write BackupWriter) (BackupInfo, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup %s: %w", path, err)
	}
	tmpName := tmp.Name()
	sumName := ""
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmpName)
			if sumName != "" {
				os.Remove(sumName)
			}
		}
	}()
	bw := bufio.NewWriterSize(ctxWriter{ctx, &syncingWriter{f: tmp}}, 1<<20)
	info, err := write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return info, fmt.Errorf("backup %s: %w", path, err)
	}
	if info.Compression != CompressionNone {
		vinfo, err := verifyFile(ctx, tmpName, info.SHA256, dir, nil)
		if err != nil {
			return info, fmt.Errorf("backup %s: verify: %w", path, err)
		}
		if vinfo.RawSize != info.RawSize {
			return info, fmt.Errorf("backup %s: verify: %d bytes inside, %d written", path, vinfo.RawSize, info.RawSize)
		}
	}
	sum, err := os.CreateTemp(dir, "."+base+ChecksumSuffix+".tmp-*")
	if err != nil {
		return info, fmt.Errorf("backup %s: %w", path, err)
	}
	sumName = sum.Name()
	_, err = sum.WriteString(ChecksumLine(info.SHA256, path))
	if err == nil {
		err = sum.Sync()
	}
	if cerr := sum.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return info, fmt.Errorf("backup %s: checksum: %w", path, err)
	}
	// The sidecar first: a crash between the renames leaves a checksum
	// without its backup (harmless), never a backup that looks finished
	// but cannot be checked.
	if err := os.Rename(sumName, path+ChecksumSuffix); err != nil {
		return info, fmt.Errorf("backup %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(path + ChecksumSuffix)
		return info, fmt.Errorf("backup %s: %w", path, err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return info, fmt.Errorf("backup %s: %w", path, err)
	}
	return info, nil
}

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

// VerifyBackup checks the backup at path against its sidecar checksum,
// decompresses it into a temporary file in path's directory (not /tmp,
// which is often a small tmpfs), opens that with bbolt read-only, runs
// bbolt's consistency check and checks the schema version. It changes
// nothing.
func VerifyBackup(path string) (BackupInfo, error) {
	return VerifyBackupContext(context.Background(), path, nil)
}

// VerifyBackupContext is VerifyBackup, stopped by ctx, reporting the bytes
// of path read so far to progress (if not nil).
func VerifyBackupContext(ctx context.Context, path string, progress func(read int64)) (BackupInfo, error) {
	want, err := readChecksum(path)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("verify %s: %w", path, err)
	}
	info, err := verifyFile(ctx, path, want, filepath.Dir(path), progress)
	if err != nil {
		return info, fmt.Errorf("verify %s: %w", path, err)
	}
	return info, nil
}

// ChecksumMatches reports whether path's contents match its sidecar: the
// cheap check (one read, no decompression) that a backup verified when it
// was written is still intact.
func ChecksumMatches(path string) (bool, error) {
	want, err := readChecksum(path)
	if err != nil {
		return false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == want, nil
}

// verifyFile unpacks path into a temporary file in tmpDir, checks it and
// removes it.
func verifyFile(ctx context.Context, path, wantSHA, tmpDir string, progress func(int64)) (BackupInfo, error) {
	tmp, err := os.CreateTemp(tmpDir, ".deskd-verify-*.db")
	if err != nil {
		return BackupInfo{}, err
	}
	defer os.Remove(tmp.Name())
	// Not fsynced: the file is removed again, and an fsync of a whole
	// store's worth of data would only hold up the daemon's commits.
	info, err := unpack(ctx, path, wantSHA, &syncingWriter{f: tmp, never: true}, progress)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return info, err
	}
	return checkBoltFile(tmp.Name(), info)
}

// unpack decompresses the backup at path into dst (fsynced), checking its
// SHA-256 against wantSHA ("" = no check) over every byte of the file.
func unpack(ctx context.Context, path, wantSHA string, dst *syncingWriter, progress func(int64)) (BackupInfo, error) {
	var info BackupInfo
	f, err := os.Open(path)
	if err != nil {
		return info, err
	}
	defer f.Close()
	h := sha256.New()
	cr := &countingReader{r: ctxReader{ctx, f}, progress: progress}
	br := bufio.NewReaderSize(io.TeeReader(cr, h), 1<<20)
	head, _ := br.Peek(4)
	var dec io.Reader
	var closeDec func()
	switch {
	case bytes.HasPrefix(head, magicZstd):
		info.Compression = CompressionZstd
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return info, err
		}
		dec, closeDec = zr, zr.Close
	case bytes.HasPrefix(head, magicGzip):
		info.Compression = CompressionGzip
		gr, err := gzip.NewReader(br)
		if err != nil {
			return info, checksumFirst(br, h, wantSHA, fmt.Errorf("gzip: %w", err))
		}
		dec, closeDec = gr, func() { gr.Close() }
	default:
		info.Compression = CompressionNone
		dec, closeDec = br, func() {}
	}
	n, err := io.Copy(dst, dec)
	closeDec()
	info.RawSize = n
	if err != nil {
		if ctx.Err() != nil {
			return info, ctx.Err()
		}
		return info, checksumFirst(br, h, wantSHA, fmt.Errorf("decompress: %w", err))
	}
	// The decoder may stop before the end of the file (trailing bytes):
	// the checksum covers the whole file all the same.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return info, err
	}
	info.Size = cr.n
	info.SHA256 = hex.EncodeToString(h.Sum(nil))
	if wantSHA != "" && info.SHA256 != wantSHA {
		return info, fmt.Errorf("checksum mismatch: the file's SHA-256 is %s, its checksum file says %s: the backup is damaged", info.SHA256, wantSHA)
	}
	if err := dst.Sync(); err != nil {
		return info, err
	}
	return info, nil
}

// checksumFirst explains a decompression failure by a checksum mismatch
// when there is one: "damaged" says more than a decoder's complaint.
func checksumFirst(br io.Reader, h interface{ Sum([]byte) []byte }, wantSHA string, err error) error {
	if wantSHA == "" {
		return err
	}
	if _, cerr := io.Copy(io.Discard, br); cerr != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA {
		return fmt.Errorf("checksum mismatch: the file's SHA-256 is %s, its checksum file says %s: the backup is damaged (%v)", got, wantSHA, err)
	}
	return err
}

type countingReader struct {
	r        io.Reader
	n        int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.n)
	}
	return n, err
}

// checkBoltFile opens an unpacked backup read-only and checks it: a deskd
// store of a schema version this binary can open, consistent by bbolt's
// own Check (every page reachable once, no page both used and free).
func checkBoltFile(path string, info BackupInfo) (BackupInfo, error) {
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: defaultTimeout})
	if err != nil {
		return info, fmt.Errorf("not a usable bbolt file: %w", err)
	}
	defer bdb.Close()
	err = bdb.View(func(tx *bolt.Tx) error {
		var err error
		if info.SchemaVersion, info.Cases, info.Messages, err = describe(tx); err != nil {
			return err
		}
		var problems []string
		for err := range tx.Check() {
			if len(problems) < 5 {
				problems = append(problems, err.Error())
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("bbolt consistency check failed: %s", strings.Join(problems, "; "))
		}
		return nil
	})
	if err != nil {
		return info, err
	}
	if info.SchemaVersion > schemaVersion {
		return info, newerSchemaError(info.SchemaVersion)
	}
	return info, nil
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Progress, if set, is told the bytes of the backup read so far.
	Progress func(read int64)
	// Now names the kept previous store; nil means time.Now.
	Now func() time.Time
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Backup BackupInfo
	// Previous is where the replaced store was kept ("" if there was none).
	Previous string
}

// Restore replaces the store at storePath with the backup at backupPath.
// It refuses (ErrLocked) while a daemon holds the store; it verifies the
// backup completely (checksum, decompression, bbolt's check, schema
// version) into a temporary file beside the store before touching it;
// then keeps the current store as <storePath>.before-restore-<UTC time>
// (a hard link, so the store's name never points at nothing) and renames
// the restored file over storePath. The restored file gets the replaced
// one's owner and mode, so a restore run as root leaves a store the deskd
// user can open. A backup of an older schema is migrated by the next Open.
func Restore(backupPath, storePath string, opts RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	want, err := readChecksum(backupPath)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	// Fail fast, before a long unpack, when a daemon runs.
	release, err := lockForRestore(storePath)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	release()
	dir := filepath.Dir(storePath)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(storePath)+".restore-*")
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	tmpName := tmp.Name()
	installed := false
	defer func() {
		if !installed {
			os.Remove(tmpName)
		}
	}()
	info, err := unpack(context.Background(), backupPath, want, &syncingWriter{f: tmp}, opts.Progress)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		info, err = checkBoltFile(tmpName, info)
	}
	res.Backup = info
	if err != nil {
		return res, fmt.Errorf("restore: %s is not a good backup, nothing changed: %w", backupPath, err)
	}
	release, err = lockForRestore(storePath)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	defer release()
	if fi, err := os.Stat(storePath); err == nil {
		_ = os.Chmod(tmpName, fi.Mode().Perm())
		if uid, gid, ok := fileOwner(fi); ok {
			_ = os.Lchown(tmpName, uid, gid) // works as root; otherwise the owner is us already
		}
		res.Previous = storePath + ".before-restore-" + now().UTC().Format("20060102T150405Z")
		if err := os.Link(storePath, res.Previous); err != nil {
			// A file system without hard links: two renames, with a
			// moment in which storePath does not exist.
			if err := os.Rename(storePath, res.Previous); err != nil {
				return res, fmt.Errorf("restore: keep the current store: %w", err)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmpName, storePath); err != nil {
		return res, fmt.Errorf("restore: install: %w", err)
	}
	installed = true
	if err := syncDir(dir); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

// lockForRestore makes sure no daemon holds the store: it takes bbolt's
// shared lock (a running daemon holds the exclusive one) and keeps it
// until release, so a daemon starting meanwhile waits. A file that is
// missing or not a bbolt file at all (a damaged store is a reason to
// restore) holds no lock and is no obstacle.
func lockForRestore(storePath string) (release func(), err error) {
	if _, err := os.Stat(storePath); err != nil {
		return func() {}, nil
	}
	bdb, err := bolt.Open(storePath, 0o600, &bolt.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w; stop it first (systemctl stop deskd), then restore", &lockedError{path: storePath})
		}
		return func() {}, nil
	}
	return func() { bdb.Close() }, nil
}
