package portal

import (
	"net/http"

	"golang.org/x/text/language"

	"deskd/internal/i18n"
)

// The portal speaks Dutch and English. A page's language is, first to
// last: ?lang= (remembered in a cookie), the browser's Accept-Language,
// the customer's configured language, the default customer's language.

var langMatcher = language.NewMatcher([]language.Tag{language.Dutch, language.English})

const langCookie = "deskd_lang"

// normLang is the language deskd speaks for tag (i18n.Parse), or "" when
// it speaks none of it, so that pickLang tries the next source.
func normLang(tag string) string {
	l, _ := i18n.Parse(tag)
	return l
}

// pickLang chooses the page's language; customerLang may be "".
func pickLang(w http.ResponseWriter, r *http.Request, customerLang, fallback string) string {
	if l := normLang(r.URL.Query().Get("lang")); l != "" {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 365 * 24 * 3600})
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if l := normLang(c.Value); l != "" {
			return l
		}
	}
	if al := r.Header.Get("Accept-Language"); al != "" {
		if tags, _, err := language.ParseAcceptLanguage(al); err == nil && len(tags) > 0 {
			if _, idx, conf := langMatcher.Match(tags...); conf >= language.High {
				return []string{"nl", "en"}[idx]
			}
		}
	}
	if l := normLang(customerLang); l != "" {
		return l
	}
	if l := normLang(fallback); l != "" {
		return l
	}
	return "nl"
}

// text holds every string a page shows, per language, in the one
// wording scheme (internal/i18n).
var text = i18n.Catalog{
	"en": {
		"link.hidden":             "[link to this case]",
		"title":                   "Support cases",
		"skip":                    "Skip to content",
		"signin.title":            "Sign in",
		"signin.intro":            "Enter your e-mail address. If it is known to us, you will receive a link to sign in, valid for 15 minutes. No password needed.",
		"signin.email":            "E-mail address",
		"signin.submit":           "Send me a sign-in link",
		"signin.sent":             "Check your mail",
		"signin.sentbody":         "If this address is known to us, a sign-in link is on its way. It works once and for 15 minutes.",
		"signin.confirm":          "Sign in to your cases",
		"signin.confirmb":         "Press the button to sign in. The link can be used once.",
		"signin.go":               "Sign in",
		"signin.bad":              "This sign-in link is not valid any more. It may have been used already or expired. Ask for a new one.",
		"signin.again":            "Ask for a new link",
		"signout":                 "Sign out",
		"limited":                 "Too many requests. Please try again later.",
		"notfound":                "Not found",
		"notfoundbody":            "There is no case here, or you may not see it.",
		"badrequest":              "This request could not be handled. Reload the page and try again.",
		"error":                   "Something went wrong on our side. Please try again later.",
		"cases":                   "Your cases",
		"filter":                  "Show",
		"filter.open":             "Open",
		"filter.closed":           "Closed",
		"filter.all":              "All",
		"apply":                   "Apply",
		"col.case":                "Case",
		"col.subject":             "Subject",
		"col.status":              "Status",
		"col.priority":            "Priority",
		"col.kind":                "Kind",
		"col.activity":            "Last activity",
		"col.deadline":            "Next deadline",
		"none":                    "No cases.",
		"proposed":                "proposed",
		"page.prev":               "Newer",
		"page.next":               "Older",
		"status.open":             "Open",
		"status.pending":          "Waiting for you",
		"status.closed":           "Closed",
		"kind.incident":           "Incident",
		"kind.question":           "Question",
		"kind.change":             "Change request",
		"state.on_track":          "on track",
		"state.warning":           "on track, due soon",
		"state.paused":            "paused while we wait for you",
		"state.met":               "met",
		"state.breached":          "missed",
		"state.none":              "no deadline",
		"conversation":            "Conversation",
		"history":                 "History",
		"deadlines":               "Deadlines",
		"target.first_response":   "First response",
		"target.resolution":       "Resolution",
		"target.resolution_tier2": "Resolution (at the latest)",
		"target.answer":           "Answer",
		"target.answer_tier2":     "Answer (at the latest)",
		"target.limit":            "Target",
		"target.due":              "Due",
		"target.left":             "Working time left",
		"target.state":            "State",
		"from.you":                "You",
		"from.support":            "Support",
		"attachments":             "Attachments",
		"quoted":                  "Show quoted text",
		"html.note":               "This mail was sent as HTML; it is shown simplified.",
		"truncated":               "This mail was too large to keep; only its headers were stored.",
		"reply":                   "Reply",
		"reply.text":              "Your message",
		"reply.files":             "Attachments (optional)",
		"reply.send":              "Send reply",
		"reply.sent":              "Your reply was added to the case.",
		"reply.toolarge":          "Your message and its attachments are too large.",
		"reply.empty":             "Please write a message.",
		"reply.linked":            "This case was closed too long ago to reopen; your reply opened a new case that continues it.",
		"reply.closed":            "This case is closed. A reply reopens it, or, when it was closed too long ago, opens a new case that continues it.",
		"reply.signin":            "To reply or to close this case, sign in with your e-mail address.",
		"reply.limit":             "Together at most",
		"solved.hint":             "Is your problem solved? Tell us and the support team will close the case.",
		"solved":                  "My problem is solved, please close this case",
		"solved.sent":             "Thank you. We have told the support team; they will close the case.",
		"back":                    "All cases",
		"ev.received":             "Received",
		"ev.opened_by_staff":      "Opened by support",
		"ev.priority_set":         "Priority set",
		"ev.pending":              "Waiting for you",
		"ev.resumed":              "Resumed",
		"ev.customer_reply":       "You replied",
		"ev.staff_response":       "Support answered",
		"ev.closed":               "Closed",
		"ev.reopened":             "Reopened",
		"ev.solved_wish":          "You asked to close it",
		"lang.other":              "Nederlands",
		"footer":                  "Support portal",
	},
	"nl": {
		"title":                   "Supportcases",
		"skip":                    "Naar de inhoud",
		"signin.title":            "Inloggen",
		"signin.intro":            "Vul uw e-mailadres in. Als het bij ons bekend is, ontvangt u een link om in te loggen, 15 minuten geldig. Geen wachtwoord nodig.",
		"signin.email":            "E-mailadres",
		"signin.submit":           "Stuur mij een inloglink",
		"signin.sent":             "Kijk in uw mail",
		"signin.sentbody":         "Als dit adres bij ons bekend is, is een inloglink onderweg. Hij werkt één keer en 15 minuten lang.",
		"signin.confirm":          "Inloggen op uw cases",
		"signin.confirmb":         "Druk op de knop om in te loggen. De link werkt één keer.",
		"signin.go":               "Inloggen",
		"signin.bad":              "Deze inloglink is niet meer geldig. Misschien is hij al gebruikt of verlopen. Vraag een nieuwe aan.",
		"signin.again":            "Nieuwe link aanvragen",
		"signout":                 "Uitloggen",
		"limited":                 "Te veel verzoeken. Probeer het later nog eens.",
		"notfound":                "Niet gevonden",
		"notfoundbody":            "Hier is geen case, of u mag hem niet zien.",
		"badrequest":              "Dit verzoek kon niet worden verwerkt. Laad de pagina opnieuw en probeer het nog eens.",
		"error":                   "Er ging bij ons iets mis. Probeer het later nog eens.",
		"cases":                   "Uw cases",
		"filter":                  "Toon",
		"filter.open":             "Open",
		"filter.closed":           "Gesloten",
		"filter.all":              "Alle",
		"apply":                   "Toepassen",
		"col.case":                "Zaak",
		"col.subject":             "Onderwerp",
		"col.status":              "Status",
		"col.priority":            "Prioriteit",
		"col.kind":                "Soort",
		"col.activity":            "Laatste activiteit",
		"col.deadline":            "Volgende termijn",
		"none":                    "Geen cases.",
		"proposed":                "voorgesteld",
		"page.prev":               "Nieuwer",
		"page.next":               "Ouder",
		"status.open":             "Open",
		"status.pending":          "Wacht op u",
		"status.closed":           "Gesloten",
		"kind.incident":           "Incident",
		"kind.question":           "Vraag",
		"kind.change":             "Wijzigingsverzoek",
		"state.on_track":          "op schema",
		"state.warning":           "op schema, bijna verlopen",
		"state.paused":            "gepauzeerd, we wachten op u",
		"state.met":               "gehaald",
		"state.breached":          "niet gehaald",
		"state.none":              "geen termijn",
		"conversation":            "Gesprek",
		"history":                 "Geschiedenis",
		"deadlines":               "Termijnen",
		"target.first_response":   "Eerste reactie",
		"target.resolution":       "Oplossing",
		"target.resolution_tier2": "Oplossing (uiterlijk)",
		"target.answer":           "Antwoord",
		"target.answer_tier2":     "Antwoord (uiterlijk)",
		"target.limit":            "Norm",
		"target.due":              "Uiterlijk",
		"target.left":             "Resterende werktijd",
		"target.state":            "Stand",
		"from.you":                "U",
		"from.support":            "Support",
		"attachments":             "Bijlagen",
		"quoted":                  "Toon geciteerde tekst",
		"html.note":               "Deze mail is als HTML verstuurd; hij wordt vereenvoudigd getoond.",
		"truncated":               "Deze mail was te groot om te bewaren; alleen de kopregels zijn bewaard.",
		"reply":                   "Reageren",
		"reply.text":              "Uw bericht",
		"reply.files":             "Bijlagen (niet verplicht)",
		"reply.send":              "Reactie versturen",
		"reply.sent":              "Uw reactie is aan de case toegevoegd.",
		"reply.toolarge":          "Uw bericht en de bijlagen zijn te groot.",
		"reply.empty":             "Schrijf alstublieft een bericht.",
		"reply.linked":            "Deze case is te lang geleden gesloten om te heropenen; uw reactie heeft een nieuwe case geopend die erop voortbouwt.",
		"reply.closed":            "Deze case is gesloten. Een reactie heropent hem, of opent een nieuwe case als vervolg wanneer hij te lang geleden is gesloten.",
		"reply.signin":            "Log in met uw e-mailadres om te reageren of deze case te laten sluiten.",
		"reply.limit":             "Samen hoogstens",
		"solved.hint":             "Is uw probleem opgelost? Laat het ons weten, dan sluit het supportteam de case.",
		"solved":                  "Mijn probleem is opgelost, sluit deze case",
		"solved.sent":             "Dank u. We hebben het supportteam ingelicht; zij sluiten de case.",
		"back":                    "Alle cases",
		"ev.received":             "Ontvangen",
		"ev.opened_by_staff":      "Geopend door support",
		"ev.priority_set":         "Prioriteit vastgesteld",
		"ev.pending":              "Wacht op u",
		"ev.resumed":              "Hervat",
		"ev.customer_reply":       "U reageerde",
		"ev.staff_response":       "Support antwoordde",
		"ev.closed":               "Gesloten",
		"ev.reopened":             "Heropend",
		"ev.solved_wish":          "U vroeg om te sluiten",
		"lang.other":              "English",
		"footer":                  "Supportportaal",
		"link.hidden":             "[link naar deze case]",
	},
}

// T returns the text of key in lang (the key itself when missing, which a
// test catches).
func T(lang, key string) string {
	return text.Text(lang, key)
}
