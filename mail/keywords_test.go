package mail

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"deskd/cases"
)

// TestParseSubjectKeywords: staff keywords survive RFC 2047 encoding of the
// Subject: cases.ParseKeywords reads the decoded in.Subject, so a keyword
// split over two encoded words, or half encoded and half plain, still counts.
func TestParseSubjectKeywords(t *testing.T) {
	for _, tc := range []struct {
		name, subject string
		wantSubject   string
		want          cases.Commands
		wantStripped  string
	}{
		{
			name:         "utf-8 Q",
			subject:      "=?UTF-8?Q?RE:_[HOOG][bug]_printer?=",
			wantSubject:  "RE: [HOOG][bug] printer",
			want:         cases.Commands{Priority: cases.PriorityHigh, SecondLine: true, Keywords: []string{"hoog", "bug"}},
			wantStripped: "RE: printer",
		},
		{
			// RFC 2047 §6.2: white space between adjacent encoded words
			// is dropped, so "[ho" + "og]" is one keyword.
			name:         "iso-8859-1 B split over two encoded words",
			subject:      "=?ISO-8859-1?B?U3RvcmluZyBbaG8=?=\r\n =?ISO-8859-1?B?b2ddW0JVR10gZ2XvbnRlcmVzc2VlcmQ=?=",
			wantSubject:  "Storing [hoog][BUG] geïnteresseerd",
			want:         cases.Commands{Priority: cases.PriorityHigh, SecondLine: true, Keywords: []string{"hoog", "bug"}},
			wantStripped: "Storing geïnteresseerd",
		},
		{
			name:         "keyword in an encoded word next to plain text",
			subject:      "Re: [Case #7] =?utf-8?q?=5Bopgelost=5D?= done",
			wantSubject:  "Re: [Case #7] [opgelost] done",
			want:         cases.Commands{Status: cases.StatusClosed, Keywords: []string{"opgelost"}},
			wantStripped: "Re: [Case #7] done",
		},
		{
			name:         "plain keyword next to an encoded word",
			subject:      "[urgent] =?iso-8859-1?q?storing_caf=E9?=",
			wantSubject:  "[urgent] storing café",
			want:         cases.Commands{Priority: cases.PriorityUrgent, Keywords: []string{"urgent"}},
			wantStripped: "storing café",
		},
		{
			name:         "on behalf, base64 utf-8",
			subject:      "Fwd: =?utf-8?B?W3Zvb3IgamFuQGtsYW50Lm5sXSB0ZWxlZm9vbjogc3RvcmluZyDigqw=?=",
			wantSubject:  "Fwd: [voor jan@klant.nl] telefoon: storing €",
			want:         cases.Commands{ForCustomer: "jan@klant.nl", Keywords: []string{"voor jan@klant.nl"}},
			wantStripped: "Fwd: telefoon: storing €",
		},
		{
			// The parser turns the no-break spaces into plain ones;
			// ParseKeywords would take either.
			name:         "encoded no-break space inside the bracket",
			subject:      "=?utf-8?q?[=C2=A0Hoog=C2=A0]_x?=",
			wantSubject:  "[ Hoog ] x",
			want:         cases.Commands{Priority: cases.PriorityHigh, Keywords: []string{"hoog"}},
			wantStripped: "x",
		},
		{
			name:         "folded plain subject",
			subject:      "RE: AW: [Covide #12]\r\n [HOOG][bug] printer kapot",
			wantSubject:  "RE: AW: [Covide #12] [HOOG][bug] printer kapot",
			want:         cases.Commands{Priority: cases.PriorityHigh, SecondLine: true, Keywords: []string{"hoog", "bug"}},
			wantStripped: "RE: AW: [Covide #12] printer kapot",
		},
		{
			name:         "encoded unknown bracket is left alone",
			subject:      "=?utf-8?q?[EXTERNAL]_[hoog_risico]?=",
			wantSubject:  "[EXTERNAL] [hoog risico]",
			want:         cases.Commands{},
			wantStripped: "[EXTERNAL] [hoog risico]",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "From: Piet <piet@deskd.example>\r\n" +
				"To: support@deskd.example\r\n" +
				"Subject: " + tc.subject + "\r\n" +
				"Message-ID: <kw-" + strings.ReplaceAll(tc.name, " ", "-") + "@deskd.example>\r\n" +
				"Date: Mon, 3 Mar 2025 09:30:00 +0100\r\n" +
				"MIME-Version: 1.0\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\n" +
				"\r\n" +
				"body\r\n"
			in, err := Parse([]byte(raw), time.Date(2025, 3, 3, 8, 30, 0, 0, time.UTC), ParseOptions{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if in.Subject != tc.wantSubject {
				t.Errorf("Subject = %q, want %q", in.Subject, tc.wantSubject)
			}
			if got := cases.ParseKeywords(in.Subject); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseKeywords(%q) =\n  %+v\nwant\n  %+v", in.Subject, got, tc.want)
			}
			if got := cases.StripKeywords(in.Subject); got != tc.wantStripped {
				t.Errorf("StripKeywords(%q) = %q, want %q", in.Subject, got, tc.wantStripped)
			}
		})
	}
}
