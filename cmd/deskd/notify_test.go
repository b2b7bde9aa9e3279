package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"deskd/daemon"
)

// notifySocket stands in for systemd: a unix datagram socket that keeps
// every sd_notify(3) message it receives, in order.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
	news chan struct{}
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ns := &notifySocket{path: filepath.Join(dir, "notify"), news: make(chan struct{}, 1)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, string(buf[:n]))
			ns.mu.Unlock()
			select {
			case ns.news <- struct{}{}:
			default:
			}
		}
	}()
	return ns
}

func (ns *notifySocket) all() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]string(nil), ns.msgs...)
}

// waitFrom waits for the first message at index from or later that has
// every one of the assignments or substrings in want, and returns its
// index.
func (ns *notifySocket) waitFrom(t *testing.T, from int, want ...string) int {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		msgs := ns.all()
		for i := from; i < len(msgs); i++ {
			if hasAll(msgs[i], want) {
				return i
			}
		}
		select {
		case <-ns.news:
		case <-deadline:
			t.Fatalf("no message with %q after #%d; got:\n%s", want, from, strings.Join(msgs, "\n--\n"))
		}
	}
}

func hasAll(msg string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(msg, w) {
			return false
		}
	}
	return true
}

// assignment returns the value of key=... in msg.
func assignment(msg, key string) string {
	for _, line := range strings.Split(msg, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	return ""
}

// notifyProcess starts `deskd run` as a child process the way systemd
// would under Type=notify with WatchdogSec=: NOTIFY_SOCKET and
// WATCHDOG_USEC set (WATCHDOG_PID left out: the child's pid is not known
// before it starts, and go-systemd accepts its absence).
func notifyProcess(t *testing.T, ns *notifySocket, logs *syncBuffer, configPath string, watchdog time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "--config", configPath)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "WATCHDOG_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DESKD_TEST_MAIN=1", "NOTIFY_SOCKET="+ns.path,
		"WATCHDOG_USEC="+strconv.FormatInt(watchdog.Microseconds(), 10))
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("deskd's log (exit %v):\n%s", cmd.ProcessState, logs.String())
		}
	})
	return cmd
}

// Under Type=notify deskd says what it does (STATUS=), READY=1 only after
// the store is open and the IMAP login succeeded, pings the watchdog,
// brackets a SIGHUP reload with RELOADING=1 (and MONOTONIC_USEC=, for
// Type=notify-reload) and READY=1, and says STOPPING=1 on SIGTERM.
func TestNotifyProtocol(t *testing.T) {
	imapSrv, _, _, configPath := startPeers(t)
	ns := listenNotify(t)
	var logs syncBuffer
	cmd := notifyProcess(t, ns, &logs, configPath, 2*time.Second)

	ready := ns.waitFrom(t, 0, "READY=1")
	msgs := ns.all()
	if st := assignment(msgs[ready], "STATUS"); !strings.Contains(st, "logged in to IMAP") {
		t.Errorf("READY=1 came with status %q, want the login", st)
	}
	opened, connecting := -1, -1
	for i, m := range msgs[:ready] {
		switch st := assignment(m, "STATUS"); {
		case strings.HasPrefix(st, "opening store"):
			opened = i
		case strings.HasPrefix(st, "connecting to IMAP 127.0.0.1:"):
			connecting = i
		}
	}
	if opened < 0 || connecting < opened {
		t.Errorf("want STATUS opening store, then connecting, before READY=1; got:\n%s", strings.Join(msgs[:ready+1], "\n--\n"))
	}

	// The watchdog is pinged while the loops beat (every WatchdogSec/2).
	ping := ns.waitFrom(t, ready+1, "WATCHDOG=1")
	ping = ns.waitFrom(t, ping+1, "WATCHDOG=1")

	// The status follows the mailbox and the store.
	if err := imapSrv.Deliver("INBOX", []byte("From: Bob <bob@acme.example>\r\nTo: support@example.test\r\nSubject: Vraag\r\nMessage-ID: <notify1@acme.example>\r\n\r\nHallo\r\n"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	ns.waitFrom(t, ping+1, "STATUS=watching INBOX (IDLE), 1 open case")

	// SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
	cmd.Process.Signal(syscall.SIGHUP)
	reloading := ns.waitFrom(t, ready+1, "RELOADING=1")
	if usec := assignment(ns.all()[reloading], "MONOTONIC_USEC"); usec == "" {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", ns.all()[reloading])
	} else if _, err := strconv.ParseUint(usec, 10, 64); err != nil {
		t.Errorf("MONOTONIC_USEC=%q: %v", usec, err)
	}
	ns.waitFrom(t, reloading+1, "READY=1")

	// SIGTERM: STOPPING=1, and a clean exit.
	cmd.Process.Signal(syscall.SIGTERM)
	ns.waitFrom(t, reloading+1, "STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	t.Logf("notify messages:\n%s", strings.Join(ns.all(), "\n--\n"))
	for _, m := range ns.all() {
		if n := strings.Count(m, "READY=1"); n > 1 {
			t.Errorf("message with READY=1 twice: %q", m)
		}
	}
}

// A mailbox that cannot be reached must not fail the unit: deskd retries
// the login once, then says READY=1 with a STATUS naming the problem, and
// keeps pinging the watchdog while it retries.
func TestNotifyReadyWhileIMAPUnreachable(t *testing.T) {
	imapSrv, _, _, configPath := startPeers(t)
	// A closed loopback port: connection refused. (Not imapSrv.Close():
	// right after the start it can leave the listener open, unserved.)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	text, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	imapPort := fmt.Sprintf("port: %d\n", imapSrv.Port())
	if !strings.Contains(string(text), imapPort) {
		t.Fatalf("no %q in the test configuration", imapPort)
	}
	text = []byte(strings.Replace(string(text), imapPort, fmt.Sprintf("port: %d\n", closedPort), 1))
	if err := os.WriteFile(configPath, text, 0o600); err != nil {
		t.Fatal(err)
	}
	ns := listenNotify(t)
	var logs syncBuffer
	cmd := notifyProcess(t, ns, &logs, configPath, 2*time.Second)

	ready := ns.waitFrom(t, 0, "READY=1")
	msgs := ns.all()
	st := assignment(msgs[ready], "STATUS")
	if !strings.Contains(st, "IMAP unreachable") || !strings.Contains(st, "connection refused") {
		t.Errorf("READY=1 came with status %q, want the IMAP problem", st)
	}
	// The first attempt's failure was reported before READY=1: READY came
	// after the retry.
	first := -1
	for i, m := range msgs[:ready] {
		if strings.Contains(assignment(m, "STATUS"), "IMAP unreachable") {
			first = i
			break
		}
	}
	if first < 0 {
		t.Errorf("no STATUS about the first failed login before READY=1:\n%s", strings.Join(msgs[:ready+1], "\n--\n"))
	}
	ping := ns.waitFrom(t, ready+1, "WATCHDOG=1")
	ns.waitFrom(t, ping+1, "WATCHDOG=1")

	cmd.Process.Signal(syscall.SIGTERM)
	ns.waitFrom(t, ready+1, "STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	t.Logf("notify messages:\n%s", strings.Join(ns.all(), "\n--\n"))
}

// The watchdog pings only while every loop beat within WatchdogSec: while
// one is stalled it says so in STATUS= and sends no WATCHDOG=1, and it
// pings again once the loop beats again. (daemon's TestWedgedIMAPLoopIsNotAlive
// shows a handler that blocks makes Alive say so.)
func TestWatchdogStopsWhileALoopStalls(t *testing.T) {
	ns := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", ns.path)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := newNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if got := n.options(optsZero()).HeartbeatEvery; got != 50*time.Millisecond {
		t.Errorf("HeartbeatEvery %v for WatchdogSec=200ms, want 50ms", got)
	}

	var mu sync.Mutex
	healthy := true
	calls := 0
	var maxAges []time.Duration
	stop := n.startWatchdog(func(maxAge time.Duration) (bool, []string) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		maxAges = append(maxAges, maxAge)
		if healthy {
			return true, nil
		}
		return false, []string{"imap"}
	})
	defer stop()

	first := ns.waitFrom(t, 0, "WATCHDOG=1")
	mu.Lock()
	healthy = false
	mu.Unlock()
	stalled := ns.waitFrom(t, first+1, "STATUS=stalled: imap loop")
	// Let the watchdog look three more times while the loop is stalled.
	mu.Lock()
	seen := calls
	mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		c := calls
		mu.Unlock()
		if c >= seen+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watchdog stopped looking")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	healthy = true
	mu.Unlock()
	// Nothing but the stall message between the stall and the recovery.
	again := ns.waitFrom(t, stalled+1, "WATCHDOG=1")
	for _, m := range ns.all()[stalled+1 : again] {
		t.Errorf("unexpected message while stalled: %q", m)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	for _, a := range maxAges {
		if a != 200*time.Millisecond {
			t.Errorf("Alive asked with maxAge %v, want WatchdogSec (200ms)", a)
		}
	}
}

// Without NOTIFY_SOCKET every notifier method is a no-op, and no watchdog
// goroutine starts.
func TestNotifierWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "100000")
	n := newNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.Status("x")
	n.Ready("y")
	n.Reloading()(fmt.Errorf("z"))
	n.Stopping()
	called := false
	n.startWatchdog(func(time.Duration) (bool, []string) { called = true; return true, nil })()
	if called {
		t.Error("watchdog ran without NOTIFY_SOCKET")
	}
	if got := n.options(optsZero()).HeartbeatEvery; got != 0 {
		t.Errorf("HeartbeatEvery %v without a watchdog, want 0 (the default)", got)
	}
}

func optsZero() daemon.Options { return daemon.Options{} }
