package mailstack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stop stops both daemons and removes the stack directory. It is idempotent
// and also runs on t.Cleanup.
func (s *Stack) Stop() error { return s.stop(true) }

func (s *Stack) stop(removeDir bool) error {
	s.stopOnce.Do(func() {
		var errs []error
		// Postfix first: otherwise its queue manager would log LMTP failures
		// against a vanishing Dovecot.
		if pid := readPid(s.postfixPid); pid > 0 && alive(pid) {
			if out, err := run(postfixBin, "-c", s.postfixConf, "stop"); err != nil {
				errs = append(errs, fmt.Errorf("postfix stop: %v: %s", err, out))
			}
			if err := waitDead(pid, stopTimeout); err != nil {
				errs = append(errs, fmt.Errorf("postfix master: %w", err))
			}
		}
		if pid := readPid(s.dovecotPid); pid > 0 && alive(pid) {
			// This is what "dovecot stop" does, but doveadm then polls for the
			// exit once a second, which costs a second per stack.
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				errs = append(errs, fmt.Errorf("dovecot stop: %w", err))
			}
			if err := waitDead(pid, stopTimeout); err != nil {
				errs = append(errs, fmt.Errorf("dovecot master: %w", err))
			}
		}
		// Children normally exit with their master; anything still tied to
		// the stack directory after that is killed so that no test leaks
		// processes (or the ports they hold) into the next one.
		if left := stackProcesses(s.Dir); len(left) > 0 {
			time.Sleep(200 * time.Millisecond)
			for _, pid := range stackProcesses(s.Dir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				_ = waitDead(pid, 5*time.Second)
			}
		}
		if left := stackProcesses(s.Dir); len(left) > 0 {
			errs = append(errs, fmt.Errorf("processes still running after stop: %v", left))
		}
		if removeDir && len(errs) == 0 {
			if err := os.RemoveAll(s.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Output goes to a file, not a pipe: the daemons inherit the command's
	// stdout/stderr when they fork into the background, and a pipe held open
	// by them would make Wait (and "go test", which waits for its own output
	// pipe) hang until they exit.
	out, err := os.CreateTemp("", "mailstack-cmd-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout = out
	cmd.Stderr = out
	// Own process group: a Ctrl-C on the test must not reach the daemons
	// before Stop does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return strings.TrimSpace(string(b)), err
}

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// freePorts asks the kernel for n free loopback ports. Ports already handed
// out by this process are never returned again, so parallel stacks in one
// test binary cannot race each other for the same port.
func freePorts(n int) ([]int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l) // held until all are picked, so they differ
		p := l.Addr().(*net.TCPAddr).Port
		if usedPorts[p] {
			continue
		}
		usedPorts[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// waitGreeting waits until addr accepts a connection and greets with prefix
// and the stack's name. A greeting without the name is another stack's
// server on a port both picked free (test binaries run side by side): that
// is reported as the port being in use, which Start retries with fresh
// ports, instead of letting two tests deliver into each other's stacks.
func waitGreeting(addr, prefix, name string) error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			// Say goodbye politely so the servers don't log aborted sessions.
			if strings.HasPrefix(prefix, "*") {
				io.WriteString(conn, "a LOGOUT\r\n")
			} else {
				io.WriteString(conn, "QUIT\r\n")
			}
			conn.Close()
			if rerr == nil && strings.HasPrefix(line, prefix) {
				if !strings.Contains(line, name) {
					return fmt.Errorf("%s is in use by another server (greeting %q)", addr, strings.TrimSpace(line))
				}
				return nil
			}
			lastErr = fmt.Errorf("greeting %q, err %v", line, rerr)
		} else {
			lastErr = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", addr, startTimeout, lastErr)
}

func waitPath(path string) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear after %v", path, startTimeout)
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// alive reports whether pid is a live (not zombie) process. kill(pid, 0)
// alone is not enough: a zombie nobody reaped yet still answers it.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

func waitDead(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
			if alive(pid) {
				return fmt.Errorf("pid %d still alive after SIGKILL", pid)
			}
			return fmt.Errorf("pid %d did not exit within %v; killed", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// stackProcesses lists live processes that belong to the stack in dir: those
// whose working directory, root (Dovecot chroots its login processes),
// command line or environment (Postfix passes MAIL_CONFIG) points into dir.
// Matching on dir rather than on process names keeps parallel stacks and any
// system instance out of it.
func stackProcesses(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !alive(pid) {
			continue
		}
		if belongsTo(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func belongsTo(pid int, dir string) bool {
	inDir := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	proc := fmt.Sprintf("/proc/%d/", pid)
	for _, link := range []string{"cwd", "root"} {
		if p, err := os.Readlink(proc + link); err == nil && inDir(p) {
			return true
		}
	}
	for _, f := range []string{"cmdline", "environ"} {
		if b, err := os.ReadFile(proc + f); err == nil && bytes.Contains(b, []byte(dir+"/")) {
			return true
		}
	}
	return false
}
