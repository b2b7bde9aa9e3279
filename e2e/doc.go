// Package e2e holds deskd's end-to-end tests: the real daemon against
// private Dovecot (IMAP, LMTP) and Postfix (SMTP) instances on loopback
// ports (internal/mailstack). Customers send through Postfix, deskd reads
// support@ from Dovecot, and acknowledgements arrive in the customers'
// Dovecot mailboxes, where the tests read them back over IMAP.
package e2e
