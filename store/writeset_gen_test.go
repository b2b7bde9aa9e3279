package store_test

import (
	"context"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"pgregory.net/rapid"

	"deskd/internal/gen"
	"deskd/internal/storetest"
	"deskd/store"
)

// relay is a Replicator that applies each write set to its own store and
// to a replica, numbering the entries as Raft would.
type relay struct {
	self, replica *store.DB
	index         uint64
}

func (r *relay) Ready() error { return nil }

func (r *relay) Replicate(ws store.WriteSet) error {
	r.index++
	if err := r.self.ApplyReplicated(r.index, ws); err != nil {
		return err
	}
	return r.replica.ApplyReplicated(r.index, ws)
}

// TestPropertyDecisionsReplayed: random desks of cases decided by the
// real engine (internal/gen: every mail through cases.Engine.Decide,
// PutMessage with the raw mail, PutCase), several decisions per
// transaction as a group commit makes them, give byte-identical buckets
// committed directly, through a replicating Update, and replayed on a
// replica (issue 14).
func TestPropertyDecisionsReplayed(t *testing.T) {
	end := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rapid.Check(t, func(rt *rapid.T) {
		opts := gen.Options{
			Cases:     rapid.IntRange(1, 8).Draw(rt, "cases"),
			Customers: rapid.IntRange(1, 5).Draw(rt, "customers"),
			Batch:     rapid.IntRange(1, 5).Draw(rt, "batch"),
			OpenShare: 0.3,
			Seed:      rapid.Uint64Range(1, 1<<40).Draw(rt, "seed"),
			End:       end,
		}
		var dbs []*store.DB
		for range 3 {
			db, err := store.Open(filepath.Join(t.TempDir(), "deskd.db"), store.Options{})
			if err != nil {
				rt.Fatal(err)
			}
			defer db.Close()
			dbs = append(dbs, db)
		}
		direct, node, replica := dbs[0], dbs[1], dbs[2]
		node.SetReplicator(&relay{self: node, replica: replica})
		for _, db := range []*store.DB{direct, node} {
			if _, err := gen.Generate(context.Background(), db, opts); err != nil {
				rt.Fatal(err)
			}
		}
		want := storetest.Buckets(t, direct)
		for name, db := range map[string]*store.DB{"leader": node, "replica": replica} {
			got := storetest.Buckets(t, db)
			delete(got, "meta\x00raft_applied")
			if !maps.Equal(want, got) {
				rt.Fatalf("%s: buckets differ from the direct store's", name)
			}
			if !maps.Equal(storetest.Contents(t, direct), storetest.Contents(t, db)) {
				rt.Fatalf("%s: contents differ", name)
			}
		}
	})
}
