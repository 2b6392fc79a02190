package dispatch_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/inmem"
	"smp/internal/wait"
)

// failingCloses is the in-process invitation store whose CloseOrder
// fails, withdrawing and deleting nothing, as many times as fail says
// (Redis refusing the script: out of memory, unreachable).
type failingCloses struct {
	smp.InvitationStore
	fail   atomic.Int32 // how many of the next CloseOrder calls fail
	failed atomic.Int32 // how many did
}

func (s *failingCloses) CloseOrder(ctx context.Context, orderID, winner string) ([]smp.Invitation, error) {
	for n := s.fail.Load(); n > 0; n = s.fail.Load() {
		if s.fail.CompareAndSwap(n, n-1) {
			s.failed.Add(1)
			return nil, smp.Errorf(smp.EUNAVAILABLE, "failingCloses: injected fault")
		}
	}
	return s.InvitationStore.CloseOrder(ctx, orderID, winner)
}

// TestFailedCloseAtAcceptIsRepeatedByRoundEnd: when the accept's closeRun
// fails to delete the order's invitations, the round's end deletes them
// (the accept does not retry): the other technicians hold no stale offer
// of the assigned order until its expiry. The order.assigned event's
// closeRun would repeat the deletion too, so the engine runs without its
// intake here (a lagging bus): the round's end alone must do it. Marked
// cleaned before the deletion, the round saw nothing to delete (2279dfd).
func TestFailedCloseAtAcceptIsRepeatedByRoundEnd(t *testing.T) {
	t.Parallel()
	fc := &failingCloses{InvitationStore: inmem.NewInvitations()}
	h := newHarness(t, options{waveSize: 3, maxWaves: 1, ttl: 30 * time.Second, invs: fc, noIntake: true})
	ctx := context.Background()
	for _, id := range []string{"T1", "T2", "T3"} {
		h.addTech(id, lat0+0.001, lng0)
	}
	o := h.createOrder(lat0, lng0)
	h.waitOffered(o.ID, 3)
	fc.fail.Store(1)
	if _, err := h.engine.Accept(ctx, "T1", o.ID); err != nil {
		t.Fatal(err)
	}
	if n := fc.failed.Load(); n != 1 {
		t.Fatalf("%d CloseOrder calls failed, want 1: the test shows nothing", n)
	}
	wait.Until(t, 10*time.Second, "the round's end", func() bool { return h.gauge("smp_dispatch_active") == 0 })
	wait.Until(t, 5*time.Second, "the assigned order's invitations deleted", func() bool {
		invs, err := h.invs.ForOrder(ctx, o.ID)
		return err == nil && len(invs) == 0
	})
	for _, tech := range []string{"T2", "T3"} {
		if invs, err := h.invs.ForTechnician(ctx, tech); err != nil || len(invs) != 0 {
			t.Fatalf("%s holds %v (err %v) after the round's end", tech, invs, err)
		}
		msgs := h.notes.of(tech)
		if last := msgs[len(msgs)-1]; last.Type != "offer_withdrawn" || last.OrderID != o.ID {
			t.Fatalf("%s was last told %+v, want the withdrawal of %s", tech, last, o.ID)
		}
	}
}
