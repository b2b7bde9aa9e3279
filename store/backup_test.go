package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"deskd/cases"
)

// dumpBolt reads every bucket (nested ones too), key, value and bucket
// sequence of a bbolt file into a map, to compare two files' contents.
func dumpBolt(t *testing.T, path string) map[string]string {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	out := make(map[string]string)
	var walk func(prefix string, b *bolt.Bucket) error
	walk = func(prefix string, b *bolt.Bucket) error {
		out[prefix+"#seq"] = fmt.Sprint(b.Sequence())
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+"/"+string(k), b.Bucket(k))
			}
			out[prefix+"/"+string(k)] = string(v)
			return nil
		})
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name), b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fillStore puts n cases with a message and raw mail each, plus an outbox
// entry and a quarantine record.
func fillStore(t *testing.T, db *DB, n int) {
	t.Helper()
	update(t, db, func(tx *Tx) error {
		for i := 0; i < n; i++ {
			id, _ := tx.NextCaseID()
			c := newCase(id, cases.StatusOpen)
			c.Customer = []string{"acme", "globex"}[i%2]
			key := c.MessageKeys[0]
			if err := tx.PutMessage(newMessage(key, id), realisticRaw(4<<10+i)); err != nil {
				return err
			}
			if err := tx.PutCase(c); err != nil {
				return err
			}
		}
		if err := tx.Enqueue(&OutboxEntry{Kind: "ack", EnvelopeFrom: "s@x", Recipients: []string{"a@b"}, Raw: []byte("Subject: x\r\n\r\ny"), CreatedAt: t0}); err != nil {
			return err
		}
		return tx.PutQuarantine(&QuarantineRecord{Key: "sha256:ab", Reason: "parse", At: t0}, []byte("junk"))
	})
}

func writeBackup(t *testing.T, db *DB, path, compression string) BackupInfo {
	t.Helper()
	info, err := WriteBackupFile(context.Background(), path, func(w io.Writer) (BackupInfo, error) {
		return db.Backup(w, compression)
	})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// A backup in either compression verifies, checks with sha256sum -c, and
// restores into a file with exactly the original contents.
func TestBackupVerifyRestore(t *testing.T) {
	for _, comp := range []string{CompressionZstd, CompressionGzip} {
		t.Run(comp, func(t *testing.T) {
			db := openTest(t)
			fillStore(t, db, 30)
			dir := t.TempDir()
			path := filepath.Join(dir, "deskd-test.db."+comp)
			info := writeBackup(t, db, path, comp)
			if info.Compression != comp || info.Cases != 30 || info.Messages != 30 || info.SchemaVersion != schemaVersion || info.RawSize <= info.Size || len(info.SHA256) != 64 {
				t.Errorf("info %+v", info)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != info.Size || fi.Mode().Perm() != 0o600 {
				t.Errorf("backup file %v %v, want %d bytes, mode 0600", fi, err, info.Size)
			}
			sidecar, _ := os.ReadFile(path + ChecksumSuffix)
			if string(sidecar) != info.SHA256+"  "+filepath.Base(path)+"\n" {
				t.Errorf("sidecar %q", sidecar)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
			sha256sumCheck(t, path)

			vinfo, err := VerifyBackup(path)
			if err != nil {
				t.Fatal(err)
			}
			if vinfo != info {
				t.Errorf("VerifyBackup %+v, written %+v", vinfo, info)
			}

			orig := db.Path()
			db.Close()
			target := filepath.Join(t.TempDir(), "restored.db")
			res, err := Restore(path, target, RestoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Previous != "" || res.Backup != info {
				t.Errorf("restore result %+v", res)
			}
			if !reflect.DeepEqual(dumpBolt(t, target), dumpBolt(t, orig)) {
				t.Error("restored store differs from the original")
			}
			rdb, err := Open(target, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			view(t, rdb, func(tx *Tx) error {
				raw, err := tx.Raw("mid:7@acme.example")
				if !bytes.Equal(raw, realisticRaw(4<<10+6)) {
					t.Errorf("raw of case 7 after restore: %v, %d bytes", err, len(raw))
				}
				return err
			})
		})
	}
}

// sha256sumCheck runs coreutils' sha256sum -c on the sidecar, in the
// backup's directory as an operator would.
func sha256sumCheck(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("sha256sum"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sha256sum (coreutils) not installed")
		}
		t.Log("sha256sum not installed: sidecar not checked with it")
		return
	}
	cmd := exec.Command("sha256sum", "-c", "--strict", filepath.Base(path)+ChecksumSuffix)
	cmd.Dir = filepath.Dir(path)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), ": OK") {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
}

// Restore over an existing store keeps the old one aside; over a store a
// daemon holds it refuses; a damaged backup is refused whether or not its
// checksum was updated to match, and nothing changes.
func TestRestoreRefusals(t *testing.T) {
	db := openTest(t)
	fillStore(t, db, 20)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db.zst")
	writeBackup(t, db, good, CompressionZstd)

	// The target store is open (locked) in this process: a running daemon.
	target := filepath.Join(t.TempDir(), "deskd.db")
	live, err := Open(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	update(t, live, func(tx *Tx) error { return tx.PutCase(newCase(1, cases.StatusClosed)) })
	_, err = Restore(good, target, RestoreOptions{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("Restore over a locked store = %v", err)
	}
	live.Close()
	beforeTarget := dumpBolt(t, target)

	// A flipped byte: the checksum says so.
	data, _ := os.ReadFile(good)
	bad := filepath.Join(dir, "bad.db.zst")
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x40
	os.WriteFile(bad, flipped, 0o600)
	sum, _ := os.ReadFile(good + ChecksumSuffix)
	os.WriteFile(bad+ChecksumSuffix, bytes.Replace(sum, []byte("good"), []byte("bad"), 1), 0o600)
	if _, err := VerifyBackup(bad); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("VerifyBackup of a flipped byte = %v", err)
	}
	if _, err := Restore(bad, target, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "nothing changed") {
		t.Errorf("Restore of a flipped byte = %v", err)
	}
	// The same damage with a checksum recomputed to match (a backup
	// damaged before it was summed): zstd's own checksum catches it.
	resummed := filepath.Join(dir, "resummed.db.zst")
	os.WriteFile(resummed, flipped, 0o600)
	h := sha256sum(flipped)
	os.WriteFile(resummed+ChecksumSuffix, []byte(ChecksumLine(h, resummed)), 0o600)
	if _, err := Restore(resummed, target, RestoreOptions{}); err == nil {
		t.Error("Restore of damaged content with a matching checksum succeeded")
	}
	// No checksum file at all.
	os.Remove(resummed + ChecksumSuffix)
	if _, err := Restore(resummed, target, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Restore without a checksum file = %v", err)
	}
	if !reflect.DeepEqual(dumpBolt(t, target), beforeTarget) {
		t.Error("a refused restore changed the store")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(target), ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if kept, _ := filepath.Glob(target + ".before-restore-*"); len(kept) != 0 {
		t.Errorf("refused restores kept copies: %v", kept)
	}

	// The good one replaces the store; the old one is kept aside.
	at := time.Date(2026, 11, 29, 10, 30, 0, 0, time.UTC)
	res, err := Restore(good, target, RestoreOptions{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Previous != target+".before-restore-20261129T103000Z" {
		t.Errorf("previous kept as %q", res.Previous)
	}
	if !reflect.DeepEqual(dumpBolt(t, res.Previous), beforeTarget) {
		t.Error("the kept previous store is not the old store")
	}
	orig := db.Path()
	db.Close()
	if !reflect.DeepEqual(dumpBolt(t, target), dumpBolt(t, orig)) {
		t.Error("restored store differs from the backed-up one")
	}
}

func sha256sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// A backup taken while a writer commits continuously is a consistent
// snapshot (bbolt's check passes, every case has its messages), and the
// writer is not held up for the backup's length (no timing asserted: it
// must simply make progress during it).
func TestBackupWhileWriting(t *testing.T) {
	db := openTest(t)
	fillStore(t, db, 50)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			err := db.Update(func(tx *Tx) error {
				id, _ := tx.NextCaseID()
				c := newCase(id, cases.StatusOpen)
				if err := tx.PutMessage(newMessage(c.MessageKeys[0], id), realisticRaw(8<<10)); err != nil {
					return err
				}
				return tx.PutCase(c)
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	path := filepath.Join(t.TempDir(), "live.db.zst")
	for i := 0; i < 3; i++ {
		writeBackup(t, db, path, CompressionZstd)
	}
	cancel()
	wg.Wait()
	target := filepath.Join(t.TempDir(), "r.db")
	if _, err := Restore(path, target, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(target, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	view(t, r, func(tx *Tx) error {
		return tx.ForEachCase("", func(c *cases.Case) error {
			_, err := tx.CaseMessages(c)
			return err
		})
	})
}

// BackupStore saves a stopped store of any known schema (here the v1
// fixture, which Open would migrate) and refuses a store a daemon holds.
func TestBackupStore(t *testing.T) {
	path := copyFixture(t)
	var buf bytes.Buffer
	info, err := BackupStore(path, &buf, CompressionGzip)
	if err != nil {
		t.Fatal(err)
	}
	if info.SchemaVersion != 1 || info.Cases != 6 || int64(buf.Len()) != info.Size {
		t.Errorf("info %+v, %d bytes", info, buf.Len())
	}
	if v, _ := rawVersion(t, path, bucketCaseCustomer); v != 1 {
		t.Errorf("BackupStore changed the version to %d", v)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := BackupStore(path, io.Discard, CompressionZstd); !errors.Is(err, ErrLocked) {
		t.Errorf("BackupStore of a locked store = %v", err)
	}
	if _, err := db.Backup(io.Discard, "lz4"); err == nil {
		t.Error("unknown compression accepted")
	}
}

// A cancelled backup leaves nothing behind; a raw (uncompressed) one is a
// bbolt file as is.
func TestBackupCancelAndRaw(t *testing.T) {
	db := openTest(t)
	fillStore(t, db, 10)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := WriteBackupFile(ctx, filepath.Join(dir, "c.db.zst"), func(w io.Writer) (BackupInfo, error) {
		return db.Backup(w, CompressionZstd)
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled backup: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("cancelled backup left %v", left)
	}
	raw := filepath.Join(dir, "snap.db")
	info := writeBackup(t, db, raw, CompressionNone)
	if info.Size != info.RawSize {
		t.Errorf("raw snapshot info %+v", info)
	}
	snap, err := Open(raw, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if n := len(collect(t, snap, "")); n != 10 {
		t.Errorf("snapshot has %d cases", n)
	}
}
