package report

import "deskd/internal/i18n"

// language is how the text and HTML formats write numbers, dates and
// month labels in one language; its words are in messages.
type language struct {
	// tag is the HTML lang attribute and the Content-Language of a mail.
	tag string
	// decimal separates a percentage's decimals: "99.9%", "99,9%".
	decimal string
	// short names the months on the chart's labels (the long names are
	// i18n's).
	short [12]string
	// longDates writes dates as "1 oktober 2026"; else "2026-10-01".
	longDates bool
}

var languages = map[string]*language{
	English: {
		tag: English, decimal: ".",
		short: [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
	},
	Dutch: {
		tag: Dutch, decimal: ",", longDates: true,
		short: [12]string{"jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"},
	},
}

// messages is everything the text and HTML formats say, in the one
// wording scheme (internal/i18n): every message is a fmt format (a
// literal percent sign is "%%"), with the same verbs in the same order in
// every language; column heads are tab-separated, one per column. Codes
// (verdicts, priorities, kinds, targets) are looked up as
// "verdict.<code>" and so on.
var messages = i18n.Catalog{
	English: {
		"unit.day": "d", "unit.hour": "h", "unit.minute": "m",
		"legend":       "Working time: Monday to Friday 08:00-17:00 except public holidays (R11); d = a working day of 9 working hours.",
		"supplier":     "Service desk",
		"subject":      "%s: service report %s, %s",
		"subject.all":  "all customers",
		"title":        "%s: service report %s",
		"period":       "%s to %s (%s)",
		"no cases":     "No cases in %s.",
		"priority.all": "all",

		"verdict.met": "met", "verdict.missed": "missed", "verdict.pending": "pending", "verdict.no cases": "no cases",
		"priority.urgent": "urgent", "priority.high": "high", "priority.medium": "medium", "priority.low": "low",
		"kind.incident": "incident", "kind.question": "question", "kind.change": "change",
		"target.first_response":   "first response (R9)",
		"target.resolution":       "resolution, 90%% tier (R7)",
		"target.resolution_tier2": "resolution, 99.9%% tier (R7)",
		"target.answer":           "answer, 90%% tier (R10)",
		"target.answer_tier2":     "answer, 100%% tier (R10)",

		"compensation.none":     "Resolution targets this month (R13): %s. No run of missed months: no discount due.",
		"compensation.first":    "Resolution targets missed this month (R13): an incident meeting and monthly follow-ups; no discount due yet (from the 3rd month on).",
		"compensation.meeting":  "Resolution targets missed %d months in a row (R13): an incident meeting and monthly follow-ups; no discount due yet (from the 3rd month on).",
		"compensation.discount": "Resolution targets missed %d months in a row (R13): %d%% discount due on the next monthly invoice (5%% from the 3rd month, 5%% more per further month, at most %d%%).",

		"text.period":         "Period %s; figures as of %s.",
		"text.tiers":          `Tiers count the cases with a known outcome; "+N" are open cases not past the target yet (pending).`,
		"text.incidents":      "Incidents (R7: 90%% within tier 1, 99.9%% within tier 2; R9: first response within %s)",
		"text.incidents.head": "PRIORITY\tCASES\tRESOLVED\tOPEN\tTIER 1\tWITHIN\t%%\tTIER 2\tWITHIN\t%%\tP90\tP99.9\tFIRST RESPONSE\t%%\tVERDICT",
		"text.questions":      "Questions (R10): asked %d, answered %d, waiting for an answer %d",
		"text.questions.head": "ANSWERED WITHIN\tGOAL\tWITHIN\t%%\tVERDICT",
		"text.changes":        "Change requests (R14, in none of the figures above): %d",
		"text.missed":         "Missed targets: %d",
		"text.missed.head":    "CASE\tKIND\tPRIORITY\tTARGET\tLIMIT\tTOOK\tOVER BY\tSUBJECT",
		"text.open":           " (open)",
		"text.history":        "Attainment, last %d months (incidents, all priorities)",
		"text.history.head":   "MONTH\tCASES\tTIER 1\t%%\tTIER 2\t%%\tVERDICT",

		"html.title":           "Service report %s",
		"html.period":          "%s · period %s",
		"html.asof":            "Figures as of %s.",
		"html.tiers.before":    "Tiers count the cases with a known outcome;",
		"html.tiers.after":     "are open cases not past their target yet.",
		"html.incidents":       "Incidents",
		"html.incidents.head":  "Priority\tCases\tResolved\tOpen\t90%% within\tWithin\t%%\t99.9%% within\tWithin\t%%\tP90\tP99.9\tFirst response ≤ %s\t%%\tVerdict",
		"html.priority.all":    "all priorities",
		"html.questions":       "Questions",
		"html.questions.head":  "Answered within\tGoal\tWithin\t%%\tVerdict",
		"html.questions.note":  "Questions asked: %d; answered: %d; waiting for an answer: %d. Change requests: %d (they have no resolution target and are in none of the figures above).",
		"html.history":         "Attainment over the last %d months",
		"html.history.head":    "Month\tCases\tTier 1\t%%\tTier 2\t%%\tVerdict",
		"html.chart":           "Attainment of %s over the last %d months: tier 1 as bars, tier 2 as a line, goals 90%% and 99.9%%",
		"html.chart.goal1":     "90%% goal (tier 1)",
		"html.chart.goal2":     "99.9%% goal (tier 2)",
		"html.chart.key.tier1": "resolved within tier 1 (goal 90%%)",
		"html.chart.key.tier2": "within tier 2 (goal 99.9%%)",
		"html.chart.key.goals": "goals",
		"html.missed":          "Missed targets",
		"html.missed.head":     "Case\tKind\tPriority\tTarget\tLimit\tTook\tOver by\tStarted\tSubject",
		"html.missed.open":     " (still open)",
		"html.missed.none":     "None.",
		"html.footer":          "Resolution: 90%% of incidents within the first tier and 99.9%% within the second, per priority (R7); first response within the plan's time (R9); questions answered within the first tier (90%%) and the second (100%%) (R10); change requests have no target (R14). A month counts as missed when either tier of any priority is missed (R13).",
	},
	// Dutch uses the agreement's words (7.1, 7.3, 9.1): prioriteit Urgent,
	// Hoog, Medium, Laag; oplostijd; eerste reactie; werkdag. A tier is a
	// "norm", named by its share: the 90%-norm and the 99,9%-norm (100%
	// for questions), as the staff mails (sla_breach) call them.
	// Dutch uses the agreement's words (7.1, 7.3, 9.1): prioriteit Urgent,
	// Hoog, Medium, Laag; oplostijd; eerste reactie; werkdag. A tier is a
	// "norm", named by its share: the 90%-norm and the 99,9%-norm (100%
	// for questions), as the staff mails (sla_breach) call them.
	Dutch: {
		// "wd", not "d": a Dutch reader takes "d" for a calendar day
		// (dag); "u" (uur) is how Dutch abbreviates hours.
		"unit.day": "wd", "unit.hour": "u", "unit.minute": "m",
		"legend":       "Werktijd: maandag t/m vrijdag van 08:00 tot 17:00 uur, behalve op feestdagen (R11); wd = werkdag van 9 werkuren, u = werkuur, m = minuut.",
		"supplier":     "Servicedesk",
		"subject":      "%s: servicerapportage %s, %s",
		"subject.all":  "alle klanten",
		"title":        "%s: servicerapportage %s",
		"period":       "%s t/m %s (%s)",
		"no cases":     "Geen cases in %s.",
		"priority.all": "Alle",

		"verdict.met": "gehaald", "verdict.missed": "niet gehaald", "verdict.pending": "nog open", "verdict.no cases": "geen cases",
		"priority.urgent": "Urgent", "priority.high": "Hoog", "priority.medium": "Medium", "priority.low": "Laag",
		"kind.incident": "incident", "kind.question": "vraag", "kind.change": "wijziging",
		"target.first_response":   "eerste reactie (R9)",
		"target.resolution":       "oplostijd, 90%%-norm (R7)",
		"target.resolution_tier2": "oplostijd, 99,9%%-norm (R7)",
		"target.answer":           "antwoord op vraag, 90%%-norm (R10)",
		"target.answer_tier2":     "antwoord op vraag, 100%%-norm (R10)",

		"compensation.none":     "Oplostijden deze maand (R13): %s. Geen reeks maanden met overschreden oplostijden: er is geen korting verschuldigd.",
		"compensation.first":    "Oplostijden deze maand niet gehaald (R13): aanleiding voor een incidentoverleg met maandelijkse vervolgafspraken; nog geen korting verschuldigd (pas vanaf de 3e maand).",
		"compensation.meeting":  "Oplostijden %d maanden achter elkaar niet gehaald (R13): aanleiding voor een incidentoverleg met maandelijkse vervolgafspraken; nog geen korting verschuldigd (pas vanaf de 3e maand).",
		"compensation.discount": "Oplostijden %d maanden achter elkaar niet gehaald (R13): %d%% korting op de volgende maandfactuur (5%% vanaf de 3e maand, 5%% extra voor elke volgende maand, ten hoogste %d%%).",

		"text.period":         "Periode %s; stand per %s.",
		"text.tiers":          `De normen tellen de cases waarvan de uitkomst bekend is; "+N" zijn open cases waarvan de termijn nog niet verstreken is (nog open).`,
		"text.incidents":      "Incidenten (R7: 90%% opgelost binnen de 90%%-norm, 99,9%% binnen de 99,9%%-norm; R9: eerste reactie binnen %s)",
		"text.incidents.head": "PRIORITEIT\tCASES\tOPGELOST\tOPEN\t90%%-NORM\tBINNEN\t%%\t99,9%%-NORM\tBINNEN\t%%\tP90\tP99,9\tEERSTE REACTIE\t%%\tOORDEEL",
		"text.questions":      "Vragen (R10): gesteld %d, beantwoord %d, wachtend op antwoord %d",
		"text.questions.head": "BEANTWOORD BINNEN\tNORM\tBINNEN\t%%\tOORDEEL",
		"text.changes":        "Wijzigingsverzoeken (R14, tellen in geen van de cijfers hierboven mee): %d",
		"text.missed":         "Niet gehaalde termijnen: %d",
		"text.missed.head":    "CASE\tSOORT\tPRIORITEIT\tNORM\tTERMIJN\tDUUR\tTE LAAT\tONDERWERP",
		"text.open":           " (nog open)",
		"text.history":        "Resultaat, laatste %d maanden (incidenten, alle prioriteiten)",
		"text.history.head":   "MAAND\tCASES\t90%%-NORM\t%%\t99,9%%-NORM\t%%\tOORDEEL",

		"html.title":           "Servicerapportage %s",
		"html.period":          "%s · periode %s",
		"html.asof":            "Stand per %s.",
		"html.tiers.before":    "De normen tellen de cases waarvan de uitkomst bekend is;",
		"html.tiers.after":     "zijn open cases waarvan de termijn nog niet verstreken is.",
		"html.incidents":       "Incidenten",
		"html.incidents.head":  "Prioriteit\tCases\tOpgelost\tOpen\t90%%-norm\tBinnen\t%%\t99,9%%-norm\tBinnen\t%%\tP90\tP99,9\tEerste reactie ≤ %s\t%%\tOordeel",
		"html.priority.all":    "Alle prioriteiten",
		"html.questions":       "Vragen",
		"html.questions.head":  "Beantwoord binnen\tNorm\tBinnen\t%%\tOordeel",
		"html.questions.note":  "Vragen gesteld: %d; beantwoord: %d; wachtend op antwoord: %d. Wijzigingsverzoeken: %d (die hebben geen oplostijd en tellen in geen van de cijfers hierboven mee).",
		"html.history":         "Resultaat over de laatste %d maanden",
		"html.history.head":    "Maand\tCases\t90%%-norm\t%%\t99,9%%-norm\t%%\tOordeel",
		"html.chart":           "Resultaat van %s over de laatste %d maanden: binnen de 90%%-norm als staven, binnen de 99,9%%-norm als lijn, de normen als stippellijnen",
		"html.chart.goal1":     "90%%-norm",
		"html.chart.goal2":     "99,9%%-norm",
		"html.chart.key.tier1": "opgelost binnen de 90%%-norm",
		"html.chart.key.tier2": "opgelost binnen de 99,9%%-norm",
		"html.chart.key.goals": "normen",
		"html.missed":          "Niet gehaalde termijnen",
		"html.missed.head":     "Case\tSoort\tPrioriteit\tNorm\tTermijn\tDuur\tTe laat\tBegonnen\tOnderwerp",
		"html.missed.open":     " (nog open)",
		"html.missed.none":     "Geen.",
		"html.footer":          "Oplostijd: per prioriteit 90%% van de incidenten binnen de 90%%-norm en 99,9%% binnen de 99,9%%-norm (R7); eerste reactie binnen de termijn van het abonnement (R9); vragen in eerste aanzet beantwoord: 90%% binnen 3 werkdagen en 100%% binnen 5 werkdagen (R10); wijzigingsverzoeken hebben geen oplostijd (R14). Een maand telt als niet gehaald wanneer bij een prioriteit een van beide normen niet gehaald is (R13).",
	},
}

// lookupLang is the language named, Dutch for anything else.
func lookupLang(name string) *language {
	return languages[i18n.Of(name)]
}
