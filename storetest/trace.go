package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"smp"
)

var traceTests = []Test{
	{"Trace/WavesAndOffers", testTrace},
	{"Trace/Empty", testTraceEmpty},
	{"Trace/UpdateOffer/Order", testUpdateOfferOrder},
	{"Trace/DeclinedBy", testDeclinedBy},
}

func offer(id, order, tech string, wave, rank int) smp.OfferRecord {
	return smp.OfferRecord{InvitationID: id, OrderID: order, TechnicianID: tech, Round: 1, Wave: wave, Rank: rank, DistanceM: float64(100 * rank),
		RankReason: fmt.Sprintf("#%d by distance", rank), State: smp.InvitationSent, SentAt: T0, ExpiresAt: T0.Add(time.Minute)}
}

// testTrace: waves by round and wave (a wave written again replaces it),
// offers by round, wave and rank, with delivered and responded times.
func testTrace(t *testing.T, s Store) {
	w2 := smp.DispatchWave{OrderID: "o1", Round: 1, Wave: 2, RadiusM: 5000, StartedAt: T0.Add(time.Minute), Candidates: 1}
	w1 := smp.DispatchWave{OrderID: "o1", Round: 1, Wave: 1, RadiusM: 2000, StartedAt: T0, Candidates: 2, Note: "first"}
	must(t, s.AddDispatchWave(ctx, w2))
	must(t, s.AddDispatchWave(ctx, smp.DispatchWave{OrderID: "o1", Round: 1, Wave: 1, RadiusM: 1, StartedAt: T0}))
	must(t, s.AddDispatchWave(ctx, w1)) // replaces
	must(t, s.AddDispatchWave(ctx, smp.DispatchWave{OrderID: "other", Round: 1, Wave: 1, StartedAt: T0}))
	must(t, s.AddOffers(ctx, nil))
	i3, i1, i2 := offer("i3", "o1", "T3", 2, 1), offer("i1", "o1", "T1", 1, 1), offer("i2", "o1", "T2", 1, 2)
	must(t, s.AddOffers(ctx, []smp.OfferRecord{i3}))
	must(t, s.AddOffers(ctx, []smp.OfferRecord{i2, i1, offer("x", "other", "T1", 1, 1)}))
	must(t, s.UpdateOffer(ctx, "i1", smp.InvitationDelivered, T0.Add(time.Second)))
	must(t, s.UpdateOffer(ctx, "i1", smp.InvitationAccepted, T0.Add(2*time.Second)))
	tr, err := s.FindDispatchTrace(ctx, "o1")
	must(t, err)
	if tr.OrderID != "o1" || !reflect.DeepEqual(tr.Waves, []smp.DispatchWave{w1, w2}) {
		t.Fatalf("waves\n got %+v\nwant %+v", tr.Waves, []smp.DispatchWave{w1, w2})
	}
	d, r := T0.Add(time.Second), T0.Add(2*time.Second)
	i1.State, i1.DeliveredAt, i1.RespondedAt = smp.InvitationAccepted, &d, &r
	if want := []smp.OfferRecord{i1, i2, i3}; !reflect.DeepEqual(tr.Offers, want) {
		t.Fatalf("offers\n got %+v\nwant %+v", tr.Offers, want)
	}
}

// testTraceEmpty: an order never dispatched has an empty trace (not nil
// slices, not ENOTFOUND).
func testTraceEmpty(t *testing.T, s Store) {
	tr, err := s.FindDispatchTrace(ctx, "nope")
	must(t, err)
	if tr == nil || tr.OrderID != "nope" || tr.Waves == nil || tr.Offers == nil || len(tr.Waves)+len(tr.Offers) != 0 {
		t.Fatalf("trace = %+v", tr)
	}
	must(t, s.UpdateOffer(ctx, "unknown", smp.InvitationDeclined, T0)) // ignored
}

// testUpdateOfferOrder: updates land in the order they were made, however
// they are written: delivered only over sent; withdrawn and expired never
// hide an answer.
func testUpdateOfferOrder(t *testing.T, s Store) {
	var offers []smp.OfferRecord
	for i := 1; i <= 5; i++ {
		offers = append(offers, offer(fmt.Sprint("i", i), "o1", fmt.Sprint("T", i), 1, i))
	}
	must(t, s.AddOffers(ctx, offers))
	at := func(sec int) time.Time { return T0.Add(time.Duration(sec) * time.Second) }
	for _, u := range []struct {
		id    string
		state smp.InvitationState
		at    time.Time
	}{
		{"i1", smp.InvitationDelivered, at(1)},
		{"i2", smp.InvitationDelivered, at(1)},
		{"i2", smp.InvitationDeclined, at(2)},
		{"i2", smp.InvitationWithdrawn, at(3)}, // must not hide the decline
		{"i3", smp.InvitationExpired, at(3)},
		{"i3", smp.InvitationDelivered, at(4)}, // too late: not over expired
		{"i4", smp.InvitationAccepted, at(2)},
		{"i4", smp.InvitationExpired, at(3)}, // must not hide the accept
	} {
		must(t, s.UpdateOffer(ctx, u.id, u.state, u.at))
	}
	tr, err := s.FindDispatchTrace(ctx, "o1")
	must(t, err)
	got := map[string]smp.OfferRecord{}
	for _, o := range tr.Offers {
		got[o.InvitationID] = o
	}
	want := map[string]smp.InvitationState{"i1": smp.InvitationDelivered, "i2": smp.InvitationDeclined, "i3": smp.InvitationExpired,
		"i4": smp.InvitationAccepted, "i5": smp.InvitationSent}
	for id, st := range want {
		if got[id].State != st {
			t.Errorf("%s: state %s, want %s", id, got[id].State, st)
		}
	}
	if d := got["i2"].DeliveredAt; d == nil || !d.Equal(at(1)) {
		t.Errorf("i2's delivery was lost behind its decline: %+v", got["i2"])
	}
	if r := got["i2"].RespondedAt; r == nil || !r.Equal(at(2)) {
		t.Errorf("i2 responded at %v, want the decline's time", r)
	}
	if got["i3"].DeliveredAt != nil || got["i5"].DeliveredAt != nil || got["i5"].RespondedAt != nil {
		t.Errorf("times set that should not be: i3 %+v, i5 %+v", got["i3"], got["i5"])
	}
}

// testDeclinedBy: each technician who declined, once.
func testDeclinedBy(t *testing.T, s Store) {
	a, b, c := offer("a", "o1", "T1", 1, 1), offer("b", "o1", "T2", 1, 2), offer("c", "o1", "T1", 2, 1)
	must(t, s.AddOffers(ctx, []smp.OfferRecord{a, b, c, offer("d", "o2", "T3", 1, 1)}))
	for _, id := range []string{"a", "c", "d"} {
		must(t, s.UpdateOffer(ctx, id, smp.InvitationDeclined, T0))
	}
	must(t, s.UpdateOffer(ctx, "b", smp.InvitationExpired, T0))
	got, err := s.DeclinedBy(ctx, "o1")
	must(t, err)
	if !sameStrings(got, []string{"T1"}) {
		t.Fatalf("DeclinedBy(o1) = %v, want [T1]", got)
	}
	if got, err := s.DeclinedBy(ctx, "nope"); err != nil || len(got) != 0 {
		t.Fatalf("DeclinedBy(unknown) = %v %v", got, err)
	}
}
