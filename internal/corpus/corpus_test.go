package corpus

import (
	"deskd/internal/ciskip"
	"os"
	"path/filepath"
	"testing"
)

// A missing corpus fails CI and skips elsewhere.
func TestMissingCorpusNeverSkipsInCI(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-corpus")
	t.Setenv("CI", "true")
	r := &ciskip.Recorder{TB: t}
	if got := entriesIn(r, missing); got != nil || r.SawSkip || !r.SawFatal {
		t.Errorf("with CI=true: entries=%d skipped=%v failed=%v, want a failure", len(got), r.SawSkip, r.SawFatal)
	}
	t.Setenv("CI", "")
	r = &ciskip.Recorder{TB: t}
	if got := entriesIn(r, missing); got != nil || !r.SawSkip || r.SawFatal {
		t.Errorf("without CI: entries=%d skipped=%v failed=%v, want a skip", len(got), r.SawSkip, r.SawFatal)
	}
}

// The real corpus, when present, is found from any package's directory
// and holds the zero-byte file the delivery counts name.
func TestCorpusFound(t *testing.T) {
	entries := Entries(t)
	found := false
	for _, e := range entries {
		if e.Path == ZeroByte {
			found = true
			if raw := Read(t, e); len(raw) != 0 {
				t.Errorf("%s: %d bytes, want 0", ZeroByte, len(raw))
			}
		}
		if e.IsAuto != "yes" && e.IsAuto != "no" && e.IsAuto != "mixed" {
			t.Errorf("%s: is_auto %q", e.Path, e.IsAuto)
		}
	}
	if !found {
		t.Errorf("%s not in INDEX.tsv", ZeroByte)
	}
	if _, err := os.Stat(Dir()); err != nil {
		t.Error(err)
	}
}
