package mail

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// maxMsgIDLen bounds a usable Message-ID. RFC 5322 §2.1.1 limits a line to
// 998 characters, so a longer id cannot have been sent unfolded by anyone
// honest; it is treated as unusable and the mail falls back to a content key.
const maxMsgIDLen = 998

// NormalizeMessageID returns the msg-id of a Message-ID field value (RFC 5322
// §3.6.4) without angle brackets and surrounding white space. Comments,
// folding white space inside the brackets (obs-id-left/right, RFC 5322 §4.5.4)
// and junk around the id are dropped. It returns "" when nothing usable is
// left.
func NormalizeMessageID(s string) string {
	ids := scanMsgIDs(s, true, 1)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// ParseMessageIDList returns the msg-ids of a References or In-Reply-To field
// value (RFC 5322 §3.6.4) in order, normalised and without duplicates. It is
// tolerant of what real mailers write: ids without brackets, commas between
// ids, folded lines, and old-style In-Reply-To text ("Your message of ...").
func ParseMessageIDList(s string) []string {
	return scanMsgIDs(s, false, 0)
}

// DedupeKey is the key that recognises a mail across redeliveries: the
// normalised Message-ID, or a hash of the raw bytes when the mail has no
// usable Message-ID (RFC 5322 §3.6.4 makes it optional).
func DedupeKey(messageID string, raw []byte) string {
	if id := NormalizeMessageID(messageID); id != "" {
		return "mid:" + id
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// scanMsgIDs finds message ids in a header value. Bracketed ids win: bare
// tokens (no angle brackets) are used only when the value has no bracketed id
// at all, because bare words next to bracketed ids are nearly always prose
// ("<id>'s message of Tuesday"). In a list, a bare token must contain "@" to
// count; for a single Message-ID (single=true) one bare token is enough.
// limit > 0 stops after that many ids.
func scanMsgIDs(s string, single bool, limit int) []string {
	var bracketed, bare []string
	var word strings.Builder
	flushWord := func() {
		if word.Len() > 0 {
			bare = append(bare, word.String())
			word.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '(':
			// RFC 5322 §3.2.2 comment, may nest; \ quotes the next char.
			flushWord()
			i = skipComment(s, i)
		case c == '"':
			flushWord()
			i = skipQuoted(s, i)
		case c == '<':
			flushWord()
			// Scan only to the next bracket of either kind, so a value
			// of a million "<" stays linear.
			end := strings.IndexAny(s[i+1:], "<>")
			var inner string
			if end < 0 || s[i+1+end] == '<' {
				// Unclosed bracket ("<a@x <b@x>"): take up to the next
				// separator.
				rest := s[i+1:]
				if end >= 0 {
					rest = rest[:end]
				}
				if j := strings.IndexAny(rest, " \t\r\n,;"); j >= 0 {
					rest = rest[:j]
				}
				inner = rest
				i += 1 + len(rest)
			} else {
				inner = s[i+1 : i+1+end]
				i += end + 2
			}
			if id := cleanMsgID(inner); id != "" {
				bracketed = append(bracketed, id)
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ';' || c == '>':
			flushWord()
			i++
		default:
			word.WriteByte(c)
			i++
		}
	}
	flushWord()

	ids := bracketed
	if len(ids) == 0 {
		for _, w := range bare {
			if !single && !strings.Contains(w, "@") {
				continue
			}
			if single && len(bare) != 1 && !strings.Contains(w, "@") {
				continue
			}
			if id := cleanMsgID(w); id != "" {
				ids = append(ids, id)
			}
		}
	}
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// cleanMsgID removes comments, quotes and white space from the inside of a
// msg-id (obsolete syntax allowed CFWS around the dots, RFC 5322 §4.5.4) and
// rejects what cannot be an id.
func cleanMsgID(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '(':
			i = skipComment(s, i)
		case c == '"' || c == '<' || c == '>' || c == ',' || c == ';' || c <= ' ' || c == 0x7f:
			// Not msg-id characters (RFC 5322 §3.6.4), and separators of
			// the lenient list syntax: dropping them keeps a normalised
			// id a fixed point of NormalizeMessageID.
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	id := b.String()
	if !utf8.ValidString(id) {
		// RFC 6532 allows UTF-8; anything else is mangled and is kept only
		// in a stable, valid form.
		id = fixUTF8(id)
	}
	id = strings.Trim(id, ".")
	if id == "" || len(id) > maxMsgIDLen || id == "@" {
		return ""
	}
	return id
}

// skipComment returns the index just past the comment starting at s[i]=='('.
func skipComment(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// skipQuoted returns the index just past the quoted string at s[i]=='"'.
func skipQuoted(s string, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(s)
}
