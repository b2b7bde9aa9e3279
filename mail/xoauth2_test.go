package mail

import (
	"encoding/base64"
	"errors"
	"testing"
)

// The initial responses Google ("OAuth 2.0 Mechanism", developers.google.com
// /gmail/imap/xoauth2-protocol) and Microsoft ("Authenticate an IMAP, POP or
// SMTP connection using OAuth", SASL XOAUTH2) print as examples, byte for
// byte after base64.
func TestXOAUTH2DocumentedExamples(t *testing.T) {
	for _, c := range []struct{ user, token, want string }{
		{"someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
			"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="},
		{"test@contoso.onmicrosoft.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA",
			"dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVy" +
				"IEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="},
	} {
		mech, ir, err := NewXOAUTH2Client(c.user, c.token).Start()
		if err != nil {
			t.Fatal(err)
		}
		if mech != "XOAUTH2" {
			t.Errorf("mechanism %q", mech)
		}
		if got := base64.StdEncoding.EncodeToString(ir); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.user, got, c.want)
		}
	}
}

// On a refused token the server sends a JSON challenge; the client answers
// with an empty response (Google's protocol), and keeps the JSON for the
// error.
func TestXOAUTH2ErrorChallenge(t *testing.T) {
	c := NewXOAUTH2Client("u@example.com", "tok")
	_, _, _ = c.Start()
	resp, err := c.Next([]byte(`{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`))
	if err != nil || resp == nil || len(resp) != 0 {
		t.Fatalf("first challenge: %q, %v (want an empty response)", resp, err)
	}
	_, err = c.Next(nil)
	var xe *XOAUTH2Error
	if !errors.As(err, &xe) || xe.Status != "401" || xe.Scope != "https://mail.google.com/" {
		t.Fatalf("second step: %v", err)
	}
	if _, _, err := NewXOAUTH2Client("u\x01", "t").Start(); err == nil {
		t.Error("a user with ^A was framed")
	}
}
