package store

import (
	"path/filepath"
	"testing"
	"time"
)

func TestMarkOnceAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	mark := func(name string) bool {
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var first bool
		if err := db.Update(func(tx *Tx) error {
			var err error
			first, err = tx.MarkOnce(name, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return first
	}
	if !mark("a") || mark("a") || !mark("b") {
		t.Error("MarkOnce is not first exactly once per name")
	}
}
