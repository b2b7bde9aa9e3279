// Command deskd-gen fills a deskd store with generated cases (internal/gen)
// for benchmarks and capacity tests, and writes a configuration that runs
// deskd against it. It is not part of the deskd binary.
//
//	go run ./cmd/deskd-gen -store /tmp/100k.db -cases 100000 -config /tmp/100k.yaml
//
// The cases are written without what the daemon derives from its SLA
// clocks (each case's report figures, the case list lines): the first
// deskd start on the store computes those in the background, about a
// minute at 1,000,000 cases, as after an upgrade or a change of calendar.
// A benchmark of steady-state work waits for that (daemon.WaitSettled).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"deskd/internal/gen"
	"deskd/store"
)

func main() {
	var (
		path      = flag.String("store", "", "store file to create or extend (required)")
		n         = flag.Int("cases", 10000, "cases to add")
		customers = flag.Int("customers", 200, "customer organisations")
		years     = flag.Int("years", 3, "years the cases are spread over, ending now")
		open      = flag.Float64("open", 0.02, "share of cases still open or pending")
		seed      = flag.Uint64("seed", 1, "random seed")
		batch     = flag.Int("batch", 2000, "cases per transaction")
		config    = flag.String("config", "", "also write a deskd configuration for the store here")
		socket    = flag.String("socket", "", "admin socket for -config (default: the store's path + .sock)")
		imapAddr  = flag.String("imap", "127.0.0.1:1143", "IMAP host:port for -config")
		smtpAddr  = flag.String("smtp", "127.0.0.1:1025", "SMTP host:port for -config")
	)
	flag.Parse()
	if *path == "" || *n <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := store.Open(*path, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "deskd-gen:", err)
		os.Exit(1)
	}
	start := time.Now()
	last := start
	st, err := gen.Generate(ctx, db, gen.Options{
		Cases: *n, Customers: *customers, Span: time.Duration(*years) * 365 * 24 * time.Hour,
		OpenShare: *open, Seed: *seed, Batch: *batch,
		Progress: func(done int) {
			if time.Since(last) > 5*time.Second {
				last = time.Now()
				fmt.Fprintf(os.Stderr, "deskd-gen: %d cases, %.0f/s\n", done, float64(done)/time.Since(start).Seconds())
			}
		},
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "deskd-gen:", err)
		os.Exit(1)
	}
	fi, _ := os.Stat(*path)
	fmt.Printf("%d cases (%d open, %d pending, %d closed), %d messages, %.0f MiB raw mail, store %.0f MiB, in %s\n",
		st.Cases, st.Open, st.Pending, st.Closed, st.Messages, float64(st.RawBytes)/(1<<20), float64(fi.Size())/(1<<20), time.Since(start).Round(time.Millisecond))
	fmt.Println("the first deskd start on it computes the report figures and case list lines in the background (about a minute per million cases)")
	if *config != "" {
		sock := *socket
		if sock == "" {
			sock = *path + ".sock"
		}
		yaml := gen.ConfigYAML(gen.Customers(*customers), *path, sock, *imapAddr, *smtpAddr)
		if err := os.WriteFile(*config, []byte(yaml), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "deskd-gen:", err)
			os.Exit(1)
		}
	}
}
