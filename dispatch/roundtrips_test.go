package dispatch_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"smp"
	"smp/internal/envtest"
	"smp/internal/wait"
	"smp/redisstore"
)

// openRedis returns a Redis store under a throwaway key prefix.
func openRedis(t *testing.T) *redisstore.Store {
	t.Helper()
	addr, why := envtest.RedisAddr()
	if addr == "" {
		envtest.Skip(t, "Redis", why)
	}
	b := make([]byte, 4)
	rand.Read(b)
	s, err := redisstore.Open(context.Background(), redisstore.Config{Addr: addr, Prefix: "tdisp" + hex.EncodeToString(b) + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := s.Client().Scan(ctx, 0, s.Prefix()+"*", 500).Iterator()
		for iter.Next(ctx) {
			s.Client().Unlink(ctx, iter.Val())
		}
		s.Close()
	})
	return s
}

// TestRedisRoundTripsPerWaveAndAccept: on Redis (the invitations are the
// engine's only Redis use in this harness), judging a wave reads all its
// invitations in one HMGET, never one HGET each; an accept is one claim
// script (which returns the invitation: no read before it) and one close
// script (withdraw the others, delete the order's invitations), not a
// read, a script per offer and a pipeline.
func TestRedisRoundTripsPerWaveAndAccept(t *testing.T) {
	t.Parallel()
	rs := openRedis(t)
	h := newHarness(t, options{waveSize: 3, maxWaves: 1, ttl: time.Minute, invs: rs.Invitations()})
	ctx := context.Background()
	h.addTech("T1", lat0+0.001, lng0)
	h.addTech("T2", lat0+0.002, lng0)
	h.addTech("T3", lat0+0.003, lng0)
	o := h.createOrder(lat0, lng0)
	h.waitOffered(o.ID, 3)

	// The wave waits for answers, judging it every poll (250 ms).
	before := rs.Counts()
	wait.Until(t, 5*time.Second, "two judgements of the wave", func() bool {
		return rs.Counts().Sub(before).ByName["hmget"] >= 2
	})
	judged := rs.Counts().Sub(before)
	if judged.ByName["hget"] != 0 || judged.Commands != judged.ByName["hmget"] {
		t.Fatalf("judging a wave of 3 took %+v, want only HMGETs", judged)
	}

	// An acknowledgement is one compare-and-set script, which returns the
	// invitation: no HGET before it.
	before = rs.Counts()
	must(t, h.engine.Acknowledge(ctx, "T2", o.ID))
	acked := rs.Counts().Sub(before)
	if acked.ByName["hget"] != 0 || acked.ByName["evalsha"] != 1 || acked.Commands-acked.ByName["hmget"]-acked.ByName["hello"]-acked.ByName["client"] != 1 {
		t.Fatalf("an acknowledgement took %+v, want one script", acked)
	}
	if inv, _, _ := h.invs.Get(ctx, o.ID, "T2"); inv.State != smp.InvitationDelivered {
		t.Fatalf("T2's offer is %s after the acknowledgement", inv.State)
	}
	if err := h.engine.Acknowledge(ctx, "T9", o.ID); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("an acknowledgement of an offer never made: %v", err)
	}

	before = rs.Counts()
	if _, err := h.engine.Accept(ctx, "T1", o.ID); err != nil {
		t.Fatal(err)
	}
	// Count until the order.assigned event is consumed too: it skips the
	// bookkeeping the accept did, unless it arrives before the accept
	// recorded it as done (then one more close script, which finds nothing).
	wait.Until(t, 10*time.Second, "order.assigned consumed", func() bool {
		n, err := h.unconsumed(ctx)
		return err == nil && n == 0
	})
	got := rs.Counts().Sub(before)
	scripts := got.ByName["evalsha"] + got.ByName["eval"]
	other := got.Commands - scripts - got.ByName["hmget"] - got.ByName["hello"] - got.ByName["client"]
	if got.ByName["hget"] != 0 || scripts < 2 || scripts > 3 || other != 0 {
		t.Fatalf("an accept took %+v, want two scripts (claim, close; a third if the event raced the accept) and nothing else but a wave's judgement", got)
	}
	for _, tech := range []string{"T2", "T3"} {
		if msgs := h.notes.of(tech); msgs[len(msgs)-1].Type != "offer_taken" {
			t.Fatalf("%s's last message is %s, want offer_taken", tech, msgs[len(msgs)-1].Type)
		}
	}
	if invs, err := h.invs.ForOrder(ctx, o.ID); err != nil || len(invs) != 0 {
		t.Fatalf("invitations left after the accept: %+v %v", invs, err)
	}
	if n, err := h.invs.Count(ctx); err != nil || n != 0 {
		t.Fatalf("open invitations after the accept: %d %v", n, err)
	}
	if p, _, _ := h.geo.Get(ctx, "T1"); !p.Busy {
		t.Fatal("the winner is not busy")
	}
}
