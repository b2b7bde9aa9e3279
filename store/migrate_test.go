package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"deskd/cases"
)

// copyFixture copies testdata/schema-v1.db (written by the schema-1 store
// package, see testdata/genv1) to a fresh path.
func copyFixture(t *testing.T) string {
	t.Helper()
	src, err := os.Open("testdata/schema-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "deskd.db")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawVersion reads a file's schema version and whether it has bucket.
func rawVersion(t *testing.T, path, bucket string) (version uint64, has bool) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	bdb.View(func(tx *bolt.Tx) error {
		version, _ = readVersion(tx.Bucket([]byte(bucketMeta)))
		has = tx.Bucket([]byte(bucket)) != nil
		for err := range tx.Check() {
			t.Errorf("%s: %v", path, err)
		}
		return nil
	})
	return version, has
}

func customerCases(t *testing.T, db *DB, name string) []uint64 {
	t.Helper()
	var ids []uint64
	view(t, db, func(tx *Tx) error {
		return tx.ForEachCaseOfCustomer(name, func(c *cases.Case) error {
			if c.Customer != name {
				t.Errorf("ForEachCaseOfCustomer(%q) gave case %d of %q", name, c.ID, c.Customer)
			}
			ids = append(ids, c.ID)
			return nil
		})
	})
	return ids
}

// The schema-1 fixture migrates to the current schema on a read-write open: the
// customer index answers, everything else is as it was, a copy of the old
// file was kept beside the store and is a good schema-1 file, and a second
// open does nothing.
func TestMigrateV1(t *testing.T) {
	path := copyFixture(t)
	if v, has := rawVersion(t, path, bucketCaseCustomer); v != 1 || has {
		t.Fatalf("fixture: version %d, case_customer %v; want 1, absent", v, has)
	}
	before := dumpBolt(t, path)

	// Read-only cannot migrate and says what to do.
	if _, err := Open(path, Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "read-write") {
		t.Errorf("read-only open of a v1 store: %v", err)
	}

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]uint64{"acme": {1, 3, 5}, "globex": {2}, "initech": {4}, "": {6}, "acm": nil} {
		if got := customerCases(t, db, name); !reflect.DeepEqual(got, want) {
			t.Errorf("cases of %q = %v, want %v", name, got, want)
		}
	}
	view(t, db, func(tx *Tx) error {
		c, err := tx.Case(3)
		if err != nil || c == nil || len(c.MessageKeys) != 3 {
			t.Fatalf("case 3 after migration: %v %+v", err, c)
		}
		raw, err := tx.Raw(c.MessageKeys[2])
		if err != nil || !strings.Contains(string(raw), "Line 39 of message 3 in case 3") {
			t.Errorf("raw of case 3 message 3: %v %q", err, raw)
		}
		q, err := tx.Quarantined("sha256:00ff")
		if err != nil || q == nil || q.Reason != "parse: malformed MIME" {
			t.Errorf("quarantine after migration: %v %+v", err, q)
		}
		return nil
	})
	// The counters of cases per status (schema 7) agree with the index.
	if n := counts(t, db); n[cases.StatusOpen]+n[cases.StatusPending]+n[cases.StatusClosed] != 6 {
		t.Errorf("cases per status after the migration: %v, want 6 in all", n)
	}
	// Every case is in the report index (schema 5), without figures.
	var clock []uint64
	view(t, db, func(tx *Tx) error {
		return tx.ForEachClockEntry(time.Time{}, time.Now(), func(e *ClockEntry) error {
			if len(e.Stamp) != 0 || len(e.Data) != 0 {
				t.Errorf("case %d migrated with figures", e.ID)
			}
			clock = append(clock, e.ID)
			return nil
		})
	})
	if slices.Sort(clock); !reflect.DeepEqual(clock, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("report index after migration: %v", clock)
	}
	// A new case after the migration is indexed by PutCase.
	update(t, db, func(tx *Tx) error {
		id, _ := tx.NextCaseID()
		c := newCase(id, cases.StatusOpen)
		c.Customer = "globex"
		return tx.PutCase(c)
	})
	if got := customerCases(t, db, "globex"); !reflect.DeepEqual(got, []uint64{2, 7}) {
		t.Errorf("globex after a new case: %v", got)
	}
	db.Close()

	if v, has := rawVersion(t, path, bucketCaseCustomer); v != schemaVersion || !has {
		t.Errorf("migrated: version %d, case_customer %v", v, has)
	}
	baks, _ := filepath.Glob(fmt.Sprintf("%s.pre-v%d-*.bak", path, schemaVersion))
	if len(baks) != 1 {
		t.Fatalf("pre-migration backups: %v, want one", baks)
	}
	if v, has := rawVersion(t, baks[0], bucketCaseCustomer); v != 1 || has {
		t.Errorf("pre-migration backup: version %d, case_customer %v; want the v1 file", v, has)
	}
	if got := dumpBolt(t, baks[0]); !reflect.DeepEqual(got, before) {
		t.Errorf("pre-migration backup differs from the file before the migration")
	}

	// A second open finds the current version: no migration, no second backup.
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if baks, _ := filepath.Glob(fmt.Sprintf("%s.pre-v%d-*.bak", path, schemaVersion)); len(baks) != 1 {
		t.Errorf("second open made another backup: %v", baks)
	}
}

// A migration step that fails rolls back entirely: the file stays a v1
// file (the pre-migration copy was made all the same).
func TestMigrateFailureLeavesV1(t *testing.T) {
	path := copyFixture(t)
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketCases)).Put(u64(2), []byte("{not json"))
	})
	bdb.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "migrate schema 1 to 2") {
		t.Fatalf("Open with a broken case = %v", err)
	}
	if v, has := rawVersion(t, path, bucketCaseCustomer); v != 1 || has {
		t.Errorf("after a failed migration: version %d, case_customer %v", v, has)
	}
}

// PutCase moves a case in the customer index when its customer changes.
func TestCustomerIndex(t *testing.T) {
	db := openTest(t)
	update(t, db, func(tx *Tx) error {
		for id := uint64(1); id <= 3; id++ {
			c := newCase(id, cases.StatusOpen)
			if id == 2 {
				c.Customer = "acme corp"
			}
			if err := tx.PutCase(c); err != nil {
				return err
			}
		}
		return nil
	})
	if got := customerCases(t, db, "acme"); !reflect.DeepEqual(got, []uint64{1, 3}) {
		t.Errorf("acme: %v", got)
	}
	// In an Update fn may move the case it is given to another customer.
	update(t, db, func(tx *Tx) error {
		return tx.ForEachCaseOfCustomer("acme", func(c *cases.Case) error {
			if c.ID == 3 {
				c.Customer = "acme corp"
				c.Status = cases.StatusClosed
				return tx.PutCase(c)
			}
			return nil
		})
	})
	if got := customerCases(t, db, "acme"); !reflect.DeepEqual(got, []uint64{1}) {
		t.Errorf("acme after the move: %v", got)
	}
	if got := customerCases(t, db, "acme corp"); !reflect.DeepEqual(got, []uint64{2, 3}) {
		t.Errorf("acme corp after the move: %v", got)
	}
	stop := errors.New("stop")
	err := db.View(func(tx *Tx) error {
		return tx.ForEachCaseOfCustomer("acme corp", func(*cases.Case) error { return stop })
	})
	if err != stop {
		t.Errorf("fn's error not returned: %v", err)
	}
}

// A store written by a newer deskd is refused, and the error says what
// the operator can do.
func TestNewerSchemaMessage(t *testing.T) {
	db := openTest(t)
	setVersion(t, db, schemaVersion+1)
	path := db.Path()
	db.Close()
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open = %v", err)
	}
	v := schemaVersion + 1
	for _, s := range []string{fmt.Sprintf("schema version %d", v), "deskd restore", fmt.Sprintf(".pre-v%d-", v)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if baks, _ := filepath.Glob(path + ".pre-*"); len(baks) != 0 {
		t.Errorf("refused store was copied: %v", baks)
	}
}

// TestMigrateV6: a schema-6 store keeps each contact's pending R1
// notices in a list inside their record; the step to 7 moves them into
// notice_pending in their order and puts the contacts with any into
// notice_due, so nothing pending is lost and the next digest is the one a
// schema-6 daemon would have sent next. It also counts the cases per
// status once, for the counters kept from then on.
func TestMigrateV6(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deskd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	update(t, db, func(tx *Tx) error {
		for i, st := range []cases.Status{cases.StatusOpen, cases.StatusClosed, cases.StatusOpen} {
			if err := tx.PutCase(newCase(uint64(i+1), st)); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	// Make it a schema-6 file with the old records, as deskd 6 wrote them,
	// and without the counters of cases per status.
	old := map[string]string{
		"ann@acme.example": `{"contact":{"name":"Ann","email":"Ann@acme.example"},"last_sent":"2026-12-01T09:00:00Z",` +
			`"pending":[{"case_id":7,"subject":"vpn","customer":"Acme","writer":{"email":"dave@acme.example"},"at":"2026-12-01T09:10:00Z"},` +
			`{"case_id":8,"subject":"mail","customer":"Acme","writer":{"email":"eve@acme.example"},"at":"2026-12-01T09:20:00Z","thread":["<a@b>"]}]}`,
		"bob@acme.example":   `{"contact":{"email":"bob@acme.example"},"pending":[{"case_id":9,"subject":"x","customer":"Acme","writer":{"email":"dave@acme.example"},"at":"2026-12-01T09:30:00Z"}]}`,
		"carol@acme.example": `{"contact":{"email":"carol@acme.example"},"last_sent":"2026-11-30T08:00:00Z"}`,
	}
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{bucketNoticePending, bucketNoticeDue} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		b := tx.Bucket([]byte(bucketNoticeDigest))
		for k, v := range old {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		for _, st := range []cases.Status{cases.StatusOpen, cases.StatusClosed} {
			if err := meta.Delete([]byte(keyCountStatus + string(st))); err != nil {
				return err
			}
		}
		return meta.Put([]byte(keySchemaVersion), u64(6))
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()

	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if baks, _ := filepath.Glob(path + ".pre-v7-*.bak"); len(baks) != 1 {
		t.Errorf("pre-migration backups: %v, want one", baks)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := counts(t, db); !reflect.DeepEqual(got, map[cases.Status]int{cases.StatusOpen: 2, cases.StatusClosed: 1}) {
		t.Errorf("cases per status after the migration: %v", got)
	}
	view(t, db, func(tx *Tx) error {
		all, err := tx.PendingNoticeDigests()
		if err != nil {
			return err
		}
		// Bob never had a digest: due first. Carol has nothing pending.
		if len(all) != 2 || all[0].Contact.Email != "bob@acme.example" || all[1].Contact.Email != "Ann@acme.example" {
			t.Fatalf("pending digests after the migration: %+v", all)
		}
		ann := all[1]
		if ann.Contact.Name != "Ann" || !ann.LastSent.Equal(at("2026-12-01T09:00:00Z")) || len(ann.Pending) != 2 ||
			ann.Pending[0].CaseID != 7 || ann.Pending[1].CaseID != 8 || !ann.Pending[1].At.Equal(at("2026-12-01T09:20:00Z")) ||
			!reflect.DeepEqual(ann.Pending[1].Thread, []string{"<a@b>"}) || ann.Pending[1].Writer.Email != "eve@acme.example" {
			t.Errorf("ann's digest after the migration: %+v", ann)
		}
		if last, ok, err := tx.NextNoticeDigest(); err != nil || !ok || !last.IsZero() {
			t.Errorf("next digest: %v %v %v, want bob's (never sent)", last, ok, err)
		}
		carol, err := tx.NoticeDigest("carol@acme.example")
		if err != nil || carol == nil || len(carol.Pending) != 0 || !carol.LastSent.Equal(at("2026-11-30T08:00:00Z")) {
			t.Errorf("carol after the migration: %+v, %v", carol, err)
		}
		// The records no longer hold the list.
		b, _ := tx.bucket(bucketNoticeDigest)
		if v := b.Get([]byte("ann@acme.example")); strings.Contains(string(v), "pending") {
			t.Errorf("ann's record still holds the notices: %s", v)
		}
		return nil
	})
	// A digest sent after the migration takes the migrated notices.
	update(t, db, func(tx *Tx) error { return tx.MarkDigestSent("ann@acme.example", at("2026-12-01T10:00:00Z")) })
	view(t, db, func(tx *Tx) error {
		all, err := tx.PendingNoticeDigests()
		if err != nil || len(all) != 1 || all[0].Contact.Email != "bob@acme.example" {
			t.Errorf("pending after ann's digest: %+v, %v", all, err)
		}
		return err
	})
}
