package export

import (
	"bufio"
	"bytes"
	"strings"
	"time"
)

// The mbox files are mboxrd (the "From quoting" variant that is reversible;
// see https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml
// and RFC 4155 for the family):
//
//   - each message starts with a From_ line, "From <sender> <date>\n", the
//     date in asctime form (time.ANSIC) in UTC;
//   - the message's lines follow with LF line ends (the local convention
//     of mbox files, RFC 4155 §2), a CRLF of the raw mail becoming LF;
//   - a line that matches ^>*From  gets one more ">" in front;
//   - an empty line ends the message.
//
// github.com/emersion/go-mbox (v1.0.3) is not used to write: it quotes
// mboxo-style (">From " is left alone, so a reader cannot tell it from a
// quoted "From "), and it ends each message with two empty lines, so every
// message read back grows by a line. Its reader is used in the tests as a
// third-party check that a mail client's parser finds the same messages.

// mboxExact reports whether raw comes back byte for byte from the mbox by
// undoing the quoting and turning every LF back into CRLF: every LF of raw
// follows a CR and raw ends with CRLF. Mail fetched over IMAP always does
// (RFC 3501 §4.3), and so does what deskd composes; anything else also
// gets an exact copy (see caseWriter).
func mboxExact(raw []byte) bool {
	return bytes.HasSuffix(raw, []byte("\r\n")) && bytes.Count(raw, []byte("\n")) == bytes.Count(raw, []byte("\r\n"))
}

// writeMboxMessage appends one message to an mbox stream.
func writeMboxMessage(w *bufio.Writer, sender string, date time.Time, raw []byte) error {
	w.WriteString("From ")
	w.WriteString(fromLineSender(sender))
	w.WriteByte(' ')
	w.WriteString(date.UTC().Format(time.ANSIC))
	w.WriteByte('\n')
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
			line = bytes.TrimSuffix(line, []byte("\r")) // CRLF → LF
		} else {
			raw = nil // a last line without a line end gets one
		}
		if quotedFrom(line) {
			w.WriteByte('>')
		}
		w.Write(line)
		w.WriteByte('\n')
	}
	// The empty line that ends the message.
	_, err := w.Write([]byte{'\n'})
	return err
}

// quotedFrom reports whether line matches ^>*From : such lines are quoted
// with one more ">" (mboxrd), so that any number of quotes is reversible.
func quotedFrom(line []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From "))
}

// fromLineSender is the address of the From_ line: one word, so readers
// can split the line on spaces; "MAILER-DAEMON" when there is none, as
// mail systems write for a null sender.
func fromLineSender(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" || strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "MAILER-DAEMON"
	}
	return addr
}
