package sla

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The compact figures of a case give the same report as its Status: every
// case of the scenario month (R7, R9, R10, R13, R14) encoded, decoded and
// reported again, byte for byte; and a final Status does not move with
// the instant it is evaluated at.
func TestFiguresReportEqual(t *testing.T) {
	loc := reportZone(t)
	clock := &Clock{Calendar: DefaultCalendar(loc), Targets: Default()}
	clocks := &Clocks{Default: clock}
	at := func(mo time.Month, d, h, m int) time.Time { return time.Date(2025, mo, d, h, m, 0, 0, loc) }
	now := at(time.June, 3, 15, 7)
	r := rand.New(rand.NewPCG(2025, 6))
	scen := genScenario(r, loc, at(time.March, 1, 0, 0), at(time.June, 2, 12, 0), now, 330, nil)
	var direct, decoded []ReportCase
	final := 0
	for _, sc := range scen {
		rc := ReportCase{ID: sc.id, Customer: sc.customer, Plan: sc.plan, Subject: sc.subject, Status: clock.Evaluate(sc.c, now)}
		direct = append(direct, rc)
		enc := AppendFigures(nil, &rc, now)
		back := ReportCase{ID: rc.ID, Customer: rc.Customer}
		asOf, err := DecodeFigures(enc, &back)
		if err != nil {
			t.Fatalf("case %d: %v", rc.ID, err)
		}
		if !asOf.Equal(now) {
			t.Fatalf("case %d: asOf %v, want %v", rc.ID, asOf, now)
		}
		decoded = append(decoded, back)
		if rc.Status.Final() {
			final++
			later := clock.Evaluate(sc.c, now.Add(400*24*time.Hour))
			if !jsonEqual(t, figuresOf(rc.Status), figuresOf(later)) {
				t.Fatalf("case %d is final at %v but its figures move later", rc.ID, now)
			}
		}
	}
	if final < 100 || final == len(scen) {
		t.Fatalf("%d of %d final: the scenario should have both", final, len(scen))
	}
	for _, mo := range []time.Month{time.March, time.April, time.May, time.June} {
		opts := ReportOptions{Year: 2025, Month: mo, Now: now, Clocks: clocks}
		if !jsonEqual(t, BuildReport(opts, direct), BuildReport(opts, decoded)) {
			t.Fatalf("%s: the report from decoded figures differs", mo)
		}
	}
	// A FigureDecoder reads the subject only for a case that started
	// from the month on whose report shows it, and reuses its targets.
	var dec FigureDecoder
	for _, rc := range direct[:20] {
		enc := AppendFigures(nil, &rc, now)
		var got ReportCase
		if _, err := dec.Decode(enc, &got, rc.Status.Start); err != nil || got.Subject != rc.Subject {
			t.Fatalf("case %d: subject %q, %v", rc.ID, got.Subject, err)
		}
		if _, err := dec.Decode(enc, &got, rc.Status.Start.Add(time.Nanosecond)); err != nil || got.Subject != "" || got.Plan != rc.Plan {
			t.Fatalf("case %d: subject %q plan %q, %v; want no subject", rc.ID, got.Subject, got.Plan, err)
		}
	}
	// Malformed records are errors, not panics.
	enc := AppendFigures(nil, &direct[0], now)
	for i := range enc {
		var rc ReportCase
		if _, err := DecodeFigures(enc[:i], &rc); err == nil {
			t.Fatalf("truncated to %d bytes: no error", i)
		}
	}
}

// figuresOf is what AppendFigures keeps of a Status.
func figuresOf(st Status) []any {
	out := []any{st.Start.UTC(), st.Priority, st.Kind}
	for _, t := range []*Target{st.FirstResponse, st.Resolution, st.ResolutionTier2} {
		if t == nil {
			out = append(out, nil)
			continue
		}
		out = append(out, []any{t.Name, t.Limit, t.Elapsed, t.Done})
	}
	return out
}
