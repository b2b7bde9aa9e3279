package store

// What the customer portal needs of the store: the cases of one party
// address and of one customer without reading every case, a summary of each
// case for its lists, and the portal's sessions, single-use sign-in tokens
// and revoked case links. The two indexes change in PutCase's transaction,
// like every other index.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"deskd/cases"
)

// CaseSummary is what a case list shows of a case: no history, no message
// keys, so that listing a customer's 10,000 cases decodes little (R16).
type CaseSummary struct {
	ID               uint64         `json:"id"`
	Subject          string         `json:"subject"`
	Status           cases.Status   `json:"status"`
	Priority         cases.Priority `json:"priority,omitempty"`
	ProposedPriority cases.Priority `json:"proposed_priority,omitempty"`
	Kind             cases.Kind     `json:"kind,omitempty"`
	Customer         string         `json:"customer"`
	Machine          bool           `json:"machine,omitempty"`
	UpdatedAt        time.Time      `json:"updated_at"`
}

func summaryOf(c *cases.Case) CaseSummary {
	return CaseSummary{
		ID: c.ID, Subject: c.Subject, Status: c.Status, Priority: c.Priority,
		ProposedPriority: c.ProposedPriority, Kind: c.Kind, Customer: c.Customer,
		Machine: c.Machine, UpdatedAt: c.UpdatedAt,
	}
}

// partyKey is a case_party key: the lower-cased address, 0x00, the case id.
func partyKey(addr string, id uint64) []byte {
	return customerKey(strings.ToLower(addr), id)
}

// indexParties moves case id's entries in case_party from old to parties.
func (tx *Tx) indexParties(id uint64, old, parties []string) error {
	idx, err := tx.bucket(bucketCaseParty)
	if err != nil {
		return fmt.Errorf("party index: %w", err)
	}
	for _, a := range old {
		if !slices.ContainsFunc(parties, func(p string) bool { return strings.EqualFold(p, a) }) {
			if err := idx.Delete(partyKey(a, id)); err != nil {
				return fmt.Errorf("party index: %w", err)
			}
		}
	}
	for _, a := range parties {
		if a == "" {
			continue
		}
		if err := idx.Put(partyKey(a, id), nil); err != nil {
			return fmt.Errorf("party index: %w", err)
		}
	}
	return nil
}

func (tx *Tx) putSummary(c *cases.Case) error {
	b, err := tx.bucket(bucketCaseSummary)
	if err != nil {
		return fmt.Errorf("case summary: %w", err)
	}
	v, err := json.Marshal(summaryOf(c))
	if err != nil {
		return fmt.Errorf("case summary: %w", err)
	}
	return b.Put(u64(c.ID), v)
}

// CaseIDsOfParty returns the ids of the cases addr is a party of, in
// ascending order (the case_party index; no case is read).
func (tx *Tx) CaseIDsOfParty(addr string) ([]uint64, error) {
	return tx.idsByPrefix(bucketCaseParty, strings.ToLower(addr))
}

// CaseIDsOfCustomer returns the ids of the named customer's cases, in
// ascending order (the case_customer index; no case is read).
func (tx *Tx) CaseIDsOfCustomer(name string) ([]uint64, error) {
	return tx.idsByPrefix(bucketCaseCustomer, name)
}

func (tx *Tx) idsByPrefix(bucket, name string) ([]uint64, error) {
	idx, err := tx.bucket(bucket)
	if err != nil {
		return nil, err
	}
	prefix := append([]byte(name), 0)
	var ids []uint64
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			return nil, fmt.Errorf("%s index key %x: bad length", bucket, k)
		}
		ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
	}
	return ids, nil
}

// CaseSummary returns case id's summary, or nil, nil when there is none.
func (tx *Tx) CaseSummary(id uint64) (*CaseSummary, error) {
	b, err := tx.bucket(bucketCaseSummary)
	if err != nil {
		return nil, err
	}
	v := b.Get(u64(id))
	if v == nil {
		return nil, nil
	}
	s := new(CaseSummary)
	if err := json.Unmarshal(v, s); err != nil {
		return nil, fmt.Errorf("case summary %d: %w", id, err)
	}
	return s, nil
}

// CaseListEntry is what filtering and ordering a case list needs of a
// case: its status, whether a machine opened it, its last activity.
type CaseListEntry struct {
	ID        uint64
	Status    cases.Status
	Machine   bool
	UpdatedAt time.Time
}

// CaseListEntries reads the list entries of ids (missing cases are left
// out) from case_summary. A customer's list reads one per case it may
// show (10,000 and more, R16), so it takes the three fields out of the
// summary's JSON without decoding the rest: deskd wrote that JSON
// (json.Marshal of CaseSummary), in which a quote is syntax unless
// escaped, so `"status":"` can only be the key. A value it cannot read
// that way is decoded whole.
func (tx *Tx) CaseListEntries(ids []uint64) ([]CaseListEntry, error) {
	b, err := tx.bucket(bucketCaseSummary)
	if err != nil {
		return nil, err
	}
	out := make([]CaseListEntry, 0, len(ids))
	cur := b.Cursor()
	var k, v []byte
	found := false
	for _, id := range ids {
		want := u64(id)
		// A customer's cases often come in runs of ids: after a hit, try
		// the next key before searching the tree again.
		if found {
			k, v = cur.Next()
		}
		if k == nil || !bytes.Equal(k, want) {
			k, v = cur.Seek(want)
		}
		if found = k != nil && bytes.Equal(k, want); !found {
			continue
		}
		e, ok := quickEntry(v)
		if !ok {
			var s CaseSummary
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("case summary %d: %w", id, err)
			}
			e = CaseListEntry{Status: s.Status, Machine: s.Machine, UpdatedAt: s.UpdatedAt}
		}
		e.ID = id
		out = append(out, e)
	}
	return out, nil
}

var (
	keyStatus    = []byte(`"status":"`)
	keyUpdatedAt = []byte(`"updated_at":"`)
	keyMachine   = []byte(`"machine":true`)
)

// quickEntry reads status, machine and updated_at out of a summary's JSON.
func quickEntry(v []byte) (CaseListEntry, bool) {
	str := func(key []byte) ([]byte, bool) {
		i := bytes.Index(v, key)
		if i < 0 {
			return nil, false
		}
		rest := v[i+len(key):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
			return nil, false
		}
		return rest[:j], true
	}
	st, ok1 := str(keyStatus)
	at, ok2 := str(keyUpdatedAt)
	if !ok1 || !ok2 {
		return CaseListEntry{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(at))
	if err != nil {
		return CaseListEntry{}, false
	}
	return CaseListEntry{Status: cases.Status(st), Machine: bytes.Contains(v, keyMachine), UpdatedAt: t}, true
}

// migrateV3toV4 builds case_party and case_summary from the cases bucket.
func migrateV3toV4(tx *bolt.Tx) error {
	cb := tx.Bucket([]byte(bucketCases))
	party := tx.Bucket([]byte(bucketCaseParty))
	sum := tx.Bucket([]byte(bucketCaseSummary))
	if cb == nil || party == nil || sum == nil {
		return errors.New("cases, case_party or case_summary bucket missing")
	}
	return cb.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("case key %x: %d bytes, want 8", k, len(k))
		}
		id := binary.BigEndian.Uint64(k)
		c := new(cases.Case)
		if err := json.Unmarshal(v, c); err != nil {
			return fmt.Errorf("case %d: %w", id, err)
		}
		for _, a := range c.Parties {
			if a != "" {
				if err := party.Put(partyKey(a, id), nil); err != nil {
					return err
				}
			}
		}
		sv, err := json.Marshal(summaryOf(c))
		if err != nil {
			return err
		}
		return sum.Put(k, sv)
	})
}

// PortalSession is one signed-in customer of the portal. The token itself
// is never stored, only its SHA-256, so a copy of the store signs nobody in.
type PortalSession struct {
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// IP is the client address that signed in (for the operator's list).
	IP string `json:"ip,omitempty"`
	// Hash is the hex SHA-256 prefix that identifies the session in
	// "deskd portal sessions" (filled when listed, not stored).
	Hash string `json:"-"`
}

// PortalSignIn is an issued, unused sign-in link.
type PortalSignIn struct {
	Email     string    `json:"email"`
	ExpiresAt time.Time `json:"expires_at"`
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// PutPortalSession stores session s under token.
func (tx *Tx) PutPortalSession(token string, s *PortalSession) error {
	if err := tx.putJSON(bucketPortalSession, tokenHash(token), s); err != nil {
		return fmt.Errorf("put portal session: %w", err)
	}
	return nil
}

// PortalSession returns the session of token, or nil when there is none
// or it expired at now.
func (tx *Tx) PortalSession(token string, now time.Time) (*PortalSession, error) {
	b, err := tx.bucket(bucketPortalSession)
	if err != nil {
		return nil, fmt.Errorf("portal session: %w", err)
	}
	v := b.Get(tokenHash(token))
	if v == nil {
		return nil, nil
	}
	s := new(PortalSession)
	if err := json.Unmarshal(v, s); err != nil {
		return nil, fmt.Errorf("portal session: %w", err)
	}
	if !now.Before(s.ExpiresAt) {
		return nil, nil
	}
	return s, nil
}

// DeletePortalSession ends the session of token.
func (tx *Tx) DeletePortalSession(token string) error {
	b, err := tx.bucket(bucketPortalSession)
	if err != nil {
		return fmt.Errorf("delete portal session: %w", err)
	}
	return b.Delete(tokenHash(token))
}

// PortalSessions lists every stored session (expired ones too, until
// PrunePortal removes them), each with its Hash.
func (tx *Tx) PortalSessions() ([]*PortalSession, error) {
	b, err := tx.bucket(bucketPortalSession)
	if err != nil {
		return nil, fmt.Errorf("portal sessions: %w", err)
	}
	var out []*PortalSession
	err = b.ForEach(func(k, v []byte) error {
		s := new(PortalSession)
		if err := json.Unmarshal(v, s); err != nil {
			return fmt.Errorf("portal session %x: %w", k, err)
		}
		s.Hash = fmt.Sprintf("%x", k[:8])
		out = append(out, s)
		return nil
	})
	return out, err
}

// RevokePortalSessions deletes the sessions whose Hash starts with id, or
// every session of the address id when it contains '@'; it returns how
// many it deleted.
func (tx *Tx) RevokePortalSessions(id string) (int, error) {
	b, err := tx.bucket(bucketPortalSession)
	if err != nil {
		return 0, fmt.Errorf("revoke portal sessions: %w", err)
	}
	id = strings.ToLower(strings.TrimSpace(id))
	if id == "" {
		return 0, errors.New("revoke portal sessions: empty id")
	}
	var del [][]byte
	err = b.ForEach(func(k, v []byte) error {
		if strings.Contains(id, "@") {
			var s PortalSession
			if err := json.Unmarshal(v, &s); err == nil && strings.EqualFold(s.Email, id) {
				del = append(del, bytes.Clone(k))
			}
		} else if strings.HasPrefix(fmt.Sprintf("%x", k), id) {
			del = append(del, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(del), nil
}

// PutPortalSignIn records an issued sign-in token.
func (tx *Tx) PutPortalSignIn(token string, s *PortalSignIn) error {
	if err := tx.putJSON(bucketPortalSignIn, tokenHash(token), s); err != nil {
		return fmt.Errorf("put portal sign-in: %w", err)
	}
	return nil
}

// PortalSignIn returns the unused, unexpired sign-in of token, or nil.
func (tx *Tx) PortalSignIn(token string, now time.Time) (*PortalSignIn, error) {
	b, err := tx.bucket(bucketPortalSignIn)
	if err != nil {
		return nil, fmt.Errorf("portal sign-in: %w", err)
	}
	v := b.Get(tokenHash(token))
	if v == nil {
		return nil, nil
	}
	s := new(PortalSignIn)
	if err := json.Unmarshal(v, s); err != nil {
		return nil, fmt.Errorf("portal sign-in: %w", err)
	}
	if !now.Before(s.ExpiresAt) {
		return nil, nil
	}
	return s, nil
}

// ConsumePortalSignIn deletes token's sign-in and returns it, or nil when
// it is unknown, used or expired: a link signs in once.
func (tx *Tx) ConsumePortalSignIn(token string, now time.Time) (*PortalSignIn, error) {
	s, err := tx.PortalSignIn(token, now)
	if err != nil {
		return nil, err
	}
	b, err := tx.bucket(bucketPortalSignIn)
	if err != nil {
		return nil, err
	}
	if err := b.Delete(tokenHash(token)); err != nil {
		return nil, fmt.Errorf("consume portal sign-in: %w", err)
	}
	return s, nil
}

// PrunePortal deletes expired sessions and sign-in tokens; it returns how
// many it deleted.
func (tx *Tx) PrunePortal(now time.Time) (int, error) {
	n := 0
	for _, bucket := range []string{bucketPortalSession, bucketPortalSignIn} {
		b, err := tx.bucket(bucket)
		if err != nil {
			return n, err
		}
		var del [][]byte
		err = b.ForEach(func(k, v []byte) error {
			var s struct {
				ExpiresAt time.Time `json:"expires_at"`
			}
			if json.Unmarshal(v, &s) != nil || !now.Before(s.ExpiresAt) {
				del = append(del, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func revokedKey(caseID uint64, addr string) []byte {
	k := binary.BigEndian.AppendUint64(nil, caseID)
	k = append(k, 0)
	return append(k, strings.ToLower(addr)...)
}

// RevokeCaseLinks revokes every case link of caseID for addr issued
// before at; addr "" revokes the case's links for every address.
func (tx *Tx) RevokeCaseLinks(caseID uint64, addr string, at time.Time) error {
	b, err := tx.bucket(bucketPortalRevoked)
	if err != nil {
		return fmt.Errorf("revoke case links: %w", err)
	}
	return b.Put(revokedKey(caseID, addr), ts(at))
}

// CaseLinksRevokedBefore returns the time before which caseID's links for
// addr are revoked: the later of addr's revocation and the case-wide one
// (zero when there is neither).
func (tx *Tx) CaseLinksRevokedBefore(caseID uint64, addr string) (time.Time, error) {
	b, err := tx.bucket(bucketPortalRevoked)
	if err != nil {
		return time.Time{}, fmt.Errorf("case links: %w", err)
	}
	var t time.Time
	for _, k := range [][]byte{revokedKey(caseID, addr), revokedKey(caseID, "")} {
		if v := b.Get(k); len(v) == 12 {
			if at := parseTS(v); at.After(t) {
				t = at
			}
		}
	}
	return t, nil
}
