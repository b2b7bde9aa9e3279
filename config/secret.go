package config

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"time"
)

// redacted is what a set secret shows instead of its value.
const redacted = "[redacted]"

// Secret is a password or key. It never shows its value: fmt (every verb,
// %#v included), slog, encoding/json and any encoder that honours
// encoding.TextMarshaler (YAML too) see "[redacted]", or "" when it is
// unset, so that "is it set?" stays answerable. Reveal returns the value.
type Secret string

// Reveal returns the secret itself, for the one place that must use it.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" for an unset secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Format makes every fmt verb print String, so %x, %q or %#v cannot leak it.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = io.WriteString(f, strconv.Quote(s.String()))
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (used by JSON and YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Redacted returns a deep copy of c in which every set secret is replaced by
// the literal "[redacted]", safe to hand to any encoder or printer
// (e.g. "deskd config show").
func (c *Config) Redacted() *Config {
	r := *c
	r.IMAP.Password = Secret(r.IMAP.Password.String())
	r.SMTP.Password = Secret(r.SMTP.Password.String())
	r.Support.HMACKey = Secret(r.Support.HMACKey.String())
	r.OAuth2.ClientSecret = Secret(r.OAuth2.ClientSecret.String())
	r.OAuth2.RefreshToken = Secret(r.OAuth2.RefreshToken.String())
	r.OAuth2.Scopes = cloneStrings(c.OAuth2.Scopes)
	r.Staff.Addresses = cloneStrings(c.Staff.Addresses)
	r.Staff.Domains = cloneStrings(c.Staff.Domains)
	r.Staff.Notify = cloneStrings(c.Staff.Notify)
	r.Staff.SecondLine = cloneStrings(c.Staff.SecondLine)
	r.Staff.Escalation = cloneStrings(c.Staff.Escalation)
	r.Staff.EscalationTier2 = cloneStrings(c.Staff.EscalationTier2)
	r.SLA.Closures = slices.Clone(c.SLA.Closures)
	r.SLA.Holidays.Skip = cloneStrings(c.SLA.Holidays.Skip)
	if c.Backup.DailyAt != nil {
		at := *c.Backup.DailyAt
		r.Backup.DailyAt = &at
	}
	if c.Customers != nil {
		r.Customers = make([]Customer, len(c.Customers))
		for i, cu := range c.Customers {
			cu.Domains = cloneStrings(cu.Domains)
			cu.Closures = slices.Clone(cu.Closures)
			cu.OpenDates = slices.Clone(cu.OpenDates)
			if cu.Contacts != nil {
				cu.Contacts = append([]Contact(nil), cu.Contacts...)
			}
			r.Customers[i] = cu
		}
	}
	return &r
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}

// LogValue implements slog.LogValuer: the whole configuration as nested
// groups named by the YAML keys, secrets redacted.
//
//	logger.Info("config loaded", "config", cfg)
func (c *Config) LogValue() slog.Value {
	return logValue(reflect.ValueOf(*c))
}

var (
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[time.Duration]()
	fileModeType = reflect.TypeFor[os.FileMode]()
)

func logValue(v reflect.Value) slog.Value {
	switch {
	case isText(v.Type()) || v.Kind() == reflect.Slice && isText(v.Type().Elem()):
		return slog.AnyValue(textDefault(v)) // "08:00", ["2026-12-24"]
	case v.Type() == secretType:
		return slog.StringValue(v.Interface().(Secret).String())
	case v.Type() == durationType:
		return slog.DurationValue(time.Duration(v.Int()))
	case v.Type() == fileModeType:
		return slog.StringValue(fmt.Sprintf("%#o", v.Uint()))
	}
	switch v.Kind() {
	case reflect.Struct:
		var attrs []slog.Attr
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if name := tagName(f); name != "" {
				attrs = append(attrs, slog.Attr{Key: name, Value: logValue(v.Field(i))})
			}
		}
		return slog.GroupValue(attrs...)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			attrs := make([]slog.Attr, v.Len())
			for i := range v.Len() {
				attrs[i] = slog.Attr{Key: strconv.Itoa(i), Value: logValue(v.Index(i))}
			}
			return slog.GroupValue(attrs...)
		}
		return slog.AnyValue(v.Interface())
	}
	return slog.AnyValue(v.Interface())
}
