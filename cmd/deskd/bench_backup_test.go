package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"deskd/daemon"
	"deskd/internal/gen"
	"deskd/store"
)

// BenchmarkScaleBackupDuringIngest is issue 11's "backup at 1M cases: at
// least 150 MB/s of store read; ingest goes on meanwhile: the longest
// commit during the backup stays under 100 ms", and "measure the store
// size after a 1M-case backup taken during a 1,000-mail ingest".
//
// deskd runs in-process against the in-process IMAP and SMTP peers. First
// 200 questions arrive at a steady rate with no backup (the baseline of
// the store's write times); then `deskd backup` runs through the admin
// socket while questions keep arriving at the same rate, until the backup
// is done and at least 1,000 have arrived. Write times come from the
// daemon's own deskd_store_write_duration_seconds histogram (every store
// write, from waiting for the writer lock to the end of the fsync), read
// through /metrics.
//
//	cp /work/bench/1m6.db /tmp/1m-copy.db   # it writes to the store
//	DESKD_BENCH_STORE=/tmp/1m-copy.db go test -run '^$' -bench BackupDuringIngest -benchtime 1x -timeout 60m ./cmd/deskd/
//
// Without DESKD_BENCH_STORE a store of DESKD_BENCH_CASES (default 10000)
// generated cases is used. DESKD_BENCH_RATE is the arrival rate (default
// 20 mails/s). Reported: the backup's time and MB/s of store read (the
// file's size over the wall time, verification while writing included),
// the store's growth per ingested mail with and without the backup
// running, and per phase the number of writes over 100 ms and the
// histogram bound the slowest write stayed under.
func BenchmarkScaleBackupDuringIngest(b *testing.B) {
	dir := b.TempDir()
	storePath := os.Getenv("DESKD_BENCH_STORE")
	if storePath == "" {
		storePath = generatedStore(b, filepath.Join(dir, "deskd.db"), envInt(b, "DESKD_BENCH_CASES", 10000))
	}
	rate := envInt(b, "DESKD_BENCH_RATE", 20)
	imapSrv, smtpSrv := genPeers(b)
	socket := filepath.Join(dir, "admin.sock")
	yaml := gen.ConfigYAML(gen.Customers(200), storePath, socket, imapSrv.Addr, smtpSrv.Addr)
	yaml = strings.Replace(yaml, "http:\n  listen: \"\"\n", "http:\n  listen: 127.0.0.1:0\n", 1)
	configPath := filepath.Join(dir, "deskd.yaml")
	if err := os.WriteFile(configPath, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := loadConfig(configPath)
	if err != nil {
		b.Fatal(err)
	}
	opts := daemonOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d, _, stop := startReady(b, opts)
	defer stop()
	metricsURL := "http://" + d.HTTPAddr() + "/metrics"

	sent := 0
	// ingest delivers questions at rate per second until more() says
	// stop, then waits until deskd has moved all of them out of the inbox.
	ingest := func(more func(n int) bool) int {
		processed := imapSrv.Count("Processed")
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		n := 0
		for ; more(n); n++ {
			<-tick.C
			if err := imapSrv.Deliver("INBOX", newQuestion(sent+n), time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
		sent += n
		deadline := time.Now().Add(10 * time.Minute)
		for imapSrv.Count("Processed") < processed+n {
			if time.Now().After(deadline) {
				b.Fatalf("after 10 minutes %d of %d mails processed", imapSrv.Count("Processed")-processed, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return n
	}
	size := func() int64 {
		fi, err := os.Stat(storePath)
		if err != nil {
			b.Fatal(err)
		}
		return fi.Size()
	}

	for b.Loop() {
		// Baseline: the same arrivals, no backup.
		before, size0 := scrapeWrites(b, metricsURL), size()
		idleMails := ingest(func(n int) bool { return n < 200 })
		idle, size1 := scrapeWrites(b, metricsURL).sub(before), size()

		backupDone := make(chan error, 1)
		var stderr bytes.Buffer
		out := filepath.Join(b.TempDir(), "backup.db.zst")
		started := time.Now()
		var backupTook time.Duration
		go func() {
			err := cmdBackup(context.Background(), []string{"--socket", socket, "--out", out}, io.Discard, &stderr)
			backupTook = time.Since(started)
			backupDone <- err
		}()
		var backupErr error
		finished := false
		during := ingest(func(n int) bool {
			if !finished {
				select {
				case backupErr = <-backupDone:
					finished = true
				default:
				}
			}
			return !finished || n < 1000
		})
		if backupErr != nil {
			b.Fatalf("backup: %v\n%s", backupErr, stderr.String())
		}
		busy, size2 := scrapeWrites(b, metricsURL).sub(before).sub(idle), size()
		os.Remove(out)

		b.ReportMetric(backupTook.Seconds(), "backup-s")
		b.ReportMetric(float64(size1)/1e6/backupTook.Seconds(), "backup-MB/s")
		b.ReportMetric(float64(during), "mails-during-backup")
		b.ReportMetric(float64(size1-size0)/1024/float64(idleMails), "growth-idle-KB/mail")
		b.ReportMetric(float64(size2-size1)/1024/float64(during), "growth-backup-KB/mail")
		b.ReportMetric(float64(size2-size1)/1e6, "growth-backup-MB")
		b.ReportMetric(float64(idle.over(0.1)), "writes-over-100ms-idle")
		b.ReportMetric(float64(busy.over(0.1)), "writes-over-100ms-backup")
		b.ReportMetric(idle.maxBound()*1000, "slowest-write-under-ms-idle")
		b.ReportMetric(busy.maxBound()*1000, "slowest-write-under-ms-backup")
		b.ReportMetric(float64(busy.count), "writes-backup")
	}
}

// newQuestion is the i-th new question of a benchmark: a distinct sender
// at one of the generated customers (a new case and an acknowledgement,
// no rate limit reached), with a random Message-ID as real ones are, so
// that each lands on its own leaf of the indexes rather than beside the
// last.
func newQuestion(i int) []byte {
	cust := 1 + i%200
	return []byte(fmt.Sprintf("From: Klant %d <klant%d@cust%03d.example>\r\nTo: %s\r\nSubject: Vraag %d over levering\r\n"+
		"Message-ID: <%s@cust%03d.example>\r\nDate: %s\r\n\r\nGoedemiddag,\r\n\r\nWaar blijft bestelling %d?\r\n",
		i, i, cust, gen.SupportAddress, i, rand.Text(), cust, time.Now().Format(time.RFC1123Z), i))
}

// startReady runs a daemon in-process with opts and returns once it is
// ready (its start is not what a benchmark measures); done yields Run's
// error should the daemon stop before stop is called.
func startReady(b *testing.B, opts daemon.Options) (d *daemon.Daemon, done <-chan error, stop func()) {
	ready := make(chan struct{})
	opts.OnReady = func(string) { close(ready) }
	d, err := daemon.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	select {
	case <-ready:
	case err := <-ran:
		cancel()
		b.Fatalf("daemon stopped: %v", err)
	}
	return d, ran, func() {
		cancel()
		if err := <-ran; err != nil {
			b.Errorf("daemon: %v", err)
		}
	}
}

// generatedStore fills a new store at path with n generated cases.
func generatedStore(b *testing.B, path string, n int) string {
	db, err := store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := gen.Generate(context.Background(), db, gen.Options{Cases: n}); err != nil {
		b.Fatal(err)
	}
	return path
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// writeTimes is a snapshot of the daemon's store-write histogram:
// cumulative counts per upper bound, as Prometheus keeps them.
type writeTimes struct {
	count  uint64
	bounds []float64
	counts []uint64 // writes at or under bounds[i]
}

func scrapeWrites(b *testing.B, url string) writeTimes {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	fam := fams["deskd_store_write_duration_seconds"]
	if fam == nil || len(fam.GetMetric()) != 1 {
		b.Fatal("no deskd_store_write_duration_seconds in /metrics")
	}
	return newWriteTimes(fam.GetMetric()[0].GetHistogram())
}

func newWriteTimes(h *dto.Histogram) writeTimes {
	w := writeTimes{count: h.GetSampleCount()}
	for _, bk := range h.GetBucket() {
		w.bounds = append(w.bounds, bk.GetUpperBound())
		w.counts = append(w.counts, bk.GetCumulativeCount())
	}
	return w
}

// sub is the writes of w that v had not seen.
func (w writeTimes) sub(v writeTimes) writeTimes {
	r := writeTimes{count: w.count - v.count, bounds: w.bounds, counts: make([]uint64, len(w.counts))}
	for i := range w.counts {
		r.counts[i] = w.counts[i] - v.counts[i]
	}
	return r
}

// over is the number of writes slower than the bucket bound limit.
func (w writeTimes) over(limit float64) uint64 {
	for i, bound := range w.bounds {
		if bound == limit {
			return w.count - w.counts[i]
		}
	}
	panic("no bucket bound at the limit")
}

// maxBound is the smallest bucket bound every write stayed under (+Inf
// when one took longer than the last bound).
func (w writeTimes) maxBound() float64 {
	for i, bound := range w.bounds {
		if w.counts[i] == w.count {
			return bound
		}
	}
	return math.Inf(1)
}
