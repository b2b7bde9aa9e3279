package mail

import "strings"

// reportInfo is what the MIME walk learned about a multipart/report.
type reportInfo struct {
	topType    string   // top-level media type
	reportType string   // its report-type parameter, lower-cased
	dsn        bool     // a message/delivery-status part inside a multipart/report
	failed     []string // failed recipients from delivery-status parts
	origMsgID  string   // Message-ID of the returned message or header
}

// parseDSN returns the recipients a message/delivery-status body (RFC 3464
// §2.3) reports as failed: Action "failed", or no Action and a 5.x.x
// Status. Final-Recipient comes first, then Original-Recipient (the address
// deskd wrote to, before any forwarding), lower-cased, without the
// address-type prefix ("rfc822;").
func parseDSN(data []byte) []string {
	type rec struct{ final, orig, action, status string }
	var out []string
	var cur rec
	flush := func() {
		failed := strings.HasPrefix(cur.action, "failed") || (cur.action == "" && strings.HasPrefix(cur.status, "5"))
		if failed {
			for _, r := range []string{cur.final, cur.orig} {
				if a := dsnAddress(r); a != "" {
					out = append(out, a)
				}
			}
		}
		cur = rec{}
	}
	lines := strings.Split(strings.ReplaceAll(string(normalizeEOL(data)), "\r", ""), "\n")
	var name string
	var value strings.Builder
	field := func() {
		if name == "" {
			return
		}
		v := strings.TrimSpace(value.String())
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "final-recipient":
			if cur.final != "" {
				flush()
			}
			cur.final = v
		case "original-recipient":
			if cur.orig != "" {
				flush()
			}
			cur.orig = v
		case "action":
			cur.action = strings.ToLower(v)
		case "status":
			cur.status = v
		}
		name = ""
		value.Reset()
	}
	for _, l := range lines {
		switch {
		case strings.TrimSpace(l) == "":
			field()
			flush()
		case l[0] == ' ' || l[0] == '\t':
			if value.Len() < 4096 { // a recipient field is short; ignore floods
				value.WriteString(" " + strings.TrimSpace(l))
			}
		default:
			field()
			if n, v, ok := strings.Cut(l, ":"); ok {
				name = n
				value.WriteString(v)
			}
		}
	}
	field()
	flush()
	return dedupe(out)
}

func dsnAddress(v string) string {
	if _, after, ok := strings.Cut(v, ";"); ok {
		v = after
	}
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	}
	if i := strings.IndexByte(v, '('); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.ReplaceAll(cleanLine(fixUTF8(v)), " ", ""))
}
