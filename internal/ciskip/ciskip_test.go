package ciskip

import "testing"

// A missing dependency fails CI and skips elsewhere.
func TestNeverSkipInCI(t *testing.T) {
	t.Setenv("CI", "true")
	r := &Recorder{TB: t}
	SkipOrFail(r, "binaries missing", "install them")
	if r.SawSkip || !r.SawFatal {
		t.Errorf("with CI=true: skipped=%v failed=%v, want a failure", r.SawSkip, r.SawFatal)
	}
	t.Setenv("CI", "")
	r = &Recorder{TB: t}
	SkipOrFail(r, "binaries missing", "install them")
	if !r.SawSkip || r.SawFatal {
		t.Errorf("without CI: skipped=%v failed=%v, want a skip", r.SawSkip, r.SawFatal)
	}
}
