package sla

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A case's report figures in a compact binary form, so that a store can
// keep them beside a closed case and a report reads them instead of
// decoding and replaying the case's history. They hold exactly what
// ReportBuilder.Add reads of a ReportCase besides its ID and Customer
// (which the store keeps in the key and the entry): the plan, the
// subject, and of the Status the start, priority, kind and, per target,
// its name, limit, elapsed working time and whether it is done. Other
// Status fields (Due, Warn, State, ...) are not kept and decode as zero.
//
// Layout (all integers varints): format byte (figuresFormat), asOf
// (flag 0 for none, else 1, unix seconds, nanoseconds), start (the same),
// priority, kind, plan (each length then bytes), then for FirstResponse,
// Resolution, ResolutionTier2 a name code (0: nil; 0xff: the name
// follows) and, when not nil, limit, elapsed (nanoseconds) and done; the
// subject last, as a FigureDecoder reads it only when the report shows
// the case.

// figuresFormat is the layout's version; part of FiguresStamp, so
// figures kept in an older layout count as stale, not as damage.
const figuresFormat = 2

// FiguresStamp is the version figures computed with clocks are kept
// under: the clocks' Fingerprint and the layout's figuresFormat.
func FiguresStamp(clocks *Clocks) string {
	return fmt.Sprintf("%s/%d", clocks.Fingerprint(), figuresFormat)
}

var targetCodes = []string{"", TargetFirstResponse, TargetResolution, TargetResolutionTier2, TargetAnswer, TargetAnswerTier2}

// AppendFigures appends rc's figures to dst. asOf is the instant from
// which they hold: a report evaluated before it must replay the case.
func AppendFigures(dst []byte, rc *ReportCase, asOf time.Time) []byte {
	st := &rc.Status
	dst = append(dst, figuresFormat)
	dst = appendTime(dst, asOf)
	dst = appendTime(dst, st.Start)
	for _, s := range []string{st.Priority, st.Kind, rc.Plan} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	for _, t := range []*Target{st.FirstResponse, st.Resolution, st.ResolutionTier2} {
		if t == nil {
			dst = append(dst, 0)
			continue
		}
		code := 0
		for i, n := range targetCodes {
			if n == t.Name && i > 0 {
				code = i
			}
		}
		if code == 0 {
			// A name this format does not know: write it out in full.
			dst = append(dst, 0xff)
			dst = binary.AppendUvarint(dst, uint64(len(t.Name)))
			dst = append(dst, t.Name...)
		} else {
			dst = append(dst, byte(code))
		}
		dst = binary.AppendVarint(dst, int64(t.Limit))
		dst = binary.AppendVarint(dst, int64(t.Elapsed))
		done := byte(0)
		if t.Done {
			done = 1
		}
		dst = append(dst, done)
	}
	dst = binary.AppendUvarint(dst, uint64(len(rc.Subject)))
	return append(dst, rc.Subject...)
}

// appendTime writes 0 for the zero time, else 1, unix seconds and
// nanoseconds; it decodes in UTC (the report shows times in its zone).
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// errFigures is returned for a malformed record.
var errFigures = errors.New("malformed report figures")

type figReader struct {
	b   []byte
	err error
}

func (r *figReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errFigures
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *figReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errFigures
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *figReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errFigures
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *figReader) time() time.Time {
	switch r.byte() {
	case 0:
		return time.Time{}
	case 1:
		sec := r.varint()
		nsec := r.uvarint()
		if nsec >= 1e9 {
			r.err = errFigures
		}
		return time.Unix(sec, int64(nsec)).UTC()
	}
	r.err = errFigures
	return time.Time{}
}

// DecodeFigures reads what AppendFigures wrote into rc (all but ID and
// Customer, which it leaves alone) and returns asOf.
func DecodeFigures(b []byte, rc *ReportCase) (asOf time.Time, err error) {
	var d FigureDecoder
	asOf, err = d.Decode(b, rc, time.Time{})
	if err == nil {
		// Targets of their own: rc outlives this decoder.
		rc.Status.FirstResponse = cloneTarget(rc.Status.FirstResponse)
		rc.Status.Resolution = cloneTarget(rc.Status.Resolution)
		rc.Status.ResolutionTier2 = cloneTarget(rc.Status.ResolutionTier2)
	}
	return asOf, err
}

func cloneTarget(t *Target) *Target {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// FigureDecoder decodes many cases' figures for one report with few
// allocations: the targets of the Status it fills are its own and are
// overwritten by the next Decode (ReportBuilder.Add reads them only
// during the call), and priorities, kinds and plans, of which there are
// few, are kept once. The zero value is ready to use.
type FigureDecoder struct {
	targets [3]Target
	names   map[string]string
}

func (d *FigureDecoder) name(r *figReader) string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errFigures
		return ""
	}
	b := r.b[:n]
	r.b = r.b[n:]
	s, ok := d.names[string(b)]
	if !ok {
		if d.names == nil {
			d.names = map[string]string{}
		}
		s = string(b)
		d.names[s] = s
	}
	return s
}

// Decode reads what AppendFigures wrote into rc (all but ID and
// Customer, which it leaves alone) and returns asOf. The subject is read
// only when the clock started at or after subjectFrom (the report's
// month: the only cases whose subject a report shows), else it is "".
func (d *FigureDecoder) Decode(b []byte, rc *ReportCase, subjectFrom time.Time) (asOf time.Time, err error) {
	r := figReader{b: b}
	if f := r.byte(); r.err == nil && f != figuresFormat {
		return time.Time{}, fmt.Errorf("report figures: format %d, want %d", f, figuresFormat)
	}
	asOf = r.time()
	rc.Status = Status{Start: r.time()}
	rc.Status.Priority, rc.Status.Kind, rc.Plan = d.name(&r), d.name(&r), d.name(&r)
	for i, slot := range []**Target{&rc.Status.FirstResponse, &rc.Status.Resolution, &rc.Status.ResolutionTier2} {
		code := r.byte()
		if code == 0 {
			continue
		}
		t := &d.targets[i]
		*t = Target{}
		switch {
		case code == 0xff:
			t.Name = d.name(&r)
		case int(code) < len(targetCodes):
			t.Name = targetCodes[code]
		default:
			r.err = errFigures
		}
		t.Limit = time.Duration(r.varint())
		t.Elapsed = time.Duration(r.varint())
		t.Done = r.byte() == 1
		*slot = t
	}
	rc.Subject = ""
	if n := r.uvarint(); r.err == nil {
		if n != uint64(len(r.b)) {
			r.err = errFigures
		} else if !rc.Status.Start.Before(subjectFrom) {
			rc.Subject = string(r.b)
		}
	}
	if r.err != nil {
		return time.Time{}, fmt.Errorf("report figures: %w", r.err)
	}
	return asOf, nil
}
