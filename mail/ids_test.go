package mail

import (
	"fmt"
	"strings"
	"testing"
)

func TestNormalizeMessageID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<abc@example.nl>", "abc@example.nl"},
		{"  <abc@example.nl>  ", "abc@example.nl"},
		{"abc@example.nl", "abc@example.nl"},
		{"<abc@example.nl> (added by postmaster)", "abc@example.nl"},
		{"(comment) <abc@example.nl>", "abc@example.nl"},
		{"<1234   @   local(blah)  .machine .example>", "1234@local.machine.example"}, // RFC 5322 A.6.3 obsolete form
		{"<abc@example.nl", "abc@example.nl"},
		{"<\"quoted local\"@example.nl>", "quotedlocal@example.nl"},
		{"<ABC@Example.NL>", "ABC@Example.NL"}, // case is kept: ids are compared exactly
		{"", ""},
		{"   ", ""},
		{"<>", ""},
		{"< >", ""},
		{"(only a comment)", ""},
		{"bare-token", "bare-token"},
		{"two words", ""},
		{"<a@b> <c@d>", "a@b"},
		{"<" + strings.Repeat("x", 1000) + "@y>", ""},
		{"<caf\xe9@x>", "café@x"},
	}
	for _, tt := range tests {
		if got := NormalizeMessageID(tt.in); got != tt.want {
			t.Errorf("NormalizeMessageID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseMessageIDList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"<a@x> <b@x>", []string{"a@x", "b@x"}},
		{"<a@x>,<b@x>, <c@x>", []string{"a@x", "b@x", "c@x"}},
		{"<a@x>\r\n\t<b@x>", []string{"a@x", "b@x"}},
		{"<a@x> <b@x> <a@x>", []string{"a@x", "b@x"}},
		{"a@x b@x", []string{"a@x", "b@x"}},                    // no brackets at all
		{"a@x, b@x", []string{"a@x", "b@x"}},                   // commas
		{"<a@x> junk words b@x <c@x>", []string{"a@x", "c@x"}}, // bare words beside bracketed ids are prose
		{`"Joe's message of Tue, 1 Jan" <a@x>`, []string{"a@x"}},
		{"Your message of Tue, 1 Jan 2002 <a@x> (comment <not@id>)", []string{"a@x"}},
		{"<a@x", []string{"a@x"}},
		{"<a@x <b@x>", []string{"a@x", "b@x"}},
		{"<>", nil},
		{"", nil},
		{"no ids here", nil},
		{"<a@x>>>><<<b@x>", []string{"a@x", "b@x"}},
		{"<a@x b@y", []string{"a@x"}},
		{"<a,b@x>", []string{"ab@x"}}, // found by FuzzParseMessageIDList: ids must be fixed points
	}
	for _, tt := range tests {
		got := ParseMessageIDList(tt.in)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) || len(got) != len(tt.want) {
			t.Errorf("ParseMessageIDList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDedupeKey(t *testing.T) {
	raw := []byte("From: a@b\r\n\r\nx")
	if got := DedupeKey("<id@x>", raw); got != "mid:id@x" {
		t.Errorf("got %q", got)
	}
	if got := DedupeKey(" id@x ", nil); got != "mid:id@x" {
		t.Errorf("got %q", got)
	}
	// sha256 of the raw bytes when there is no usable id.
	got := DedupeKey("<>", raw)
	if !strings.HasPrefix(got, "sha256:") || len(got) != 7+64 {
		t.Fatalf("got %q", got)
	}
	if got != DedupeKey("", raw) || got == DedupeKey("", append(raw, ' ')) {
		t.Error("content key not stable or not content-dependent")
	}
	if DedupeKey("", nil) != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty input key = %q", DedupeKey("", nil))
	}
}
