// Package storetest holds test helpers over a deskd store, shared by the
// packages whose tests compare whole stores (a restored backup with its
// original, a store before and after a migration).
package storetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"deskd/cases"
	"deskd/store"
)

// Contents reads every case, every message record and every raw mail of
// db into a map from "case N", "message KEY" and "raw KEY" to their JSON
// or bytes: two stores hold the same data when their maps are equal.
func Contents(tb testing.TB, db *store.DB) map[string]string {
	tb.Helper()
	out := make(map[string]string)
	err := db.View(func(tx *store.Tx) error {
		return tx.ForEachCase("", func(c *cases.Case) error {
			b, err := json.Marshal(c)
			if err != nil {
				return err
			}
			out[fmt.Sprintf("case %d", c.ID)] = string(b)
			msgs, err := tx.CaseMessages(c)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				b, err := json.Marshal(m)
				if err != nil {
					return err
				}
				out["message "+m.Key] = string(b)
				raw, err := tx.Raw(m.Key)
				if err != nil {
					return err
				}
				out["raw "+m.Key] = string(raw)
			}
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Buckets reads every record of every bucket of db, nested buckets and
// bucket sequences included, into a map from "path\x00key" (hex-free,
// raw bytes) to the value, and "path seq" to the sequence: two stores
// whose maps are equal hold byte-identical buckets.
func Buckets(tb testing.TB, db *store.DB) map[string]string {
	tb.Helper()
	out := make(map[string]string)
	err := db.Walk(func(path []string, key, value []byte, seq uint64) error {
		p := strings.Join(path, "/")
		if key == nil {
			out[p+" seq"] = fmt.Sprint(seq)
			return nil
		}
		out[p+"\x00"+string(key)] = string(value)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
