package store

// Schema migrations. Open (read-write) finds the store's version in meta;
// when it is older than schemaVersion it first copies the whole file to
// <path>.pre-v<N>-<UTC time>.bak (a read transaction's WriteTo, fsynced,
// renamed into place: the exact old file, which an older deskd can open),
// and only then opens the one read-write transaction that runs every step
// from the old version up and writes the new version. A failed step rolls
// the whole transaction back, leaving the file as it was.
//
// History:
//
//	1  the first layout
//	2  case_customer: the cases of one customer without reading them all
//	3  deadline, deadline_case: the SLA deadline index, kept by PutCase;
//	   filled by the daemon's ReindexDeadlines at start, not by the step
//	4  case_party, case_summary: the portal's case lists (by party address,
//	   and a customer's cases without decoding their histories), built
//	   from the cases; portal_session, portal_signin, portal_revoked: empty
//	5  meta count:cases, count:messages: the counters a backup reports,
//	   counted once here, then kept by PutCase and PutMessage. (case_line,
//	   the case list's lines, came later without a step: any read-write
//	   open creates it empty, and the daemon fills it: caseline.go.)
//	6  case_clock: the report index, every case under its clock's receipt,
//	   built from the cases without figures (the daemon adds them)
//	7  notice_pending, notice_due: each contact's pending R1 notices move
//	   out of their notice_digest record into entries of their own, and
//	   the contacts with any pending get a key ordered by their last
//	   digest; meta count:status:<status>: the cases per status, counted
//	   once here, then kept with the status index (counters.go)

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"deskd/internal/safeio"
)

// migrate brings a store from version from to schemaVersion within the
// opening transaction, one step per version.
func migrate(tx *bolt.Tx, from uint64) error {
	for v := from; v < schemaVersion; v++ {
		var err error
		switch v {
		case 1:
			err = migrateV1toV2(tx)
		case 2:
			err = migrateV2toV3(tx)
		case 3:
			err = migrateV3toV4(tx)
		case 4:
			err = migrateV4toV5(tx)
		case 5:
			err = migrateV5toV6(tx)
		case 6:
			err = migrateV6toV7(tx)
		default:
			err = errors.New("no migration step known")
		}
		if err != nil {
			return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
		}
	}
	return nil
}

// migrateV1toV2 builds the case_customer index from the cases bucket.
// Only the customer field is decoded, so the step does not depend on what
// else a case record holds now or later.
func migrateV1toV2(tx *bolt.Tx) error {
	cb := tx.Bucket([]byte(bucketCases))
	idx := tx.Bucket([]byte(bucketCaseCustomer))
	if cb == nil || idx == nil {
		return errors.New("cases or case_customer bucket missing")
	}
	return cb.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("case key %x: %d bytes, want 8", k, len(k))
		}
		var c struct {
			Customer string `json:"customer"`
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("case %d: %w", binary.BigEndian.Uint64(k), err)
		}
		return idx.Put(customerKey(c.Customer, binary.BigEndian.Uint64(k)), nil)
	})
}

// migrateV2toV3 adds the deadline index. initSchema has already created its
// two buckets (allBuckets) before the steps run, so there is nothing to
// create, and nothing to fill: the entries are what the daemon
// computes (the SLA calendar and targets of its configuration),
// which the store does not know, and the daemon calls ReindexDeadlines at
// every start anyway. An empty index until then is harmless, since nothing
// runs the escalation loop before that call. The step only checks that the
// buckets are there and empty (a schema-2 store has no such buckets, so
// anything in them means a file this migration does not understand).
func migrateV2toV3(tx *bolt.Tx) error {
	for _, name := range []string{bucketDeadline, bucketDeadlineCase} {
		b := tx.Bucket([]byte(name))
		if b == nil {
			return fmt.Errorf("bucket %s missing", name)
		}
		if k, _ := b.Cursor().First(); k != nil {
			return fmt.Errorf("bucket %s not empty in a schema-2 store", name)
		}
	}
	return nil
}

// backupBeforeMigrate copies an older-schema store to
// <path>.pre-v<schemaVersion>-<time>.bak before the migrating transaction
// opens; a store at the current version (or new, or newer) is left alone.
func backupBeforeMigrate(bdb *bolt.DB, path string) error {
	var version uint64
	err := bdb.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
			v, err := readVersion(meta)
			version = v
			return err
		}
		return nil
	})
	if err != nil || version == 0 || version >= schemaVersion {
		return err
	}
	name := fmt.Sprintf("%s.pre-v%d-%s.bak", path, schemaVersion, time.Now().UTC().Format("20060102T150405Z"))
	err = safeio.Write(name, func(w io.Writer) error {
		return bdb.View(func(tx *bolt.Tx) error {
			_, err := tx.WriteTo(w)
			return err
		})
	}, safeio.Options{SyncEvery: safeio.SyncEvery})
	if err != nil {
		return fmt.Errorf("backup before migration: %w", err)
	}
	return nil
}

// newerSchemaError says what the operator can do about a store written by
// a newer deskd.
func newerSchemaError(version uint64) error {
	return fmt.Errorf("schema version %d, this deskd knows up to %d: %w; "+
		"run the deskd release that wrote it (or a later one), or go back with this one: "+
		"stop deskd and move the copy the upgrade left beside the store "+
		"(<store>.pre-v%d-<time>.bak, the old file as it was) over the store, "+
		"or restore a backup taken before the upgrade (deskd restore --from FILE)",
		version, schemaVersion, ErrNewerSchema, version)
}

// SchemaVersion is the schema version this build reads and writes.
func SchemaVersion() uint64 { return schemaVersion }

// migrateV6toV7 counts the cases per status, moves each contact's
// pending R1 notices out of their notice_digest record into
// notice_pending, in their order, and gives every contact with any a
// notice_due key. The notices are copied as stored, not decoded into
// today's cases.Notice.
func migrateV6toV7(tx *bolt.Tx) error {
	if err := countStatuses(tx); err != nil {
		return err
	}
	digests := tx.Bucket([]byte(bucketNoticeDigest))
	pending := tx.Bucket([]byte(bucketNoticePending))
	due := tx.Bucket([]byte(bucketNoticeDue))
	if digests == nil || pending == nil || due == nil {
		return errors.New("notice_digest, notice_pending or notice_due bucket missing")
	}
	type old struct {
		Contact  json.RawMessage   `json:"contact"`
		LastSent time.Time         `json:"last_sent,omitzero"`
		Pending  []json.RawMessage `json:"pending,omitempty"`
	}
	type entry struct {
		key []byte
		old old
	}
	var all []entry
	if err := digests.ForEach(func(k, v []byte) error {
		e := entry{key: bytes.Clone(k)}
		if err := json.Unmarshal(v, &e.old); err != nil {
			return fmt.Errorf("notice digest %s: %w", k, err)
		}
		all = append(all, e)
		return nil
	}); err != nil {
		return err
	}
	for _, e := range all {
		a := string(e.key)
		for _, n := range e.old.Pending {
			seq, err := pending.NextSequence()
			if err != nil {
				return err
			}
			if err := pending.Put(append(pendingPrefix(a), u64(seq)...), n); err != nil {
				return fmt.Errorf("notice digest %s: %w", a, err)
			}
		}
		if len(e.old.Pending) > 0 {
			if err := due.Put(noticeDueKey(e.old.LastSent, a), nil); err != nil {
				return fmt.Errorf("notice digest %s: %w", a, err)
			}
		}
		rec, err := json.Marshal(struct {
			Contact  json.RawMessage `json:"contact"`
			LastSent time.Time       `json:"last_sent,omitzero"`
		}{e.old.Contact, e.old.LastSent})
		if err != nil {
			return err
		}
		if err := digests.Put(e.key, rec); err != nil {
			return fmt.Errorf("notice digest %s: %w", a, err)
		}
	}
	return nil
}
