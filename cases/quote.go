package cases

// Mail clients append (or prepend) the whole earlier thread to a reply.
// deskd relays a staff reply to the customer without the staff member's own
// quoted history, and shows staff only the customer's new text; the stored
// message keeps everything. Cutting too little costs some scrolling; cutting
// too much loses what somebody wrote, so every rule below prefers to keep.
//
// What is cut, from the first line that starts it to the end:
//   - an attribution ("On <date>, <name> wrote:", "Op <date> schreef <name>:",
//     "Op ... heeft ... het volgende geschreven:", "Am ... schrieb ...:",
//     "Le ... a écrit :"), on one line or wrapped over two, that carries a
//     digit (a date: "On the ticket you wrote:" is prose), when only quoted
//     lines, blank lines or another marker follow it, or nothing at all;
//   - a separator: "-----Original Message-----", "-----Oorspronkelijk
//     bericht-----", "-----Ursprüngliche Nachricht-----" and the like;
//   - an Outlook header block: "From:" (Van:, Von:, De:) followed within a few
//     lines by a date field (Sent:, Date:, Verzonden:, Datum:, Gesendet:) and a
//     To: or Subject: field (Aan:, Onderwerp:, An:, Betreff:), possibly after a
//     "________________________________" or "----" rule.
//
// Then a trailing block of ">"-quoted lines is cut, with the attribution line
// right above it. Quoted lines with the writer's text below them (an inline
// or bottom-posted reply) stay: only the quoted lines at the end go.
//
// Forwards are content: "---------- Forwarded message ---------", "Begin
// forwarded message:" and their translations stop the search, and nothing
// below them is cut. Outlook writes a forward with the same header block as a
// reply, so an Outlook forward below the writer's text is cut like a reply
// (the stored message keeps it).
//
// The parser renders HTML-only mail without ">" marks (mail.htmlToText), so
// there an attribution is followed by plain text and is not cut: deskd
// cannot tell quoted history from the writer's own paragraphs.

import (
	"regexp"
	"strings"
)

var (
	// attributionPattern is a whole attribution line (after trimming),
	// in the languages deskd's customers write.
	attributionPattern = regexp.MustCompile(`(?i)^(?:on\s.*\bwrote|op\s.*\bschreef\b.*|op\s.*\bhet volgende geschreven|am\s.*\bschrieb\b.*|le\s.*\sa écrit\s*)\s*:$`)
	// attributionStart is how attributionPattern lines begin; a wrapped
	// attribution starts with it on the first line.
	attributionStart = regexp.MustCompile(`(?i)^(?:on|op|am|le)\s`)
	// looseAttribution ends a line that introduces a quote ("Jan wrote:");
	// trusted only right above a trailing quoted block.
	looseAttribution = regexp.MustCompile(`(?i)(?:\bwrote|\bschreef\b.*|\bhet volgende geschreven|\bschrieb\b.*|\sa écrit\s*)\s*:$`)
	// separatorPattern is the "-----Original Message-----" line of Outlook
	// and others.
	separatorPattern = regexp.MustCompile(`(?i)^-{2,}\s*(?:original message|oorspronkelijk bericht|oorspronkelijk e-?mailbericht|ursprüngliche nachricht|originalnachricht|message d'origine)\s*-{2,}$`)
	// forwardPattern starts a forwarded mail, which is content, not history.
	forwardPattern = regexp.MustCompile(`(?i)^(?:-{2,}\s*(?:forwarded message|doorgestuurd bericht|weitergeleitete nachricht|message transféré)\s*-*|(?:begin forwarded message|begin doorgestuurd bericht|anfang der weitergeleiteten nachricht)\s*:)$`)
	// ruleLine is the rule Outlook draws above its header block (or the
	// "----" the parser renders an HTML <hr> as).
	ruleLine = regexp.MustCompile(`^(?:_{10,}|-{4,})$`)
	// headerField is a field line of an Outlook header block; "*" for
	// bold labels rendered as text. headerFieldKind sorts the label.
	headerField = regexp.MustCompile(`(?i)^\*{0,2}(from|van|von|de|sent|date|verzonden|datum|gesendet|envoyé|to|aan|an|cc|subject|onderwerp|betreff|objet|à)\*{0,2}\s*:\*{0,2}(\s*\S)?`)
)

// Kinds of header block fields, as bits.
const (
	fieldFrom = 1 << iota // with a value: "From:" alone is not a block
	fieldDate
	fieldTo // To:, Cc: or Subject:
)

// headerFieldKind returns the kind of Outlook header field line l is, or 0.
func headerFieldKind(l string) int {
	m := headerField.FindStringSubmatch(l)
	if m == nil {
		return 0
	}
	switch strings.ToLower(m[1]) {
	case "from", "van", "von", "de":
		if m[2] == "" {
			return 0
		}
		return fieldFrom
	case "sent", "date", "verzonden", "datum", "gesendet", "envoyé":
		return fieldDate
	}
	return fieldTo
}

const (
	// maxAttribution bounds an attribution line: longer is a paragraph.
	maxAttribution = 400
	// headerWindow is how many lines after "From:" the other fields of an
	// Outlook header block may come (long To: lists wrap).
	headerWindow = 12
)

// StripQuoted returns text without the quoted history a mail client appends or prepends
// (the earlier mails of the thread), keeping the writer's own words and signature.
//
// CRLF and lone CR become LF and trailing blank lines go; the result is
// always a prefix of the text so normalised. When the text is nothing but
// quoted history (a reply with no new text: only ">" lines, attributions,
// separators and header blocks), the result is "". It is never "" when the
// text had any other non-blank line: if a cut would leave nothing, the
// whole text is returned instead (a forward written as an Outlook reply,
// say).
func StripQuoted(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.Split(text, "\n")
	n := len(lines)

	blank := make([]bool, n)
	quoted := make([]bool, n)
	trimmed := make([]string, n)
	field := make([]int, n)
	for i, l := range lines {
		trimmed[i] = strings.TrimFunc(l, isUnicodeSpace)
		blank[i] = trimmed[i] == ""
		quoted[i] = strings.HasPrefix(strings.TrimLeft(l, " \t"), ">")
		if !blank[i] && !quoted[i] {
			field[i] = headerFieldKind(trimmed[i])
		}
	}
	plain := func(i int) bool { return i < n && !blank[i] && !quoted[i] }

	// marker[i]: the line is part of an attribution, separator or header
	// block, not the writer's words (for the never-empty rule).
	marker := make([]bool, n)

	// Nothing at or below the first forward is cut.
	fwd := n
	for i := range n {
		if plain(i) && forwardPattern.MatchString(trimmed[i]) {
			fwd = i
			break
		}
	}

	// hard[i]: a separator or a header block starts at line i.
	hard := make([]bool, fwd+1)
	for i := 0; i < fwd; i++ {
		switch {
		case !plain(i):
		case separatorPattern.MatchString(trimmed[i]):
			hard[i], marker[i] = true, true
		case ruleLine.MatchString(trimmed[i]) && headerBlock(field, plain, i+1, fwd, marker):
			hard[i], marker[i] = true, true
		case headerBlock(field, plain, i, fwd, marker):
			hard[i] = true
		}
	}
	// old[j]: from line j on there is only history: quoted or blank lines
	// up to the end or a hard marker. A forward is content.
	old := make([]bool, fwd+1)
	old[fwd] = fwd == n
	for j := fwd - 1; j >= 0; j-- {
		old[j] = hard[j] || ((blank[j] || quoted[j]) && old[j+1])
	}

	// Attributions, marked wherever they stand: one below the cut is
	// history too, for the never-empty rule.
	attr := make([]int, fwd)
	for i := 0; i < fwd; i++ {
		if attr[i] = attribution(trimmed, plain, i, fwd); attr[i] > 0 {
			for k := i; k < i+attr[i]; k++ {
				marker[k] = true
			}
		}
	}

	cut := n
	for i := 0; i < fwd; i++ {
		if hard[i] || (attr[i] > 0 && old[i+attr[i]]) {
			cut = i
			break
		}
	}

	k := cut
	if cut < n || fwd == n {
		k = stripTrailingQuote(trimmed, blank, quoted, plain, k, marker)
	}
	for k > 0 && blank[k-1] {
		k--
	}
	if k == 0 {
		// Everything went: fine for a reply with no new text, not when
		// the text had words of somebody's that no rule recognised.
		for i := range n {
			if plain(i) && !marker[i] {
				k = n
				for k > 0 && blank[k-1] {
					k--
				}
				break
			}
		}
	}
	return strings.Join(lines[:k], "\n")
}

// stripTrailingQuote returns the end of the text once the trailing ">"
// block of lines[:k] and the attribution right above it are gone; again,
// while the lines above that are another quoted block, so that what is left
// ends with the writer's words.
func stripTrailingQuote(trimmed []string, blank, quoted []bool, plain func(int) bool, k int, marker []bool) int {
	for {
		end := k
		sawQuote := false
		for end > 0 && (blank[end-1] || quoted[end-1]) {
			sawQuote = sawQuote || quoted[end-1]
			end--
		}
		if !sawQuote {
			return k
		}
		i := end - 1
		if i < 0 || !plain(i) || len(trimmed[i]) > maxAttribution || !looseAttribution.MatchString(trimmed[i]) {
			return end
		}
		marker[i] = true
		k = i
		// A wrapped attribution: its first line goes too.
		if i > 0 && plain(i-1) && attributionStart.MatchString(trimmed[i-1]) && !attributionPattern.MatchString(trimmed[i-1]) {
			if j := trimmed[i-1] + " " + trimmed[i]; len(j) <= maxAttribution && attributionPattern.MatchString(j) && hasDigit(j) {
				marker[i-1] = true
				k = i - 1
			}
		}
	}
}

// attribution returns the number of lines (1 or 2) of the attribution that
// starts at line i, or 0. A digit is required: attributions carry a date,
// prose such as "On the ticket you wrote:" does not.
func attribution(trimmed []string, plain func(int) bool, i, limit int) int {
	l := trimmed[i]
	if !plain(i) || len(l) > maxAttribution || !attributionStart.MatchString(l) {
		return 0
	}
	if attributionPattern.MatchString(l) {
		if hasDigit(l) {
			return 1
		}
		return 0
	}
	if i+1 < limit && plain(i+1) {
		if j := l + " " + trimmed[i+1]; len(j) <= maxAttribution && attributionPattern.MatchString(j) && hasDigit(j) {
			return 2
		}
	}
	return 0
}

// headerBlock reports whether an Outlook header block starts at line i:
// "From:" and, among the next non-blank lines, a date field and a To: or
// Subject: field. It marks the block's lines in marker.
func headerBlock(field []int, plain func(int) bool, i, limit int, marker []bool) bool {
	if i >= limit || !plain(i) || field[i] != fieldFrom {
		return false
	}
	seen := 0
	j := i + 1
	for ; j < limit && j <= i+headerWindow && plain(j); j++ {
		seen |= field[j]
	}
	if seen&fieldDate == 0 || seen&fieldTo == 0 {
		return false
	}
	for k := i; k < j; k++ {
		marker[k] = true
	}
	return true
}

func hasDigit(s string) bool { return strings.ContainsAny(s, "0123456789") }
