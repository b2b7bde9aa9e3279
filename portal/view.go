package portal

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/sla"
	"deskd/store"
	"deskd/templates"
)

// Who may see what (R3, R1):
//   - a contact sees the cases they are a party of;
//   - a named contact of a customer also sees every case of that customer;
//   - anyone else (an unauthorised contact, a stranger) only their own;
//   - a case link shows its one case to its one address, and only while
//     that address may still see it;
//   - nobody sees a machine's case or another customer's case: that answer
//     is the same "not found" as a case that does not exist, and the try is
//     logged as portal_denied.
//
// What a case page shows of a case: the mails the customer side sent and
// the mails deskd sent to the customer (acknowledgement, relayed staff
// replies, the priority mail, the closing mail), never the supplier's own
// traffic (internal notes, staff notifications, second-line mail, SLA
// warnings and breaches, confirmations and errors to staff), and no
// address of a party outside the viewer's customer.

// viewer is who is looking.
type viewer struct {
	email   string
	capCase uint64 // a case link's case; 0 for a session
	prefix  string // URL of the case as this viewer reaches it
	csrf    string
	lang    string
}

// shownInbound and shownOutbound are allow-lists: a kind of mail added
// later stays hidden until someone decides the customer may see it.
var shownInbound = map[cases.Role]bool{cases.RoleCustomer: true, cases.RoleContact: true, cases.RoleStranger: true}

var shownOutbound = map[string]bool{"ack": true, string(cases.MailRelay): true, string(cases.MailPrioritySet): true, string(cases.MailClosing): true}

// Visible reports whether the customer side may see message m.
func Visible(m *cases.Message) bool {
	if m.Internal() {
		return false
	}
	if m.Direction == cases.DirectionIn {
		return shownInbound[m.Role] && len(m.AutoReasons) == 0
	}
	return m.Direction == cases.DirectionOut && shownOutbound[m.Kind]
}

// shownEvents are the history entries a customer sees, in their words.
var shownEvents = map[string]bool{
	cases.EventReceived: true, cases.EventOpenedByStaff: true, cases.EventPrioritySet: true,
	cases.EventPending: true, cases.EventResumed: true, cases.EventCustomerReply: true,
	cases.EventStaffResponse: true, cases.EventClosed: true, cases.EventReopened: true,
	cases.EventSolvedWish: true,
}

// mayView reports whether email may see a case of customer with parties.
func (s *Server) mayView(email string, customer string, parties []string, machine bool) bool {
	if machine {
		return false
	}
	if slices.ContainsFunc(parties, func(p string) bool { return strings.EqualFold(p, email) }) {
		return true
	}
	c, named := s.cfg.Policy.CustomerOf(email)
	return named && c.Name == customer
}

// resolveCase finds the case of a case request and checks the viewer may
// see it; nil means "not found" has been answered.
func (s *Server) resolveCase(w http.ResponseWriter, r *http.Request, tx *store.Tx) (*viewer, *cases.Case, int) {
	v := &viewer{}
	var id uint64
	if capTok := r.PathValue("cap"); capTok != "" {
		l, err := s.keys.parseLink(capTok)
		if err != nil {
			return nil, nil, s.deny(w, r, "", 0, "bad case link")
		}
		revoked, err := tx.CaseLinksRevokedBefore(l.CaseID, l.Email)
		if err != nil {
			return nil, nil, s.serverError(w, r, err)
		}
		if !revoked.IsZero() && !l.Issued.After(revoked) {
			return nil, nil, s.deny(w, r, l.Email, l.CaseID, "revoked case link")
		}
		v.email, v.capCase, id = l.Email, l.CaseID, l.CaseID
		v.prefix = "/c/" + capTok
	} else {
		sess, tok := s.session(r)
		if sess == nil {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return nil, nil, http.StatusSeeOther
		}
		v.email, v.csrf = sess.Email, s.keys.csrfToken(tok)
		if id = parseID(r.PathValue("id")); id == 0 {
			return nil, nil, s.deny(w, r, v.email, 0, "bad case number")
		}
		v.prefix = "/cases/" + strconv.FormatUint(id, 10)
	}
	c, err := tx.Case(id)
	if err != nil {
		return nil, nil, s.serverError(w, r, err)
	}
	if c == nil || !s.mayView(v.email, c.Customer, c.Parties, c.Machine) {
		return nil, nil, s.deny(w, r, v.email, id, "not theirs")
	}
	if v.csrf == "" {
		v.csrf = s.keys.csrfToken(s.binding(w, r))
	}
	v.lang = pickLang(w, r, c.Language, s.cfg.Policy.DefaultLanguage)
	return v, c, 0
}

// deny answers "not found", the same as for a case that does not exist,
// and logs the try.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, email string, id uint64, why string) int {
	s.log.Warn("portal_denied", "email", email, "case", id, "why", why, "ip", clientIP(r), "path", r.URL.Path)
	if s.cfg.Denied != nil {
		s.cfg.Denied()
	}
	return s.notFound(w, r, "")
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, lang string) int {
	if lang == "" {
		lang = pickLang(w, r, "", s.cfg.Policy.DefaultLanguage)
	}
	return s.render(w, http.StatusNotFound, "message", lang, pageData{Title: T(lang, "notfound"), Message: T(lang, "notfoundbody")})
}

func (s *Server) badRequest(w http.ResponseWriter, lang string) int {
	return s.render(w, http.StatusForbidden, "message", lang, pageData{Title: T(lang, "badrequest"), Message: T(lang, "badrequest")})
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) int {
	s.log.Error("portal", "path", r.URL.Path, "err", err)
	lang := pickLang(w, r, "", s.cfg.Policy.DefaultLanguage)
	return s.render(w, http.StatusInternalServerError, "message", lang, pageData{Title: T(lang, "error"), Message: T(lang, "error")})
}

// pageData is what every page template gets.
type pageData struct {
	Lang, OtherLang, OtherLangURL string
	Title                         string
	CSRF                          string
	SignedIn                      bool
	Email                         string
	Error, Message, Notice        string
	Action                        string
	List                          *listData
	Case                          *caseData
}

type listData struct {
	Filter      string
	Rows        []listRow
	Page        int
	Prev, Next  string
	Total       int
	FilterNames []string
}

type listRow struct {
	ID                             uint64
	URL, Subject, Status, Priority string
	Proposed                       bool
	Kind, Activity                 string
	Deadline, State, StateClass    string
}

type caseData struct {
	ID                        uint64
	Subject, Status, Priority string
	Proposed                  bool
	Kind                      string
	Targets                   []targetRow
	Messages                  []msgView
	History                   []historyRow
	BackURL                   string
	CapLink                   bool
	Zone                      string
	// The reply form (a session only: a case link is read-only): where
	// it posts, its nonce, the text kept after a problem, the size limit;
	// the wish to close, for a case not closed.
	CanReply              bool
	ReplyURL, SolvedURL   string
	Nonce, Draft, MaxSize string
	Closed                bool
}

type targetRow struct {
	Name, Limit, Due, Left, State, StateClass string
}

type msgView struct {
	Anchor      string
	From        string
	Out         bool
	When        string
	Subject     string
	Body        body
	HTMLOnly    bool
	Truncated   bool
	Attachments []attView
}

type attView struct {
	Name, URL, Type, Size string
}

type historyRow struct {
	When, What string
}

const pageSize = 50

func (s *Server) list(w http.ResponseWriter, r *http.Request) int {
	sess, tok := s.session(r)
	if sess == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return http.StatusSeeOther
	}
	cust, named := s.cfg.Policy.CustomerOf(sess.Email)
	custLang := ""
	if cust != nil {
		custLang = cust.Language
	}
	lang := pickLang(w, r, custLang, s.cfg.Policy.DefaultLanguage)
	filter := r.URL.Query().Get("status")
	if filter != "closed" && filter != "all" {
		filter = "open"
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	now := s.now()
	ld := &listData{Filter: filter, Page: page, FilterNames: []string{"open", "closed", "all"}}
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		ids, err := tx.CaseIDsOfParty(sess.Email)
		if err != nil {
			return err
		}
		if named {
			more, err := tx.CaseIDsOfCustomer(cust.Name)
			if err != nil {
				return err
			}
			ids = append(ids, more...)
			slices.Sort(ids)
			ids = slices.Compact(ids)
		}
		// Filter and order by the list entries alone (three fields of
		// each case's summary); whole cases are read for the page shown.
		entries, err := tx.CaseListEntries(ids)
		if err != nil {
			return err
		}
		sums := entries[:0]
		for _, cs := range entries {
			if cs.Machine {
				continue
			}
			if closed := cs.Status == cases.StatusClosed; (filter == "open" && closed) || (filter == "closed" && !closed) {
				continue
			}
			sums = append(sums, cs)
		}
		slices.SortFunc(sums, func(a, b store.CaseListEntry) int {
			if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
				return c
			}
			return cmp.Compare(b.ID, a.ID)
		})
		ld.Total = len(sums)
		from := min((page-1)*pageSize, len(sums))
		to := min(from+pageSize, len(sums))
		for _, cs := range sums[from:to] {
			c, err := tx.Case(cs.ID)
			if err != nil || c == nil {
				return fmt.Errorf("case %d: %v", cs.ID, err)
			}
			// The index found it; the case record decides (a party may
			// have left it since: never trust an index for access).
			if !s.mayView(sess.Email, c.Customer, c.Parties, c.Machine) {
				continue
			}
			row := listRow{
				ID: c.ID, URL: "/cases/" + strconv.FormatUint(c.ID, 10), Subject: c.Subject,
				Status: T(lang, "status."+string(c.Status)), Kind: kindName(lang, c.Kind),
				Activity: s.when(c.Customer, c.UpdatedAt, lang),
			}
			row.Priority, row.Proposed = priority(c, lang)
			row.Deadline, row.State, row.StateClass = s.nextDeadline(c, lang, now)
			ld.Rows = append(ld.Rows, row)
		}
		if from > 0 {
			ld.Prev = listURL(filter, page-1)
		}
		if to < len(sums) {
			ld.Next = listURL(filter, page+1)
		}
		return nil
	})
	if err != nil {
		return s.serverError(w, r, err)
	}
	return s.render(w, http.StatusOK, "list", lang, pageData{
		Title: T(lang, "cases"), SignedIn: true, Email: sess.Email, CSRF: s.keys.csrfToken(tok), List: ld,
	})
}

func listURL(filter string, page int) string {
	return "/cases?" + url.Values{"status": {filter}, "page": {strconv.Itoa(page)}}.Encode()
}

func priority(c *cases.Case, lang string) (string, bool) {
	if c.Priority != "" {
		return templates.PriorityName(string(c.Priority), lang), false
	}
	if c.ProposedPriority != "" {
		return templates.PriorityName(string(c.ProposedPriority), lang), true
	}
	return "", false
}

func kindName(lang string, k cases.Kind) string {
	if k == "" {
		return ""
	}
	return T(lang, "kind."+string(k))
}

func (s *Server) loc(customer string) *time.Location {
	if k := s.cfg.Clocks.For(customer); k != nil && k.Calendar != nil {
		return k.Calendar.Location()
	}
	return time.UTC
}

func (s *Server) when(customer string, t time.Time, lang string) string {
	return templates.FormatWhen(t, s.loc(customer), lang)
}

func (s *Server) status(c *cases.Case, now time.Time) (sla.Status, bool) {
	sc, ok := cases.SLACase(c)
	k := s.cfg.Clocks.For(c.Customer)
	if !ok || k == nil {
		return sla.Status{}, false
	}
	return k.Evaluate(sc, now), true
}

// nextDeadline is a list row's SLA column: the earliest running target's
// deadline and its state (on track, paused while waiting for the customer,
// met, missed).
func (s *Server) nextDeadline(c *cases.Case, lang string, now time.Time) (due, state, class string) {
	st, ok := s.status(c, now)
	if !ok || len(st.Targets()) == 0 {
		return "", T(lang, "state.none"), "none"
	}
	var next *sla.Target
	for _, t := range st.Targets() {
		if !t.Done && !t.Due.IsZero() && (next == nil || t.Due.Before(next.Due)) {
			next = t
		}
	}
	if next == nil {
		return "", T(lang, "state."+string(st.State)), string(st.State)
	}
	stt := next.State
	if st.Paused {
		stt = sla.StatePaused
	}
	return s.when(c.Customer, next.Due, lang), T(lang, "state."+string(stt)), string(stt)
}

func (s *Server) casePage(w http.ResponseWriter, r *http.Request) int {
	return s.showCase(w, r, http.StatusOK, "", "")
}

// showCase renders the request's case page with code; errMsg and draft
// are a reply form's problem and the text to keep in it.
func (s *Server) showCase(w http.ResponseWriter, r *http.Request, code int, errMsg, draft string) int {
	var pd pageData
	denied := 0
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		v, c, dcode := s.resolveCase(w, r, tx)
		if v == nil {
			denied = dcode
			return nil
		}
		cd, err := s.caseData(tx, v, c)
		if err != nil {
			return err
		}
		cd.Draft = draft
		pd = pageData{Lang: v.lang, Title: fmt.Sprintf("#%d %s", c.ID, c.Subject), CSRF: v.csrf, Case: cd, Email: v.email, Error: errMsg}
		pd.SignedIn = v.capCase == 0
		switch r.URL.Query().Get("done") {
		case "solved":
			pd.Notice = T(v.lang, "solved.sent")
		case "reply":
			pd.Notice = T(v.lang, "reply.sent")
		case "linked":
			pd.Notice = T(v.lang, "reply.linked")
		}
		return nil
	})
	if err != nil {
		return s.serverError(w, r, err)
	}
	if denied != 0 {
		return denied
	}
	return s.render(w, code, "case", pd.Lang, pd)
}

func (s *Server) caseData(tx *store.Tx, v *viewer, c *cases.Case) (*caseData, error) {
	lang, now := v.lang, s.now()
	cd := &caseData{
		ID: c.ID, Subject: c.Subject, Status: T(lang, "status."+string(c.Status)), Kind: kindName(lang, c.Kind),
		BackURL: "/cases", CapLink: v.capCase != 0, Zone: s.loc(c.Customer).String(),
	}
	cd.Priority, cd.Proposed = priority(c, lang)
	cd.Closed = c.Status == cases.StatusClosed
	if v.capCase == 0 {
		cd.CanReply, cd.ReplyURL, cd.SolvedURL = true, v.prefix+"/reply", v.prefix+"/solved"
		cd.Nonce, cd.MaxSize = randomToken(), humanSize(s.maxReply())
	}
	if st, ok := s.status(c, now); ok {
		for _, t := range st.Targets() {
			row := targetRow{Name: T(lang, "target."+t.Name), Limit: templates.FormatWorking(t.Limit, lang), StateClass: string(t.State)}
			if !t.Due.IsZero() {
				row.Due = s.when(c.Customer, t.Due, lang)
			}
			stt := t.State
			if st.Paused && !t.Done {
				stt = sla.StatePaused
			}
			row.State, row.StateClass = T(lang, "state."+string(stt)), string(stt)
			if !t.Done && t.Limit > t.Elapsed {
				row.Left = templates.FormatWorking(t.Limit-t.Elapsed, lang)
			}
			cd.Targets = append(cd.Targets, row)
		}
	}
	for i, key := range c.MessageKeys {
		m, err := tx.Message(key)
		if err != nil {
			return nil, err
		}
		if m == nil || !Visible(m) {
			continue
		}
		mv, err := s.messageView(tx, v, c, i, m)
		if err != nil {
			return nil, err
		}
		cd.Messages = append(cd.Messages, mv)
	}
	for _, e := range c.Events {
		if shownEvents[e.Type] {
			cd.History = append(cd.History, historyRow{When: s.when(c.Customer, e.At, lang), What: T(lang, "ev."+e.Type)})
		}
	}
	return cd, nil
}

// fromLabel names a message's writer without showing an address of
// someone outside the case's customer.
func (s *Server) fromLabel(v *viewer, c *cases.Case, m *cases.Message) string {
	if m.Direction == cases.DirectionOut {
		return T(v.lang, "from.support")
	}
	name := mail.SanitizeHeaderText(m.From.Name)
	if strings.EqualFold(m.From.Email, v.email) {
		return T(v.lang, "from.you")
	}
	if cust, _ := s.cfg.Policy.CustomerOf(m.From.Email); cust != nil && cust.Name == c.Customer {
		if name != "" {
			return name + " <" + m.From.Email + ">"
		}
		return m.From.Email
	}
	if name == "" || strings.Contains(name, "@") {
		return "—"
	}
	return name
}

// hideFollowLinks replaces the portal's case links in a shown mail by a
// label. Every mail deskd sends a customer carries the follow link made
// for its recipient, and replies quote it; everyone who may see the case
// would otherwise see links made for others. They are read-only and
// scoped to this case, so they would open nothing beyond this page, but a
// capability made for one person is not shown to another. (In sanitised
// HTML the label lands in text or in an attribute's quoted value: it has
// no quote or angle bracket.)
func (s *Server) hideFollowLinks(b body, lang string) body {
	label := T(lang, "link.hidden")
	b.Text = s.followLinks.ReplaceAllLiteralString(b.Text, label)
	b.Quoted = s.followLinks.ReplaceAllLiteralString(b.Quoted, label)
	b.HTML = template.HTML(s.followLinks.ReplaceAllLiteralString(string(b.HTML), label))
	return b
}

func (s *Server) messageView(tx *store.Tx, v *viewer, c *cases.Case, i int, m *cases.Message) (msgView, error) {
	mv := msgView{
		Anchor: "m" + strconv.Itoa(i), From: s.fromLabel(v, c, m), Out: m.Direction == cases.DirectionOut,
		When: s.when(c.Customer, m.Date, v.lang), Subject: m.Subject, Truncated: m.Truncated,
	}
	mv.Body = splitQuoted(m.Text)
	if m.Direction == cases.DirectionIn && !m.Truncated {
		raw, err := tx.Raw(m.Key)
		if err != nil {
			return mv, err
		}
		if ps := walk(raw); !ps.hasPlain && ps.html != "" {
			prefix := v.prefix + "/m/" + strconv.Itoa(i) + "/cid/"
			mv.Body = body{HTML: sanitizeHTML(ps.html, func(cid string) string { return prefix + url.PathEscape(cid) })}
			mv.HTMLOnly = true
		}
	}
	mv.Body = s.hideFollowLinks(mv.Body, v.lang)
	for j, a := range m.Attachments {
		mv.Attachments = append(mv.Attachments, attView{
			Name: safeFilename(a.Filename), Type: a.ContentType, Size: humanSize(a.Size),
			URL: v.prefix + "/m/" + strconv.Itoa(i) + "/a/" + strconv.Itoa(j),
		})
	}
	return mv, nil
}

func humanSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d kB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// visibleMessage returns message i of the request's case when the viewer
// may see the case and the message; nil means the answer has been given.
func (s *Server) visibleMessage(w http.ResponseWriter, r *http.Request, tx *store.Tx) (*cases.Message, []byte, int) {
	v, c, denied := s.resolveCase(w, r, tx)
	if v == nil {
		return nil, nil, denied
	}
	i, err := strconv.Atoi(r.PathValue("msg"))
	if err != nil || i < 0 || i >= len(c.MessageKeys) {
		return nil, nil, s.notFound(w, r, v.lang)
	}
	m, err := tx.Message(c.MessageKeys[i])
	if err != nil {
		return nil, nil, s.serverError(w, r, err)
	}
	if m == nil || !Visible(m) || m.Truncated {
		return nil, nil, s.deny(w, r, v.email, c.ID, "hidden message")
	}
	raw, err := tx.Raw(m.Key)
	if err != nil {
		return nil, nil, s.serverError(w, r, err)
	}
	return m, raw, 0
}

// attachment serves one attachment, always as a download with a safe
// name and the stored type: nothing a mail carries is rendered by the
// browser in the portal's origin (SVG, HTML).
func (s *Server) attachment(w http.ResponseWriter, r *http.Request) int {
	var data []byte
	var a cases.Attachment
	code := 0
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		m, raw, c := s.visibleMessage(w, r, tx)
		if m == nil {
			code = c
			return nil
		}
		j, err := strconv.Atoi(r.PathValue("att"))
		if err != nil || j < 0 || j >= len(m.Attachments) {
			code = s.notFound(w, r, "")
			return nil
		}
		in, _ := mail.Parse(raw, m.Date, mail.ParseOptions{})
		if in == nil || j >= len(in.Attachments) {
			code = s.notFound(w, r, "")
			return nil
		}
		a = in.Attachments[j]
		data = a.Data
		return nil
	})
	if err != nil {
		return s.serverError(w, r, err)
	}
	if code != 0 {
		return code
	}
	serveDownload(w, a.Filename, a.ContentType, data)
	return http.StatusOK
}

func serveDownload(w http.ResponseWriter, name, contentType string, data []byte) {
	h := w.Header()
	if contentType == "" || strings.ContainsAny(contentType, "\r\n") {
		contentType = "application/octet-stream"
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", contentDisposition(name))
	h.Set("Content-Security-Policy", csp+"; sandbox")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

// inline serves an inline image (cid:) of an HTML mail for its <img>:
// raster types only, still with Content-Disposition: attachment (an <img>
// shows it; navigating to it downloads it).
func (s *Server) inline(w http.ResponseWriter, r *http.Request) int {
	var p inlinePart
	code := 0
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		m, raw, c := s.visibleMessage(w, r, tx)
		if m == nil {
			code = c
			return nil
		}
		var ok bool
		p, ok = walk(raw).inline[r.PathValue("cid")]
		if !ok || !inlineImage(p.contentType) {
			code = s.notFound(w, r, "")
		}
		return nil
	})
	if err != nil {
		return s.serverError(w, r, err)
	}
	if code != 0 {
		return code
	}
	serveDownload(w, "image", p.contentType, p.data)
	return http.StatusOK
}

func (s *Server) loadPages() error {
	funcs := template.FuncMap{"T": T}
	s.pages = map[string]*template.Template{}
	names, err := fs.Glob(webFS, "web/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "web/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(webFS, "web/layout.html", n)
		if err != nil {
			return fmt.Errorf("portal page %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return nil
}

// render writes page name with code; it returns code.
func (s *Server) render(w http.ResponseWriter, code int, name, lang string, pd pageData) int {
	pd.Lang = lang
	pd.OtherLang = map[string]string{"nl": "en", "en": "nl"}[lang]
	pd.OtherLangURL = "?lang=" + pd.OtherLang
	if pd.Title == "" {
		pd.Title = T(lang, "title")
	}
	var buf bytes.Buffer
	t := s.pages[name]
	if t == nil {
		s.log.Error("portal: no page", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	if err := t.Execute(&buf, pd); err != nil {
		s.log.Error("portal: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", lang)
	w.WriteHeader(code)
	w.Write(buf.Bytes())
	return code
}
