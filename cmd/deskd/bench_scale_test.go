package main

import (
	"bufio"
	"net"
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

	"deskd/internal/gen"
	"deskd/internal/peers"
)

// BenchmarkScale runs deskd and its CLI against a generated store and
// reports the figures of issue 11's table: start to READY, the open-case
// listing, the full listing, a month's report for all customers, a
// backup and an export of the biggest customer through the running
// daemon, each with its wall time, the CLI's and the daemon's
// peak anonymous RSS while it served; then the stop after SIGTERM.
//
//	go run ./cmd/deskd-gen -store /tmp/100k.db -cases 100000
//	DESKD_BENCH_STORE=/tmp/100k.db go test -run '^$' -bench Scale -benchtime 1x ./cmd/deskd/
//
// DESKD_BENCH_STORE is a store made by deskd-gen (used in place: a start
// may rebuild its deadline index); without it a store of
// DESKD_BENCH_CASES cases (default 10000) is generated first.
// DESKD_BENCH_ONLY=list-open,report (a comma-separated list of the names
// below: list-open, list-all, report, backup, export) runs only those
// commands; at 1M cases the full listing and the export take minutes.
// DESKD_BENCH_BIN measures another deskd binary (an older build, for a
// before-and-after) instead of this package's code. DESKD_BENCH_DROP=1
// drops the page cache before the start (root only), for a cold start.
func BenchmarkScale(b *testing.B) {
	dir := b.TempDir()
	path := os.Getenv("DESKD_BENCH_STORE")
	if path == "" {
		path = generatedStore(b, filepath.Join(dir, "deskd.db"), envInt(b, "DESKD_BENCH_CASES", 10000))
	}
	imapSrv, smtpSrv := genPeers(b)
	configPath := filepath.Join(dir, "deskd.yaml")
	yaml := gen.ConfigYAML(gen.Customers(200), path, filepath.Join(dir, "admin.sock"), imapSrv.Addr, smtpSrv.Addr) + "log:\n  level: warn\n"
	if err := os.WriteFile(configPath, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	bin, env := os.Args[0], []string{"DESKD_TEST_MAIN=1"}
	if s := os.Getenv("DESKD_BENCH_BIN"); s != "" {
		bin, env = s, nil
	}
	month := time.Now().UTC().AddDate(0, -1, 0).Format("2006-01")

	for b.Loop() {
		if os.Getenv("DESKD_BENCH_DROP") == "1" {
			exec.Command("sync").Run()
			if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
				b.Fatalf("drop caches: %v", err)
			}
		}
		nsPath := filepath.Join(dir, "notify.sock")
		os.Remove(nsPath)
		ns, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsPath, Net: "unixgram"})
		if err != nil {
			b.Fatal(err)
		}
		var logs strings.Builder
		daemonCmd := exec.Command(bin, "run", "--config", configPath)
		daemonCmd.Env = append(append(os.Environ(), env...), "NOTIFY_SOCKET="+nsPath)
		daemonCmd.Stderr = &logs
		t0 := time.Now()
		if err := daemonCmd.Start(); err != nil {
			b.Fatal(err)
		}
		ns.SetReadDeadline(time.Now().Add(10 * time.Minute))
		buf := make([]byte, 4096)
		for {
			n, err := ns.Read(buf)
			if err != nil {
				daemonCmd.Process.Kill()
				b.Fatalf("no READY=1: %v\n%s", err, logs.String())
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				break
			}
		}
		ready := time.Since(t0)
		ns.Close()
		b.ReportMetric(ready.Seconds(), "start-ready-s")
		pid := daemonCmd.Process.Pid
		b.ReportMetric(rssAnonMB(pid), "daemon-rest-MB")

		run := func(name string, args ...string) {
			if only := os.Getenv("DESKD_BENCH_ONLY"); only != "" && !slices.Contains(strings.Split(only, ","), name) {
				return
			}
			cmd := exec.Command(bin, append(args, "--config", configPath)...)
			cmd.Env = append(os.Environ(), env...)
			var errOut strings.Builder
			cmd.Stderr = &errOut
			peak := sampleRSS(pid)
			start := time.Now()
			err := cmd.Start()
			// Sampled, like the daemon's: the Maxrss of a child's
			// rusage counts this process's RSS too (the child is
			// forked from it before it execs), 117 MB at 10,000 cases
			// for every command whatever the CLI used.
			cliPeak := func() float64 { return 0 }
			if err == nil {
				cliPeak = sampleRSS(cmd.Process.Pid)
				err = cmd.Wait()
			}
			took := time.Since(start)
			daemonPeak, cliMB := peak(), cliPeak()
			if err != nil {
				b.Errorf("%s: %v\n%s", name, err, errOut.String())
				return
			}
			b.ReportMetric(took.Seconds(), name+"-s")
			b.ReportMetric(cliMB, name+"-cli-MB")
			b.ReportMetric(daemonPeak, name+"-daemon-MB")
		}
		run("list-open", "cases", "list", "--json")
		run("list-all", "cases", "list", "--status", "all", "--json")
		run("report", "report", "--month", month, "--format", "json", "--out", filepath.Join(dir, "report.json"))
		run("backup", "backup", "--out", filepath.Join(dir, "backup.db"))
		os.Remove(filepath.Join(dir, "backup.db"))
		os.Remove(filepath.Join(dir, "backup.db.sha256"))
		run("export", "export", "--customer", "Customer 001", "--out", filepath.Join(dir, "export.zip"))
		os.RemoveAll(filepath.Join(dir, "export.zip"))

		t1 := time.Now()
		daemonCmd.Process.Signal(syscall.SIGTERM)
		daemonCmd.Wait()
		b.ReportMetric(time.Since(t1).Seconds(), "stop-s")
	}
}

// rssAnonMB is a process's anonymous resident memory (RssAnon in
// /proc/PID/status): what it allocated, not the mapped store file.
func rssAnonMB(pid int) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// sampleRSS samples pid's anonymous RSS every 20 ms until the returned
// function is called, which returns the peak.
func sampleRSS(pid int) func() float64 {
	var (
		mu   sync.Mutex
		peak float64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			v := rssAnonMB(pid)
			mu.Lock()
			peak = max(peak, v)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// genPeers starts the IMAP and SMTP peers a generated store's
// configuration (gen.ConfigYAML) points deskd at, closed with tb.
func genPeers(tb testing.TB) (*peers.IMAP, *peers.SMTP) {
	tb.Helper()
	imapSrv, err := peers.StartIMAP(gen.SupportAddress, "pw")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { imapSrv.Close() })
	smtpSrv, err := peers.StartSMTP(nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { smtpSrv.Close() })
	return imapSrv, smtpSrv
}
