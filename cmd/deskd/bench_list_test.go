package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"deskd/internal/gen"
	"deskd/store"
)

// BenchmarkListStore lists the open cases into io.Discard, as a table and
// as JSON lines, as `deskd cases list` does: through the daemon when one
// runs on the configuration's admin socket (this process is then the
// CLI: -cpuprofile profiles its side), else from the store file (both
// sides in one process). DESKD_BENCH_CONFIG names the configuration of a
// store (e.g. a copy of a 1,000,000-case one a daemon has run on, so its
// case list lines are built); without it a store of 10,000 cases is
// generated (no daemon ran on it: every line is replayed).
// DESKD_BENCH_STATUS lists another status ("all": every case).
//
//	DESKD_BENCH_CONFIG=/work/bench/listing.yaml go test -run '^$' -bench ListStore -benchtime 10x -cpuprofile cpu.out ./cmd/deskd/
func BenchmarkListStore(b *testing.B) {
	cfg := os.Getenv("DESKD_BENCH_CONFIG")
	if cfg == "" {
		dir := b.TempDir()
		path := filepath.Join(dir, "deskd.db")
		db, err := store.Open(path, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := gen.Generate(context.Background(), db, gen.Options{Cases: 10000}); err != nil {
			b.Fatal(err)
		}
		db.Close()
		cfg = filepath.Join(dir, "deskd.yaml")
		yaml := gen.ConfigYAML(gen.Customers(200), path, "", "127.0.0.1:1", "127.0.0.1:1")
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	loc, err := locateStore(cfg, "", "")
	if err != nil {
		b.Fatal(err)
	}
	status := os.Getenv("DESKD_BENCH_STATUS")
	if status == "" {
		status = "open"
	}
	for _, format := range []struct {
		name        string
		json, lines bool
	}{{"table", false, false}, {"jsonl", false, true}} {
		b.Run(format.name, func(b *testing.B) {
			for b.Loop() {
				if err := listCases(loc, listArgs{status: status, json: format.json, lines: format.lines}, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
