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
// (unix seconds, nanoseconds), plan, subject, priority, kind (each
// length then bytes), start (unix seconds, nanoseconds; flag 0 for
// none), then for FirstResponse, Resolution, ResolutionTier2 a name code
// (0: nil) and, when not nil, limit, elapsed (nanoseconds) and done.

const figuresFormat = 1

var targetCodes = []string{"", TargetFirstResponse, TargetResolution, TargetResolutionTier2, TargetAnswer, TargetAnswerTier2}

// AppendFigures appends rc's figures to dst. asOf is the instant from
// which they hold: a report evaluated before it must replay the case.
func AppendFigures(dst []byte, rc *ReportCase, asOf time.Time) []byte {
	st := &rc.Status
	dst = append(dst, figuresFormat)
	dst = appendTime(dst, asOf)
	for _, s := range []string{rc.Plan, rc.Subject, st.Priority, st.Kind} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = appendTime(dst, st.Start)
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
	return dst
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

func (r *figReader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errFigures
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
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
// Customer, which it leaves alone) and returns asOf. The targets are
// allocated afresh, so rc may be reused.
func DecodeFigures(b []byte, rc *ReportCase) (asOf time.Time, err error) {
	r := figReader{b: b}
	if f := r.byte(); r.err == nil && f != figuresFormat {
		return time.Time{}, fmt.Errorf("report figures: format %d, want %d", f, figuresFormat)
	}
	asOf = r.time()
	rc.Plan, rc.Subject = r.string(), r.string()
	rc.Status = Status{Priority: r.string(), Kind: r.string()}
	rc.Status.Start = r.time()
	var targets [3]Target
	for i, slot := range []**Target{&rc.Status.FirstResponse, &rc.Status.Resolution, &rc.Status.ResolutionTier2} {
		code := r.byte()
		if code == 0 {
			continue
		}
		t := &targets[i]
		switch {
		case code == 0xff:
			t.Name = r.string()
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
	if r.err == nil && len(r.b) != 0 {
		r.err = errFigures
	}
	if r.err != nil {
		return time.Time{}, fmt.Errorf("report figures: %w", r.err)
	}
	return asOf, nil
}
