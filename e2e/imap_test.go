package e2e

import "github.com/emersion/go-imap/v2"

func statusMessages() *imap.StatusOptions { return &imap.StatusOptions{NumMessages: true} }

func seqAll() imap.SeqSet { return imap.SeqSetNum(1) }

func seenFlag() *imap.StoreFlags {
	return &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
}
