package dispatch_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
)

// clock is the engine's injected clock: the wall clock plus an offset a
// test moves forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time            { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration)   { c.offset.Add(int64(d)) }
func newClock() (*clock, func() time.Time) { c := &clock{}; return c, c.Now }

// TestLostAcceptMovesOn (issue 14 item 4): the process handling an accept
// dies after the invitation became accepted and before the assignment
// committed. After the offer's expiry plus AcceptTimeout the round treats
// the accept as lost and offers the order to the next technician.
func TestLostAcceptMovesOn(t *testing.T) {
	t.Parallel()
	clk, now := newClock()
	h := newHarness(t, options{waveSize: 1, maxWaves: 3, ttl: 2 * time.Second, acceptTimeout: 5 * time.Second, now: now})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	h.addTech("T2", lat0+0.003, lng0)
	o := h.createOrder(lat0, lng0)
	if got := h.waitOffered(o.ID, 1); !slices.Equal(got, []string{"T1"}) {
		t.Fatalf("wave 1 offered %v, want T1", got)
	}
	// The accept's first step, then the process dies: no assignment.
	_, ok, err := h.invs.CompareAndSet(ctx, o.ID, "T1", []smp.InvitationState{smp.InvitationSent, smp.InvitationDelivered}, smp.InvitationAccepted)
	if err != nil || !ok {
		t.Fatalf("accept CAS: %v %v", ok, err)
	}
	clk.Advance(2*time.Second + 5*time.Second + time.Second)
	wait.Until(t, 5*time.Second, "the order offered to T2 after the lost accept", func() bool {
		return slices.Contains(h.notes.offered(o.ID), "T2")
	})
	if _, err := h.engine.Accept(ctx, "T2", o.ID); err != nil {
		t.Fatalf("T2's accept: %v", err)
	}
	if s := h.stage(o.ID); s != smp.StageAssigned {
		t.Fatalf("stage = %s", s)
	}
	tr, err := h.engine.Trace(ctx, o.ID)
	must(t, err)
	states := map[string]smp.InvitationState{}
	for _, of := range tr.Offers {
		states[of.TechnicianID] = of.State
	}
	if states["T1"] != smp.InvitationExpired || states["T2"] != smp.InvitationAccepted {
		t.Fatalf("offer states = %v, want T1 expired (its accept lost), T2 accepted", states)
	}
	if v := h.counter("smp_dispatch_offers_total", "outcome", "lost"); v != 1 {
		t.Fatalf("lost offers = %v, want 1", v)
	}
	if !slices.ContainsFunc(h.notes.of("T1"), func(m smp.TechnicianMessage) bool { return m.Type == "offer_expired" }) {
		t.Fatal("T1 was not told their offer expired")
	}
}

// dyingLocker is a process's view of the shared locker: once dead, the
// process neither renews nor releases (it was SIGKILLed).
type dyingLocker struct {
	smp.Locker
	dead atomic.Bool
}

var errDead = errors.New("the process is dead")

func (l *dyingLocker) TryLock(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if l.dead.Load() {
		return false, errDead
	}
	return l.Locker.TryLock(ctx, key, owner, ttl)
}

func (l *dyingLocker) Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if l.dead.Load() {
		return false, errDead
	}
	return l.Locker.Renew(ctx, key, owner, ttl)
}

func (l *dyingLocker) Unlock(ctx context.Context, key, owner string) error {
	if l.dead.Load() {
		return nil
	}
	return l.Locker.Unlock(ctx, key, owner)
}

// TestDeadHolderLockExpiresInSeconds (issue 14 item 6): while engine A's
// round is alive it renews its short lease, and engine B (another process
// on the same stores) cannot start a second round of the order; once A
// dies holding the lock, B dispatches the order within about one lease.
func TestDeadHolderLockExpiresInSeconds(t *testing.T) {
	t.Parallel()
	const lease = 1500 * time.Millisecond
	var a *dyingLocker
	h := newHarness(t, options{waveSize: 1, maxWaves: 3, ttl: 2 * time.Second, lockLease: lease,
		locker: func(l smp.Locker) smp.Locker { a = &dyingLocker{Locker: l}; return a }})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	h.addTech("T2", lat0+0.003, lng0)
	h.addTech("T3", lat0+0.005, lng0)
	o := h.createOrder(lat0, lng0)
	h.waitOffered(o.ID, 1)

	bNotes := newRecorder()
	b := h.newEngine(h.locker, bNotes, nil)
	must(t, b.Start(ctx))
	t.Cleanup(func() { b.Stop(context.Background()) })
	// A lives on for two leases (its round outlasts them: waves of 2 s):
	// B's sweeps keep finding the order, and never get its lock.
	alive := time.Now().Add(2 * lease)
	for time.Now().Before(alive) {
		if got := bNotes.offered(o.ID); len(got) > 0 {
			t.Fatalf("engine B offered the order to %v while A's round held a renewed lease", got)
		}
		time.Sleep(20 * time.Millisecond) // watching for a wrong offer
	}

	a.dead.Store(true)
	must(t, h.engine.Stop(ctx)) // A's goroutines end; its lock stays behind
	died := time.Now()
	wait.Until(t, 10*time.Second, "engine B offering the order after A died", func() bool { return len(bNotes.offered(o.ID)) > 0 })
	took := time.Since(died)
	if took > lease+3*time.Second {
		t.Fatalf("B offered the order %s after A died, want within the %s lease (+ a sweep)", took, lease)
	}
	tech := bNotes.offered(o.ID)[0]
	if _, err := b.Accept(ctx, tech, o.ID); err != nil {
		t.Fatalf("%s accepting B's offer: %v", tech, err)
	}
	if s := h.stage(o.ID); s != smp.StageAssigned {
		t.Fatalf("stage = %s", s)
	}
	t.Logf("engine B offered the order to %s %s after A died holding its lock (lease %s)", tech, took.Round(time.Millisecond), lease)
}

// TestOlderConnectionCloseKeepsTechnicianOnline (issue 14 item 3, one
// process's view): the close of a technician's older connection, after
// they reconnected, leaves them online and a candidate; only the newest
// connection's close takes them offline.
func TestOlderConnectionCloseKeepsTechnicianOnline(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0) // connection conn-T1
	if _, err := h.engine.TechnicianConnected(ctx, "T1", "conn-T1-new"); err != nil {
		t.Fatal(err)
	}
	h.engine.TechnicianDisconnected(ctx, "T1", "conn-T1") // the old one closes last
	near := func() bool {
		got, err := h.geo.Nearby(ctx, "HCMC", "aircon_repair", lat0, lng0, 1000, 5)
		must(t, err)
		return len(got) == 1
	}
	if !near() {
		t.Fatal("the older connection's close took the technician offline")
	}
	h.engine.TechnicianDisconnected(ctx, "T1", "conn-T1-new")
	if near() {
		t.Fatal("the newest connection's close left the technician online")
	}
}
