package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: what is written to tty can be read
// from pty.
func openPTY(t *testing.T) (pty, tty *os.File) {
	t.Helper()
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(pty.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(pty.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pty, tty
}

// On a terminal the bar is drawn (progressbar's rendering, with the count
// and the rate), erased at the end, and the summary line follows.
func TestTerminalBar(t *testing.T) {
	pty, tty := openPTY(t)
	defer pty.Close()
	out := make(chan string, 1)
	go func() {
		var buf bytes.Buffer
		_, _ = io.Copy(&buf, pty) // ends with EIO once tty is closed
		out <- buf.String()
	}()

	b, clk := newTestBar(tty, 0, "cases", "exported")
	if !b.tty {
		t.Fatal("a pseudo-terminal not taken for a terminal")
	}
	b.SetTotal(50)
	for range 50 {
		clk.advance(barThrottle)
		b.Count("messages", 3)
		b.Add(1)
	}
	b.Finish()
	tty.Close()
	got := <-out
	for _, want := range []string{"exported", "/50", "cases/s", "messages", "exported 50/50 cases, 150 messages in 5.0s (10.0 cases/s)\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
	if !strings.HasSuffix(got, "exported 50/50 cases, 150 messages in 5.0s (10.0 cases/s)\r\n") {
		t.Errorf("the summary is not the last thing on the terminal:\n%q", got)
	}
}
