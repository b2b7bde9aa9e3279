package progress

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is advanced by the test, so the lines are exact and nothing
// depends on how fast the machine is.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestBar(w io.Writer, total int64, unit, label string) (*Bar, *fakeClock) {
	b := New(w, total, unit, label)
	clk := &fakeClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	b.now, b.start = clk.now, clk.t
	return b, clk
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Not a terminal: a line at most every plainEvery while work goes on, and
// the summary at the end with counts, side counters, bytes and throughput.
func TestPlainLines(t *testing.T) {
	var buf bytes.Buffer
	b, clk := newTestBar(&buf, 1200, "cases", "exported")
	if b.tty {
		t.Fatal("a bytes.Buffer taken for a terminal")
	}
	for i := range 1200 {
		clk.advance(time.Second / 500) // 500 cases/s
		b.Add(1)
		b.Count("messages", 4)
		b.AddBytes(31_000)
		if i == 0 && buf.Len() != 0 {
			t.Fatalf("a line before %v: %q", plainEvery, buf.String())
		}
	}
	b.Finish()
	b.Finish() // a second Finish writes nothing
	got := lines(buf.String())
	if len(got) != 1 {
		// 2.4 s of work, lines every 5 s: only the summary.
		t.Fatalf("want only the summary, got %q", got)
	}
	if want := "exported 1200/1200 cases, 4800 messages, 37.2 MB in 2.4s (500 cases/s)"; got[0] != want {
		t.Errorf("summary\n got %q\nwant %q", got[0], want)
	}
}

func TestPlainLinesThrottled(t *testing.T) {
	var buf bytes.Buffer
	b, clk := newTestBar(&buf, 100, "cases", "exported")
	for range 100 {
		clk.advance(time.Second / 4) // 25 s in all: lines at 5, 10, 15, 20, 25 s
		b.Count("messages", 2)
		b.Add(1)
	}
	b.Finish()
	got := lines(buf.String())
	want := []string{
		"exported 20/100 cases (20%), 40 messages, 5.0s, 4.0 cases/s",
		"exported 40/100 cases (40%), 80 messages, 10.0s, 4.0 cases/s",
		"exported 60/100 cases (60%), 120 messages, 15.0s, 4.0 cases/s",
		"exported 80/100 cases (80%), 160 messages, 20.0s, 4.0 cases/s",
		"exported 100/100 cases (100%), 200 messages, 25.0s, 4.0 cases/s",
		"exported 100/100 cases, 200 messages in 25.0s (4.0 cases/s)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Byte mode (backup, restore): MB and MB/s; Write counts, so a Bar can sit
// in an io.MultiWriter.
func TestByteMode(t *testing.T) {
	var buf bytes.Buffer
	const size = 38_000_000
	b, clk := newTestBar(&buf, size, UnitBytes, "restored")
	src := bytes.NewReader(make([]byte, size))
	chunk := make([]byte, 1<<20)
	for {
		n, err := src.Read(chunk)
		if n > 0 {
			clk.advance(time.Duration(n) * time.Second / 19_000_000) // 19 MB/s
			if _, werr := io.MultiWriter(io.Discard, b).Write(chunk[:n]); werr != nil {
				t.Fatal(werr)
			}
		}
		if err == io.EOF {
			break
		}
	}
	b.Finish()
	got := lines(buf.String())
	if len(got) != 1 {
		t.Fatalf("2 s of work: want only the summary, got %q", got)
	}
	if want := "restored 38.0 MB in 2.0s (19.0 MB/s)"; got[0] != want {
		t.Errorf("got %q, want %q", got[0], want)
	}

	// Stopped half-way (a failure): the summary says how far it came.
	buf.Reset()
	b, clk = newTestBar(&buf, 2_000_000_000, UnitBytes, "backed up")
	clk.advance(6 * time.Second)
	b.Add(600_000_000)
	b.Finish()
	got = lines(buf.String())
	want := []string{
		"backed up 0.6/2.0 GB (30%), 6.0s, 100.0 MB/s",
		"backed up 0.6/2.0 GB in 6.0s (100.0 MB/s)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A total learnt late (SetTotal), an unknown one, and nothing done at all.
func TestTotals(t *testing.T) {
	var buf bytes.Buffer
	b, clk := newTestBar(&buf, 0, "cases", "exported")
	b.SetTotal(3)
	clk.advance(time.Second)
	b.Add(3)
	b.Finish()
	if got, want := buf.String(), "exported 3/3 cases in 1.0s (3.0 cases/s)\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	buf.Reset()
	b, clk = newTestBar(&buf, -1, "mails", "imported")
	clk.advance(2 * time.Second)
	b.Add(7)
	b.Finish()
	if got, want := buf.String(), "imported 7 mails in 2.0s (3.5 mails/s)\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	buf.Reset()
	b, _ = newTestBar(&buf, 0, "cases", "exported")
	b.Finish()
	if got, want := buf.String(), "exported 0 cases in 0.0s (- cases/s)\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A nil *Bar is a valid "no progress" reporter.
func TestNilBar(t *testing.T) {
	var b *Bar
	b.SetTotal(5)
	b.Add(1)
	b.AddBytes(10)
	b.Count("messages", 1)
	if n, err := b.Write([]byte("abc")); n != 3 || err != nil {
		t.Errorf("Write: %d, %v", n, err)
	}
	b.Finish()
}

// Concurrent use (a backup's copier and its caller) is safe; run with -race.
func TestConcurrent(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 4000, "cases", "exported")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				b.Add(1)
				b.Count("messages", 1)
				b.AddBytes(10)
			}
		})
	}
	wg.Wait()
	b.Finish()
	if !strings.HasPrefix(lines(buf.String())[len(lines(buf.String()))-1], "exported 4000/4000 cases, 4000 messages, 40.0 kB in ") {
		t.Errorf("summary: %q", buf.String())
	}
}

func TestFormatBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {38_000_000, "38.0 MB"}, {1_500_000_000, "1.5 GB"},
	} {
		if got := formatBytes(c.n); got != c.want {
			t.Errorf("formatBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
