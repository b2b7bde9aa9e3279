package sla

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
)

// evalVersion names the arithmetic of this package. Raise it whenever
// Evaluate, Alerts or SendAt give a different answer for the same case and
// clock (a fixed bug, a new rule): anything kept under a Fingerprint (the
// store's deadline index, the report's cached figures) is then recomputed
// instead of trusted.
const evalVersion = 1

// Fingerprint is a short hex digest of everything the clocks compute
// with: each calendar (zone, working window, holiday rules, closures and
// open days), the targets and the warning share, the default clock and
// every customer's, and the package's evalVersion. Equal fingerprints
// mean equal deadlines and figures for every case, so what was computed
// under one may be kept: the daemon rebuilds its deadline index at start
// only when the fingerprint changed.
func (cs *Clocks) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "sla eval %d\n", evalVersion)
	writeClock(h, "default", cs.Default)
	for _, name := range slices.Sorted(maps.Keys(cs.PerCustomer)) {
		writeClock(h, "customer "+name, cs.PerCustomer[name])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func writeClock(h hash.Hash, name string, k *Clock) {
	if k == nil {
		fmt.Fprintf(h, "%q none\n", name)
		return
	}
	fmt.Fprintf(h, "%q warn %v\n", name, k.WarnShare)
	if c := k.Calendar; c != nil {
		fmt.Fprintf(h, "zone %q window %s-%s good_friday %v liberation %q skip %q\n",
			c.loc.String(), c.start, c.end, c.rules.GoodFriday, c.rules.Liberation, slices.Sorted(slices.Values(c.rules.Skip)))
		fmt.Fprintf(h, "closed %v\nopen %v\n", sortedDates(c.closed), sortedDates(c.open))
	}
	t := k.Targets
	for _, plan := range slices.Sorted(maps.Keys(t.FirstResponse)) {
		fmt.Fprintf(h, "first %q %d\n", plan, t.FirstResponse[plan])
	}
	for _, prio := range slices.Sorted(maps.Keys(t.Resolution)) {
		fmt.Fprintf(h, "resolution %q %d %d\n", prio, t.Resolution[prio].Tier1, t.Resolution[prio].Tier2)
	}
	fmt.Fprintf(h, "question %d %d\n", t.Question.Tier1, t.Question.Tier2)
}

func sortedDates(set map[Date]bool) []Date {
	out := make([]Date, 0, len(set))
	for d, on := range set {
		if on {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Date) int {
		return cmp.Or(cmp.Compare(a.Year, b.Year), cmp.Compare(a.Month, b.Month), cmp.Compare(a.Day, b.Day))
	})
	return out
}
