package daemon

// Backups (R19, R20): the scheduled loop (snapshots every
// BackupSnapshotEvery, a daily one at BackupDailyAt in BackupZone, each
// series with its retention), and the admin-socket op "backup" through which
// the CLI (deskd backup) and other tools (Snapshot) copy the store while the
// daemon holds its lock. The format is store's (store/backup.go).

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"deskd/store"
)

// The "backup" admin op. After the request
// {"op":"backup","compression":"zstd"|"gzip"|"none"} the daemon answers
// one JSON line ({"result":{"compression":...}} or {"error":...}), then the
// backup in frames (a big-endian uint32 length, that many bytes; a zero
// length ends them), then one JSON line with the outcome: {"result":
// store.BackupInfo} or {"error":...}. Framing lets the client tell a
// complete backup from one cut short, and the trailer's SHA-256 (of the
// bytes sent) lets it check what it received end to end.

const (
	maxFrame = 1 << 20
	// backupIOTimeout bounds each write to (and read from) the other side
	// of a backup transfer. A client that stops reading must not keep the
	// backup's read transaction open for ever: bbolt reuses no page freed
	// after it began, and a remap would wait for it.
	backupIOTimeout = time.Minute
)

func validCompression(c string) bool {
	return c == store.CompressionZstd || c == store.CompressionGzip || c == store.CompressionNone
}

// serveBackup answers the "backup" op on conn.
func (d *Daemon) serveBackup(ctx context.Context, conn net.Conn, req AdminRequest) {
	comp := req.Compression
	if comp == "" {
		comp = store.CompressionZstd
	}
	_ = conn.SetDeadline(time.Time{})
	writeLine := func(resp adminResponse) error {
		_ = conn.SetWriteDeadline(time.Now().Add(backupIOTimeout))
		return json.NewEncoder(conn).Encode(resp)
	}
	if !validCompression(comp) {
		_ = writeLine(adminResponse{Error: fmt.Sprintf("backup: unknown compression %q (zstd, gzip or none)", comp)})
		return
	}
	hdr, _ := json.Marshal(map[string]string{"compression": comp})
	if err := writeLine(adminResponse{Result: hdr}); err != nil {
		return
	}
	start := time.Now()
	fw := &frameWriter{ctx: ctx, conn: conn}
	info, err := d.db.Backup(fw, comp)
	if fw.err != nil {
		// The connection is gone (or we are stopping): no trailer.
		d.log.Warn("backup over the admin socket aborted", "err", fw.err)
		return
	}
	if endErr := fw.end(); endErr != nil {
		return
	}
	var trailer adminResponse
	if err != nil {
		trailer.Error = err.Error()
		d.log.Error("backup over the admin socket failed", "err", err)
	} else {
		trailer.Result, _ = json.Marshal(info)
		d.log.Info("backup sent over the admin socket", "compression", comp, "size", info.Size,
			"took", time.Since(start).Round(time.Millisecond), "sha256", info.SHA256)
	}
	_ = writeLine(trailer)
}

type frameWriter struct {
	ctx  context.Context
	conn net.Conn
	err  error
	hdr  [4]byte
}

func (f *frameWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 && f.err == nil {
		if f.err = f.ctx.Err(); f.err != nil {
			break
		}
		n := min(len(p), maxFrame)
		binary.BigEndian.PutUint32(f.hdr[:], uint32(n))
		_ = f.conn.SetWriteDeadline(time.Now().Add(backupIOTimeout))
		bufs := net.Buffers{f.hdr[:], p[:n]}
		if _, f.err = bufs.WriteTo(f.conn); f.err == nil {
			written += n
			p = p[n:]
		}
	}
	return written, f.err
}

func (f *frameWriter) end() error {
	if f.err != nil {
		return f.err
	}
	_ = f.conn.SetWriteDeadline(time.Now().Add(backupIOTimeout))
	_, f.err = f.conn.Write([]byte{0, 0, 0, 0})
	return f.err
}

// FetchBackup asks the daemon on the admin socket for a backup in the given
// compression (store.CompressionZstd, CompressionGzip, or CompressionNone
// for the raw bbolt file) and writes it to w. It checks the received bytes
// against the SHA-256 the daemon computed. It returns an error matching
// ErrNoDaemon when no daemon answers on socket.
func FetchBackup(socket string, w io.Writer, compression string) (store.BackupInfo, error) {
	var info store.BackupInfo
	conn, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return info, fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(backupIOTimeout))
	if err := json.NewEncoder(conn).Encode(AdminRequest{Op: "backup", Compression: compression}); err != nil {
		return info, fmt.Errorf("backup request: %w", err)
	}
	br := bufio.NewReaderSize(conn, maxFrame+4)
	readLine := func() (adminResponse, error) {
		var resp adminResponse
		_ = conn.SetReadDeadline(time.Now().Add(backupIOTimeout))
		line, err := br.ReadBytes('\n')
		if err != nil {
			return resp, err
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return resp, err
		}
		if resp.Error != "" {
			return resp, errors.New(resp.Error)
		}
		return resp, nil
	}
	if _, err := readLine(); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	h := sha256.New()
	out := io.MultiWriter(w, h)
	var n int64
	var hdr [4]byte
	for {
		_ = conn.SetReadDeadline(time.Now().Add(backupIOTimeout))
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return info, fmt.Errorf("backup: cut short after %d bytes: %w", n, err)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size == 0 {
			break
		}
		if size > maxFrame {
			return info, fmt.Errorf("backup: frame of %d bytes", size)
		}
		m, err := io.CopyN(out, br, int64(size))
		n += m
		if err != nil {
			return info, fmt.Errorf("backup: after %d bytes: %w", n, err)
		}
	}
	resp, err := readLine()
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if err := json.Unmarshal(resp.Result, &info); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != info.SHA256 || n != info.Size {
		return info, fmt.Errorf("backup: received %d bytes with SHA-256 %s, the daemon sent %d with %s", n, got, info.Size, info.SHA256)
	}
	return info, nil
}

// Snapshot copies the running daemon's store, uncompressed, to dstPath: a
// consistent bbolt file (one read transaction) that store.Open (ReadOnly)
// or bbolt can open, written to a temporary name beside dstPath, fsynced
// and renamed. It returns an error matching ErrNoDaemon when no daemon
// answers on socket (the caller may then open the store file itself).
func Snapshot(socket, dstPath string) error {
	err := store.WriteFileAtomic(dstPath, func(w io.Writer) error {
		_, err := FetchBackup(socket, w, store.CompressionNone)
		return err
	})
	if err != nil && !errors.Is(err, ErrNoDaemon) {
		return fmt.Errorf("snapshot %s: %w", dstPath, err)
	}
	return err
}

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
	return o.BackupDir != "" && (o.BackupSnapshotEvery > 0 || o.BackupDailyAt != "")
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

// dailyClock parses BackupDailyAt ("HH:MM").
func dailyClock(s string) (hour, minute int, ok bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, 0, false
	}
	return t.Hour(), t.Minute(), true
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
