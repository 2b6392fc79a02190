package dispatch_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smp/internal/wait"

	"smp"
)

// Base point in HCMC; 0.001 degree of latitude is about 111 m.
const lat0, lng0 = 10.78, 106.70

func TestWavesNearestFirstWideningRadius(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 3, steps: []float64{1, 3}})
	ctx := context.Background()
	h.addTech("T1", lat0+0.002, lng0)             // ~220 m
	h.addTech("T2", lat0+0.004, lng0)             // ~440 m
	h.addTech("T3", lat0+0.006, lng0)             // ~670 m
	h.addTech("T4", lat0+0.008, lng0)             // ~890 m, fourth nearest: not in wave 1
	h.addTech("T5", lat0+0.020, lng0)             // ~2.2 km: only in the 3 km ring
	h.addTech("TP", lat0+0.001, lng0, "plumbing") // wrong skill
	h.addTech("TU", lat0+0.001, lng0)
	must(t, h.engine.SetAvailability(ctx, "TU", false)) // not available
	h.addTech("TO", lat0+0.001, lng0)
	h.engine.TechnicianDisconnected(ctx, "TO", "conn-TO") // offline

	o := h.createOrder(lat0, lng0)
	got := h.waitOffered(o.ID, 3)
	slices.Sort(got)
	if !slices.Equal(got, []string{"T1", "T2", "T3"}) {
		t.Fatalf("wave 1 offered %v, want the three nearest free skilled technicians T1 T2 T3", got)
	}
	for _, tech := range got {
		must(t, h.engine.Decline(ctx, tech, o.ID, "busy"))
	}
	wait.Until(t, 10*time.Second, "wave 2", func() bool { return slices.Contains(h.notes.offered(o.ID), "T4") })
	must(t, h.engine.Decline(ctx, "T4", o.ID, "busy"))
	wait.Until(t, 10*time.Second, "wave 3 in the wider ring", func() bool { return slices.Contains(h.notes.offered(o.ID), "T5") })
	if _, err := h.engine.Accept(ctx, "T5", o.ID); err != nil {
		t.Fatalf("accept: %v", err)
	}
	if s := h.stage(o.ID); s != smp.StageAssigned {
		t.Fatalf("stage = %s", s)
	}
	for _, bad := range []string{"TP", "TU", "TO"} {
		if slices.Contains(h.notes.offered(o.ID), bad) {
			t.Errorf("%s was offered the order", bad)
		}
	}

	tr, err := h.engine.Trace(ctx, o.ID)
	must(t, err)
	if len(tr.Waves) != 3 || tr.Waves[0].RadiusM != 1000 || tr.Waves[1].RadiusM != 1000 || tr.Waves[2].RadiusM != 3000 {
		t.Fatalf("waves = %+v, want 1 km, 1 km, 3 km", tr.Waves)
	}
	if tr.Offers[0].TechnicianID != "T1" || tr.Offers[0].Rank != 1 || !strings.Contains(tr.Offers[0].RankReason, "#1 nearest") {
		t.Fatalf("first offer = %+v", tr.Offers[0])
	}
	states := map[string]smp.InvitationState{}
	for _, of := range tr.Offers {
		states[of.TechnicianID] = of.State
		if of.RespondedAt == nil {
			t.Errorf("offer to %s has no response time", of.TechnicianID)
		}
	}
	want := map[string]smp.InvitationState{"T1": "declined", "T2": "declined", "T3": "declined", "T4": "declined", "T5": "accepted"}
	for k, v := range want {
		if states[k] != v {
			t.Errorf("offer to %s is %s, want %s", k, states[k], v)
		}
	}
	if invs, _ := h.invs.ForOrder(ctx, o.ID); len(invs) != 0 {
		t.Fatalf("invitations left after assignment: %v", invs)
	}
}

func TestExpiredOfferLeadsToNextWave(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 1, ttl: 300 * time.Millisecond})
	h.addTech("T1", lat0+0.001, lng0)
	h.addTech("T2", lat0+0.002, lng0)
	o := h.createOrder(lat0, lng0)
	h.waitOffered(o.ID, 1)
	// T1 never answers.
	wait.Until(t, 10*time.Second, "offer to T2 after T1's expired", func() bool { return slices.Contains(h.notes.offered(o.ID), "T2") })
	msgs := h.notes.of("T1")
	if msgs[len(msgs)-1].Type != "offer_expired" {
		t.Fatalf("T1 was not told the offer expired: %+v", msgs)
	}
	if _, err := h.engine.Accept(context.Background(), "T1", o.ID); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("late accept = %v, want ECONFLICT", err)
	}
	if _, err := h.engine.Accept(context.Background(), "T2", o.ID); err != nil {
		t.Fatal(err)
	}
	tr, _ := h.engine.Trace(context.Background(), o.ID)
	if tr.Offers[0].State != smp.InvitationExpired {
		t.Fatalf("T1's offer is %s, want expired", tr.Offers[0].State)
	}
}

// TestExactlyOneWinner: many technicians accept the same order at once;
// exactly one gets it, the others are told it is taken.
func TestExactlyOneWinner(t *testing.T) {
	t.Parallel()
	const acceptors, rounds = 60, 15
	h := newHarness(t, options{waveSize: acceptors, steps: []float64{20}, ttl: 30 * time.Second})
	ctx := context.Background()
	for i := 0; i < acceptors; i++ {
		h.addTech(fmt.Sprintf("T%02d", i), lat0+float64(i)*0.0005, lng0)
	}
	for round := 0; round < rounds; round++ {
		o := h.createOrder(lat0, lng0)
		techs := h.waitOffered(o.ID, acceptors)
		var wg sync.WaitGroup
		start := make(chan struct{})
		var mu sync.Mutex
		var winners []string
		conflicts := 0
		for _, tech := range techs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := h.engine.Accept(ctx, tech, o.ID)
				mu.Lock()
				defer mu.Unlock()
				switch smp.ErrorCode(err) {
				case "":
					winners = append(winners, tech)
				case smp.ECONFLICT:
					conflicts++
				default:
					t.Errorf("accept by %s: %v", tech, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 || conflicts != acceptors-1 {
			t.Fatalf("round %d: winners %v, conflicts %d; want exactly one winner", round, winners, conflicts)
		}
		got, err := h.store.FindOrderByID(ctx, o.ID)
		must(t, err)
		if got.TechnicianID != winners[0] || got.Stage != smp.StageAssigned {
			t.Fatalf("order = %+v, want assigned to %s", got, winners[0])
		}
		for _, tech := range techs {
			msgs := h.notes.of(tech)
			last := msgs[len(msgs)-1]
			if tech == winners[0] && last.Type != "assigned" || tech != winners[0] && last.Type != "offer_taken" {
				t.Fatalf("round %d: %s's last message is %s", round, tech, last.Type)
			}
		}
		if invs, _ := h.invs.ForOrder(ctx, o.ID); len(invs) != 0 {
			t.Fatalf("dispatch:invitations:%s still holds %d invitations", o.ID, len(invs))
		}
		ts, _ := h.store.FindTransitions(ctx, o.ID)
		if n := countTo(ts, smp.StageAssigned); n != 1 {
			t.Fatalf("order assigned %d times", n)
		}
		// Free the winner for the next round.
		_, err = h.orders.StartJob(ctx, o.ID, winners[0])
		must(t, err)
		_, err = h.orders.CompleteJob(ctx, o.ID, winners[0])
		must(t, err)
		wait.Until(t, 10*time.Second, "winner free again", func() bool {
			p, _, _ := h.geo.Get(ctx, winners[0])
			return !p.Busy
		})
	}
	if n := h.counter("smp_dispatch_assignments_total", "mode", "auto"); n != rounds {
		t.Fatalf("smp_dispatch_assignments_total{mode=auto} = %v, want %d", n, rounds)
	}
}

func countTo(ts []smp.Transition, to smp.Stage) int {
	n := 0
	for _, tr := range ts {
		if tr.To == to {
			n++
		}
	}
	return n
}

// TestNoTechnicianDoubleBooked: a technician accepting one order while ops
// assign them another gets at most one.
func TestNoTechnicianDoubleBooked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 1, ttl: 30 * time.Second})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	ops := smp.Principal{Name: "alice", Role: smp.RoleOps}
	for i := 0; i < 25; i++ {
		a := h.createOrder(lat0, lng0)
		h.waitOffered(a.ID, 1)
		b := h.createOrder(lat0+0.01, lng0)
		wait.Until(t, 5*time.Second, "order b in 02", func() bool { return h.stage(b.ID) == smp.StageDispatching })
		var wg sync.WaitGroup
		var errA, errB error
		wg.Add(2)
		go func() { defer wg.Done(); _, errA = h.engine.Accept(ctx, "T1", a.ID) }()
		go func() { defer wg.Done(); _, errB = h.engine.ManualAssign(ctx, b.ID, "T1", ops, "customer VIP", false) }()
		wg.Wait()
		if (errA == nil) == (errB == nil) {
			t.Fatalf("round %d: accept err %v, manual assign err %v: want exactly one to succeed", i, errA, errB)
		}
		tech, err := h.store.FindTechnicianByID(ctx, "T1")
		must(t, err)
		active, _ := h.store.FindOrders(ctx, smp.OrderFilter{TechnicianID: "T1", Stage: smp.StageAssigned})
		if len(active) != 1 || tech.ActiveOrderID != active[0].ID {
			t.Fatalf("round %d: technician holds %d assigned orders (active %q)", i, len(active), tech.ActiveOrderID)
		}
		// Clean up: cancel both orders, which frees T1.
		for _, id := range []string{a.ID, b.ID} {
			_, err := h.orders.Cancel(ctx, id, smp.Actor{Kind: "ops", ID: "alice", Role: smp.RoleOps}, "test cleanup")
			must(t, err)
		}
		wait.Until(t, 5*time.Second, "T1 free", func() bool {
			p, _, _ := h.geo.Get(ctx, "T1")
			inv, _ := h.invs.ForTechnician(ctx, "T1")
			return !p.Busy && len(inv) == 0
		})
	}
}

func TestAutoDispatchFlagAndManualDispatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	h.addTech("T2", lat0+0.002, lng0)
	ops := smp.Principal{Name: "alice", Role: smp.RoleOps}
	if _, err := h.flags.Set(ctx, smp.FlagEnableAutoDispatch, false, ops, ""); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("flag change without reason = %v, want EINVALID", err)
	}
	_, err := h.flags.Set(ctx, smp.FlagEnableAutoDispatch, false, ops, "INC-001 dispatch engine down")
	must(t, err)

	o := h.createOrder(lat0, lng0)
	wait.Until(t, 5*time.Second, "order in 02", func() bool { return h.stage(o.ID) == smp.StageDispatching })
	// Give the engine every chance to (wrongly) dispatch: two sweeps.
	h.engine.TriggerSweep()
	h.engine.TriggerSweep()
	wait.Until(t, 5*time.Second, "intake consumed the event", func() bool {
		lag, _ := h.bus.Lag(ctx, "dispatch-engine", []string{smp.TopicOrders})
		var n int64
		for _, v := range lag[smp.TopicOrders] {
			n += v
		}
		return n == 0
	})
	if got := h.notes.offered(o.ID); len(got) != 0 {
		t.Fatalf("offers sent with auto dispatch off: %v", got)
	}
	if n, _ := h.queue.Len(ctx, "HCMC"); n != 0 {
		t.Fatalf("queue length %d with auto dispatch off", n)
	}

	// Manual dispatch: validation, then success with an audit entry.
	if _, err := h.engine.ManualAssign(ctx, o.ID, "T1", ops, "", false); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("assign without reason = %v", err)
	}
	if _, err := h.engine.ManualAssign(ctx, o.ID, "nobody", ops, "ok reason", false); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("assign to unknown technician = %v", err)
	}
	got, err := h.engine.ManualAssign(ctx, o.ID, "T2", ops, "customer called twice", false)
	must(t, err)
	if got.Stage != smp.StageAssigned || got.TechnicianID != "T2" {
		t.Fatalf("order = %+v", got)
	}
	if msgs := h.notes.of("T2"); len(msgs) == 0 || msgs[len(msgs)-1].Type != "assigned" {
		t.Fatalf("T2 not notified: %+v", msgs)
	}
	audit, err := h.store.FindAudit(ctx, smp.AuditFilter{Target: "order:" + o.ID})
	must(t, err)
	if len(audit) != 1 || audit[0].Actor != "alice" || audit[0].Reason != "customer called twice" ||
		!strings.Contains(audit[0].Before, `"stage":"02_dispatching"`) || !strings.Contains(audit[0].After, `"technician_id":"T2"`) {
		t.Fatalf("audit = %+v", audit)
	}
	flagAudit, _ := h.store.FindAudit(ctx, smp.AuditFilter{Action: "flag.set"})
	if len(flagAudit) != 1 || flagAudit[0].Before != "true" || flagAudit[0].After != "false" {
		t.Fatalf("flag audit = %+v", flagAudit)
	}
	if _, err := h.engine.ManualAssign(ctx, o.ID, "T1", ops, "again", false); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("second manual assign = %v, want ECONFLICT", err)
	}

	// Turning the flag back on dispatches what waits.
	o2 := h.createOrder(lat0, lng0)
	wait.Until(t, 5*time.Second, "o2 in 02", func() bool { return h.stage(o2.ID) == smp.StageDispatching })
	_, err = h.flags.Set(ctx, smp.FlagEnableAutoDispatch, true, ops, "engine recovered")
	must(t, err)
	h.waitOffered(o2.ID, 1)
}

func TestBackpressureNothingDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 1, maxWaves: 1, concurrency: 1, backpressure: 3, ttl: 30 * time.Second})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0) // never answers: the single slot stays busy
	const n = 8
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, h.createOrder(lat0, lng0).ID)
	}
	// One order is being dispatched and the worker may hold one more
	// while it waits for a free slot; the rest wait in the queue.
	wait.Until(t, 10*time.Second, "queue over the threshold", func() bool {
		st, err := h.engine.Stats(ctx)
		return err == nil && st.Backpressure["HCMC"] && st.QueueLength["HCMC"] >= n-2 && st.ActiveDispatches == 1 &&
			st.OrdersPerStage[smp.StageDispatching] == n
	})
	// The intake fills the queue; the engine's worker, waiting for the
	// slot, sees it over the threshold at its next look.
	wait.Until(t, 5*time.Second, "smp_dispatch_backpressure_total counted", func() bool {
		return h.counter("smp_dispatch_backpressure_total", "city", "HCMC") >= 1
	})
	for _, id := range ids {
		if s := h.stage(id); s != smp.StageDispatching {
			t.Fatalf("order %s is %s", id, s)
		}
	}
}

func TestRetryNeverReoffersDecliner(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 1, maxWaves: 1, retryAfter: 200 * time.Millisecond})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	o := h.createOrder(lat0, lng0)
	h.waitOffered(o.ID, 1)
	must(t, h.engine.Decline(ctx, "T1", o.ID, "too far"))
	wait.Until(t, 10*time.Second, "a second round that found nobody", func() bool {
		tr, _ := h.engine.Trace(ctx, o.ID)
		return len(tr.Waves) >= 2 && tr.Waves[len(tr.Waves)-1].Candidates == 0
	})
	h.addTech("T2", lat0+0.003, lng0)
	wait.Until(t, 10*time.Second, "offer to T2 in a later round", func() bool { return slices.Contains(h.notes.offered(o.ID), "T2") })
	if n := len(h.notes.offered(o.ID)); n != 2 {
		t.Fatalf("offers = %v: T1 was offered again after declining", h.notes.offered(o.ID))
	}
	if h.stage(o.ID) != smp.StageDispatching {
		t.Fatalf("stage %s", h.stage(o.ID))
	}
}

func TestReconnectResumesOpenOffers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 1, ttl: 30 * time.Second})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	o := h.createOrder(lat0, lng0)
	h.waitOffered(o.ID, 1)
	h.engine.TechnicianDisconnected(ctx, "T1", "conn-T1")
	msgs, err := h.engine.TechnicianConnected(ctx, "T1", "conn-T1b")
	must(t, err)
	if len(msgs) != 1 || msgs[0].Type != "offer" || msgs[0].OrderID != o.ID || msgs[0].ExpiresAt == nil {
		t.Fatalf("resumed = %+v", msgs)
	}
	if _, err := h.engine.Accept(ctx, "T1", o.ID); err != nil {
		t.Fatal(err)
	}
	msgs, err = h.engine.TechnicianConnected(ctx, "T1", "conn-T1c")
	must(t, err)
	if len(msgs) != 1 || msgs[0].Type != "assigned" {
		t.Fatalf("after assignment, resumed = %+v", msgs)
	}
}

// BenchmarkCreateToFirstOffer measures order creation to the first offer
// handed to a technician's connection, through the outbox, the event log,
// both intakes, the city queue and the candidate search.
func BenchmarkCreateToFirstOffer(b *testing.B) {
	h := newHarness(b, options{waveSize: 3, ttl: time.Minute, steps: []float64{2, 5, 20}})
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		h.addTech(fmt.Sprintf("T%03d", i), 10.70+float64(i%20)*0.009, 106.60+float64(i/20)*0.02)
	}
	ops := smp.Actor{Kind: "ops", ID: "bench", Role: smp.RoleOps}
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		o := h.createOrder(lat0, lng0)
		for m := range h.notes.ch {
			if m.Type == "offer" && m.OrderID == o.ID {
				break
			}
		}
		lat = append(lat, time.Since(start))
		if _, err := h.orders.Cancel(ctx, o.ID, ops, "benchmark cleanup"); err != nil {
			b.Fatal(err)
		}
	}
	reportQuantiles(b, lat)
}

func reportQuantiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// TestRoundEndLeavesNoInvitations: an order nobody took keeps no
// dispatch:invitations:{order} entry (runbook INC-004's leak), and a
// cancelled order's offers are withdrawn so its technician gets the next.
func TestRoundEndLeavesNoInvitations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 1, maxWaves: 1, ttl: 30 * time.Second})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	o := h.createOrder(lat0, lng0)
	h.waitOffered(o.ID, 1)
	must(t, h.engine.Decline(ctx, "T1", o.ID, "no"))
	wait.Until(t, 10*time.Second, "the round to end", func() bool {
		n, _ := h.invs.ForOrder(ctx, o.ID)
		st, _ := h.engine.Stats(ctx)
		return len(n) == 0 && st.ActiveDispatches == 0
	})

	c := h.createOrder(lat0, lng0)
	h.waitOffered(c.ID, 1)
	_, err := h.orders.Cancel(ctx, c.ID, smp.Actor{Kind: "customer", ID: "C1"}, "")
	must(t, err)
	wait.Until(t, 10*time.Second, "the cancelled order's offer withdrawn", func() bool {
		msgs := h.notes.of("T1")
		return msgs[len(msgs)-1].Type == "offer_withdrawn" && msgs[len(msgs)-1].OrderID == c.ID
	})
	if _, err := h.engine.Accept(ctx, "T1", c.ID); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("accepting a cancelled order's offer = %v", err)
	}
	next := h.createOrder(lat0, lng0)
	h.waitOffered(next.ID, 1)
	if n, _ := h.invs.Count(ctx); n != 1 {
		t.Fatalf("open invitations = %d, want only next's", n)
	}
}

// TestAcceptBookkeepingOutlivesTheCaller: once the assignment has
// committed, the trace and the clean-up are completed even if the
// technician's connection (the caller's context) goes away right then.
func TestAcceptBookkeepingOutlivesTheCaller(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var orderID atomic.Value
	orderID.Store("")
	var h *harness
	h = newHarness(t, options{waveSize: 1, ttl: 30 * time.Second, afterCommit: func() {
		// The caller leaves the moment the assignment is committed.
		if id := orderID.Load().(string); id != "" && h.stage(id) == smp.StageAssigned {
			cancel()
		}
	}})
	h.addTech("T1", lat0+0.001, lng0)
	o := h.createOrder(lat0, lng0)
	h.waitOffered(o.ID, 1)
	orderID.Store(o.ID)
	if _, err := h.engine.Accept(ctx, "T1", o.ID); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Fatal("the caller's context was not cancelled: the test shows nothing")
	}
	tr, err := h.engine.Trace(context.Background(), o.ID)
	must(t, err)
	if len(tr.Offers) != 1 || tr.Offers[0].State != smp.InvitationAccepted || tr.Offers[0].RespondedAt == nil {
		t.Fatalf("trace after a caller who left: %+v", tr.Offers)
	}
	if invs, _ := h.invs.ForOrder(context.Background(), o.ID); len(invs) != 0 {
		t.Fatalf("invitations left: %v", invs)
	}
}

// lenCounter is the shared queue, counting its Len calls.
type lenCounter struct {
	smp.DispatchQueue
	n atomic.Int64
}

func (q *lenCounter) Len(ctx context.Context, city string) (int64, error) {
	q.n.Add(1)
	return q.DispatchQueue.Len(ctx, city)
}

// TestPopWithFreeSlotReadsNoLength: a worker that pops an order and finds
// a dispatch slot free does not read the queue's length (an LLEN per
// order on Redis): the queue builds up only while every slot is busy, and
// then the worker looks (TestBackpressureNothingDropped).
func TestPopWithFreeSlotReadsNoLength(t *testing.T) {
	t.Parallel()
	lc := &lenCounter{}
	// No sweep: its re-queueing looks at the length too.
	h := newHarness(t, options{waveSize: 1, maxWaves: 1, ttl: 30 * time.Second, sweep: time.Hour, queue: func(q smp.DispatchQueue) smp.DispatchQueue {
		lc.DispatchQueue = q
		return lc
	}})
	h.addTech("T1", lat0+0.001, lng0)
	h.addTech("T2", lat0+0.002, lng0)
	for range 2 {
		o := h.createOrder(lat0, lng0)
		h.waitOffered(o.ID, 1)
	}
	if n := lc.n.Load(); n != 0 {
		t.Fatalf("the queue's length was read %d times for two orders popped with a slot free", n)
	}
}
