package mail

import (
	"mime"
	netmail "net/mail"
	"regexp"
	"strconv"
	"strings"

	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
)

// addrSpecRE scrapes addr-specs out of a field no parser accepts.
var addrSpecRE = regexp.MustCompile(`[\p{L}\p{N}!#$%&'*+/=?^_` + "`" + `{|}~.-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*`)

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
		if !strings.Contains(part, "@") {
			// No addr-spec to scrape: skip the regular expression, whose
			// constant cost on a megabyte of unclosed quotes is most of a
			// parse (TestParsePathological).
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
		name := blankEmptyAngles(v)
		if name = strings.Trim(cleanLine(decodeWords(name)), `"' `); name != "" {
			out = append(out, cases.Address{Name: name})
		}
	}
	return out, false
}

// blankEmptyAngles replaces each empty address "<>" (From: MAILER-DAEMON
// <>), white space allowed inside, by a space. One pass: a regular
// expression cost most of a parse of a megabyte of "<" (TestParsePathological).
func blankEmptyAngles(v string) string {
	if !strings.Contains(v, ">") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); {
		if v[i] == '<' {
			j := i + 1
			for j < len(v) && (v[j] == ' ' || v[j] == '\t' || v[j] == '\r' || v[j] == '\n' || v[j] == '\f') {
				j++
			}
			if j < len(v) && v[j] == '>' {
				b.WriteByte(' ')
				i = j + 1
				continue
			}
		}
		b.WriteByte(v[i])
		i++
	}
	return b.String()
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
