package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"deskd/cases"
	"deskd/internal/gen"
	"deskd/internal/storetest"
	"deskd/store"
)

// testNode is one member of a cluster on loopback, with its own store.
type testNode struct {
	id, addr, dir string
	db            *store.DB
	node          *Node
	part          *Partition
}

type testCluster struct {
	t     *testing.T
	nodes []*testNode
	peers []Peer
	certs string
	// tweak adjusts each node's Config before Start.
	tweak func(*Config)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newCluster starts n nodes with mutual TLS and waits for a leader.
func newCluster(t *testing.T, n int, tweak func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, certs: t.TempDir(), tweak: tweak}
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("n%d", i+1))
	}
	// Certificates for two spare nodes too (added later by some tests).
	if err := WriteTestCertificates(c.certs, append(names, "n4", "n5")...); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		tn := &testNode{id: name, addr: freeAddr(t), dir: t.TempDir()}
		c.nodes = append(c.nodes, tn)
		c.peers = append(c.peers, Peer{ID: tn.id, Address: tn.addr})
	}
	for _, tn := range c.nodes {
		c.start(tn, c.peers)
	}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			if tn.node != nil {
				tn.node.Close()
			}
			tn.db.Close()
		}
	})
	c.leader()
	return c
}

func (c *testCluster) start(tn *testNode, peers []Peer) {
	c.t.Helper()
	if tn.db == nil {
		db, err := store.Open(filepath.Join(tn.dir, "deskd.db"), store.Options{})
		if err != nil {
			c.t.Fatal(err)
		}
		tn.db = db
	}
	tlsCfg, err := LoadTLS(filepath.Join(c.certs, tn.id+".pem"), filepath.Join(c.certs, tn.id+"-key.pem"), filepath.Join(c.certs, "ca.pem"))
	if err != nil {
		c.t.Fatal(err)
	}
	if tn.part == nil {
		tn.part = &Partition{}
	}
	cfg := Config{
		NodeID: tn.id, Bind: tn.addr, Peers: peers, TLS: tlsCfg, Dir: filepath.Join(tn.dir, "raft"),
		WrapStream: tn.part.Wrap,
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	node, err := Start(cfg, tn.db)
	if err != nil {
		c.t.Fatal(err)
	}
	tn.node = node
}

// waitFor polls cond (no timing assertion: the deadline only ends a hung
// test).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader waits for one running node to lead and returns it.
func (c *testCluster) leader(except ...*testNode) *testNode {
	c.t.Helper()
	var l *testNode
	waitFor(c.t, "a leader", func() bool {
	nodes:
		for _, tn := range c.nodes {
			for _, e := range except {
				if e == tn {
					continue nodes
				}
			}
			if tn.node != nil && tn.node.IsLeader() {
				l = tn
				return true
			}
		}
		return false
	})
	return l
}

// converged waits until every running node applied the leader's last
// entry and compares their stores byte for byte.
func (c *testCluster) converged(l *testNode) {
	c.t.Helper()
	if err := l.node.Barrier(30 * time.Second); err != nil {
		c.t.Fatal(err)
	}
	want, err := l.db.ReplicatedIndex()
	if err != nil {
		c.t.Fatal(err)
	}
	wantBuckets := storetest.Buckets(c.t, l.db)
	for _, tn := range c.nodes {
		if tn.node == nil || tn == l {
			continue
		}
		waitFor(c.t, tn.id+" to apply", func() bool {
			n, err := tn.db.ReplicatedIndex()
			return err == nil && n >= want
		})
		if got := storetest.Buckets(c.t, tn.db); !maps.Equal(wantBuckets, got) {
			c.t.Fatalf("%s's store differs from the leader %s's", tn.id, l.id)
		}
		if !maps.Equal(storetest.Contents(c.t, l.db), storetest.Contents(c.t, tn.db)) {
			c.t.Fatalf("%s's cases differ from the leader's", tn.id)
		}
	}
}

var genEnd = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// generate decides cases cases with the real engine on db (internal/gen),
// batch per transaction, starting at seed.
func generate(t *testing.T, db *store.DB, n, batch int, seed uint64) error {
	t.Helper()
	_, err := gen.Generate(context.Background(), db, gen.Options{Cases: n, Customers: 5, Batch: batch, Seed: seed, End: genEnd, OpenShare: 0.2})
	return err
}

func countCases(t *testing.T, db *store.DB) int {
	t.Helper()
	n := 0
	err := db.View(func(tx *store.Tx) error {
		return tx.ForEachCase("", func(*cases.Case) error { n++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplicateAndFollowersRefuse: decisions on the leader reach every
// node byte for byte; a follower refuses writes and names the leader.
func TestReplicateAndFollowersRefuse(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	if err := generate(t, l.db, 30, 4, 1); err != nil {
		t.Fatal(err)
	}
	c.converged(l)
	for _, tn := range c.nodes {
		if tn == l {
			continue
		}
		if n := countCases(t, tn.db); n != 30 {
			t.Fatalf("%s has %d cases, want 30", tn.id, n)
		}
		err := tn.db.Update(func(tx *store.Tx) error { return tx.SetCheckpoint("INBOX", 1, 1) })
		var nl *NotLeaderError
		if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nl) || nl.LeaderID != l.id {
			t.Fatalf("write on follower %s: %v, want not-leader naming %s", tn.id, err, l.id)
		}
		st := tn.node.Status()
		if st.State != "Follower" || st.LeaderID != l.id || !tn.node.InContact() {
			t.Fatalf("follower status %+v", st)
		}
	}
}

// TestFailoverAndRejoin: the leader stops; another takes over and goes
// on; the old one restarts from its own store and Raft log and catches up
// without applying anything twice.
func TestFailoverAndRejoin(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.leader()
	if err := generate(t, old.db, 10, 3, 1); err != nil {
		t.Fatal(err)
	}
	old.node.Close()
	old.node = nil
	l := c.leader(old)
	// The new leader goes on where the old one stopped: gen numbers its
	// cases from the store's next id.
	if err := generate(t, l.db, 10, 3, 2); err != nil {
		t.Fatal(err)
	}
	c.start(old, c.peers)
	c.converged(l)
	if n := countCases(t, old.db); n != 20 {
		t.Fatalf("rejoined node has %d cases, want 20", n)
	}
}

// TestLargeWriteSetInChunks: a write set above max_entry_bytes goes as
// several entries and lands whole, with no chunk left behind.
func TestLargeWriteSetInChunks(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.MaxEntryBytes = 8 << 10 })
	l := c.leader()
	before := l.node.Status().CommitIndex
	if err := generate(t, l.db, 20, 20, 3); err != nil { // one transaction of ~20 mails
		t.Fatal(err)
	}
	if after := l.node.Status().CommitIndex; after-before < 3 {
		t.Fatalf("one large transaction took %d entries, want it split", after-before)
	}
	c.converged(l)
	for _, tn := range c.nodes {
		for k := range storetest.Buckets(t, tn.db) {
			if len(k) >= len("cluster_chunk") && k[:len("cluster_chunk")] == "cluster_chunk" {
				t.Fatalf("%s: chunk left behind: %q", tn.id, k)
			}
		}
	}
}

// TestSnapshotToNewNode: a node added after the log was compacted gets
// the store as a snapshot (the hot copy) and then the entries after it.
func TestSnapshotToNewNode(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 5
		cfg.TrailingLogs = 2
	})
	l := c.leader()
	if err := generate(t, l.db, 20, 2, 4); err != nil {
		t.Fatal(err)
	}
	if err := l.node.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{id: "n4", addr: freeAddr(t), dir: t.TempDir()}
	c.nodes = append(c.nodes, tn)
	c.start(tn, nil) // no bootstrap: it joins
	if err := l.node.AddVoter(tn.id, tn.addr); err != nil {
		t.Fatal(err)
	}
	if err := generate(t, l.db, 5, 2, 5); err != nil {
		t.Fatal(err)
	}
	c.converged(l)
	if n := countCases(t, tn.db); n != 25 {
		t.Fatalf("new node has %d cases, want 25", n)
	}
}

// TestPartitionedLeaderStops: a leader cut off from the others stops
// being leader within its lease and its writes fail; the majority elects
// another and goes on; healed, the old leader takes the majority's store.
// Nothing is decided twice: the cases are numbered without gaps or
// doubles on every node.
func TestPartitionedLeaderStops(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.leader()
	if err := generate(t, old.db, 5, 1, 6); err != nil {
		t.Fatal(err)
	}
	old.part.Cut(true)
	waitFor(t, "the cut-off leader to step down", func() bool { return !old.node.IsLeader() })
	err := old.db.Update(func(tx *store.Tx) error { return tx.SetCheckpoint("INBOX", 1, 99) })
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write on the cut-off node: %v", err)
	}
	l := c.leader(old)
	if err := generate(t, l.db, 5, 1, 7); err != nil {
		t.Fatal(err)
	}
	old.part.Cut(false)
	c.converged(l)
	if n := countCases(t, old.db); n != 10 {
		t.Fatalf("healed node has %d cases, want 10", n)
	}
}

// TestRestoredClusterNewLog: every node stopped, the Raft directories
// emptied (a cluster restored from one backup): the nodes bootstrap a new
// log on their stores and its entries are applied, not skipped as already
// held.
func TestRestoredClusterNewLog(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	if err := generate(t, l.db, 10, 2, 8); err != nil {
		t.Fatal(err)
	}
	c.converged(l)
	for _, tn := range c.nodes {
		tn.node.Close()
		tn.node = nil
		if err := os.RemoveAll(filepath.Join(tn.dir, "raft")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range c.nodes {
		c.start(tn, c.peers)
	}
	l = c.leader()
	if err := generate(t, l.db, 10, 2, 9); err != nil {
		t.Fatal(err)
	}
	c.converged(l)
	for _, tn := range c.nodes {
		if n := countCases(t, tn.db); n != 20 {
			t.Fatalf("%s has %d cases after the new log, want 20", tn.id, n)
		}
	}
}
