package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"deskd/cases"
	"deskd/daemon"
	"deskd/sla"
)

// tableSummary reads the fields of one listing line that the table shows
// (caseRow) into c. A listing line is json.Marshal of a CaseSummary: one
// flat object of strings, numbers, booleans and nulls. Walking it here
// costs a fifth of json.Unmarshal, which was two thirds of the CLI's
// time for a table of 15,000 open cases (issue 11: under 200 ms at a
// million cases). Anything else (a nested value, a string it cannot take
// as it is) goes to json.Unmarshal, so the row is always the same.
func tableSummary(line []byte, c *daemon.CaseSummary) error {
	*c = daemon.CaseSummary{}
	if !scanTableFields(line, c) {
		*c = daemon.CaseSummary{}
		return json.Unmarshal(line, c)
	}
	return nil
}

// scanTableFields is tableSummary's walk; false means "not a line it
// reads" (c is then partly filled).
func scanTableFields(b []byte, c *daemon.CaseSummary) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	i := 1
	for i < len(b)-1 {
		key, n, ok := plainString(b, i)
		if !ok || n >= len(b) || b[n] != ':' {
			return false
		}
		i = n + 1
		end := valueEnd(b, i)
		if end < 0 {
			return false
		}
		if !tableField(c, string(key), b[i:end]) {
			return false
		}
		i = end
		if b[i] == ',' {
			i++
		} else if i != len(b)-1 {
			return false
		}
	}
	return true
}

// plainString returns the string starting at b[i] (a quote) without its
// quotes, and the index after it, when it has no escapes.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return b[i+1 : j], j + 1, true
		case '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// valueEnd is the index after the scalar value at b[i], or -1 for a
// value that is not a scalar (an object or an array) or not closed.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	if b[i] == '"' {
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return -1
	}
	if b[i] == '{' || b[i] == '[' {
		return -1
	}
	for j := i; j < len(b); j++ {
		if b[j] == ',' || b[j] == '}' {
			return j
		}
	}
	return -1
}

// tableField sets the field named key from its JSON value v, if the
// table shows it.
func tableField(c *daemon.CaseSummary, key string, v []byte) bool {
	var ok bool
	switch key {
	case "id":
		var err error
		c.ID, err = strconv.ParseUint(string(v), 10, 64)
		ok = err == nil
	case "messages":
		var err error
		c.Messages, err = strconv.Atoi(string(v))
		ok = err == nil
	case "unauthorised":
		c.Unauthorised, ok = jsonBool(v)
	case "status":
		var s string
		s, ok = jsonString(v)
		c.Status = cases.Status(s)
	case "priority":
		var s string
		s, ok = jsonString(v)
		c.Priority = cases.Priority(s)
	case "proposed_priority":
		var s string
		s, ok = jsonString(v)
		c.ProposedPriority = cases.Priority(s)
	case "sla_state":
		var s string
		s, ok = jsonString(v)
		c.SLAState = sla.State(s)
	case "customer":
		c.Customer, ok = jsonString(v)
	case "requester":
		c.Requester, ok = jsonString(v)
	case "subject":
		c.Subject, ok = jsonString(v)
	case "updated_at":
		var t *time.Time
		t, ok = jsonTime(v)
		if ok && t != nil {
			c.UpdatedAt = *t
		}
	case "next_due":
		c.NextDue, ok = jsonTime(v)
	default:
		return true // not shown
	}
	return ok
}

func jsonBool(v []byte) (bool, bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// jsonString reads a string value; one with escapes (or null, as
// json.Unmarshal leaves the field alone) through encoding/json.
func jsonString(v []byte) (string, bool) {
	if s, n, ok := plainString(v, 0); ok && n == len(v) {
		return string(s), true
	}
	if bytes.Equal(v, []byte("null")) {
		return "", true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

// jsonTime reads a time value as time.Time's UnmarshalJSON does (RFC
// 3339); null is nil.
func jsonTime(v []byte) (*time.Time, bool) {
	if bytes.Equal(v, []byte("null")) {
		return nil, true
	}
	s, n, ok := plainString(v, 0)
	if !ok || n != len(v) {
		return nil, false
	}
	t, err := time.Parse(time.RFC3339, string(s))
	if err != nil {
		return nil, false
	}
	return &t, true
}
