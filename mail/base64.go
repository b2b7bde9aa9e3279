package mail

import "encoding/base64"

// onlyUnpadded reports whether body is base64 whose only fault is missing
// "=" padding at the end.
func onlyUnpadded(body []byte) bool {
	n := 0
	for _, c := range body {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			n++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			return false
		}
	}
	return n%4 != 1
}

// lenientBase64 decodes what can be decoded: characters outside the
// alphabet are skipped and every padded chunk is decoded on its own.
func lenientBase64(body []byte) []byte {
	var out, chunk []byte
	flush := func() {
		n := len(chunk) / 4 * 4
		if rest := len(chunk) - n; rest >= 2 {
			n = len(chunk)
		}
		if d, err := base64.RawStdEncoding.DecodeString(string(chunk[:n])); err == nil {
			out = append(out, d...)
		} else if d, err := base64.RawStdEncoding.DecodeString(string(chunk[:len(chunk)/4*4])); err == nil {
			out = append(out, d...)
		}
		chunk = chunk[:0]
	}
	for _, c := range body {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			chunk = append(chunk, c)
		case c == '=':
			if len(chunk) > 0 {
				flush()
			}
		}
	}
	if len(chunk) > 0 {
		flush()
	}
	return out
}
