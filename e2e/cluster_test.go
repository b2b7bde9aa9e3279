package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	gomail "github.com/emersion/go-message/mail"

	"deskd/daemon"
	"deskd/internal/cluster"
	"deskd/internal/crashtest"
	"deskd/internal/mailstack"
	"deskd/internal/storetest"
	"deskd/store"
)

// clusterNode is one `deskd run` process of a three-node cluster.
type clusterNode struct {
	id, dir, config, socket, metrics string
	cmd                              *exec.Cmd
	log                              *crashtest.SyncBuffer
}

func freeLoopbackPorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func (n *clusterNode) start(t testing.TB, bin string) {
	t.Helper()
	n.cmd = exec.Command(bin, "run", "--config", n.config)
	n.cmd.Env = append(os.Environ(), "DESKD_LOG_LEVEL=info", "DESKD_LOG_FORMAT=json")
	n.cmd.Stderr = n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

func (n *clusterNode) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Wait()
	n.cmd = nil
}

// status asks the node's daemon for its view of the cluster; ok is false
// while it does not answer.
func (n *clusterNode) status() (cluster.Status, bool) {
	var st cluster.Status
	if n.cmd == nil {
		return st, false
	}
	err := daemon.AdminCall(n.socket, daemon.AdminRequest{Op: "cluster.status"}, &st)
	return st, err == nil
}

// metric reads one unlabelled series from the node's /metrics; -1 when it
// cannot.
func (n *clusterNode) metric(name string) float64 {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(n.metrics)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clusterWorld is three `deskd run` processes forming a cluster (mutual
// TLS on loopback) in front of one Dovecot and Postfix, and a backlog of
// questions and replies for support's inbox.
type clusterWorld struct {
	t         testing.TB
	stack     *mailstack.Stack
	bin       string
	nodes     []*clusterNode
	count     func(mailbox string) int // safe for concurrent use
	raws      [][]byte
	questions int
	customers int
	customer  func(i int) string
	// afterKill, when set, runs right after killLeaders' k-th SIGKILL.
	afterKill func(k int)
}

const clSupport = "support@cluster.test"

func newClusterWorld(t testing.TB, questions, replies int, bigMail bool) *clusterWorld {
	t.Helper()
	w := &clusterWorld{t: t, questions: questions, customers: 20}
	w.customer = func(i int) string { return fmt.Sprintf("c%d@klant.test", i%w.customers) }
	users := []mailstack.User{{Address: clSupport, Password: "support-pw"}}
	for i := range w.customers {
		users = append(users, mailstack.User{Address: w.customer(i), Password: "pw"})
	}
	w.stack = mailstack.Start(t, mailstack.Options{Users: users})
	base := t.TempDir()
	w.bin = buildDeskd(t, base)
	names := []string{"n1", "n2", "n3"}
	if err := cluster.WriteTestCertificates(base, names...); err != nil {
		t.Fatal(err)
	}
	ports := freeLoopbackPorts(t, 2*len(names))
	var peers strings.Builder
	for i, name := range names {
		fmt.Fprintf(&peers, "    - id: %s\n      address: 127.0.0.1:%d\n", name, ports[i])
	}
	imapHost, imapPort := hostPort(t, w.stack.IMAPAddr)
	smtpHost, smtpPort := hostPort(t, w.stack.SMTPAddr)
	for i, name := range names {
		dir := filepath.Join(base, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		n := &clusterNode{id: name, dir: dir, config: filepath.Join(dir, "config.yaml"), socket: filepath.Join(dir, "admin.sock"),
			metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[len(names)+i]), log: &crashtest.SyncBuffer{}}
		cfg := fmt.Sprintf(`imap:
  host: %s
  port: %d
  tls: none
  username: %s
  password: %s
smtp:
  host: %s
  port: %d
  tls: none
  auth: none
  retry_initial: 100ms
  retry_max: 1s
support:
  address: %s
  name: Cluster Support
staff:
  domains: [cluster.test]
limits:
  auto_reply_per_hour: 1000
  auto_reply_per_day: 1000
store:
  path: %s
admin:
  socket: %s
http:
  listen: 127.0.0.1:%d
backup:
  dir: ""
cluster:
  node_id: %s
  bind: 127.0.0.1:%d
  dir: %s
  tls:
    cert: %s
    key: %s
    ca: %s
  peers:
%s`, imapHost, imapPort, clSupport, w.stack.Password(clSupport), smtpHost, smtpPort, clSupport,
			filepath.Join(dir, "deskd.db"), n.socket, ports[len(names)+i], name, ports[i], filepath.Join(dir, "raft"),
			filepath.Join(base, name+".pem"), filepath.Join(base, name+"-key.pem"), filepath.Join(base, "ca.pem"), peers.String())
		if err := os.WriteFile(n.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		w.nodes = append(w.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range w.nodes {
			if n.cmd != nil {
				n.kill()
			}
		}
		if t.Failed() {
			for _, n := range w.nodes {
				t.Logf("%s log (tail):\n%s", n.id, tailString(n.log.String(), 3000))
			}
		}
	})
	// One IMAP session counts support's mailboxes throughout (opened
	// before the nodes start, while Dovecot has nothing else to do).
	counter := w.stack.LoginIMAP(t, clSupport)
	var countMu sync.Mutex
	w.count = func(mailbox string) int {
		countMu.Lock()
		defer countMu.Unlock()
		st, err := counter.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil || st.NumMessages == nil {
			return 0
		}
		return int(*st.NumMessages)
	}
	for i := range questions {
		w.raws = append(w.raws, fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: Vraag %d\r\nMessage-ID: <q%d@cluster.example>\r\n\r\nVraag nummer %d.\r\n",
			w.customer(i), clSupport, i, i, i))
	}
	// With bigMail, question 0 carries a 20 MiB attachment that does not
	// compress: its decision is far above cluster.max_entry_bytes and
	// goes in chunks, during the backlog.
	if bigMail {
		w.addBigMail()
	}
	for i := range replies {
		q := i * questions / replies
		w.raws = append(w.raws, fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: Re: Vraag %d\r\nMessage-ID: <r%d@cluster.example>\r\nIn-Reply-To: <q%d@cluster.example>\r\n\r\nAanvulling.\r\n",
			w.customer(q), clSupport, q, i, q))
	}
	for _, n := range w.nodes {
		n.start(t, w.bin)
	}
	return w
}

// addBigMail makes question 0 a 20 MiB mail (a 15 MiB attachment of
// random bytes, base64).
func (w *clusterWorld) addBigMail() {
	big := make([]byte, 15<<20)
	rnd := rand.New(rand.NewPCG(7, 7))
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(big)
	var att strings.Builder
	for len(enc) > 76 {
		att.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	att.WriteString(enc + "\r\n")
	w.raws[0] = fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: Vraag 0\r\nMessage-ID: <q0@cluster.example>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nVraag nummer 0, met bijlage.\r\n"+
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=dump.bin\r\n\r\n%s--b--\r\n",
		w.customer(0), clSupport, att.String())
}

// leader waits for a node to say it leads.
func (w *clusterWorld) leader() *clusterNode {
	w.t.Helper()
	var l *clusterNode
	waitUntil(w.t, 60*time.Second, "a leader", func() bool {
		for _, n := range w.nodes {
			if st, ok := n.status(); ok && st.State == "Leader" {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// backlogWaves is how many waves deliver splits the backlog into.
const backlogWaves = 10

// deliver appends the backlog to support's inbox in ten waves; the
// channel closes when all is in.
func (w *clusterWorld) deliver() <-chan struct{} { return w.deliverWaves(0, backlogWaves) }

// deliverWaves appends waves [from, to) of the backlog, 300 ms apart; the
// channel closes when they are in.
func (w *clusterWorld) deliverWaves(from, to int) <-chan struct{} {
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for i := from; i < to; i++ {
			w.wave(i)
			time.Sleep(300 * time.Millisecond)
		}
	}()
	return delivered
}

// wave appends the backlog's i-th tenth to support's inbox.
func (w *clusterWorld) wave(i int) {
	total := len(w.raws)
	w.stack.AppendIMAP(w.t, clSupport, "INBOX", w.raws[i*total/backlogWaves:(i+1)*total/backlogWaves]...)
}

// keepBacklog keeps support's inbox from running dry for as long as the
// cluster is being killed: every 200 ms, while fewer than low mails wait,
// it appends the next wave of the prepared mails (at most 50 a second
// arrive, so a run of many kills does not grow without bound). Calling
// the returned function stops it and cuts the world's mails to those
// delivered, so that finish checks exactly those.
func (w *clusterWorld) keepBacklog(low, wave int) (stop func()) {
	quit, done := make(chan struct{}), make(chan int)
	go func() {
		next := 0
		defer func() { done <- next }()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for next < len(w.raws) {
			if w.count("INBOX") < low {
				end := min(next+wave, len(w.raws))
				w.stack.AppendIMAP(w.t, clSupport, "INBOX", w.raws[next:end]...)
				next = end
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(quit)
		n := <-done
		if n < w.questions {
			w.questions = n
		}
		w.raws = w.raws[:n]
	}
}

// finish waits for the work to end (inbox empty, every mail moved, the
// leader's outbox drained, every node at the leader's applied index),
// stops every node with SIGTERM (each must exit 0), and checks: the three
// stores byte for byte equal, every mail in exactly one case, one case
// per question, one distinct acknowledgement per case.
func (w *clusterWorld) finish() (cases, messages, acks, distinct int) {
	t := w.t
	t.Helper()
	total := len(w.raws)
	waitUntil(t, 300*time.Second, "an empty inbox", func() bool { return w.count("INBOX") == 0 && w.count("Processed") == total })
	l := w.leader()
	waitUntil(t, 120*time.Second, "an empty outbox", func() bool { return l.metric("deskd_outbox_queued") == 0 })
	// Every store holds the same last entry, and it stayed the last for a
	// second: the store's index, not Raft's applied index, which counts
	// entries still queued for the store (a node stopped then lacks
	// them), and no late write of the leader's loops (an outbox mark, a
	// case line renewed) commits while the followers stop.
	var last, stableSince = uint64(0), time.Now()
	waitUntil(t, 60*time.Second, "every store to hold the same last entry for a second", func() bool {
		idx := uint64(0)
		for i, n := range w.nodes {
			s, ok := n.status()
			if !ok || (i > 0 && s.StoreIndex != idx) {
				return false
			}
			idx = s.StoreIndex
		}
		if idx != last {
			last, stableSince = idx, time.Now()
			return false
		}
		return time.Since(stableSince) >= time.Second
	})
	// SIGTERM, followers first, the leader last (its handover finds no
	// one to take over, and it stops all the same).
	nodes := slices.Clone(w.nodes)
	slices.SortFunc(nodes, func(a, b *clusterNode) int {
		if a == l {
			return 1
		}
		if b == l {
			return -1
		}
		return 0
	})
	for _, n := range nodes {
		n.term(t)
	}

	var dbs []*store.DB
	for _, n := range w.nodes {
		db, err := store.Open(filepath.Join(n.dir, "deskd.db"), store.Options{ReadOnly: true, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	ref := storetest.Buckets(t, dbs[0])
	for i, db := range dbs[1:] {
		if got := storetest.Buckets(t, db); !maps.Equal(ref, got) {
			t.Errorf("%s's store differs from %s's: %s", w.nodes[i+1].id, w.nodes[0].id, bucketDiff(ref, got, 10))
		}
	}

	w.stack.WaitQueueEmpty(t, 60*time.Second)
	ackIDs := map[uint64]map[string]bool{}
	for i := range w.customers {
		for _, raw := range w.stack.WaitForMessages(t, w.customer(i), "INBOX", 0, 30*time.Second) {
			r, err := gomail.CreateReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			id, _ := r.Header.MessageID()
			caseID, ok := crashtest.CaseFromMessageID(id, "cluster.test")
			if !ok {
				t.Errorf("mail to %s has Message-ID <%s>, not deskd's", w.customer(i), id)
				continue
			}
			if ackIDs[caseID] == nil {
				ackIDs[caseID] = map[string]bool{}
			}
			ackIDs[caseID][id] = true
			acks++
		}
	}
	distinct = len(ackIDs)
	err := dbs[0].View(func(tx *store.Tx) (err error) {
		cases, messages, err = crashtest.EachMessageOnce(t, tx, ackIDs, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if cases != w.questions || messages != total {
		t.Errorf("%d cases and %d messages, want %d and %d", cases, messages, w.questions, total)
	}
	return cases, messages, acks, distinct
}

// term stops the node with SIGTERM; it must exit 0.
func (n *clusterNode) term(t testing.TB) {
	t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- n.cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM", n.id, err)
		}
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		t.Errorf("%s did not exit within 30s of SIGTERM", n.id)
	}
	n.cmd = nil
}

// TestClusterFailover (issue 14): a backlog of 1,000 mails arrives in
// support's inbox while the cluster's leader is SIGKILLed three times at
// random moments, each killed node restarted. Afterwards: every mail in
// exactly one case, 800 cases, support's inbox empty, every case's
// requester holds exactly one distinct acknowledgement (a resend after a
// kill has the same Message-ID), and the three stores are byte for byte
// the same. The time from each kill to the new leader's first decision is
// logged.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster failover test is long; run without -short")
	}
	const kills = 3
	w := newClusterWorld(t, 800, 200, true)
	// The last waves arrive one at each kill, so that every new leader
	// finds mail to decide however fast the first waves went (since moves
	// overlap commits, a backlog of 700 can be gone before a third kill).
	delivered := w.deliverWaves(0, backlogWaves-kills)
	w.afterKill = func(k int) {
		<-delivered // in order: a reply after its question
		w.wave(backlogWaves - kills + k)
	}
	seed := crashtest.Seed(t)
	failovers := w.killLeaders(kills, rand.New(rand.NewPCG(seed, 2)))
	<-delivered
	cases, messages, acks, distinct := w.finish()
	slices.Sort(failovers)
	t.Logf("cluster failover: %d kills, time from kill to the new leader's first decision: %v (median %v, worst %v); %d cases, %d messages, %d acknowledgements delivered (%d resends with the same Message-ID)",
		kills, failovers, failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond), cases, messages, acks, acks-distinct)
	if t.Failed() {
		t.Logf("replay with DESKD_CRASH_SEED=%d", seed)
	}
}

// killLeaders SIGKILLs the cluster's leader kills times, each at a random
// moment (rng) after it moved a mail, and restarts each killed node; the
// next kill waits until that node is back in the cluster (it has a leader
// and nothing left to apply), so that every failover has a majority of
// two running nodes, as after the death of one machine. It returns, per
// kill, the time from the SIGKILL to the new leader's first decision (by
// that node's own log: a move the old leader had sent may still complete
// after its death). Support's inbox must not run dry meanwhile.
func (w *clusterWorld) killLeaders(kills int, rng *rand.Rand) []time.Duration {
	t := w.t
	t.Helper()
	var failovers []time.Duration
	for k := range kills {
		l := w.leader()
		before := w.count("Processed")
		// Mid-ingest when there is mail; a kill of an idle leader
		// (the inbox drained) still measures the failover when mail
		// arrives after it (afterKill).
		waitUntil(t, 120*time.Second, "the leader to move a mail", func() bool {
			return w.count("Processed") > before || (w.afterKill != nil && w.count("INBOX") == 0)
		})
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond) // the random moment
		atKill := w.count("Processed")
		offsets := map[*clusterNode]int{}
		for _, n := range w.nodes {
			offsets[n] = n.log.Len()
		}
		l.kill()
		killed := time.Now()
		if w.afterKill != nil {
			w.afterKill(k)
		}
		var first time.Time
		var nl *clusterNode
		waitUntil(t, 60*time.Second, "the new leader's first decision", func() bool {
			for _, n := range w.nodes {
				if n == l {
					continue
				}
				if at, ok := firstDecision(n.log.String()[offsets[n]:]); ok {
					first, nl = at, n
					return true
				}
			}
			return w.count("INBOX") == 0 && w.count("Processed") == len(w.raws)
		})
		if nl == nil {
			t.Fatalf("kill %d: the inbox emptied before a new leader decided anything", k+1)
		}
		took := first.Sub(killed)
		failovers = append(failovers, took)
		t.Logf("kill %d: %s killed with %d moved; %s leads; its first decision %s after the kill", k+1, l.id, atKill, nl.id, took.Round(time.Millisecond))
		l.start(t, w.bin)
		waitUntil(t, 60*time.Second, l.id+" back in the cluster", func() bool {
			st, ok := l.status()
			return ok && st.LeaderID != "" && st.Behind == 0
		})
	}
	return failovers
}

// TestClusterRollingRestart (issue 14, R15): while the backlog arrives,
// each node in turn is stopped with SIGTERM (a leader hands its leadership
// over first) and started again once it is back in the cluster: nothing
// is lost or doubled, and the longest gap between two decisions (across
// the nodes' logs) is logged.
func TestClusterRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster rolling restart test is long; run without -short")
	}
	w := newClusterWorld(t, 300, 75, false)
	delivered := w.deliver()
	w.leader()
	for _, n := range w.nodes {
		before := w.count("Processed")
		waitUntil(t, 120*time.Second, "a mail moved", func() bool { return w.count("Processed") > before || w.count("INBOX") == 0 })
		n.term(t)
		n.start(t, w.bin)
		waitUntil(t, 60*time.Second, n.id+" back in the cluster", func() bool {
			st, ok := n.status()
			return ok && st.LeaderID != "" && st.Behind == 0
		})
	}
	<-delivered
	var times []time.Time
	for _, n := range w.nodes {
		times = append(times, decisionTimes(n.log.String())...)
	}
	cases, messages, acks, distinct := w.finish()
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	t.Logf("rolling restart of 3 nodes: longest gap between two decisions %s; %d cases, %d messages, %d acknowledgements delivered (%d resends with the same Message-ID)",
		gap.Round(time.Millisecond), cases, messages, acks, acks-distinct)
}

// firstDecision finds the first "mail decided" (or quarantined) line in a
// JSON log and its time.
func firstDecision(log string) (time.Time, bool) {
	ts := decisionTimes(log)
	if len(ts) == 0 {
		return time.Time{}, false
	}
	return ts[0], true
}

// decisionTimes are the times of the decisions in a JSON log.
func decisionTimes(log string) []time.Time {
	var out []time.Time
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Time time.Time
			Msg  string
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && (line.Msg == "mail decided" || line.Msg == "mail quarantined") {
			out = append(out, line.Time)
		}
	}
	return out
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// bucketDiff names up to n records (storetest.Buckets keys: bucket path,
// NUL, key) that two stores hold differently, for the failure message.
func bucketDiff(a, b map[string]string, n int) string {
	var keys []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys[:min(n, len(keys))] {
		_, inA := a[k]
		_, inB := b[k]
		out = append(out, fmt.Sprintf("%q (first %t, second %t)", k, inA, inB))
	}
	return fmt.Sprintf("%d records differ: %s", len(keys), strings.Join(out, ", "))
}
