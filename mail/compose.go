package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
)

// Outgoing is one mail deskd sends: an acknowledgement, a relay of a staff
// reply, an escalation. Compose turns it into RFC 5322 bytes.
type Outgoing struct {
	From    cases.Address
	To      []cases.Address
	Cc      []cases.Address
	ReplyTo []cases.Address

	Subject string
	// MessageID is deskd's own id (see NewMessageID), normalised (no angle
	// brackets). Required: replies thread back through it.
	MessageID string
	// InReplyTo and References thread the mail (RFC 5322 §3.6.4). Ids are in
	// normalised form; invalid ones (from inbound data) are dropped.
	InReplyTo  string
	References []string

	Date time.Time

	// Text is the plain-text body. HTML is optional; when set the mail is
	// multipart/alternative with the text part first (RFC 2046 §5.1.4: the
	// last part is the preferred one).
	Text, HTML string

	// AutoSubmitted is the Auto-Submitted value, e.g. "auto-replied" for an
	// acknowledgement (RFC 3834 §5); "" omits the header.
	AutoSubmitted string
	// SuppressAutoResponse adds "X-Auto-Response-Suppress: All", which keeps
	// Exchange's out-of-office replies from answering deskd's own mail.
	SuppressAutoResponse bool
	// LoopToken is the value of deskd's X-Deskd-Loop header; when it comes
	// back in an inbound mail deskd knows it is reading its own words.
	LoopToken string
	// Attachments go along in a multipart/mixed (a staff reply's files,
	// relayed to the customer); each needs Data.
	Attachments []cases.Attachment
	// Extra holds rarely needed extra headers. They may not replace the
	// headers Compose writes itself.
	Extra map[string]string
}

// maxReferences bounds the References header. RFC 5322 §3.6.4 builds
// References by appending, so a long thread would grow it without end; we keep
// the first id (the thread's root, which clients use to group) and the most
// recent ones.
const maxReferences = 20

// LoopHeader is the name of deskd's loop marker header.
const LoopHeader = "X-Deskd-Loop"

// isReservedHeader reports whether Compose writes the header k (in
// canonical form) itself; Extra may not set these, or one map entry could add
// a second From or a Bcc.
func isReservedHeader(k string) bool {
	switch k {
	case "Auto-Submitted", "Bcc", "Cc", "Content-Disposition", "Content-Id",
		"Content-Transfer-Encoding", "Content-Type", "Date", "From", "In-Reply-To",
		"Message-Id", "Mime-Version", "References", "Reply-To", "Return-Path",
		"Sender", "Subject", "To", "X-Auto-Response-Suppress", "X-Deskd-Loop":
		return true
	}
	return false
}

// Compose renders o as an RFC 5322 message with CRLF line endings. Bodies are
// UTF-8 in quoted-printable, so the result is 7-bit clean and passes any
// relay; non-ASCII subjects and display names are RFC 2047 encoded-words.
// Compose is deterministic: the same Outgoing gives the same bytes (the
// multipart boundary derives from the Message-ID), which the golden tests rely
// on.
func Compose(o *Outgoing) ([]byte, error) {
	if o == nil {
		return nil, errors.New("compose: nil message")
	}
	if o.Date.IsZero() {
		return nil, errors.New("compose: no date")
	}
	msgID, ok := composeMsgID(o.MessageID)
	if !ok {
		return nil, fmt.Errorf("compose: invalid message-id %q", o.MessageID)
	}
	if len(o.To)+len(o.Cc) == 0 {
		return nil, errors.New("compose: no recipients")
	}

	// Fields in the order they are written; go-message's Header inserts at
	// the top, so they are added in reverse below.
	type field struct{ k, v string }
	var fs []field
	add := func(k, v string) { fs = append(fs, field{k, v}) }

	add("Date", o.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	from, err := formatAddressList([]cases.Address{o.From})
	if err != nil {
		return nil, fmt.Errorf("compose: from: %w", err)
	}
	add("From", from)
	for _, h := range []struct {
		k  string
		as []cases.Address
	}{{"To", o.To}, {"Cc", o.Cc}, {"Reply-To", o.ReplyTo}} {
		if len(h.as) == 0 {
			continue
		}
		v, err := formatAddressList(h.as)
		if err != nil {
			return nil, fmt.Errorf("compose: %s: %w", strings.ToLower(h.k), err)
		}
		add(h.k, v)
	}
	add("Subject", encodeText(SanitizeHeaderText(o.Subject)))
	add("Message-Id", "<"+msgID+">")
	if id, ok := composeMsgID(o.InReplyTo); ok {
		add("In-Reply-To", "<"+id+">")
	}
	if refs := referenceList(o.References, o.InReplyTo); len(refs) > 0 {
		add("References", "<"+strings.Join(refs, "> <")+">")
	}
	if o.AutoSubmitted != "" {
		// RFC 3834 §5: auto-submitted = "no" / "auto-generated" /
		// "auto-replied" / extension, a token.
		v := strings.ToLower(strings.TrimSpace(o.AutoSubmitted))
		if !isMIMEToken(v) {
			return nil, fmt.Errorf("compose: invalid auto-submitted value %q", o.AutoSubmitted)
		}
		add("Auto-Submitted", v)
	}
	if o.SuppressAutoResponse {
		add("X-Auto-Response-Suppress", "All")
	}
	if o.LoopToken != "" {
		add(LoopHeader, encodeText(SanitizeHeaderText(o.LoopToken)))
	}
	extraKeys := make([]string, 0, len(o.Extra))
	for k := range o.Extra {
		extraKeys = append(extraKeys, k)
	}
	sort.Strings(extraKeys) // map order is random; output must be stable
	for _, k := range extraKeys {
		if !isHeaderFieldName(k) {
			return nil, fmt.Errorf("compose: invalid header name %q", k)
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if isReservedHeader(ck) {
			return nil, fmt.Errorf("compose: header %s may not be set through Extra", ck)
		}
		add(ck, encodeText(SanitizeHeaderText(o.Extra[k])))
	}
	add("MIME-Version", "1.0")

	// gomail.CreateInlineWriter would pick a random boundary; setting it
	// ourselves keeps the output reproducible. It starts with "=_", which
	// can never occur in quoted-printable text (where "=" is always followed
	// by two hex digits or a line break), so it cannot collide with a body.
	sum := sha256.Sum256([]byte(msgID))
	boundary := "=_deskd_" + hex.EncodeToString(sum[:12])
	bodyType, bodyParams := "text/plain", map[string]string{"charset": "utf-8"}
	if o.HTML != "" {
		bodyType, bodyParams = "multipart/alternative", map[string]string{"boundary": boundary}
	}
	if len(o.Attachments) > 0 {
		add("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": "=_deskd_mixed_" + hex.EncodeToString(sum[:12])}))
	} else {
		add("Content-Type", mime.FormatMediaType(bodyType, bodyParams))
		if o.HTML == "" {
			add("Content-Transfer-Encoding", "quoted-printable")
		}
	}

	var h gomail.Header
	for i := len(fs) - 1; i >= 0; i-- {
		h.Add(fs[i].k, fs[i].v)
	}

	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	body := w
	if len(o.Attachments) > 0 {
		// RFC 2046 §5.1.3: the readable body first, then the files.
		var ph message.Header
		if o.HTML == "" {
			ph.Set("Content-Transfer-Encoding", "quoted-printable")
		}
		ph.SetContentType(bodyType, bodyParams)
		if body, err = w.CreatePart(ph); err != nil {
			return nil, fmt.Errorf("compose: body part: %w", err)
		}
	}
	if o.HTML == "" {
		if err := writeBody(body, o.Text); err != nil {
			return nil, err
		}
	} else {
		for _, p := range []struct{ typ, body string }{{"text/plain", o.Text}, {"text/html", o.HTML}} {
			var ph message.Header
			// Set inserts at the top: this writes Content-Type first.
			ph.Set("Content-Transfer-Encoding", "quoted-printable")
			ph.SetContentType(p.typ, map[string]string{"charset": "utf-8"})
			pw, err := body.CreatePart(ph)
			if err != nil {
				return nil, fmt.Errorf("compose: %s part: %w", p.typ, err)
			}
			if err := writeBody(pw, p.body); err != nil {
				return nil, err
			}
		}
		if err := body.Close(); err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
	}
	for i, a := range o.Attachments {
		if err := writeAttachment(w, a, i); err != nil {
			return nil, err
		}
	}
	if len(o.Attachments) > 0 {
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// writeAttachment adds one file as a base64 part. The type and name come
// from an inbound mail: a type that does not parse becomes
// application/octet-stream, and the name is sanitised like header text
// (go-message encodes it per RFC 2231 when it is not ASCII).
func writeAttachment(w *message.Writer, a cases.Attachment, i int) error {
	typ, params, err := mime.ParseMediaType(a.ContentType)
	if err != nil || strings.HasPrefix(typ, "multipart/") {
		typ, params = "application/octet-stream", nil
	}
	keep := map[string]string{}
	if cs := params["charset"]; cs != "" && isMIMEToken(cs) {
		keep["charset"] = cs
	}
	name := SanitizeHeaderText(a.Filename)
	if name == "" {
		name = fmt.Sprintf("attachment-%d", i+1)
	}
	var ph message.Header
	ph.Set("Content-Transfer-Encoding", "base64")
	ph.SetContentDisposition("attachment", map[string]string{"filename": name})
	ph.SetContentType(typ, keep)
	pw, err := w.CreatePart(ph)
	if err != nil {
		return fmt.Errorf("compose: attachment %d: %w", i+1, err)
	}
	if _, err := pw.Write(a.Data); err != nil {
		return fmt.Errorf("compose: attachment %d: %w", i+1, err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("compose: attachment %d: %w", i+1, err)
	}
	return nil
}

func writeBody(w *message.Writer, body string) error {
	// The quoted-printable writer turns "\n" and "\r\n" alike into CRLF.
	if _, err := w.Write([]byte(strings.ToValidUTF8(body, "\uFFFD"))); err != nil {
		return fmt.Errorf("compose: body: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("compose: body: %w", err)
	}
	return nil
}

// SanitizeHeaderText makes decoded text (a subject, a display name, usually
// from an inbound mail) safe to put into a header again:
//
//   - invalid UTF-8 becomes U+FFFD;
//   - CR, LF, every other control character (C0, DEL, C1), the Unicode line
//     and paragraph separators and the bidi override/isolate controls become
//     white space, so the text cannot start a new header line nor reorder
//     itself on screen;
//   - runs of white space collapse to one space, and the ends are trimmed;
//   - "=?" becomes "= ?". The input is already decoded, so a literal
//     "=?utf-8?q?a=0D=0ABcc:_x@y?=" in it is text; written back unencoded
//     (it is plain ASCII) a reader would decode it into a CR LF. Breaking the
//     "=?" opener means no encoded-word can survive (RFC 2047 §2).
func SanitizeHeaderText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b lineBuilder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || isLayoutControl(r) {
			b.blank()
			continue
		}
		b.add(r)
	}
	return strings.ReplaceAll(b.String(), "=?", "= ?")
}

func isLayoutControl(r rune) bool {
	switch {
	case r == '\u2028', r == '\u2029': // line and paragraph separator
		return true
	case r >= '\u202A' && r <= '\u202E': // bidi embedding and override
		return true
	case r >= '\u2066' && r <= '\u2069': // bidi isolates
		return true
	case r == '\u200E', r == '\u200F': // LRM, RLM
		return true
	}
	return false
}

// encodeText encodes unstructured header text (RFC 2047 §5(1)). Words that
// are printable ASCII stay as they are, so "[Case #12]" remains readable to
// any client and filter; runs of other words become "Q" encoded-words. Go's
// mime.QEncoding writes words of up to 75 characters, which with "Subject: "
// in front breaks RFC 2047 §2's 76-character line limit, so words are kept to
// maxEncodedWord here. Callers sanitise first: no line breaks, single spaces.
func encodeText(s string) string {
	words := strings.Split(s, " ")
	var out []string
	for i := 0; i < len(words); {
		if !needsEncoding(words[i]) {
			out = append(out, words[i])
			i++
			continue
		}
		// The white space between two encoded-words is dropped by decoders
		// (RFC 2047 §6.2), so a run of words goes in one encoded text with
		// its spaces inside.
		j := i + 1
		for j < len(words) && needsEncoding(words[j]) {
			j++
		}
		out = append(out, qEncodeWords(strings.Join(words[i:j], " "))...)
		i = j
	}
	return strings.Join(out, " ")
}

// maxEncodedWord bounds one encoded-word so that a header name of up to 14
// characters ("X-Deskd-Loop: ") plus one word fits in 76 characters.
const maxEncodedWord = 62

func needsEncoding(w string) bool {
	if strings.Contains(w, "=?") {
		return true // would be read as an encoded-word
	}
	if len(w) > maxEncodedWord {
		// Too long to fit a folded line: folding would add a space on
		// unfolding, while encoded-words split and join back unchanged.
		return true
	}
	for i := 0; i < len(w); i++ {
		if w[i] < ' ' || w[i] > '~' {
			return true
		}
	}
	return false
}

// qEncodeWords encodes s as "Q" encoded-words (RFC 2047 §4.2) of at most
// maxEncodedWord characters, splitting only between characters (§5: each
// encoded-word holds whole characters). Only letters, digits and "!*+-/"
// stay literal: that set is safe in any header context (§5(3)).
func qEncodeWords(s string) []string {
	const prefix, suffix = "=?utf-8?q?", "?="
	limit := maxEncodedWord - len(prefix) - len(suffix)
	var words []string
	var cur strings.Builder
	for _, r := range s {
		var enc string
		switch {
		case r == ' ':
			enc = "_"
		case r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!*+-/", r)):
			enc = string(r)
		default:
			var b [utf8.UTFMax]byte
			n := utf8.EncodeRune(b[:], r)
			for _, c := range b[:n] {
				enc += fmt.Sprintf("=%02X", c)
			}
		}
		if cur.Len()+len(enc) > limit && cur.Len() > 0 {
			words = append(words, prefix+cur.String()+suffix)
			cur.Reset()
		}
		cur.WriteString(enc)
	}
	if cur.Len() > 0 {
		words = append(words, prefix+cur.String()+suffix)
	}
	return words
}

// formatAddressList formats addresses for From/To/Cc/Reply-To. Display names
// are sanitised and RFC 2047 encoded when not ASCII; an address that is not a
// plain addr-spec is refused, because net/mail writes the domain verbatim and
// "x@y>, <evil@z" would add a recipient.
func formatAddressList(as []cases.Address) (string, error) {
	out := make([]*gomail.Address, 0, len(as))
	for _, a := range as {
		email := strings.TrimSpace(a.Email)
		if !validAddrSpec(email) {
			return "", fmt.Errorf("invalid address %q", a.Email)
		}
		out = append(out, &gomail.Address{Name: SanitizeHeaderText(a.Name), Address: email})
	}
	var h gomail.Header
	h.SetAddressList("X", out)
	return h.Get("X"), nil
}

// CanAddress reports whether Compose can write addr as a recipient: an
// ASCII addr-spec. An internationalised address (RFC 6531) cannot go
// through a relay deskd cannot know to speak SMTPUTF8.
func CanAddress(addr string) bool { return validAddrSpec(strings.TrimSpace(addr)) }

// validAddrSpec accepts an ASCII addr-spec (RFC 5322 §3.4.1), nothing more.
func validAddrSpec(s string) bool {
	if s == "" || len(s) > 254 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '<' || s[i] == '>' || s[i] == ',' {
			return false
		}
	}
	a, err := netmail.ParseAddress("<" + s + ">")
	return err == nil && a.Address == s && a.Name == ""
}

// composeMsgID trims white space and angle brackets and checks that what is
// left is a plausible msg-id (RFC 5322 §3.6.4): id-left "@" id-right, printable
// ASCII, no white space, brackets or other syntax that would split the header.
func composeMsgID(id string) (string, bool) {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	if id == "" || len(id) > 250 {
		return "", false
	}
	left, right, ok := strings.Cut(id, "@")
	if !ok || left == "" || right == "" || strings.Contains(right, "@") {
		return "", false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' || c == ',' || c == '(' || c == ')' {
			return "", false
		}
	}
	return id, true
}

// referenceList returns the References ids: the valid ones of refs, the
// parent (inReplyTo) last when refs lacks it (RFC 5322 §3.6.4), duplicates
// removed, and at most maxReferences: the root plus the most recent.
func referenceList(refs []string, inReplyTo string) []string {
	var out []string
	seen := map[string]bool{}
	appendID := func(raw string) {
		if id, ok := composeMsgID(raw); ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, r := range refs {
		appendID(r)
	}
	if parent, ok := composeMsgID(inReplyTo); ok {
		if seen[parent] {
			// Keep the parent last, as a reply to it would write it.
			out = slices.DeleteFunc(out, func(s string) bool { return s == parent })
			delete(seen, parent)
		}
		appendID(parent)
	}
	if len(out) > maxReferences {
		out = append(out[:1], out[len(out)-(maxReferences-1):]...)
	}
	return out
}

// isMIMEToken reports whether s is a MIME token (RFC 2045 §5.1), the syntax of an
// Auto-Submitted keyword.
func isMIMEToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// isHeaderFieldName reports whether s is a header field name (RFC 5322 §3.6.8):
// printable ASCII except colon.
func isHeaderFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' || s[i] == ':' {
			return false
		}
	}
	return true
}
