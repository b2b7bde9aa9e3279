package mail

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gocharset "github.com/emersion/go-message/charset" // registers the charsets go-message can decode
	htmlcharset "golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/charmap"
)

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
	var b lineBuilder
	b.Grow(len(s))
	for _, r := range s {
		r = c1ToCP1252(r)
		if isControl(r) || unicode.IsSpace(r) {
			b.blank()
			continue
		}
		b.add(r)
	}
	return b.String()
}

// lineBuilder builds one line from runes and blanks: a run of blanks
// between two runes becomes one space, blanks at either end none.
type lineBuilder struct {
	strings.Builder
	space bool
}

func (b *lineBuilder) blank() { b.space = b.Len() > 0 }

func (b *lineBuilder) add(r rune) {
	if b.space {
		b.WriteByte(' ')
		b.space = false
	}
	b.WriteRune(r)
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
