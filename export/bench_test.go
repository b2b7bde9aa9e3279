package export

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"deskd/cases"
	"deskd/store"
)

// benchWords make mail text that compresses like prose, not like a
// repeated string.
var benchWords = strings.Fields(`de het een en van ik je dat die in is niet te zijn op we
hebben voor met als maar er aan ook nog kan bij uit om dan of wat door naar
printer kassa storing melding server wachtwoord account factuur licentie update
the and to of a in is that for it on with as this be are was have not you`)

// benchMail is a mail of about size bytes, CRLF line ends, like what IMAP
// hands deskd.
func benchMail(rng *rand.Rand, id string, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from mx.customer%d.example (mx.customer.example [192.0.2.%d])\r\n\tby mail.example.test with ESMTPS; Mon, 2 Mar 2026 10:00:00 +0100\r\n", rng.IntN(50), rng.IntN(250))
	fmt.Fprintf(&b, "From: Contact %d <c%d@customer.example>\r\nTo: support@example.test\r\nSubject: Vraag over %s\r\n", rng.IntN(999), rng.IntN(999), benchWords[rng.IntN(len(benchWords))])
	fmt.Fprintf(&b, "Message-ID: <%s@customer.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", id)
	line := 0
	for b.Len() < size {
		w := benchWords[rng.IntN(len(benchWords))]
		b.WriteString(w)
		line += len(w) + 1
		if line > 72 {
			b.WriteString("\r\n")
			line = 0
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// benchStore builds nCases cases of perCase messages of about size bytes
// (the first inbound, then alternately outbound and inbound).
func benchStore(b *testing.B, nCases, perCase, size int) *store.DB {
	b.Helper()
	db, err := store.Open(filepath.Join(b.TempDir(), "deskd.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	const batch = 500
	for start := 0; start < nCases; start += batch {
		err := db.Update(func(tx *store.Tx) error {
			for i := start; i < min(start+batch, nCases); i++ {
				id, err := tx.NextCaseID()
				if err != nil {
					return err
				}
				c := &cases.Case{ID: id, Subject: "Vraag", Status: cases.StatusOpen, Customer: testCustomers[i%len(testCustomers)],
					Requester: cases.Address{Email: "c@customer.example"}, CreatedAt: at, UpdatedAt: at, ReceivedAt: at,
					Events: []cases.Event{{At: at, Type: cases.EventReceived}, {At: at.Add(time.Hour), Type: cases.EventStaffResponse}}}
				for j := range perCase {
					mid := fmt.Sprintf("b%d.%d", i, j)
					m := &cases.Message{Key: "mid:" + mid, CaseID: id, Direction: cases.DirectionIn, Role: cases.RoleCustomer,
						MessageID: mid, From: cases.Address{Email: "c@customer.example"}, Subject: "Vraag", Date: at}
					if j%2 == 1 {
						m.Key, m.Direction, m.Role = "out:"+mid, cases.DirectionOut, cases.RoleDeskd
					}
					raw := benchMail(rng, mid, size)
					m.Size = len(raw)
					if err := tx.PutMessage(m, raw); err != nil {
						return err
					}
					c.MessageKeys = append(c.MessageKeys, m.Key)
				}
				if err := tx.PutCase(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// cpuTime is the process's user and system CPU time so far: on a shared
// machine it says more about the export's own cost than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExport measures an export of everything from a store of
// 10,000 cases × 3 mails of about 4 KB:
//
//	go test -run '^$' -bench Export -benchtime 1x -count 3 ./export/
func BenchmarkExport(b *testing.B) {
	const nCases, perCase, size = 10_000, 3, 4096
	db := benchStore(b, nCases, perCase, size)
	// The limit a directory export chases, in the same run: creating as
	// many directories and files (two per case) with as many bytes, bare.
	b.Run("bare-files", func(b *testing.B) {
		chunk := make([]byte, perCase*size/2)
		for i := range b.N {
			top := filepath.Join(b.TempDir(), fmt.Sprintf("bare%d", i))
			for c := range nCases {
				d := filepath.Join(top, fmt.Sprintf("%05d", c))
				if err := os.MkdirAll(d, 0o700); err != nil {
					b.Fatal(err)
				}
				for _, f := range []string{"case.json", "mails.mbox"} {
					if err := os.WriteFile(filepath.Join(d, f), chunk, 0o600); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		b.ReportMetric(float64(nCases)/(b.Elapsed().Seconds()/float64(b.N)), "cases/s")
	})
	for _, target := range []string{"dir", "zip"} {
		b.Run(target, func(b *testing.B) {
			var st Stats
			cpu0 := cpuTime()
			for i := range b.N {
				path := filepath.Join(b.TempDir(), fmt.Sprintf("export%d", i))
				if target == "zip" {
					path += ".zip"
				}
				st = exportTo(b, db, Selection{All: true}, path, nil)
			}
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(st.Cases)/sec, "cases/s")
			b.ReportMetric(float64(st.RawBytes)/1e6/sec, "rawMB/s")
			b.ReportMetric(float64(st.Bytes)/1e6/sec, "writtenMB/s")
		})
	}
}
