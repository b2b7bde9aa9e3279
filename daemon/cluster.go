package daemon

// The daemon as a cluster member (issue 14; R15, R20). Every node serves
// its operators' HTTP listener, the admin socket (reads from its own copy
// of the store) and the portal; only the leader acts: the IMAP ingest,
// the outbox, the escalation loop, scheduled backups and the credential
// watch run on the leader alone (runLoops). On gaining the leadership the
// node first waits for a Barrier (its store then holds every committed
// entry), makes the cluster's HMAC key if there is none, drops the pieces
// of a large transaction an earlier leader left unfinished, rebuilds the
// deadline index if the clocks changed, and only then starts the loops;
// on losing it, it stops the loops before anything else. Every write is
// a Raft entry (store.DB.SetReplicator): a decision counts as done, and
// its mail leaves the inbox, only once the cluster committed it.

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"deskd/internal/cluster"
	"deskd/store"
)

// openMember finishes Open for a cluster member: joins the cluster and
// prepares what needs no write.
func (d *Daemon) openMember(opts Options) error {
	cfg := *opts.Cluster
	if cfg.Log == nil {
		cfg.Log = d.log
	}
	d.ops.applyLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "deskd_cluster_apply_seconds",
		Help:    "Time from proposing a transaction's write set to its being applied on this leader (committed by a majority).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	onApply := cfg.OnApply
	cfg.OnApply = func(took time.Duration) {
		d.ops.applyLatency.Observe(took.Seconds())
		if onApply != nil {
			onApply(took) // a benchmark's
		}
	}
	node, err := cluster.Start(cfg, d.db)
	if err != nil {
		d.db.Close()
		return err
	}
	d.node = node
	d.ops.reg.MustRegister(d.ops.applyLatency, newClusterCollector(d))
	rt, err := d.newRuntime(opts)
	if err != nil {
		node.Close()
		d.db.Close()
		return err
	}
	d.rt.Store(rt)
	d.watchOAuth(opts)
	return nil
}

// acts says whether this daemon runs the loops that write: always on a
// single node, on the leader in a cluster.
func (d *Daemon) acts() bool { return d.node == nil || d.leading.Load() }

// runMember runs the loops while this node leads, until ctx ends. A
// leader that is asked to stop first hands the leadership over, so the
// cluster's ingest pauses for an election's time at most (R15).
func (d *Daemon) runMember(ctx context.Context, errc chan<- error) {
	leadership := d.node.Leadership()
	var stop context.CancelFunc
	done := make(chan struct{})
	stopLoops := func() {
		if stop != nil {
			stop()
			<-done
			stop = nil
			d.leading.Store(false)
		}
	}
	d.setStatus("cluster member: waiting for a leader")
	for {
		select {
		case <-ctx.Done():
			wasLeading := stop != nil
			stopLoops()
			if wasLeading && d.node.IsLeader() {
				d.log.Info("cluster: shutting down: handing the leadership over first")
				if err := d.node.TransferLeadership(""); err != nil {
					d.log.Warn("cluster: leadership transfer failed; stopping anyway", "err", err)
				}
			}
			if err := d.node.Close(); err != nil {
				d.log.Warn("cluster: stop", "err", err)
			}
			return
		case leading := <-leadership:
			if !leading {
				if stop != nil {
					d.log.Warn("cluster: leadership lost: stopping ingest, outbox, escalations and backups")
				}
				stopLoops()
				d.setStatus("cluster follower")
				continue
			}
			if stop != nil {
				continue
			}
			if err := d.becomeLeader(); err != nil {
				d.log.Error("cluster: cannot take up the leadership; handing it over", "err", err)
				_ = d.node.TransferLeadership("")
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			stop, done = cancel, make(chan struct{})
			d.health.reset() // the loops' heartbeats count from now
			d.leading.Store(true)
			d.log.Info("cluster: leader: starting ingest, outbox, escalations and backups")
			go func(done chan struct{}) {
				defer close(done)
				d.runLoops(lctx, errc)
			}(done)
		}
	}
}

// becomeLeader readies a new leader's store before any loop runs.
func (d *Daemon) becomeLeader() error {
	if err := d.node.Barrier(time.Minute); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	rt := d.rt.Load()
	if len(rt.hmacKey) == 0 {
		// The first leader of a new cluster makes the key every node
		// signs and verifies deskd's Message-IDs with.
		if err := d.db.Update(func(tx *store.Tx) error { _, err := tx.HMACKey(); return err }); err != nil {
			return fmt.Errorf("hmac key: %w", err)
		}
		nrt, err := d.newRuntime(rt.opts)
		if err != nil {
			return err
		}
		d.rt.Store(nrt)
	}
	// Pieces of a large transaction whose leader died before proposing
	// its last entry would stay forever: past the barrier no entry of an
	// earlier term can still commit, and this node has none in flight.
	var dropped int
	if err := d.db.Update(func(tx *store.Tx) (err error) {
		dropped, err = tx.DropChunkPieces()
		return err
	}); err != nil {
		return fmt.Errorf("leftover chunks: %w", err)
	}
	if dropped > 0 {
		d.log.Warn("cluster: dropped the pieces of a large transaction an earlier leader did not finish; its mail is still in the inbox", "pieces", dropped)
	}
	if err := d.reindexDeadlines(); err != nil {
		return fmt.Errorf("sla deadline index: %w", err)
	}
	return nil
}

// Cluster is the daemon's cluster node (nil for a single node).
func (d *Daemon) Cluster() *cluster.Node { return d.node }

// clusterHealth is /healthz's view of the cluster: a follower is healthy
// while it is in contact with a leader, and says how far behind it is.
func (d *Daemon) clusterHealth() (fact, problem string) {
	st := d.node.Status()
	switch {
	case st.State == "Leader":
		return fmt.Sprintf("cluster: leader %s, term %d, commit index %d", st.NodeID, st.Term, st.CommitIndex), ""
	case d.node.InContact():
		return fmt.Sprintf("cluster: follower of %s, last contact %s ago, %d entries behind", st.LeaderID, time.Since(st.LastContact).Round(time.Millisecond), st.Behind), ""
	case st.LeaderID == "":
		return "", fmt.Sprintf("cluster: %s, no leader known (no quorum reachable?)", st.State)
	default:
		return "", fmt.Sprintf("cluster: %s, no contact with the leader %s for %s", st.State, st.LeaderID, time.Since(st.LastContact).Round(time.Second))
	}
}

// followerNote is what the CLI prints when a follower answers from its
// own copy of the store.
func (d *Daemon) followerNote() string {
	if d.node == nil || d.node.IsLeader() {
		return ""
	}
	st := d.node.Status()
	if st.LeaderID == "" || st.LastContact.IsZero() {
		return fmt.Sprintf("answered by cluster node %s (%s) from its own copy: no leader known, it may be behind", st.NodeID, st.State)
	}
	return fmt.Sprintf("answered by cluster follower %s from its own copy: %d entries behind the leader %s, last contact %s ago", st.NodeID, st.Behind, st.LeaderID, time.Since(st.LastContact).Round(time.Millisecond))
}

// answerCluster serves the admin socket's cluster ops.
func (d *Daemon) answerCluster(req AdminRequest) (any, error) {
	if d.node == nil {
		return nil, fmt.Errorf("this deskd is not in a cluster (no cluster section)")
	}
	switch req.Op {
	case "cluster.status":
		return d.node.Status(), nil
	case "cluster.add-voter":
		return "ok", d.node.AddVoter(req.Node, req.Address)
	case "cluster.remove":
		return "ok", d.node.RemoveServer(req.Node)
	case "cluster.transfer":
		return "ok", d.node.TransferLeadership(req.Node)
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

// clusterCollector exports the node's Raft state on /metrics.
type clusterCollector struct {
	d                                              *Daemon
	state, term, commit, applied, contact, changes *prometheus.Desc
}

func newClusterCollector(d *Daemon) *clusterCollector {
	return &clusterCollector{
		d:       d,
		state:   prometheus.NewDesc("deskd_cluster_state", "1 for this node's Raft state (Leader, Follower, Candidate, Shutdown).", []string{"state"}, nil),
		term:    prometheus.NewDesc("deskd_cluster_term", "Current Raft term.", nil, nil),
		commit:  prometheus.NewDesc("deskd_cluster_commit_index", "Raft commit index as this node knows it.", nil, nil),
		applied: prometheus.NewDesc("deskd_cluster_applied_index", "Index of the last entry this node's store holds (committed to it, not only handed to it by Raft).", nil, nil),
		contact: prometheus.NewDesc("deskd_cluster_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader).", nil, nil),
		changes: prometheus.NewDesc("deskd_cluster_leader_changes_total", "Changes of leader this node has seen since it started.", nil, nil),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.term, c.commit, c.applied, c.contact, c.changes} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.d.node
	if n == nil {
		return
	}
	st := n.Status()
	for _, s := range []string{"Leader", "Follower", "Candidate", "Shutdown"} {
		v := 0.0
		if st.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(c.commit, prometheus.GaugeValue, float64(st.CommitIndex))
	ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(st.StoreIndex))
	contact := 0.0
	if st.State != "Leader" && !st.LastContact.IsZero() {
		contact = time.Since(st.LastContact).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.contact, prometheus.GaugeValue, contact)
	ch <- prometheus.MustNewConstMetric(c.changes, prometheus.CounterValue, float64(st.LeaderChanges))
}
