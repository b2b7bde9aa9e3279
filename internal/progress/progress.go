// Package progress reports how far long CLI work (export, backup, restore,
// reports over many cases) has come, on stderr: on a terminal a bar with
// counts and throughput (github.com/schollz/progressbar), elsewhere (a pipe,
// a log, CI) a plain line at most every few seconds, and in both cases one
// final summary line such as
//
//	exported 1200/1200 cases, 5400 messages, 38.0 MB in 2.1s (570 cases/s)
//
// A Bar counts one main unit ("cases", or "bytes" for byte mode, shown in
// MB and MB/s), optional named side counters ("messages") and optionally
// bytes. It is safe for concurrent use, and a nil *Bar does nothing, so code
// that may or may not report progress takes a *Bar and never checks.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// UnitBytes is the unit of byte mode: counts are shown in MB, rates in MB/s.
const UnitBytes = "bytes"

const (
	// plainEvery is the least time between two plain progress lines: often
	// enough to show the work is alive, rarely enough not to flood a log.
	plainEvery = 5 * time.Second
	// barThrottle bounds how often the terminal bar is redrawn.
	barThrottle = 100 * time.Millisecond
)

// Bar reports the progress of one piece of work. Create it with New, call
// Add (and AddBytes, Count) as work is done, and Finish once at the end.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	label    string // a past participle: "exported", "restored"
	unit     string
	total    int64 // <= 0: unknown
	done     int64
	bytes    int64 // AddBytes; in byte mode the same as done
	extras   []counter
	tty      bool
	bar      *progressbar.ProgressBar // terminal mode, created at the first Add
	now      func() time.Time
	every    time.Duration
	start    time.Time
	lastLine time.Time // last plain line, or last description refresh on a terminal
	finished bool
}

type counter struct {
	name string
	n    int64
}

// New returns a Bar writing to w. total is the amount of work in unit (0 or
// less when not known yet; see SetTotal); label is what the work does, as a
// past participle ("exported", "backed up"). On a terminal (w is an
// *os.File on a TTY) it draws a bar; otherwise it writes plain lines.
func New(w io.Writer, total int64, unit, label string) *Bar {
	return &Bar{
		w:     w,
		label: label,
		unit:  unit,
		total: total,
		tty:   isTerminal(w),
		now:   time.Now,
		every: plainEvery,
		start: time.Now(),
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// SetTotal sets the amount of work, for work that learns it only after it
// started (an export counts the cases of its selection first).
func (b *Bar) SetTotal(total int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
	if b.bar != nil && total > 0 {
		b.bar.ChangeMax64(total)
	}
}

// Add records n more units done.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.unit == UnitBytes {
		b.bytes += n
	}
	b.update(n)
}

// AddBytes records n more bytes handled, shown as MB beside the main count.
// In byte mode it is the same as Add.
func (b *Bar) AddBytes(n int64) {
	if b == nil {
		return
	}
	if b.unit == UnitBytes {
		b.Add(n)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bytes += n
	b.update(0)
}

// Write counts len(p) bytes (AddBytes), so a Bar can sit in an
// io.MultiWriter or io.TeeReader beside the real destination.
func (b *Bar) Write(p []byte) (int, error) {
	b.AddBytes(int64(len(p)))
	return len(p), nil
}

// Count adds n to the side counter name ("messages"); side counters are
// shown in the order they were first counted.
func (b *Bar) Count(name string, n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.extras {
		if b.extras[i].name == name {
			b.extras[i].n += n
			b.update(0)
			return
		}
	}
	b.extras = append(b.extras, counter{name, n})
	b.update(0)
}

// update shows progress after a change; added is the change of the main
// count. Plain lines follow the main count only, so a line shows the side
// counters of the units it counts as done. Called with b.mu held.
func (b *Bar) update(added int64) {
	if b.finished {
		return
	}
	now := b.now()
	if !b.tty {
		if added != 0 && now.Sub(b.lastLine) >= b.every && now.Sub(b.start) >= b.every {
			b.lastLine = now
			fmt.Fprintln(b.w, b.line(now, false))
		}
		return
	}
	if b.bar == nil {
		b.bar = b.newTerminalBar()
	}
	if len(b.extras) > 0 || (b.bytes > 0 && b.unit != UnitBytes) {
		if now.Sub(b.lastLine) >= barThrottle {
			b.lastLine = now
			b.bar.Describe(b.label + " (" + b.sideCounts() + ")")
		}
	}
	// The bar's own errors (a count past its maximum) are cosmetic.
	_ = b.bar.Add64(added)
}

func (b *Bar) newTerminalBar() *progressbar.ProgressBar {
	max := b.total
	if max <= 0 {
		max = -1 // a spinner until SetTotal
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(b.label),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(barThrottle),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
	}
	if b.unit == UnitBytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(b.unit))
	}
	return progressbar.NewOptions64(max, opts...)
}

// Finish ends the bar (clearing it on a terminal) and writes the summary
// line. Later calls do nothing. After a failure it still tells how far the
// work came.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	if b.bar != nil {
		// Finish fills and, with OptionClearOnFinish, erases the bar; it
		// also stops the spinner's goroutine of a bar of unknown length.
		_ = b.bar.Finish()
	}
	fmt.Fprintln(b.w, b.line(b.now(), true))
}

// line formats a progress line (final: the summary).
//
//	exported 300/1200 cases (25%), 1350 messages, 9.5 MB, 3.0s, 100 cases/s
//	exported 1200/1200 cases, 5400 messages, 38.0 MB in 2.1s (570 cases/s)
func (b *Bar) line(now time.Time, final bool) string {
	elapsed := now.Sub(b.start)
	var sb strings.Builder
	sb.WriteString(b.label)
	sb.WriteByte(' ')
	if b.unit == UnitBytes {
		if b.total > 0 && (!final || b.done != b.total) {
			sb.WriteString(formatBytesOf(b.done, b.total))
		} else {
			sb.WriteString(formatBytes(b.done))
		}
	} else {
		if b.total > 0 {
			fmt.Fprintf(&sb, "%d/%d %s", b.done, b.total, b.unit)
		} else {
			fmt.Fprintf(&sb, "%d %s", b.done, b.unit)
		}
	}
	if !final && b.total > 0 {
		fmt.Fprintf(&sb, " (%d%%)", b.done*100/b.total)
	}
	if side := b.sideCounts(); side != "" {
		sb.WriteString(", ")
		sb.WriteString(side)
	}
	if final {
		fmt.Fprintf(&sb, " in %s (%s)", formatDuration(elapsed), b.rate(elapsed))
	} else {
		fmt.Fprintf(&sb, ", %s, %s", formatDuration(elapsed), b.rate(elapsed))
	}
	return sb.String()
}

// sideCounts is "1350 messages, 9.5 MB": the side counters and, outside
// byte mode, the bytes.
func (b *Bar) sideCounts() string {
	var parts []string
	for _, c := range b.extras {
		parts = append(parts, fmt.Sprintf("%d %s", c.n, c.name))
	}
	if b.unit != UnitBytes && b.bytes > 0 {
		parts = append(parts, formatBytes(b.bytes))
	}
	return strings.Join(parts, ", ")
}

func (b *Bar) rate(elapsed time.Duration) string {
	sec := elapsed.Seconds()
	if sec <= 0 {
		return "- " + b.rateUnit()
	}
	r := float64(b.done) / sec
	if b.unit == UnitBytes {
		return fmt.Sprintf("%.1f MB/s", r/1e6)
	}
	if r >= 100 {
		return fmt.Sprintf("%.0f %s/s", r, b.unit)
	}
	return fmt.Sprintf("%.1f %s/s", r, b.unit)
}

func (b *Bar) rateUnit() string {
	if b.unit == UnitBytes {
		return "MB/s"
	}
	return b.unit + "/s"
}

// formatBytes shows n in decimal units (1 MB = 10^6 bytes, as disks and
// network rates count).
func formatBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	div, name := byteUnit(n)
	return fmt.Sprintf("%.1f %s", float64(n)/div, name)
}

// formatBytesOf shows "12.0/38.0 MB": done in the unit of the total.
func formatBytesOf(done, total int64) string {
	div, name := byteUnit(total)
	return fmt.Sprintf("%.1f/%.1f %s", float64(done)/div, float64(total)/div, name)
}

func byteUnit(n int64) (float64, string) {
	switch {
	case n < 1e6:
		return 1e3, "kB"
	case n < 1e9:
		return 1e6, "MB"
	}
	return 1e9, "GB"
}

func formatDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
