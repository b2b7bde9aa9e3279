package mail

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"deskd/cases"
	"deskd/internal/corpus"
)

func TestCorpus(t *testing.T) {
	entries := corpus.Entries(t)
	// allowHuman lists is_auto=yes messages that the parser classifies as
	// a person, each with the reason the index is wrong for deskd's
	// purposes. Empty: every machine message of the corpus is recognised.
	allowHuman := map[string]string{}
	// allowAuto lists is_auto=no messages classified as machine mail, with
	// the reason (these cost a missing acknowledgement, never a loop).
	// Empty: no person's mail of the corpus is taken for a machine's.
	allowAuto := map[string]string{}
	recv := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	var parseErrs, agree, comparable, missedAuto, takenForMachine int
	for _, e := range entries {
		raw := corpus.Read(t, e)
		in, perr := Parse(raw, recv, ParseOptions{})
		if in == nil {
			t.Fatalf("%s: nil Inbound", e.Path)
		}
		if perr != nil {
			var pe *ParseError
			if !errors.As(perr, &pe) || pe.Reason == "" {
				t.Errorf("%s: error is not a *ParseError with a reason: %v", e.Path, perr)
			}
			parseErrs++
			t.Logf("parse error %s: %v", e.Path, perr)
		}
		checkInvariants(t, e.Path, in, raw, recv)

		if e.IsAuto != "yes" && e.IsAuto != "no" {
			continue // "mixed": an mbox holding several messages
		}
		comparable++
		got := in.Auto.IsAuto()
		want := e.IsAuto == "yes"
		if got == want {
			agree++
			continue
		}
		if want {
			if why, ok := allowHuman[e.Path]; ok {
				t.Logf("allowed: %s is_auto=yes classified as person: %s", e.Path, why)
				agree++
				continue
			}
			missedAuto++
			t.Errorf("MACHINE MAIL CLASSIFIED AS PERSON (would get an ack): %s [%s] subject=%q from=%q", e.Path, e.Category, in.Subject, in.From.Email)
			continue
		}
		if why, ok := allowAuto[e.Path]; ok {
			t.Logf("allowed: %s is_auto=no classified as machine: %s", e.Path, why)
			agree++
			continue
		}
		// A person's mail taken for a machine's gets no acknowledgement:
		// none is allowed unless listed in allowAuto with its reason.
		takenForMachine++
		t.Errorf("PERSON'S MAIL CLASSIFIED AS MACHINE (would get no ack): %s [%s] reasons=%v subject=%q from=%q", e.Path, e.Category, in.Auto.Reasons, in.Subject, in.From.Email)
	}
	pct := 100 * float64(agree) / float64(max(comparable, 1))
	t.Logf("corpus: %d parsed, %d parse errors, auto agreement %d/%d (%.2f%%; %d mixed-mbox file(s) not compared)",
		len(entries), parseErrs, agree, comparable, pct, len(entries)-comparable)
	if missedAuto > 0 {
		t.Errorf("%d machine mails classified as people", missedAuto)
	}
	if takenForMachine > 0 {
		t.Errorf("%d people's mails classified as machines'", takenForMachine)
	}
	if comparable != len(entries)-1 {
		t.Errorf("compared %d files, want all %d but the one mixed mbox", comparable, len(entries)-1)
	}
}

// checkInvariants are the promises Parse makes for any input.
func checkInvariants(t testing.TB, name string, in *cases.Inbound, raw []byte, recv time.Time) {
	t.Helper()
	if in.DedupeKey == "" {
		t.Errorf("%s: empty DedupeKey", name)
	}
	if in.Size != len(raw) || len(in.Raw) != len(raw) {
		t.Errorf("%s: Size %d / len(Raw) %d, want %d", name, in.Size, len(in.Raw), len(raw))
	}
	if !in.ReceivedAt.Equal(recv) {
		t.Errorf("%s: ReceivedAt %v, want %v", name, in.ReceivedAt, recv)
	}
	if strings.ContainsAny(in.Subject, "\r\n") {
		t.Errorf("%s: subject has a line break: %q", name, in.Subject)
	}
	strs := map[string]string{
		"subject": in.Subject, "text": in.Text, "message-id": in.MessageID, "return-path": in.ReturnPath,
		"loop": in.LoopHeader, "from.name": in.From.Name, "from.email": in.From.Email,
		"bounced-id": in.Auto.BouncedMessageID,
	}
	if in.Sender != nil {
		strs["sender"] = in.Sender.Name + in.Sender.Email
	}
	for _, l := range [][]cases.Address{in.To, in.Cc, in.ReplyTo} {
		for _, a := range l {
			strs["addr:"+a.Email] = a.Name + a.Email
			if a.Email != strings.ToLower(a.Email) {
				t.Errorf("%s: address not lower-cased: %q", name, a.Email)
			}
		}
	}
	for _, l := range [][]string{in.InReplyTo, in.References, in.AuthResults, in.Problems, in.Auto.Reasons, in.Auto.BouncedRecipients} {
		for _, s := range l {
			strs["list:"+s] = s
		}
	}
	for _, a := range in.Attachments {
		strs["attachment:"+a.Filename] = a.Filename + a.ContentType
	}
	for k, s := range strs {
		if !utf8.ValidString(s) {
			t.Errorf("%s: %s is not valid UTF-8: %q", name, k, s)
		}
	}
	if strings.Contains(in.Text, "\r") {
		t.Errorf("%s: text has CR", name)
	}
	if len(in.Text) > maxTextBytes {
		t.Errorf("%s: text longer than %d", name, maxTextBytes)
	}
}
