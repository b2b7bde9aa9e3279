package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// `deskd demo --exit`, the README's first command, run as a process: it
// exits 0, says nothing on stderr (no warnings at its default level), and
// prints one decision per sample, exactly the mails deskd sends, and the
// case list.
func TestDemoExit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "demo", "--exit")
	cmd.Env = append(os.Environ(), "DESKD_TEST_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("deskd demo --exit: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if stderr.Len() != 0 {
		t.Errorf("stderr not empty:\n%s", stderr.String())
	}
	if !strings.HasPrefix(out, "deskd demo: IMAP 127.0.0.1:") {
		t.Errorf("output does not start with the demo's banner:\n%s", out)
	}
	samples := demoSamples()
	for i, s := range samples {
		if !strings.Contains(out, "\n"+strconv.Itoa(i+1)+". "+s.title+"\n") {
			t.Errorf("sample %d (%s) not announced", i+1, s.title)
		}
	}
	if n := strings.Count(out, "  ▶ uid "); n != len(samples) {
		t.Errorf("%d decisions printed, want one per sample (%d):\n%s", n, len(samples), out)
	}
	if n := strings.Count(out, "  ✉ deskd sent to "); n != demoMailsSent {
		t.Errorf("%d mails sent, want exactly %d:\n%s", n, demoMailsSent, out)
	}
	for _, want := range []string{
		"→ case 1", ", acknowledgement queued", // the first question
		"auto_recorded → case 1 (machine)", // the robot, not answered
		"\nCases now (deskd cases list --socket ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "deskd keeps running") {
		t.Errorf("--exit printed the stay-up instructions")
	}
}
