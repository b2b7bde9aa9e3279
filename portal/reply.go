package portal

import (
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/store"
)

// Replies and the wish to close, from a signed-in customer (R3).
//
// A reply typed into the portal is a mail like any other: the portal
// builds a raw RFC 5322 message from the signed-in address to the support
// address, threaded into the case (In-Reply-To and References of the
// case's conversation, deskd's signed Message-IDs, so the engine finds the
// case as it finds a reply from a mail client), with the attachments in a
// multipart/mixed, and hands it to the daemon (Mailer.DeliverReply, which
// is Daemon.Deliver): the same decision and the same transaction as a
// mail from IMAP. It resumes a pending case (R11c), reopens a closed one
// within reopen_window (after that it opens a linked case), notifies
// staff, and its raw bytes are stored, so export and mbox hold it.
//
// Who may reply: the holder of a session, for a case the session's
// address may see (checked before the body is read). A case link is
// read-only: it lives long and is forwarded with the mail it came in; to
// write as an address one proves one reads its mail now (a sign-in link).
//
// The form carries a nonce; the reply's Message-ID derives from it, so
// the same form sent twice (a double click, a reload) is one message (the
// ingest's dedupe), never two.

// Delivery is what the daemon did with a reply: the case it landed on (a
// linked case when a closed one was too old to reopen) and the ingest's
// decision ("reply", "reopened", "linked_case", "new_case", "duplicate",
// "quarantine" with Reason).
type Delivery struct {
	CaseID   uint64
	Decision string
	Reason   string
}

const (
	maxReplyFiles    = 20
	defaultMaxReply  = 25 << 20
	formOverhead     = 64 << 10 // multipart framing and the small fields
	replyMemoryBytes = 1 << 20  // larger files wait on disk while parsed
)

func (s *Server) maxReply() int {
	if s.cfg.MaxMessageBytes > 0 {
		return s.cfg.MaxMessageBytes
	}
	return defaultMaxReply
}

// writableCase answers a state-changing request about a case: the session
// and the case (the same "not found" for another's case as for none), then
// the body, limited to limit bytes, then the CSRF token. v is nil when the
// answer has been given.
func (s *Server) writableCase(w http.ResponseWriter, r *http.Request, limit int64, multipart bool) (*viewer, *cases.Case, int) {
	if sess, _ := s.session(r); sess == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return nil, nil, http.StatusSeeOther
	}
	var v *viewer
	var c *cases.Case
	code := 0
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		v, c, code = s.resolveCase(w, r, tx)
		return nil
	})
	if err != nil {
		return nil, nil, s.serverError(w, r, err)
	}
	if v == nil {
		return nil, nil, code
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var perr error
	if multipart {
		perr = r.ParseMultipartForm(replyMemoryBytes)
	} else {
		perr = r.ParseForm()
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(perr, &mbe) {
		return nil, nil, s.showCase(w, r, http.StatusRequestEntityTooLarge, T(v.lang, "reply.toolarge"), "")
	}
	if !s.checkCSRF(r) {
		return nil, nil, s.badRequest(w, v.lang)
	}
	return v, c, 0
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request) int {
	limit := s.maxReply()
	v, c, code := s.writableCase(w, r, int64(limit)+formOverhead, true)
	if v == nil {
		return code
	}
	if r.MultipartForm == nil {
		return s.badRequest(w, v.lang)
	}
	defer r.MultipartForm.RemoveAll()
	text := strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n"))
	files := r.MultipartForm.File["files"]
	if len(files) > maxReplyFiles {
		return s.showCase(w, r, http.StatusRequestEntityTooLarge, T(v.lang, "reply.toolarge"), text)
	}
	var atts []cases.Attachment
	total := len(text)
	for _, fh := range files {
		if fh.Size == 0 && fh.Filename == "" {
			continue // the empty file input of a form sent without files
		}
		total += int(fh.Size)
		if total > limit {
			return s.showCase(w, r, http.StatusRequestEntityTooLarge, T(v.lang, "reply.toolarge"), text)
		}
		f, err := fh.Open()
		if err != nil {
			return s.serverError(w, r, err)
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return s.serverError(w, r, err)
		}
		atts = append(atts, cases.Attachment{
			Filename: uploadName(fh.Filename), ContentType: uploadType(fh.Header.Get("Content-Type")),
			Size: len(data), Data: data,
		})
	}
	if text == "" && len(atts) == 0 {
		return s.showCase(w, r, http.StatusBadRequest, T(v.lang, "reply.empty"), "")
	}
	now := s.now()
	raw, err := s.buildReply(v, c, text, atts, r.PostFormValue("nonce"), now, clientIP(r))
	if err != nil {
		return s.serverError(w, r, err)
	}
	if len(raw) > limit {
		// The text and files fit, their encoding (base64) does not: the
		// ingest would quarantine it (limits.max_message_bytes).
		return s.showCase(w, r, http.StatusRequestEntityTooLarge, T(v.lang, "reply.toolarge"), text)
	}
	if s.cfg.Mailer == nil {
		return s.serverError(w, r, errors.New("no mailer"))
	}
	d, err := s.cfg.Mailer.DeliverReply(raw, now)
	if err != nil {
		return s.serverError(w, r, err)
	}
	s.log.Info("portal reply", "case", c.ID, "landed", d.CaseID, "decision", d.Decision, "email", v.email, "ip", clientIP(r), "bytes", len(raw), "files", len(atts))
	if d.CaseID == 0 || d.Decision == "quarantine" {
		// Never expected (the portal built the mail); the customer must
		// not believe it was added.
		return s.serverError(w, r, errors.New("reply not on a case: "+d.Decision+" "+d.Reason))
	}
	done := "reply"
	switch {
	case d.Decision == "linked_case":
		done = "linked" // closed too long ago: a new case continues it
	case d.CaseID != c.ID:
		s.log.Error("portal reply landed on another case", "case", c.ID, "landed", d.CaseID, "decision", d.Decision)
	}
	to := "/cases/" + strconv.FormatUint(d.CaseID, 10) + "?done=" + done
	http.Redirect(w, r, to, http.StatusSeeOther)
	return http.StatusSeeOther
}

// buildReply is the customer's reply as the mail their client would have
// sent: from them, to support, in the case's thread.
func (s *Server) buildReply(v *viewer, c *cases.Case, text string, atts []cases.Attachment, nonce string, now time.Time, ip string) ([]byte, error) {
	p := s.cfg.Policy
	from := s.contactAddress(v.email)
	// In-Reply-To names the newest of deskd's own signed ids of this case
	// in its thread: the engine threads by it first, and a signed id names
	// its case whatever else the thread holds (a Message-ID of the
	// customer's that another case also knows).
	var inReplyTo string
	for i := len(c.Thread) - 1; i >= 0 && inReplyTo == ""; i-- {
		if n, own := mail.VerifyMessageID(s.cfg.Key, c.Thread[i]); own && n == c.ID {
			inReplyTo = c.Thread[i]
		}
	}
	if n := len(c.Thread); inReplyTo == "" && n > 0 {
		inReplyTo = c.Thread[n-1]
	}
	if !validRandomToken(nonce) {
		nonce = randomToken() // no form nonce: still one message, just not idempotent
	}
	return mail.Compose(&mail.Outgoing{
		From:        from,
		To:          []cases.Address{{Email: p.SupportAddress}},
		Subject:     "Re: " + cases.NewTokens(p.TokenPrefix).Format(c.ID) + " " + c.Subject,
		MessageID:   s.replyMessageID(v.email, c.ID, nonce),
		InReplyTo:   inReplyTo,
		References:  c.Thread,
		Date:        now,
		Text:        text,
		Attachments: atts,
		// A trace field (RFC 5321 §4.4): where the message entered.
		Extra: map[string]string{"Received": "from [" + ip + "] by deskd portal with HTTP; " + now.Format(time.RFC1123Z)},
	})
}

// contactAddress is email with the name configured for it, if any.
func (s *Server) contactAddress(email string) cases.Address {
	a := cases.Address{Email: email}
	if cust, named := s.cfg.Policy.CustomerOf(email); named {
		for _, c := range cust.Contacts {
			if strings.EqualFold(c.Email, email) {
				a.Name = c.Name
			}
		}
	}
	return a
}

// replyMessageID is "portal.<24 hex>@<support domain>": unique per form
// (the nonce), the same for the same form sent again, and never one of
// deskd's own signed ids ("deskd.…", mail.NewMessageID), which the engine
// takes for its own mail coming back.
func (s *Server) replyMessageID(email string, caseID uint64, nonce string) string {
	sum := mac(s.keys.reply, []byte(strings.ToLower(email)), []byte{0}, []byte(strconv.FormatUint(caseID, 10)), []byte{0}, []byte(nonce))
	domain := "invalid"
	if _, d, ok := strings.Cut(s.cfg.Policy.SupportAddress, "@"); ok && d != "" {
		domain = strings.ToLower(d)
	}
	return "portal." + hex.EncodeToString(sum[:12]) + "@" + domain
}

// uploadName keeps the last path element of a browser's file name (old
// browsers send the whole path); Compose sanitises it further.
func uploadName(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(name)
	if name == "." || name == "/" {
		return ""
	}
	return name
}

// uploadType is the type the browser named, when it parses; the portal
// serves every attachment as a download whatever its type.
func uploadType(t string) string {
	mt, _, err := mime.ParseMediaType(t)
	if err != nil || strings.HasPrefix(mt, "multipart/") {
		return "application/octet-stream"
	}
	return mt
}

// solved records the customer's wish to close the case and tells staff
// (Mailer.SolvedWish: an event and a notification on the one road). Only
// staff close: the case stays as it is.
func (s *Server) solved(w http.ResponseWriter, r *http.Request) int {
	v, c, code := s.writableCase(w, r, 4<<10, false)
	if v == nil {
		return code
	}
	if s.cfg.Mailer == nil {
		return s.serverError(w, r, errors.New("no mailer"))
	}
	rec, err := s.cfg.Mailer.SolvedWish(c.ID, s.contactAddress(v.email))
	if err != nil {
		return s.serverError(w, r, err)
	}
	s.log.Info("portal solved wish", "case", c.ID, "email", v.email, "recorded", rec, "ip", clientIP(r))
	http.Redirect(w, r, "/cases/"+strconv.FormatUint(c.ID, 10)+"?done=solved", http.StatusSeeOther)
	return http.StatusSeeOther
}
