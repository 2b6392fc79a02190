package dispatch_test

import (
	"context"
	"testing"
	"time"

	"smp/internal/wait"
)

// TestHeldOrderRecordsOneWave: an order nobody can take is retried every
// RetryAfter; its trace records the empty round once, not a
// dispatch_waves row per retry (a stuck order added one every 14 s).
func TestHeldOrderRecordsOneWave(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 1, maxWaves: 1, retryAfter: 50 * time.Millisecond})
	o := h.createOrder(lat0, lng0) // no technician at all
	wait.Until(t, 20*time.Second, "five rounds that found nobody", func() bool {
		return unlabelled(h, "smp_dispatch_rounds_exhausted_total") >= 5
	})
	tr, err := h.engine.Trace(context.Background(), o.ID)
	must(t, err)
	if len(tr.Waves) != 1 || tr.Waves[0].Candidates != 0 {
		t.Fatalf("%d waves recorded for one hold: %+v", len(tr.Waves), tr.Waves)
	}
	// Once someone is there, the next round is recorded.
	h.addTech("T1", lat0+0.001, lng0)
	h.waitOffered(o.ID, 1)
	tr, err = h.engine.Trace(context.Background(), o.ID)
	must(t, err)
	if len(tr.Waves) != 2 || tr.Waves[1].Candidates != 1 {
		t.Fatalf("waves after a technician came: %+v", tr.Waves)
	}
}

// unlabelled is the value of a counter without labels.
func unlabelled(h *harness, name string) float64 {
	h.t.Helper()
	mfs, err := h.registry.Gather()
	must(h.t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
