package store

// Backups (R19): a backup is the bbolt file as one read transaction sees it
// (Tx.WriteTo: a consistent copy while the writer goes on), compressed with
// zstd or gzip, with a sidecar NAME.sha256 in sha256sum's format so that
// `sha256sum -c NAME.sha256` checks it with the usual tools. The compressed
// formats carry their own checksums as well (zstd's frame checksum, gzip's
// CRC-32), so even a file separated from its sidecar cannot decompress into
// silently wrong bytes; the SHA-256 is the one an operator can compare with
// a copy kept elsewhere. A backup is first written under a hidden temporary
// name, fsynced, verified (decompressed while it is written and its bbolt
// file checked: streamcheck.go), and only then renamed: the final name
// never holds a half or unverified backup.

import (
	"bufio"
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

	"deskd/internal/safeio"
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
	info, err := backupBolt(db.bolt(), w, compression)
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

func backupBolt(bdb *bolt.DB, w io.Writer, compression string) (info BackupInfo, err error) {
	err = bdb.View(func(tx *bolt.Tx) error {
		info, err = backupTx(tx, w, compression)
		return err
	})
	return info, err
}

// backupTx writes the backup of what tx sees.
func backupTx(tx *bolt.Tx, w io.Writer, compression string) (BackupInfo, error) {
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
	var err error
	if info.SchemaVersion, info.Cases, info.Messages, err = describe(tx); err == nil {
		info.RawSize, err = tx.WriteTo(comp)
	}
	if cerr := comp.Close(); err == nil {
		err = cerr
	}
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
	if version >= 5 {
		// The counters (counters.go): no walk before the first byte.
		cases, messages, err = readCounts(meta)
		return version, cases, messages, err
	}
	// An older store (BackupStore saves any version): KeyN walks the
	// record buckets' pages only, not the raw mail.
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
// path.sha256, atomically (internal/safeio): both go to hidden temporary
// files in path's directory first, which are fsynced; the backup is
// verified while it is written (streamcheck.go: decompressed on the fly
// into a check of the bbolt file inside, no second copy on disk); then
// the sidecar and the backup are renamed into place and the directory is
// fsynced. On any error, including ctx ending, nothing is left under
// either name.
func WriteBackupFile(ctx context.Context, path string, write BackupWriter) (BackupInfo, error) {
	var info BackupInfo
	var verr error
	sidecar := false
	err := safeio.Write(path, func(w io.Writer) error {
		sv := newStreamVerifier(ctx)
		var err error
		info, err = write(ctxWriter{ctx, io.MultiWriter(w, sv)})
		var vinfo BackupInfo
		vinfo, verr = sv.Close(err)
		switch {
		case err != nil:
			return err
		case verr != nil:
			return fmt.Errorf("verify: %w", verr)
		case vinfo.RawSize != info.RawSize:
			return fmt.Errorf("verify: %d bytes inside, %d written", vinfo.RawSize, info.RawSize)
		}
		return nil
	}, safeio.Options{SyncEvery: safeio.SyncEvery, Verify: func(tmpName string) error {
		// The sidecar first: a crash between the renames leaves a checksum
		// without its backup (harmless), never a backup that looks finished
		// but cannot be checked.
		if err := safeio.WriteFile(path+ChecksumSuffix, []byte(ChecksumLine(info.SHA256, path)), safeio.Options{}); err != nil {
			return fmt.Errorf("checksum: %w", err)
		}
		sidecar = true
		return nil
	}})
	if err != nil {
		if sidecar && !errors.Is(err, safeio.ErrDirNotSynced) {
			os.Remove(path + ChecksumSuffix) // the backup it names never got its name
		}
		return info, fmt.Errorf("backup %s: %w", path, err)
	}
	return info, nil
}
