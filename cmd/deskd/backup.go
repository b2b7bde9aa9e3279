package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"deskd/config"
	"deskd/daemon"
	"deskd/internal/progress"
	"deskd/store"
)

// supportZone is support.timezone for the daemon's daily backups (Validate
// has checked that it loads).
func supportZone(cfg *config.Config) *time.Location {
	z, err := cfg.Support.Location()
	if err != nil {
		return nil
	}
	return z
}

// cmdBackup writes a backup: through the running daemon's admin socket
// when one answers (it holds the store's lock), else from the store file
// (read-only; any schema version, so a store can be saved before an
// upgrade).
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "backup file to write (and FILE.sha256 beside it); - for standard output")
	compression := fs.String("compression", "", "zstd or gzip (default: gzip for a FILE ending in .gz, else zstd)")
	sf := addStoreFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *out == "" || fs.NArg() > 0 {
		return usageError{"backup: give --out FILE (and no other arguments)"}
	}
	comp := *compression
	if comp == "" {
		comp = store.CompressionZstd
		if strings.HasSuffix(*out, ".gz") {
			comp = store.CompressionGzip
		}
	}
	if comp != store.CompressionZstd && comp != store.CompressionGzip {
		return usageError{fmt.Sprintf("backup: --compression %q: zstd or gzip", comp)}
	}
	loc, err := sf.locate()
	if err != nil {
		return err
	}
	bar := progress.New(stderr, 0, progress.UnitBytes, "backup")
	via := ""
	write := func(w io.Writer) (store.BackupInfo, error) {
		w = io.MultiWriter(w, bar)
		if loc.socket != "" {
			info, err := daemon.AdminClient{Socket: loc.socket, Timeout: loc.cfg.Admin.InactivityTimeout, Notes: stderr}.Backup(w, comp)
			if err == nil || !errors.Is(err, daemon.ErrNoDaemon) {
				via = "the running daemon (" + loc.socket + ")"
				return info, err
			}
		}
		via = "the store file " + loc.path
		return store.BackupStore(loc.path, w, comp)
	}
	if *out == "-" {
		info, err := write(stdout)
		bar.Finish()
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "backup of %s: %s, sha256 %s\n", via, describeBackup(info), info.SHA256)
		return nil
	}
	info, err := store.WriteBackupFile(ctx, *out, write)
	bar.Finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup of %s written to %s: %s\n", via, *out, describeBackup(info))
	// The checksum file names the backup by its base name, as
	// sha256sum does, so it is checked from the backup's directory.
	fmt.Fprintf(stdout, "sha256 %s (check: cd %s && sha256sum -c %s%s)\n", info.SHA256,
		filepath.Dir(*out), filepath.Base(*out), store.ChecksumSuffix)
	return nil
}

func describeBackup(info store.BackupInfo) string {
	return fmt.Sprintf("%s, %s (%s uncompressed), schema %d, %d cases, %d messages",
		info.Compression, sizeString(info.Size), sizeString(info.RawSize), info.SchemaVersion, info.Cases, info.Messages)
}

func sizeString(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	default:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
}

// cmdRestore replaces the store with a backup, only while deskd is stopped.
// Without --yes it verifies the backup and says what it would do.
func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "backup file (with FILE.sha256 beside it)")
	yes := fs.Bool("yes", false, "replace the store (without it: verify only)")
	sf := addStoreFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *from == "" || fs.NArg() > 0 {
		return usageError{"restore: give --from FILE (and no other arguments)"}
	}
	loc, err := sf.locate()
	if err != nil {
		return err
	}
	// A daemon on the socket is the friendly check; the real one is the
	// store's lock, which store.Restore takes. With --store alone (no
	// socket) the target may be a scratch file beside a running daemon,
	// to open an old backup, so only the lock decides.
	if loc.socket != "" {
		var pong string
		if err := daemon.AdminCall(loc.socket, daemon.AdminRequest{Op: "ping"}, &pong); err == nil {
			return fmt.Errorf("restore: deskd is running (it answers on %s): stop it first (systemctl stop deskd), restore, then start it", loc.socket)
		}
	}
	fi, err := os.Stat(*from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	bar := progress.New(stderr, fi.Size(), progress.UnitBytes, "restore")
	var seen int64
	report := func(read int64) { bar.Add(read - seen); seen = read }
	if !*yes {
		info, err := store.VerifyBackupContext(ctx, *from, report)
		bar.Finish()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is a good backup: %s\n", *from, describeBackup(info))
		if _, err := os.Stat(loc.path); err == nil {
			fmt.Fprintf(stdout, "Nothing changed. With --yes, it replaces %s (the current file is kept as %s.before-restore-<time>).\n", loc.path, loc.path)
		} else {
			fmt.Fprintf(stdout, "Nothing changed. With --yes, it is installed as %s.\n", loc.path)
		}
		return usageError{"restore: add --yes to replace the store"}
	}
	res, err := store.Restore(*from, loc.path, store.RestoreOptions{Progress: report})
	bar.Finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s: %s\n", *from, loc.path, describeBackup(res.Backup))
	if res.Previous != "" {
		fmt.Fprintf(stdout, "the previous store is kept as %s\n", res.Previous)
	}
	if res.Backup.SchemaVersion < store.SchemaVersion() {
		fmt.Fprintf(stdout, "the backup has schema %d: deskd upgrades it when it starts (keeping a copy of it beside the store)\n", res.Backup.SchemaVersion)
	}
	fmt.Fprintln(stdout, "start deskd again (systemctl start deskd)")
	return nil
}
