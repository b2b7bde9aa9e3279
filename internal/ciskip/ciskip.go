// Package ciskip is the one guard of the tests that need something from
// outside the project: the Dovecot/Postfix binaries (internal/mailstack)
// and the shared mail corpus (internal/corpus). Without it a test skips on
// a developer's machine; under CI=true (which .ci/run sets itself) it
// fails, because there a skip would turn a broken set-up into a green run.
package ciskip

import (
	"os"
	"testing"
)

// SkipOrFail skips tb with what is missing and how to get it, or fails it
// when CI=true.
func SkipOrFail(tb testing.TB, missing, fix string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s (CI=true, so this is an error, not a skip; %s)", missing, fix)
		return // only reached with a Recorder
	}
	tb.Skipf("%s; %s to run this test", missing, fix)
}

// Recorder is a testing.TB that records Skipf and Fatalf instead of
// stopping the test: for the tests of the guards themselves.
type Recorder struct {
	testing.TB
	SawSkip, SawFatal bool
}

func (r *Recorder) Helper()               {}
func (r *Recorder) Skipf(string, ...any)  { r.SawSkip = true }
func (r *Recorder) Fatalf(string, ...any) { r.SawFatal = true }
