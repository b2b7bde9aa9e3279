package daemon

import (
	"context"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/internal/cluster"
	"deskd/internal/peers"
	"deskd/internal/storetest"
	"deskd/store"
)

// member is one daemon of an in-process cluster.
type member struct {
	d      *Daemon
	cancel context.CancelFunc
	done   chan error
}

// TestClusterMembers: three daemons form a cluster (plain TCP on
// loopback) in front of one in-process IMAP server and SMTP sink. Only
// the leader ingests and sends; every store ends the same; a follower's
// /healthz is healthy and names the leader, its /metrics has the Raft
// series, its read-only admin answers come from its own copy, and a write
// through it is refused naming the leader. Stopping the leader hands the
// work to another member, which goes on (issue 14).
func TestClusterMembers(t *testing.T) {
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
	var peerList []cluster.Peer
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peerList = append(peerList, cluster.Peer{ID: fmt.Sprintf("m%d", i+1), Address: ln.Addr().String()})
		ln.Close()
	}
	var mu sync.Mutex
	deciders := map[string]int{}
	var members []*member
	for i, p := range peerList {
		dir := t.TempDir()
		opts := testOptions(t, imapSrv, smtpSrv, dir)
		opts.HTTPListen = "127.0.0.1:0"
		opts.Cluster = &cluster.Config{NodeID: p.ID, Bind: p.Address, Peers: peerList, Dir: filepath.Join(dir, "raft")}
		id := peerList[i].ID
		opts.OnDecision = func(Report) { mu.Lock(); deciders[id]++; mu.Unlock() }
		d, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{d: d, cancel: cancel, done: make(chan error, 1)}
		go func() { m.done <- d.Run(ctx) }()
		members = append(members, m)
	}
	stop := func(m *member) {
		if m.cancel == nil {
			return
		}
		m.cancel()
		m.cancel = nil
		select {
		case err := <-m.done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		for _, m := range members {
			stop(m)
		}
	})
	leader := func(except *member) *member {
		var l *member
		waitCond(t, "a leader that acts", func() bool {
			for _, m := range members {
				if m != except && m.d.acts() {
					l = m
					return true
				}
			}
			return false
		})
		return l
	}
	l := leader(nil)
	for i := range 5 {
		if err := imapSrv.Deliver("INBOX", []byte(strings.ReplaceAll(question(fmt.Sprintf("<c%d@jansen.example>", i), "anna@jansen.example", fmt.Sprintf("Vraag %d", i), ""), "\n", "\r\n")), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	waitCond(t, "five decisions and acknowledgements", func() bool { return imapSrv.Count("INBOX") == 0 && len(smtpSrv.Mails()) == 5 })
	mu.Lock()
	if len(deciders) != 1 || deciders[l.d.node.Status().NodeID] != 5 {
		t.Errorf("decisions per member %v, want all 5 by the leader %s", deciders, l.d.node.Status().NodeID)
	}
	mu.Unlock()

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
