package mail

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestNewMessageIDShape(t *testing.T) {
	id := NewMessageID(testKey, 12, "Desk.Example.COM")
	re := regexp.MustCompile(`^deskd\.12\.[0-9a-f]{12}\.[0-9a-f]{16}@desk\.example\.com$`)
	if !re.MatchString(id) {
		t.Fatalf("id %q does not have the documented shape", id)
	}
	if id2 := NewMessageID(testKey, 12, "desk.example.com"); id2 == id {
		t.Error("two ids for the same case are equal")
	}
	if got := NewMessageID(testKey, 1, "bad domain>"); !strings.HasSuffix(got, "@invalid") {
		t.Errorf("bad domain kept: %q", got)
	}
}

func TestVerifyMessageID(t *testing.T) {
	id := NewMessageID(testKey, 4242, "desk.example.com")
	local, domain, _ := strings.Cut(id, "@")
	parts := strings.Split(local, ".") // deskd, case, random, mac

	flip := func(s string) string { // change the last hex digit
		last := s[len(s)-1]
		r := byte('0')
		if last == '0' {
			r = '1'
		}
		return s[:len(s)-1] + string(r)
	}

	for _, tc := range []struct {
		name string
		key  []byte
		id   string
		want uint64
		ok   bool
	}{
		{"valid", testKey, id, 4242, true},
		{"angle brackets and space", testKey, " <" + id + "> ", 4242, true},
		{"other domain", testKey, local + "@elsewhere.example", 4242, true},
		{"tampered case", testKey, strings.Replace(id, ".4242.", ".4243.", 1), 0, false},
		{"leading zero case", testKey, strings.Replace(id, ".4242.", ".04242.", 1), 0, false},
		{"tampered random", testKey, parts[0] + "." + parts[1] + "." + flip(parts[2]) + "." + parts[3] + "@" + domain, 0, false},
		{"tampered mac", testKey, parts[0] + "." + parts[1] + "." + parts[2] + "." + flip(parts[3]) + "@" + domain, 0, false},
		{"short mac", testKey, parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[3][:15] + "@" + domain, 0, false},
		{"wrong key", []byte("another key, same length, 32 by"), id, 0, false},
		{"empty key", nil, id, 0, false},
		{"no domain", testKey, local, 0, false},
		{"empty", testKey, "", 0, false},
		{"garbage", testKey, "CAF1234@mail.gmail.com", 0, false},
		{"prefix only", testKey, "deskd.@x", 0, false},
		{"extra part", testKey, parts[0] + ".1." + parts[1] + "." + parts[2] + "." + parts[3] + "@" + domain, 0, false},
		{"case zero", testKey, NewMessageID(testKey, 0, "x.example"), 0, false},
		{"not hex", testKey, parts[0] + "." + parts[1] + ".zzzzzzzzzzzz." + parts[3] + "@" + domain, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := VerifyMessageID(tc.key, tc.id)
			if got != tc.want || ok != tc.ok {
				t.Errorf("VerifyMessageID(%q) = %d, %v; want %d, %v", tc.id, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestVerifyMaxCaseID(t *testing.T) {
	const max = ^uint64(0)
	id := NewMessageID(testKey, max, "x.example")
	if got, ok := VerifyMessageID(testKey, id); !ok || got != max {
		t.Errorf("got %d, %v", got, ok)
	}
}

func TestNewMessageIDEmptyKeyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic with an empty key")
		}
	}()
	NewMessageID(nil, 1, "x.example")
}

func FuzzVerifyMessageID(f *testing.F) {
	f.Add(NewMessageID(testKey, 7, "desk.example.com"))
	f.Add("<" + NewMessageID(testKey, 123456789, "a.b") + ">")
	f.Add("deskd.1.000000000000.0000000000000000@x")
	f.Add("garbage")
	f.Add("")
	f.Add("deskd.18446744073709551616.000000000000.0000000000000000@x")
	f.Fuzz(func(t *testing.T, id string) {
		caseID, ok := VerifyMessageID(testKey, id)
		if !ok {
			if caseID != 0 {
				t.Fatalf("not ok but case %d", caseID)
			}
			return
		}
		// Whatever verifies must name its case in canonical form and
		// verify again once normalised.
		if caseID == 0 || !strings.Contains(id, "deskd."+strconv.FormatUint(caseID, 10)+".") {
			t.Fatalf("verified %q as case %d", id, caseID)
		}
		if _, ok := VerifyMessageID([]byte("other key"), id); ok {
			t.Fatalf("%q verifies under two keys", id)
		}
	})
}
