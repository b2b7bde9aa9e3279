package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/internal/storetest"
	"deskd/sla"
	"deskd/store"
)

// storeContents is the form in which a restored store is compared with
// the original.
func storeContents(t *testing.T, db *store.DB) map[string]string {
	return storetest.Contents(t, db)
}

// The "backup" admin op streams a verified backup of the running daemon's
// store; Snapshot gets the raw file; both restore to the same contents.
func TestAdminBackupAndSnapshot(t *testing.T) {
	h := newHarness(t, nil)
	h.deliver(question("b1@jansen.example", "Anna <anna@jansen.example>", "Kassa kapot", ""))
	h.deliver(question("b2@acme.example", "Bob <bob@acme.example>", "Printer", ""))
	h.waitReports(2)
	h.waitMails(2)
	dir := t.TempDir()

	zst := filepath.Join(dir, "live.db.zst")
	info, err := store.WriteBackupFile(context.Background(), zst, func(w io.Writer) (store.BackupInfo, error) {
		return FetchBackup(h.opts.AdminSocket, w, store.CompressionZstd)
	})
	if err != nil {
		t.Fatal(err)
	}
	if info.Cases != 2 || info.Compression != store.CompressionZstd {
		t.Errorf("info %+v", info)
	}
	snap := filepath.Join(dir, "snap.db")
	if err := Snapshot(h.opts.AdminSocket, snap); err != nil {
		t.Fatal(err)
	}
	if _, err := FetchBackup(h.opts.AdminSocket, io.Discard, "lz4"); err == nil || !strings.Contains(err.Error(), "unknown compression") {
		t.Errorf("bad compression: %v", err)
	}
	if _, err := FetchBackup(filepath.Join(dir, "nothing.sock"), io.Discard, "zstd"); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("no daemon: %v", err)
	}
	if err := Snapshot(filepath.Join(dir, "nothing.sock"), filepath.Join(dir, "x.db")); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Snapshot without a daemon: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	h.stop()

	orig, err := store.Open(h.opts.StorePath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	want := storeContents(t, orig)
	orig.Close()
	if len(want) < 2*3 {
		t.Fatalf("original store holds too little: %v", want)
	}

	restored := filepath.Join(t.TempDir(), "deskd.db")
	if _, err := store.Restore(zst, restored, store.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{restored, snap} {
		db, err := store.Open(path, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := storeContents(t, db); !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs from the original store", path)
		}
		db.Close()
	}
}

// Scheduled backups, time driven through the Now option: snapshots every
// interval, the daily one at its local time, retention per series that
// never removes the newest good backup nor anything not named by deskd,
// and a restart that finds the newest good backup.
func TestScheduledBackups(t *testing.T) {
	zone, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	backups := t.TempDir()
	clock := &testClock{}
	h := newHarnessNotStarted(t, func(o *Options) {
		o.Now = clock.now
		o.BackupDir = backups
		o.BackupSnapshotEvery = 30 * time.Minute
		o.BackupSnapshotKeep = 2 * time.Hour
		o.BackupDailyAt = &sla.ClockTime{Hour: 2, Minute: 5}
		o.BackupDailyKeep = 72 * time.Hour
		o.BackupZone = zone
	})
	// Files retention must leave alone.
	foreign := []string{"notes.txt", "deskd-snapshot-latest.db.zst", "deskd-snapshot-20200101T0000Z.db.zst.partial", "deskd-daily-2020.db.zst"}
	for _, name := range foreign {
		os.WriteFile(filepath.Join(backups, name), []byte("x"), 0o600)
	}
	d, err := Open(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	update := func() {
		err := d.db.Update(func(tx *store.Tx) error {
			id, _ := tx.NextCaseID()
			return tx.PutCase(&cases.Case{ID: id, Status: cases.StatusOpen, Customer: "Acme"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// 23:50 local, nothing on disk: a snapshot and a first daily at once.
	now := time.Date(2026, 11, 28, 23, 50, 0, 0, zone)
	clock.freeze(now)
	update()
	next := d.backupPass(ctx, now)
	if want := now.Add(30 * time.Minute); !next.Equal(want) {
		t.Errorf("next after the first pass %v, want %v", next, want)
	}
	assertFiles(t, backups, "snapshot", "deskd-snapshot-20261128T2250Z.db.zst")
	assertFiles(t, backups, "daily", "deskd-daily-20261128.db.zst")
	if age, enabled := d.backupHealth(); !enabled || age != 0 {
		t.Errorf("backupHealth = %v, %v", age, enabled)
	}

	// Ten-minute steps to 05:00: a snapshot every 30 minutes, the daily at
	// the first pass after 02:05, snapshots older than 2h removed.
	for now.Before(time.Date(2026, 11, 29, 5, 0, 0, 0, zone)) {
		now = now.Add(10 * time.Minute)
		clock.freeze(now)
		update()
		d.backupPass(ctx, now)
	}
	assertFiles(t, backups, "snapshot",
		"deskd-snapshot-20261129T0150Z.db.zst", "deskd-snapshot-20261129T0220Z.db.zst",
		"deskd-snapshot-20261129T0250Z.db.zst", "deskd-snapshot-20261129T0320Z.db.zst",
		"deskd-snapshot-20261129T0350Z.db.zst")
	assertFiles(t, backups, "daily", "deskd-daily-20261128.db.zst", "deskd-daily-20261129.db.zst")
	for _, name := range foreign {
		if _, err := os.Stat(filepath.Join(backups, name)); err != nil {
			t.Errorf("retention touched %s: %v", name, err)
		}
	}
	// Every backup verifies in full and holds the cases of its time.
	for _, name := range listNames(t, backups, "deskd-") {
		info, err := store.VerifyBackup(filepath.Join(backups, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if info.Cases == 0 {
			t.Errorf("%s: no cases", name)
		}
	}

	// Never the newest good one, however old.
	o := d.rt.Load().opts
	d.applyRetention(o, kindSnapshot, now.Add(1000*time.Hour))
	assertFiles(t, backups, "snapshot", "deskd-snapshot-20261129T0350Z.db.zst")

	// A restart with the only snapshot damaged: it does not count, so a
	// snapshot is due at once; today's daily counts; what an interrupted
	// backup left is removed.
	d.db.Close()
	os.WriteFile(filepath.Join(backups, ".deskd-snapshot-20261129T0400Z.db.zst.tmp-123"), []byte("half"), 0o600)
	os.Mkdir(filepath.Join(backups, ".deskd-verify-77.db"), 0o700)
	damage(t, filepath.Join(backups, "deskd-snapshot-20261129T0350Z.db.zst"))
	now = time.Date(2026, 11, 29, 5, 3, 0, 0, zone)
	clock.freeze(now)
	d, err = Open(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.db.Close()
	d.backupPass(ctx, now)
	if left, _ := filepath.Glob(filepath.Join(backups, ".*")); len(left) != 0 {
		t.Errorf("leftovers not removed: %v", left)
	}
	// The damaged one stays until it is 2h old.
	assertFiles(t, backups, "snapshot", "deskd-snapshot-20261129T0350Z.db.zst", "deskd-snapshot-20261129T0403Z.db.zst")
	assertFiles(t, backups, "daily", "deskd-daily-20261128.db.zst", "deskd-daily-20261129.db.zst")

	// Another restart finds the new snapshot good: nothing is due at 05:10.
	// (The daily's file time, which counts for its age, is real time:
	// set it to the test clock's.)
	d.db.Close()
	daily29 := time.Date(2026, 11, 29, 2, 10, 0, 0, zone)
	os.Chtimes(filepath.Join(backups, "deskd-daily-20261129.db.zst"), daily29, daily29)
	now = time.Date(2026, 11, 29, 5, 10, 0, 0, zone)
	clock.freeze(now)
	d, err = Open(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	next = d.backupPass(ctx, now)
	if want := time.Date(2026, 11, 29, 5, 33, 0, 0, zone); !next.Equal(want) {
		t.Errorf("next snapshot after the restart %v, want %v", next, want)
	}
	if age, enabled := d.backupHealth(); !enabled || age != 7*time.Minute {
		t.Errorf("age after the restart %v (enabled %v), want 7m", age, enabled)
	}

	// Days later: a new daily; the dailies older than 72h go.
	now = time.Date(2026, 12, 3, 3, 0, 0, 0, zone)
	clock.freeze(now)
	d.backupPass(ctx, now)
	assertFiles(t, backups, "daily", "deskd-daily-20261203.db.zst")
	assertFiles(t, backups, "snapshot", "deskd-snapshot-20261203T0200Z.db.zst")
}

func damage(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o600)
}

func listNames(t *testing.T, dir, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && !strings.HasSuffix(e.Name(), store.ChecksumSuffix) {
			if _, ok := parseBackupName(e.Name(), time.UTC); ok {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	return names
}

// assertFiles checks the backups of one kind in dir, each with its
// checksum file.
func assertFiles(t *testing.T, dir, kind string, want ...string) {
	t.Helper()
	got := listNames(t, dir, "deskd-"+kind+"-")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s backups %v, want %v", kind, got, want)
	}
	for _, name := range got {
		if _, err := os.Stat(filepath.Join(dir, name+store.ChecksumSuffix)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The daily slot is found by calendar arithmetic in the support zone: the
// same wall-clock time every day, 23 or 25 hours apart across DST, one
// slot even on the night the clock skips it.
func TestDailySlotDST(t *testing.T) {
	zone, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	slots := func(from time.Time, n int) []time.Time {
		var out []time.Time
		for i := 0; i < n; i++ {
			from = nextDailySlot(from, 2, 5, zone)
			out = append(out, from)
		}
		return out
	}
	// Spring forward on 2026-03-29: 02:00 CET → 03:00 CEST; 02:05 does not
	// exist that night.
	s := slots(time.Date(2026, 3, 27, 12, 0, 0, 0, zone), 4)
	for i, want := range []string{"2026-03-28 02:05 CET", "", "2026-03-30 02:05 CEST", "2026-03-31 02:05 CEST"} {
		if want != "" && s[i].Format("2006-01-02 15:04 MST") != want {
			t.Errorf("spring slot %d = %s, want %s", i, s[i].Format("2006-01-02 15:04 MST"), want)
		}
	}
	if day := s[1].In(zone).Day(); day != 29 {
		t.Errorf("the skipped slot fell on day %d", day)
	}
	if gap := s[2].Sub(s[0]); gap != 47*time.Hour {
		t.Errorf("28 → 30 March: %v, want 47h (not 48h)", gap)
	}
	// Fall back on 2026-10-25: 03:00 CEST → 02:00 CET.
	s = slots(time.Date(2026, 10, 24, 12, 0, 0, 0, zone), 3)
	for i, want := range []string{"2026-10-25 02:05", "2026-10-26 02:05", "2026-10-27 02:05"} {
		if got := s[i].Format("2006-01-02 15:04"); got != want {
			t.Errorf("autumn slot %d = %s, want %s", i, got, want)
		}
	}
	if gap := s[2].Sub(s[1]); gap != 24*time.Hour {
		t.Errorf("26 → 27 October: %v", gap)
	}
	// Month and year ends.
	if got := nextDailySlot(time.Date(2026, 12, 31, 3, 0, 0, 0, zone), 2, 5, zone); got.Format("2006-01-02 15:04") != "2027-01-01 02:05" {
		t.Errorf("after new year's eve: %s", got)
	}
	// Exactly at a slot: the next one, not the same.
	at := time.Date(2026, 6, 1, 2, 5, 0, 0, zone)
	if got := nextDailySlot(at, 2, 5, zone); !got.Equal(at.AddDate(0, 0, 1)) {
		t.Errorf("after a slot: %s", got)
	}
}

// The loop started by Run takes its first backups at once when none
// exist, reports them to the metrics, and stops with the daemon.
func TestBackupLoopRuns(t *testing.T) {
	backups := filepath.Join(t.TempDir(), "backups")
	h := newHarness(t, func(o *Options) {
		o.BackupDir = backups
		o.BackupCompression = store.CompressionGzip
		o.BackupSnapshotEvery = time.Hour
		o.BackupSnapshotKeep = 2 * time.Hour
		o.BackupDailyAt = &sla.ClockTime{Hour: 2, Minute: 5}
		o.BackupDailyKeep = 24 * time.Hour
		o.BackupMaxAge = time.Hour
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		snaps, _ := filepath.Glob(filepath.Join(backups, "deskd-snapshot-*.db.gz.sha256"))
		dailies, _ := filepath.Glob(filepath.Join(backups, "deskd-daily-*.db.gz.sha256"))
		if len(snaps) == 1 && len(dailies) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backups not written: %v %v", snaps, dailies)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.stop()
	if h.d.lastBackup().IsZero() {
		t.Error("the backups were not reported to the metrics")
	}
	for _, name := range listNames(t, backups, "deskd-") {
		if _, err := store.VerifyBackup(filepath.Join(backups, name)); err != nil {
			t.Error(err)
		}
	}
	if maxAge := h.d.backupMaxAge(); maxAge != time.Hour {
		t.Errorf("backupMaxAge %v", maxAge)
	}
}
