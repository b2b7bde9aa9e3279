package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"deskd/cases"
)

// customerKey is a case_customer key: the customer's name, 0x00, the case
// id. The NUL ends the name, so "acme" does not match "acme corp" cases,
// and the big-endian id keeps one customer's cases in id order.
func customerKey(customer string, id uint64) []byte {
	k := make([]byte, 0, len(customer)+1+8)
	k = append(k, customer...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id)
}

// indexCustomer moves case id from old's entry (if it had one) to
// customer's in case_customer; PutCase calls it in its transaction.
func (tx *Tx) indexCustomer(id uint64, hadOld bool, old, customer string) error {
	idx, err := tx.bucket(bucketCaseCustomer)
	if err != nil {
		return fmt.Errorf("customer index: %w", err)
	}
	if hadOld {
		if err := idx.Delete(customerKey(old, id)); err != nil {
			return fmt.Errorf("customer index: %w", err)
		}
	}
	if err := idx.Put(customerKey(customer, id), nil); err != nil {
		return fmt.Errorf("customer index: %w", err)
	}
	return nil
}

// ForEachCaseOfCustomer calls fn for every case of the named customer
// (exactly that name, as stored in Case.Customer), in ascending id order,
// reading only those cases (the case_customer index), and stops at fn's
// first error, which it returns. In an Update, fn may change the cases it
// is given (PutCase), even their customer.
func (tx *Tx) ForEachCaseOfCustomer(name string, fn func(*cases.Case) error) error {
	// The ids come first: fn may write (PutCase), and a bbolt cursor is
	// not safe across writes to its bucket.
	ids, err := tx.CaseIDsOfCustomer(name)
	if err != nil {
		return fmt.Errorf("cases of %q: %w", name, err)
	}
	b, err := tx.bucket(bucketCases)
	if err != nil {
		return fmt.Errorf("cases of %q: %w", name, err)
	}
	for _, id := range ids {
		if err := tx.Err(); err != nil {
			return err
		}
		v := b.Get(u64(id))
		if v == nil {
			return fmt.Errorf("cases of %q: index names case %d, which does not exist", name, id)
		}
		cs := new(cases.Case)
		if err := json.Unmarshal(v, cs); err != nil {
			return fmt.Errorf("cases of %q: case %d: %w", name, id, err)
		}
		if err := fn(cs); err != nil {
			return err
		}
	}
	return nil
}
