package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"deskd/sla"
)

// EnvPrefix starts the name of every environment variable deskd reads.
const EnvPrefix = "DESKD"

// EnvName is the environment variable that overrides key ("imap.password"
// gives DESKD_IMAP_PASSWORD).
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return name
}

// leafKind tells what a schema node is.
type leafKind int

const (
	kindScalar     leafKind = iota // a value, or a list of strings
	kindSection                    // a struct: a YAML mapping of known keys
	kindStructList                 // a list of structs (customers, contacts)
)

func kindOf(t reflect.Type) leafKind {
	switch {
	case isText(t) || t.Kind() == reflect.Slice && isText(t.Elem()):
		return kindScalar // written as text: "08:00", ["2026-12-24"]
	case t.Kind() == reflect.Struct:
		return kindSection
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return kindStructList
	}
	return kindScalar
}

// Keys lists every key Config knows, dotted, in declaration order. Keys
// inside a list of structs are written with "[]": "customers[].contacts[].email".
func Keys() []string {
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := tagName(f)
			if name == "" {
				continue
			}
			key := prefix + name
			switch kindOf(f.Type) {
			case kindSection:
				walk(key+".", f.Type)
			case kindStructList:
				keys = append(keys, key)
				walk(key+"[].", f.Type.Elem())
			default:
				keys = append(keys, key)
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	return keys
}

// EnvKeys lists the keys that can be set from the environment: every key
// that is not inside a list of structs, with the value it has in defaults().
func envKeys() (keys []string, values []any) {
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name := tagName(f)
			if name == "" {
				continue
			}
			switch kindOf(f.Type) {
			case kindSection:
				walk(prefix+name+".", v.Field(i))
			case kindScalar:
				keys = append(keys, prefix+name)
				values = append(values, textDefault(v.Field(i)))
			}
		}
	}
	walk("", reflect.ValueOf(defaults()))
	return keys, values
}

// unknownKeys reports every key of settings (viper's nested maps, keys
// lower-cased) that t does not know, so that a typo never passes silently.
func unknownKeys(prefix string, t reflect.Type, settings map[string]any) []Problem {
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		if name := tagName(t.Field(i)); name != "" {
			fields[name] = t.Field(i).Type
			names = append(names, name)
		}
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var problems []Problem
	for _, k := range keys {
		ft, ok := fields[strings.ToLower(k)]
		if !ok {
			msg := "unknown key"
			if s := closest(strings.ToLower(k), names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", prefix+s)
			}
			problems = append(problems, Problem{Key: prefix + k, Message: msg})
			continue
		}
		switch kindOf(ft) {
		case kindSection:
			if m, ok := settings[k].(map[string]any); ok {
				problems = append(problems, unknownKeys(prefix+k+".", ft, m)...)
			}
		case kindStructList:
			items, _ := settings[k].([]any)
			for i, item := range items {
				if m, ok := item.(map[string]any); ok {
					problems = append(problems, unknownKeys(fmt.Sprintf("%s%s[%d].", prefix, k, i), ft.Elem(), m)...)
				}
			}
		}
	}
	return problems
}

// closest returns the name within edit distance 2 of k, if any.
func closest(k string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeHook converts what YAML and the environment give into Config's
// types. It replaces viper's default hooks, so durations are handled here.
func decodeHook() mapstructure.DecodeHookFunc {
	return mapstructure.ComposeDecodeHookFunc(durationHook, fileModeHook, dateHook, stringListHook, textHook)
}

var (
	clockType = reflect.TypeFor[sla.ClockTime]()
	dateType  = reflect.TypeFor[sla.Date]()
)

// isText reports the types Config holds parsed but that are written as
// text: a time of day (or a pointer to one, for "none") and a date.
func isText(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t == clockType || t == dateType
}

// textDefault is a default as the file or the environment would write it,
// so that every layer reaches textHook as text.
func textDefault(v reflect.Value) any {
	switch {
	case v.Kind() == reflect.Pointer && isText(v.Type()):
		if v.IsNil() {
			return ""
		}
		return textDefault(v.Elem())
	case isText(v.Type()):
		b, _ := v.Interface().(encoding.TextMarshaler).MarshalText()
		return string(b)
	case v.Kind() == reflect.Slice && isText(v.Type().Elem()):
		if v.IsNil() {
			return []string(nil)
		}
		out := make([]string, v.Len())
		for i := range out {
			out[i] = textDefault(v.Index(i)).(string)
		}
		return out
	}
	return v.Interface()
}

// textHook parses times of day and dates, the one time they are parsed
// (with sla's parsers). "" is no daily backup for a *sla.ClockTime and
// missing for a sla.ClockTime.
func textHook(from, to reflect.Type, data any) (any, error) {
	if !isText(to) || isText(from) {
		return data, nil
	}
	if from.Kind() != reflect.String {
		// YAML's 8 or {hour: 8}: say what is wanted, not "a mapping".
		return nil, fmt.Errorf("%v is not %s", data, typeWord(to))
	}
	s := strings.TrimSpace(data.(string))
	switch to {
	case dateType:
		d, err := sla.ParseDate(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a date YYYY-MM-DD", s)
		}
		return d, nil
	case reflect.PointerTo(clockType):
		if s == "" {
			return (*sla.ClockTime)(nil), nil
		}
	}
	if s == "" {
		return nil, errors.New("required")
	}
	c, err := sla.ParseClockTime(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	if to.Kind() == reflect.Pointer {
		return &c, nil
	}
	return c, nil
}

// dateHook gives back the text of a date: YAML reads a bare 2026-12-24 (in
// sla.closures, a customer's closures or open_dates) as a timestamp, where
// deskd wants the date. A timestamp with a time of day keeps it, so that
// textHook refuses it as no date.
func dateHook(from, to reflect.Type, data any) (any, error) {
	if from != timeType || (to.Kind() != reflect.String && to != dateType) {
		return data, nil
	}
	t := data.(time.Time)
	if t.Location() == time.UTC && t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format(time.DateOnly), nil
	}
	return t.Format(time.RFC3339Nano), nil
}

var timeType = reflect.TypeFor[time.Time]()

// durationHook parses "5m"; a bare number is refused, since 300 would be
// 300 nanoseconds rather than the 5 minutes someone meant.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		d, err := time.ParseDuration(strings.TrimSpace(data.(string)))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (e.g. \"90s\", \"5m\", \"72h\")", data)
		}
		return d, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, fmt.Errorf("%v has no unit; write a duration such as \"5m\" or \"72h\"", data)
	}
	return data, nil
}

// fileModeHook reads a string as octal ("0660", "660", "0o660"); an integer
// is taken as is (YAML already reads 0660 as octal) and checked by Validate.
func fileModeHook(from, to reflect.Type, data any) (any, error) {
	if to != fileModeType || from.Kind() != reflect.String {
		return data, nil
	}
	s := strings.TrimPrefix(strings.TrimSpace(data.(string)), "0o")
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return nil, fmt.Errorf("%q is not an octal file mode (e.g. \"0660\")", data)
	}
	return m, nil
}

// stringListHook lets one string stand for a list: "a@x.nl" or, from the
// environment, "a@x.nl, b@x.nl".
func stringListHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice || (to.Elem().Kind() != reflect.String && !isText(to.Elem())) {
		return data, nil
	}
	var out []string
	for _, part := range strings.Split(data.(string), ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out, nil
}

// decodeProblems turns mapstructure's joined errors into one Problem per
// offending key (mapstructure names them "imap.port", "customers[0].plan").
func decodeProblems(err error) []Problem {
	var problems []Problem
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		de, ok := err.(*mapstructure.DecodeError)
		if !ok {
			if inner := errors.Unwrap(err); inner != nil {
				walk(inner) // viper's "decoding failed" wrapper
			} else {
				problems = append(problems, Problem{Key: "", Message: err.Error()})
			}
			return
		}
		inner := de.Unwrap()
		var deeper *mapstructure.DecodeError
		if _, joined := inner.(interface{ Unwrap() []error }); joined || errors.As(inner, &deeper) {
			walk(inner)
			return
		}
		problems = append(problems, Problem{Key: de.Name(), Message: decodeMessage(inner)})
	}
	walk(err)
	return problems
}

func decodeMessage(err error) string {
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("cannot read %q as %s", fmt.Sprint(pe.Value), typeWord(pe.Expected.Type()))
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ue) {
		return fmt.Sprintf("expected %s, got %s", typeWord(ue.Expected.Type()), valueWord(ue.Value))
	}
	return err.Error()
}

func typeWord(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration"
	case t == fileModeType:
		return "a file mode"
	case t == clockType || t == reflect.PointerTo(clockType):
		return "a time of day HH:MM"
	case t == dateType:
		return "a date YYYY-MM-DD"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "a single value"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Struct:
		return "a mapping of keys"
	}
	return t.String()
}

func valueWord(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%v", v)
}
