package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"deskd/internal/safeio"
)

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
	// Through safeio: the backup is unpacked into a temporary file beside
	// the store and fsynced; the hook before the rename checks it, takes
	// the lock and keeps the current store; then the rename and the
	// directory's fsync. Anything failing before the rename leaves the
	// store as it was and no temporary file.
	var bad error // the backup's own fault, not the restore's
	release = func() {}
	defer func() { release() }()
	err = safeio.Write(storePath, func(w io.Writer) error {
		res.Backup, bad = unpack(context.Background(), backupPath, want, w, opts.Progress)
		return bad
	}, safeio.Options{SyncEvery: safeio.SyncEvery, Verify: func(tmpName string) error {
		if res.Backup, bad = checkBoltFile(tmpName, res.Backup); bad != nil {
			return bad
		}
		var err error
		if release, err = lockForRestore(storePath); err != nil {
			release = func() {}
			return err
		}
		return keepPrevious(storePath, tmpName, now, &res)
	}})
	switch {
	case bad != nil:
		return res, fmt.Errorf("restore: %s is not a good backup, nothing changed: %w", backupPath, err)
	case err != nil:
		return res, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

// keepPrevious gives the restored file tmpName the current store's owner
// and mode, and keeps the current store as res.Previous: a hard link, so
// storePath never points at nothing.
func keepPrevious(storePath, tmpName string, now func() time.Time, res *RestoreResult) error {
	fi, err := os.Stat(storePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_ = os.Chmod(tmpName, fi.Mode().Perm())
	if uid, gid, ok := fileOwner(fi); ok {
		_ = os.Lchown(tmpName, uid, gid) // works as root; otherwise the owner is us already
	}
	res.Previous = storePath + ".before-restore-" + now().UTC().Format("20060102T150405Z")
	if err := os.Link(storePath, res.Previous); err != nil {
		// A file system without hard links: two renames, with a
		// moment in which storePath does not exist.
		if err := os.Rename(storePath, res.Previous); err != nil {
			return fmt.Errorf("keep the current store: %w", err)
		}
	}
	return nil
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
