package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"deskd/daemon"
	"deskd/internal/gen"
	"deskd/store"
)

// cancelTestCases is the size of TestAbandonedCommands' store: 100,000
// cases as issue 11 asks, fewer under the race detector, where generating
// them would take most of CI's time (raceEnabled, race_test.go). Either
// size lists and backs up for long enough to be killed half-way.
func cancelTestCases() int {
	if raceEnabled {
		return 10000
	}
	return 100000
}

// Issue 11: a client killed in the middle of a listing, and another in
// the middle of a backup, each end the daemon's work on it (the daemon
// logs the request abandoned, which it does once its read transaction has
// closed, and its CPU returns to idle); then, with a listing and a backup
// running whose clients stopped reading, SIGTERM stops the daemon within
// the README's 10 s.
func TestAbandonedCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deskd.db")
	t0 := time.Now()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Generate(context.Background(), db, gen.Options{Cases: cancelTestCases()}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	t.Logf("generated %d cases in %s", cancelTestCases(), time.Since(t0).Round(time.Millisecond))
	imapSrv, smtpSrv := genPeers(t)
	socket := filepath.Join(dir, "admin.sock")
	configPath := filepath.Join(dir, "deskd.yaml")
	yaml := gen.ConfigYAML(gen.Customers(200), path, socket, imapSrv.Addr, smtpSrv.Addr)
	if err := os.WriteFile(configPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d := deskdProcess(t, &logs, "run", "--config", configPath)
	defer d.Process.Kill()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var pong string
		if daemon.AdminCall(socket, daemon.AdminRequest{Op: "ping"}, &pong) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never answered on its socket\n%s", logs.String())
		}
	}
	pid := d.Process.Pid
	t.Logf("daemon answering after %s", time.Since(t0).Round(time.Millisecond))

	// A listing: killed after its first 64 KiB of JSON.
	list := cliProcess(t, "cases", "list", "--status", "all", "--jsonl", "--config", configPath)
	out, _ := list.StdoutPipe()
	if err := list.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(out, make([]byte, 64<<10)); err != nil {
		t.Fatalf("listing: %v", err)
	}
	list.Process.Kill()
	list.Wait()
	waitLog(t, &logs, `msg="admin request abandoned" op=cases.list why="the client went away or stopped reading"`)
	waitIdle(t, pid, &logs)
	t.Logf("listing abandoned after %s", time.Since(t0).Round(time.Millisecond))

	// A backup: killed once its temporary file has a MiB.
	backupDir := filepath.Join(dir, "backups")
	os.Mkdir(backupDir, 0o700)
	backup := cliProcess(t, "backup", "--out", filepath.Join(backupDir, "b.zst"), "--config", configPath)
	if err := backup.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); dirBytes(backupDir) < 1<<20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the backup never wrote a MiB\n%s", logs.String())
		}
	}
	backup.Process.Kill()
	backup.Wait()
	waitLog(t, &logs, `msg="admin request abandoned" op=backup why="the client went away or stopped reading"`)
	waitIdle(t, pid, &logs)

	// A listing and a backup whose clients stop reading: SIGTERM cancels
	// them, and the daemon exits within 10 s.
	stalled := []*exec.Cmd{
		cliProcess(t, "cases", "list", "--status", "all", "--jsonl", "--config", configPath),
		cliProcess(t, "backup", "--out", "-", "--config", configPath),
	}
	for _, c := range stalled {
		out, _ := c.StdoutPipe() // never read: the pipe fills, the CLI blocks, the socket fills
		defer out.Close()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
		if _, err := io.ReadFull(out, make([]byte, 1024)); err != nil {
			t.Fatalf("%v: %v", c.Args, err)
		}
	}
	if err := d.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the daemon's exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the daemon did not exit within 10 s of SIGTERM\n%s", logs.String())
	}
	for _, op := range []string{"cases.list", "backup"} {
		if !strings.Contains(logs.String(), `msg="admin request abandoned" op=`+op+` why="the daemon is stopping"`) {
			t.Errorf("no %s abandoned for the stop in the log\n%s", op, logs.String())
		}
	}
}

// cliProcess is a deskd CLI command as its own process (the test binary
// standing in for deskd), so that it can be killed.
func cliProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DESKD_TEST_MAIN=1")
	return cmd
}

// waitLog waits (at most a minute) for the daemon to log want.
func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(logs.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never logged %s\n%s", want, logs.String())
		}
	}
}

// waitIdle waits (at most a minute) for a second in which pid used under
// a fifth of a core: a request still working would use a whole one.
func waitIdle(t *testing.T, pid int, logs *syncBuffer) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		before := cpuTicks(t, pid)
		time.Sleep(time.Second)
		if cpuTicks(t, pid)-before < 20 { // clock ticks of 10 ms
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon's CPU never returned to idle\n%s", logs.String())
		}
	}
}

// cpuTicks is pid's user and system time in clock ticks (/proc/PID/stat).
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return utime + stime
}

// dirBytes is the size of the files in dir.
func dirBytes(dir string) int64 {
	entries, _ := os.ReadDir(dir)
	var n int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}
