package cases

import (
	"strings"
	"testing"
)

var fuzzSubjects = []string{
	"RE: AW: [Case #12] [HOOG][bug] printer kapot",
	"[case#12]",
	"[ CASE # 12 ]",
	"Re: [Case #12] Fwd: [Case #13] x",
	"[Case #0]",
	"[Case #999999999999]",
	"[Case #18446744073709551615]",
	"[Case #99999999999999999999]",
	"Antw: WG: Doorst: AW: Re[2]: x",
	"RE [3] : [C+ase #4] y",
	"[Case #[Case #1]2]",
	"[[Case #1]Case #2]",
	"Re: Re: Re:",
	"Re:\u00a0Re: x\u2003y",
	"\xff\xfe[Case #1]\xff",
	"",
}

// FuzzTokens: Find and Strip never panic; Find(Format(n)) == n for any n > 0
// and any prefix, also in front of arbitrary text (the first token wins);
// Strip leaves no token behind and tidies white space.
func FuzzTokens(f *testing.F) {
	for i, s := range fuzzSubjects {
		f.Add(s, uint64(i+1), "Case")
	}
	f.Add("x", uint64(1e12), "Case")
	f.Add("[C+ase #1] x", uint64(7), "C+ase")
	f.Add("[#1]", uint64(3), "")
	f.Add("[a #1 #2]", uint64(2), "a #1")
	f.Add("x", uint64(5), "Ca\xffse")
	f.Fuzz(func(t *testing.T, subject string, n uint64, prefix string) {
		tk := NewTokens(prefix)

		got, ok := tk.Find(subject)
		if ok && got == 0 {
			t.Fatalf("Find(%q) = 0, true", subject)
		}
		stripped := tk.Strip(subject)
		if ok && stripped == subject {
			t.Fatalf("Find(%q) found %d but Strip changed nothing", subject, got)
		}
		if stripped != strings.TrimSpace(stripped) || strings.Contains(stripped, "  ") {
			t.Fatalf("Strip(%q) = %q: untidy white space", subject, stripped)
		}
		if len(stripped) > len(subject) {
			t.Fatalf("Strip(%q) = %q grew", subject, stripped)
		}
		if m, ok := tk.Find(stripped); ok {
			t.Fatalf("Strip(%q) = %q still holds token %d", subject, stripped, m)
		}

		if n == 0 {
			return
		}
		tok := tk.Format(n)
		if m, ok := tk.Find(tok); !ok || m != n {
			t.Fatalf("prefix %q: Find(Format(%d) = %q) = %d, %v", prefix, n, tok, m, ok)
		}
		if m, ok := tk.Find(tok + " " + subject); !ok || m != n {
			t.Fatalf("prefix %q: Find(%q) = %d, %v; want %d (first token wins)", prefix, tok+" "+subject, m, ok, n)
		}
		if s := tk.Strip(tok); s != "" {
			t.Fatalf("prefix %q: Strip(Format(%d)) = %q", prefix, n, s)
		}
	})
}

// FuzzBaseSubject: BaseSubject terminates, is idempotent, never grows the
// subject, and leaves neither a token nor a leading reply prefix.
func FuzzBaseSubject(f *testing.F) {
	for _, s := range fuzzSubjects {
		f.Add(s, "Case")
	}
	f.Add("Re: [Zaak #1] AW: x", "Zaak")
	f.Add("[ #1] Re: [#2]", "")
	f.Fuzz(func(t *testing.T, subject, prefix string) {
		tk := NewTokens(prefix)
		// Termination as a bound on steps, not a clock: BaseSubject
		// repeats one step (drop reply prefixes, strip tokens, trim) until
		// nothing changes. Each step that changes the subject must shorten
		// it, so there are at most len(subject)+1 steps; walk them here on
		// the same pieces before calling BaseSubject itself.
		s, steps := tk.Strip(subject), 0
		for {
			steps++
			n := strings.TrimSpace(tk.Strip(replyPrefix.ReplaceAllString(s, "")))
			if n == s {
				break
			}
			if len(n) >= len(s) || steps > len(subject)+1 {
				t.Fatalf("BaseSubject(%q): step %d from %q to %q does not shorten it", subject, steps, s, n)
			}
			s = n
		}
		base := tk.BaseSubject(subject)
		if base != s {
			t.Fatalf("BaseSubject(%q) = %q, the steps give %q", subject, base, s)
		}
		if again := tk.BaseSubject(base); again != base {
			t.Fatalf("BaseSubject not idempotent: %q -> %q -> %q", subject, base, again)
		}
		if len(base) > len(subject) {
			t.Fatalf("BaseSubject(%q) = %q grew", subject, base)
		}
		if base != strings.TrimSpace(base) {
			t.Fatalf("BaseSubject(%q) = %q: untrimmed", subject, base)
		}
		if m, ok := tk.Find(base); ok {
			t.Fatalf("BaseSubject(%q) = %q holds token %d", subject, base, m)
		}
		if replyPrefix.MatchString(base) {
			t.Fatalf("BaseSubject(%q) = %q starts with a reply prefix", subject, base)
		}
	})
}
