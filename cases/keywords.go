package cases

// Subject keywords let staff steer a case by mail without a web screen:
// "[hoog][bug]" in the subject of a staff mail sets the priority (R7) and
// hands the case to second line (R5). The parser here only says what the
// subject asks for; whether the writer may ask it (staff only, and only when
// authenticated, see StaffAuthenticated) is the engine's decision.
//
// What counts as a keyword, and why:
//   - Only text in square brackets. "urgent" in running text is a word, not a
//     command, and customers' subjects are full of such words.
//   - Only innermost brackets that are not inside another bracket pair:
//     "[Case [hoog]#12]" holds no keyword. This keeps StripKeywords from
//     ever joining the text around a removed keyword into a new bracket
//     (and so into a new case token or a new keyword).
//   - One bracket may hold several keywords ("[hoog, bug]", "[hoog bug]"),
//     separated by commas, semicolons or white space, but only when every
//     word in it is a keyword: "[hoog risico]" is somebody's label, not a
//     command, and is left alone entirely.
//   - The on-behalf keyword (R6) stands alone in its bracket: "[voor
//     a@b.nl]", "[for: <a@b.nl>]". "[voor a@b.nl, hoog]" is not recognised.
//   - Unknown brackets ("[EXTERNAL]", "[Covide #12]") and deskd's own case
//     token are never keywords: whatever the configured prefix, the token
//     ends in " #<n>", which is neither a keyword word nor part of an
//     address (an address holds no white space).

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Commands are the subject keywords of one mail (see the README section "For support staff").
type Commands struct {
	Priority   Priority // "" = none
	Status     Status   // "" = none; StatusOpen for [open]/[reopen]
	Kind       Kind     // "" = none
	SecondLine bool     // [bug]: hand to second line (R5)
	Note       bool     // [note]/[intern]: internal note, never relayed
	// ForCustomer is the lower-cased address of [voor x@y] / [for x@y] (R6), "" = none.
	ForCustomer string
	// Keywords lists the recognised keywords in subject order, lower-cased and without brackets
	// (e.g. "hoog", "bug", "voor klant@example.nl"), for confirmation mails and events.
	// A keyword written twice is listed once.
	Keywords []string
	// Conflicts describes keywords that contradict each other (e.g. "[urgent] and [laag] both set the priority").
	// A dimension with a conflict is left unset ("" / false): deskd does not guess.
	Conflicts []string
}

// Empty reports whether the subject held no keyword at all.
func (c Commands) Empty() bool { return len(c.Keywords) == 0 }

// kwDim is the dimension a keyword sets. SecondLine and Note are flags that a
// second keyword can only repeat, so they never conflict.
type kwDim int

const (
	dimPriority kwDim = iota
	dimStatus
	dimKind
	dimCustomer
	dimSecondLine
	dimNote
	numDims
)

// kwDimNames name the dimensions in conflict messages.
var kwDimNames = [numDims]string{"priority", "status", "kind", "customer", "second line", "note"}

// subjectKeyword is one recognised keyword: its word as listed in
// Commands.Keywords and what it sets.
type subjectKeyword struct {
	word  string
	dim   kwDim
	value string
}

// lookupKeyword returns what a single, lower-cased word sets. A switch, not
// a map, so the vocabulary is plainly immutable.
func lookupKeyword(w string) (kwDim, string, bool) {
	switch w {
	case "urgent", "spoed":
		return dimPriority, string(PriorityUrgent), true
	case "hoog", "high":
		return dimPriority, string(PriorityHigh), true
	case "medium", "normaal", "normal":
		return dimPriority, string(PriorityMedium), true
	case "laag", "low":
		return dimPriority, string(PriorityLow), true
	case "pending", "wacht", "wachten": // waiting on the customer: pauses the clock (R11c)
		return dimStatus, string(StatusPending), true
	case "closed", "close", "resolved", "opgelost", "gesloten":
		return dimStatus, string(StatusClosed), true
	case "open", "reopen", "heropen":
		return dimStatus, string(StatusOpen), true
	case "incident":
		return dimKind, string(KindIncident), true
	case "vraag", "question": // R10
		return dimKind, string(KindQuestion), true
	case "change", "rfc", "wijziging": // R14
		return dimKind, string(KindChange), true
	case "bug": // a fault of the system: second line (R5)
		return dimSecondLine, "true", true
	case "note", "notitie", "intern", "internal":
		return dimNote, "true", true
	}
	return 0, "", false
}

// kwSpace is what strings.Fields treats as white space, as in tokenPattern: a
// subject folded or pasted with a no-break space must read the same.
const kwSpace = `[\s\v\x{85}\p{Z}]`

// onBehalfPattern matches the whole (trimmed) content of an on-behalf
// bracket (R6): a verb, a space or a colon, and an address, bare or in
// angle brackets. The address is checked by validAddrSpec.
var onBehalfPattern = regexp.MustCompile(`(?i)^(voor|for|namens|on` + kwSpace + `+behalf` + kwSpace + `+of)(?:` + kwSpace + `*:` + kwSpace + `*|` + kwSpace + `+)(?:<` + kwSpace + `*([^<>]*?)` + kwSpace + `*>|([^<>]*))$`)

// isUnicodeSpace is white space as strings.Fields and the kwSpace class see it.
func isUnicodeSpace(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Z, r) }

// lowerASCII lower-cases A-Z only. The vocabulary is ASCII; full Unicode
// lower-casing would let look-alikes such as the Kelvin sign (U+212A, which
// lower-cases to "k") spell a keyword nobody typed.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// bracketKeywords returns the keywords in the content of one bracket pair,
// or nil when the bracket is not a keyword bracket.
func bracketKeywords(content string) []subjectKeyword {
	content = strings.TrimFunc(content, isUnicodeSpace)
	if content == "" {
		return nil
	}
	if m := onBehalfPattern.FindStringSubmatch(content); m != nil {
		verb := lowerASCII(strings.Join(strings.FieldsFunc(m[1], isUnicodeSpace), " "))
		switch verb {
		case "voor", "for", "namens", "on behalf of":
		default:
			return nil // (?i) folds ſ to s and K to k; we do not
		}
		addr := m[2] + m[3] // one of them is empty
		if !validAddrSpec(addr) {
			return nil
		}
		addr = strings.ToLower(addr) // as the parser lower-cases Address.Email
		return []subjectKeyword{{word: verb + " " + addr, dim: dimCustomer, value: addr}}
	}
	words := strings.FieldsFunc(content, func(r rune) bool { return r == ',' || r == ';' || isUnicodeSpace(r) })
	if len(words) == 0 {
		return nil
	}
	kws := make([]subjectKeyword, 0, len(words))
	for _, w := range words {
		w = lowerASCII(w)
		dim, value, ok := lookupKeyword(w)
		if !ok {
			return nil // one unknown word: somebody's label, not a command
		}
		kws = append(kws, subjectKeyword{word: w, dim: dim, value: value})
	}
	return kws
}

// validAddrSpec reports whether s looks like an RFC 5322 addr-spec that a
// person would type: dot-atom local part, "@", a domain of letters, digits
// and hyphens (a single label is fine). Quoted local parts and domain
// literals are refused: they are never what staff mean.
func validAddrSpec(s string) bool {
	if !utf8.ValidString(s) || strings.Count(s, "@") != 1 {
		return false
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || len(local) > 64 || domain == "" || len(domain) > 255 {
		return false
	}
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return false // leading, trailing or double dot
		}
		for _, r := range atom {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r) {
				return false
			}
		}
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' {
				return false
			}
		}
	}
	return true
}

// keywordBracket is one recognised bracket pair: subject[start:end] is
// "[...]" including the brackets.
type keywordBracket struct {
	start, end int
	kws        []subjectKeyword
}

// keywordBrackets finds the keyword brackets of subject in one linear scan.
// A candidate is an innermost pair ("[" then "]" with no bracket between);
// it counts only when no matched pair encloses it. Brackets are ASCII, so a
// byte scan is safe on any UTF-8 (or invalid) input.
func keywordBrackets(subject string) []keywordBracket {
	var (
		open     []int // positions of '[' not yet matched
		pending  []keywordBracket
		depths   []int // len(open) below each pending candidate
		lastOpen = false
	)
	for i := 0; i < len(subject); i++ {
		switch subject[i] {
		case '[':
			open = append(open, i)
			lastOpen = true
		case ']':
			if len(open) == 0 {
				lastOpen = false
				continue // an unmatched ']' encloses nothing
			}
			o := open[len(open)-1]
			open = open[:len(open)-1]
			// The pair just closed encloses every pending candidate
			// that had it (or one above it) on the stack.
			for len(pending) > 0 && depths[len(depths)-1] > len(open) {
				pending, depths = pending[:len(pending)-1], depths[:len(depths)-1]
			}
			if lastOpen {
				if kws := bracketKeywords(subject[o+1 : i]); kws != nil {
					pending = append(pending, keywordBracket{start: o, end: i + 1, kws: kws})
					depths = append(depths, len(open))
				}
			}
			lastOpen = false
		}
	}
	// Candidates still pending sit only under '[' that never closed.
	return pending
}

// ParseKeywords reads the staff keywords in subject. It never fails: words
// it does not know are left for the subject, and contradicting keywords
// are reported in Conflicts and leave their dimension unset.
func ParseKeywords(subject string) Commands {
	var (
		c      Commands
		seen   = map[string]bool{}
		values [numDims][]string // distinct values per dimension, in order
		words  [numDims][]string // distinct words per dimension, in order
	)
	for _, b := range keywordBrackets(subject) {
		for _, k := range b.kws {
			if !seen[k.word] {
				seen[k.word] = true
				c.Keywords = append(c.Keywords, k.word)
				words[k.dim] = append(words[k.dim], k.word)
			}
			if !kwHas(values[k.dim], k.value) {
				values[k.dim] = append(values[k.dim], k.value)
			}
		}
	}
	for d := kwDim(0); d < numDims; d++ {
		switch {
		case len(values[d]) == 0:
			continue
		case len(values[d]) > 1:
			c.Conflicts = append(c.Conflicts, kwConflict(words[d], kwDimNames[d]))
			continue
		}
		v := values[d][0]
		switch d {
		case dimPriority:
			c.Priority = Priority(v)
		case dimStatus:
			c.Status = Status(v)
		case dimKind:
			c.Kind = Kind(v)
		case dimCustomer:
			c.ForCustomer = v
		case dimSecondLine:
			c.SecondLine = true
		case dimNote:
			c.Note = true
		}
	}
	return c
}

func kwHas(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// conflict words a contradiction for people: "[urgent] and [laag] both set
// the priority", "[hoog], [high] and [laag] all set the priority".
func kwConflict(words []string, dim string) string {
	b := make([]string, len(words))
	for i, w := range words {
		b[i] = "[" + w + "]"
	}
	if len(b) == 2 {
		return b[0] + " and " + b[1] + " both set the " + dim
	}
	return strings.Join(b[:len(b)-1], ", ") + " and " + b[len(b)-1] + " all set the " + dim
}

// StripKeywords removes the brackets ParseKeywords recognised (conflicting
// ones too) and tidies the white space left behind, as Tokens.Strip does.
// Unknown brackets, the case token and reply prefixes stay:
// "RE: [Case #12] [HOOG][bug] printer" becomes "RE: [Case #12] printer".
func StripKeywords(subject string) string {
	bs := keywordBrackets(subject)
	if len(bs) == 0 {
		return strings.Join(strings.Fields(subject), " ")
	}
	var b strings.Builder
	b.Grow(len(subject))
	last := 0
	for _, k := range bs {
		b.WriteString(subject[last:k.start])
		b.WriteByte(' ')
		last = k.end
	}
	b.WriteString(subject[last:])
	return strings.Join(strings.Fields(b.String()), " ")
}
