package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/cases"

	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

func openTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "deskd.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func reopen(t *testing.T, db *DB) *DB {
	t.Helper()
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func update(t *testing.T, db *DB, fn func(*Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, db *DB, fn func(*Tx) error) {
	t.Helper()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}

func newCase(id uint64, status cases.Status) *cases.Case {
	return &cases.Case{
		ID:          id,
		Subject:     fmt.Sprintf("Printer on floor %d is on fire", id),
		Status:      status,
		Priority:    cases.PriorityHigh,
		Kind:        cases.KindIncident,
		Customer:    "acme",
		Plan:        "gold",
		Language:    "en",
		Requester:   cases.Address{Name: "Ann Example", Email: "ann@acme.example"},
		Parties:     []string{"ann@acme.example", "bob@acme.example"},
		CreatedAt:   t0,
		UpdatedAt:   t0.Add(time.Hour),
		ReceivedAt:  t0,
		MessageKeys: []string{fmt.Sprintf("mid:%d@acme.example", id)},
		Events: []cases.Event{
			{At: t0, Type: cases.EventReceived, By: "ann@acme.example", MessageID: fmt.Sprintf("%d@acme.example", id)},
			{At: t0.Add(time.Minute), Type: cases.EventAckQueued},
		},
	}
}

func newMessage(key string, caseID uint64) *cases.Message {
	return &cases.Message{
		Key:         key,
		CaseID:      caseID,
		Direction:   cases.DirectionIn,
		Role:        cases.RoleCustomer,
		MessageID:   strings.TrimPrefix(key, "mid:"),
		From:        cases.Address{Name: "Ann", Email: "ann@acme.example"},
		To:          []cases.Address{{Email: "support@desk.example"}},
		Subject:     "Printer on fire",
		Date:        t0,
		Text:        strings.Repeat("The printer on the third floor is on fire again.\n", 40),
		Attachments: []cases.Attachment{{Filename: "fire.jpg", ContentType: "image/jpeg", Size: 123456}},
		UID:         42,
		Size:        130000,
	}
}

func TestOpenCreatesBucketsAndVersion(t *testing.T) {
	db := openTest(t)
	err := db.bolt().View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets() {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %s missing", name)
			}
		}
		v, err := readVersion(tx.Bucket([]byte(bucketMeta)))
		if v != schemaVersion {
			t.Errorf("schema version %d, want %d", v, schemaVersion)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600: the file holds the HMAC key", fi.Mode().Perm())
	}
}

func TestLockTimeout(t *testing.T) {
	db := openTest(t)
	// ErrLocked is the proof that Open gave up: without the timeout it
	// would wait for the lock for ever (and go test -timeout would say so).
	_, err := Open(db.Path(), Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("second Open succeeded while the first holds the lock")
	}
	want := "store " + db.Path() + " is locked: is another deskd running?"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("errors.Is(%v, ErrLocked) = false", err)
	}
}

func setVersion(t *testing.T, db *DB, v uint64) {
	t.Helper()
	err := db.bolt().Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), u64(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	db := openTest(t)
	setVersion(t, db, schemaVersion+1)
	path := db.Path()
	db.Close()
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{ReadOnly: ro})
		if !errors.Is(err, ErrNewerSchema) {
			t.Errorf("ReadOnly=%v: Open = %v, want ErrNewerSchema", ro, err)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", schemaVersion+1)) {
			t.Errorf("error %q does not name the version", err)
		}
	}
	// The refused open must not have rewritten the version.
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	bdb.View(func(tx *bolt.Tx) error {
		if v, _ := readVersion(tx.Bucket([]byte(bucketMeta))); v != schemaVersion+1 {
			t.Errorf("version now %d", v)
		}
		return nil
	})
}

func TestForeignFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	bdb.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("widgets"))
		return err
	})
	bdb.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "not a deskd store") {
		t.Errorf("Open foreign file = %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	db := openTest(t)
	update(t, db, func(tx *Tx) error { return tx.PutCase(newCase(1, cases.StatusOpen)) })
	path := db.Path()
	db.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	view(t, ro, func(tx *Tx) error {
		c, err := tx.Case(1)
		if c == nil {
			t.Error("case 1 missing in read-only store")
		}
		return err
	})
	if err := ro.Update(func(tx *Tx) error { return nil }); err == nil {
		t.Error("Update on a read-only store succeeded")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "absent.db"), Options{ReadOnly: true}); err == nil {
		t.Error("read-only Open of a missing file succeeded")
	}
}

func TestHMACKey(t *testing.T) {
	db := openTest(t)
	view(t, db, func(tx *Tx) error {
		k, err := tx.HMACKey()
		if k != nil {
			t.Errorf("View before any Update returned key %x", k)
		}
		return err
	})
	var key []byte
	update(t, db, func(tx *Tx) (err error) {
		key, err = tx.HMACKey()
		return err
	})
	if len(key) != 32 || bytes.Equal(key, make([]byte, 32)) {
		t.Fatalf("key %x", key)
	}
	update(t, db, func(tx *Tx) error {
		k, err := tx.HMACKey()
		if !bytes.Equal(k, key) {
			t.Error("second Update generated a new key")
		}
		return err
	})
	db = reopen(t, db)
	view(t, db, func(tx *Tx) error {
		k, err := tx.HMACKey()
		if !bytes.Equal(k, key) {
			t.Error("key changed across reopen")
		}
		return err
	})
}

func TestNextCaseIDNoGaps(t *testing.T) {
	db := openTest(t)
	next := func() uint64 {
		var id uint64
		view(t, db, func(tx *Tx) (err error) {
			id, err = tx.NextCaseID()
			return err
		})
		return id
	}
	if got := next(); got != 1 {
		t.Fatalf("first NextCaseID = %d", got)
	}
	// Peeking twice does not consume.
	update(t, db, func(tx *Tx) error {
		a, _ := tx.NextCaseID()
		b, _ := tx.NextCaseID()
		if a != 1 || b != 1 {
			t.Errorf("peeks %d, %d", a, b)
		}
		return nil
	})
	rollback := errors.New("decision failed")
	err := db.Update(func(tx *Tx) error {
		id, err := tx.NextCaseID()
		if err != nil {
			return err
		}
		if err := tx.PutCase(newCase(id, cases.StatusOpen)); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	if got := next(); got != 1 {
		t.Fatalf("after rolled-back tx NextCaseID = %d, want 1", got)
	}
	for want := uint64(1); want <= 3; want++ {
		update(t, db, func(tx *Tx) error {
			id, err := tx.NextCaseID()
			if err != nil {
				return err
			}
			if id != want {
				t.Errorf("NextCaseID = %d, want %d", id, want)
			}
			if err := tx.PutCase(newCase(id, cases.StatusOpen)); err != nil {
				return err
			}
			// Within the same tx the next number is already taken.
			if n, _ := tx.NextCaseID(); n != id+1 {
				t.Errorf("after PutCase NextCaseID = %d", n)
			}
			return nil
		})
	}
	// Updating an existing case does not move the sequence.
	update(t, db, func(tx *Tx) error { return tx.PutCase(newCase(2, cases.StatusClosed)) })
	if got := next(); got != 4 {
		t.Errorf("NextCaseID = %d, want 4", got)
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutCase(newCase(6, cases.StatusOpen)) }); err == nil {
		t.Error("PutCase with a gap succeeded")
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutCase(newCase(0, cases.StatusOpen)) }); err == nil {
		t.Error("PutCase with id 0 succeeded")
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutCase(newCase(4, "")) }); err == nil {
		t.Error("PutCase with empty status succeeded")
	}
	db = reopen(t, db)
	if got := next(); got != 4 {
		t.Errorf("after reopen NextCaseID = %d, want 4", got)
	}
}

func collect(t *testing.T, db *DB, status cases.Status) []uint64 {
	t.Helper()
	var ids []uint64
	view(t, db, func(tx *Tx) error {
		return tx.ForEachCase(status, func(c *cases.Case) error {
			if status != "" && c.Status != status {
				t.Errorf("case %d has status %s in the %s listing", c.ID, c.Status, status)
			}
			ids = append(ids, c.ID)
			return nil
		})
	})
	return ids
}

func counts(t *testing.T, db *DB) map[cases.Status]int {
	t.Helper()
	var m map[cases.Status]int
	view(t, db, func(tx *Tx) (err error) {
		if m, err = tx.CountCases(); err != nil {
			return err
		}
		// One status counted alone agrees, absent ones included, and
		// the counters agree with a walk of the status index.
		idx, err := tx.bucket(bucketCaseStatus)
		if err != nil {
			return err
		}
		for _, s := range []cases.Status{cases.StatusOpen, cases.StatusPending, cases.StatusClosed, "no-such-status"} {
			n, err := tx.CountCasesWithStatus(s)
			if err != nil {
				return err
			}
			if n != m[s] {
				t.Errorf("CountCasesWithStatus(%s) = %d, CountCases says %d", s, n, m[s])
			}
			walked := 0
			if ids := idx.Bucket([]byte(s)); ids.exists() {
				walked = ids.Stats().KeyN
			}
			if n != walked {
				t.Errorf("counter of %s cases = %d, the status index holds %d", s, n, walked)
			}
		}
		return nil
	})
	return m
}

func TestCaseRoundTripAndStatusIndex(t *testing.T) {
	db := openTest(t)
	statuses := []cases.Status{cases.StatusOpen, cases.StatusPending, cases.StatusOpen, cases.StatusClosed, cases.StatusOpen}
	update(t, db, func(tx *Tx) error {
		for i, s := range statuses {
			if err := tx.PutCase(newCase(uint64(i+1), s)); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, db, func(tx *Tx) error {
		c, err := tx.Case(3)
		if err != nil {
			return err
		}
		if want := newCase(3, cases.StatusOpen); !reflect.DeepEqual(c, want) {
			t.Errorf("Case(3) =\n%+v\nwant\n%+v", c, want)
		}
		if c, err := tx.Case(99); c != nil || err != nil {
			t.Errorf("Case(99) = %v, %v", c, err)
		}
		return nil
	})
	check := func(open, pending, closed, all []uint64) {
		t.Helper()
		for _, tc := range []struct {
			s    cases.Status
			want []uint64
		}{{cases.StatusOpen, open}, {cases.StatusPending, pending}, {cases.StatusClosed, closed}, {"", all}} {
			if got := collect(t, db, tc.s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ForEachCase(%q) = %v, want %v", tc.s, got, tc.want)
			}
		}
		want := map[cases.Status]int{}
		for s, ids := range map[cases.Status][]uint64{cases.StatusOpen: open, cases.StatusPending: pending, cases.StatusClosed: closed} {
			if len(ids) > 0 {
				want[s] = len(ids)
			}
		}
		if got := counts(t, db); !reflect.DeepEqual(got, want) {
			t.Errorf("CountCases = %v, want %v", got, want)
		}
	}
	check([]uint64{1, 3, 5}, []uint64{2}, []uint64{4}, []uint64{1, 2, 3, 4, 5})

	// Status changes move the case in the index; same-status puts leave it.
	update(t, db, func(tx *Tx) error {
		for id, s := range map[uint64]cases.Status{1: cases.StatusClosed, 2: cases.StatusOpen, 4: cases.StatusOpen, 5: cases.StatusOpen} {
			c, err := tx.Case(id)
			if err != nil {
				return err
			}
			c.Status = s
			if err := tx.PutCase(c); err != nil {
				return err
			}
		}
		return nil
	})
	check([]uint64{2, 3, 4, 5}, nil, []uint64{1}, []uint64{1, 2, 3, 4, 5})

	// A status change rolled back leaves the index as it was.
	db.Update(func(tx *Tx) error {
		tx.PutCase(newCase(3, cases.StatusPending))
		return errors.New("no")
	})
	check([]uint64{2, 3, 4, 5}, nil, []uint64{1}, []uint64{1, 2, 3, 4, 5})

	db = reopen(t, db)
	check([]uint64{2, 3, 4, 5}, nil, []uint64{1}, []uint64{1, 2, 3, 4, 5})

	// fn's error stops the walk and comes back unchanged.
	stop := errors.New("stop")
	n := 0
	err := db.View(func(tx *Tx) error {
		return tx.ForEachCase(cases.StatusOpen, func(*cases.Case) error { n++; return stop })
	})
	if err != stop || n != 1 {
		t.Errorf("ForEachCase stop: err %v after %d calls", err, n)
	}
}

func TestMessages(t *testing.T) {
	db := openTest(t)
	in := newMessage("mid:abc@acme.example", 1)
	raw := []byte("From: ann@acme.example\r\nMessage-ID: <abc@acme.example>\r\n\r\nhelp\r\n")
	out := &cases.Message{Key: "out:ack-1@desk.example", CaseID: 1, Direction: cases.DirectionOut, Role: cases.RoleDeskd,
		MessageID: "ack-1@desk.example", Subject: "[#1] received", Date: t0}
	c := newCase(1, cases.StatusOpen)
	c.MessageKeys = []string{in.Key, out.Key}
	update(t, db, func(tx *Tx) error {
		if err := tx.PutMessage(in, raw); err != nil {
			return err
		}
		if err := tx.PutMessage(out, nil); err != nil {
			return err
		}
		if err := tx.IndexMessageID("queued-relay@desk.example", 1); err != nil {
			return err
		}
		return tx.PutCase(c)
	})
	check := func(db *DB) {
		t.Helper()
		view(t, db, func(tx *Tx) error {
			got, err := tx.Message(in.Key)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, in) {
				t.Errorf("Message = %+v, want %+v", got, in)
			}
			if m, err := tx.Message("mid:nope"); m != nil || err != nil {
				t.Errorf("absent Message = %v, %v", m, err)
			}
			r, err := tx.Raw(in.Key)
			if err != nil {
				return err
			}
			if !bytes.Equal(r, raw) {
				t.Errorf("Raw = %q", r)
			}
			if r, err := tx.Raw(out.Key); r != nil || err != nil {
				t.Errorf("Raw of message stored without raw = %q, %v", r, err)
			}
			for _, id := range []string{"abc@acme.example", "ack-1@desk.example", "queued-relay@desk.example"} {
				cid, ok, err := tx.CaseIDForMessageID(id)
				if err != nil || !ok || cid != 1 {
					t.Errorf("CaseIDForMessageID(%q) = %d, %v, %v", id, cid, ok, err)
				}
			}
			if _, ok, err := tx.CaseIDForMessageID("unknown@x"); ok || err != nil {
				t.Errorf("unknown message-id found: %v, %v", ok, err)
			}
			msgs, err := tx.CaseMessages(c)
			if err != nil {
				return err
			}
			if len(msgs) != 2 || msgs[0].Key != in.Key || msgs[1].Key != out.Key {
				t.Errorf("CaseMessages = %+v", msgs)
			}
			return nil
		})
	}
	check(db)
	db = reopen(t, db)
	check(db)

	// Re-putting a record with nil raw keeps the raw; a changed Message-ID
	// leaves no stale mapping.
	update(t, db, func(tx *Tx) error {
		m := *in
		m.MessageID = "renamed@acme.example"
		return tx.PutMessage(&m, nil)
	})
	view(t, db, func(tx *Tx) error {
		if r, _ := tx.Raw(in.Key); !bytes.Equal(r, raw) {
			t.Error("raw lost by PutMessage with nil raw")
		}
		if _, ok, _ := tx.CaseIDForMessageID("abc@acme.example"); ok {
			t.Error("old message-id still indexed")
		}
		if id, ok, _ := tx.CaseIDForMessageID("renamed@acme.example"); !ok || id != 1 {
			t.Error("new message-id not indexed")
		}
		bad := newCase(1, cases.StatusOpen)
		bad.MessageKeys = []string{"mid:missing"}
		if _, err := tx.CaseMessages(bad); err == nil {
			t.Error("CaseMessages with a missing message succeeded")
		}
		return nil
	})
	if err := db.Update(func(tx *Tx) error { return tx.PutMessage(&cases.Message{}, nil) }); err == nil {
		t.Error("PutMessage with empty key succeeded")
	}
}

// realisticRaw builds a mail of about size bytes: headers, a text body and a
// base64 attachment of random bytes, which compresses like a real one.
func realisticRaw(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Ann <ann@acme.example>\r\nTo: support@desk.example\r\nSubject: logs\r\n" +
		"Message-ID: <big@acme.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n--xx\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n")
	for b.Len() < size/4 {
		b.WriteString("2025-03-14T09:30:00Z ERROR printer spooler crashed: paper jam in tray 2, retrying\r\n")
	}
	b.WriteString("--xx\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	line := make([]byte, 78)
	line[76], line[77] = '\r', '\n'
	for b.Len() < size-len(line) {
		for i := range 76 {
			line[i] = alphabet[r.IntN(64)]
		}
		b.Write(line)
	}
	return b.Bytes()
}

func TestLargeRawCompressed(t *testing.T) {
	db := openTest(t)
	raw := realisticRaw(25 << 20)
	m := newMessage("mid:big@acme.example", 1)
	update(t, db, func(tx *Tx) error { return tx.PutMessage(m, raw) })
	var stored int
	db.bolt().View(func(tx *bolt.Tx) error {
		stored = len(tx.Bucket([]byte(bucketRaw)).Get([]byte(m.Key)))
		return nil
	})
	if stored == 0 || stored >= len(raw)*9/10 {
		t.Errorf("stored %d bytes for a %d-byte raw: not compressed", stored, len(raw))
	}
	db = reopen(t, db)
	view(t, db, func(tx *Tx) error {
		got, err := tx.Raw(m.Key)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("25 MiB raw differs after round trip (len %d vs %d)", len(got), len(raw))
		}
		return nil
	})
}

func TestCheckpoint(t *testing.T) {
	db := openTest(t)
	view(t, db, func(tx *Tx) error {
		v, u, err := tx.Checkpoint("INBOX")
		if v != 0 || u != 0 {
			t.Errorf("fresh checkpoint %d/%d", v, u)
		}
		return err
	})
	update(t, db, func(tx *Tx) error {
		if err := tx.SetCheckpoint("INBOX", 1700000000, 41); err != nil {
			return err
		}
		if err := tx.SetCheckpoint("INBOX", 1700000000, 42); err != nil {
			return err
		}
		return tx.SetCheckpoint("Junk", 7, 3)
	})
	db = reopen(t, db)
	view(t, db, func(tx *Tx) error {
		if v, u, _ := tx.Checkpoint("INBOX"); v != 1700000000 || u != 42 {
			t.Errorf("INBOX checkpoint %d/%d", v, u)
		}
		if v, u, _ := tx.Checkpoint("Junk"); v != 7 || u != 3 {
			t.Errorf("Junk checkpoint %d/%d", v, u)
		}
		return nil
	})
}

func TestQuarantine(t *testing.T) {
	db := openTest(t)
	recs := []*QuarantineRecord{
		{Key: "sha256:beef", Reason: "unparseable MIME", From: "x@y", Subject: "?", UID: 9, At: t0, Size: 100, Truncated: true},
		{Key: "mid:a@b", MessageID: "a@b", Reason: "no customer", At: t0.Add(time.Hour), Size: 10},
	}
	update(t, db, func(tx *Tx) error {
		if err := tx.PutQuarantine(recs[0], []byte("Subject: ?\r\n\r\n")); err != nil {
			return err
		}
		return tx.PutQuarantine(recs[1], nil)
	})
	db = reopen(t, db)
	view(t, db, func(tx *Tx) error {
		for _, r := range recs {
			got, err := tx.Quarantined(r.Key)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, r) {
				t.Errorf("Quarantined = %+v, want %+v", got, r)
			}
		}
		if r, _ := tx.QuarantineRaw("sha256:beef"); string(r) != "Subject: ?\r\n\r\n" {
			t.Errorf("QuarantineRaw = %q", r)
		}
		if r, err := tx.Quarantined("nope"); r != nil || err != nil {
			t.Errorf("absent = %v, %v", r, err)
		}
		var keys []string
		err := tx.ForEachQuarantine(func(r *QuarantineRecord) error { keys = append(keys, r.Key); return nil })
		if want := []string{"mid:a@b", "sha256:beef"}; !reflect.DeepEqual(keys, want) {
			t.Errorf("ForEachQuarantine keys %v, want %v", keys, want)
		}
		return err
	})
	update(t, db, func(tx *Tx) error { return tx.DeleteQuarantine("sha256:beef") })
	view(t, db, func(tx *Tx) error {
		r, _ := tx.Quarantined("sha256:beef")
		raw, _ := tx.QuarantineRaw("sha256:beef")
		if r != nil || raw != nil {
			t.Error("deleted quarantine still there")
		}
		return nil
	})
}

func dueIndexLen(t *testing.T, db *DB) int {
	n := 0
	db.bolt().View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte(bucketOutboxDue)).Stats().KeyN
		return nil
	})
	return n
}

func TestOutbox(t *testing.T) {
	db := openTest(t)
	mk := func(kind string, created, next time.Time) *OutboxEntry {
		return &OutboxEntry{CaseID: 1, Kind: kind, MessageID: kind + "@desk.example", EnvelopeFrom: "support@desk.example",
			Recipients: []string{"ann@acme.example"}, Raw: []byte("Subject: " + kind + "\r\n\r\nbody\r\n"),
			CreatedAt: created, NextAttempt: next}
	}
	// Enqueued out of due order; "c" and "d" fall due at the same instant.
	entries := []*OutboxEntry{
		mk("a", t0, t0.Add(10*time.Minute)),
		mk("b", t0.Add(time.Minute), time.Time{}), // due at CreatedAt
		mk("c", t0.Add(2*time.Minute), t0.Add(5*time.Minute)),
		mk("d", t0.Add(3*time.Minute), t0.Add(5*time.Minute)),
		mk("e", t0.Add(4*time.Minute), t0.Add(time.Hour)),
	}
	update(t, db, func(tx *Tx) error {
		for _, e := range entries {
			if err := tx.Enqueue(e); err != nil {
				return err
			}
		}
		return nil
	})
	for i, e := range entries {
		if e.ID != uint64(i+1) || e.State != OutboxQueued {
			t.Errorf("entry %d: ID %d state %s", i, e.ID, e.State)
		}
	}
	if !entries[1].NextAttempt.Equal(entries[1].CreatedAt) {
		t.Errorf("zero NextAttempt not set to CreatedAt: %v", entries[1].NextAttempt)
	}
	kinds := func(es []*OutboxEntry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Kind)
		}
		return strings.Join(s, ",")
	}
	due := func(now time.Time, limit int) []*OutboxEntry {
		var es []*OutboxEntry
		view(t, db, func(tx *Tx) (err error) {
			es, err = tx.DueOutbox(now, limit)
			return err
		})
		return es
	}
	db = reopen(t, db)
	for _, tc := range []struct {
		now   time.Time
		limit int
		want  string
	}{
		{t0, 0, ""},
		{t0.Add(time.Minute), 0, "b"},
		{t0.Add(5 * time.Minute), 0, "b,c,d"},
		{t0.Add(10 * time.Minute), 0, "b,c,d,a"},
		{t0.Add(10 * time.Minute), 2, "b,c"},
		{t0.Add(24 * time.Hour), 0, "b,c,d,a,e"},
	} {
		if got := kinds(due(tc.now, tc.limit)); got != tc.want {
			t.Errorf("DueOutbox(+%v, %d) = %q, want %q", tc.now.Sub(t0), tc.limit, got, tc.want)
		}
	}
	view(t, db, func(tx *Tx) error {
		// The entries the outbox loop already handed out are passed over,
		// and the limit counts only the others.
		es, err := tx.DueOutboxSkipping(t0.Add(10*time.Minute), 2, func(id uint64) bool { return id == entries[1].ID || id == entries[3].ID })
		if got := kinds(es); got != "c,a" {
			t.Errorf("DueOutboxSkipping(b, d) = %q, want c,a", got)
		}
		return err
	})
	got := due(t0.Add(time.Minute), 1)[0]
	want := *entries[1]
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("DueOutbox entry = %+v, want %+v", got, &want)
	}
	view(t, db, func(tx *Tx) error {
		next, ok, err := tx.NextOutboxDue()
		if !ok || !next.Equal(t0.Add(time.Minute)) {
			t.Errorf("NextOutboxDue = %v, %v", next, ok)
		}
		n, oldest, err2 := tx.OutboxStats(t0)
		if n != 5 || !oldest.Equal(t0) {
			t.Errorf("OutboxStats = %d, %v", n, oldest)
		}
		return errors.Join(err, err2)
	})

	// b fails once and is retried later; c is sent; a gives up.
	update(t, db, func(tx *Tx) error {
		es, err := tx.DueOutbox(t0.Add(10*time.Minute), 0)
		if err != nil {
			return err
		}
		for _, e := range es {
			e.Attempts++
			switch e.Kind {
			case "b":
				e.NextAttempt = t0.Add(2 * time.Hour)
				e.LastError = "451 try again"
			case "c":
				e.State = OutboxSent
				e.SentAt = t0.Add(10 * time.Minute)
			case "a":
				e.State = OutboxFailed
				e.LastError = "550 no such user"
			}
			e.Raw = nil // ignored by PutOutbox
			if err := tx.PutOutbox(e); err != nil {
				return err
			}
		}
		return nil
	})
	if got := kinds(due(t0.Add(90*time.Minute), 0)); got != "d,e" {
		t.Errorf("after attempts DueOutbox = %q, want d,e", got)
	}
	if got := kinds(due(t0.Add(3*time.Hour), 0)); got != "d,e,b" {
		t.Errorf("after attempts DueOutbox = %q, want d,e,b", got)
	}
	if n := dueIndexLen(t, db); n != 3 {
		t.Errorf("due index has %d keys, want 3", n)
	}
	view(t, db, func(tx *Tx) error {
		c, err := tx.OutboxEntry(entries[2].ID)
		if err != nil {
			return err
		}
		if c.State != OutboxSent || c.Attempts != 1 || !c.SentAt.Equal(t0.Add(10*time.Minute)) || !bytes.Equal(c.Raw, entries[2].Raw) {
			t.Errorf("sent entry kept as %+v", c)
		}
		b, _ := tx.OutboxEntry(entries[1].ID)
		if b.LastError != "451 try again" || b.Attempts != 1 || !bytes.Equal(b.Raw, entries[1].Raw) {
			t.Errorf("retried entry %+v", b)
		}
		if e, err := tx.OutboxEntry(99); e != nil || err != nil {
			t.Errorf("absent OutboxEntry = %v, %v", e, err)
		}
		n, oldest, err := tx.OutboxStats(t0)
		if n != 3 || !oldest.Equal(t0.Add(time.Minute)) {
			t.Errorf("OutboxStats = %d, %v", n, oldest)
		}
		return err
	})
	update(t, db, func(tx *Tx) error {
		for _, id := range []uint64{2, 4, 5} {
			e, err := tx.OutboxEntry(id)
			if err != nil {
				return err
			}
			e.State = OutboxSent
			if err := tx.PutOutbox(e); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, db, func(tx *Tx) error {
		if _, ok, _ := tx.NextOutboxDue(); ok {
			t.Error("NextOutboxDue with nothing queued")
		}
		if n, oldest, _ := tx.OutboxStats(t0); n != 0 || !oldest.IsZero() {
			t.Errorf("empty OutboxStats = %d, %v", n, oldest)
		}
		return nil
	})
	for _, bad := range []func(*Tx) error{
		func(tx *Tx) error { return tx.PutOutbox(&OutboxEntry{ID: 99, State: OutboxSent}) },
		func(tx *Tx) error { return tx.PutOutbox(&OutboxEntry{ID: 1, State: "lost"}) },
		func(tx *Tx) error { return tx.Enqueue(&OutboxEntry{Raw: []byte("x")}) },
		func(tx *Tx) error { return tx.Enqueue(&OutboxEntry{Recipients: []string{"a@b"}}) },
	} {
		if err := db.Update(bad); err == nil {
			t.Error("invalid outbox call succeeded")
		}
	}
}

func TestAutoMail(t *testing.T) {
	db := openTest(t)
	count := func(addr string, since time.Time) int {
		var n int
		view(t, db, func(tx *Tx) (err error) {
			n, err = tx.AutoMailCount("ack", addr, since)
			return err
		})
		return n
	}
	update(t, db, func(tx *Tx) error {
		for _, at := range []time.Time{t0, t0, t0.Add(time.Hour), t0.Add(30 * time.Hour)} {
			if err := tx.RecordAutoMail("ack", "Ann@Acme.example", at); err != nil {
				return err
			}
		}
		// Another kind has a budget of its own: it counts for no ack.
		if err := tx.RecordAutoMail("unauthorised", "ann@acme.example", t0); err != nil {
			return err
		}
		return tx.RecordAutoMail("ack", "bob@acme.example", t0.Add(time.Hour))
	})
	for _, tc := range []struct {
		addr  string
		since time.Time
		want  int
	}{
		{"ann@acme.example", t0.Add(-time.Hour), 4},
		{"ann@acme.example", t0, 4}, // since is inclusive
		{"ann@acme.example", t0.Add(time.Nanosecond), 2},
		{"ann@acme.example", t0.Add(30 * time.Hour), 1},
		{"ann@acme.example", t0.Add(31 * time.Hour), 0},
		{"ANN@acme.example", t0.Add(-time.Hour), 4},
		{"bob@acme.example", t0, 1},
		{"ann@acme.example.org", t0, 0}, // a longer address is not a match
		{"carol@acme.example", t0, 0},
	} {
		if got := count(tc.addr, tc.since); got != tc.want {
			t.Errorf("AutoMailCount(%s, +%v) = %d, want %d", tc.addr, tc.since.Sub(t0), got, tc.want)
		}
	}
	view(t, db, func(tx *Tx) error {
		if n, err := tx.AutoMailCount("unauthorised", "ann@acme.example", t0); err != nil || n != 1 {
			t.Errorf("unauthorised budget of ann: %d, %v; want 1", n, err)
		}
		return nil
	})
	// A write 50h later prunes what is older than 48h, for every address
	// and kind.
	update(t, db, func(tx *Tx) error { return tx.RecordAutoMail("ack", "carol@acme.example", t0.Add(50*time.Hour)) })
	if got := count("ann@acme.example", time.Time{}); got != 1 {
		t.Errorf("after prune ann has %d records, want 1 (the one at +30h)", got)
	}
	if got := count("bob@acme.example", time.Time{}); got != 0 {
		t.Errorf("after prune bob has %d records, want 0", got)
	}
	db.bolt().View(func(tx *bolt.Tx) error {
		a := tx.Bucket([]byte(bucketAutoMail)).Stats().KeyN
		b := tx.Bucket([]byte(bucketAutoMailTime)).Stats().KeyN
		if a != 2 || b != 2 {
			t.Errorf("after prune %d automail keys and %d time keys, want 2 and 2", a, b)
		}
		return nil
	})
	if err := db.Update(func(tx *Tx) error { return tx.RecordAutoMail("ack", " ", t0) }); err == nil {
		t.Error("RecordAutoMail with empty address succeeded")
	}
	if err := db.Update(func(tx *Tx) error { return tx.RecordAutoMail("", "ann@acme.example", t0) }); err == nil {
		t.Error("RecordAutoMail without a kind succeeded")
	}
}

// TestNoticeDigest: a named contact's digest of R1 notices is kept per
// address, in the order the notices came, survives a reopen of the store;
// only those with pending notices are listed, the next due first, and a
// digest sent takes its notices with it.
func TestNoticeDigest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deskd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	notice := func(id uint64) cases.Notice {
		return cases.Notice{CaseID: id, Subject: "vpn", Customer: "Acme", Writer: cases.Address{Email: "dave@acme.example"}, At: t0}
	}
	ann := cases.Address{Name: "Ann", Email: "Ann@Acme.example"}
	bob := cases.Address{Email: "bob@acme.example"}
	update(t, db, func(tx *Tx) error {
		if d, err := tx.NoticeDigest("ann@acme.example"); err != nil || d != nil {
			t.Errorf("digest before any notice: %+v, %v", d, err)
		}
		if _, ok, err := tx.NextNoticeDigest(); err != nil || ok {
			t.Errorf("next digest with nothing pending: %v, %v", ok, err)
		}
		for _, id := range []uint64{3, 1, 2} {
			if d, err := tx.AddNotice(ann, notice(id)); err != nil || d.Contact != ann || !d.LastSent.IsZero() {
				t.Fatalf("add notice %d: %+v, %v", id, d, err)
			}
		}
		if _, err := tx.AddNotice(bob, notice(4)); err != nil {
			return err
		}
		// Bob's digest goes out; his next notice waits a period after it.
		if err := tx.MarkDigestSent("BOB@acme.example", t0); err != nil {
			return err
		}
		d, err := tx.AddNotice(bob, notice(5))
		if err != nil || !d.LastSent.Equal(t0) {
			t.Errorf("bob after his digest: %+v, %v", d, err)
		}
		return err
	})
	db.Close()
	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	view(t, db, func(tx *Tx) error {
		d, err := tx.NoticeDigest("ANN@acme.example")
		if err != nil || d == nil || d.Contact != ann || len(d.Pending) != 3 || d.Pending[0].CaseID != 3 || d.Pending[2].CaseID != 2 || !d.Pending[0].At.Equal(t0) {
			t.Errorf("ann's digest after reopen: %+v, %v", d, err)
		}
		d, err = tx.NoticeDigest("bob@acme.example")
		if err != nil || d == nil || len(d.Pending) != 1 || d.Pending[0].CaseID != 5 || !d.LastSent.Equal(t0) {
			t.Errorf("bob's digest after reopen: %+v, %v", d, err)
		}
		// Ann never had a digest: she is due first, at once.
		if last, ok, err := tx.NextNoticeDigest(); err != nil || !ok || !last.IsZero() {
			t.Errorf("next digest: %v %v %v, want ann's zero time", last, ok, err)
		}
		if due, err := tx.NoticeDigestsSentBy(t0.Add(-time.Second)); err != nil || !reflect.DeepEqual(due, []string{"ann@acme.example"}) {
			t.Errorf("due before bob's period: %v, %v", due, err)
		}
		if due, err := tx.NoticeDigestsSentBy(t0); err != nil || !reflect.DeepEqual(due, []string{"ann@acme.example", "bob@acme.example"}) {
			t.Errorf("due at bob's last digest: %v, %v", due, err)
		}
		all, err := tx.PendingNoticeDigests()
		if err != nil || len(all) != 2 || all[0].Contact != ann || len(all[1].Pending) != 1 {
			t.Errorf("pending digests: %+v, %v", all, err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error {
		if err := tx.MarkDigestSent("ann@acme.example", t0.Add(time.Hour)); err != nil {
			return err
		}
		return tx.MarkDigestSent("bob@acme.example", t0.Add(time.Hour))
	})
	view(t, db, func(tx *Tx) error {
		if all, err := tx.PendingNoticeDigests(); err != nil || len(all) != 0 {
			t.Errorf("pending after both digests: %+v, %v", all, err)
		}
		if _, ok, err := tx.NextNoticeDigest(); err != nil || ok {
			t.Errorf("next digest after both: %v, %v", ok, err)
		}
		d, err := tx.NoticeDigest("ann@acme.example")
		if err != nil || d == nil || len(d.Pending) != 0 || !d.LastSent.Equal(t0.Add(time.Hour)) {
			t.Errorf("ann after her digest: %+v, %v", d, err)
		}
		return err
	})
	update(t, db, func(tx *Tx) error {
		if err := tx.MarkDigestSent("carol@acme.example", t0); err == nil {
			t.Error("a digest marked sent for a contact without one")
		}
		return nil
	})
}

func TestUndeliverable(t *testing.T) {
	db := openTest(t)
	update(t, db, func(tx *Tx) error {
		return tx.SetUndeliverable("Gone@Acme.example", t0.Add(72*time.Hour), "550 5.1.1 user unknown")
	})
	db = reopen(t, db)
	view(t, db, func(tx *Tx) error {
		u, err := tx.UndeliverableUntil("gone@acme.example")
		if !u.Equal(t0.Add(72 * time.Hour)) {
			t.Errorf("UndeliverableUntil = %v", u)
		}
		if u, _ := tx.UndeliverableUntil("ann@acme.example"); !u.IsZero() {
			t.Errorf("unmarked address until %v", u)
		}
		return err
	})
}

func TestWriteToCopy(t *testing.T) {
	db := openTest(t)
	update(t, db, func(tx *Tx) error {
		if err := tx.PutCase(newCase(1, cases.StatusOpen)); err != nil {
			return err
		}
		return tx.PutMessage(newMessage("mid:1@acme.example", 1), []byte("raw"))
	})
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.WriteTo(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() != n {
		t.Errorf("WriteTo reported %d bytes, file has %d", n, fi.Size())
	}
	cp, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	view(t, cp, func(tx *Tx) error {
		c, _ := tx.Case(1)
		r, err := tx.Raw("mid:1@acme.example")
		if c == nil || string(r) != "raw" {
			t.Errorf("backup copy: case %v raw %q", c, r)
		}
		return err
	})
}

// TestConcurrent exercises readers beside a writer under -race.
func TestConcurrent(t *testing.T) {
	db := openTest(t)
	raw := realisticRaw(64 << 10)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				err := db.Update(func(tx *Tx) error {
					id, err := tx.NextCaseID()
					if err != nil {
						return err
					}
					c := newCase(id, cases.StatusOpen)
					m := newMessage(fmt.Sprintf("mid:%d-%d@acme.example", w, i), id)
					c.MessageKeys = []string{m.Key}
					if err := tx.PutMessage(m, raw); err != nil {
						return err
					}
					return tx.PutCase(c)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				err := db.View(func(tx *Tx) error {
					return tx.ForEachCase(cases.StatusOpen, func(c *cases.Case) error {
						msgs, err := tx.CaseMessages(c)
						if err != nil {
							return err
						}
						r, err := tx.Raw(msgs[0].Key)
						if err == nil && !bytes.Equal(r, raw) {
							err = errors.New("raw differs")
						}
						return err
					})
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := counts(t, db)[cases.StatusOpen]; got != 100 {
		t.Errorf("%d open cases, want 100", got)
	}
	if ids := collect(t, db, ""); len(ids) != 100 || ids[0] != 1 || ids[99] != 100 {
		t.Errorf("case ids not 1..100 without gaps: %v", ids)
	}
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{{}, time.Unix(-1, 5), time.Unix(0, 0), t0, t0.Add(time.Nanosecond), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := 1; i < len(times); i++ {
		if bytes.Compare(ts(times[i-1]), ts(times[i])) >= 0 {
			t.Errorf("ts(%v) does not sort before ts(%v)", times[i-1], times[i])
		}
	}
	for _, tm := range times {
		if got := parseTS(ts(tm)); !got.Equal(tm) {
			t.Errorf("parseTS(ts(%v)) = %v", tm, got)
		}
	}
}

// The escalation loop closes cases while walking them in one Update; no case
// may be skipped or visited twice although the status index changes under
// the walk.
func TestForEachCaseWhileWriting(t *testing.T) {
	db := openTest(t)
	update(t, db, func(tx *Tx) error {
		for id := uint64(1); id <= 500; id++ {
			if err := tx.PutCase(newCase(id, cases.StatusOpen)); err != nil {
				return err
			}
		}
		return nil
	})
	for _, status := range []cases.Status{cases.StatusOpen, ""} {
		seen := 0
		update(t, db, func(tx *Tx) error {
			return tx.ForEachCase(status, func(c *cases.Case) error {
				seen++
				if c.Status == cases.StatusOpen {
					c.Status = cases.StatusClosed
				} else {
					c.Status = cases.StatusOpen
				}
				c.Events = append(c.Events, cases.Event{At: t0, Type: cases.EventClosed, Detail: strings.Repeat("x", 300)})
				return tx.PutCase(c)
			})
		})
		if seen != 500 {
			t.Errorf("ForEachCase(%q) while writing visited %d cases, want 500", status, seen)
		}
	}
	// Open → closed by the first walk, closed → open by the second.
	if got := counts(t, db); !reflect.DeepEqual(got, map[cases.Status]int{cases.StatusOpen: 500}) {
		t.Errorf("CountCases = %v", got)
	}
	update(t, db, func(tx *Tx) error {
		for i := range 50 {
			if err := tx.PutQuarantine(&QuarantineRecord{Key: fmt.Sprintf("sha256:%03d", i), Reason: "r", At: t0}, []byte("x")); err != nil {
				return err
			}
		}
		n := 0
		err := tx.ForEachQuarantine(func(r *QuarantineRecord) error { n++; return tx.DeleteQuarantine(r.Key) })
		if n != 50 {
			t.Errorf("ForEachQuarantine while deleting visited %d, want 50", n)
		}
		return err
	})
}
