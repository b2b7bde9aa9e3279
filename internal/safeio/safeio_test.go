package safeio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// names lists dir's entries, to see that no temporary file is left.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new"), Options{Perm: 0o644}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "new" {
		t.Fatalf("content %q, %v; want new", got, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v; want 0644", fi.Mode().Perm(), err)
	}
	if n := names(t, dir); len(n) != 1 {
		t.Fatalf("directory holds %v; want only report.html", n)
	}
}

func TestDefaultPermIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.bak")
	if err := WriteFile(path, []byte("x"), Options{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600 (a copy of the store is private)", fi.Mode().Perm(), err)
	}
}

// The verification sees the complete file under its temporary name; when
// it fails, no rename happens: the old file stays and the temporary file
// is gone.
func TestVerifyFailureKeepsTarget(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deskd-daily-20261204.db.zst")
	if err := os.WriteFile(path, []byte("good old backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, more than one buffer
	bad := errors.New("bbolt check failed")
	var seen string
	err := Write(path, func(w io.Writer) error {
		for i := 0; i < len(data); i += 4096 {
			if _, err := w.Write(data[i : i+4096]); err != nil {
				return err
			}
		}
		return nil
	}, Options{SyncEvery: 100 << 10, Verify: func(tmp string) error {
		seen = tmp
		got, err := os.ReadFile(tmp)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			t.Errorf("Verify saw %d bytes, want the whole %d", len(got), len(data))
		}
		return bad
	}})
	if !errors.Is(err, bad) {
		t.Fatalf("Write = %v; want the verification's error", err)
	}
	if filepath.Dir(seen) != dir || filepath.Base(seen)[0] != '.' {
		t.Errorf("temporary file %q: want a hidden name in %s", seen, dir)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "good old backup" {
		t.Errorf("target now holds %d bytes; want the old backup untouched", len(got))
	}
	if n := names(t, dir); len(n) != 1 {
		t.Errorf("directory holds %v; want only the old backup", n)
	}
}

func TestVerifySuccessRenames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	calls := 0
	err := WriteFile(path, []byte("checked"), Options{Verify: func(tmp string) error {
		calls++
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("target exists before Verify returned: %v", err)
		}
		return nil
	}})
	if err != nil || calls != 1 {
		t.Fatalf("Write = %v, Verify called %d times", err, calls)
	}
	if got, _ := os.ReadFile(path); string(got) != "checked" {
		t.Fatalf("content %q", got)
	}
}

func TestWriteErrorLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "snapshot.db")
	cut := errors.New("connection cut short")
	verified := false
	err := Write(path, func(w io.Writer) error {
		if _, err := w.Write([]byte("half a store")); err != nil {
			return err
		}
		return cut
	}, Options{Verify: func(string) error { verified = true; return nil }})
	if !errors.Is(err, cut) {
		t.Fatalf("Write = %v; want the writer's error", err)
	}
	if verified {
		t.Error("Verify ran on a file whose writer failed")
	}
	if n := names(t, dir); len(n) != 0 {
		t.Fatalf("directory holds %v; want nothing", n)
	}
}

func TestRenameFailureLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "taken")
	// A non-empty directory cannot be replaced by a rename.
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("x"), Options{}); err == nil {
		t.Fatal("Write over a non-empty directory succeeded")
	} else if errors.Is(err, ErrDirNotSynced) {
		t.Fatalf("Write = %v; the rename failed, it must not claim it happened", err)
	}
	if n := names(t, dir); len(n) != 1 || n[0] != "taken" {
		t.Fatalf("directory holds %v; want only the directory that was in the way", n)
	}
}

func TestRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := WriteFile("plain", []byte("here"), Options{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "plain")); string(got) != "here" {
		t.Fatalf("content %q", got)
	}
}
