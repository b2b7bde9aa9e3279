package mail

import (
	netmail "net/mail"
	"regexp"
	"strings"
	"time"
)

var (
	dateCommentRE = regexp.MustCompile(`\([^()]*\)`)
	dateSpaceRE   = regexp.MustCompile(`\s+`)
)

// parseDate parses a Date value with net/mail (RFC 5322 §3.3 including the
// obsolete forms) and, failing that, a few layouts seen in the wild.
func parseDate(v string) (time.Time, bool) {
	if t, err := netmail.ParseDate(v); err == nil {
		return t, true
	}
	s := strings.TrimSpace(dateSpaceRE.ReplaceAllString(dateCommentRE.ReplaceAllString(v, " "), " "))
	if t, err := netmail.ParseDate(s); err == nil {
		return t, true
	}
	for _, layout := range []string{
		"Mon, 2 Jan 2006 15:04:05 -0700 MST",
		"Mon, 2 Jan 2006 15:04 -0700",
		"2 Jan 2006 15:04 -0700",
		"Mon, 2 Jan 06 15:04:05 -0700",
		"Mon, 2 Jan 06 15:04:05 MST",
		"Mon Jan 2 15:04:05 2006",
		"Mon Jan 2 15:04:05 MST 2006",
		"Mon, 2 Jan 2006 15:04:05",
		time.RFC3339,
		"2006-01-02 15:04:05 -0700",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
