package store

// Cluster snapshots (issue 14): Raft compacts its log by asking the state
// machine for a snapshot, and a follower too far behind is sent one. The
// state machine is the store, so a snapshot is a backup: the hot copy of
// backup.go (one read transaction, zstd), begun when Raft asks (Snapshot,
// on the apply goroutine: it sees exactly the entries applied so far) and
// streamed later while applies go on. ReplaceWith swaps such a stream in
// as the store of a running node.

import (
	"context"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"deskd/internal/safeio"
)

// Snapshot is a consistent view of the store, held open until Release.
type Snapshot struct{ tx *bolt.Tx }

// Snapshot begins a snapshot of the store as it is now.
func (db *DB) Snapshot() (*Snapshot, error) {
	tx, err := db.bolt().Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", db.path, err)
	}
	return &Snapshot{tx: tx}, nil
}

// Write writes the snapshot to w as a zstd backup.
func (s *Snapshot) Write(w io.Writer) (BackupInfo, error) {
	return backupTx(s.tx, w, CompressionZstd)
}

// Release ends the snapshot's read transaction.
func (s *Snapshot) Release() { _ = s.tx.Rollback() }

// ReplaceWith replaces the store's file with the backup read from r (a
// snapshot's stream) while the DB stays open: the backup is unpacked
// beside the store, fsynced and checked (bbolt's check, the schema
// version) before anything changes; then the old file is closed (which
// waits for its transactions), the new one renamed over it and opened. A
// transaction begun in that moment fails (the file is closed); nothing
// else notices. Only the cluster's apply loop calls it, the store's one
// writer there.
func (db *DB) ReplaceWith(r io.Reader) (BackupInfo, error) {
	var info BackupInfo
	var bad error
	closed := false
	err := safeio.Write(db.path, func(w io.Writer) error {
		info, bad = unpackReader(context.Background(), r, "", w, nil)
		return bad
	}, safeio.Options{SyncEvery: safeio.SyncEvery, Verify: func(tmpName string) error {
		if info, bad = checkBoltFile(tmpName, info); bad != nil {
			return bad
		}
		closed = true
		return db.bolt().Close()
	}})
	if closed {
		// Reopen whatever the path holds now: the new file, or the old
		// one if the rename failed.
		bdb, oerr := bolt.Open(db.path, 0o600, boltOptions(db.path, defaultTimeout, false))
		if oerr != nil {
			return info, fmt.Errorf("replace %s: reopen: %w", db.path, oerr)
		}
		db.bdb.Store(bdb)
	}
	if err != nil {
		return info, fmt.Errorf("replace %s: %w", db.path, err)
	}
	return info, nil
}
