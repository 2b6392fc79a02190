package dispatch_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/inmem"
	"smp/internal/wait"
)

// TestCancelDuringRoundFreesTechnician: an order cancelled while its round
// chooses a wave (after the round read the order, before it sent the
// offers) leaves its technician no open offer: the cancellation's cleanup
// ran before the offers existed, so the round takes them back itself. Had
// it not, the technician would look held until the offer's expiry (30 s
// here) and the next order nearby would go without them.
func TestCancelDuringRoundFreesTechnician(t *testing.T) {
	t.Parallel()
	var h *harness
	var fired atomic.Bool
	errc := make(chan error, 1)
	// The gate runs inside the round, between its read of the order and
	// its offers: there the order is cancelled and the engine's intake
	// consumes order.cancelled (its closeRun finds nothing to withdraw).
	gate := func(ctx context.Context, found []smp.Candidate) ([]smp.Candidate, error) {
		if !fired.CompareAndSwap(false, true) {
			return found, nil
		}
		errc <- cancelAndDrain(ctx, h)
		return found, nil
	}
	h = newHarness(t, options{waveSize: 1, maxWaves: 1, ttl: 30 * time.Second, offerGate: gate})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	a := h.createOrder(lat0, lng0)
	select {
	case err := <-errc:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the round never reached the offer gate")
	}
	if s := h.stage(a.ID); s != smp.StageCancelled {
		t.Fatalf("order a in %s, want cancelled", s)
	}
	// The round ends (it sees the order closed), and T1 holds no offer.
	wait.Until(t, 5*time.Second, "the round's end", func() bool { return h.gauge("smp_dispatch_active") == 0 })
	wait.Until(t, 5*time.Second, "T1 holds no offer of the cancelled order", func() bool {
		invs, err := h.invs.ForTechnician(ctx, "T1")
		return err == nil && len(invs) == 0
	})
	b := h.createOrder(lat0, lng0)
	h.waitOffered(b.ID, 1)
}

// cancelAndDrain cancels the orders in 02_dispatching and waits until the
// relay has published every event and the engine's intake consumed them.
func cancelAndDrain(ctx context.Context, h *harness) error {
	os, err := h.store.FindOrders(ctx, smp.OrderFilter{Stage: smp.StageDispatching})
	if err != nil {
		return err
	}
	for _, o := range os {
		if _, err := h.orders.Cancel(ctx, o.ID, smp.Actor{Kind: "customer", ID: "C1"}, "changed my mind"); err != nil {
			return err
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		n, err := h.unconsumed(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("%d events still unrelayed or unconsumed after 10 s", n)
		}
	}
}

// gauge returns the value of an unlabelled gauge.
func (h *harness) gauge(name string) float64 {
	h.t.Helper()
	mfs, err := h.registry.Gather()
	must(h.t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	h.t.Fatalf("no gauge %s", name)
	return 0
}

// unconsumed counts the order events not yet relayed (still in the
// outbox) or not yet consumed by the engine's intake.
func (h *harness) unconsumed(ctx context.Context) (int64, error) {
	n, _, err := h.store.OutboxBacklog(ctx)
	if err != nil {
		return 0, err
	}
	lag, err := h.bus.Lag(ctx, "dispatch-engine", []string{smp.TopicOrders})
	if err != nil {
		return 0, err
	}
	for _, v := range lag[smp.TopicOrders] {
		n += v
	}
	return n, nil
}

// raceInvs is the in-process invitation store with the race of a wave
// stored while its order's cancellation runs: the round's first Put waits
// until the cancellation's deletion (CloseOrder) has run, and that
// CloseOrder returns only once the round's Put has stored the wave (the
// round then sends it, or takes it back and its end deletes it again,
// after this CloseOrder: the round's end waits for a deletion under way).
type raceInvs struct {
	smp.InvitationStore
	deleted  chan struct{} // the first CloseOrder's deletion done
	closes   atomic.Int32
	puts     atomic.Int32
	stored   atomic.Bool // the first Put returned
	decided  func() bool
	deadline time.Duration
}

func (s *raceInvs) Put(ctx context.Context, invs ...smp.Invitation) error {
	if s.puts.Add(1) == 1 {
		select {
		case <-s.deleted:
		case <-time.After(s.deadline):
			return fmt.Errorf("raceInvs: the cancellation never deleted the invitations")
		}
	}
	defer s.stored.Store(true)
	return s.InvitationStore.Put(ctx, invs...)
}

func (s *raceInvs) CloseOrder(ctx context.Context, orderID, winner string) ([]smp.Invitation, error) {
	out, err := s.InvitationStore.CloseOrder(ctx, orderID, winner)
	if s.closes.Add(1) == 1 {
		close(s.deleted)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(s.deadline)
		for !s.decided() {
			select {
			case <-tick.C:
			case <-deadline:
				return out, err
			}
		}
	}
	return out, err
}

// TestWaveStoredDuringCloseIsNeverSent: a cancellation's closeRun whose
// deletion runs before the round stores its wave closes the round first,
// so the round, checking after its Put, takes the wave back unsent (and
// its end deletes it). Closing the round after the deletion, as before,
// let the wave go out for the cancelled order.
func TestWaveStoredDuringCloseIsNeverSent(t *testing.T) {
	t.Parallel()
	var h *harness
	var order atomic.Value
	ri := &raceInvs{InvitationStore: inmem.NewInvitations(), deleted: make(chan struct{}), deadline: 10 * time.Second}
	ri.decided = func() bool {
		id, _ := order.Load().(string)
		return ri.stored.Load() || len(h.notes.offered(id)) > 0
	}
	var fired atomic.Bool
	errc := make(chan error, 1)
	// The gate runs in the round before its Put: the cancellation starts
	// there and runs beside the round.
	gate := func(ctx context.Context, found []smp.Candidate) ([]smp.Candidate, error) {
		if fired.CompareAndSwap(false, true) {
			go func() { errc <- cancelAndDrain(context.Background(), h) }()
		}
		return found, nil
	}
	h = newHarness(t, options{waveSize: 1, maxWaves: 1, ttl: 30 * time.Second, offerGate: gate, invs: ri})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	a := h.createOrder(lat0, lng0)
	order.Store(a.ID)
	select {
	case err := <-errc:
		must(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("the cancellation never finished")
	}
	wait.Until(t, 5*time.Second, "the round's end", func() bool { return h.gauge("smp_dispatch_active") == 0 })
	if got := h.notes.offered(a.ID); len(got) != 0 {
		t.Fatalf("order %s was offered to %v after its cancellation", a.ID, got)
	}
	wait.Until(t, 5*time.Second, "T1 holds no offer of the cancelled order", func() bool {
		invs, err := h.invs.ForTechnician(ctx, "T1")
		return err == nil && len(invs) == 0
	})
}
