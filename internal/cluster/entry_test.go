package cluster

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"maps"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"deskd/internal/storetest"
	"deskd/store"
)

// capture is a Replicator that keeps the write sets instead of
// replicating them (and so leaves its own store empty).
type capture struct{ sets []store.WriteSet }

func (c *capture) Ready() error { return nil }
func (c *capture) Replicate(ws store.WriteSet) error {
	c.sets = append(c.sets, ws)
	return nil
}

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "deskd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Entries are compressed write sets (entry.go): each comes back byte for
// byte, is smaller than the write set it carries, and a store that
// applies them, mixed with uncompressed entries (what a leader before
// compression wrote), ends equal to one that applied the plain write sets.
func TestEntryCompression(t *testing.T) {
	src := openStore(t)
	rec := &capture{}
	src.SetReplicator(rec)
	if err := generate(t, src, 200, 20, 7); err != nil {
		t.Fatal(err)
	}
	if len(rec.sets) < 5 {
		t.Fatalf("%d write sets recorded, want several", len(rec.sets))
	}
	plain, mixed := openStore(t), openStore(t)
	plainFSM, mixedFSM := &fsm{db: plain, log: slog.New(slog.DiscardHandler)}, &fsm{db: mixed, log: slog.New(slog.DiscardHandler)}
	var total, compressed int
	for i, ws := range rec.sets {
		data := encodeEntry(ws)
		if !bytes.HasPrefix(data, zstdMagic) {
			t.Fatalf("write set %d (%d bytes) not compressed", i, len(ws))
		}
		total, compressed = total+len(ws), compressed+len(data)
		back, err := decodeEntry(data)
		if err != nil || !bytes.Equal(back, ws) {
			t.Fatalf("write set %d: decoded %d bytes (err %v), want the %d recorded", i, len(back), err, len(ws))
		}
		if i%2 == 1 {
			data = ws // as an older leader wrote it
		}
		index := uint64(i + 1)
		for _, r := range plainFSM.ApplyBatch([]*raft.Log{{Index: index, Type: raft.LogCommand, Data: ws}}) {
			if r != nil {
				t.Fatalf("plain entry %d: %v", index, r)
			}
		}
		for _, r := range mixedFSM.ApplyBatch([]*raft.Log{{Index: index, Type: raft.LogCommand, Data: data}}) {
			if r != nil {
				t.Fatalf("entry %d: %v", index, r)
			}
		}
	}
	t.Logf("%d write sets: %d bytes, %d compressed", len(rec.sets), total, compressed)
	if compressed >= total*3/4 {
		t.Errorf("compressed to %d of %d bytes; the records should shrink more", compressed, total)
	}
	if a, b := storetest.Buckets(t, plain), storetest.Buckets(t, mixed); !maps.Equal(a, b) {
		t.Error("the store applying compressed entries differs from the one applying plain write sets")
	}
	if countCases(t, mixed) == 0 {
		t.Error("no cases applied")
	}
}

// An entry that does not compress goes as it is; a damaged frame is an
// error, not a write set.
func TestEntryIncompressibleAndDamaged(t *testing.T) {
	ws := make(store.WriteSet, 4096)
	rand.Read(ws[1:])
	ws[0] = 1
	if data := encodeEntry(ws); !bytes.Equal(data, ws) {
		t.Errorf("incompressible write set sent as %d bytes, want the %d as they are", len(data), len(ws))
	}
	z := encodeEntry(bytes.Repeat([]byte("deskd "), 1000))
	if _, err := decodeEntry(z[:len(z)/2]); err == nil {
		t.Error("a truncated entry decoded")
	}
}
