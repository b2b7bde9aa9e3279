package mail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"deskd/cases"
)

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
