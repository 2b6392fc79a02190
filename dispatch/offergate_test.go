package dispatch_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
)

// TestOfferGateKeepsOffersFromBlockedTechnicians: candidates the gate
// drops (a partner's wallet below its floor, issue 17) get no offer; when
// the gate lets them through again, they do.
func TestOfferGateKeepsOffersFromBlockedTechnicians(t *testing.T) {
	t.Parallel()
	var blocked atomic.Bool
	blocked.Store(true)
	gate := func(_ context.Context, found []smp.Candidate) ([]smp.Candidate, error) {
		if !blocked.Load() {
			return found, nil
		}
		return slices.DeleteFunc(found, func(c smp.Candidate) bool { return c.TechnicianID == "T_NEAR" }), nil
	}
	h := newHarness(t, options{waveSize: 5, maxWaves: 1, steps: []float64{5}, ttl: time.Second, offerGate: gate})
	ctx := context.Background()
	h.addTech("T_NEAR", 10.7779, 106.7009)
	h.addTech("T_FAR", 10.7969, 106.7009)
	o := h.createOrder(10.7769, 106.7009)
	if got := h.waitOffered(o.ID, 1); !slices.Equal(got, []string{"T_FAR"}) {
		t.Fatalf("blocked: offers went to %v, want [T_FAR]", got)
	}
	_, err := h.orders.Cancel(ctx, o.ID, smp.Actor{Kind: "customer", ID: "C1"}, "next step")
	must(t, err)
	wait.Until(t, 10*time.Second, "offers withdrawn", func() bool {
		n, err := h.invs.Count(ctx)
		return err == nil && n == 0
	})
	blocked.Store(false)
	o = h.createOrder(10.7769, 106.7009)
	got := h.waitOffered(o.ID, 2)
	slices.Sort(got)
	if !slices.Equal(got, []string{"T_FAR", "T_NEAR"}) {
		t.Fatalf("unblocked: offers went to %v", got)
	}
}
