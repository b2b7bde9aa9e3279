package export

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

// readMboxrd is a strict mboxrd reader, written from the format's
// description rather than from writeMboxMessage: a From_ line starts each
// message, the empty line before the next From_ line (or the end) belongs
// to the separator, one ">" is removed from lines matching ^>+From . It
// returns each message's lines joined with LF, and the From_ lines.
func readMboxrd(t testing.TB, b []byte) (msgs [][]byte, fromLines []string) {
	t.Helper()
	if len(b) == 0 {
		return nil, nil
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("mbox does not end with a line end")
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines = lines[:len(lines)-1] // SplitAfter's empty last element
	var cur *bytes.Buffer
	end := func() {
		if cur == nil {
			return
		}
		m := cur.Bytes()
		if !bytes.HasSuffix(m, []byte("\n\n")) && !bytes.Equal(m, []byte("\n")) {
			t.Fatalf("message %d does not end with an empty line: %q", len(msgs)+1, m)
		}
		msgs = append(msgs, m[:len(m)-1])
	}
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte("From ")) {
			end()
			cur = new(bytes.Buffer)
			fromLines = append(fromLines, string(bytes.TrimSuffix(l, []byte("\n"))))
			continue
		}
		if cur == nil {
			t.Fatalf("mbox does not start with a From_ line: %q", l)
		}
		if bytes.HasPrefix(bytes.TrimLeft(l, ">"), []byte("From ")) {
			l = l[1:]
		}
		cur.Write(l)
	}
	end()
	return msgs, fromLines
}

// crlf turns every LF into CRLF: how a mail's bytes come back from the
// mbox (see mboxExact).
func crlf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }

func mboxOf(t testing.TB, raws ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	for i, raw := range raws {
		if err := writeMboxMessage(w, "a@example.test", time.Date(2026, 3, 2, 9, 4, 5, 0, time.UTC).Add(time.Duration(i)*time.Hour), raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mboxrd quoting: every line of the form >*From  gets one more ">", so any
// depth of quoting comes back; CRLF becomes LF and comes back as CRLF.
func TestMboxQuoting(t *testing.T) {
	raw := []byte("From: a@example.test\r\nSubject: From here\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\nFrom\r\n From indented\r\nFromage\r\n\r\n")
	got := mboxOf(t, raw)
	want := "From a@example.test Mon Mar  2 09:04:05 2026\n" +
		"From: a@example.test\nSubject: From here\n\n" +
		">From the start\n>>From quoted\n>>>From twice\nFrom\n From indented\nFromage\n\n" +
		"\n"
	if string(got) != want {
		t.Errorf("mbox\n got %q\nwant %q", got, want)
	}
	msgs, from := readMboxrd(t, got)
	if len(msgs) != 1 || !bytes.Equal(crlf(msgs[0]), raw) {
		t.Errorf("read back %q, want %q", msgs, raw)
	}
	if from[0] != "From a@example.test Mon Mar  2 09:04:05 2026" {
		t.Errorf("From_ line %q", from[0])
	}
}

func TestMboxExact(t *testing.T) {
	for _, c := range []struct {
		raw   string
		exact bool
	}{
		{"A: b\r\n\r\nx\r\n", true},
		{"A: b\r\n\r\nx\r\r\n", true}, // a CR before the CRLF survives
		{"A: b\r\n\r\nx\ry\r\n", true},
		{"A: b\r\n\r\nx", false},        // no final line end
		{"A: b\n\nx\n", false},          // bare LF
		{"A: b\r\n\r\nx\ny\r\n", false}, // one bare LF
		{"", false},
	} {
		if got := mboxExact([]byte(c.raw)); got != c.exact {
			t.Errorf("mboxExact(%q) = %v", c.raw, got)
		}
	}
}

func TestFromLineSender(t *testing.T) {
	for in, want := range map[string]string{
		"a@example.test":     "a@example.test",
		"":                   "MAILER-DAEMON",
		"  ":                 "MAILER-DAEMON",
		`"a b"@example.test`: "MAILER-DAEMON",
		"a\x00@x":            "MAILER-DAEMON",
	} {
		if got := fromLineSender(in); got != want {
			t.Errorf("fromLineSender(%q) = %q, want %q", in, got, want)
		}
	}
}

// Any bytes: the messages are found again, in order; a mail that
// mboxExact accepts comes back byte for byte, any other with its line
// ends made LF (its exact copy is a separate file).
func FuzzMbox(f *testing.F) {
	f.Add([]byte("From: a\r\n\r\nFrom x\r\n>From y\r\n"), []byte("A: b\n\nc"))
	f.Add([]byte("\r\n\r\n"), []byte(">>From \r\r\n"))
	f.Add([]byte(""), []byte("From "))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		msgs, _ := readMboxrd(t, mboxOf(t, a, b))
		if len(msgs) != 2 {
			t.Fatalf("%d messages read back, want 2", len(msgs))
		}
		for i, raw := range [][]byte{a, b} {
			got := msgs[i]
			if mboxExact(raw) {
				if !bytes.Equal(crlf(got), raw) {
					t.Fatalf("message %d: got %q, want %q", i, crlf(got), raw)
				}
				continue
			}
			want := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
			if len(want) > 0 && want[len(want)-1] != '\n' {
				want = append(want, '\n')
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("message %d: got %q, want %q", i, got, want)
			}
		}
	})
}
