package portal

import (
	"bytes"
	"html"
	"html/template"
	"io"
	"mime"
	"net/url"
	"regexp"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // charsets of HTML parts
	"github.com/microcosm-cc/bluemonday"

	"deskd/cases"
)

// Rendering a stored mail for a customer's browser. The text part is what
// is shown, with the quoted history folded away; a mail that has only HTML
// is shown through a strict bluemonday policy: formatting and links only,
// no scripts, handlers, style attributes, forms, frames or remote images.
// An inline image (cid:) is served through the portal's own attachment
// endpoint, so the CSP's img-src 'self' holds; links get
// rel="nofollow noreferrer noopener". The CSP (portal.go) forbids inline
// script and style whatever slips through.

// body is one message's rendered body.
type body struct {
	Text   string        // the writer's own words
	Quoted string        // the folded quoted history ("" = none)
	HTML   template.HTML // set for HTML-only mail: sanitised
}

var policy = newPolicy()

func newPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "b", "i", "u", "s", "strong", "em", "small", "sub", "sup",
		"ul", "ol", "li", "dl", "dt", "dd", "blockquote", "pre", "code", "hr",
		"h1", "h2", "h3", "h4", "h5", "h6", "div", "span", "font", "center",
		"table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption")
	p.AllowAttrs("colspan", "rowspan").Matching(regexp.MustCompile(`^[0-9]{1,3}$`)).OnElements("td", "th")
	p.AllowAttrs("href").OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto", "cid")
	p.RequireParseableURLs(true)
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	// Only inline parts of the mail itself; anything remote would tell the
	// sender when and where the customer read it.
	p.AllowAttrs("src").Matching(regexp.MustCompile(`(?i)^cid:[^\s"'<>]{1,200}$`)).OnElements("img")
	p.AllowAttrs("alt").OnElements("img")
	return p
}

var cidSrc = regexp.MustCompile(`src="cid:([^"]*)"`)

// sanitizeHTML makes an HTML mail body safe to embed; cidURL turns a
// Content-ID into the portal URL that serves that part.
func sanitizeHTML(src string, cidURL func(cid string) string) template.HTML {
	out := policy.Sanitize(src)
	// An <a href="cid:..."> is pointless; only images keep their cid.
	out = cidSrc.ReplaceAllStringFunc(out, func(m string) string {
		cid := html.UnescapeString(cidSrc.FindStringSubmatch(m)[1])
		return `src="` + html.EscapeString(cidURL(cid)) + `"`
	})
	out = strings.ReplaceAll(out, `href="cid:`, `data-cid="`)
	return template.HTML(out)
}

// splitQuoted folds the quoted history off a text.
func splitQuoted(text string) body {
	norm := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
	own := cases.StripQuoted(text)
	b := body{Text: strings.TrimRight(own, "\n ")}
	if rest := strings.TrimSpace(strings.TrimPrefix(norm, own)); rest != "" && strings.HasPrefix(norm, own) {
		b.Quoted = rest
	}
	return b
}

// parts is what the portal needs of a raw mail's MIME tree.
type parts struct {
	hasPlain bool
	html     string
	inline   map[string]inlinePart // by Content-ID, without <>
}

type inlinePart struct {
	contentType string
	data        []byte
}

const maxWalkParts = 200

// walk reads the MIME tree of raw: whether it has a text/plain body, its
// first text/html body, and the inline parts with a Content-ID. A broken
// mail gives what could be read.
func walk(raw []byte) parts {
	var ps parts
	e, err := message.Read(bytes.NewReader(raw))
	if e == nil {
		return ps
	}
	_ = err // a charset or encoding problem still leaves a readable tree
	n := 0
	_ = e.Walk(func(path []int, part *message.Entity, err error) error {
		if n++; n > maxWalkParts || err != nil && part == nil {
			return io.EOF
		}
		mt, _, _ := part.Header.ContentType()
		disp, _, _ := part.Header.ContentDisposition()
		switch {
		case strings.HasPrefix(mt, "multipart/"):
			return nil
		case mt == "text/plain" && disp != "attachment":
			ps.hasPlain = true
		case mt == "text/html" && disp != "attachment" && ps.html == "":
			b, _ := io.ReadAll(io.LimitReader(part.Body, 4<<20))
			ps.html = string(b)
		}
		if cid := strings.Trim(part.Header.Get("Content-Id"), "<> \t"); cid != "" {
			if ps.inline == nil {
				ps.inline = map[string]inlinePart{}
			}
			b, _ := io.ReadAll(io.LimitReader(part.Body, 16<<20))
			ps.inline[cid] = inlinePart{contentType: mt, data: b}
		}
		return nil
	})
	return ps
}

// inlineImage reports whether an inline part may be shown in an <img>:
// raster images only; SVG can carry script and is never rendered.
func inlineImage(contentType string) bool {
	switch strings.ToLower(contentType) {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return true
	}
	return false
}

// safeFilename makes a Content-Disposition filename: no path, no control
// characters, no quotes, at most 100 runes; "attachment" when nothing is
// left.
func safeFilename(name string) string {
	name = name[strings.LastIndexAny(name, `/\`)+1:]
	var b strings.Builder
	n := 0
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '"' || r == ';' || r == '%' || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0x202e {
			r = '_'
		}
		if n++; n > 100 {
			break
		}
		b.WriteRune(r)
	}
	s := strings.Trim(b.String(), ". ")
	if s == "" {
		return "attachment"
	}
	return s
}

// contentDisposition is always "attachment", with an ASCII fallback and
// the UTF-8 name (RFC 6266 §4.3).
func contentDisposition(name string) string {
	name = safeFilename(name)
	ascii := strings.Map(func(r rune) rune {
		if r > 0x7e {
			return '_'
		}
		return r
	}, name)
	v := mime.FormatMediaType("attachment", map[string]string{"filename": ascii})
	if ascii != name {
		v += "; filename*=UTF-8''" + url.PathEscape(name)
	}
	if v == "" {
		return "attachment"
	}
	return v
}
