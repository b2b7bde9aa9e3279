package mail

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
)

// DefaultMaxBytes is the max_message_bytes used when ParseOptions.MaxBytes is 0.
const DefaultMaxBytes = 25 << 20

const (
	// maxTextBytes caps Inbound.Text: staff read it, the engine scans it for
	// commands; a megabyte of text is more than any person writes.
	maxTextBytes = 1 << 20
	// maxHeaderBlock bounds the header block (go-message's own default):
	// a header that never ends is an attack, not a mail.
	maxHeaderBlock = 1 << 20
	// maxDepth and maxParts bound the MIME tree (RFC 2046 sets no limit;
	// a nesting bomb must not cost more than a quarantine).
	maxDepth = 30
	maxParts = 2000
	// maxProblems keeps the Problems list readable.
	maxProblems = 50
)

// ParseOptions are the limits of Parse.
type ParseOptions struct {
	// MaxBytes is max_message_bytes; 0 means DefaultMaxBytes (25 MiB). A
	// message larger than this (TooLarge) has only its header parsed:
	// Problems gets TooLarge's reason, Text stays empty and Parse returns
	// a *ParseError wrapping ErrTooLarge so the caller quarantines it.
	MaxBytes int
	// Size is the message's real size when raw holds only part of it
	// (the IMAP source fetched only the header of a message over
	// MaxBytes); 0 means len(raw).
	Size int64
}

// ErrTooLarge is wrapped by the *ParseError of a message over MaxBytes.
var ErrTooLarge = errors.New("message larger than max_message_bytes")

// TooLarge is the one check of max_message_bytes: a *ParseError wrapping
// ErrTooLarge, with the one quarantine reason, when a message of size
// bytes exceeds max (0 = DefaultMaxBytes); nil when it does not. The IMAP
// source asks it whether to fetch a message whole, Parse whether to
// parse more than its header.
func TooLarge(size, max int64) error {
	if max <= 0 {
		max = DefaultMaxBytes
	}
	if size <= max {
		return nil
	}
	return &ParseError{Reason: fmt.Sprintf("too large: %d bytes (max_message_bytes %d)", size, max), Err: ErrTooLarge}
}

// ParseError says why a message could not be made sense of. Parse returns it
// together with a usable *cases.Inbound, so the caller can quarantine the
// mail with Reason.
type ParseError struct {
	Reason string // short, stable, for people: "no header fields", "too large: 31457280 bytes"
	Err    error  // the underlying error, if any
}

func (e *ParseError) Error() string {
	if e.Err != nil {
		return "parse mail: " + e.Reason + ": " + e.Err.Error()
	}
	return "parse mail: " + e.Reason
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parse turns raw RFC 5322 bytes into a cases.Inbound. receivedAt is the IMAP
// INTERNALDATE, the start of the SLA clock (R11b).
//
// Parse never panics. When it cannot make sense of a message (no header at
// all, empty input, larger than MaxBytes) it returns a non-nil *Inbound with
// DedupeKey, Raw, Size, ReceivedAt and whatever header fields could be read,
// and a *ParseError. Minor problems (a part in an unknown charset, a broken
// attachment, a missing closing boundary) are listed in Inbound.Problems and
// the rest of the message is still parsed: a customer whose mailer mislabels
// its charset still gets a case.
func Parse(raw []byte, receivedAt time.Time, opts ParseOptions) (in *cases.Inbound, err error) {
	in = &cases.Inbound{Raw: raw, Size: len(raw), ReceivedAt: receivedAt}
	defer func() {
		if r := recover(); r != nil {
			// A bug in a library or here must cost one quarantine, not the
			// daemon; the fields set so far are already sanitised.
			in.Problems = append(in.Problems, "parser failure")
			err = &ParseError{Reason: "parser failure", Err: fmt.Errorf("panic: %v", r)}
		}
		if in.DedupeKey == "" {
			in.DedupeKey = DedupeKey("", raw)
		}
	}()
	p := &parser{in: in}
	return in, p.parse(raw, opts)
}

// parser carries the state of one Parse call.
type parser struct {
	in      *cases.Inbound
	h       gomail.Header
	hint    string // charset of the top-level Content-Type, for raw 8-bit header text
	parts   int
	hasText bool // a body text part was taken; later named text parts are attachments
	// inner > 0 while walking an attached message for its text;
	// forwarded is that text.
	inner     int
	forwarded string
	rep       reportInfo
}

func (p *parser) problem(format string, args ...any) {
	if len(p.in.Problems) >= maxProblems {
		return
	}
	s := cleanLine(fmt.Sprintf(format, args...))
	if len(p.in.Problems) == maxProblems-1 {
		s = "more problems not listed"
	}
	p.in.Problems = append(p.in.Problems, s)
}

func (p *parser) parse(raw []byte, opts ParseOptions) error {
	size := opts.Size
	if size <= 0 {
		size = int64(len(raw))
	}
	tooLarge := TooLarge(size, int64(opts.MaxBytes))
	if len(bytes.TrimSpace(raw)) == 0 && tooLarge == nil {
		p.problem("empty message")
		return &ParseError{Reason: "empty message"}
	}
	src := raw
	if tooLarge != nil {
		// Only the header is wanted; do not copy megabytes to find it.
		src = raw[:min(len(raw), maxHeaderBlock+1024)]
	}
	hdr, body, nfields, probs := readHeaderBlock(normalizeEOL(src))
	for _, pr := range probs {
		p.problem("%s", pr)
	}
	p.h = gomail.Header{Header: message.Header{Header: hdr}}
	topType, ctParams := mediaType(p.h.Header, "")
	p.hint = ctParams["charset"]
	// Known before the walk, so a too-large report is still recognised.
	p.rep.topType, p.rep.reportType = topType, strings.ToLower(ctParams["report-type"])
	p.headerFields()

	var perr *ParseError
	switch {
	case tooLarge != nil:
		perr = tooLarge.(*ParseError)
		p.problem("%s", perr.Reason)
		p.in.Size = int(size)
	case nfields == 0:
		// Nothing says this is a mail (RFC 5322 §3.6 requires at least
		// Date and From). Still read the body so a person looking at the
		// quarantine sees what it was.
		p.problem("no header fields")
		perr = &ParseError{Reason: "no header fields"}
	}
	if tooLarge == nil {
		bt := p.walk(p.h.Header, body, 0, "", "1")
		p.in.Text = p.finishText(bt)
	}
	p.in.Auto = detectAuto(p.h, autoFacts{
		from:           p.in.From,
		subject:        p.in.Subject,
		nullReturnPath: p.in.HasReturnPath && p.in.ReturnPath == "",
		report:         p.rep,
		text:           p.in.Text,
	})
	if perr != nil {
		return perr
	}
	return nil
}

// headerFields fills the Inbound fields that come from the top-level header.
func (p *parser) headerFields() {
	in, h := p.in, p.h
	in.MessageID = NormalizeMessageID(h.Get("Message-Id"))
	in.DedupeKey = DedupeKey(in.MessageID, in.Raw)
	in.InReplyTo = ParseMessageIDList(strings.Join(h.Values("In-Reply-To"), " "))
	in.References = ParseMessageIDList(strings.Join(h.Values("References"), " "))

	from := p.addresses("From")
	if len(from) > 0 {
		in.From = from[0]
	} else if h.Get("From") != "" {
		p.problem("from: no address")
	}
	if s := p.addresses("Sender"); len(s) > 0 {
		in.Sender = &s[0]
	}
	in.ReplyTo = p.addresses("Reply-To")
	in.To = p.addresses("To")
	in.Cc = p.addresses("Cc")

	// The topmost Return-Path is the one our own server wrote at final
	// delivery (RFC 5321 §4.4); "<>" is the null reverse-path of a
	// notification (RFC 5321 §4.5.5; RFC 3834 §2: never answer it).
	if rps := h.Values("Return-Path"); len(rps) > 0 {
		in.HasReturnPath = true
		in.ReturnPath = parseReturnPath(rps[0])
	}

	in.Subject = cleanLine(decodeWords(fixRaw(h.Get("Subject"), p.hint)))
	if v := h.Get("Date"); v != "" {
		if t, ok := parseDate(v); ok {
			in.Date = t
		} else {
			p.problem("unparsable date")
		}
	}
	in.LoopHeader = cleanLine(fixUTF8(h.Get("X-Deskd-Loop")))
	for _, v := range h.Values("Authentication-Results") {
		in.AuthResults = append(in.AuthResults, cleanLine(fixUTF8(v)))
	}
}

// addresses parses every field named key (some mailers write To twice).
func (p *parser) addresses(key string) []cases.Address {
	var out []cases.Address
	for _, v := range p.h.Values(key) {
		as, ok := parseAddressList(fixRaw(v, p.hint))
		if !ok {
			p.problem("%s: unparsable address list", strings.ToLower(key))
		}
		out = append(out, as...)
	}
	return out
}
