// Package corpus gives tests the shared corpus of real-world mail
// (../shared/corpus beside the project, 1,260 files listed in INDEX.tsv),
// referenced by path and never copied into the project. A missing corpus
// skips the test on a developer's machine and fails it under CI=true
// (internal/ciskip).
package corpus

import (
	"bufio"
	"deskd/internal/ciskip"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Entry is one line of INDEX.tsv.
type Entry struct {
	Path     string // relative to Dir()
	Category string // bounce, autoreply, human, ...
	IsAuto   string // "yes", "no" or "mixed" (an mbox with several messages)
}

// Dir is the corpus directory, found from this source file's place in the
// module so that every package's tests see the same path whatever their
// working directory.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	// file is <module>/internal/corpus/corpus.go; the corpus is
	// <module>/../shared/corpus.
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "corpus")
}

// ZeroByte is the corpus file that is empty: Dovecot refuses to store it,
// so it never reaches deskd. Tests that count deliveries name it.
const ZeroByte = "sisimai/mailbox/size-0.eml"

// Entries reads INDEX.tsv, or skips the test (fails it under CI=true) when
// the corpus is absent.
func Entries(tb testing.TB) []Entry {
	tb.Helper()
	return entriesIn(tb, Dir())
}

func entriesIn(tb testing.TB, dir string) []Entry {
	tb.Helper()
	f, err := os.Open(filepath.Join(dir, "INDEX.tsv"))
	if err != nil {
		ciskip.SkipOrFail(tb, fmt.Sprintf("corpus not present: %v", err), "put the shared corpus at ../shared/corpus")
		return nil
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		if first {
			continue // header: path category is_auto
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 3 {
			tb.Fatalf("INDEX.tsv: bad line %q", sc.Text())
		}
		out = append(out, Entry{cols[0], cols[1], cols[2]})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(out) < 1000 {
		tb.Fatalf("INDEX.tsv lists only %d mails", len(out))
	}
	return out
}

// Read returns the bytes of one corpus file.
func Read(tb testing.TB, e Entry) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(Dir(), e.Path))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}
