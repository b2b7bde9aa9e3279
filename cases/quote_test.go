package cases

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The -update flag rewrites the golden files under testdata/quote. Another
// test of this package may want a flag of the same name: registering it
// only when nobody did keeps the two from panicking with "flag redefined".
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

func updateQuoteGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// quoteLines joins test text, so tables show one mail line per Go line.
func quoteLines(l ...string) string { return strings.Join(l, "\n") }

func TestStripQuoted(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"outlook en", quoteLines(
			"Hi Jan,", "", "The printer is fixed.", "", "Kind regards,", "Piet", "",
			"________________________________",
			"From: Jan Jansen <jan@klant.nl>",
			"Sent: Monday, March 3, 2025 10:00 AM",
			"To: Support <support@deskd.test>",
			"Subject: RE: [Case #3] printer", "",
			"Hello,", "the printer is broken.", ""),
			quoteLines("Hi Jan,", "", "The printer is fixed.", "", "Kind regards,", "Piet")},
		{"outlook nl without rule", quoteLines(
			"Opgelost.", "",
			"Van: Jan Jansen <jan@klant.nl>",
			"Verzonden: maandag 3 maart 2025 10:00",
			"Aan: Support <support@deskd.test>",
			"Onderwerp: printer", "", "Hallo"),
			"Opgelost."},
		{"outlook new nl with Datum and bold labels", quoteLines(
			"Opgelost.",
			"----",
			"*Van:* Jan Jansen <jan@klant.nl>",
			"*Datum:* maandag 3 maart 2025 10:00",
			"*Aan:* Support <support@deskd.test>",
			"*Onderwerp:* printer", "", "Hallo"),
			"Opgelost."},
		{"outlook header with wrapped To", quoteLines(
			"Done.", "",
			"From: Jan <jan@klant.nl>",
			"Sent: Monday, March 3, 2025 10:00 AM",
			"To: Support <support@deskd.test>; Piet <piet@deskd.test>;",
			"    Klaas <klaas@deskd.test>",
			"Subject: x", "", "old"),
			"Done."},
		{"german outlook", quoteLines(
			"Erledigt.", "",
			"Von: Jan <jan@kunde.de>",
			"Gesendet: Montag, 3. März 2025 10:00",
			"An: Support <support@deskd.test>",
			"Betreff: Drucker", "", "alt"),
			"Erledigt."},
		{"original message", quoteLines("Done.", "", "-----Original Message-----", "From: Jan", "old text"), "Done."},
		{"oorspronkelijk bericht", quoteLines("Klaar.", "----- Oorspronkelijk bericht -----", "Van: Jan", "oud"), "Klaar."},
		{"ursprüngliche nachricht", quoteLines("Fertig.", "-----Ursprüngliche Nachricht-----", "alt"), "Fertig."},

		{"gmail en", quoteLines("Thanks, works now.", "",
			"On Mon, Mar 3, 2025 at 10:00 AM Jan Jansen <jan@klant.nl> wrote:", "",
			"> Hello,", "> the printer is broken.", ">", ""),
			"Thanks, works now."},
		{"gmail en wrapped attribution", quoteLines("Thanks.", "",
			"On Mon, Mar 3, 2025 at 10:00 AM Jan Jansen via Support <",
			"support@deskd.test> wrote:", "", "> old"),
			"Thanks."},
		{"gmail nl", quoteLines("Dank je.", "",
			"Op ma 3 mrt 2025 om 10:00 schreef Jan Jansen <jan@klant.nl>:", "", "> oud"),
			"Dank je."},
		{"gmail nl wrapped", quoteLines("Dank je.", "",
			"Op ma 3 mrt 2025 om 10:00 schreef Jan Jansen <",
			"jan@klant.nl>:", "", "> oud"),
			"Dank je."},
		{"apple mail en", quoteLines("Thanks!", "",
			"On 3 Mar 2025, at 10:00, Jan Jansen <jan@klant.nl> wrote:", "", "> old", "> "),
			"Thanks!"},
		{"apple mail nl", quoteLines("Top.", "",
			"Op 3 mrt. 2025, om 10:00 heeft Jan Jansen <jan@klant.nl> het volgende geschreven:", "", "> oud"),
			"Top."},
		{"apple mail nl wrapped", quoteLines("Top.", "",
			"Op 3 mrt. 2025, om 10:00 heeft Jan Jansen <jan@klant.nl> het",
			"volgende geschreven:", "", "> oud"),
			"Top."},
		{"ios quotes its attribution", quoteLines("Top.", "", "Verstuurd vanaf mijn iPhone", "",
			"> Op 3 mrt 2025 om 10:00 heeft Jan <jan@klant.nl> het volgende geschreven:", "> ", "> oud"),
			quoteLines("Top.", "", "Verstuurd vanaf mijn iPhone")},
		{"thunderbird en", quoteLines("Yes.", "", "On 03-03-2025 10:00, Jan Jansen wrote:", "> old"), "Yes."},
		{"thunderbird nl", quoteLines("Ja.", "", "Op 03-03-2025 om 10:00 schreef Jan Jansen:", "> oud"), "Ja."},
		{"german", quoteLines("Ja.", "", "Am 03.03.2025 um 10:00 schrieb Jan Jansen <jan@kunde.de>:", "> alt"), "Ja."},
		{"french", quoteLines("Oui.", "", "Le lun. 3 mars 2025 à 10:00, Jan <jan@client.fr> a écrit :", "> vieux"), "Oui."},
		{"nested history", quoteLines("Reply", "",
			"On 4 Mar 2025, Piet wrote:", "> answer", ">", "> On 3 Mar 2025, Jan wrote:", ">> question"),
			"Reply"},
		{"attribution then outlook block", quoteLines("Reply", "",
			"On 4 Mar 2025, Piet wrote:", "> answer", "",
			"-----Original Message-----", "From: Jan", "question"),
			"Reply"},

		{"signature above the quote", quoteLines("Fixed.", "", "-- ", "Piet", "Support", "",
			"On 3 Mar 2025, at 10:00, Jan wrote:", "> old"),
			quoteLines("Fixed.", "", "-- ", "Piet", "Support")},
		{"inline reply", quoteLines(
			"On 3 Mar 2025, Jan wrote:", "> Is the printer on?", "Yes.", "> Which model?", "HP 4000.", "> Thanks", "> Jan"),
			quoteLines("On 3 Mar 2025, Jan wrote:", "> Is the printer on?", "Yes.", "> Which model?", "HP 4000.")},
		{"inline reply with attribution above the trailing quote", quoteLines(
			"Hi,", "> q1", "a1", "", "Jan Jansen wrote:", "> rest", "> rest"),
			quoteLines("Hi,", "> q1", "a1")},
		{"bottom-posted reply", quoteLines("On 3 Mar 2025, Jan wrote:", "> q", "", "answer", "", "-- ", "sig"),
			quoteLines("On 3 Mar 2025, Jan wrote:", "> q", "", "answer", "", "-- ", "sig")},
		{"quote header without quoted text", quoteLines("Thanks!", "", "On 3 Mar 2025, at 10:00, Jan wrote:", "", ""), "Thanks!"},
		{"quote header without quoted text, nl", quoteLines("Dank!", "Op 3 mrt 2025 schreef Jan:"), "Dank!"},

		// Not history.
		{"wrote: inside a sentence", quoteLines("I think Jan wrote: reboot it.", "I did, no luck."),
			quoteLines("I think Jan wrote: reboot it.", "I did, no luck.")},
		{"wrote: at the end of prose without a date", quoteLines("On the ticket you wrote:", "", "restart the spooler", "", "That did not help."),
			quoteLines("On the ticket you wrote:", "", "restart the spooler", "", "That did not help.")},
		{"attribution with a date followed by plain text", quoteLines("Thanks", "", "On 3 Mar 2025, Jan wrote:", "Hello, old text from an HTML mail"),
			quoteLines("Thanks", "", "On 3 Mar 2025, Jan wrote:", "Hello, old text from an HTML mail")},
		{"quote inside the text", quoteLines("As you wrote:", "> it is broken", "It is fixed now."),
			quoteLines("As you wrote:", "> it is broken", "It is fixed now.")},
		{"from line in prose", quoteLines("From: the logs I see", "that the printer is fine.", "To: be sure, reboot"),
			quoteLines("From: the logs I see", "that the printer is fine.", "To: be sure, reboot")},
		{"header block without a date", quoteLines("x", "", "From: Jan", "To: Piet", "Subject: y", "", "z"),
			quoteLines("x", "", "From: Jan", "To: Piet", "Subject: y", "", "z")},
		{"rule not followed by a header block", quoteLines("x", "________________________________", "y"),
			quoteLines("x", "________________________________", "y")},

		// Forwards are content.
		{"gmail forward", quoteLines("See below.", "", "---------- Forwarded message ---------",
			"From: Jan <jan@klant.nl>", "Date: Mon, 3 Mar 2025 at 10:00", "Subject: x", "To: <y@klant.nl>", "",
			"body", "> a quote in the forwarded mail", ""),
			quoteLines("See below.", "", "---------- Forwarded message ---------",
				"From: Jan <jan@klant.nl>", "Date: Mon, 3 Mar 2025 at 10:00", "Subject: x", "To: <y@klant.nl>", "",
				"body", "> a quote in the forwarded mail")},
		{"apple forward", quoteLines("FYI", "", "Begin forwarded message:", "",
			"From: Jan <jan@klant.nl>", "Subject: x", "Date: 3 March 2025 at 10:00:00 CET", "To: y@klant.nl", "", "body"),
			quoteLines("FYI", "", "Begin forwarded message:", "",
				"From: Jan <jan@klant.nl>", "Subject: x", "Date: 3 March 2025 at 10:00:00 CET", "To: y@klant.nl", "", "body")},
		{"thunderbird forward nl", quoteLines("Zie onder.", "-------- Doorgestuurd bericht --------", "Onderwerp: x", "Datum: 3-3-2025", "Van: Jan", "Aan: Piet", "", "body"),
			quoteLines("Zie onder.", "-------- Doorgestuurd bericht --------", "Onderwerp: x", "Datum: 3-3-2025", "Van: Jan", "Aan: Piet", "", "body")},
		{"reply above a forward is cut above it", quoteLines("Reply", "", "On 3 Mar 2025, Jan wrote:", "> ---------- Forwarded message ---------", "> body"),
			"Reply"},

		// Nothing new, and never empty otherwise.
		{"everything quoted", quoteLines("On 3 Mar 2025, Jan wrote:", "> old", "> old"), ""},
		{"only quoted lines", quoteLines("> a", ">", "> b", ""), ""},
		{"outlook block only, with its body", quoteLines(
			"From: Jan <jan@klant.nl>", "Sent: Monday, March 3, 2025 10:00 AM", "To: Support", "Subject: x", "", "body"),
			quoteLines("From: Jan <jan@klant.nl>", "Sent: Monday, March 3, 2025 10:00 AM", "To: Support", "Subject: x", "", "body")},
		{"separator only, with text", quoteLines("-----Original Message-----", "old text"), quoteLines("-----Original Message-----", "old text")},
		{"attribution only", "On 3 Mar 2025, Jan wrote:", ""},
		{"empty", "", ""},
		{"blank", " \n\t\n\u00a0\n", ""},

		// Line endings and trailing blank lines.
		{"crlf", "a\r\nb\r\n\r\n", "a\nb"},
		{"lone cr", "a\rb\r", "a\nb"},
		{"crlf attribution", "x\r\n\r\nOn 3 Mar 2025, Jan wrote:\r\n> y\r\n", "x"},
		{"keeps leading blank lines and trailing spaces", "\n  x  \n\n", "\n  x  "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StripQuoted(tc.in); got != tc.want {
				t.Errorf("StripQuoted(%q) =\n%q\nwant\n%q", tc.in, got, tc.want)
			}
		})
	}
}

// TestStripQuotedGolden runs whole mails from testdata/quote/*.txt against
// their .golden output; -update rewrites the golden files.
func TestStripQuotedGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "quote", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/quote/*.txt")
	}
	for _, in := range files {
		t.Run(filepath.Base(in), func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := StripQuoted(string(raw)) + "\n"
			golden := strings.TrimSuffix(in, ".txt") + ".golden"
			if updateQuoteGolden() {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("StripQuoted(%s) =\n%s\nwant (%s)\n%s", in, got, golden, want)
			}
		})
	}
}

// TestStripQuotedHuge: large inputs in one pass (a quadratic scan would
// time out) and long lines are not taken for attributions.
func TestStripQuotedHuge(t *testing.T) {
	var b strings.Builder
	for range 5000 {
		b.WriteString("On 3 Mar 2025, Jan wrote:\n> q\n")
	}
	b.WriteString("the end\n")
	if got := StripQuoted(b.String()); !strings.HasSuffix(got, "the end") {
		t.Errorf("lost the writer's last line")
	}
	b.Reset()
	for range 5000 {
		b.WriteString("From: x\n")
	}
	_ = StripQuoted(b.String())
	long := "On 3 Mar " + strings.Repeat("x", 1<<20) + " wrote:"
	if got := StripQuoted("text\n" + long + "\n> q"); got != "text\n"+long {
		t.Errorf("a 1 MiB line was taken for an attribution")
	}
}

// FuzzStripQuoted: never panics; the result is a prefix of the input with
// line endings normalised (so every line of it is a line of the input and
// it is never longer), has no trailing blank line, and is stable when
// applied again.
func FuzzStripQuoted(f *testing.F) {
	for _, s := range []string{
		"Thanks\n\nOn 3 Mar 2025, Jan wrote:\n> old",
		"x\r\n-----Original Message-----\r\nFrom: a\r\n",
		"Hi\n\nFrom: a\nSent: b\nTo: c\nSubject: d\n\nold",
		"On 3 Mar 2025, Jan wrote:\n> q\na\n> q",
		"Begin forwarded message:\n\nFrom: a\nDate: b\nTo: c\n",
		"________________________________\nVan: a\nVerzonden: b\nAan: c\n",
		"Op ma 3 mrt 2025 om 10:00 schreef Jan <\njan@x.nl>:\n> q",
		"> a\n\n> b\nJan wrote:\n> c",
		"\r\r\n\n",
		"\xff> \xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := StripQuoted(in)
		norm := strings.ReplaceAll(strings.ReplaceAll(in, "\r\n", "\n"), "\r", "\n")
		if len(got) > len(in) {
			t.Fatalf("StripQuoted(%q) = %q grew", in, got)
		}
		if !strings.HasPrefix(norm, got) || (got != "" && len(got) < len(norm) && norm[len(got)] != '\n') {
			t.Fatalf("StripQuoted(%q) = %q is not a prefix of whole lines", in, got)
		}
		if got != "" {
			ls := strings.Split(got, "\n")
			if strings.TrimFunc(ls[len(ls)-1], isUnicodeSpace) == "" {
				t.Fatalf("StripQuoted(%q) = %q ends in a blank line", in, got)
			}
		}
		if again := StripQuoted(got); again != got {
			t.Fatalf("StripQuoted not stable: %q -> %q -> %q", in, got, again)
		}
	})
}
