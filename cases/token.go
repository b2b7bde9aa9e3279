package cases

import (
	"regexp"
	"strconv"
	"strings"
)

// tokenPattern matches "[<prefix> #<n>]" with any case and spacing, e.g.
// "[Case #12]", "[case#12]", "[ CASE # 12 ]". The prefix is quoted by
// TokenPattern so an operator's prefix cannot inject regexp syntax.
func tokenPattern(prefix string) *regexp.Regexp {
	// ws is what strings.Fields (and so Strip) treats as white space:
	// Unicode's, not just ASCII's. Matching less would let Strip's
	// collapsing turn a non-token such as "[Case\u00a0#1]" into a token.
	// White space inside the prefix matches any run of it, as mail
	// clients refold subjects.
	const ws = `[\s\v\x{85}\p{Z}]`
	words := strings.Fields(prefix)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return regexp.MustCompile(`(?i)\[` + ws + `*` + strings.Join(words, ws+`+`) + ws + `*#` + ws + `*(\d{1,20})` + ws + `*\]`)
}

// Tokens finds deskd's subject tokens.
type Tokens struct {
	prefix string
	re     *regexp.Regexp
}

// NewTokens returns a token finder for the configured prefix ("Case" gives
// "[Case #12]").
func NewTokens(prefix string) *Tokens {
	// config validates the prefix; this keeps a bad one from ever making
	// the pattern fail to compile.
	prefix = strings.Join(strings.Fields(strings.ToValidUTF8(prefix, "")), " ")
	return &Tokens{prefix: prefix, re: tokenPattern(prefix)}
}

// Format returns the token for case id, e.g. "[Case #12]".
func (t *Tokens) Format(id uint64) string {
	return "[" + t.prefix + " #" + strconv.FormatUint(id, 10) + "]"
}

// Find returns the case number of the first token in subject. A subject may
// carry several after a customer forwarded one case into another; the first
// is the one deskd put there last (it prefixes), so it wins.
func (t *Tokens) Find(subject string) (uint64, bool) {
	m := t.re.FindStringSubmatch(subject)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// Strip removes every token from subject and tidies the white space left
// behind, so "Re: [Case #3] Printer" becomes "Re: Printer".
func (t *Tokens) Strip(subject string) string {
	// Repeat: removing "[Case #1]" from "[Case #[Case #1]2]" leaves a
	// token. Each pass shortens the string, so this ends.
	for t.re.MatchString(subject) {
		subject = t.re.ReplaceAllString(subject, " ")
	}
	return strings.Join(strings.Fields(subject), " ")
}

// replyPrefix matches the reply and forward markers mail clients put in
// front of a subject, in the languages deskd's customers use.
var replyPrefix = regexp.MustCompile(`(?i)^\s*((re|aw|antw|antwoord|sv|vs|fw|fwd|wg|doorst|tr)\s*(\[\d+\])?\s*:\s*)+`)

// BaseSubject returns subject without reply/forward prefixes and tokens: the
// case's own title.
func (t *Tokens) BaseSubject(subject string) string {
	s := t.Strip(subject)
	for {
		n := replyPrefix.ReplaceAllString(s, "")
		n = strings.TrimSpace(t.Strip(n))
		if n == s {
			return s
		}
		s = n
	}
}
