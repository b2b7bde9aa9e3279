package daemon

// Backups (R19, R20): the scheduled loop (snapshots every
// BackupSnapshotEvery, a daily one at BackupDailyAt in BackupZone, each
// series with its retention). The admin-socket op "backup", through which
// the CLI (deskd backup) and other tools (Snapshot) copy the store while the
// daemon holds its lock, is in adminbackup.go. The format is store's
// (store/backup.go).

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"deskd/sla"
	"deskd/store"
)

// Scheduled backups.

const (
	kindSnapshot = "snapshot"
	kindDaily    = "daily"
	// backupRetry is how soon a failed scheduled backup is tried again
	// (or the snapshot interval, when shorter).
	backupRetry = 5 * time.Minute
	// backupMaxSleep bounds the loop's sleep, so that a changed wall clock
	// (or a reload) is noticed within a minute.
	backupMaxSleep = time.Minute
)

// deskd's own backup names; retention touches nothing else.
var (
	snapshotNameRE = regexp.MustCompile(`^deskd-snapshot-(\d{8}T\d{4}Z)\.db\.(zst|gz)$`)
	dailyNameRE    = regexp.MustCompile(`^deskd-daily-(\d{8})\.db\.(zst|gz)$`)
	// tempNameRE matches what an interrupted backup or verification left.
	tempNameRE = regexp.MustCompile(`^\.(deskd-(snapshot|daily)-.*\.tmp-\d+|deskd-verify-\d+\.db)$`)
)

// backupSchedule is the loop's memory; only the backup loop touches it.
type backupSchedule struct {
	dir       string // the directory scanned at start (again after a reload changes it)
	lastSnap  time.Time
	lastDaily string               // local date (YYYYMMDD) of the newest good daily
	newest    map[string]string    // kind → name of the newest good backup: never deleted
	retryAt   map[string]time.Time // kind → no attempt before
}

// backupFile is one of deskd's backups, from its name.
type backupFile struct {
	name, kind string
	// at orders a series: a snapshot's UTC minute, a daily's local midnight.
	at   time.Time
	date string // daily: YYYYMMDD
}

func parseBackupName(name string, zone *time.Location) (backupFile, bool) {
	if m := snapshotNameRE.FindStringSubmatch(name); m != nil {
		at, err := time.Parse("20060102T1504Z", m[1])
		return backupFile{name: name, kind: kindSnapshot, at: at}, err == nil
	}
	if m := dailyNameRE.FindStringSubmatch(name); m != nil {
		at, err := time.ParseInLocation("20060102", m[1], zone)
		return backupFile{name: name, kind: kindDaily, at: at, date: m[1]}, err == nil
	}
	return backupFile{}, false
}

// backupFileName names a scheduled backup taken at at: snapshots by their
// UTC minute (a second one within the same minute replaces the first),
// dailies by their local date.
func backupFileName(kind string, at time.Time, zone *time.Location, compression string) string {
	ext := ".db.zst"
	if compression == store.CompressionGzip {
		ext = ".db.gz"
	}
	if kind == kindDaily {
		return "deskd-daily-" + at.In(zone).Format("20060102") + ext
	}
	return "deskd-snapshot-" + at.UTC().Format("20060102T1504Z") + ext
}

func backupsEnabled(o Options) bool {
	return o.BackupDir != "" && (o.BackupSnapshotEvery > 0 || o.BackupDailyAt != nil)
}

func backupZone(o Options) *time.Location {
	if o.BackupZone == nil {
		return time.UTC
	}
	return o.BackupZone
}

func backupCompression(o Options) string {
	if o.BackupCompression == "" {
		return store.CompressionZstd
	}
	return o.BackupCompression
}

// dailyClock is BackupDailyAt's hour and minute; ok is false when there
// is no daily backup.
func dailyClock(at *sla.ClockTime) (hour, minute int, ok bool) {
	if at == nil {
		return 0, 0, false
	}
	return at.Hour, at.Minute, true
}

// dailySlot is the instant of the daily backup on the given local date.
// Calendar arithmetic (time.Date normalises day+1 across month ends and
// DST changes), never "+24h": across a DST change the slot stays at the
// same wall-clock time, 23 or 25 hours after the previous one. On the
// night the clock skips the slot (02:05 in a spring-forward gap), time.Date
// gives an instant an hour later or earlier, one slot all the same.
func dailySlot(year int, month time.Month, day, hour, minute int, zone *time.Location) time.Time {
	return time.Date(year, month, day, hour, minute, 0, 0, zone)
}

// nextDailySlot is the first daily slot strictly after t.
func nextDailySlot(t time.Time, hour, minute int, zone *time.Location) time.Time {
	l := t.In(zone)
	for i := 0; ; i++ {
		s := dailySlot(l.Year(), l.Month(), l.Day()+i, hour, minute, zone)
		if s.After(t) {
			return s
		}
	}
}

// runBackups is the backup loop: started by Run, it ends with ctx (an
// interrupted backup leaves nothing under a final name).
func (d *Daemon) runBackups(ctx context.Context) {
	for {
		next := d.backupPass(ctx, d.now())
		wait := min(max(next.Sub(d.now()), 10*time.Millisecond), backupMaxSleep)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backupPass takes the backups due at now and returns when the next one
// is due. The settings are read afresh each pass, so a reload applies.
func (d *Daemon) backupPass(ctx context.Context, now time.Time) time.Time {
	o := d.rt.Load().opts
	if !backupsEnabled(o) {
		return now.Add(backupMaxSleep)
	}
	s := &d.backupSched
	if s.dir != o.BackupDir {
		d.scanBackups(ctx, o, now)
	}
	zone := backupZone(o)
	hour, minute, dailyOn := dailyClock(o.BackupDailyAt)
	if o.BackupSnapshotEvery > 0 && !now.Before(d.nextSnapshot(o)) {
		d.takeBackup(ctx, o, kindSnapshot, now)
	}
	if dailyOn && !now.Before(d.nextDaily(now, hour, minute, zone)) {
		d.takeBackup(ctx, o, kindDaily, now)
	}
	now = d.now()
	var next time.Time
	if o.BackupSnapshotEvery > 0 {
		next = d.nextSnapshot(o)
	}
	if dailyOn {
		if n := d.nextDaily(now, hour, minute, zone); next.IsZero() || n.Before(next) {
			next = n
		}
	}
	if next.IsZero() { // a daily_at that does not parse (Validate refuses it)
		next = now.Add(backupMaxSleep)
	}
	return next
}

// nextSnapshot is when the next snapshot is due: one interval after the
// newest good one (at once when there is none), not before a retry time.
func (d *Daemon) nextSnapshot(o Options) time.Time {
	s := &d.backupSched
	next := time.Time{}
	if !s.lastSnap.IsZero() {
		next = s.lastSnap.Add(o.BackupSnapshotEvery)
	}
	if r := s.retryAt[kindSnapshot]; r.After(next) {
		next = r
	}
	return next
}

// nextDaily is when the daily backup is due: today's slot if today has
// none yet, else tomorrow's. With no daily backup at all, at once, so a
// new installation does not wait for its first night; a daemon that was
// down at the slot catches up the same day.
func (d *Daemon) nextDaily(now time.Time, hour, minute int, zone *time.Location) time.Time {
	s := &d.backupSched
	l := now.In(zone)
	var next time.Time
	switch {
	case s.lastDaily >= l.Format("20060102"):
		next = nextDailySlot(now, hour, minute, zone)
	case s.lastDaily == "":
		next = now
	default:
		next = dailySlot(l.Year(), l.Month(), l.Day(), hour, minute, zone)
	}
	if r := s.retryAt[kindDaily]; r.After(next) {
		next = r
	}
	return next
}

// takeBackup writes one scheduled backup (verified before it gets its
// name), logs it, reports it to the metrics, and applies the retention of
// its series.
func (d *Daemon) takeBackup(ctx context.Context, o Options, kind string, now time.Time) {
	s := &d.backupSched
	comp := backupCompression(o)
	path := filepath.Join(o.BackupDir, backupFileName(kind, now, backupZone(o), comp))
	start := time.Now()
	var info store.BackupInfo
	err := os.MkdirAll(o.BackupDir, 0o750)
	if err == nil {
		info, err = store.WriteBackupFile(ctx, path, func(w io.Writer) (store.BackupInfo, error) {
			return d.db.Backup(w, comp)
		})
	}
	took := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: not a failure of the backup
		}
		retry := backupRetry
		if kind == kindSnapshot {
			retry = min(retry, o.BackupSnapshotEvery)
		}
		s.retryAt[kind] = now.Add(retry)
		d.log.Error("backup failed", "kind", kind, "file", path, "err", err, "retry_at", s.retryAt[kind])
		d.backupDone(now, false)
		return
	}
	delete(s.retryAt, kind)
	d.log.Info("backup written", "kind", kind, "file", path, "size", info.Size, "raw_size", info.RawSize,
		"took", took.Round(time.Millisecond), "sha256", info.SHA256, "cases", info.Cases, "messages", info.Messages)
	d.backupDone(now, true)
	s.newest[kind] = filepath.Base(path)
	if kind == kindSnapshot {
		s.lastSnap = now
	} else {
		s.lastDaily = now.In(backupZone(o)).Format("20060102")
	}
	d.applyRetention(o, kind, now)
}

// listBackups returns deskd's backups of kind in dir, newest first.
func listBackups(dir, kind string, zone *time.Location) ([]backupFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []backupFile
	for _, e := range entries {
		if f, ok := parseBackupName(e.Name(), zone); ok && f.kind == kind && e.Type().IsRegular() {
			files = append(files, f)
		}
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].at.Equal(files[j].at) {
			return files[i].at.After(files[j].at)
		}
		return files[i].name > files[j].name
	})
	return files, nil
}

// scanBackups finds, at start (or when a reload changes the directory),
// the newest intact backup of each series, so the schedule and the
// backup age survive a restart, removes what interrupted backups left,
// and applies the retention. Intact means its checksum file matches: every
// backup was verified in full before it got its name.
func (d *Daemon) scanBackups(ctx context.Context, o Options, now time.Time) {
	s := &d.backupSched
	*s = backupSchedule{dir: o.BackupDir, newest: map[string]string{}, retryAt: map[string]time.Time{}}
	entries, err := os.ReadDir(o.BackupDir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			d.log.Error("backup directory", "dir", o.BackupDir, "err", err)
		}
		return
	}
	for _, e := range entries {
		if tempNameRE.MatchString(e.Name()) {
			_ = os.RemoveAll(filepath.Join(o.BackupDir, e.Name()))
		}
	}
	zone := backupZone(o)
	var newestAt time.Time
	for _, kind := range []string{kindSnapshot, kindDaily} {
		files, _ := listBackups(o.BackupDir, kind, zone)
		for _, f := range files {
			if ctx.Err() != nil {
				return
			}
			path := filepath.Join(o.BackupDir, f.name)
			ok, err := store.ChecksumMatches(path)
			if !ok {
				d.log.Warn("backup damaged or unchecked; not counted", "file", path, "err", err)
				continue
			}
			s.newest[kind] = f.name
			taken := f.at
			if kind == kindSnapshot {
				s.lastSnap = f.at
			} else {
				s.lastDaily = f.date
				// A daily's name holds only its date; its file time is
				// when it was written.
				if fi, err := os.Stat(path); err == nil {
					taken = fi.ModTime()
				}
			}
			if taken.After(now) {
				taken = now
			}
			if taken.After(newestAt) {
				newestAt = taken
			}
			break
		}
		d.applyRetention(o, kind, now)
	}
	if !newestAt.IsZero() {
		d.backupDone(newestAt, true)
		d.log.Info("newest good backup found", "dir", o.BackupDir, "at", newestAt)
	}
}

// applyRetention deletes the backups of kind older than the series' keep
// time, except the newest good one; with no good backup of the series it
// deletes nothing.
func (d *Daemon) applyRetention(o Options, kind string, now time.Time) {
	keep := o.BackupSnapshotKeep
	if kind == kindDaily {
		keep = o.BackupDailyKeep
	}
	newest := d.backupSched.newest[kind]
	if keep <= 0 || newest == "" {
		return
	}
	files, err := listBackups(o.BackupDir, kind, backupZone(o))
	if err != nil {
		d.log.Error("backup retention", "dir", o.BackupDir, "err", err)
		return
	}
	cutoff := now.Add(-keep)
	for _, f := range files {
		if f.name == newest || !f.at.Before(cutoff) {
			continue
		}
		path := filepath.Join(o.BackupDir, f.name)
		if err := os.Remove(path); err != nil {
			d.log.Error("backup retention", "file", path, "err", err)
			continue
		}
		_ = os.Remove(path + store.ChecksumSuffix)
		d.log.Info("old backup removed", "file", path, "kept_for", keep)
	}
	// Checksum files whose backup is gone (an interrupted write, a
	// removal by hand) go once they are as old as their series' keep.
	entries, _ := os.ReadDir(o.BackupDir)
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), store.ChecksumSuffix)
		if !ok {
			continue
		}
		f, ok := parseBackupName(name, backupZone(o))
		if !ok || f.kind != kind || !f.at.Before(cutoff) {
			continue
		}
		if _, err := os.Stat(filepath.Join(o.BackupDir, name)); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(filepath.Join(o.BackupDir, e.Name()))
		}
	}
}
