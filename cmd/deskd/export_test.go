package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"deskd/export"
)

// `deskd export` against a running daemon (a snapshot through the admin
// socket; the store stays locked by the daemon) and against its stopped
// store gives the same files, but for the export time in index.json. An
// unknown customer is an error naming the known ones; flag problems are
// usage errors; the snapshot leaves nothing behind.
func TestExportCLI(t *testing.T) {
	imapSrv, _, dir, configPath := startPeers(t)
	cfg, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, []byte(`customers:
  - name: Acme
    plan: Business
    language: en
    domains: [acme.example]
    contacts:
      - {name: Bob, email: bob@acme.example}
  - name: Bakkerij Jansen
    plan: Premium
    language: nl
    domains: [jansen.example]
    contacts:
      - {name: Anna, email: anna@jansen.example}
`)...)
	if err := os.WriteFile(configPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	mails := []string{
		"From: Bob <bob@acme.example>\r\nTo: support@example.test\r\nSubject: Printer\r\nMessage-ID: <x1@acme.example>\r\n\r\nThe printer is down.\r\nFrom here on nothing prints.\r\n>From the log: error 42\r\n",
		"From: Bob <bob@acme.example>\r\nTo: support@example.test\r\nSubject: Re: Printer\r\nMessage-ID: <x2@acme.example>\r\nIn-Reply-To: <x1@acme.example>\r\n\r\nStill down.\r\n",
		"From: Carol <carol@acme.example>\r\nTo: support@example.test\r\nSubject: Scanner\r\nMessage-ID: <x3@acme.example>\r\n\r\nThe scanner too.\r\n",
		"From: Anna <anna@jansen.example>\r\nTo: support@example.test\r\nSubject: Kassa\r\nMessage-ID: <x4@jansen.example>\r\n\r\nDe kassa doet het niet.\r\n",
		"From: someone@elsewhere.example\r\nTo: support@example.test\r\nSubject: Hello\r\nMessage-ID: <x5@elsewhere.example>\r\n\r\nWho are you?\r\n",
		"this is no mail at all, not a single header field\r\n",
	}
	for _, m := range mails {
		if err := imapSrv.Deliver("INBOX", []byte(m), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncBuffer
	cmd := deskdProcess(t, &logs, "run", "--config", configPath)
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for imapSrv.Count("INBOX") != 0 || imapSrv.Count("Processed")+imapSrv.Count("Quarantine") != len(mails) {
		if time.Now().After(deadline) {
			t.Fatalf("inbox %d, processed %d, quarantine %d\n%s", imapSrv.Count("INBOX"), imapSrv.Count("Processed"), imapSrv.Count("Quarantine"), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The daemon streams the export from its live store: nothing goes to
	// $TMPDIR (before issue 11 a snapshot of the whole store did).
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o700)
	t.Setenv("TMPDIR", tmp)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o700)

	exportCLI := func(args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := runCLI(t, append([]string{"export", "--config", configPath}, args...)...)
		if code != 0 {
			t.Fatalf("deskd export %v: exit %d\n%s%s", args, code, stdout, stderr)
		}
		return stdout, stderr
	}
	liveAcme := filepath.Join(out, "live-acme")
	stdout, stderr := exportCLI("--customer", "Acme", "--out", liveAcme)
	if !strings.Contains(stdout, "from the running daemon's store") || !strings.Contains(stdout, `customer "Acme" (2 cases, `) {
		t.Errorf("stdout: %s", stdout)
	}
	if !strings.HasPrefix(stderr, "exported 2/2 cases, ") {
		t.Errorf("progress on stderr: %q", stderr)
	}
	liveAll := filepath.Join(out, "live-all.zip")
	stdout, _ = exportCLI("--all", "--out", liveAll)
	if !strings.Contains(stdout, "everything (4 cases, ") || !strings.Contains(stdout, "1 quarantined") {
		t.Errorf("stdout: %s", stdout)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the export left %v in $TMPDIR", left)
	}

	// Errors: unknown customer (1), flag problems (2).
	_, stderr, code := runCLI(t, "export", "--config", configPath, "--customer", "Acme Corp", "--out", filepath.Join(out, "x"))
	if code != exitFail || !strings.Contains(stderr, `no cases of customer "Acme Corp"; customers with cases: "Acme", "Bakkerij Jansen", "unknown"`) {
		t.Errorf("unknown customer: exit %d, %q", code, stderr)
	}
	for _, args := range [][]string{
		{},
		{"--all", "--customer", "Acme"},
		{"--customer", "Acme", "--out", filepath.Join(out, "x.tar.gz")},
		{"--customer", "Acme", "--out", liveAcme}, // exists, not empty
		{"--customer", "Acme", "stray"},
		{"--frobnicate"},
	} {
		if _, stderr, code := runCLI(t, append([]string{"export", "--config", configPath}, args...)...); code != exitUsage {
			t.Errorf("deskd export %v: exit %d, want %d\n%s", args, code, exitUsage, stderr)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 2 {
		t.Errorf("failed exports left files: %v", entries)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}

	// Stopped: the store file itself, the same export.
	stoppedAcme := filepath.Join(out, "stopped-acme")
	stdout, _ = exportCLI("--customer", "Acme", "--out", stoppedAcme)
	if !strings.Contains(stdout, "the store file") {
		t.Errorf("stdout: %s", stdout)
	}
	sameExport(t, os.DirFS(liveAcme), os.DirFS(stoppedAcme))
	stoppedAll := filepath.Join(out, "stopped-all.zip")
	exportCLI("--all", "--out", stoppedAll)
	sameExport(t, openZip(t, liveAll), openZip(t, stoppedAll))

	// The mails are there as received and sent: the first case's mbox
	// holds Bob's mail (its From lines quoted), deskd's acknowledgement,
	// Bob's reply.
	var cf export.CaseFile
	readJSON(t, os.DirFS(stoppedAcme), "cases/1/case.json", &cf)
	if len(cf.Messages) != 3 || cf.Messages[0].MessageID != "x1@acme.example" || cf.Messages[1].Direction != "out" || cf.Messages[2].MessageID != "x2@acme.example" {
		t.Fatalf("case 1 messages: %+v", cf.Messages)
	}
	mbox, err := os.ReadFile(filepath.Join(stoppedAcme, "cases", "1", "messages.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(mbox, []byte("From bob@acme.example ")) || !bytes.Contains(mbox, []byte("\n>From here on nothing prints.\n>>From the log: error 42\n\nFrom support@example.test ")) {
		t.Errorf("mbox:\n%s", mbox)
	}
}

// sameExport checks that two exports hold the same files with the same
// bytes, index.json aside, whose export time alone may differ.
func sameExport(t *testing.T, a, b fs.FS) {
	t.Helper()
	files := func(fsys fs.FS) map[string][]byte {
		m := map[string][]byte{}
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			m[p], err = fs.ReadFile(fsys, p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	fa, fb := files(a), files(b)
	if len(fa) != len(fb) || len(fa) < 5 {
		t.Errorf("%d files against %d", len(fa), len(fb))
	}
	for p, da := range fa {
		db, ok := fb[p]
		switch {
		case !ok:
			t.Errorf("%s missing from the second export", p)
		case p == "index.json":
			var ia, ib export.Index
			readJSON(t, a, p, &ia)
			readJSON(t, b, p, &ib)
			ia.ExportedAt, ib.ExportedAt = time.Time{}, time.Time{}
			ja, _ := json.Marshal(ia)
			jb, _ := json.Marshal(ib)
			if !bytes.Equal(ja, jb) {
				t.Errorf("index.json differs beyond the export time:\n%s\n%s", ja, jb)
			}
		case !bytes.Equal(da, db):
			t.Errorf("%s differs", p)
		}
	}
}

func readJSON(t *testing.T, fsys fs.FS, name string, v any) {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(fmt.Errorf("%s: %w", name, err))
	}
}

func openZip(t *testing.T, path string) fs.FS {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zr.Close() })
	return zr
}
