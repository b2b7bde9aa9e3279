// Package mail talks to mail servers and mail formats: the IMAP source, MIME
// parsing into cases.Inbound, machine-mail (RFC 3834) signals, composing
// outgoing RFC 5322 and SMTP sending.
package mail
