package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/hashicorp/raft"

	"deskd/export"
	"deskd/internal/cluster"
	"deskd/internal/crashtest"
	"deskd/internal/peers"
	"deskd/internal/storetest"
	"deskd/store"
)

// member is one daemon of an in-process cluster.
type member struct {
	d      *Daemon
	part   *cluster.Partition
	cancel context.CancelFunc
	done   chan error
}

// testCluster is three daemons in this process forming a cluster (plain
// TCP on loopback, each transport behind a cluster.Partition) in front of
// one in-process IMAP server and SMTP sink. decided counts, per member,
// the mails it decided (a recognised duplicate is not a decision).
type testCluster struct {
	t       *testing.T
	imap    *peers.IMAP
	smtp    *peers.SMTP
	members []*member
	mu      sync.Mutex
	decided map[*member]int
}

func newTestCluster(t *testing.T, tune func(*Options)) *testCluster {
	imapSrv, err := peers.StartIMAP(support, "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imapSrv.Close() })
	smtpSrv, err := peers.StartSMTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtpSrv.Close() })
	c := &testCluster{t: t, imap: imapSrv, smtp: smtpSrv, decided: map[*member]int{}}
	var peerList []cluster.Peer
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peerList = append(peerList, cluster.Peer{ID: fmt.Sprintf("m%d", i+1), Address: ln.Addr().String()})
		ln.Close()
	}
	for _, p := range peerList {
		dir := t.TempDir()
		opts := testOptions(t, imapSrv, smtpSrv, dir)
		opts.HTTPListen = "127.0.0.1:0"
		m := &member{part: &cluster.Partition{}, done: make(chan error, 1)}
		opts.Cluster = &cluster.Config{NodeID: p.ID, Bind: p.Address, Peers: peerList, Dir: filepath.Join(dir, "raft"), WrapStream: m.part.Wrap}
		opts.OnDecision = func(r Report) {
			if r.Decision != "duplicate" {
				c.mu.Lock()
				c.decided[m]++
				c.mu.Unlock()
			}
		}
		if tune != nil {
			tune(&opts)
		}
		d, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m.d, m.cancel = d, cancel
		go func() { m.done <- d.Run(ctx) }()
		c.members = append(c.members, m)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			c.stop(m)
		}
	})
	return c
}

func (c *testCluster) stop(m *member) {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	select {
	case err := <-m.done:
		if err != nil {
			c.t.Errorf("daemon: %v", err)
		}
	case <-time.After(30 * time.Second):
		c.t.Error("daemon did not stop within 30s")
	}
}

// leader waits for a member other than except that acts as the leader.
func (c *testCluster) leader(except *member) *member {
	var l *member
	waitCond(c.t, "a leader that acts", func() bool {
		for _, m := range c.members {
			if m != except && m.d.acts() {
				l = m
				return true
			}
		}
		return false
	})
	return l
}

func (c *testCluster) decisions(m *member) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decided[m]
}

// converged waits until every member but skip has applied what the leader
// l has, and checks that their stores are byte for byte l's.
func (c *testCluster) converged(l *member, skip *member) {
	c.t.Helper()
	if err := l.d.node.Barrier(10 * time.Second); err != nil {
		c.t.Fatal(err)
	}
	want, _ := l.d.db.ReplicatedIndex()
	ref := storetest.Buckets(c.t, l.d.db)
	for _, m := range c.members {
		if m == l || m == skip {
			continue
		}
		waitCond(c.t, "a member to apply the leader's entries", func() bool { n, _ := m.d.db.ReplicatedIndex(); return n >= want })
		if !maps.Equal(ref, storetest.Buckets(c.t, m.d.db)) {
			c.t.Errorf("%s's store differs from the leader's", m.d.node.Status().NodeID)
		}
	}
}

// TestClusterMembers: three daemons form a cluster (testCluster). Only
// the leader ingests and sends; every store ends the same; a follower's
// /healthz is healthy and names the leader, its /metrics has the Raft
// series, its read-only admin answers come from its own copy, and a write
// through it is refused naming the leader. Stopping the leader hands the
// work to another member, which goes on (issue 14).
func TestClusterMembers(t *testing.T) {
	c := newTestCluster(t, nil)
	imapSrv, smtpSrv, members := c.imap, c.smtp, c.members
	stop, leader := c.stop, c.leader
	l := leader(nil)
	for i := range 5 {
		if err := imapSrv.Deliver("INBOX", []byte(strings.ReplaceAll(question(fmt.Sprintf("<c%d@jansen.example>", i), "anna@jansen.example", fmt.Sprintf("Vraag %d", i), ""), "\n", "\r\n")), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	waitCond(t, "five decisions and acknowledgements", func() bool { return imapSrv.Count("INBOX") == 0 && len(smtpSrv.Mails()) == 5 })
	if n := c.decisions(l); n != 5 {
		t.Errorf("the leader decided %d mails, want all 5", n)
	}

	applied, _ := l.d.db.ReplicatedIndex()
	for _, m := range members {
		if m == l {
			continue
		}
		waitCond(t, "the follower to apply the five", func() bool { n, _ := m.d.db.ReplicatedIndex(); return n >= applied })
		url := "http://" + m.d.HTTPAddr()
		code, body := httpDo(t, "GET", url+"/healthz")
		if code != 200 || !strings.Contains(body, "cluster: follower of "+l.d.node.Status().NodeID) {
			t.Errorf("follower /healthz: %d %q", code, body)
		}
		_, metrics := httpDo(t, "GET", url+"/metrics")
		for _, want := range []string{`deskd_cluster_state{state="Follower"} 1`, "deskd_cluster_term ", "deskd_cluster_applied_index ", "deskd_cluster_leader_changes_total "} {
			if !strings.Contains(metrics, want) {
				t.Errorf("follower /metrics lacks %s", want)
			}
		}
		var n int
		err := AdminCall(m.d.rt.Load().opts.AdminSocket, AdminRequest{Op: "portal.revoke", Session: "anna@jansen.example"}, &n)
		if err == nil || !strings.Contains(err.Error(), "the leader is "+l.d.node.Status().NodeID) {
			t.Errorf("write through a follower's admin socket: %v, want refused naming the leader", err)
		}
		// The streamed listing says, as the short answers do, that it
		// comes from a follower's copy.
		end, err := AdminClient{Socket: m.d.rt.Load().opts.AdminSocket}.ListCases("all", 0, 0, func([]byte) error { return nil })
		if err != nil || end.Count != 5 || !strings.Contains(end.Note, "answered by cluster follower") {
			t.Errorf("follower cases.list: %+v %v, want 5 cases and the follower's note", end, err)
		}
		// So do a backup and an export streamed from a follower.
		var notes bytes.Buffer
		client := AdminClient{Socket: m.d.rt.Load().opts.AdminSocket, Notes: &notes}
		var backup bytes.Buffer
		if info, err := client.Backup(&backup, store.CompressionNone); err != nil || info.Size != int64(backup.Len()) {
			t.Errorf("follower backup: %+v %v", info, err)
		}
		if !strings.Contains(notes.String(), "answered by cluster follower") {
			t.Errorf("follower backup: note %q, want the follower's", notes.String())
		}
		notes.Reset()
		files := map[string]*bytes.Buffer{}
		st, err := client.Export(context.Background(), ExportArgs{Selection: export.Selection{All: true}, Now: time.Now()}, exportFiles(files), nil, nil)
		if err != nil || st.Cases != 5 || files["index.json"] == nil {
			t.Errorf("follower export: %+v %v, %d files", st, err, len(files))
		}
		if !strings.Contains(notes.String(), "answered by cluster follower") {
			t.Errorf("follower export: note %q, want the follower's", notes.String())
		}
		var det CaseDetail
		if err := AdminCall(m.d.rt.Load().opts.AdminSocket, AdminRequest{Op: "cases.show", ID: 5}, &det); err != nil || det.ID != 5 {
			t.Errorf("follower cases.show 5: %+v %v", det.ID, err)
		}
	}
	_, metrics := httpDo(t, "GET", "http://"+l.d.HTTPAddr()+"/metrics")
	if !strings.Contains(metrics, `deskd_cluster_state{state="Leader"} 1`) || !strings.Contains(metrics, "deskd_cluster_apply_seconds_count ") {
		t.Error("leader /metrics lacks its state or the apply histogram")
	}

	// The leader commits the first pieces of a large transaction and
	// stops before its last entry (as if it died mid-split): the next
	// leader drops them.
	pieces := store.WriteSet(append([]byte{1}, make([]byte, 3000)...)).Split(1000, 99)
	for _, p := range pieces[:2] {
		if err := l.d.node.Replicate(p); err != nil {
			t.Fatal(err)
		}
	}
	if !hasChunks(t, l.d.db) {
		t.Fatal("the pieces are not in the leader's store")
	}

	// The leader stops (a rolling upgrade): another member takes over and
	// ingests.
	stop(l)
	nl := leader(l)
	if err := imapSrv.Deliver("INBOX", []byte(strings.ReplaceAll(question("<c9@acme.example>", "bob@acme.example", "Another question", ""), "\n", "\r\n")), time.Now()); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "the new leader's decision", func() bool { return imapSrv.Count("INBOX") == 0 && len(smtpSrv.Mails()) == 6 })
	if err := nl.d.node.Barrier(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	want, _ := nl.d.db.ReplicatedIndex()
	for _, m := range members {
		if m == l || m == nl {
			continue
		}
		waitCond(t, "the follower to apply", func() bool { n, _ := m.d.db.ReplicatedIndex(); return n >= want })
		if !maps.Equal(storetest.Buckets(t, nl.d.db), storetest.Buckets(t, m.d.db)) {
			t.Error("the follower's store differs from the new leader's")
		}
		if hasChunks(t, m.d.db) || hasChunks(t, nl.d.db) {
			t.Error("the pieces of the unfinished transaction were left behind")
		}
	}
}

// hasChunks says whether db holds pieces of a split write set.
func hasChunks(t *testing.T, db *store.DB) bool {
	for k := range storetest.Buckets(t, db) {
		if strings.HasPrefix(k, "cluster_chunk") {
			return true
		}
	}
	return false
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// TestClusterPartition (issue 14): the leader is cut off from the other
// two (its Raft transport behind cluster.Partition) while a backlog is
// being ingested. It steps down within its lease and stops its loops;
// from then on it decides nothing (its decisions could not be committed:
// the mail it held stays in the inbox). The other two elect a leader that
// goes on and decides the rest. Nothing is decided twice: every message
// in exactly one case, one distinct acknowledgement per case, and the
// decisions reported add up to the mails. Healed, the old leader takes
// the majority's log: every store byte for byte the same.
func TestClusterPartition(t *testing.T) {
	c := newTestCluster(t, func(o *Options) { o.Policy.AutoPerHour, o.Policy.AutoPerDay = 1000, 1000 })
	old := c.leader(nil)
	const first, total = 5, 30
	deliver := func(from, to int) {
		for i := from; i < to; i++ {
			addr := []string{"anna@jansen.example", "bob@acme.example"}[i%2]
			if err := c.imap.Deliver("INBOX", []byte(strings.ReplaceAll(question(fmt.Sprintf("p%d@klant.example", i), addr, fmt.Sprintf("Vraag %d", i), ""), "\n", "\r\n")), time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	deliver(0, first)
	waitCond(t, "the leader to decide the first mails", func() bool { return c.decisions(old) == first && c.imap.Count("INBOX") == 0 })
	// Cut off, the leader still believes it leads for up to its lease,
	// and the rest of the backlog arrives at once: it fetches, decides
	// and proposes, but nothing it proposes can be committed now.
	old.part.Cut(true)
	cutAt := time.Now()
	deliver(first, total)
	waitCond(t, "the cut-off leader to stop its loops", func() bool { return !old.d.acts() })
	// acts() turns false once its loops have returned: no decision of
	// the old leader can come after this point.
	decidedByOld := c.decisions(old)
	t.Logf("the cut-off leader stopped ingesting %s after the cut (leader lease %s), having decided %d", time.Since(cutAt).Round(time.Millisecond), raft.DefaultConfig().LeaderLeaseTimeout, decidedByOld)
	if old.d.node.IsLeader() {
		t.Error("the cut-off node still says it leads")
	}
	err := AdminCall(old.d.rt.Load().opts.AdminSocket, AdminRequest{Op: "portal.revoke", Session: "anna@jansen.example"}, new(int))
	if err == nil || !strings.Contains(err.Error(), "not the cluster leader") {
		t.Errorf("a write on the cut-off node: %v, want refused", err)
	}

	nl := c.leader(old)
	waitCond(t, "the majority to decide the rest", func() bool { return c.imap.Count("INBOX") == 0 && c.imap.Count("Processed") == total })
	if n := c.decisions(old); n != decidedByOld {
		t.Errorf("the cut-off node decided %d mails after it stopped, want none", n-decidedByOld)
	}
	if n := c.decisions(nl); n == 0 {
		t.Error("the majority's leader decided nothing")
	}
	sum := 0
	for _, m := range c.members {
		sum += c.decisions(m)
	}
	if sum != total {
		t.Errorf("%d decisions reported for %d mails", sum, total)
	}

	old.part.Cut(false)
	l := c.leader(nil)
	waitCond(t, "every acknowledgement sent", func() bool { return len(c.smtp.Mails()) >= total })
	waitCond(t, "the outbox drained", func() bool {
		q := -1
		_ = l.d.db.View(func(tx *store.Tx) (err error) { q, _, err = tx.OutboxStats(time.Now()); return err })
		return q == 0
	})
	c.converged(l, nil)
	acks := map[uint64]map[string]bool{}
	for _, m := range c.smtp.Mails() {
		msg, err := gomail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := msg.Header.MessageID()
		if caseID, ok := crashtest.CaseFromMessageID(id, "example.test"); ok {
			if acks[caseID] == nil {
				acks[caseID] = map[string]bool{}
			}
			acks[caseID][id] = true
		}
	}
	err = l.d.db.View(func(tx *store.Tx) error {
		cs, msgs, err := crashtest.EachMessageOnce(t, tx, acks, nil)
		if err == nil && (cs != total || msgs != total) {
			t.Errorf("%d cases holding %d messages, want %d and %d", cs, msgs, total, total)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// exportFiles is an export.Destination keeping each file in memory.
type exportFiles map[string]*bytes.Buffer

func (f exportFiles) Create(name string) (io.Writer, error) {
	b := new(bytes.Buffer)
	f[name] = b
	return b, nil
}
