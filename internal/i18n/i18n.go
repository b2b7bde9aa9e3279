// Package i18n is the one scheme for deskd's Dutch and English wording:
// how a language tag is read, the names of months and weekdays, and
// message catalogs that every package with words for people (mails in
// templates, reports, the customer portal) keeps its text in.
//
// A catalog is a map from language to message key to a fmt format. Each
// package owns its catalog, next to the code that shows it; this package
// owns the rules all catalogs follow, and CheckCatalog is the one test of
// them: every language has every key, the same fmt verbs in the same
// order, and the same number of tab-separated columns.
//
// Dutch is the default: it is the agreement's language (SLA.md), so an
// unknown or empty tag gets Dutch. i18n imports only the standard library.
package i18n

import (
	"fmt"
	"strings"
	"time"
)

// The languages deskd speaks, as primary language subtags (BCP 47).
const (
	Dutch   = "nl"
	English = "en"
	// Default is the language of an unknown or empty tag: the agreement's.
	Default = Dutch
)

// Parse reads a language tag as people and mail clients write it ("en",
// "en-GB", "EN_us", "nl-BE", "English") and returns the language deskd
// speaks for it, or false when it speaks none of it. Only the primary
// subtag counts.
func Parse(tag string) (string, bool) {
	switch Primary(tag) {
	case Dutch, "dutch", "nederlands":
		return Dutch, true
	case English, "english":
		return English, true
	}
	return "", false
}

// Primary is the primary subtag of a language tag, lower case: "en-GB"
// and "EN" give "en". Operators' mail templates may be in any language
// (templates looks them up by it); the words deskd itself writes are in
// the languages Parse knows.
func Primary(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	return tag
}

// Of is the language of tag: Parse's, or Default.
func Of(tag string) string {
	if l, ok := Parse(tag); ok {
		return l
	}
	return Default
}

var (
	months = map[string][12]string{
		Dutch:   {"januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"},
		English: {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
	}
	// Dutch writes day and month names in lower case.
	weekdays = map[string][7]string{
		Dutch:   {"zondag", "maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag"},
		English: {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
	}
)

// Month names month m in the language of tag.
func Month(tag string, m time.Month) string { return months[Of(tag)][m-1] }

// Weekday names day d in the language of tag.
func Weekday(tag string, d time.Weekday) string { return weekdays[Of(tag)][d] }

// Catalog holds a package's messages: language → key → fmt format (a
// literal percent sign is "%%"). Keep one per package, checked by
// CheckCatalog in that package's tests.
type Catalog map[string]map[string]string

// Has reports whether the catalog has key (in any language: CheckCatalog
// makes that every language).
func (c Catalog) Has(key string) bool {
	_, ok := c.lookup(Default, key)
	return ok
}

// Text is key's message in the language of tag, formatted with args. A key
// missing in that language falls back to Default, then English, then to
// the key itself, which CheckCatalog makes a test failure.
func (c Catalog) Text(tag, key string, args ...any) string {
	msg, ok := c.lookup(Of(tag), key)
	if !ok {
		return key
	}
	return fmt.Sprintf(msg, args...)
}

func (c Catalog) lookup(lang, key string) (string, bool) {
	for _, l := range [...]string{lang, Default, English} {
		if msg, ok := c[l][key]; ok {
			return msg, true
		}
	}
	return "", false
}

// Count is "<n> <unit>" from the catalog: key+".one" for 1 and
// key+".other" (a format taking n) for any other number, so each language
// says its own plural.
func (c Catalog) Count(tag, key string, n int64) string {
	if n == 1 {
		return c.Text(tag, key+".one")
	}
	return c.Text(tag, key+".other", n)
}

// CheckCatalog lists what breaks the catalog rules: a language that lacks
// a key another has, an empty message, or messages of one key whose fmt
// verbs or tab-separated columns differ between languages. Tests call it;
// nil means the catalog is whole.
func CheckCatalog(c Catalog) []error {
	var errs []error
	for _, a := range []string{Dutch, English} {
		if _, ok := c[a]; !ok {
			errs = append(errs, fmt.Errorf("no %s messages", a))
		}
	}
	for lang, msgs := range c {
		if _, ok := Parse(lang); !ok || Of(lang) != lang {
			errs = append(errs, fmt.Errorf("language %q is not one deskd speaks", lang))
		}
		for key, msg := range msgs {
			if strings.TrimSpace(msg) == "" {
				errs = append(errs, fmt.Errorf("%s: message %q is empty", lang, key))
			}
			for other, otherMsgs := range c {
				if other == lang {
					continue
				}
				o, ok := otherMsgs[key]
				if !ok {
					errs = append(errs, fmt.Errorf("%s lacks message %q that %s has", other, key, lang))
					continue
				}
				if lang > other {
					continue // each pair once
				}
				if a, b := Verbs(msg), Verbs(o); strings.Join(a, " ") != strings.Join(b, " ") {
					errs = append(errs, fmt.Errorf("message %q takes %q in %s, %q in %s", key, a, lang, b, other))
				}
				if a, b := strings.Count(msg, "\t"), strings.Count(o, "\t"); a != b {
					errs = append(errs, fmt.Errorf("message %q has %d columns in %s, %d in %s", key, a+1, lang, b+1, other))
				}
			}
		}
	}
	return errs
}

// Verbs lists the fmt verbs of a format that take an argument, in order
// ("%d", "%s", "%.1f"); "%%" takes none.
func Verbs(format string) []string {
	var vs []string
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("+-# 0123456789.[]*", format[j]) >= 0 {
			j++
		}
		if j >= len(format) {
			break
		}
		if format[j] != '%' {
			vs = append(vs, format[i:j+1])
		}
		i = j
	}
	return vs
}
