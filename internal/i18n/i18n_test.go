package i18n

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"nl": Dutch, "NL": Dutch, " nl-BE ": Dutch, "nl_NL": Dutch, "Dutch": Dutch, "nederlands": Dutch,
		"en": English, "en-GB": English, "EN_us": English, "english": English,
	} {
		if got, ok := Parse(in); !ok || got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, ok, want)
		}
		if got := Of(in); got != want {
			t.Errorf("Of(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{"", "de", "fr-NL", "x-en", "nle", "-en"} {
		if got, ok := Parse(in); ok {
			t.Errorf("Parse(%q) = %q, want none", in, got)
		}
		if got := Of(in); got != Default {
			t.Errorf("Of(%q) = %q, want the default %q", in, got, Default)
		}
	}
	if Primary("pt-BR") != "pt" || Primary(" DE ") != "de" {
		t.Error("Primary does not keep the primary subtag of any language")
	}
}

func TestNames(t *testing.T) {
	if Month("nl", time.May) != "mei" || Month("en-GB", time.March) != "March" || Month("de", time.December) != "december" {
		t.Error("month names")
	}
	if Weekday("nl", time.Monday) != "maandag" || Weekday("en", time.Sunday) != "Sunday" {
		t.Error("weekday names")
	}
}

func TestCatalogText(t *testing.T) {
	c := Catalog{
		Dutch:   {"hello": "Hallo %s", "pct": "99,9%%", "n.one": "1 dag", "n.other": "%d dagen"},
		English: {"hello": "Hello %s", "pct": "99.9%%", "n.one": "1 day", "n.other": "%d days", "only.en": "x"},
	}
	for _, tc := range []struct{ lang, key, want string }{
		{"en-GB", "hello", "Hello Anna"},
		{"nl", "hello", "Hallo Anna"},
		{"de", "hello", "Hallo Anna"}, // unknown: the default
		{"nl", "pct", "99,9%"},
		{"nl", "only.en", "x"},       // missing in Dutch: English
		{"en", "missing", "missing"}, // missing everywhere: the key
	} {
		var got string
		if strings.Contains(tc.want, "Anna") {
			got = c.Text(tc.lang, tc.key, "Anna")
		} else {
			got = c.Text(tc.lang, tc.key)
		}
		if got != tc.want {
			t.Errorf("Text(%q, %q) = %q, want %q", tc.lang, tc.key, got, tc.want)
		}
	}
	if c.Count("nl", "n", 1) != "1 dag" || c.Count("nl", "n", 0) != "0 dagen" || c.Count("en", "n", 3) != "3 days" {
		t.Error("Count")
	}
	if !c.Has("hello") || c.Has("nope") {
		t.Error("Has")
	}
}

// CheckCatalog finds each kind of break, and nothing in a whole catalog.
func TestCheckCatalog(t *testing.T) {
	whole := Catalog{
		Dutch:   {"a": "%d van %s", "h": "A\tB", "p": "100%%"},
		English: {"a": "%d of %s", "h": "A\tB", "p": "100%%"},
	}
	if errs := CheckCatalog(whole); len(errs) != 0 {
		t.Errorf("a whole catalog: %v", errs)
	}
	broken := Catalog{
		Dutch:   {"a": "%s van %d", "h": "A\tB\tC", "e": " ", "onlynl": "x"},
		English: {"a": "%d of %s", "h": "A\tB", "e": "e"},
		"de":    {},
	}
	var all []string
	for _, err := range CheckCatalog(broken) {
		all = append(all, err.Error())
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{
		`message "a" takes`,
		`message "h" has 2 columns in en, 3 in nl`,
		`nl: message "e" is empty`,
		`en lacks message "onlynl"`,
		`language "de" is not one deskd speaks`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("CheckCatalog missed %q; it said:\n%s", want, joined)
		}
	}
}

func TestVerbs(t *testing.T) {
	got := strings.Join(Verbs("%d%% of %s, %.1f and %-5s; 100%%"), " ")
	if got != "%d %s %.1f %-5s" {
		t.Errorf("Verbs = %q", got)
	}
}
