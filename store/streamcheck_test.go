package store

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"deskd/cases"
)

// A backup whose bbolt file inside is cut short, has a damaged meta page
// or a moved root page fails its verification while it is written, and
// leaves nothing under its name; a good one passes, with no file but the
// backup and its sidecar in the directory (no second copy).
func TestStreamVerification(t *testing.T) {
	db := openTest(t)
	update(t, db, func(tx *Tx) error {
		for i := 0; i < 50; i++ {
			id, _ := tx.NextCaseID()
			if err := tx.PutCase(newCase(id, cases.StatusOpen)); err != nil {
				return err
			}
		}
		return nil
	})
	var raw bytes.Buffer
	if _, err := db.WriteTo(&raw); err != nil {
		t.Fatal(err)
	}
	m, err := parseBoltMeta(raw.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ps := int(m.pageSize)
	damage := map[string]func([]byte) []byte{
		"good":      func(b []byte) []byte { return b },
		"truncated": func(b []byte) []byte { return b[:len(b)-ps] },
		"meta": func(b []byte) []byte {
			b[boltPageHeader+20] ^= 1 // page 0's root, its checksum now wrong
			b[ps+boltPageHeader+20] ^= 1
			return b
		},
		"root": func(b []byte) []byte {
			b[int(m.root)*ps+8] = 0x40 // not a branch or leaf
			return b
		},
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "b.zst")
			inner := f(bytes.Clone(raw.Bytes()))
			_, err := WriteBackupFile(context.Background(), path, func(w io.Writer) (BackupInfo, error) {
				cw := &countingWriter{w: w}
				enc, _ := zstd.NewWriter(cw)
				if _, err := enc.Write(inner); err != nil {
					return BackupInfo{}, err
				}
				if err := enc.Close(); err != nil {
					return BackupInfo{}, err
				}
				return BackupInfo{Compression: CompressionZstd, Size: cw.n, RawSize: int64(len(inner))}, nil
			})
			entries, _ := os.ReadDir(dir)
			if name == "good" {
				if err != nil || len(entries) != 2 {
					t.Fatalf("good backup: %v, files %v", err, entries)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "verify") {
				t.Errorf("%s: %v, want a verification error", name, err)
			}
			if len(entries) != 0 {
				t.Errorf("%s: left %v", name, entries)
			}
		})
	}
}
