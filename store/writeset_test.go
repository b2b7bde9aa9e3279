package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"deskd/cases"
)

// dump is every bucket of db, nested ones and sequences included
// (Walk), as "path key" → value.
// tb is what dump and sameBuckets need of a *testing.T or *rapid.T.
type tb interface {
	Helper()
	Fatal(...any)
	Errorf(string, ...any)
	FailNow()
}

func dump(t tb, db *DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := db.Walk(func(path []string, key, value []byte, seq uint64) error {
		if len(path) == 1 && path[0] == bucketMeta && string(key) == keyRaftApplied {
			return nil // a cluster node's own: compared apart
		}
		if key == nil {
			out[fmt.Sprintf("%q seq", path)] = fmt.Sprint(seq)
		} else {
			out[fmt.Sprintf("%q %q", path, key)] = string(value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameBuckets(t tb, what string, a, b *DB) {
	t.Helper()
	da, db := dump(t, a), dump(t, b)
	if maps.Equal(da, db) {
		return
	}
	for k, v := range da {
		if w, ok := db[k]; !ok {
			t.Errorf("%s: %s only in the first", what, k)
		} else if v != w {
			t.Errorf("%s: %s differs", what, k)
		}
	}
	for k := range db {
		if _, ok := da[k]; !ok {
			t.Errorf("%s: %s only in the second", what, k)
		}
	}
	t.FailNow()
}

// TestRecordLeavesStoreUnchanged: recording is a rolled-back transaction
// whose write set, replayed, gives what the transaction itself gives.
func TestRecordReplayIsTheTransaction(t *testing.T) {
	direct, recorded, replica := openTest(t), openTest(t), openTest(t)
	fn := func(tx *Tx) error {
		c := newCase(1, cases.StatusOpen)
		if err := tx.PutCase(c, Deadline{At: t0.Add(time.Hour), CaseID: 1, Kind: "first_response"}); err != nil {
			return err
		}
		if err := tx.PutMessage(newMessage("mid:1@acme.example", 1), realisticRaw(50000)); err != nil {
			return err
		}
		if err := tx.Enqueue(&OutboxEntry{CaseID: 1, Kind: "ack", EnvelopeFrom: "support@desk.example", Recipients: []string{"ann@acme.example"}, Raw: []byte("Subject: x\r\n\r\nhi"), CreatedAt: t0, NextAttempt: t0}); err != nil {
			return err
		}
		c.Status = cases.StatusPending // moves it between status sub-buckets
		if err := tx.PutCase(c); err != nil {
			return err
		}
		return tx.SetCheckpoint("INBOX", 7, 42)
	}
	update(t, direct, fn)
	before := dump(t, recorded)
	ws, err := recorded.Record(fn)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ws.Ops(); err != nil || n == 0 {
		t.Fatalf("write set: %d ops, %v", n, err)
	}
	if after := dump(t, recorded); !maps.Equal(before, after) {
		t.Fatal("Record changed the store")
	}
	for _, db := range []*DB{recorded, replica} {
		if err := db.ApplyWriteSets(ws); err != nil {
			t.Fatal(err)
		}
	}
	sameBuckets(t, "direct vs recorded", direct, recorded)
	sameBuckets(t, "direct vs replica", direct, replica)
}

func TestRecordNothingAndFailure(t *testing.T) {
	db := openTest(t)
	ws, err := db.Record(func(tx *Tx) error {
		_, err := tx.Case(1)
		return err
	})
	if err != nil || ws != nil {
		t.Fatalf("read-only fn: write set %v, err %v", ws, err)
	}
	boom := errors.New("boom")
	ws, err = db.Record(func(tx *Tx) error {
		if err := tx.SetCheckpoint("INBOX", 1, 1); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || ws != nil {
		t.Fatalf("failing fn: write set %v, err %v", ws, err)
	}
}

func TestWriteSetCorruptRefused(t *testing.T) {
	db := openTest(t)
	ws, err := db.Record(func(tx *Tx) error { return tx.SetCheckpoint("INBOX", 1, 2) })
	if err != nil {
		t.Fatal(err)
	}
	before := dump(t, db)
	for i := 2; i < len(ws); i++ { // 1 byte: the version alone, an empty set
		if err := db.ApplyWriteSets(ws[:i]); err == nil {
			// A prefix that ends on an entry boundary is itself valid;
			// here the one entry spans the whole set.
			t.Fatalf("truncated to %d of %d bytes: applied", i, len(ws))
		}
	}
	bad := bytes.Clone(ws)
	bad[0] = 99
	if err := db.ApplyWriteSets(bad); err == nil {
		t.Fatal("unknown version applied")
	}
	if after := dump(t, db); !maps.Equal(before, after) {
		t.Fatal("a refused write set changed the store")
	}
}

// TestApplyReplicatedOnce: an entry at or below the applied index (a
// restarted node replaying its log) is skipped.
func TestApplyReplicatedOnce(t *testing.T) {
	src, db := openTest(t), openTest(t)
	var sets []WriteSet
	for i := range 3 {
		ws, err := src.Record(func(tx *Tx) error {
			e := &OutboxEntry{Kind: "ack", EnvelopeFrom: "s@d.example", Recipients: []string{"a@b.example"}, Raw: []byte("x"), CreatedAt: t0, NextAttempt: t0.Add(time.Duration(i) * time.Minute)}
			return tx.Enqueue(e)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := src.ApplyWriteSets(ws); err != nil {
			t.Fatal(err)
		}
		sets = append(sets, ws)
	}
	for i, ws := range sets {
		if err := db.ApplyReplicated(uint64(i+1), ws); err != nil {
			t.Fatal(err)
		}
	}
	// Replay all again: nothing changes (the outbox sequence stays 3).
	before := dump(t, db)
	for i, ws := range sets {
		if err := db.ApplyReplicated(uint64(i+1), ws); err != nil {
			t.Fatal(err)
		}
	}
	if after := dump(t, db); !maps.Equal(before, after) {
		t.Fatal("replaying applied entries changed the store")
	}
	if n, err := db.ReplicatedIndex(); err != nil || n != 3 {
		t.Fatalf("applied index %d, %v; want 3", n, err)
	}
}

// mirror is a Replicator that applies each write set to its own store and
// to a replica, as a one-node cluster with one follower would.
type mirror struct {
	self, replica *DB
	index         uint64
}

func (m *mirror) Ready() error { return nil }

func (m *mirror) Replicate(ws WriteSet) error {
	m.index++
	if err := m.self.ApplyReplicated(m.index, ws); err != nil {
		return err
	}
	return m.replica.ApplyReplicated(m.index, ws)
}

// TestPropertyReplayedWriteSets: random transactions of random store
// operations give the same buckets, byte for byte, run directly, run
// through a replicating Update, and replayed on a replica.
func TestPropertyReplayedWriteSets(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var dbs []*DB
		for range 3 {
			db, err := Open(filepath.Join(t.TempDir(), "deskd.db"), Options{})
			if err != nil {
				rt.Fatal(err)
			}
			defer db.Close()
			dbs = append(dbs, db)
		}
		direct, node, replica := dbs[0], dbs[1], dbs[2]
		node.SetReplicator(&mirror{self: node, replica: replica})
		addrs := []string{"ann@acme.example", "bob@acme.example", "eve@evil.example"}
		statuses := []cases.Status{cases.StatusOpen, cases.StatusPending, cases.StatusClosed}
		txs := rapid.IntRange(1, 12).Draw(rt, "txs")
		for i := range txs {
			nops := rapid.IntRange(1, 5).Draw(rt, "ops")
			var ops []func(*Tx) error
			for range nops {
				at := t0.Add(time.Duration(rapid.IntRange(0, 1000).Draw(rt, "minute")) * time.Minute)
				addr := rapid.SampledFrom(addrs).Draw(rt, "addr")
				var op func(*Tx) error
				switch rapid.IntRange(0, 11).Draw(rt, "op") {
				case 0, 1: // a new case, or an existing one changed
					newOne := rapid.Bool().Draw(rt, "new")
					status := rapid.SampledFrom(statuses).Draw(rt, "status")
					kind := rapid.SampledFrom([]string{"first_response", "resolution"}).Draw(rt, "kind")
					op = func(tx *Tx) error {
						id, err := tx.NextCaseID()
						if err != nil {
							return err
						}
						if !newOne && id > 1 {
							id--
						}
						c := newCase(id, status)
						c.Requester.Email = addr
						c.Parties = []string{addr}
						var dl []Deadline
						if status != cases.StatusClosed {
							dl = append(dl, Deadline{At: at, CaseID: id, Kind: kind})
						}
						return tx.PutCase(c, dl...)
					}
				case 2:
					size := rapid.IntRange(0, 3000).Draw(rt, "raw")
					op = func(tx *Tx) error {
						id, err := tx.NextCaseID()
						if err != nil || id == 1 {
							return err
						}
						return tx.PutMessage(newMessage(fmt.Sprintf("mid:%d.%d@acme.example", id, size), id-1), realisticRaw(size))
					}
				case 3:
					op = func(tx *Tx) error {
						return tx.Enqueue(&OutboxEntry{Kind: "ack", EnvelopeFrom: "s@desk.example", Recipients: []string{addr}, Raw: []byte("Subject: hi\r\n\r\n" + addr), CreatedAt: at, NextAttempt: at})
					}
				case 4: // an outbox entry sent or retried
					sent := rapid.Bool().Draw(rt, "sent")
					op = func(tx *Tx) error {
						due, err := tx.DueOutbox(t0.Add(1e6*time.Hour), 1)
						if err != nil || len(due) == 0 {
							return err
						}
						e := due[0]
						if sent {
							e.State, e.SentAt = OutboxSent, at
						} else {
							e.Attempts++
							e.NextAttempt = at.Add(time.Hour)
						}
						return tx.PutOutbox(e)
					}
				case 5:
					op = func(tx *Tx) error { return tx.RecordAutoMail("ack", addr, at) }
				case 6:
					key := "sha256:" + addr
					del := rapid.Bool().Draw(rt, "delete")
					op = func(tx *Tx) error {
						if del {
							return tx.DeleteQuarantine(key)
						}
						return tx.PutQuarantine(&QuarantineRecord{Key: key, Reason: "test", At: at}, []byte("raw "+addr))
					}
				case 7:
					uid := uint32(rapid.IntRange(1, 1000).Draw(rt, "uid"))
					op = func(tx *Tx) error { return tx.SetCheckpoint("INBOX", 1, uid) }
				case 8:
					op = func(tx *Tx) error {
						_, err := tx.ReindexDeadlines(func(c *cases.Case) []Deadline {
							return []Deadline{{At: at, CaseID: c.ID, Kind: "resolution"}}
						})
						return err
					}
				case 9:
					sent := rapid.Bool().Draw(rt, "digest sent")
					op = func(tx *Tx) error {
						_, err := tx.AddNotice(cases.Address{Email: addr}, cases.Notice{CaseID: 1, At: at})
						if err != nil || !sent {
							return err
						}
						return tx.MarkDigestSent(addr, at)
					}
				case 10:
					op = func(tx *Tx) error { return tx.SetUndeliverable(addr, at, "bounce") }
				case 11:
					op = func(tx *Tx) error { _, err := tx.MarkOnce(addr, at); return err }
				}
				ops = append(ops, op)
			}
			fail := rapid.IntRange(0, 9).Draw(rt, "fail") == 0
			fn := func(tx *Tx) error {
				for _, op := range ops {
					if err := op(tx); err != nil {
						return err
					}
				}
				if fail {
					return errors.New("rolled back")
				}
				return nil
			}
			errDirect, errNode := direct.Update(fn), node.Update(fn)
			if (errDirect == nil) != (errNode == nil) {
				rt.Fatalf("tx %d: direct %v, replicated %v", i, errDirect, errNode)
			}
		}
		sameBuckets(rt, "direct vs leader", direct, node)
		// The replica has the leader's buckets plus nothing: the applied
		// index is written on both.
		sameBuckets(rt, "leader vs replica", node, replica)
		a, errA := node.ReplicatedIndex()
		b, errB := replica.ReplicatedIndex()
		if errA != nil || errB != nil || a != b {
			rt.Fatalf("applied index: leader %d (%v), replica %d (%v)", a, errA, b, errB)
		}
	})
}

// TestSnapshotReplaceWith: a snapshot streamed into another open store
// replaces its contents, and the store keeps working.
func TestSnapshotReplaceWith(t *testing.T) {
	src, dst := openTest(t), openTest(t)
	update(t, src, func(tx *Tx) error {
		if err := tx.PutCase(newCase(1, cases.StatusOpen)); err != nil {
			return err
		}
		return tx.PutMessage(newMessage("mid:1@acme.example", 1), realisticRaw(20000))
	})
	if err := src.ApplyReplicated(7, nil); err != nil {
		t.Fatal(err)
	}
	update(t, dst, func(tx *Tx) error { return tx.SetCheckpoint("INBOX", 9, 9) })
	want := dump(t, src)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// A write after the snapshot began is not in it.
	update(t, src, func(tx *Tx) error { return tx.SetCheckpoint("INBOX", 1, 5) })
	var buf bytes.Buffer
	if _, err := snap.Write(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	update(t, src, func(tx *Tx) error { return tx.SetCheckpoint("INBOX", 0, 0) })
	if _, err := dst.ReplaceWith(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst); !maps.Equal(want, got) {
		t.Fatal("the swapped-in store is not the snapshot")
	}
	if n, _ := dst.ReplicatedIndex(); n != 7 {
		t.Fatalf("applied index %d after the swap, want 7", n)
	}
	update(t, dst, func(tx *Tx) error { return tx.SetCheckpoint("INBOX", 2, 2) })
	// A damaged stream changes nothing.
	before := dump(t, dst)
	if _, err := dst.ReplaceWith(bytes.NewReader(buf.Bytes()[:buf.Len()/2])); err == nil {
		t.Fatal("half a snapshot was swapped in")
	}
	if after := dump(t, dst); !maps.Equal(before, after) {
		t.Fatal("a refused snapshot changed the store")
	}
}

// TestSplitAppliesAtomically: a write set cut into pieces changes nothing
// but the chunk bucket until its last piece, which applies it whole and
// leaves no chunk behind (issue 14: large raw mails).
func TestSplitAppliesAtomically(t *testing.T) {
	direct, replica := openTest(t), openTest(t)
	raw := make([]byte, 300<<10)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range raw {
		raw[i] = byte(rnd.Uint32()) // incompressible
	}
	fn := func(tx *Tx) error {
		if err := tx.PutCase(newCase(1, cases.StatusOpen)); err != nil {
			return err
		}
		return tx.PutMessage(newMessage("mid:1@acme.example", 1), raw)
	}
	ws, err := direct.Record(fn)
	if err != nil {
		t.Fatal(err)
	}
	update(t, direct, fn)
	parts := ws.Split(64<<10, 42)
	if len(parts) < 3 {
		t.Fatalf("%d bytes split in %d parts", len(ws), len(parts))
	}
	empty := dump(t, replica)
	for i, p := range parts {
		if len(p) > 64<<10+64 {
			t.Errorf("part %d: %d bytes", i, len(p))
		}
		if err := replica.ApplyReplicated(uint64(i+1), p); err != nil {
			t.Fatal(err)
		}
		if i == len(parts)-1 {
			break
		}
		got := dump(t, replica)
		for k := range got {
			if _, ok := empty[k]; !ok && !strings.HasPrefix(k, `["cluster_chunk"]`) {
				t.Fatalf("after part %d: %s written before the last part", i, k)
			}
		}
	}
	sameBuckets(t, "split", direct, replica)
	if small := ws.Split(len(ws), 1); len(small) != 1 {
		t.Fatalf("a write set of max bytes split in %d", len(small))
	}
}

// TestDropChunkPieces: the pieces of a split write set whose last entry
// never came (its leader died) are dropped, on the recording node and on
// a replica that applies the drop's write set, and the stores end equal
// to ones that never saw the pieces (issue 14).
func TestDropChunkPieces(t *testing.T) {
	leader, replica, clean := openTest(t), openTest(t), openTest(t)
	ws := WriteSet(append([]byte{writeSetVersion}, make([]byte, 10<<10)...))
	parts := ws.Split(4<<10, 7)
	if len(parts) < 4 {
		t.Fatalf("%d parts", len(parts))
	}
	for _, db := range []*DB{leader, replica} {
		// The first two pieces committed, the rest and the assembling
		// entry never proposed.
		if err := db.ApplyReplicated(2, parts[0], parts[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := clean.ApplyReplicated(2); err != nil {
		t.Fatal(err)
	}
	var dropped int
	drop, err := leader.Record(func(tx *Tx) (err error) {
		dropped, err = tx.DropChunkPieces()
		return err
	})
	if err != nil || dropped != 2 {
		t.Fatalf("recording the drop: %d pieces, %v; want 2", dropped, err)
	}
	for _, db := range []*DB{leader, replica} {
		if err := db.ApplyReplicated(3, drop); err != nil {
			t.Fatal(err)
		}
	}
	if err := clean.ApplyReplicated(3); err != nil {
		t.Fatal(err)
	}
	sameBuckets(t, "leader and replica", leader, replica)
	sameBuckets(t, "dropped and never chunked", leader, clean)
	update(t, leader, func(tx *Tx) error {
		if n, err := tx.DropChunkPieces(); err != nil || n != 0 {
			t.Errorf("nothing left: %d, %v", n, err)
		}
		return nil
	})
}
