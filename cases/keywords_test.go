package cases

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseKeywords(t *testing.T) {
	for _, tc := range []struct {
		subject string
		want    Commands
	}{
		// Messy real-world subjects.
		{"RE: AW: [Covide #12] [HOOG][bug] printer kapot", Commands{Priority: PriorityHigh, SecondLine: true, Keywords: []string{"hoog", "bug"}}},
		{"Re: [Case #7][opgelost] done", Commands{Status: StatusClosed, Keywords: []string{"opgelost"}}},
		{"[Case #7] Re: [URGENT] x", Commands{Priority: PriorityUrgent, Keywords: []string{"urgent"}}},
		{"[Case #3][urgent]", Commands{Priority: PriorityUrgent, Keywords: []string{"urgent"}}},
		{"[ Urgent ]", Commands{Priority: PriorityUrgent, Keywords: []string{"urgent"}}},
		{"[\u00a0hoog\u3000] x", Commands{Priority: PriorityHigh, Keywords: []string{"hoog"}}},
		{"[hoog] [bug] [rfc]", Commands{Priority: PriorityHigh, SecondLine: true, Kind: KindChange, Keywords: []string{"hoog", "bug", "rfc"}}},
		{"[hoog][bug]", Commands{Priority: PriorityHigh, SecondLine: true, Keywords: []string{"hoog", "bug"}}},

		// The whole vocabulary (R5, R6, R7, R10, R11c, R14).
		{"[spoed]", Commands{Priority: PriorityUrgent, Keywords: []string{"spoed"}}},
		{"[high]", Commands{Priority: PriorityHigh, Keywords: []string{"high"}}},
		{"[medium]", Commands{Priority: PriorityMedium, Keywords: []string{"medium"}}},
		{"[normaal]", Commands{Priority: PriorityMedium, Keywords: []string{"normaal"}}},
		{"[Normal]", Commands{Priority: PriorityMedium, Keywords: []string{"normal"}}},
		{"[laag]", Commands{Priority: PriorityLow, Keywords: []string{"laag"}}},
		{"[LOW]", Commands{Priority: PriorityLow, Keywords: []string{"low"}}},
		{"[pending]", Commands{Status: StatusPending, Keywords: []string{"pending"}}},
		{"[wacht]", Commands{Status: StatusPending, Keywords: []string{"wacht"}}},
		{"[wachten]", Commands{Status: StatusPending, Keywords: []string{"wachten"}}},
		{"[closed]", Commands{Status: StatusClosed, Keywords: []string{"closed"}}},
		{"[close]", Commands{Status: StatusClosed, Keywords: []string{"close"}}},
		{"[resolved]", Commands{Status: StatusClosed, Keywords: []string{"resolved"}}},
		{"[gesloten]", Commands{Status: StatusClosed, Keywords: []string{"gesloten"}}},
		{"[open]", Commands{Status: StatusOpen, Keywords: []string{"open"}}},
		{"[reopen]", Commands{Status: StatusOpen, Keywords: []string{"reopen"}}},
		{"[heropen]", Commands{Status: StatusOpen, Keywords: []string{"heropen"}}},
		{"[incident]", Commands{Kind: KindIncident, Keywords: []string{"incident"}}},
		{"[vraag]", Commands{Kind: KindQuestion, Keywords: []string{"vraag"}}},
		{"[question]", Commands{Kind: KindQuestion, Keywords: []string{"question"}}},
		{"[change]", Commands{Kind: KindChange, Keywords: []string{"change"}}},
		{"[RFC]", Commands{Kind: KindChange, Keywords: []string{"rfc"}}},
		{"[wijziging]", Commands{Kind: KindChange, Keywords: []string{"wijziging"}}},
		{"[bug]", Commands{SecondLine: true, Keywords: []string{"bug"}}},
		{"[note]", Commands{Note: true, Keywords: []string{"note"}}},
		{"[intern]", Commands{Note: true, Keywords: []string{"intern"}}},
		{"[internal]", Commands{Note: true, Keywords: []string{"internal"}}},
		{"[notitie]", Commands{Note: true, Keywords: []string{"notitie"}}},

		// On behalf of a customer (R6).
		{"Fwd: [voor jan@klant.nl] telefoon: printer", Commands{ForCustomer: "jan@klant.nl", Keywords: []string{"voor jan@klant.nl"}}},
		{"[for <Jan@Klant.NL>] x", Commands{ForCustomer: "jan@klant.nl", Keywords: []string{"for jan@klant.nl"}}},
		{"[voor: a@b.nl]", Commands{ForCustomer: "a@b.nl", Keywords: []string{"voor a@b.nl"}}},
		{"[VOOR:a@b.nl]", Commands{ForCustomer: "a@b.nl", Keywords: []string{"voor a@b.nl"}}},
		{"[namens < a@b.nl >]", Commands{ForCustomer: "a@b.nl", Keywords: []string{"namens a@b.nl"}}},
		{"[On  Behalf\u00a0of a.b+c@sub.b.nl]", Commands{ForCustomer: "a.b+c@sub.b.nl", Keywords: []string{"on behalf of a.b+c@sub.b.nl"}}},
		{"[for: <a@localhost>]", Commands{ForCustomer: "a@localhost", Keywords: []string{"for a@localhost"}}},
		{"[voor josé@bücher.de]", Commands{ForCustomer: "josé@bücher.de", Keywords: []string{"voor josé@bücher.de"}}},
		{"[voor a@b.nl][hoog]", Commands{ForCustomer: "a@b.nl", Priority: PriorityHigh, Keywords: []string{"voor a@b.nl", "hoog"}}},
		{"[voor a@b.nl][voor A@B.nl]", Commands{ForCustomer: "a@b.nl", Keywords: []string{"voor a@b.nl"}}},
		{"[voor a@b.nl][for a@b.nl]", Commands{ForCustomer: "a@b.nl", Keywords: []string{"voor a@b.nl", "for a@b.nl"}}},
		// Not an address, so not a keyword.
		{"[voor jan]", Commands{}},
		{"[voor jan jansen@klant.nl]", Commands{}},
		{"[voor a@b@c.nl]", Commands{}},
		{"[voor @b.nl]", Commands{}},
		{"[voor a@]", Commands{}},
		{"[voor a@b..nl]", Commands{}},
		{"[voor .a@b.nl]", Commands{}},
		{"[voor a@-b.nl]", Commands{}},
		{"[voor a@b.nl.]", Commands{}},
		{"[voor a\x01@b.nl]", Commands{}},
		{"[voor a@b\xff.nl]", Commands{}},
		{"[voor \"a b\"@b.nl]", Commands{}},
		{"[voor <a@b.nl]", Commands{}},
		{"[voorjan@b.nl]", Commands{}},
		// A case token is never a keyword, whatever the prefix.
		{"[hoog #12]", Commands{}},
		{"[voor a@b.nl #12]", Commands{}},
		{"[#12]", Commands{}},
		{"[voor a@b.nl, hoog]", Commands{}},
		{"[for review]", Commands{}},
		{"[voor]", Commands{}},
		{"[nameſ a@b.nl]", Commands{}}, // (?i) folds ſ to s; deskd does not

		// Several keywords in one bracket: only when all are keywords.
		{"[hoog, bug]", Commands{Priority: PriorityHigh, SecondLine: true, Keywords: []string{"hoog", "bug"}}},
		{"[hoog bug]", Commands{Priority: PriorityHigh, SecondLine: true, Keywords: []string{"hoog", "bug"}}},
		{"[hoog;bug,,rfc]", Commands{Priority: PriorityHigh, SecondLine: true, Kind: KindChange, Keywords: []string{"hoog", "bug", "rfc"}}},
		{"[hoog risico] x", Commands{}},
		{"[Low priority] x", Commands{}},
		{"[change request]", Commands{}},
		{"[,]", Commands{}},

		// Duplicates and conflicts.
		{"[hoog][HOOG]", Commands{Priority: PriorityHigh, Keywords: []string{"hoog"}}},
		{"[hoog][high]", Commands{Priority: PriorityHigh, Keywords: []string{"hoog", "high"}}},
		{"[bug] [bug]", Commands{SecondLine: true, Keywords: []string{"bug"}}},
		{"[hoog][laag] x", Commands{Keywords: []string{"hoog", "laag"}, Conflicts: []string{"[hoog] and [laag] both set the priority"}}},
		{"[urgent] x [laag]", Commands{Keywords: []string{"urgent", "laag"}, Conflicts: []string{"[urgent] and [laag] both set the priority"}}},
		{"[hoog][high][laag][bug]", Commands{SecondLine: true, Keywords: []string{"hoog", "high", "laag", "bug"}, Conflicts: []string{"[hoog], [high] and [laag] all set the priority"}}},
		{"[open][closed][vraag][rfc][hoog]", Commands{Priority: PriorityHigh, Keywords: []string{"open", "closed", "vraag", "rfc", "hoog"}, Conflicts: []string{
			"[open] and [closed] both set the status", "[vraag] and [rfc] both set the kind"}}},
		{"[voor a@b.nl][for c@d.nl]", Commands{Keywords: []string{"voor a@b.nl", "for c@d.nl"}, Conflicts: []string{"[voor a@b.nl] and [for c@d.nl] both set the customer"}}},

		// Not keywords.
		{"", Commands{}},
		{"urgent: printer kapot, hoog", Commands{}},
		{"Re: [Case #12] printer", Commands{}},
		{"[EXTERNAL] [SPAM] [PATCH] [Covide #12]", Commands{}},
		{"[urgent!]", Commands{}},
		{"[urgentx]", Commands{}},
		{"(urgent) {hoog} <bug>", Commands{}},
		{"［urgent］", Commands{}}, // full-width brackets
		{"[ſpoed]", Commands{}},  // ſ upper-cases to S, yet is not an s
		{"[]", Commands{}},
		{"[   ]", Commands{}},
		{"[hoog\u200b]", Commands{}}, // zero-width space is not white space

		// Nested and unbalanced brackets: innermost pairs count only when
		// no matched pair encloses them.
		{"[[hoog]", Commands{Priority: PriorityHigh, Keywords: []string{"hoog"}}},
		{"[hoog]]", Commands{Priority: PriorityHigh, Keywords: []string{"hoog"}}},
		{"]][hoog][[", Commands{Priority: PriorityHigh, Keywords: []string{"hoog"}}},
		{"[[hoog]bug]", Commands{}},
		{"[Case [hoog]#12]", Commands{}},
		{"[a [b [hoog] c] d]", Commands{}},
		{"[ [hoog] [[bug]", Commands{Priority: PriorityHigh, SecondLine: true, Keywords: []string{"hoog", "bug"}}},
		{"[x] [[hoog] y]", Commands{}},
		{"[hoog", Commands{}},
		{"hoog]", Commands{}},
	} {
		got := ParseKeywords(tc.subject)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseKeywords(%q) =\n  %+v\nwant\n  %+v", tc.subject, got, tc.want)
		}
		if got.Empty() != (len(tc.want.Keywords) == 0) {
			t.Errorf("ParseKeywords(%q).Empty() = %v", tc.subject, got.Empty())
		}
	}
}

func TestStripKeywords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"RE: AW: [Covide #12] [HOOG][bug] printer kapot", "RE: AW: [Covide #12] printer kapot"},
		{"RE: AW: [Case #12] [HOOG][bug] printer kapot", "RE: AW: [Case #12] printer kapot"},
		{"Re: [Case #7][opgelost] done", "Re: [Case #7] done"},
		{"[Case #7] Re: [URGENT] x", "[Case #7] Re: x"},
		{"[Case #3][urgent]", "[Case #3]"},
		{"Fwd: [voor jan@klant.nl] telefoon: printer", "Fwd: telefoon: printer"},
		{"[hoog][laag] x", "x"}, // conflicting keywords are keywords too
		{"[hoog][bug]", ""},
		{"[ Urgent ]", ""},
		{"x[hoog]y", "x y"},
		{"[hoog risico] x", "[hoog risico] x"},
		{"[EXTERNAL] [SPAM] x", "[EXTERNAL] [SPAM] x"},
		{"[Case [hoog]#12] x", "[Case [hoog]#12] x"},
		{"[[hoog]bug]", "[[hoog]bug]"},
		{"[[hoog] x", "[ x"},
		{"  lots \t of\u00a0 space  ", "lots of space"},
		{"Re:  [hoog]  Printer", "Re: Printer"},
		{"", ""},
	} {
		if got := StripKeywords(tc.in); got != tc.want {
			t.Errorf("StripKeywords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestKeywordsKeepToken: the case token survives StripKeywords and is
// found in the stripped subject as in the original.
func TestKeywordsKeepToken(t *testing.T) {
	tk := NewTokens("Case")
	for _, s := range []string{
		"RE: AW: [Case #12] [HOOG][bug] printer kapot",
		"[Case #3][urgent]",
		"[urgent][Case #3]",
		"[Case #3][Case #4][hoog]",
		"[Case [hoog]#12] [Case #5]", // must not become "[Case #12]"
	} {
		n, ok := tk.Find(s)
		m, ok2 := tk.Find(StripKeywords(s))
		if n != m || ok != ok2 {
			t.Errorf("Find(%q) = %d, %v; after StripKeywords %d, %v", s, n, ok, m, ok2)
		}
	}
}

// TestParseKeywordsHuge: a long subject of brackets parses in one pass
// (the test would time out on quadratic work) and keeps subject order.
func TestParseKeywordsHuge(t *testing.T) {
	s := strings.Repeat("[hoog][", 50000) + strings.Repeat("]", 50000)
	_ = ParseKeywords(s)
	_ = StripKeywords(s)
	s = strings.Repeat("[x [", 25000) + "[bug]" + strings.Repeat("]", 75000)
	if c := ParseKeywords(s); !c.Empty() {
		t.Errorf("nested [bug] recognised: %v", c.Keywords)
	}
	s = strings.Repeat("[", 75000) + "[bug]" + strings.Repeat(" x", 25000)
	if c := ParseKeywords(s); !c.SecondLine {
		t.Errorf("[bug] under unmatched '[' not recognised")
	}
	s = "[voor " + strings.Repeat("a", 1<<18) + "@b.nl]"
	if c := ParseKeywords(s); !c.Empty() {
		t.Errorf("256 KiB local part accepted")
	}
}

var fuzzKeywordSubjects = []string{
	"RE: AW: [Covide #12] [HOOG][bug] printer kapot",
	"Re: [Case #7][opgelost] done",
	"[Case #7] Re: [URGENT] x",
	"Fwd: [voor jan@klant.nl] telefoon: printer",
	"[for <a@b.nl>][hoog, bug]",
	"[on behalf of: a@b]",
	"[hoog][laag] x",
	"[ Urgent ]",
	"[Case #3][urgent]",
	"[Case [hoog]#12]",
	"[[hoog]bug]",
	"]][hoog][[",
	"[\u00a0hoog\u3000]",
	"\xff[hoog\xfe]",
	"",
}

// FuzzKeywords: ParseKeywords and StripKeywords never panic; a dimension in
// conflict is unset; Keywords are lower-case, distinct and without
// brackets; ForCustomer is an address; StripKeywords never grows the
// subject, tidies white space, leaves no keyword behind (it creates no new
// bracket) and changes nothing but white space when there is none; the case
// token found before is found after.
func FuzzKeywords(f *testing.F) {
	for _, s := range fuzzKeywordSubjects {
		f.Add(s)
	}
	tk := NewTokens("Case")
	f.Fuzz(func(t *testing.T, subject string) {
		c := ParseKeywords(subject)
		stripped := StripKeywords(subject)

		seen := map[string]bool{}
		for _, k := range c.Keywords {
			if k == "" || seen[k] || strings.ContainsAny(k, "[]") || (utf8.ValidString(k) && k != strings.ToLower(k)) {
				t.Fatalf("ParseKeywords(%q): bad keyword %q in %q", subject, k, c.Keywords)
			}
			seen[k] = true
		}
		for _, conf := range c.Conflicts {
			for dim, set := range map[string]bool{
				"priority": c.Priority != "", "status": c.Status != "",
				"kind": c.Kind != "", "customer": c.ForCustomer != "",
			} {
				if strings.HasSuffix(conf, " set the "+dim) && set {
					t.Fatalf("ParseKeywords(%q): %q but %s is set: %+v", subject, conf, dim, c)
				}
			}
		}
		if a := c.ForCustomer; a != "" && (strings.Count(a, "@") != 1 || a != strings.ToLower(a) || !validAddrSpec(a)) {
			t.Fatalf("ParseKeywords(%q): ForCustomer %q", subject, a)
		}
		if c.Empty() && (c.Priority != "" || c.Status != "" || c.Kind != "" || c.SecondLine || c.Note || c.ForCustomer != "" || len(c.Conflicts) > 0) {
			t.Fatalf("ParseKeywords(%q) is Empty but sets %+v", subject, c)
		}

		if len(stripped) > len(subject) {
			t.Fatalf("StripKeywords(%q) = %q grew", subject, stripped)
		}
		if stripped != strings.TrimSpace(stripped) || strings.Contains(stripped, "  ") {
			t.Fatalf("StripKeywords(%q) = %q: untidy white space", subject, stripped)
		}
		if c.Empty() && stripped != strings.Join(strings.Fields(subject), " ") {
			t.Fatalf("StripKeywords(%q) = %q but there is no keyword", subject, stripped)
		}
		if again := ParseKeywords(stripped); !again.Empty() {
			t.Fatalf("StripKeywords(%q) = %q still holds %q", subject, stripped, again.Keywords)
		}
		n, ok := tk.Find(subject)
		if m, ok2 := tk.Find(stripped); ok && (!ok2 || m != n) {
			t.Fatalf("token %d of %q became %d, %v in %q", n, subject, m, ok2, stripped)
		}
	})
}
