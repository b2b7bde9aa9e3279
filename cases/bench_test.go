package cases

import (
	"fmt"
	"testing"
)

// BenchmarkDecide is the CPU of one decision (a new question from a
// customer's contact: classification, threading, the case and its
// acknowledgement), without the store or the network around it; the
// README's "CPU per decision" figure:
//
//	go test -run '^$' -bench Decide ./cases/
func BenchmarkDecide(b *testing.B) {
	p := testPolicy()
	e := NewEngine(p)
	f := newFake(1)
	ins := make([]*Inbound, b.N)
	for i := range ins {
		in := msg("anna@jansen.example", fmt.Sprintf("Kassa %d start niet op", i))
		in.MessageID = fmt.Sprintf("q%d@jansen.example", i)
		in.DedupeKey = "mid:" + in.MessageID
		ins[i] = in
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := e.Decide(ins[i], f, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
