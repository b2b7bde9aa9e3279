package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"deskd/internal/gen"
)

// The start line summarises the configuration: with 200 customers it
// stays short, and its digest tells two configurations apart without
// printing them (or their secrets).
func TestConfigSummary(t *testing.T) {
	dir := t.TempDir()
	load := func(name, yaml string) []any {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		return configSummary(cfg)
	}
	custs := gen.Customers(200)
	base := gen.ConfigYAML(custs, filepath.Join(dir, "deskd.db"), filepath.Join(dir, "admin.sock"), "127.0.0.1:1143", "127.0.0.1:1025")
	a := load("a.yaml", base)
	line := fmt.Sprint(a...)
	if len(line) > 400 || strings.Contains(line, "cust001.example") || !strings.Contains(line, "config_sha256") {
		t.Errorf("summary of a 200-customer configuration: %d bytes: %s", len(line), line)
	}
	if got := fmt.Sprint(load("again.yaml", base)...); got != line {
		t.Errorf("same configuration, two summaries:\n%s\n%s", line, got)
	}
	other := strings.Replace(base, "anna@cust007.example", "anne@cust007.example", 1)
	if got := fmt.Sprint(load("b.yaml", other)...); got == line {
		t.Error("another contact, same summary")
	}
	secret := strings.Replace(base, "password: pw", "password: other", 1)
	if got := fmt.Sprint(load("c.yaml", secret)...); got != line {
		t.Error("the password changed the summary: it must stay redacted")
	}
}
