package mail

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gocharset "github.com/emersion/go-message/charset" // registers the charsets go-message can decode
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	htmlcharset "golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/charmap"

	"deskd/cases"
)

// DefaultMaxBytes is the max_message_bytes used when ParseOptions.MaxBytes is 0.
const DefaultMaxBytes = 25 << 20

const (
	// maxTextBytes caps Inbound.Text: staff read it, the engine scans it for
	// commands; a megabyte of text is more than any person writes.
	maxTextBytes = 1 << 20
	// maxHeaderBlock bounds the header block (go-message's own default):
	// a header that never ends is an attack, not a mail.
	maxHeaderBlock = 1 << 20
	// maxDepth and maxParts bound the MIME tree (RFC 2046 sets no limit;
	// a nesting bomb must not cost more than a quarantine).
	maxDepth = 30
	maxParts = 2000
	// maxProblems keeps the Problems list readable.
	maxProblems = 50
)

// ParseOptions are the limits of Parse.
type ParseOptions struct {
	// MaxBytes is max_message_bytes; 0 means DefaultMaxBytes (25 MiB). A raw
	// message larger than this has only its header parsed: Problems gets
	// "too large: N bytes", Text stays empty and Parse returns a *ParseError
	// wrapping ErrTooLarge so the caller quarantines it.
	MaxBytes int
}

// ErrTooLarge is wrapped by the *ParseError of a message over MaxBytes.
var ErrTooLarge = errors.New("message larger than max_message_bytes")

// ParseError says why a message could not be made sense of. Parse returns it
// together with a usable *cases.Inbound, so the caller can quarantine the
// mail with Reason.
type ParseError struct {
	Reason string // short, stable, for people: "no header fields", "too large: 31457280 bytes"
	Err    error  // the underlying error, if any
}

func (e *ParseError) Error() string {
	if e.Err != nil {
		return "parse mail: " + e.Reason + ": " + e.Err.Error()
	}
	return "parse mail: " + e.Reason
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parse turns raw RFC 5322 bytes into a cases.Inbound. receivedAt is the IMAP
// INTERNALDATE, the start of the SLA clock (R11b).
//
// Parse never panics. When it cannot make sense of a message (no header at
// all, empty input, larger than MaxBytes) it returns a non-nil *Inbound with
// DedupeKey, Raw, Size, ReceivedAt and whatever header fields could be read,
// and a *ParseError. Minor problems (a part in an unknown charset, a broken
// attachment, a missing closing boundary) are listed in Inbound.Problems and
// the rest of the message is still parsed: a customer whose mailer mislabels
// its charset still gets a case.
func Parse(raw []byte, receivedAt time.Time, opts ParseOptions) (in *cases.Inbound, err error) {
	in = &cases.Inbound{Raw: raw, Size: len(raw), ReceivedAt: receivedAt}
	defer func() {
		if r := recover(); r != nil {
			// A bug in a library or here must cost one quarantine, not the
			// daemon; the fields set so far are already sanitised.
			in.Problems = append(in.Problems, "parser failure")
			err = &ParseError{Reason: "parser failure", Err: fmt.Errorf("panic: %v", r)}
		}
		if in.DedupeKey == "" {
			in.DedupeKey = DedupeKey("", raw)
		}
	}()
	p := &parser{in: in}
	return in, p.parse(raw, opts)
}

// parser carries the state of one Parse call.
type parser struct {
	in      *cases.Inbound
	h       gomail.Header
	hint    string // charset of the top-level Content-Type, for raw 8-bit header text
	parts   int
	hasText bool // a body text part was taken; later named text parts are attachments
	// inner > 0 while walking an attached message for its text;
	// forwarded is that text.
	inner     int
	forwarded string
	rep       reportInfo
}

func (p *parser) problem(format string, args ...any) {
	if len(p.in.Problems) >= maxProblems {
		return
	}
	s := cleanLine(fmt.Sprintf(format, args...))
	if len(p.in.Problems) == maxProblems-1 {
		s = "more problems not listed"
	}
	p.in.Problems = append(p.in.Problems, s)
}

func (p *parser) parse(raw []byte, opts ParseOptions) error {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		p.problem("empty message")
		return &ParseError{Reason: "empty message"}
	}
	tooLarge := len(raw) > limit
	src := raw
	if tooLarge {
		// Only the header is wanted; do not copy megabytes to find it.
		src = raw[:min(len(raw), maxHeaderBlock+1024)]
	}
	hdr, body, nfields, probs := readHeaderBlock(normalizeEOL(src))
	for _, pr := range probs {
		p.problem("%s", pr)
	}
	p.h = gomail.Header{Header: message.Header{Header: hdr}}
	topType, ctParams := mediaType(p.h.Header, "")
	p.hint = ctParams["charset"]
	// Known before the walk, so a too-large report is still recognised.
	p.rep.topType, p.rep.reportType = topType, strings.ToLower(ctParams["report-type"])
	p.headerFields()

	var perr *ParseError
	switch {
	case tooLarge:
		reason := fmt.Sprintf("too large: %d bytes", len(raw))
		p.problem("%s", reason)
		perr = &ParseError{Reason: reason, Err: ErrTooLarge}
	case nfields == 0:
		// Nothing says this is a mail (RFC 5322 §3.6 requires at least
		// Date and From). Still read the body so a person looking at the
		// quarantine sees what it was.
		p.problem("no header fields")
		perr = &ParseError{Reason: "no header fields"}
	}
	if !tooLarge {
		bt := p.walk(p.h.Header, body, 0, "", "1")
		p.in.Text = p.finishText(bt)
	}
	p.in.Auto = detectAuto(p.h, autoFacts{
		from:           p.in.From,
		subject:        p.in.Subject,
		nullReturnPath: p.in.HasReturnPath && p.in.ReturnPath == "",
		report:         p.rep,
		text:           p.in.Text,
	})
	if perr != nil {
		return perr
	}
	return nil
}

// headerFields fills the Inbound fields that come from the top-level header.
func (p *parser) headerFields() {
	in, h := p.in, p.h
	in.MessageID = NormalizeMessageID(h.Get("Message-Id"))
	in.DedupeKey = DedupeKey(in.MessageID, in.Raw)
	in.InReplyTo = ParseMessageIDList(strings.Join(h.Values("In-Reply-To"), " "))
	in.References = ParseMessageIDList(strings.Join(h.Values("References"), " "))

	from := p.addresses("From")
	if len(from) > 0 {
		in.From = from[0]
	} else if h.Get("From") != "" {
		p.problem("from: no address")
	}
	if s := p.addresses("Sender"); len(s) > 0 {
		in.Sender = &s[0]
	}
	in.ReplyTo = p.addresses("Reply-To")
	in.To = p.addresses("To")
	in.Cc = p.addresses("Cc")

	// The topmost Return-Path is the one our own server wrote at final
	// delivery (RFC 5321 §4.4); "<>" is the null reverse-path of a
	// notification (RFC 5321 §4.5.5; RFC 3834 §2: never answer it).
	if rps := h.Values("Return-Path"); len(rps) > 0 {
		in.HasReturnPath = true
		in.ReturnPath = parseReturnPath(rps[0])
	}

	in.Subject = cleanLine(decodeWords(fixRaw(h.Get("Subject"), p.hint)))
	if v := h.Get("Date"); v != "" {
		if t, ok := parseDate(v); ok {
			in.Date = t
		} else {
			p.problem("unparsable date")
		}
	}
	in.LoopHeader = cleanLine(fixUTF8(h.Get("X-Deskd-Loop")))
	for _, v := range h.Values("Authentication-Results") {
		in.AuthResults = append(in.AuthResults, cleanLine(fixUTF8(v)))
	}
}

// addresses parses every field named key (some mailers write To twice).
func (p *parser) addresses(key string) []cases.Address {
	var out []cases.Address
	for _, v := range p.h.Values(key) {
		as, ok := parseAddressList(fixRaw(v, p.hint))
		if !ok {
			p.problem("%s: unparsable address list", strings.ToLower(key))
		}
		out = append(out, as...)
	}
	return out
}

// ---- header block ----

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

// ---- header values ----

// charsetReader converts a named charset to UTF-8 with go-message's table,
// and passes the bytes through when the charset is unknown: fixUTF8 then
// deals with them, so one odd charset never costs a subject or a name.
func charsetReader(cs string, r io.Reader) (io.Reader, error) {
	cs = cleanCharset(cs)
	if isUTF7(cs) {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		return strings.NewReader(decodeUTF7(b)), nil
	}
	if cr, err := gocharset.Reader(cs, r); err == nil && cr != nil {
		return cr, nil
	}
	return r, nil
}

func isUTF7(cs string) bool {
	return cs == "utf-7" || cs == "unicode-1-1-utf-7" || cs == "x-unicode-2-0-utf-7"
}

// decodeUTF7 decodes RFC 2152 UTF-7, which old Outlook Express versions
// sent and x/text does not support: "+" starts modified base64 of UTF-16
// code units, "-" or any non-base64 character ends it, "+-" is "+".
func decodeUTF7(b []byte) string {
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '+' {
			out.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(b) && isBase64Char(b[j]) {
			j++
		}
		if j == i+1 {
			if j < len(b) && b[j] == '-' {
				out.WriteByte('+')
				i = j
				continue
			}
			out.WriteByte('+')
			continue
		}
		seg := b[i+1 : j]
		if len(seg)%4 == 1 {
			seg = seg[:len(seg)-1] // a lone sextet carries no whole byte
		}
		raw, _ := base64.RawStdEncoding.DecodeString(string(seg))
		units := make([]uint16, 0, len(raw)/2)
		for k := 0; k+1 < len(raw); k += 2 {
			units = append(units, uint16(raw[k])<<8|uint16(raw[k+1]))
		}
		out.WriteString(string(utf16.Decode(units)))
		i = j - 1
		if j < len(b) && b[j] == '-' {
			i = j // the "-" only ends the base64 run
		}
	}
	return fixUTF8(out.String())
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

func cleanCharset(cs string) string {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"'`))
	cs = strings.TrimPrefix(cs, "charset=")       // "charset=charset=us-ascii" seen in the wild
	if i := strings.IndexAny(cs, " ;*"); i >= 0 { // RFC 2231 §5 language suffix "utf-8*en"
		cs = cs[:i]
	}
	return cs
}

// decodeWords decodes RFC 2047 encoded-words.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d := mime.WordDecoder{CharsetReader: charsetReader}
	out, err := d.DecodeHeader(s)
	if err != nil {
		return s
	}
	return fixUTF8(out)
}

// fixRaw makes raw header bytes valid UTF-8. RFC 6532 allows UTF-8 in
// headers; other 8-bit bytes are most likely in the charset of the body, so
// that is tried before the windows-1252 fallback.
func fixRaw(s, hint string) string {
	if utf8.ValidString(s) {
		return s
	}
	if cs := cleanCharset(hint); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if r, err := gocharset.Reader(cs, strings.NewReader(s)); err == nil && r != nil {
			if out, err := io.ReadAll(r); err == nil {
				return fixUTF8(string(out))
			}
		}
	}
	return fixUTF8(s)
}

// fixUTF8 returns s with every byte that is not part of valid UTF-8 read as
// windows-1252 (the superset of ISO-8859-1 that mislabelled Western mail is
// nearly always in), so the result is valid UTF-8 and no text is dropped.
func fixUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			b.WriteRune(charmap.Windows1252.DecodeByte(s[i]))
			i++
			continue
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String()
}

// c1ToCP1252 reads a C1 control character as the windows-1252 character
// with the same code: mail labelled ISO-8859-1 is nearly always windows-1252
// (the WHATWG Encoding Standard treats the labels as one), so "=96" in an
// ISO-8859-1 encoded-word is an en dash, not a control character.
func c1ToCP1252(r rune) rune {
	if r >= 0x80 && r <= 0x9f {
		return charmap.Windows1252.DecodeByte(byte(r))
	}
	return r
}

// isControl reports the runes that must not reach a one-line field: C0 and
// C1 controls, DEL and the Unicode line and paragraph separators (a
// "subject" with a line break could inject a header into a reply).
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 || r == 0xfeff
}

// cleanLine makes s a single line of valid UTF-8: control characters become
// spaces, runs of white space collapse, ends are trimmed.
func cleanLine(s string) string {
	s = fixUTF8(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		r = c1ToCP1252(r)
		if isControl(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cleanText makes a body text valid UTF-8 with LF line ends and no control
// characters other than tab and newline.
func cleanText(s string) string {
	s = fixUTF8(s)
	clean := true
	for _, r := range s {
		if r == '\r' || (isControl(r) && r != '\n' && r != '\t') || (r >= 0x80 && r <= 0x9f) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		r = c1ToCP1252(r)
		switch {
		case r == '\r':
			b.WriteByte('\n')
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case isControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// addrSpecRE scrapes addr-specs out of a field no parser accepts.
var addrSpecRE = regexp.MustCompile(`[\p{L}\p{N}!#$%&'*+/=?^_` + "`" + `{|}~.-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*`)

// emptyAngleRE is an empty address "<>" (From: MAILER-DAEMON <>).
var emptyAngleRE = regexp.MustCompile(`<\s*>`)

// parseAddressList parses an address list leniently: go-message's parser
// (net/mail with charset support) first, then net/mail on each element,
// then a scrape of anything that looks like an addr-spec. ok is false when
// the strict parsers failed somewhere.
func parseAddressList(v string) (out []cases.Address, ok bool) {
	if strings.TrimSpace(v) == "" {
		return nil, true
	}
	if list, err := gomail.ParseAddressList(v); err == nil {
		for _, a := range list {
			out = appendAddr(out, a.Name, quoteLocal(a.Address))
		}
		return out, true
	}
	ap := netmail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: charsetReader}}
	if list, err := ap.ParseList(v); err == nil {
		for _, a := range list {
			out = appendAddr(out, a.Name, quoteLocal(a.Address))
		}
		return out, true
	}
	for _, part := range splitAddressList(v) {
		if strings.TrimSpace(part) == "" {
			continue
		}
		if a, err := ap.Parse(part); err == nil {
			out = appendAddr(out, a.Name, a.Address)
			continue
		}
		// The address in angle brackets is the mailbox (RFC 5322 §3.4);
		// an addr-spec in the display name is decoration (or phishing).
		start := 0
		if i := strings.LastIndexByte(part, '<'); i >= 0 {
			if loc := addrSpecRE.FindStringIndex(part[i:]); loc != nil {
				start = i
			}
		}
		loc := addrSpecRE.FindStringIndex(part[start:])
		if loc == nil {
			continue
		}
		loc[0], loc[1] = loc[0]+start, loc[1]+start
		name := part[:loc[0]]
		if i := strings.LastIndexByte(name, '<'); i >= 0 {
			name = name[:i]
		}
		name = strings.Trim(strings.TrimSpace(name), `"' `)
		out = appendAddr(out, name, part[loc[0]:loc[1]])
	}
	if len(out) == 0 {
		// Never lose a sender entirely: keep what it said as the name.
		name := emptyAngleRE.ReplaceAllString(v, " ")
		if name = strings.Trim(cleanLine(decodeWords(name)), `"' `); name != "" {
			out = append(out, cases.Address{Name: name})
		}
	}
	return out, false
}

// quoteLocal puts back the quotes of a quoted local part that the address
// parsers return unquoted: "kees de vries"@x is a mailbox of its own, and
// dropping its spaces would name another one (keesdevries@x).
func quoteLocal(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || !strings.ContainsAny(addr[:at], " \t\"(),:;<>[\\]") {
		return addr
	}
	return strconv.Quote(addr[:at]) + addr[at:]
}

func appendAddr(out []cases.Address, name, addr string) []cases.Address {
	addr = strings.ToLower(cleanLine(addr))
	if !strings.HasPrefix(addr, `"`) {
		// Folding white space inside an unquoted address (the lenient
		// fallback's find) is no part of it.
		addr = strings.ReplaceAll(addr, " ", "")
	}
	name = cleanLine(decodeWords(name))
	if addr == "" && name == "" {
		return out
	}
	if strings.EqualFold(name, addr) {
		name = ""
	}
	return append(out, cases.Address{Name: name, Email: addr})
}

// splitAddressList splits at commas outside quotes, comments and brackets.
func splitAddressList(v string) []string {
	var parts []string
	depth, angle, quoted, start := 0, false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			i++
		case quoted:
			if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case (c == ',' || c == ';') && depth == 0 && !angle:
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	if start < len(v) {
		parts = append(parts, v[start:])
	}
	// "Doe, John <john@x>": an unquoted comma in a display name. A piece
	// without any "@" belongs to the next one.
	var out []string
	var carry strings.Builder
	for _, pc := range parts {
		if !strings.Contains(pc, "@") && strings.TrimSpace(pc) != "" {
			carry.WriteString(pc)
			carry.WriteByte(',')
			continue
		}
		out = append(out, carry.String()+pc)
		carry.Reset()
	}
	if carry.Len() > 0 {
		out = append(out, strings.TrimSuffix(carry.String(), ","))
	}
	return out
}

// parseReturnPath returns the address of a Return-Path value, "" for the
// null path "<>".
func parseReturnPath(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	} else if i := strings.IndexByte(v, '('); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.ReplaceAll(cleanLine(fixUTF8(v)), " ", ""))
}

var (
	dateCommentRE = regexp.MustCompile(`\([^()]*\)`)
	dateSpaceRE   = regexp.MustCompile(`\s+`)
)

// parseDate parses a Date value with net/mail (RFC 5322 §3.3 including the
// obsolete forms) and, failing that, a few layouts seen in the wild.
func parseDate(v string) (time.Time, bool) {
	if t, err := netmail.ParseDate(v); err == nil {
		return t, true
	}
	s := strings.TrimSpace(dateSpaceRE.ReplaceAllString(dateCommentRE.ReplaceAllString(v, " "), " "))
	if t, err := netmail.ParseDate(s); err == nil {
		return t, true
	}
	for _, layout := range []string{
		"Mon, 2 Jan 2006 15:04:05 -0700 MST",
		"Mon, 2 Jan 2006 15:04 -0700",
		"2 Jan 2006 15:04 -0700",
		"Mon, 2 Jan 06 15:04:05 -0700",
		"Mon, 2 Jan 06 15:04:05 MST",
		"Mon Jan 2 15:04:05 2006",
		"Mon Jan 2 15:04:05 MST 2006",
		"Mon, 2 Jan 2006 15:04:05",
		time.RFC3339,
		"2006-01-02 15:04:05 -0700",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// ---- MIME structure ----

// paramRE scrapes parameters from a Content-Type or Content-Disposition
// that mime.ParseMediaType rejects (duplicate or broken parameters).
var paramRE = regexp.MustCompile(`(?i)(?:^|;)\s*([a-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)`)

// mediaType returns the lower-cased media type and parameters of h. The
// default is text/plain (RFC 2045 §5.2), message/rfc822 inside a
// multipart/digest (RFC 2046 §5.1.5).
func mediaType(h message.Header, parent string) (string, map[string]string) {
	def := "text/plain"
	if parent == "multipart/digest" {
		def = "message/rfc822"
	}
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return def, map[string]string{}
	}
	mt, params := parseParams(v)
	switch {
	case mt == "text" || mt == "plain" || mt == "text/":
		mt = "text/plain"
	case !strings.Contains(mt, "/"):
		mt = "text/plain"
	}
	return mt, params
}

// disposition returns the lower-cased Content-Disposition (RFC 2183) and its
// parameters.
func disposition(h message.Header) (string, map[string]string) {
	v := h.Get("Content-Disposition")
	if strings.TrimSpace(v) == "" {
		return "", map[string]string{}
	}
	return parseParams(v)
}

func parseParams(v string) (string, map[string]string) {
	v = fixUTF8(v)
	mt, params, err := mime.ParseMediaType(v)
	if err == nil || (mt != "" && errors.Is(err, mime.ErrInvalidMediaParameter)) {
		if params == nil {
			params = map[string]string{}
		}
		if err == nil {
			return mt, params
		}
	} else {
		mt = ""
		params = map[string]string{}
	}
	if mt == "" {
		first, _, _ := strings.Cut(v, ";")
		mt = strings.ToLower(strings.TrimSpace(first))
	}
	for _, m := range paramRE.FindAllStringSubmatch(v, -1) {
		k := strings.ToLower(m[1])
		if _, ok := params[k]; ok {
			continue
		}
		val := m[2]
		if len(val) >= 2 && val[0] == '"' {
			val = strings.ReplaceAll(val[1:len(val)-1], `\"`, `"`)
		}
		params[k] = val
	}
	return mt, params
}

// bodyText is the readable text found in a subtree.
type bodyText struct{ plain, html string }

type rawPart struct {
	h    textproto.Header
	body []byte
}

// walk reads one entity: a multipart is split with go-message's textproto
// multipart reader and its children walked; anything else is a leaf.
func (p *parser) walk(h message.Header, body []byte, depth int, parent, path string) bodyText {
	p.parts++
	if p.parts > maxParts {
		if p.parts == maxParts+1 {
			p.problem("more than %d MIME parts; rest ignored", maxParts)
		}
		return bodyText{}
	}
	mt, params := mediaType(h, parent)
	if depth == 0 {
		p.rep.topType = mt
		p.rep.reportType = strings.ToLower(params["report-type"])
	}
	rawCTE := false
	if strings.HasPrefix(mt, "multipart/") && len(bytes.TrimSpace(body)) == 0 {
		// Header only (a mail whose body was stripped): nothing to read,
		// nothing to complain about.
		return bodyText{}
	}
	if strings.HasPrefix(mt, "multipart/") {
		boundary := params["boundary"]
		switch {
		case depth >= maxDepth:
			p.problem("part %s: MIME nesting deeper than %d ignored", path, maxDepth)
			return bodyText{}
		case boundary == "":
			p.problem("part %s: %s without boundary, read as text", path, mt)
		default:
			kids, err := splitMultipart(body, boundary)
			switch {
			case err == nil:
			case errors.Is(err, io.ErrUnexpectedEOF):
				p.problem("part %s: missing closing boundary", path)
			default:
				p.problem("part %s: %v", path, err)
				// go-message's reader stops at the first part it cannot
				// read (a broken part header, a boundary look-alike);
				// the lenient split keeps the parts after it.
				if lk := splitMultipartLenient(body, boundary); len(lk) > len(kids) {
					p.problem("part %s: %d parts recovered by lenient split", path, len(lk))
					kids = lk
				}
			}
			if len(kids) > 0 {
				return p.multipart(mt, params, kids, depth, path)
			}
			p.problem("part %s: no parts found in %s, read as text", path, mt)
		}
		// RFC 2046 §5.1.1: a multipart with no usable delimiter has no
		// structure; its content is the readable text. Its transfer
		// encoding is ignored as go-message does (RFC 2045 §6.4).
		mt, params, rawCTE = "text/plain", map[string]string{"charset": params["charset"]}, true
	}
	return p.leaf(h, body, mt, params, parent, path, depth, rawCTE)
}

func splitMultipart(body []byte, boundary string) ([]rawPart, error) {
	mr := textproto.NewMultipartReader(bytes.NewReader(body), boundary)
	var parts []rawPart
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return parts, nil
		}
		if err != nil {
			return parts, err
		}
		data, rerr := io.ReadAll(part)
		parts = append(parts, rawPart{h: part.Header, body: data})
		if rerr != nil {
			return parts, rerr
		}
		if len(parts) > maxParts {
			return parts, fmt.Errorf("more than %d parts", maxParts)
		}
	}
}

// splitMultipartLenient splits a multipart body at its delimiter lines
// (RFC 2046 §5.1.1: "--" boundary, optional white space) and reads each
// part's header with readHeaderBlock, which drops broken lines instead of
// failing. It is only a fallback for bodies go-message's reader rejects.
func splitMultipartLenient(body []byte, boundary string) []rawPart {
	delim := []byte("--" + boundary)
	var parts []rawPart
	start := -1 // start of the current part's bytes
	pos := 0
	for pos < len(body) && len(parts) <= maxParts {
		line, next := nextLine(body, pos)
		if bytes.HasPrefix(line, delim) {
			rest := bytes.TrimRight(line[len(delim):], " \t\r")
			closing := bytes.Equal(rest, []byte("--"))
			if len(rest) == 0 || closing {
				if start >= 0 {
					end := pos
					if end > start && body[end-1] == '\n' {
						end-- // the line break before a delimiter belongs to it
					}
					h, pb, _, _ := readHeaderBlock(body[start:end])
					parts = append(parts, rawPart{h: h, body: pb})
				}
				if closing {
					return parts
				}
				start = next
			}
		}
		pos = next
	}
	if start >= 0 && start < len(body) {
		h, pb, _, _ := readHeaderBlock(body[start:])
		parts = append(parts, rawPart{h: h, body: pb})
	}
	return parts
}

func (p *parser) multipart(mt string, params map[string]string, kids []rawPart, depth int, path string) bodyText {
	var out bodyText
	var plains, htmls []string
	for i, k := range kids {
		child := p.walk(message.Header{Header: k.h}, k.body, depth+1, mt, path+"."+strconv.Itoa(i+1))
		if mt == "multipart/alternative" {
			// RFC 2046 §5.1.4: alternatives carry the same content; keep
			// one plain and one HTML rendering, the last (most faithful).
			if strings.TrimSpace(child.plain) != "" {
				out.plain = child.plain
			}
			if strings.TrimSpace(child.html) != "" {
				out.html = child.html
			}
			continue
		}
		if strings.TrimSpace(child.plain) != "" {
			plains = append(plains, strings.TrimRight(child.plain, "\n"))
		}
		if strings.TrimSpace(child.html) != "" {
			htmls = append(htmls, child.html)
		}
	}
	if mt != "multipart/alternative" {
		// Inline parts of a mixed message are read in order (RFC 2046
		// §5.1.3), e.g. text, a picture, more text.
		out.plain = strings.Join(plains, "\n\n")
		out.html = strings.Join(htmls, "\n")
	}
	return out
}

// leaf handles a non-multipart entity: body text, report parts, attachments.
func (p *parser) leaf(h message.Header, body []byte, mt string, params map[string]string, parent, path string, depth int, rawCTE bool) bodyText {
	disp, dparams := disposition(h)
	filename := p.filename(h, params, dparams)
	// A report part counts inside a multipart/report (RFC 6522) or as the
	// whole message (some MTAs send a bare message/delivery-status).
	inReport := p.inner == 0 && (parent == "multipart/report" || parent == "")
	what := "part " + path + " (" + mt + ")"
	switch {
	case (mt == "text/plain" || mt == "text/html") && disp != "attachment" && (filename == "" || !p.hasText):
		data := p.decodeTransfer(h, body, what, rawCTE)
		s := p.decodeCharset(params["charset"], data, mt == "text/html", what)
		p.hasText = true
		if mt == "text/html" {
			return bodyText{html: s}
		}
		return bodyText{plain: s}
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		data := p.decodeTransfer(h, body, what, rawCTE)
		if inReport {
			p.rep.dsn = true
			p.rep.failed = append(p.rep.failed, parseDSN(data)...)
		}
		p.attach(mt, filename, data)
	case mt == "text/rfc822-headers" || mt == "message/rfc822" || mt == "message/global" || mt == "message/global-headers":
		data := p.decodeTransfer(h, body, what, rawCTE)
		oh, obody, _, _ := readHeaderBlock(normalizeEOL(data))
		if inReport && p.rep.origMsgID == "" {
			// RFC 3464 §2 / RFC 6522 §3: the third part returns the
			// original message or its header.
			p.rep.origMsgID = NormalizeMessageID(oh.Get("Message-Id"))
		}
		p.attach(mt, filename, data)
		if !inReport && mt != "text/rfc822-headers" && p.forwarded == "" && p.inner == 0 {
			// A mail forwarded as an attachment (RFC 2046 §5.2.1): its
			// text is what a person sent us when there is no other.
			p.forwarded = p.innerText(message.Header{Header: oh}, obody, depth, path)
		}
	default:
		data := p.decodeTransfer(h, body, what, rawCTE)
		p.attach(mt, filename, data)
	}
	return bodyText{}
}

// innerText reads the text of an attached message without recording its
// attachments or report parts as the outer message's.
func (p *parser) innerText(h message.Header, body []byte, depth int, path string) string {
	saved := p.hasText
	p.hasText = false
	p.inner++
	bt := p.walk(h, body, depth+1, "message/rfc822", path+".m")
	p.inner--
	p.hasText = saved
	s := bt.plain
	if strings.TrimSpace(s) == "" && strings.TrimSpace(bt.html) != "" {
		s = htmlToText(bt.html)
	}
	if strings.TrimSpace(s) == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("---------- Forwarded message ----------\n")
	for _, k := range []string{"From", "Date", "Subject", "To"} {
		if v := cleanLine(decodeWords(fixRaw(h.Get(k), p.hint))); v != "" {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	b.WriteString("\n")
	b.WriteString(s)
	return b.String()
}

func (p *parser) attach(mt, filename string, data []byte) {
	if p.inner > 0 {
		return
	}
	p.in.Attachments = append(p.in.Attachments, cases.Attachment{Filename: filename, ContentType: cleanLine(mt), Size: len(data), Data: data})
}

// rfc2231RE finds RFC 2231 extended parameters; mime.ParseMediaType drops
// them when the charset is not UTF-8 or US-ASCII.
var rfc2231RE = regexp.MustCompile(`(?i)(?:^|;)\s*(filename|name)\*(?:(\d+)(\*)?)?\s*=\s*("[^"]*"|[^;\s]*)`)

// filename returns an attachment's decoded file name (RFC 2183 filename,
// else the Content-Type name), without any directory part.
func (p *parser) filename(h message.Header, params, dparams map[string]string) string {
	// RFC 2231 parameters first: mime.ParseMediaType only decodes them
	// in UTF-8 and US-ASCII and hands back others undecoded.
	name := rfc2231Name(h.Get("Content-Disposition"), "filename")
	if name == "" {
		name = dparams["filename"]
	}
	if name == "" {
		name = rfc2231Name(h.Get("Content-Type"), "name")
	}
	if name == "" {
		name = params["name"]
	}
	if name == "" {
		return ""
	}
	// RFC 2047 §5 forbids encoded-words in parameters; mailers use them anyway.
	name = cleanLine(decodeWords(fixRaw(name, p.hint)))
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return name
}

func rfc2231Name(v, param string) string {
	if !strings.Contains(v, "*") {
		return ""
	}
	type piece struct {
		n   int
		enc bool
		val string
	}
	var pieces []piece
	for _, m := range rfc2231RE.FindAllStringSubmatch(v, -1) {
		if !strings.EqualFold(m[1], param) {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		// name*=... is encoded; name*0=... is not, name*0*=... is (RFC 2231 §3, §4).
		pieces = append(pieces, piece{n: n, enc: m[2] == "" || m[3] != "", val: strings.Trim(m[4], `"`)})
	}
	if len(pieces) == 0 {
		return ""
	}
	sort.SliceStable(pieces, func(i, j int) bool { return pieces[i].n < pieces[j].n })
	var cs string
	var b strings.Builder
	for i, pc := range pieces {
		val := pc.val
		if pc.enc {
			if i == 0 {
				if parts := strings.SplitN(val, "'", 3); len(parts) == 3 {
					cs, val = parts[0], parts[2]
				}
			}
			if u, err := url.PathUnescape(val); err == nil {
				val = u
			}
		}
		b.WriteString(val)
	}
	out := b.String()
	if cs != "" && !utf8.ValidString(out) {
		return fixRaw(out, cs)
	}
	return out
}

// cteAlias maps Content-Transfer-Encoding spellings seen in the wild to
// the RFC 2045 §6.1 names.
func cteAlias(v string) (string, bool) {
	switch v {
	case "quoted-printable", "quoted_printable", "quoted printable", "quotedprintable", "qp":
		return "quoted-printable", true
	case "base64", "base-64", "b64":
		return "base64", true
	case "7bit", "7-bit", "7bits", "plain", "text", "none", "":
		return "7bit", true
	case "8bit", "8-bit", "8bits":
		return "8bit", true
	case "binary":
		return "binary", true
	}
	return "", false
}

// decodeTransfer undoes the Content-Transfer-Encoding with go-message.
// An unknown encoding leaves the bytes as they are; broken base64 is decoded
// as far as it goes.
func (p *parser) decodeTransfer(h message.Header, body []byte, what string, raw bool) []byte {
	cte := "7bit"
	if !raw {
		v := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
		if _, known := cteAlias(v); !known {
			if i := strings.IndexAny(v, " ;("); i >= 0 {
				v = strings.TrimSpace(v[:i])
			}
		}
		v = strings.Trim(v, `"`)
		if c, ok := cteAlias(v); ok {
			cte = c
		} else {
			p.problem("%s: unknown transfer encoding %q, kept as is", what, v)
		}
	}
	if cte == "7bit" || cte == "8bit" || cte == "binary" {
		return body
	}
	var hc message.Header
	hc.Set("Content-Type", "application/octet-stream")
	hc.Set("Content-Transfer-Encoding", cte)
	e, err := message.New(hc, bytes.NewReader(body))
	if err != nil {
		p.problem("%s: %v", what, err)
		return body
	}
	data, err := io.ReadAll(e.Body)
	if err != nil {
		if cte == "base64" {
			// Missing final padding is common and harmless; only
			// report what really lost data.
			if !onlyUnpadded(body) {
				p.problem("%s: broken base64, decoded leniently", what)
			}
			return lenientBase64(body)
		}
		p.problem("%s: %v", what, err)
	}
	return data
}

// onlyUnpadded reports whether body is base64 whose only fault is missing
// "=" padding at the end.
func onlyUnpadded(body []byte) bool {
	n := 0
	for _, c := range body {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			n++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			return false
		}
	}
	return n%4 != 1
}

// lenientBase64 decodes what can be decoded: characters outside the
// alphabet are skipped and every padded chunk is decoded on its own.
func lenientBase64(body []byte) []byte {
	var out, chunk []byte
	flush := func() {
		n := len(chunk) / 4 * 4
		if rest := len(chunk) - n; rest >= 2 {
			n = len(chunk)
		}
		if d, err := base64.RawStdEncoding.DecodeString(string(chunk[:n])); err == nil {
			out = append(out, d...)
		} else if d, err := base64.RawStdEncoding.DecodeString(string(chunk[:len(chunk)/4*4])); err == nil {
			out = append(out, d...)
		}
		chunk = chunk[:0]
	}
	for _, c := range body {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			chunk = append(chunk, c)
		case c == '=':
			if len(chunk) > 0 {
				flush()
			}
		}
	}
	if len(chunk) > 0 {
		flush()
	}
	return out
}

// decodeCharset converts a text part to UTF-8 with go-message's charset
// table. Unknown charsets and mislabelled bytes fall back to sniffing (HTML
// meta, RFC 2854 §4 / HTML5 prescan) or windows-1252: the text is kept.
func (p *parser) decodeCharset(cs string, data []byte, isHTML bool, what string) string {
	cs = cleanCharset(cs)
	decoded := false
	if isUTF7(cs) {
		return decodeUTF7(data)
	}
	if cs != "" && cs != "utf-8" && cs != "us-ascii" && cs != "utf8" && cs != "ascii" {
		var hc message.Header
		hc.SetContentType("text/plain", map[string]string{"charset": cs})
		e, err := message.New(hc, bytes.NewReader(data))
		if err == nil {
			if out, rerr := io.ReadAll(e.Body); rerr == nil {
				data, decoded = out, true
			} else {
				p.problem("%s: charset %q: %v", what, cs, rerr)
			}
		} else {
			p.problem("%s: unknown charset %q", what, cs)
		}
	}
	if utf8.Valid(data) {
		return string(data)
	}
	if isHTML && !decoded {
		if enc, name, _ := htmlcharset.DetermineEncoding(data, "text/html"); enc != nil && name != "utf-8" {
			if out, err := enc.NewDecoder().Bytes(data); err == nil {
				return fixUTF8(string(out))
			}
		}
	}
	if !decoded {
		p.problem("%s: not valid %s, read as windows-1252", what, orDefault(cs, "us-ascii"))
	}
	return fixUTF8(string(data))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// finishText picks the readable text: the plain text, else the HTML made
// readable; cleaned and capped.
func (p *parser) finishText(bt bodyText) string {
	s := bt.plain
	if strings.TrimSpace(s) == "" {
		s = ""
		if strings.TrimSpace(bt.html) != "" {
			s = htmlToText(bt.html)
		}
	}
	if strings.TrimSpace(s) == "" {
		s = p.forwarded
	}
	s = cleanText(s)
	if len(s) > maxTextBytes {
		cut := maxTextBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
		p.problem("text truncated to %d bytes", maxTextBytes)
	}
	return s
}

// ---- HTML to text ----

// htmlSkip reports elements whose content is not meant to be read.
func htmlSkip(tag string) bool {
	switch tag {
	case "script", "style", "head", "title", "noscript", "template", "svg", "object", "iframe":
		return true
	}
	return false
}

// htmlParagraph reports blocks set off by an empty line.
func htmlParagraph(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Table, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote:
		return true
	}
	return false
}

// htmlBlock reports elements that start on a line of their own.
func htmlBlock(tag string) bool {
	switch tag {
	case "p", "div", "section", "article", "header", "footer", "nav", "aside",
		"h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "dt", "dd",
		"table", "tr", "blockquote", "pre", "address", "form", "fieldset", "center",
		"figure", "figcaption", "main", "hr", "li", "caption", "tbody", "thead", "tfoot":
		return true
	}
	return false
}

// htmlToText renders HTML as readable plain text with golang.org/x/net/html:
// block elements on their own lines, list items marked, links followed by
// their target when it differs from the text. The tree is walked without
// recursion so deeply nested HTML cannot exhaust the stack.
func htmlToText(s string) string {
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		// x/net/html refuses absurdly deep trees; read the text tokens.
		return htmlTokensToText(s)
	}
	var w textWriter
	type frame struct {
		n     *html.Node
		exit  bool
		pre   int
		quote int
	}
	stack := []frame{{n: doc}}
	pre := 0
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := f.n
		if f.exit {
			pre, w.quote = f.pre, f.quote
			switch n.DataAtom {
			case atom.A:
				w.inLink--
				if href := attr(n, "href"); (strings.HasPrefix(href, "http://") || strings.HasPrefix(href, "https://")) && !strings.Contains(w.lastRun, href) {
					w.text(" <"+href+">", false)
				}
			case atom.Td, atom.Th:
				w.text(" ", false)
			}
			if htmlBlock(n.Data) {
				w.newline(htmlParagraph(n.DataAtom))
			}
			continue
		}
		switch n.Type {
		case html.TextNode:
			w.text(n.Data, pre > 0)
			continue
		case html.ElementNode:
			if htmlSkip(n.Data) {
				continue
			}
			switch n.DataAtom {
			case atom.Br:
				w.newline(false)
				continue
			case atom.Hr:
				w.newline(false)
				w.text("----", true)
				w.newline(false)
				continue
			case atom.Img:
				if alt := strings.TrimSpace(attr(n, "alt")); alt != "" {
					w.text("["+alt+"]", false)
				}
				continue
			case atom.A:
				if w.inLink == 0 {
					w.lastRun = ""
				}
				w.inLink++
			}
			if htmlBlock(n.Data) {
				w.newline(htmlParagraph(n.DataAtom))
			}
			if n.DataAtom == atom.Li {
				w.text("- ", true)
			}
			stack = append(stack, frame{n: n, exit: true, pre: pre, quote: w.quote})
			if n.DataAtom == atom.Pre || n.DataAtom == atom.Textarea {
				pre++
			}
			if n.DataAtom == atom.Blockquote {
				// Quoted history in an HTML-only reply becomes "> "
				// lines, as a mail client writes it in text, so that
				// cases.StripQuoted can recognise and cut it.
				w.quote++
			}
		case html.DocumentNode:
		default:
			continue
		}
		var kids []*html.Node
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			kids = append(kids, c)
		}
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, frame{n: kids[i]})
		}
	}
	return w.String()
}

// htmlTokensToText is the flat fallback of htmlToText: text tokens only,
// script and style skipped, block tags as line breaks.
func htmlTokensToText(s string) string {
	var w textWriter
	z := html.NewTokenizer(strings.NewReader(s))
	skip := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return w.String()
		case html.TextToken:
			if skip == 0 {
				w.text(string(z.Text()), false)
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if htmlSkip(tag) {
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
				continue
			}
			if htmlBlock(tag) || tag == "br" {
				w.newline(false)
			}
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return strings.TrimSpace(a.Val)
		}
	}
	return ""
}

// textWriter collapses white space the way a browser does and keeps at most
// one empty line between blocks.
type textWriter struct {
	b        strings.Builder
	newlines int  // newlines at the end of b
	space    bool // a space is pending
	inLink   int  // depth of open <a> elements
	lastRun  string
	quote    int // depth of open <blockquote> elements: "> " per level
}

// lineStart writes the quote marks a new line inside a blockquote gets.
func (w *textWriter) lineStart() {
	if w.quote > 0 && (w.newlines > 0 || w.b.Len() == 0) {
		w.b.WriteString(strings.Repeat("> ", min(w.quote, 20)))
	}
}

// linkText remembers the text of the current link, bounded: it is only
// compared with the link's href.
func (w *textWriter) linkText(s string) {
	if w.inLink > 0 && len(w.lastRun) < 2048 {
		w.lastRun += s
	}
}

func (w *textWriter) text(s string, pre bool) {
	if s == "" {
		return
	}
	if pre {
		w.flushSpace()
		w.lineStart()
		w.b.WriteString(s)
		w.linkText(s)
		w.newlines = 0
		if strings.HasSuffix(s, "\n") {
			w.newlines = 1
		}
		return
	}
	isSpace := func(r rune) bool { return unicode.IsSpace(r) && r != 0xa0 }
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if isSpace(first) {
		w.space = true
	}
	for i, f := range strings.FieldsFunc(s, isSpace) {
		if i > 0 {
			w.space = true
		}
		w.flushSpace()
		w.lineStart()
		w.b.WriteString(f)
		w.linkText(f)
		w.newlines = 0
	}
	if isSpace(last) {
		w.space = true
	}
}

func (w *textWriter) flushSpace() {
	if w.space && w.newlines == 0 && w.b.Len() > 0 {
		w.b.WriteByte(' ')
	}
	w.space = false
}

func (w *textWriter) newline(blank bool) {
	w.space = false
	if w.b.Len() == 0 {
		return
	}
	want := 1
	if blank {
		want = 2
	}
	for w.newlines < want {
		w.b.WriteByte('\n')
		w.newlines++
	}
}

func (w *textWriter) String() string { return strings.TrimSpace(w.b.String()) }
