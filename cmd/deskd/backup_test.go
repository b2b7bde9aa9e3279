package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"deskd/internal/storetest"
	"deskd/store"
)

// dumpStore reads every case, every message record and every raw mail.
func dumpStore(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return storetest.Contents(t, db)
}

// `deskd backup` copies the running daemon's store through the admin
// socket; `deskd restore` refuses while the daemon runs, refuses a
// damaged backup, and after the daemon stopped restores a store with
// every case, message and raw mail of the original. The daemon's own
// scheduled backups appear in backup.dir.
func TestBackupRestoreCLI(t *testing.T) {
	imapSrv, smtpSrv, dir, configPath := startPeers(t)
	mails := []string{
		"From: Bob <bob@acme.example>\r\nTo: support@example.test\r\nSubject: Vraag één\r\nMessage-ID: <br1@acme.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo, de kassa doet het niet. Groeten, Bob\r\n",
		"From: Ann <ann@globex.example>\r\nTo: support@example.test\r\nSubject: Logs\r\nMessage-ID: <br2@globex.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nSee the log.\r\n--XX\r\nContent-Type: application/octet-stream; name=log.bin\r\nContent-Disposition: attachment; filename=log.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n", 50) + "--XX--\r\n",
	}
	for _, m := range mails {
		if err := imapSrv.Deliver("INBOX", []byte(m), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncBuffer
	cmd := deskdProcess(t, &logs, "run", "--config", configPath)
	defer cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := smtpSrv.WaitFor(ctx, 2); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	// The reply threads into case 1.
	if err := imapSrv.Deliver("INBOX", []byte("From: Bob <bob@acme.example>\r\nTo: support@example.test\r\nSubject: Re: Vraag één\r\nMessage-ID: <br3@acme.example>\r\nIn-Reply-To: <br1@acme.example>\r\n\r\nNog steeds kapot.\r\n"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); imapSrv.Count("INBOX") != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("inbox not emptied\n%s", logs.String())
		}
	}

	out := filepath.Join(t.TempDir(), "manual.db.zst")
	stdout, stderr, code := runCLI(t, "backup", "--out", out, "--config", configPath)
	if code != 0 || !strings.Contains(stdout, "running daemon") || !strings.Contains(stdout, "2 cases") {
		t.Fatalf("backup via the socket: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(out + store.ChecksumSuffix); err != nil {
		t.Error(err)
	}

	// While the daemon runs: refused, whether found by its socket or by
	// the store's lock.
	fresh := filepath.Join(t.TempDir(), "restored.db")
	if _, errOut, code := runCLI(t, "restore", "--from", out, "--config", configPath, "--yes"); code != exitFail || !strings.Contains(errOut, "deskd is running") {
		t.Errorf("restore while running: exit %d, %s", code, errOut)
	}
	live := filepath.Join(dir, "deskd.db")
	if _, errOut, code := runCLI(t, "restore", "--from", out, "--store", live, "--socket", filepath.Join(dir, "none.sock"), "--yes"); code != exitFail || !strings.Contains(errOut, "stop it first") {
		t.Errorf("restore over the locked store: exit %d, %s", code, errOut)
	}
	// --store alone names the target: a scratch copy beside the running
	// daemon is fine (the lock decides, not the socket), e.g. to export
	// one customer from an old backup.
	scratch := filepath.Join(t.TempDir(), "scratch.db")
	if stdout, errOut, code := runCLI(t, "restore", "--from", out, "--config", configPath, "--store", scratch, "--yes"); code != 0 {
		t.Errorf("restore into a scratch store while the daemon runs: exit %d\n%s%s", code, stdout, errOut)
	} else if got := dumpStore(t, scratch); got["case 1"] == "" || got["case 2"] == "" {
		t.Errorf("scratch restore holds %d records", len(got))
	}

	// The daemon's scheduled backups: one snapshot and a first daily at
	// start (none existed).
	for _, pattern := range []string{"deskd-snapshot-*.db.zst", "deskd-daily-*.db.zst"} {
		found, _ := filepath.Glob(filepath.Join(dir, "backups", pattern))
		if len(found) != 1 {
			t.Errorf("backup.dir holds %v for %s", found, pattern)
			continue
		}
		if _, err := store.VerifyBackup(found[0]); err != nil {
			t.Error(err)
		}
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	want := dumpStore(t, live)
	if want["case 1"] == "" || want["case 2"] == "" || want["case 3"] != "" {
		t.Fatalf("original store: want cases 1 and 2, got %d records", len(want))
	}

	// Without --yes: verified, nothing changed, exit 2.
	stdout, _, code = runCLI(t, "restore", "--from", out, "--config", configPath, "--store", fresh)
	if code != exitUsage || !strings.Contains(stdout, "is a good backup") {
		t.Errorf("restore without --yes: exit %d\n%s", code, stdout)
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Error("restore without --yes created the store")
	}

	// A flipped byte is refused.
	bad := filepath.Join(filepath.Dir(out), "bad.db.zst")
	data, _ := os.ReadFile(out)
	data[len(data)/3] ^= 0x10
	os.WriteFile(bad, data, 0o600)
	sum, _ := os.ReadFile(out + store.ChecksumSuffix)
	os.WriteFile(bad+store.ChecksumSuffix, bytes.Replace(sum, []byte("manual"), []byte("bad"), 1), 0o600)
	if _, errOut, code := runCLI(t, "restore", "--from", bad, "--config", configPath, "--store", fresh, "--yes"); code != exitFail || !strings.Contains(errOut, "checksum mismatch") {
		t.Errorf("restore of a damaged backup: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Error("a refused restore created the store")
	}

	stdout, stderr, code = runCLI(t, "restore", "--from", out, "--config", configPath, "--store", fresh, "--yes")
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, stdout, stderr)
	}
	got := dumpStore(t, fresh)
	if !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("restored %s differs", k)
			}
		}
		t.Fatalf("restored store differs (%d vs %d records)", len(got), len(want))
	}
	var raws int
	for k, v := range got {
		if strings.HasPrefix(k, "raw ") && v != "" {
			raws++
		}
	}
	if raws < 3 {
		t.Errorf("only %d raw mails compared", raws)
	}

	// Restoring over the (stopped) original keeps it aside; the daemon
	// starts on the restored store.
	stdout, _, code = runCLI(t, "restore", "--from", out, "--config", configPath, "--yes")
	if code != 0 || !strings.Contains(stdout, "the previous store is kept as "+live+".before-restore-") {
		t.Errorf("restore over the original: exit %d\n%s", code, stdout)
	}
	// Stopped: `deskd backup` reads the store file itself.
	stdout, stderr, code = runCLI(t, "backup", "--out", filepath.Join(t.TempDir(), "stopped.db.gz"), "--config", configPath)
	if code != 0 || !strings.Contains(stdout, "the store file") || !strings.Contains(stdout, "gzip") {
		t.Errorf("backup of the stopped store: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestBackupUsage(t *testing.T) {
	for _, args := range [][]string{{"backup"}, {"backup", "--out", "x", "--compression", "lz4"}, {"restore"}, {"backup", "--out", "x", "extra"}} {
		if _, _, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("deskd %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
