// Package cluster makes a deskd node one member of a Raft cluster (issue
// 14; R15, R20) on github.com/hashicorp/raft with
// github.com/hashicorp/raft-boltdb/v2 as its log and stable store.
//
// The replicated state machine is the deskd store itself. A Node is the
// store's Replicator: every store Update on the leader runs in recording
// mode and its write set (store.WriteSet) becomes one Raft entry; the FSM
// applies committed entries to the store of every node, the leader's
// included, in one bbolt transaction per batch, and Update returns only
// once the entry is committed and applied here. A write set larger than
// MaxEntryBytes goes as several entries that take effect together with
// the last (store.WriteSet.Split). Snapshots are the store's hot-copy
// backup; a follower too far behind gets one and swaps it in
// (store.DB.ReplaceWith).
//
// Nodes talk TCP with mutual TLS (Config.TLS); plain TCP only between
// loopback addresses (check-config refuses anything else).
package cluster

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"deskd/store"
)

// Peer is one voter of the initial cluster.
type Peer struct {
	ID      string
	Address string // host:port the others dial
}

// DefaultMaxEntryBytes is cluster.max_entry_bytes' default: a log entry
// of this size takes a few milliseconds on a LAN, well inside a heartbeat.
const DefaultMaxEntryBytes = 512 << 10

// Config of a node.
type Config struct {
	NodeID string
	// Bind is the address the node listens on; Advertise the one the
	// others dial (Bind when empty).
	Bind, Advertise string
	// Peers are the voters of the initial cluster, this node included:
	// a node with no Raft state yet bootstraps with them.
	Peers []Peer
	// TLS, for mutual TLS: the node's certificate, the CA that signs
	// every node's, client certificates required. nil is plain TCP.
	TLS *tls.Config
	// Dir holds the Raft log (raft.db) and snapshots.
	Dir string
	// MaxEntryBytes bounds one log entry (DefaultMaxEntryBytes if 0).
	MaxEntryBytes int
	Log           *slog.Logger
	// Timing of the Raft protocol; zero values are the defaults below.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// SnapshotThreshold and SnapshotInterval: how often the log is
	// compacted into a snapshot (a full copy of the store).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// TrailingLogs is how many entries a snapshot leaves in the log
	// (raft's default when 0).
	TrailingLogs uint64
	// WrapStream, in tests only, wraps the transport's connections (a
	// network partition).
	WrapStream func(raft.StreamLayer) raft.StreamLayer
	// OnApply, if set, is told how long each Replicate took (the apply
	// latency: proposal to applied here).
	OnApply func(time.Duration)
}

// Node is a running cluster member.
type Node struct {
	cfg   Config
	db    *store.DB
	fsm   *fsm
	raft  *raft.Raft
	logs  *raftboltdb.BoltStore
	trans *raft.NetworkTransport
	log   *slog.Logger

	leaderChanges atomic.Uint64
	barrierTerm   atomic.Uint64 // the term whose barrier this leader passed
	obsCh         chan raft.Observation
	observer      *raft.Observer
	notify        chan bool
	mu            sync.Mutex
	watchers      []chan bool
	done          chan struct{}
	wg            sync.WaitGroup
}

// ErrNotLeader is returned by writes on a node that is not the leader.
var ErrNotLeader = errors.New("not the cluster leader")

// NotLeaderError names the leader a write should go to.
type NotLeaderError struct{ LeaderID, LeaderAddr string }

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the cluster leader, and no leader is known (no quorum?)"
	}
	return fmt.Sprintf("not the cluster leader; the leader is %s (%s)", e.LeaderID, e.LeaderAddr)
}

func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Start opens the node's Raft state in cfg.Dir (bootstrapping a new
// cluster from cfg.Peers when there is none), joins the cluster and makes
// itself db's Replicator. db must be open and not yet shared.
func Start(cfg Config, db *store.DB) (*Node, error) {
	if cfg.NodeID == "" || cfg.Bind == "" || cfg.Dir == "" {
		return nil, errors.New("cluster: node_id, bind and dir are required")
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Bind
	}
	if cfg.MaxEntryBytes <= 0 {
		cfg.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n := &Node{cfg: cfg, db: db, log: cfg.Log.With("node", cfg.NodeID), done: make(chan struct{})}
	applied, err := db.ReplicatedIndex()
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("cluster: raft log: %w", err)
	}
	n.logs = logs
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hlog)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("cluster: snapshots: %w", err)
	}
	stream, err := listen(cfg)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var sl raft.StreamLayer = stream
	if cfg.WrapStream != nil {
		sl = cfg.WrapStream(sl)
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: sl, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	setDur(&rc.HeartbeatTimeout, cfg.HeartbeatTimeout)
	setDur(&rc.ElectionTimeout, cfg.ElectionTimeout)
	setDur(&rc.LeaderLeaseTimeout, cfg.LeaderLeaseTimeout)
	rc.SnapshotThreshold = 16384
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	rc.SnapshotInterval = 10 * time.Minute
	setDur(&rc.SnapshotInterval, cfg.SnapshotInterval)
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	// The store keeps itself across restarts and knows which entry it
	// holds last (store.DB.ApplyReplicated), so a restart must not
	// overwrite it with the older snapshot; but a store behind the
	// newest snapshot (replaced by hand) needs that snapshot first.
	if metas, err := snaps.List(); err == nil && (len(metas) == 0 || metas[0].Index <= applied) {
		rc.NoSnapshotRestoreOnStart = true
	}
	n.notify = make(chan bool, 16)
	rc.NotifyCh = n.notify

	existing, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		n.closeTransport()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !existing && applied > 0 {
		// A store from another log (restored from a backup, the Raft
		// directory emptied): the new log is applied from its start.
		if err := db.ForgetReplicatedIndex(); err != nil {
			n.closeTransport()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		applied = 0
		rc.NoSnapshotRestoreOnStart = true
	}
	n.fsm = &fsm{db: db, log: n.log}
	n.fsm.applied.Store(applied)
	r, err := raft.NewRaft(rc, n.fsm, logs, logs, snaps, n.trans)
	if err != nil {
		n.closeTransport()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.raft = r
	if !existing {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
		}
		if len(servers) > 0 {
			if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				n.Close()
				return nil, fmt.Errorf("cluster: bootstrap: %w", err)
			}
		}
	}
	n.obsCh = make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(n.observer)
	n.wg.Add(1)
	go n.watch()
	db.SetReplicator(n)
	return n, nil
}

func setDur(d *time.Duration, v time.Duration) {
	if v > 0 {
		*d = v
	}
}

// watch logs every change of leader and passes this node's own gains
// and losses of leadership to the watchers (Leadership).
func (n *Node) watch() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case o := <-n.obsCh:
			lo := o.Data.(raft.LeaderObservation)
			n.leaderChanges.Add(1)
			if lo.LeaderID == "" {
				n.log.Warn("cluster: no leader", "term", n.raft.CurrentTerm())
			} else {
				n.log.Info("cluster: leader elected", "leader", string(lo.LeaderID), "address", string(lo.LeaderAddr), "term", n.raft.CurrentTerm())
			}
		case leading := <-n.notify:
			if leading {
				n.log.Info("cluster: this node is the leader", "term", n.raft.CurrentTerm())
			} else {
				n.log.Warn("cluster: this node lost the leadership", "term", n.raft.CurrentTerm())
			}
			n.mu.Lock()
			for _, w := range n.watchers {
				select {
				case w <- leading:
				default:
					// A watcher that has not read the last change
					// gets the newest state instead.
					select {
					case <-w:
					default:
					}
					w <- leading
				}
			}
			n.mu.Unlock()
		}
	}
}

// Leadership returns a channel that receives true when this node becomes
// the leader and false when it stops being one. A slow reader sees the
// latest state, never a stale one. Before acting as leader, call Barrier.
func (n *Node) Leadership() <-chan bool {
	ch := make(chan bool, 1)
	n.mu.Lock()
	n.watchers = append(n.watchers, ch)
	n.mu.Unlock()
	if n.IsLeader() {
		select {
		case ch <- true:
		default:
		}
	}
	return ch
}

// IsLeader says whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader is the current leader's id and address ("" when none is known).
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Barrier waits until every entry committed before it is applied to this
// node's store: a new leader calls it before acting on its store.
func (n *Node) Barrier(timeout time.Duration) error {
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		return n.leaderError(err)
	}
	return nil
}

// Ready is store.Replicator's check before a transaction is recorded: on
// a follower it refuses with a NotLeaderError; on a leader, the first time
// in its term, it waits for a barrier, so that the transaction reads a
// store that holds every committed entry (a new leader may not have
// applied them all yet).
func (n *Node) Ready() error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	term := n.raft.CurrentTerm()
	if n.barrierTerm.Load() == term {
		return nil
	}
	if err := n.raft.Barrier(0).Error(); err != nil {
		return n.leaderError(err)
	}
	n.barrierTerm.Store(term)
	return nil
}

// Replicate commits ws through Raft and returns once it is applied to this
// node's store (store.Replicator). On a follower it refuses with a
// NotLeaderError. An error after the proposal (leadership lost meanwhile)
// means the entry may or may not be committed: the caller's work is not
// done, and whoever does it next finds it in the store or not.
func (n *Node) Replicate(ws store.WriteSet) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	start := time.Now()
	parts := []store.WriteSet{ws}
	if len(ws) > n.cfg.MaxEntryBytes {
		var id [8]byte
		if _, err := rand.Read(id[:]); err != nil {
			return err
		}
		parts = ws.Split(n.cfg.MaxEntryBytes, binary.BigEndian.Uint64(id[:]))
	}
	// Propose every part before waiting: Raft sends them in batches.
	futures := make([]raft.ApplyFuture, len(parts))
	for i, p := range parts {
		futures[i] = n.raft.Apply(encodeEntry(p), 0)
	}
	var err error
	for _, f := range futures {
		if ferr := f.Error(); ferr != nil && err == nil {
			err = n.leaderError(ferr)
		} else if rerr, ok := f.Response().(error); ok && rerr != nil && err == nil {
			err = rerr
		}
	}
	if err == nil && n.cfg.OnApply != nil {
		n.cfg.OnApply(time.Since(start))
	}
	return err
}

func (n *Node) notLeader() error {
	id, addr := n.Leader()
	return &NotLeaderError{LeaderID: id, LeaderAddr: addr}
}

func (n *Node) leaderError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return fmt.Errorf("%w (%v)", n.notLeader(), err)
	}
	return fmt.Errorf("cluster: %w", err)
}

// TransferLeadership hands the leadership to another voter (to id when
// given, else the most up-to-date) and waits for it.
func (n *Node) TransferLeadership(id string) error {
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		addr := ""
		for _, s := range n.servers() {
			if string(s.ID) == id {
				addr = string(s.Address)
			}
		}
		if addr == "" {
			return fmt.Errorf("cluster: no server %q", id)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr))
	}
	if err := f.Error(); err != nil {
		return n.leaderError(err)
	}
	return nil
}

// AddVoter adds a voter (or changes its address); leader only.
func (n *Node) AddVoter(id, addr string) error {
	if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 30*time.Second).Error(); err != nil {
		return n.leaderError(err)
	}
	return nil
}

// RemoveServer removes a server from the cluster; leader only.
func (n *Node) RemoveServer(id string) error {
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 30*time.Second).Error(); err != nil {
		return n.leaderError(err)
	}
	return nil
}

func (n *Node) servers() []raft.Server {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}

// Status is what `deskd cluster status`, /healthz and /metrics show.
type Status struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"` // Leader, Follower, Candidate, Shutdown
	LeaderID     string `json:"leader_id"`
	LeaderAddr   string `json:"leader_address"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// StoreIndex is the last entry the store holds (its raft_applied).
	// Raft counts an entry as applied once it is handed to the state
	// machine, before the store has committed it, so AppliedIndex may run
	// ahead of the store by what is queued; a node stopped then has less
	// than AppliedIndex says. Entries without a write set (elections'
	// no-ops, membership changes) do not move it.
	StoreIndex  uint64    `json:"store_index"`
	LastContact time.Time `json:"last_contact,omitzero"` // with the leader (followers)
	// Behind is how many committed entries this node has not applied yet.
	Behind        uint64   `json:"behind"`
	LeaderChanges uint64   `json:"leader_changes"`
	Servers       []Server `json:"servers"`
}

// Server is one member as the configuration lists it.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// Status reports the node's view of the cluster.
func (n *Node) Status() Status {
	st := Status{
		NodeID:        n.cfg.NodeID,
		State:         n.raft.State().String(),
		Term:          n.raft.CurrentTerm(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.raft.AppliedIndex(),
		StoreIndex:    n.fsm.applied.Load(),
		LastContact:   n.raft.LastContact(),
		LeaderChanges: n.leaderChanges.Load(),
	}
	st.LeaderID, st.LeaderAddr = n.Leader()
	if st.CommitIndex > st.AppliedIndex {
		st.Behind = st.CommitIndex - st.AppliedIndex
	}
	for _, s := range n.servers() {
		st.Servers = append(st.Servers, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return st
}

// InContact says whether this node is the leader or heard from one within
// the election timeout: a follower that is, is healthy.
func (n *Node) InContact() bool {
	if n.IsLeader() {
		return true
	}
	id, _ := n.Leader()
	return id != "" && time.Since(n.raft.LastContact()) < 2*n.electionTimeout()
}

func (n *Node) electionTimeout() time.Duration {
	if n.cfg.ElectionTimeout > 0 {
		return n.cfg.ElectionTimeout
	}
	return raft.DefaultConfig().ElectionTimeout
}

// Close leaves the cluster's work to the others: it stops Raft (without
// transferring leadership; do that first, TransferLeadership), the
// transport and the log store. The store stays open (it is the caller's).
func (n *Node) Close() error {
	var err error
	if n.raft != nil {
		n.db.SetReplicator(refuse{})
		err = n.raft.Shutdown().Error()
		n.raft.DeregisterObserver(n.observer)
	}
	select {
	case <-n.done:
	default:
		close(n.done)
	}
	n.wg.Wait()
	n.closeTransport()
	return err
}

func (n *Node) closeTransport() {
	if n.trans != nil {
		n.trans.Close()
	}
	if n.logs != nil {
		n.logs.Close()
	}
}

// refuse is the replicator of a node that has left: no write may bypass
// the cluster.
type refuse struct{}

func (refuse) Ready() error                   { return errors.New("cluster: node stopped") }
func (refuse) Replicate(store.WriteSet) error { return errors.New("cluster: node stopped") }

// listen opens the transport's listener: TLS when configured.
func listen(cfg Config) (*streamLayer, error) {
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return nil, err
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("advertise %s: %w", cfg.Advertise, err)
	}
	if adv.IP == nil || adv.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("advertise %s: not an address the others can dial", cfg.Advertise)
	}
	s := &streamLayer{Listener: ln, adv: adv}
	if cfg.TLS != nil {
		s.tls = cfg.TLS.Clone()
		s.tls.ClientAuth = tls.RequireAndVerifyClientCert
		s.tls.MinVersion = tls.VersionTLS13
		s.Listener = tls.NewListener(ln, s.tls)
	}
	return s, nil
}

// streamLayer is Raft's transport over TCP, with mutual TLS when tls is
// set: the listener requires a client certificate signed by the CA, the
// dialer checks the server's against the same CA.
type streamLayer struct {
	net.Listener
	adv *net.TCPAddr
	tls *tls.Config
}

func (s *streamLayer) Addr() net.Addr { return s.adv }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls == nil {
		return d.Dial("tcp", string(addr))
	}
	return tls.DialWithDialer(d, "tcp", string(addr), s.tls)
}

// fsm applies committed entries to the store.
type fsm struct {
	db      *store.DB
	log     *slog.Logger
	applied atomic.Uint64 // the store's raft_applied, mirrored
}

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies a batch of committed entries in one store
// transaction (one fsync). An entry the store already holds (a restart's
// replay) is skipped. Should the batch fail (or an entry not decode:
// entry.go), each entry is applied on its
// own so that the failing one, and only it, answers with the error: every
// node fails it alike, the same bytes on the same state.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	var sets []store.WriteSet
	var last uint64
	var decodeErr error
	for _, l := range logs {
		if l.Type == raft.LogCommand && l.Index > f.applied.Load() {
			ws, err := decodeEntry(l.Data)
			if err != nil {
				decodeErr = err
				continue
			}
			sets = append(sets, ws)
			last = l.Index
		}
	}
	if len(sets) == 0 && decodeErr == nil {
		return resp
	}
	if decodeErr == nil {
		if err := f.db.ApplyReplicated(last, sets...); err == nil {
			f.applied.Store(last)
			return resp
		}
	}
	for i, l := range logs {
		if l.Type != raft.LogCommand || l.Index <= f.applied.Load() {
			continue
		}
		ws, err := decodeEntry(l.Data)
		if err == nil {
			err = f.db.ApplyReplicated(l.Index, ws)
		}
		if err != nil {
			f.log.Error("cluster: entry not applied", "index", l.Index, "err", err)
			resp[i] = fmt.Errorf("cluster: apply entry %d: %w", l.Index, err)
			continue
		}
		f.applied.Store(l.Index)
	}
	return resp
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.db.Snapshot()
	if err != nil {
		return nil, err
	}
	return &snapshot{s: s}, nil
}

// Restore swaps in a snapshot sent by the leader.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	info, err := f.db.ReplaceWith(rc)
	if err != nil {
		return err
	}
	idx, err := f.db.ReplicatedIndex()
	if err != nil {
		return err
	}
	f.applied.Store(idx)
	f.log.Info("cluster: store replaced by a snapshot", "index", idx, "cases", info.Cases, "bytes", info.RawSize)
	return nil
}

type snapshot struct{ s *store.Snapshot }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.s.Write(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() { s.s.Release() }
