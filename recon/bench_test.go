package recon_test

import (
	"fmt"
	"testing"

	"smp"
	"smp/recon"
)

// BenchmarkReconcile: one reconciliation run over n partners, each with
// one top-up paid and notified on the day (the daily file read over HTTP
// from the simulator, the ledger read, every row compared and the run
// with its rows committed). Run it short:
//
//	go test ./recon -run '^$' -bench Reconcile -benchtime 3x
func BenchmarkReconcile(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("partners=%d", n), func(b *testing.B) {
			f := newFixture(b)
			for i := range n {
				id := fmt.Sprintf("B%04d", i)
				if err := f.store.UpsertPartner(ctx, &smp.Partner{ID: id, Name: "Bench " + id}); err != nil {
					b.Fatal(err)
				}
				f.topup(b, id, 100_000+int64(i), false)
			}
			f.clock.Set(runAt)
			b.ResetTimer()
			for range b.N {
				r, err := f.rec.Run(ctx, day, recon.Trigger{})
				if err != nil || r.Partners != n || r.Verdict != smp.ReconOK {
					b.Fatalf("run %+v %v", r, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/partner")
		})
	}
}
