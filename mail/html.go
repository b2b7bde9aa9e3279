package mail

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

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
