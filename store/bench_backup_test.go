package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"

	"deskd/cases"
)

// BenchmarkBackupUnderLoad measures a backup of a store of about 1 GiB
// while a goroutine commits small ingest-like transactions without pause:
// the backup's time and the longest commit during it, against the longest
// commit over as long a time without a backup. It is heavy (it writes
// several GB to the temporary directory), so it runs only as a benchmark
// and not with -short:
//
//	go test -run '^$' -bench BackupUnderLoad -benchtime 1x ./store/
//
// DESKD_BENCH_STORE_MB sets the store's size (default 1000: just below
// bbolt's 1 GiB mapping step, the worst case; see below).
//
// Why the size matters: a read transaction (the backup) holds bbolt's mmap
// lock shared until it ends, and a commit that needs more pages than the
// file's current mapping must remap, which takes that lock exclusively: it
// waits for the backup to finish, and so does every transaction begun
// after it (Go's RWMutex lets no new reader past a waiting writer), so
// ingest, the admin socket and the health probe all stop. While the
// backup's read transaction is open, no page freed after it began can be
// reused, so the committing goroutine grows the file; a store just below
// its mapping therefore remaps during the backup. Sub-benchmarks:
//
//	bbolt-default  InitialMmapSize 0: bbolt maps powers of two up to 1 GiB,
//	               then 1 GiB steps; a fixed InitialMmapSize of 1 GiB (what
//	               Open had before) maps the same for this store
//	open           store.Open: the file's size plus 1 GiB (mmapSize)
//
// and, for each, the backup written to a file by WriteBackupFile (fsynced
// every 16 MiB, then verified, as the daemon does: "total" includes the
// verification) or to io.Discard (bbolt's locking alone).
func BenchmarkBackupUnderLoad(b *testing.B) {
	if testing.Short() {
		b.Skip("writes several GB; not with -short")
	}
	mb := 1000
	if s := os.Getenv("DESKD_BENCH_STORE_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			b.Fatalf("DESKD_BENCH_STORE_MB=%q", s)
		}
		mb = n
	}
	dir := b.TempDir()
	base := filepath.Join(dir, "base.db")
	start := time.Now()
	buildBigStore(b, base, int64(mb)<<20)
	fi, _ := os.Stat(base)
	b.Logf("built %s: %.0f MiB in %s", base, float64(fi.Size())/(1<<20), time.Since(start).Round(time.Second))

	mappings := []struct {
		name string
		open func(path string) (*DB, error)
	}{
		{"bbolt-default", func(path string) (*DB, error) { return openWithMmap(path, 0) }},
		{"open", func(path string) (*DB, error) { return Open(path, Options{}) }},
	}
	for _, m := range mappings {
		for _, dest := range []string{"file", "discard"} {
			b.Run(m.name+"/"+dest, func(b *testing.B) {
				for b.Loop() {
					work := filepath.Join(b.TempDir(), "deskd.db")
					copyFile(b, base, work)
					db, err := m.open(work)
					if err != nil {
						b.Fatal(err)
					}
					out := ""
					if dest == "file" {
						out = filepath.Join(b.TempDir(), "backup.db.zst")
					}
					r := backupUnderLoad(b, db, out)
					db.Close()
					b.ReportMetric(r.readTx.Seconds(), "readtx-s")
					b.ReportMetric(r.total.Seconds(), "total-s")
					b.ReportMetric(float64(r.rawSize)/(1<<20)/r.readTx.Seconds(), "MiB/s")
					b.ReportMetric(float64(r.stallBackup.Milliseconds()), "maxcommit-backup-ms")
					b.ReportMetric(float64(r.stallIdle.Milliseconds()), "maxcommit-idle-ms")
					b.ReportMetric(float64(r.commitsBackup), "commits-backup")
					b.ReportMetric(float64(r.commitsIdle), "commits-idle")
				}
			})
		}
	}
}

// openWithMmap is Open with a chosen bbolt InitialMmapSize, for comparison.
func openWithMmap(path string, mmap int) (*DB, error) {
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType, InitialMmapSize: mmap})
	if err != nil {
		return nil, err
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	dec, _ := zstd.NewReader(nil)
	db := &DB{path: path, enc: enc, dec: dec}
	db.bdb.Store(bdb)
	if err := bdb.Update(initSchema); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// buildBigStore fills a store until its file is about size bytes: cases
// with one message each, raw mails of 4-16 KiB and, every tenth, one with
// a 512 KiB attachment, 1000 cases per transaction.
func buildBigStore(b *testing.B, path string, size int64) {
	db, err := openWithMmap(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// Every mail its own random attachment: identical ones would let
	// the backup's compressor (and the reader) take shortcuts real mail
	// does not offer.
	rng := rand.New(rand.NewPCG(7, 11))
	fileSize := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		return fi.Size()
	}
	n := 0
	for fileSize() < size {
		// Smaller steps near the end, so the file stops just past size.
		perTx := 1000
		if left := size - fileSize(); left < 64<<20 {
			perTx = 50
		}
		err := db.Update(func(tx *Tx) error {
			for range perTx {
				n++
				id, _ := tx.NextCaseID()
				c := newCase(id, cases.StatusClosed)
				c.Customer = fmt.Sprintf("customer %d", n%40)
				m := newMessage(c.MessageKeys[0], id)
				size := 4<<10 + rng.IntN(12<<10)
				if n%10 == 0 {
					size = 512 << 10
				}
				raw := uniqueRaw(rng, size)
				if err := tx.PutMessage(m, raw); err != nil {
					return err
				}
				if err := tx.PutCase(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// uniqueRaw is realisticRaw with the attachment drawn from rng.
func uniqueRaw(rng *rand.Rand, size int) []byte {
	raw := realisticRaw(size)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := bytes.Index(raw, []byte("base64\r\n\r\n")) + len("base64\r\n\r\n")
	for ; i < len(raw); i++ {
		if raw[i] != '\r' && raw[i] != '\n' {
			raw[i] = alphabet[rng.Uint64()&63]
		}
	}
	return raw
}

func copyFile(b *testing.B, src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

type underLoad struct {
	readTx, total              time.Duration
	rawSize, compressed        int64
	stallBackup, stallIdle     time.Duration
	commitsBackup, commitsIdle int
}

// backupUnderLoad runs a backup with the ingest-like writer going, then
// the writer alone for as long, and reports both phases' longest commit.
// With out == "" the backup goes to io.Discard (no disk writes: only
// bbolt's locking is measured); else WriteBackupFile writes, fsyncs and
// verifies it, as the daemon does.
func backupUnderLoad(b *testing.B, db *DB, out string) underLoad {
	type commit struct {
		end  time.Time
		took time.Duration
	}
	var (
		mu      sync.Mutex
		commits []commit
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	raw := realisticRaw(6 << 10)
	ack := realisticRaw(2 << 10)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for uid := uint32(1); ; uid++ {
			select {
			case <-stop:
				return
			default:
			}
			t := time.Now()
			err := db.Update(func(tx *Tx) error {
				id, err := tx.NextCaseID()
				if err != nil {
					return err
				}
				c := newCase(id, cases.StatusOpen)
				m := newMessage(fmt.Sprintf("mid:load%d@acme.example", uid), id)
				c.MessageKeys = []string{m.Key}
				if err := tx.PutMessage(m, raw); err != nil {
					return err
				}
				if err := tx.PutCase(c); err != nil {
					return err
				}
				if err := tx.Enqueue(&OutboxEntry{CaseID: id, Kind: "ack", EnvelopeFrom: "support@desk.example",
					Recipients: []string{"ann@acme.example"}, Raw: ack, CreatedAt: t0}); err != nil {
					return err
				}
				return tx.SetCheckpoint("INBOX", 1, uid)
			})
			if err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			commits = append(commits, commit{end: time.Now(), took: time.Since(t)})
			mu.Unlock()
		}
	}()
	lastEnd := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if len(commits) == 0 {
			return time.Time{}
		}
		return commits[len(commits)-1].end
	}
	maxIn := func(from, to time.Time) (time.Duration, int) {
		mu.Lock()
		defer mu.Unlock()
		var m time.Duration
		n := 0
		for _, c := range commits {
			// A commit counts for the phase it ended in.
			if c.end.After(from) && !c.end.After(to) {
				m = max(m, c.took)
				n++
			}
		}
		return m, n
	}

	time.Sleep(time.Second) // the writer settles
	var r underLoad
	var info BackupInfo
	var err error
	t1 := time.Now()
	if out == "" {
		info, err = db.Backup(io.Discard, CompressionZstd)
		r.readTx = time.Since(t1)
	} else {
		info, err = WriteBackupFile(context.Background(), out, func(w io.Writer) (BackupInfo, error) {
			defer func() { r.readTx = time.Since(t1) }()
			return db.Backup(w, CompressionZstd)
		})
	}
	t2 := time.Now()
	if err != nil {
		b.Fatal(err)
	}
	// A commit the backup stalled ends after it: wait for the one in
	// flight, then measure the writer alone for as long as the backup took.
	for !lastEnd().After(t2) {
		time.Sleep(10 * time.Millisecond)
	}
	r.stallBackup, r.commitsBackup = maxIn(t1, lastEnd())
	t3 := time.Now()
	time.Sleep(t2.Sub(t1))
	r.stallIdle, r.commitsIdle = maxIn(t3, time.Now())
	close(stop)
	wg.Wait()
	r.total, r.rawSize, r.compressed = t2.Sub(t1), info.RawSize, info.Size
	all := make([]time.Duration, 0, len(commits))
	var worst commit
	for _, c := range commits {
		all = append(all, c.took)
		if c.end.After(t1) && c.took > worst.took {
			worst = c
		}
	}
	b.Logf("longest commit: began %s after the backup, ended %s after it (read tx ended at %s)",
		worst.end.Add(-worst.took).Sub(t1).Round(time.Millisecond), worst.end.Sub(t1).Round(time.Millisecond), r.readTx.Round(time.Millisecond))
	slices.Sort(all)
	b.Logf("backup read tx %s, total %s, %.0f MiB → %.0f MiB; commits during: %d (max %s), without: %d (max %s); median commit %s",
		r.readTx.Round(time.Millisecond), r.total.Round(time.Millisecond), float64(r.rawSize)/(1<<20), float64(r.compressed)/(1<<20),
		r.commitsBackup, r.stallBackup.Round(time.Millisecond), r.commitsIdle, r.stallIdle.Round(time.Millisecond),
		all[len(all)/2].Round(time.Microsecond))
	return r
}
