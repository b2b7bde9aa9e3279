package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

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
	info, err := unpack(ctx, path, wantSHA, tmp, progress)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return info, err
	}
	return checkBoltFile(tmp.Name(), info)
}

// unpack decompresses the backup at path into dst, checking its SHA-256
// against wantSHA ("" = no check) over every byte of the file. Whether dst
// is fsynced is the caller's choice: a restore does, a verification does
// not.
func unpack(ctx context.Context, path, wantSHA string, dst io.Writer, progress func(int64)) (BackupInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return BackupInfo{}, err
	}
	defer f.Close()
	return unpackReader(ctx, f, wantSHA, dst, progress)
}

// unpackReader is unpack of a backup read from r (a cluster snapshot's
// stream, a restore from a stream).
func unpackReader(ctx context.Context, r io.Reader, wantSHA string, dst io.Writer, progress func(int64)) (BackupInfo, error) {
	var info BackupInfo
	h := sha256.New()
	cr := &countingReader{r: ctxReader{ctx, r}, progress: progress}
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
