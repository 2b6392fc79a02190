// Package dispatchtest holds the conformance suites of the dispatch-side
// interfaces (queue, invitations, geo index, locker). The in-process and
// Redis implementations both pass them.
package dispatchtest

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"smp"
)

// RunQueue checks a DispatchQueue.
func RunQueue(t *testing.T, newQueue func(t *testing.T) smp.DispatchQueue) {
	t.Run("FIFODedupe", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		q := newQueue(t)
		for _, id := range []string{"a", "b", "a", "c"} {
			must(t, q.Push(ctx, "HCMC", id))
		}
		if n, _ := q.Len(ctx, "HCMC"); n != 3 {
			t.Fatalf("len = %d, want 3 (a queued once)", n)
		}
		for _, want := range []string{"a", "b", "c"} {
			if got, ok, err := q.Pop(ctx, "HCMC", time.Second); err != nil || !ok || got != want {
				t.Fatalf("pop = %q %v %v, want %q", got, ok, err, want)
			}
		}
		if _, ok, _ := q.Pop(ctx, "HCMC", 50*time.Millisecond); ok {
			t.Fatal("pop from an empty queue")
		}
		// Once popped, an order may be queued again.
		must(t, q.Push(ctx, "HCMC", "a"))
		if n, _ := q.Len(ctx, "HCMC"); n != 1 {
			t.Fatalf("len after re-push = %d", n)
		}
	})
	t.Run("PopWaits", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		q := newQueue(t)
		got := make(chan string)
		go func() { id, _, _ := q.Pop(ctx, "HN", 10*time.Second); got <- id }()
		must(t, q.Push(ctx, "HN", "z"))
		select {
		case id := <-got:
			if id != "z" {
				t.Fatalf("waiting pop got %q", id)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiting pop never got the pushed order")
		}
	})
	t.Run("CitiesSeparate", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		q := newQueue(t)
		must(t, q.Push(ctx, "HCMC", "x"))
		if n, _ := q.Len(ctx, "DN"); n != 0 {
			t.Fatalf("DN len = %d", n)
		}
	})
}

// RunInvitations checks an InvitationStore.
func RunInvitations(t *testing.T, newStore func(t *testing.T) smp.InvitationStore) {
	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		now := time.Now().UTC().Truncate(time.Millisecond)
		inv := func(order, tech string, at time.Duration) smp.Invitation {
			return smp.Invitation{ID: order + "/" + tech, OrderID: order, TechnicianID: tech, State: smp.InvitationSent, Wave: 1,
				DistanceM: 120, SentAt: now.Add(at), ExpiresAt: now.Add(at + 20*time.Second)}
		}
		must(t, s.Put(ctx, inv("o1", "t1", 0), inv("o1", "t2", 0), inv("o2", "t1", time.Second)))
		got, ok, err := s.Get(ctx, "o1", "t1")
		if err != nil || !ok || got.ID != "o1/t1" || !got.ExpiresAt.Equal(now.Add(20*time.Second)) || got.DistanceM != 120 {
			t.Fatalf("get = %+v %v %v", got, ok, err)
		}
		if _, ok, _ := s.Get(ctx, "o1", "t9"); ok {
			t.Fatal("found an invitation never made")
		}
		if n, _ := s.Count(ctx); n != 3 {
			t.Fatalf("count = %d", n)
		}
		open := []smp.InvitationState{smp.InvitationSent, smp.InvitationDelivered}
		// The compare and set returns the invitation, as set or as found.
		if inv, ok, err := s.CompareAndSet(ctx, "o1", "t1", []smp.InvitationState{smp.InvitationSent}, smp.InvitationDelivered); err != nil || !ok ||
			inv.ID != "o1/t1" || inv.State != smp.InvitationDelivered || !inv.ExpiresAt.Equal(now.Add(20*time.Second)) {
			t.Fatalf("sent -> delivered: %+v %v %v", inv, ok, err)
		}
		if inv, ok, _ := s.CompareAndSet(ctx, "o1", "t1", []smp.InvitationState{smp.InvitationSent}, smp.InvitationDelivered); ok ||
			inv.ID != "o1/t1" || inv.State != smp.InvitationDelivered {
			t.Fatalf("delivered -> delivered from sent allowed, or not as found: %+v %v", inv, ok)
		}
		if _, ok, _ := s.CompareAndSet(ctx, "o1", "t1", open, smp.InvitationAccepted); !ok {
			t.Fatal("delivered -> accepted refused")
		}
		if inv, ok, _ := s.CompareAndSet(ctx, "o9", "t1", open, smp.InvitationAccepted); ok || inv.ID != "" {
			t.Fatalf("CAS on a missing invitation: %+v %v", inv, ok)
		}
		if n, _ := s.Count(ctx); n != 2 {
			t.Fatalf("open count = %d after one accepted", n)
		}
		mine, _ := s.ForTechnician(ctx, "t1")
		if len(mine) != 1 || mine[0].OrderID != "o2" {
			t.Fatalf("t1's open invitations = %+v", mine)
		}
		all, _ := s.ForOrder(ctx, "o1")
		if len(all) != 2 {
			t.Fatalf("o1's invitations = %+v", all)
		}
		must(t, s.DeleteOrder(ctx, "o1"))
		if all, _ := s.ForOrder(ctx, "o1"); len(all) != 0 {
			t.Fatal("invitations left after DeleteOrder")
		}
		if n, _ := s.Count(ctx); n != 1 {
			t.Fatalf("count after delete = %d", n)
		}
	})
	runClaims(t, newStore)
	t.Run("GetMany", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		now := time.Now().UTC()
		for _, tech := range []string{"t1", "t2"} {
			must(t, s.Put(ctx, smp.Invitation{ID: "i-" + tech, OrderID: "o", TechnicianID: tech, State: smp.InvitationSent, DistanceM: 50, SentAt: now, ExpiresAt: now.Add(time.Minute)}))
		}
		must(t, s.Put(ctx, smp.Invitation{ID: "i-other", OrderID: "o2", TechnicianID: "t3", State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)}))
		if _, ok, _ := s.CompareAndSet(ctx, "o", "t2", []smp.InvitationState{smp.InvitationSent}, smp.InvitationDeclined); !ok {
			t.Fatal("sent -> declined refused")
		}
		got, err := s.GetMany(ctx, "o", []string{"t1", "t2", "t3", "t9"})
		if err != nil || len(got) != 2 || got["t1"].ID != "i-t1" || got["t1"].DistanceM != 50 || !got["t1"].ExpiresAt.Equal(now.Add(time.Minute)) ||
			got["t2"].State != smp.InvitationDeclined {
			t.Fatalf("GetMany = %+v %v, want t1 (sent) and t2 (declined) only", got, err)
		}
		if got, err := s.GetMany(ctx, "o", nil); err != nil || len(got) != 0 {
			t.Fatalf("GetMany of nobody = %v %v", got, err)
		}
	})
	t.Run("CloseOrder", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		now := time.Now().UTC()
		for i, tech := range []string{"t1", "t2", "t3", "t4"} {
			must(t, s.Put(ctx, smp.Invitation{ID: "i-" + tech, OrderID: "o", TechnicianID: tech, State: smp.InvitationSent,
				SentAt: now.Add(time.Duration(i) * time.Millisecond), ExpiresAt: now.Add(time.Minute)}))
		}
		must(t, s.Put(ctx, smp.Invitation{ID: "i-keep", OrderID: "o2", TechnicianID: "t1", State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)}))
		if _, ok, _, err := s.Claim(ctx, "o", "t1", now); err != nil || !ok {
			t.Fatalf("claim = %v %v", ok, err)
		}
		if _, ok, _ := s.CompareAndSet(ctx, "o", "t2", []smp.InvitationState{smp.InvitationSent}, smp.InvitationDeclined); !ok {
			t.Fatal("sent -> declined refused")
		}
		if _, ok, _ := s.CompareAndSet(ctx, "o", "t4", []smp.InvitationState{smp.InvitationSent}, smp.InvitationDelivered); !ok {
			t.Fatal("sent -> delivered refused")
		}
		got, err := s.CloseOrder(ctx, "o", "t1")
		if err != nil || len(got) != 2 || got[0].ID != "i-t3" || got[1].ID != "i-t4" ||
			got[0].State != smp.InvitationWithdrawn || got[1].State != smp.InvitationWithdrawn {
			t.Fatalf("CloseOrder withdrew %+v %v, want i-t3 and i-t4 (the winner's and a declined one are not withdrawn)", got, err)
		}
		if all, _ := s.ForOrder(ctx, "o"); len(all) != 0 {
			t.Fatalf("invitations left after CloseOrder: %+v", all)
		}
		if n, _ := s.Count(ctx); n != 1 {
			t.Fatalf("open count = %d after CloseOrder, want 1 (o2's)", n)
		}
		for _, tech := range []string{"t3", "t4"} {
			if mine, _ := s.ForTechnician(ctx, tech); len(mine) != 0 {
				t.Fatalf("%s still holds %+v", tech, mine)
			}
		}
		if mine, _ := s.ForTechnician(ctx, "t1"); len(mine) != 1 || mine[0].ID != "i-keep" {
			t.Fatalf("t1's other offer = %+v", mine)
		}
		// With no winner (a cancellation) every open one is withdrawn; a
		// closed order closes to nothing.
		got, err = s.CloseOrder(ctx, "o2", "")
		if err != nil || len(got) != 1 || got[0].ID != "i-keep" {
			t.Fatalf("CloseOrder(o2) = %+v %v", got, err)
		}
		if got, err := s.CloseOrder(ctx, "o", ""); err != nil || len(got) != 0 {
			t.Fatalf("second CloseOrder = %+v %v", got, err)
		}
	})
	t.Run("Held", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		now := time.Now().UTC()
		put := func(order, tech string, expires time.Duration) {
			must(t, s.Put(ctx, smp.Invitation{ID: order + "/" + tech, OrderID: order, TechnicianID: tech, State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(expires)}))
		}
		put("o1", "t1", time.Minute)
		put("o2", "t1", time.Minute)
		put("o3", "t1", -time.Second) // past its expiry: holds nobody
		put("o1", "t2", time.Minute)
		put("o4", "t3", time.Minute)
		if _, ok, _ := s.CompareAndSet(ctx, "o1", "t2", []smp.InvitationState{smp.InvitationSent}, smp.InvitationDeclined); !ok {
			t.Fatal("sent -> declined refused")
		}
		got, err := s.Held(ctx, []string{"t1", "t2", "t9"}, now)
		if err != nil || got["t1"] != 2 || got["t2"] != 0 || got["t3"] != 0 || got["t9"] != 0 {
			t.Fatalf("held = %v %v, want t1: 2 and no other", got, err)
		}
		if got, err := s.Held(ctx, nil, now); err != nil || len(got) != 0 {
			t.Fatalf("held of nobody = %v %v", got, err)
		}
	})
	t.Run("ConcurrentCASOneWinner", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		must(t, s.Put(ctx, smp.Invitation{ID: "i", OrderID: "o", TechnicianID: "t", State: smp.InvitationSent, SentAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)}))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				to := smp.InvitationAccepted
				if i%2 == 1 {
					to = smp.InvitationExpired
				}
				_, ok, err := s.CompareAndSet(ctx, "o", "t", []smp.InvitationState{smp.InvitationSent, smp.InvitationDelivered}, to)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d state changes won from one open invitation", wins)
		}
	})
}

// runClaims checks InvitationStore.Claim: one accepted invitation per
// order at a time, whoever races for it.
func runClaims(t *testing.T, newStore func(t *testing.T) smp.InvitationStore) {
	t.Run("ClaimOneHolder", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		now := time.Now()
		for _, tech := range []string{"t1", "t2", "t3"} {
			must(t, s.Put(ctx, smp.Invitation{ID: "i-" + tech, OrderID: "o", TechnicianID: tech, State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)}))
		}
		must(t, s.Put(ctx, smp.Invitation{ID: "i-x", OrderID: "o2", TechnicianID: "t2", State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)}))
		claim := func(tech, wantHolder string, want bool) {
			t.Helper()
			inv, ok, holder, err := s.Claim(ctx, "o", tech, now)
			if err != nil || ok != want || holder != wantHolder {
				t.Fatalf("claim by %s = %v %q %v, want %v %q", tech, ok, holder, err, want, wantHolder)
			}
			if tech != "t9" && (inv.ID != "i-"+tech || ok && inv.State != smp.InvitationAccepted) {
				t.Fatalf("claim by %s returned %+v", tech, inv)
			}
		}
		claim("t1", "", true)
		claim("t1", "", false) // accepted already: not open
		claim("t2", "t1", false)
		if inv, _, _ := s.Get(ctx, "o", "t2"); inv.State != smp.InvitationSent {
			t.Fatalf("a refused claim changed the invitation: %s", inv.State)
		}
		if n, _ := s.Count(ctx); n != 3 {
			t.Fatalf("open count = %d after one claim, want 3", n)
		}
		// Another order's claims are its own.
		if _, ok, _, err := s.Claim(ctx, "o2", "t2", now); err != nil || !ok {
			t.Fatalf("claim of another order = %v %v", ok, err)
		}
		// The holder's assignment failed: the claim is free again.
		if _, ok, _ := s.CompareAndSet(ctx, "o", "t1", []smp.InvitationState{smp.InvitationAccepted}, smp.InvitationWithdrawn); !ok {
			t.Fatal("accepted -> withdrawn refused")
		}
		claim("t2", "", true)
		claim("t3", "t2", false)
		claim("t9", "", false)
		if inv, ok, _, _ := s.Claim(ctx, "o9", "t1", now); ok || inv.ID != "" {
			t.Fatalf("claim of a missing invitation = %+v %v", inv, ok)
		}
	})
	t.Run("ClaimExpired", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		now := time.Now().UTC()
		must(t, s.Put(ctx, smp.Invitation{ID: "i-old", OrderID: "o", TechnicianID: "t1", State: smp.InvitationSent, SentAt: now.Add(-time.Minute), ExpiresAt: now.Add(-time.Second)}))
		must(t, s.Put(ctx, smp.Invitation{ID: "i-new", OrderID: "o", TechnicianID: "t2", State: smp.InvitationDelivered, SentAt: now, ExpiresAt: now.Add(time.Minute)}))
		// Past its expiry: returned open, not claimed, not changed.
		inv, ok, holder, err := s.Claim(ctx, "o", "t1", now)
		if err != nil || ok || holder != "" || inv.ID != "i-old" || inv.State != smp.InvitationSent {
			t.Fatalf("claim of an expired offer = %+v %v %q %v", inv, ok, holder, err)
		}
		// The same offer a second before its expiry is claimed.
		inv, ok, _, err = s.Claim(ctx, "o", "t2", now.Add(59*time.Second))
		if err != nil || !ok || inv.ID != "i-new" || inv.State != smp.InvitationAccepted {
			t.Fatalf("claim of an open offer = %+v %v %v", inv, ok, err)
		}
		if got, _, _ := s.Get(ctx, "o", "t1"); got.State != smp.InvitationSent {
			t.Fatalf("the expired offer moved to %s", got.State)
		}
	})
	t.Run("ClaimExpiryExact", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		// An expiry within a millisecond (900 µs past it), in another zone
		// than UTC: the claim compares at full precision, as
		// !now.Before(ExpiresAt) does.
		base := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
		exp := base.Add(900 * time.Microsecond).In(time.FixedZone("ICT", 7*3600))
		for _, tech := range []string{"t1", "t2", "t3"} {
			must(t, s.Put(ctx, smp.Invitation{ID: "i-" + tech, OrderID: "o-" + tech, TechnicianID: tech, State: smp.InvitationSent, SentAt: base.Add(-time.Minute), ExpiresAt: exp}))
		}
		if _, ok, _, err := s.Claim(ctx, "o-t1", "t1", base.Add(500*time.Microsecond)); err != nil || !ok {
			t.Fatalf("claim 400 µs before the expiry refused: %v %v", ok, err)
		}
		if _, ok, _, err := s.Claim(ctx, "o-t2", "t2", exp.Add(-time.Nanosecond)); err != nil || !ok {
			t.Fatalf("claim a nanosecond before the expiry refused: %v %v", ok, err)
		}
		if inv, ok, _, err := s.Claim(ctx, "o-t3", "t3", exp); err != nil || ok || inv.State != smp.InvitationSent {
			t.Fatalf("claim at the expiry = %+v %v %v", inv, ok, err)
		}
	})
	t.Run("ConcurrentClaimsOneWinner", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		now := time.Now()
		const n = 20
		for i := 0; i < n; i++ {
			tech := fmt.Sprintf("t%02d", i)
			must(t, s.Put(ctx, smp.Invitation{ID: "i-" + tech, OrderID: "o", TechnicianID: tech, State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)}))
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				tech := fmt.Sprintf("t%02d", i)
				_, ok, _, err := s.Claim(ctx, "o", tech, now)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, tech)
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("claims won: %v, want exactly one", winners)
		}
	})
}

// RunGeo checks a GeoIndex.
func RunGeo(t *testing.T, newGeo func(t *testing.T) smp.GeoIndex) {
	t.Run("MatchesBruteForce", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		g := newGeo(t)
		rng := mrand.New(mrand.NewPCG(1, 2))
		all := Fill(t, g, 600, rng)
		for q := 0; q < 60; q++ {
			lat, lng := 10.70+rng.Float64()*0.18, 106.60+rng.Float64()*0.20
			radius := []float64{500, 2000, 5000, 20000}[q%4]
			got, err := g.Nearby(ctx, "HCMC", "plumbing", lat, lng, radius, 10)
			must(t, err)
			var want []smp.Candidate
			for _, p := range all {
				if p.Online && p.Available && !p.Busy && p.Skills[0] == "plumbing" {
					if d := smp.DistanceMeters(lat, lng, p.Lat, p.Lng); d <= radius {
						want = append(want, smp.Candidate{TechnicianID: p.TechnicianID, DistanceM: d})
					}
				}
			}
			sort.Slice(want, func(i, j int) bool { return want[i].DistanceM < want[j].DistanceM })
			if len(want) > 10 {
				want = want[:10]
			}
			if len(got) != len(want) {
				t.Fatalf("query %d: got %d, want %d", q, len(got), len(want))
			}
			for i := range got {
				// Redis geohashes positions (about 0.6 m) and uses an Earth
				// radius of 6372.8 km: compare distances within 0.1 % + 2 m.
				if d := got[i].DistanceM - want[i].DistanceM; d > 2+want[i].DistanceM/1000 || d < -2-want[i].DistanceM/1000 {
					t.Fatalf("query %d rank %d: got %s at %.1f m, want %s at %.1f m", q, i, got[i].TechnicianID, got[i].DistanceM, want[i].TechnicianID, want[i].DistanceM)
				}
			}
		}
	})
	t.Run("UpdateMovesAndFilters", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		g := newGeo(t)
		must(t, g.Upsert(ctx, smp.TechnicianPosition{TechnicianID: "T1", City: "HCMC", Lat: 10.70, Lng: 106.60, Skills: []string{"x", "y"}, Online: true, Available: true}))
		must(t, g.Update(ctx, "T1", smp.TechnicianChange{Set: smp.FieldLocation, To: smp.TechnicianPosition{Lat: 10.85, Lng: 106.75}}))
		if got, _ := g.Nearby(ctx, "HCMC", "x", 10.70, 106.60, 1000, 5); len(got) != 0 {
			t.Fatal("found at the old position")
		}
		if got, _ := g.Nearby(ctx, "HCMC", "y", 10.85, 106.75, 1000, 5); len(got) != 1 {
			t.Fatal("not found at the new position by its second skill")
		}
		free := smp.TechnicianChange{Set: smp.FieldBusy | smp.FieldOnline | smp.FieldAvailable, To: smp.TechnicianPosition{Online: true, Available: true}}
		for _, change := range []smp.TechnicianChange{
			{Set: smp.FieldBusy, To: smp.TechnicianPosition{Busy: true}},
			{Set: smp.FieldOnline},
			{Set: smp.FieldAvailable},
		} {
			must(t, g.Update(ctx, "T1", change))
			if got, _ := g.Nearby(ctx, "HCMC", "x", 10.85, 106.75, 1000, 5); len(got) != 0 {
				t.Fatal("found while not free")
			}
			must(t, g.Update(ctx, "T1", free))
			if got, _ := g.Nearby(ctx, "HCMC", "x", 10.85, 106.75, 1000, 5); len(got) != 1 {
				t.Fatal("not found once free again")
			}
		}
		// A change of the skills and city moves the technician between the sets.
		must(t, g.Update(ctx, "T1", smp.TechnicianChange{Set: smp.FieldSkills, To: smp.TechnicianPosition{Skills: []string{"y", "z"}}}))
		if got, _ := g.Nearby(ctx, "HCMC", "x", 10.85, 106.75, 1000, 5); len(got) != 0 {
			t.Fatal("found by a skill they no longer have")
		}
		if got, _ := g.Nearby(ctx, "HCMC", "z", 10.85, 106.75, 1000, 5); len(got) != 1 {
			t.Fatal("not found by their new skill")
		}
		must(t, g.Update(ctx, "T1", smp.TechnicianChange{Set: smp.FieldCity | smp.FieldSkills, To: smp.TechnicianPosition{City: "HN", Skills: []string{"x", "y"}}}))
		if got, _ := g.Nearby(ctx, "HCMC", "y", 10.85, 106.75, 1000, 5); len(got) != 0 {
			t.Fatal("found in their old city")
		}
		if got, _ := g.Nearby(ctx, "HN", "x", 10.85, 106.75, 1000, 5); len(got) != 1 {
			t.Fatal("not found in their new city")
		}
		must(t, g.Update(ctx, "T1", smp.TechnicianChange{Set: smp.FieldCity, To: smp.TechnicianPosition{City: "HCMC"}}))
		must(t, g.Update(ctx, "T1", smp.TechnicianChange{Set: smp.FieldConn, To: smp.TechnicianPosition{Conn: "proc-a/c1"}}))
		p, ok, _ := g.Get(ctx, "T1")
		if !ok || p.City != "HCMC" || len(p.Skills) != 2 || !p.Online || p.Conn != "proc-a/c1" || p.Lat != 10.85 {
			t.Fatalf("get = %+v %v", p, ok)
		}
		must(t, g.Update(ctx, "T1", smp.TechnicianChange{Remove: true}))
		if _, ok, _ := g.Get(ctx, "T1"); ok {
			t.Fatal("not removed")
		}
		if got, _ := g.Nearby(ctx, "HCMC", "x", 10.85, 106.75, 1000, 5); len(got) != 0 {
			t.Fatal("found after removal")
		}
		// A change of an unknown technician creates nothing, unless asked to.
		must(t, g.Update(ctx, "T404", smp.TechnicianChange{Set: smp.FieldOnline, To: smp.TechnicianPosition{Online: true}}))
		if _, ok, _ := g.Get(ctx, "T404"); ok {
			t.Fatal("an update created an unknown technician")
		}
		must(t, g.Update(ctx, "T404", smp.TechnicianChange{Remove: true}))
		must(t, g.Update(ctx, "T404", smp.TechnicianChange{Create: true, Set: smp.FieldSkills | smp.FieldOnline | smp.FieldConn,
			To: smp.TechnicianPosition{City: "ignored", Skills: []string{"x"}, Online: true, Conn: "c1"}}))
		if p, ok, _ := g.Get(ctx, "T404"); !ok || !p.Online || p.Conn != "c1" || p.City != "" || p.Available || p.Lat != 0 {
			t.Fatalf("created = %+v %v", p, ok)
		}
	})
	t.Run("UpdateIfConn", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		g := newGeo(t)
		must(t, g.Upsert(ctx, smp.TechnicianPosition{TechnicianID: "T1", City: "HCMC", Lat: 10.70, Lng: 106.60, Skills: []string{"x"}, Online: true,
			Available: true, Conn: "proc-b/c2"}))
		offline := func(conn string) smp.TechnicianChange {
			return smp.TechnicianChange{Set: smp.FieldOnline | smp.FieldConn, IfConn: conn}
		}
		// The older connection's close leaves the newer's claim alone.
		must(t, g.Update(ctx, "T1", offline("proc-a/c1")))
		if p, _, _ := g.Get(ctx, "T1"); !p.Online || p.Conn != "proc-b/c2" {
			t.Fatalf("an older connection's close changed %+v", p)
		}
		if got, _ := g.Nearby(ctx, "HCMC", "x", 10.70, 106.60, 1000, 5); len(got) != 1 {
			t.Fatal("not a candidate after an older connection's close")
		}
		// The holder's own close takes them offline.
		must(t, g.Update(ctx, "T1", offline("proc-b/c2")))
		if p, _, _ := g.Get(ctx, "T1"); p.Online || p.Conn != "" {
			t.Fatalf("the holder's close left %+v", p)
		}
		if got, _ := g.Nearby(ctx, "HCMC", "x", 10.70, 106.60, 1000, 5); len(got) != 0 {
			t.Fatal("a candidate while offline")
		}
		// With no connection named, any close applies; an absent entry stays absent.
		must(t, g.Update(ctx, "T1", offline("proc-c/c3")))
		must(t, g.Update(ctx, "T9", offline("proc-c/c3")))
		if _, ok, _ := g.Get(ctx, "T9"); ok {
			t.Fatal("a close created an entry")
		}
	})
	t.Run("UpdateConcurrent", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		g := newGeo(t)
		must(t, g.Upsert(ctx, smp.TechnicianPosition{TechnicianID: "T1", City: "HCMC", Lat: 10.70, Lng: 106.60, Skills: []string{"x"}, Online: true, Available: true}))
		// Four writers, each of its own field, toggling it and ending on a
		// known value: an update that wrote a stale copy of another's field
		// (a read-modify-write that is not atomic) shows in the end state.
		const n = 30
		var wg sync.WaitGroup
		for _, ch := range []func(i int) smp.TechnicianChange{
			func(i int) smp.TechnicianChange {
				return smp.TechnicianChange{Set: smp.FieldBusy, To: smp.TechnicianPosition{Busy: i%2 == 0 && i != n-1}}
			},
			func(i int) smp.TechnicianChange {
				return smp.TechnicianChange{Set: smp.FieldAvailable, To: smp.TechnicianPosition{Available: i%2 == 1 || i == n-1}}
			},
			func(i int) smp.TechnicianChange {
				return smp.TechnicianChange{Set: smp.FieldOnline, To: smp.TechnicianPosition{Online: i%2 == 1 || i == n-1}}
			},
			func(i int) smp.TechnicianChange {
				return smp.TechnicianChange{Set: smp.FieldLocation, To: smp.TechnicianPosition{Lat: 10.70 + float64(i)*0.001, Lng: 106.60}}
			},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					if err := g.Update(ctx, "T1", ch(i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		p, _, err := g.Get(ctx, "T1")
		must(t, err)
		lat := 10.70 + float64(n-1)*0.001
		if p.Busy || !p.Available || !p.Online || math.Abs(p.Lat-lat) > 1e-9 {
			t.Fatalf("after concurrent updates: %+v, want free at lat %.3f", p, lat)
		}
		if got, _ := g.Nearby(ctx, "HCMC", "x", lat, 106.60, 100, 5); len(got) != 1 {
			t.Fatalf("a free technician is not a candidate at their last position: %v", got)
		}
	})
}

// Fill adds n technicians at random places in HCMC.
func Fill(tb testing.TB, g smp.GeoIndex, n int, rng *mrand.Rand) []smp.TechnicianPosition {
	var all []smp.TechnicianPosition
	skills := []string{"aircon_repair", "plumbing", "electrical"}
	for i := 0; i < n; i++ {
		p := smp.TechnicianPosition{TechnicianID: fmt.Sprintf("T%05d", i), City: "HCMC",
			Lat: 10.70 + rng.Float64()*0.18, Lng: 106.60 + rng.Float64()*0.20, Skills: []string{skills[i%3]},
			Online: rng.Float64() < 0.9, Available: rng.Float64() < 0.9, Busy: rng.Float64() < 0.2}
		if err := g.Upsert(context.Background(), p); err != nil {
			tb.Fatal(err)
		}
		all = append(all, p)
	}
	return all
}

// RunLocker checks a Locker.
func RunLocker(t *testing.T, newLocker func(t *testing.T) smp.Locker) {
	t.Run("Lease", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		l := newLocker(t)
		if ok, _ := l.TryLock(ctx, "dispatch:lock:o1", "a", 300*time.Millisecond); !ok {
			t.Fatal("first lock refused")
		}
		if ok, _ := l.TryLock(ctx, "dispatch:lock:o1", "b", time.Second); ok {
			t.Fatal("second owner got a held lock")
		}
		must(t, l.Unlock(ctx, "dispatch:lock:o1", "b")) // not b's: no effect
		if ok, _ := l.TryLock(ctx, "dispatch:lock:o1", "b", time.Second); ok {
			t.Fatal("unlock by a non-owner released the lock")
		}
		must(t, l.Unlock(ctx, "dispatch:lock:o1", "a"))
		if ok, _ := l.TryLock(ctx, "dispatch:lock:o1", "b", 100*time.Millisecond); !ok {
			t.Fatal("lock not free after the owner's unlock")
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if ok, _ := l.TryLock(ctx, "dispatch:lock:o1", "c", time.Second); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("lease never expired")
			}
			time.Sleep(20 * time.Millisecond) // polling with a deadline
		}
	})
	// A live holder renews a short lease and keeps it past its first
	// expiry; a holder that stopped renewing (a dead process) loses it
	// within the lease, and its late renew and unlock are refused (fencing).
	t.Run("RenewAndFencing", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		l := newLocker(t)
		const key, lease = "dispatch:lock:o2", 400 * time.Millisecond
		if ok, _ := l.TryLock(ctx, key, "a", lease); !ok {
			t.Fatal("first lock refused")
		}
		if ok, err := l.Renew(ctx, key, "b", lease); err != nil || ok {
			t.Fatalf("a non-holder renewed: %v %v", ok, err)
		}
		until := time.Now().Add(3 * lease)
		for time.Now().Before(until) {
			if ok, err := l.Renew(ctx, key, "a", lease); err != nil || !ok {
				t.Fatalf("the holder's renew refused: %v %v", ok, err)
			}
			if ok, _ := l.TryLock(ctx, key, "b", time.Minute); ok {
				t.Fatal("another owner took a lease its holder keeps renewing")
			}
			time.Sleep(lease / 4) // the holder's renewal period
		}
		// a stops renewing: b gets the lock within about one lease.
		start := time.Now()
		for {
			if ok, _ := l.TryLock(ctx, key, "b", time.Minute); ok {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatal("an abandoned lease never expired")
			}
			time.Sleep(20 * time.Millisecond) // polling with a deadline
		}
		if d := time.Since(start); d > 2*lease+time.Second {
			t.Errorf("an abandoned %s lease took %s to expire", lease, d)
		}
		if ok, err := l.Renew(ctx, key, "a", lease); err != nil || ok {
			t.Fatalf("the former holder renewed a lease another took: %v %v", ok, err)
		}
		must(t, l.Unlock(ctx, key, "a"))
		if ok, _ := l.TryLock(ctx, key, "c", time.Minute); ok {
			t.Fatal("the former holder's unlock released the new holder's lease")
		}
		if ok, err := l.Renew(ctx, "dispatch:lock:never", "a", lease); err != nil || ok {
			t.Fatalf("renewed a lease never taken: %v %v", ok, err)
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
