package store

// Write sets (issue 14): in a cluster every change to the store is
// replicated through Raft as the write set of one transaction. The leader
// runs the transaction's function as always, in a bbolt write transaction
// in recording mode: every Put, Delete, sequence change and bucket
// creation or deletion goes through bucket (below), which, besides doing
// it, appends it to the transaction's recorder. The transaction is then
// rolled back, and the write set is what the cluster commits: replayed in
// order (DB.ApplyWriteSets) on every node, the leader included, it leaves
// the buckets byte for byte as the transaction itself would have
// (writeset_test.go). Without a recorder (a single node) bucket is a thin
// shell over *bolt.Bucket: a nil check per write, no copy, no allocation.

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Operation codes of a write set's entries. Stored in the Raft log: never
// renumber them.
const (
	opPut          byte = 1 // path, key, value
	opDelete       byte = 2 // path, key
	opSetSequence  byte = 3 // path, sequence
	opCreateBucket byte = 4 // path: CreateBucketIfNotExists
	opDeleteBucket byte = 5 // path
	opAssemble     byte = 6 // path (the chunk bucket), key (the id), count
)

// bucketChunk holds the pieces of a write set too large for one Raft
// entry (Split) until the entry that assembles them. It exists only
// while pieces wait; a single node never has it.
const bucketChunk = "cluster_chunk"

// writeSetVersion is the first byte of an encoded write set.
const writeSetVersion byte = 1

// recorder collects the write set of one transaction, already encoded:
// the entries are what Raft carries, so they are appended once, in
// their final form.
type recorder struct {
	buf []byte
	n   int
}

func (r *recorder) op(code byte, path []string) {
	r.n++
	r.buf = append(r.buf, code)
	r.buf = binary.AppendUvarint(r.buf, uint64(len(path)))
	for _, p := range path {
		r.buf = binary.AppendUvarint(r.buf, uint64(len(p)))
		r.buf = append(r.buf, p...)
	}
}

func (r *recorder) bytes(b []byte) {
	r.buf = binary.AppendUvarint(r.buf, uint64(len(b)))
	r.buf = append(r.buf, b...)
}

// WriteSet is the encoded write set of one transaction: its changes in
// the order they were made. The zero value is empty.
type WriteSet []byte

// Ops is the number of changes in w; 0 for a transaction that wrote
// nothing (it need not be replicated).
func (w WriteSet) Ops() (int, error) {
	n := 0
	err := w.each(func(byte, [][]byte, []byte, []byte, uint64) error { n++; return nil })
	return n, err
}

// each decodes w, calling fn for every change. It checks the whole
// encoding: a corrupt entry is an error, never a partial replay (the
// caller's bbolt transaction rolls back).
func (w WriteSet) each(fn func(code byte, path [][]byte, key, value []byte, seq uint64) error) error {
	if len(w) == 0 {
		return nil
	}
	if w[0] != writeSetVersion {
		return fmt.Errorf("write set: version %d, want %d", w[0], writeSetVersion)
	}
	p := []byte(w[1:])
	uvarint := func() (uint64, error) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, errors.New("write set: truncated")
		}
		p = p[n:]
		return v, nil
	}
	field := func() ([]byte, error) {
		l, err := uvarint()
		if err != nil {
			return nil, err
		}
		if l > uint64(len(p)) {
			return nil, errors.New("write set: truncated")
		}
		b := p[:l:l]
		p = p[l:]
		return b, nil
	}
	var path [][]byte
	for len(p) > 0 {
		code := p[0]
		p = p[1:]
		depth, err := uvarint()
		if err != nil {
			return err
		}
		if depth == 0 || depth > 8 {
			return fmt.Errorf("write set: bucket path of depth %d", depth)
		}
		path = path[:0]
		for range depth {
			b, err := field()
			if err != nil {
				return err
			}
			path = append(path, b)
		}
		var key, value []byte
		var seq uint64
		switch code {
		case opPut:
			if key, err = field(); err == nil {
				value, err = field()
			}
		case opDelete:
			key, err = field()
		case opSetSequence:
			seq, err = uvarint()
		case opAssemble:
			if key, err = field(); err == nil {
				seq, err = uvarint()
			}
		case opCreateBucket, opDeleteBucket:
		default:
			return fmt.Errorf("write set: unknown operation %d", code)
		}
		if err != nil {
			return err
		}
		if err := fn(code, path, key, value, seq); err != nil {
			return err
		}
	}
	return nil
}

// Record runs fn in a write transaction in recording mode and rolls it
// back: the store is unchanged, and the write set says what fn would have
// changed. fn's error, if any, is returned with a nil write set.
func (db *DB) Record(fn func(*Tx) error) (WriteSet, error) {
	rec := &recorder{buf: []byte{writeSetVersion}}
	errRollback := errors.New("rollback")
	err := db.bolt().Update(func(btx *bolt.Tx) error {
		if err := fn(&Tx{tx: btx, db: db, rec: rec}); err != nil {
			return err
		}
		return errRollback
	})
	if err != errRollback {
		return nil, err
	}
	if rec.n == 0 {
		return nil, nil
	}
	return WriteSet(rec.buf), nil
}

// ApplyWriteSets replays write sets, in order, in one write transaction
// (committed and fsynced once): all of them or, on any error, none.
func (db *DB) ApplyWriteSets(sets ...WriteSet) error {
	return db.bolt().Update(func(btx *bolt.Tx) error {
		for _, w := range sets {
			if err := applyWriteSet(btx, w); err != nil {
				return err
			}
		}
		return nil
	})
}

func applyWriteSet(btx *bolt.Tx, w WriteSet) error {
	return applyNested(btx, w, false)
}

func applyNested(btx *bolt.Tx, w WriteSet, assembled bool) error {
	return w.each(func(code byte, path [][]byte, key, value []byte, seq uint64) error {
		if code == opAssemble {
			if assembled {
				return errors.New("write set: assembled write set assembles again")
			}
			return assemble(btx, path, key, seq)
		}
		last := len(path) - 1
		if code == opCreateBucket || code == opDeleteBucket {
			// The parent of the bucket created or deleted.
			var parent interface {
				CreateBucketIfNotExists([]byte) (*bolt.Bucket, error)
				DeleteBucket([]byte) error
			} = btx
			if last > 0 {
				b, err := walk(btx, path[:last])
				if err != nil {
					return err
				}
				parent = b
			}
			var err error
			if code == opCreateBucket {
				_, err = parent.CreateBucketIfNotExists(path[last])
			} else if err = parent.DeleteBucket(path[last]); errors.Is(err, berrors.ErrBucketNotFound) {
				err = nil // gone already: the same end state
			}
			if err != nil {
				return fmt.Errorf("write set: bucket %q: %w", path, err)
			}
			return nil
		}
		b, err := walk(btx, path)
		if err != nil {
			return err
		}
		switch code {
		case opPut:
			err = b.Put(key, value)
		case opDelete:
			err = b.Delete(key)
		case opSetSequence:
			err = b.SetSequence(seq)
		}
		if err != nil {
			return fmt.Errorf("write set: bucket %q: %w", path, err)
		}
		return nil
	})
}

// Split cuts w into write sets of about max bytes each, for a cluster
// whose entries must stay small enough not to stall heartbeats (issue
// 14, cluster.max_entry_bytes): every one but the last puts a piece of w
// into the chunk bucket under id; the last assembles the pieces, applies
// w and deletes them, all in its own transaction, so w takes effect
// atomically with that last entry, as if it had been one. A w of at most
// max bytes is returned as it is. id must be unique among the write sets
// split at the same time (the leader draws it at random).
func (w WriteSet) Split(max int, id uint64) []WriteSet {
	if len(w) <= max || max <= 0 {
		return []WriteSet{w}
	}
	var out []WriteSet
	body := w
	for i := uint64(0); len(body) > 0; i++ {
		n := min(max, len(body))
		rec := &recorder{buf: []byte{writeSetVersion}}
		rec.op(opCreateBucket, []string{bucketChunk})
		rec.op(opPut, []string{bucketChunk})
		rec.bytes(chunkKey(id, i))
		rec.bytes(body[:n])
		out = append(out, WriteSet(rec.buf))
		body = body[n:]
	}
	rec := &recorder{buf: []byte{writeSetVersion}}
	rec.op(opAssemble, []string{bucketChunk})
	rec.bytes(u64(id))
	rec.buf = binary.AppendUvarint(rec.buf, uint64(len(out)))
	return append(out, WriteSet(rec.buf))
}

func chunkKey(id, i uint64) []byte { return append(u64(id), u64(i)...) }

// assemble applies the write set whose n pieces wait under id, and
// deletes them (and the chunk bucket once empty).
func assemble(btx *bolt.Tx, path [][]byte, id []byte, n uint64) error {
	b, err := walk(btx, path)
	if err != nil {
		return err
	}
	if len(id) != 8 {
		return errors.New("write set: chunk id is not 8 bytes")
	}
	var whole []byte
	for i := range n {
		k := chunkKey(binary.BigEndian.Uint64(id), i)
		piece := b.Get(k)
		if piece == nil {
			return fmt.Errorf("write set: chunk %x/%d missing", id, i)
		}
		whole = append(whole, piece...)
	}
	if err := applyNested(btx, WriteSet(whole), true); err != nil {
		return err
	}
	for i := range n {
		if err := b.Delete(chunkKey(binary.BigEndian.Uint64(id), i)); err != nil {
			return err
		}
	}
	if k, _ := b.Cursor().First(); k == nil {
		return btx.DeleteBucket(path[0])
	}
	return nil
}

// DropChunkPieces deletes the pieces of split write sets whose assembling
// entry never came: a leader that died (or lost the leadership) halfway
// through proposing a large transaction leaves its first pieces
// committed, and no one else will assemble them. It returns how many
// pieces it deleted. Call it only where no split of one's own is in
// flight and none of an earlier leader can still be committed: a new
// leader, past its barrier, before it writes anything else (the daemon's
// becomeLeader). Recorded like any other write, so every node drops them.
func (tx *Tx) DropChunkPieces() (int, error) {
	b := tx.tx.Bucket([]byte(bucketChunk))
	if b == nil {
		return 0, nil
	}
	n := b.Stats().KeyN
	if err := tx.tx.DeleteBucket([]byte(bucketChunk)); err != nil {
		return 0, fmt.Errorf("drop %s: %w", bucketChunk, err)
	}
	if tx.rec != nil {
		tx.rec.op(opDeleteBucket, []string{bucketChunk})
	}
	return n, nil
}

// walk finds the bucket at path; a missing one means the write set does
// not belong to this store.
func walk(btx *bolt.Tx, path [][]byte) (*bolt.Bucket, error) {
	b := btx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			break
		}
		b = b.Bucket(name)
	}
	if b == nil {
		return nil, fmt.Errorf("write set: bucket %q missing", path)
	}
	return b, nil
}

// bucket is a bbolt bucket of a store transaction. Its writes go through
// here so that a recording transaction records them; reads go straight to
// bbolt. path is set only when recording.
type bucket struct {
	b    *bolt.Bucket
	rec  *recorder
	path []string
}

// exists says whether the bucket is there (Bucket's answer for a missing
// sub-bucket is a bucket that does not exist).
func (b bucket) exists() bool { return b.b != nil }

func (b bucket) Get(key []byte) []byte                    { return b.b.Get(key) }
func (b bucket) Cursor() *bolt.Cursor                     { return b.b.Cursor() }
func (b bucket) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }
func (b bucket) ForEachBucket(fn func(k []byte) error) error {
	return b.b.ForEachBucket(fn)
}
func (b bucket) Sequence() uint64        { return b.b.Sequence() }
func (b bucket) Stats() bolt.BucketStats { return b.b.Stats() }

func (b bucket) Put(key, value []byte) error {
	if err := b.b.Put(key, value); err != nil {
		return err
	}
	if b.rec != nil {
		b.rec.op(opPut, b.path)
		b.rec.bytes(key)
		b.rec.bytes(value)
	}
	return nil
}

func (b bucket) Delete(key []byte) error {
	if err := b.b.Delete(key); err != nil {
		return err
	}
	if b.rec != nil {
		b.rec.op(opDelete, b.path)
		b.rec.bytes(key)
	}
	return nil
}

func (b bucket) SetSequence(v uint64) error {
	if err := b.b.SetSequence(v); err != nil {
		return err
	}
	if b.rec != nil {
		b.rec.op(opSetSequence, b.path)
		b.rec.buf = binary.AppendUvarint(b.rec.buf, v)
	}
	return nil
}

// NextSequence is recorded as the sequence it set, so that a replay gives
// every node the same ids.
func (b bucket) NextSequence() (uint64, error) {
	v, err := b.b.NextSequence()
	if err != nil {
		return 0, err
	}
	if b.rec != nil {
		b.rec.op(opSetSequence, b.path)
		b.rec.buf = binary.AppendUvarint(b.rec.buf, v)
	}
	return v, nil
}

// Bucket is the nested bucket name; see exists.
func (b bucket) Bucket(name []byte) bucket {
	return b.child(b.b.Bucket(name), name)
}

func (b bucket) CreateBucketIfNotExists(name []byte) (bucket, error) {
	nb, err := b.b.CreateBucketIfNotExists(name)
	if err != nil {
		return bucket{}, err
	}
	c := b.child(nb, name)
	if b.rec != nil {
		b.rec.op(opCreateBucket, c.path)
	}
	return c, nil
}

func (b bucket) child(nb *bolt.Bucket, name []byte) bucket {
	c := bucket{b: nb, rec: b.rec}
	if b.rec != nil && nb != nil {
		c.path = append(append(make([]string, 0, len(b.path)+1), b.path...), string(name))
	}
	return c
}

// recreateBucket drops the top-level bucket name with everything in it and
// creates it empty (ReindexDeadlines).
func (tx *Tx) recreateBucket(name string) error {
	if err := tx.tx.DeleteBucket([]byte(name)); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	if _, err := tx.tx.CreateBucket([]byte(name)); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if tx.rec != nil {
		tx.rec.op(opDeleteBucket, []string{name})
		tx.rec.op(opCreateBucket, []string{name})
	}
	return nil
}

// Replicator commits a write set for the whole cluster (internal/cluster)
// and returns once it is applied to this store.
type Replicator interface {
	// Ready is asked before a transaction is recorded: it fails on a
	// node that may not write (a follower), and returns once this
	// store holds every entry committed before (a new leader's
	// barrier), so that what the transaction reads is current.
	Ready() error
	Replicate(WriteSet) error
}

// SetReplicator makes every later Update a replicated one: fn runs in
// recording mode, and its write set goes to r instead of being committed
// here. Updates are serialised from recording to their return, so each
// one is recorded against a store that holds every earlier one. Call it
// before the store is shared; nil (a single node) is plain bbolt.
func (db *DB) SetReplicator(r Replicator) { db.rep = r }

// replicated is Update on a cluster node.
func (db *DB) replicated(fn func(*Tx) error) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := db.rep.Ready(); err != nil {
		return err
	}
	ws, err := db.Record(fn)
	if err != nil || ws == nil {
		return err
	}
	return db.rep.Replicate(ws)
}

// keyRaftApplied is the meta key of the index of the last Raft entry this
// store holds, written in the transaction that applies it.
const keyRaftApplied = "raft_applied"

// ApplyReplicated replays the write sets of the Raft entries up to index
// in one transaction and records index as applied. Entries this store
// already holds (index not above the recorded one: a restarted node's log
// replay) are skipped, so each entry is applied exactly once.
func (db *DB) ApplyReplicated(index uint64, sets ...WriteSet) error {
	return db.bolt().Update(func(btx *bolt.Tx) error {
		meta := btx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return errors.New("apply: meta bucket missing")
		}
		if v := meta.Get([]byte(keyRaftApplied)); len(v) == 8 && binary.BigEndian.Uint64(v) >= index {
			return nil
		}
		for _, w := range sets {
			if err := applyWriteSet(btx, w); err != nil {
				return err
			}
		}
		return meta.Put([]byte(keyRaftApplied), u64(index))
	})
}

// ReplicatedIndex is the index of the last Raft entry applied to this
// store (0 for one that never was in a cluster).
func (db *DB) ReplicatedIndex() (uint64, error) {
	var n uint64
	err := db.bolt().View(func(btx *bolt.Tx) error {
		if meta := btx.Bucket([]byte(bucketMeta)); meta != nil {
			if v := meta.Get([]byte(keyRaftApplied)); len(v) == 8 {
				n = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	return n, err
}

// Walk calls fn for every record of every bucket, nested ones included,
// in key order, and once per bucket with key nil and its sequence: two
// stores whose walks are equal hold byte-identical buckets
// (internal/storetest.Buckets compares them).
func (db *DB) Walk(fn func(path []string, key, value []byte, seq uint64) error) error {
	return db.bolt().View(func(btx *bolt.Tx) error {
		var walkB func(path []string, b *bolt.Bucket) error
		walkB = func(path []string, b *bolt.Bucket) error {
			if err := fn(path, nil, nil, b.Sequence()); err != nil {
				return err
			}
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					if sub := b.Bucket(k); sub != nil {
						return walkB(append(path[:len(path):len(path)], string(k)), sub)
					}
				}
				return fn(path, k, v, 0)
			})
		}
		return btx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return walkB([]string{string(name)}, b)
		})
	})
}

// ForgetReplicatedIndex clears the applied index: a store that starts a
// new Raft log (a cluster restored from a backup, or made from a single
// node's store) must apply that log from its first entry, whatever index
// it held in the log it came from.
func (db *DB) ForgetReplicatedIndex() error {
	return db.bolt().Update(func(btx *bolt.Tx) error {
		meta := btx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return errors.New("meta bucket missing")
		}
		return meta.Delete([]byte(keyRaftApplied))
	})
}
