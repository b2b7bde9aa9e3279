// Package store keeps deskd's state in one bbolt file: cases and their
// messages (records as JSON, raw mail zstd-compressed), the indexes that find
// them, the IMAP checkpoint, quarantined mail, the SMTP outbox and the
// loop-protection counters. Every change the daemon makes for one inbound mail
// is committed in one transaction (see DESIGN.md), so the file is always
// either before or after that mail, never in between.
//
// Buckets and key layouts (all integers big-endian, so bbolt's byte order is
// numeric order; "ts" is a 12-byte time: uint64(unix seconds) with the sign bit
// flipped, then uint32 nanoseconds, so byte order is time order for any time):
//
//	meta               "schema_version" → uint64; "hmac_key" → 32 random bytes
//	                   "count:cases", "count:messages" → uint64: how many
//	                   records the cases and messages buckets hold, kept
//	                   by PutCase and PutMessage (schema 5; counters.go)
//	                   "health" → ts of the health check's last write probe
//	                   "once:" + name → ts a once-only notice was queued
//	                   (MarkOnce: "once:oauth_expiry:<time>")
//	cases              uint64 case id → JSON cases.Case; the bucket's sequence
//	                   is the highest case id handed out
//	case_status        one sub-bucket per status name; in each, uint64 case id
//	                   → empty: the ids of the cases with that status
//	case_customer      customer name, 0x00, uint64 case id → empty (schema 2)
//	messages           dedupe key ("mid:…", "sha256:…", "out:<msgid>") → JSON cases.Message
//	raw                dedupe key → zstd(raw message bytes)
//	msgid              Message-ID (inbound and outbound) → uint64 case id
//	imap               mailbox name → uint32 UIDVALIDITY, uint32 last UID
//	quarantine         dedupe key → JSON QuarantineRecord
//	quarantine_raw     dedupe key → zstd(raw bytes, possibly headers only)
//	outbox             uint64 entry id (NextSequence) → JSON OutboxEntry without Raw
//	outbox_raw         uint64 entry id → zstd(rendered mail)
//	outbox_due         ts NextAttempt, uint64 entry id → ts CreatedAt; queued
//	                   entries only
//	automail           mail kind, 0x00, lower-cased address, 0x00, ts →
//	                   uint32 count: one budget per kind and address (records
//	                   of deskd before per-kind budgets lack the kind and
//	                   only expire)
//	automail_time      ts, the automail key's kind and address → empty (finds
//	                   expired automail keys without scanning every address)
//	notice_digest      lower-cased address of a named contact → JSON
//	                   {contact, last_sent}: when their last digest of R1
//	                   notices went out (notice.go)
//	notice_pending     lower-cased address, 0x00, uint64 sequence → JSON
//	                   cases.Notice: the R1 notices not yet sent to them,
//	                   in the order they were added (schema 7)
//	notice_due         ts of the last digest (zero: never), lower-cased
//	                   address → empty: the contacts with notices pending,
//	                   the next one due first (schema 7)
//	undeliverable      lower-cased address → JSON {until, reason}
//	deadline           ts At, uint64 case id, kind (1..64 printable ASCII
//	                   bytes) → empty: the SLA deadline index (schema 3)
//	deadline_case      uint64 case id → that case's keys in deadline, without
//	                   the id: per entry ts At, uint8 len(kind), kind; in key
//	                   order; absent when the case has none
//	case_party         lower-cased address, 0x00, uint64 case id → empty: the
//	                   cases each party address is in (schema 4, portal)
//	case_summary       uint64 case id → JSON CaseSummary: what a case list
//	                   shows, without decoding the case's history (schema 4)
//	case_clock         ts of the SLA clock's receipt (R11b), uint64 case id
//	                   → flags (1: machine), uvarint len + customer,
//	                   uvarint len + stamp (sla.FiguresStamp), the figures
//	                   (sla.AppendFigures; none while open): the report
//	                   index (schema 6, caseclock.go); meta
//	                   "clock_figures_version" is the
//	                   stamp every entry has once the daemon refreshed them
//	portal_session     sha256(session token) → JSON PortalSession
//	portal_signin      sha256(sign-in token) → JSON PortalSignIn; deleted
//	                   when used (single use) or expired
//	portal_revoked     uint64 case id, 0x00, lower-cased address → ts: the
//	                   portal's case links for that pair issued before ts
//	                   are revoked; an empty address: every address's
//	case_line          uint64 case id → two uint64 unix nanoseconds, then
//	                   the case's JSON line of `deskd cases list`, true
//	                   from the first until the second; open and pending
//	                   cases only (schema 5;
//	                   caseline.go; meta "case_line_version" names the SLA
//	                   clocks they were computed with)
package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// schemaVersion is the layout this binary reads and writes. Raise it with a
// migration step in migrate (migrate.go) whenever a bucket or encoding
// changes.
const schemaVersion = 7

// Bucket names. Constants (strings), not []byte vars, so that the package
// keeps no mutable state.
const (
	bucketMeta          = "meta"
	bucketCases         = "cases"
	bucketCaseStatus    = "case_status"
	bucketCaseCustomer  = "case_customer"
	bucketMessages      = "messages"
	bucketRaw           = "raw"
	bucketMsgID         = "msgid"
	bucketIMAP          = "imap"
	bucketQuarantine    = "quarantine"
	bucketQuarantineRaw = "quarantine_raw"
	bucketOutbox        = "outbox"
	bucketOutboxRaw     = "outbox_raw"
	bucketOutboxDue     = "outbox_due"
	bucketAutoMail      = "automail"
	bucketAutoMailTime  = "automail_time"
	bucketUndeliverable = "undeliverable"
	bucketDeadline      = "deadline"
	bucketDeadlineCase  = "deadline_case"
	bucketNoticeDigest  = "notice_digest"
	bucketNoticePending = "notice_pending"
	bucketNoticeDue     = "notice_due"
	bucketCaseParty     = "case_party"
	bucketCaseSummary   = "case_summary"
	bucketCaseClock     = "case_clock"
	bucketPortalSession = "portal_session"
	bucketPortalSignIn  = "portal_signin"
	bucketPortalRevoked = "portal_revoked"
	bucketCaseLine      = "case_line"

	keySchemaVersion = "schema_version"
	keyHMAC          = "hmac_key"
)

// allBuckets lists every top-level bucket Open creates.
func allBuckets() []string {
	return []string{
		bucketMeta, bucketCases, bucketCaseStatus, bucketMessages, bucketRaw,
		bucketMsgID, bucketIMAP, bucketQuarantine, bucketQuarantineRaw,
		bucketOutbox, bucketOutboxRaw, bucketOutboxDue, bucketAutoMail,
		bucketAutoMailTime, bucketUndeliverable, bucketCaseCustomer,
		bucketDeadline, bucketDeadlineCase, bucketNoticeDigest,
		bucketNoticePending, bucketNoticeDue,
		bucketCaseParty, bucketCaseSummary, bucketCaseClock,
		bucketPortalSession, bucketPortalSignIn, bucketPortalRevoked,
		bucketCaseLine,
	}
}

const (
	defaultTimeout = time.Second

	// initialMmapSize reserves address space up front: bbolt must remap when
	// the file outgrows its mapping, and a remap waits for every open read
	// transaction. A long View (a report, a backup via WriteTo) would then
	// stall the ingest loop's next commit. Address space is cheap on 64-bit;
	// on Linux the file itself does not grow because of this. Open maps
	// the file's size plus this much (mmapSize, backup.go): a fixed 1 GiB
	// gives a store near 1 GiB no headroom at all (measured: a 3.8 s
	// stall during a backup, bench_backup_test.go).
	initialMmapSize = 1 << 30

	// maxDecodedSize bounds what one zstd value may decompress to, so that a
	// corrupt frame header cannot make us allocate gigabytes. bbolt cannot
	// hold a value above 2 GiB anyway, and deskd's messages are far smaller.
	maxDecodedSize = 1 << 30
)

// ErrNewerSchema is returned by Open for a store written by a newer deskd.
// Reading it could misinterpret data and writing it could corrupt it.
var ErrNewerSchema = errors.New("store has a newer schema version than this deskd knows")

// ErrLocked matches (errors.Is) the error Open returns when another process
// holds the store's lock past Options.Timeout.
var ErrLocked = errors.New("store is locked")

type lockedError struct{ path string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("store %s is locked: is another deskd running?", e.path)
}

func (e *lockedError) Is(target error) bool { return target == ErrLocked }
func (e *lockedError) Unwrap() error        { return berrors.ErrTimeout }

// Options for Open.
type Options struct {
	// Timeout is how long Open waits for the file lock; 0 means 1s. bbolt's
	// own zero (wait forever) would hang a second deskd silently.
	Timeout time.Duration
	// ReadOnly opens with a shared lock; every Update fails. The file must
	// exist and carry a schema version this binary knows.
	ReadOnly bool
}

// DB is an open store. It is safe for concurrent use: bbolt allows many
// readers and one writer at a time.
type DB struct {
	// bdb is swapped only by ReplaceWith (a cluster snapshot restored
	// into a running node, snapshot.go).
	bdb  atomic.Pointer[bolt.DB]
	path string
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	// rep, when set, replicates every Update (a cluster node,
	// writeset.go); wmu serialises those Updates.
	rep Replicator
	wmu sync.Mutex
	// onWrite, when set, is told how long each Update took (ObserveWrites).
	onWrite atomic.Pointer[func(time.Duration)]
}

// ObserveWrites has fn told, after every Update, how long it took: from
// asking for bbolt's writer lock to the end of its fsync (or to the
// Raft commit, in a cluster). Waiting for the lock counts, because a
// commit stalled behind another writer, or behind a remap that waits for
// a long read transaction such as a backup, stalls ingest all the same
// (issue 11: the longest commit during a backup). The daemon feeds its
// deskd_store_write_duration_seconds histogram with it.
func (db *DB) ObserveWrites(fn func(took time.Duration)) {
	db.onWrite.Store(&fn)
}

// Open opens (creating if needed) the store at path, creates missing buckets
// and writes or checks the schema version.
func Open(path string, opts Options) (*DB, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	bdb, err := bolt.Open(path, 0o600, boltOptions(path, timeout, opts.ReadOnly))
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, &lockedError{path: path}
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		// Encoding only happens inside write transactions, of which bbolt
		// runs one at a time.
		zstd.WithEncoderConcurrency(1))
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open store %s: zstd encoder: %w", path, err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxDecodedSize))
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open store %s: zstd decoder: %w", path, err)
	}
	db := &DB{path: path, enc: enc, dec: dec}
	db.bdb.Store(bdb)
	if opts.ReadOnly {
		err = bdb.View(checkSchema)
	} else {
		// An older schema is copied aside before the migrating
		// transaction opens (migrate.go).
		if err = backupBeforeMigrate(bdb, path); err == nil {
			err = bdb.Update(initSchema)
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

// boltOptions are the bbolt options of a store file (Open, and the file
// a cluster snapshot swapped in, ReplaceWith).
func boltOptions(path string, timeout time.Duration, readOnly bool) *bolt.Options {
	return &bolt.Options{
		Timeout:  timeout,
		ReadOnly: readOnly,
		// The freelist stays synced (NoFreelistSync false): without it every
		// open after a crash, and every open at all, rebuilds the freelist by
		// walking all pages, which grows with the raw mail kept here. deskd
		// commits a few transactions a minute; a faster commit buys nothing.
		// fsync on commit (NoSync false) is what makes "moved out of the
		// inbox only after commit" safe, and stays on.
		NoFreelistSync: false,
		// Raw mails are stored as large values spanning many contiguous
		// pages; the hashmap freelist finds such runs without scanning.
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: mmapSize(path),
	}
}

// initSchema creates the buckets of a new store, or checks and migrates an
// existing one.
func initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	var version uint64
	if meta != nil {
		v, err := readVersion(meta)
		if err != nil {
			return err
		}
		version = v
	}
	if version == 0 {
		// Refuse to adopt some other program's bbolt file.
		foreign := false
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			foreign = true
			return nil
		})
		if foreign {
			return errors.New("not a deskd store: it has buckets but no schema version")
		}
	}
	if version > schemaVersion {
		return newerSchemaError(version)
	}
	for _, name := range allBuckets() {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if version != 0 && version < schemaVersion {
		if err := migrate(tx, version); err != nil {
			return err
		}
	}
	return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), u64(schemaVersion))
}

// checkSchema validates a store opened read-only, where nothing can be
// created or migrated.
func checkSchema(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		return errors.New("not a deskd store: no meta bucket")
	}
	version, err := readVersion(meta)
	if err != nil {
		return err
	}
	switch {
	case version == 0:
		return errors.New("not a deskd store: no schema version")
	case version > schemaVersion:
		return newerSchemaError(version)
	case version < schemaVersion:
		return fmt.Errorf("schema version %d needs a migration; open the store read-write once", version)
	}
	return nil
}

func readVersion(meta *bolt.Bucket) (uint64, error) {
	v := meta.Get([]byte(keySchemaVersion))
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("schema version: %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Close releases the file lock and the compressors.
func (db *DB) Close() error {
	err := db.bolt().Close()
	db.dec.Close()
	if cerr := db.enc.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close store %s: %w", db.path, err)
	}
	return nil
}

// bolt is the open bbolt file.
func (db *DB) bolt() *bolt.DB { return db.bdb.Load() }

// Path is the file the store lives in.
func (db *DB) Path() string { return db.path }

// Tx is one store transaction. It is valid only inside the function passed to
// Update or View; do not keep it, or anything it returned by reference, after
// that function returns. Values returned by its methods are copies and may
// be kept.
type Tx struct {
	tx  *bolt.Tx
	db  *DB
	rec *recorder // non-nil in recording mode (writeset.go)
	// ctx, when not nil, stops the walks over many records (ForEachCase
	// and its kind) between two records: a read transaction of a client
	// that went away, or of a daemon that stops, ends within a record
	// rather than after the whole store (ViewContext).
	ctx context.Context
}

// Update runs fn in one read-write transaction: committed (and fsynced) if fn
// returns nil, rolled back entirely otherwise, including sequence numbers.
// On a cluster node (SetReplicator) committed means committed by the
// cluster and applied here.
func (db *DB) Update(fn func(*Tx) error) error {
	if obs := db.onWrite.Load(); obs != nil {
		start := time.Now()
		defer func() { (*obs)(time.Since(start)) }()
	}
	if db.rep != nil {
		return db.replicated(fn)
	}
	return db.bolt().Update(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, db: db})
	})
}

// View runs fn in a read-only transaction on a consistent snapshot.
func (db *DB) View(fn func(*Tx) error) error {
	return db.bolt().View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, db: db})
	})
}

// ViewContext is View for a long read: the walks over many records that fn
// runs through tx return ctx's error between two records once ctx ends,
// so the transaction closes soon after (bbolt's Close waits for every
// open read transaction, and no page freed after it began is reused).
func (db *DB) ViewContext(ctx context.Context, fn func(*Tx) error) error {
	return db.bolt().View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, db: db, ctx: ctx})
	})
}

// Err is the error of the context the transaction was opened with
// (ViewContext), nil while it runs or when it has none. A long walk of
// its own calls it between records.
func (tx *Tx) Err() error {
	if tx.ctx == nil {
		return nil
	}
	return tx.ctx.Err()
}

// WriteTo writes a consistent copy of the whole file to w while the daemon
// keeps running (readers and the writer are not blocked).
func (db *DB) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt().View(func(btx *bolt.Tx) error {
		var err error
		n, err = btx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("copy store %s: %w", db.path, err)
	}
	return n, nil
}

// bucket returns a top-level bucket. A missing one means a damaged or foreign
// file (Open creates them all), so it is an error rather than "empty".
func (tx *Tx) bucket(name string) (bucket, error) {
	b := tx.tx.Bucket([]byte(name))
	if b == nil {
		return bucket{}, fmt.Errorf("bucket %s missing", name)
	}
	if tx.rec != nil {
		return bucket{b: b, rec: tx.rec, path: []string{name}}, nil
	}
	return bucket{b: b}, nil
}

// getJSON decodes the JSON record under key in bucket into v; found is
// false, and v untouched, when there is none.
func (tx *Tx) getJSON(bucket string, key []byte, v any) (found bool, err error) {
	b, err := tx.bucket(bucket)
	if err != nil {
		return false, err
	}
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

// putJSON stores v as JSON under key in bucket.
func (tx *Tx) putJSON(bucket string, key []byte, v any) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// HMACKey returns the key deskd signs its tokens with. In an Update it is
// generated (32 bytes from crypto/rand) and stored the first time; in a View
// it is nil until then.
func (tx *Tx) HMACKey() ([]byte, error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return nil, fmt.Errorf("hmac key: %w", err)
	}
	if v := meta.Get([]byte(keyHMAC)); v != nil {
		return bytes.Clone(v), nil
	}
	if !tx.tx.Writable() {
		return nil, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("hmac key: %w", err)
	}
	if err := meta.Put([]byte(keyHMAC), key); err != nil {
		return nil, fmt.Errorf("hmac key: %w", err)
	}
	return bytes.Clone(key), nil
}

// compress and decompress are the only places raw bytes change form.
func (tx *Tx) compress(raw []byte) []byte {
	return tx.db.enc.EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
}

func (tx *Tx) decompress(v []byte) ([]byte, error) {
	// DecodeAll copies out of v, which belongs to the mmap and is only
	// valid during the transaction.
	out, err := tx.db.dec.DecodeAll(v, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return out, nil
}

// u64 encodes an id or counter as a key: big-endian so byte order is numeric.
func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

const tsLen = 12

// putTS writes t's time-ordered 12-byte form into b.
func putTS(b []byte, t time.Time) {
	binary.BigEndian.PutUint64(b, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(b[8:], uint32(t.Nanosecond()))
}

func ts(t time.Time) []byte {
	b := make([]byte, tsLen)
	putTS(b, t)
	return b
}

func parseTS(b []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:]))).UTC()
}
