package mail

import (
	"bufio"
	"bytes"
	"regexp"

	"github.com/emersion/go-message/textproto"
)

// normalizeEOL turns CRLF into LF and, in a message whose lines end in bare
// CR (old Mac mail), bare CR into LF. Go's multipart reader decides the line
// ending from the first boundary, so a message mixing CRLF and LF must be
// made uniform before it is split.
func normalizeEOL(b []byte) []byte {
	crlf := bytes.Count(b, []byte("\r\n"))
	cr := bytes.Count(b, []byte("\r")) - crlf
	if crlf == 0 && cr == 0 {
		return b
	}
	out := b
	if crlf > 0 {
		out = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	}
	lf := bytes.Count(out, []byte("\n"))
	if cr > 0 && cr > lf-crlf {
		if crlf == 0 {
			out = bytes.Clone(out)
		}
		for i, c := range out {
			if c == '\r' {
				out[i] = '\n'
			}
		}
	}
	return out
}

// nextLine returns the line starting at pos (without its LF) and the start
// of the next line.
func nextLine(b []byte, pos int) ([]byte, int) {
	if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
		return b[pos : pos+i], pos + i + 1
	}
	return b[pos:], len(b)
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// validFieldName reports whether name is an RFC 5322 §3.6.8 field-name
// (printable US-ASCII except colon).
func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// headerLine classifies a header line: a field with a valid name, a field
// with a broken name (spaces inside, 8-bit), or no field at all.
func headerLine(line []byte) (valid, broken bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false, false
	}
	// RFC 5322 §4.5 (obs-optional) allows white space before the colon.
	name := bytes.TrimRight(line[:i], " \t")
	if validFieldName(name) {
		return true, false
	}
	if len(name) > 200 {
		return false, false
	}
	for _, c := range name {
		if c < 32 && c != '\t' || c == 127 {
			return false, false
		}
	}
	return false, true
}

// readHeaderBlock splits a message (LF line endings) into its header and
// body and reads the header with go-message's textproto. Real mail breaks
// RFC 5322 §2.2 in ways textproto rejects outright (an mbox "From " line,
// leading blank space, field names with spaces, a line of junk); those lines
// are dropped here, each noted in probs, so one bad line does not cost the
// whole header. A non-field line followed by no further field ends the header
// without a blank line (the body began early).
func readHeaderBlock(b []byte) (h textproto.Header, body []byte, nfields int, probs []string) {
	pos := 0
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a UTF-8 BOM some Windows tools write
	if first, _ := nextLine(b, 0); bytes.HasPrefix(first, []byte("From ")) && !bytes.HasPrefix(bytes.TrimLeft(first[5:], " \t"), []byte(":")) {
		// mbox separator line (RFC 4155), left by a tool that exported the mail.
		_, pos = nextLine(b, 0)
	}
	// Lines of white space before the first field (seen in the wild):
	// skip them when a field follows; an empty first line means "no header"
	// (RFC 5322 §2.1) and is kept.
	for pos < len(b) {
		line, next := nextLine(b, pos)
		if len(line) == 0 || len(bytes.TrimLeft(line, " \t")) != 0 {
			break
		}
		if next >= len(b) {
			break
		}
		if nl, _ := nextLine(b, next); len(nl) > 0 && !isWSP(nl[0]) {
			if ok, _ := headerLine(nl); ok {
				probs = append(probs, "white space before the header")
				pos = next
				continue
			}
		}
		break
	}

	var buf bytes.Buffer
	dropping := false // continuation lines of a dropped line are dropped too
	bodyStart := len(b)
	for pos < len(b) {
		if buf.Len() > maxHeaderBlock {
			probs = append(probs, "header block too large; rest read as body")
			bodyStart = pos
			break
		}
		line, next := nextLine(b, pos)
		if len(line) == 0 {
			bodyStart = next
			break
		}
		if isWSP(line[0]) {
			switch {
			case dropping:
			case nfields == 0:
				probs = append(probs, "header starts with a continuation line")
				dropping = true
			default:
				buf.Write(line)
				buf.WriteString("\r\n")
			}
			pos = next
			continue
		}
		valid, broken := headerLine(line)
		if valid {
			dropping = false
			nfields++
			buf.Write(line)
			buf.WriteString("\r\n")
			pos = next
			continue
		}
		if broken {
			probs = append(probs, "malformed header field name dropped")
			dropping = true
			pos = next
			continue
		}
		// "Content-Type: multipart/alternative;" then "boundary=..." on an
		// unindented line: a parameter list folded without white space.
		if nfields > 0 && !dropping && bytes.HasSuffix(bytes.TrimRight(buf.Bytes(), " \t\r\n"), []byte(";")) && paramLineRE.Match(line) {
			probs = append(probs, "unindented header continuation")
			buf.Truncate(len(bytes.TrimRight(buf.Bytes(), "\r\n")))
			buf.WriteString("\r\n ")
			buf.Write(line)
			buf.WriteString("\r\n")
			pos = next
			continue
		}
		// Not a field at all. Junk inside the header if a field follows,
		// else the body starts here without the blank line.
		if nfields > 0 && fieldFollows(b, next) {
			probs = append(probs, "junk line in header dropped")
			dropping = true
			pos = next
			continue
		}
		if nfields > 0 {
			probs = append(probs, "no blank line between header and body")
		}
		bodyStart = pos
		break
	}
	if pos >= len(b) {
		bodyStart = len(b)
	}
	body = b[bodyStart:]
	buf.WriteString("\r\n")
	hdr, err := textproto.ReadHeader(bufio.NewReader(&buf))
	if err != nil {
		probs = append(probs, "header: "+err.Error())
	}
	return hdr, body, nfields, probs
}

// paramLineRE is a MIME parameter at the start of a line.
var paramLineRE = regexp.MustCompile(`^[ \t]*[A-Za-z0-9*_.-]+[ \t]*=`)

// fieldFollows reports whether the next line that is not a continuation,
// from pos on, is a header field.
func fieldFollows(b []byte, pos int) bool {
	for pos < len(b) {
		line, next := nextLine(b, pos)
		if len(line) == 0 {
			return false
		}
		if isWSP(line[0]) {
			pos = next
			continue
		}
		ok, _ := headerLine(line)
		return ok
	}
	return false
}
