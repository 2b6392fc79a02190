package dispatch_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"smp"
)

// TestCityOnboardedWhileRunning: a city created after the engine (and the
// order service) started is dispatched in: the order service reads it at
// its first order, the sweeper starts its worker.
func TestCityOnboardedWhileRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	ctx := context.Background()
	dn := &smp.City{Code: "DN", Name: "Đà Nẵng", MinLat: 15.98, MaxLat: 16.10, MinLng: 108.15, MaxLng: 108.26,
		RadiusStepsKm: []float64{1, 3, 10}, WaveSize: 3, MaxWaves: 3}
	must(t, h.store.UpsertCity(ctx, dn))
	must(t, h.store.UpsertTechnician(ctx, &smp.Technician{ID: "TDN", PartnerID: "P1", Name: "Đà", City: "DN", Skills: []string{"aircon_repair"}}))
	if _, err := h.engine.TechnicianConnected(ctx, "TDN", "conn-TDN"); err != nil {
		t.Fatal(err)
	}
	must(t, h.engine.UpdateLocation(ctx, "TDN", 16.05, 108.20))
	must(t, h.engine.SetAvailability(ctx, "TDN", true))
	o, err := h.orders.CreateOrder(ctx, "C1", smp.NewOrder{City: "DN", Service: "aircon_repair", Lat: 16.06, Lng: 108.21, PriceVND: 300000})
	if err != nil {
		t.Fatalf("an order in a city onboarded after the start: %v", err)
	}
	if got := h.waitOffered(o.ID, 1); got[0] != "TDN" {
		t.Fatalf("offered to %v, want TDN", got)
	}
}

// TestSuspendedTechnicianGetsNoOffers: a suspended technician cannot come
// online, so dispatch never offers them a job.
func TestSuspendedTechnicianGetsNoOffers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	ctx := context.Background()
	must(t, h.store.UpsertTechnician(ctx, &smp.Technician{ID: "TS", PartnerID: "P1", Name: "S", City: "HCMC", Skills: []string{"aircon_repair"},
		Status: smp.StatusSuspended}))
	if _, err := h.engine.TechnicianConnected(ctx, "TS", "conn-TS"); smp.ErrorCode(err) != smp.EFORBIDDEN {
		t.Fatalf("a suspended technician connects: %v", err)
	}
	if _, ok, _ := h.geo.Get(ctx, "TS"); ok {
		t.Fatal("the suspended technician is in the geo index")
	}
}

// TestInactiveCustomerPlacesNoOrder: a customer onboarding deactivated
// cannot order (their token notwithstanding).
func TestInactiveCustomerPlacesNoOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	ctx := context.Background()
	must(t, h.store.UpsertCustomer(ctx, &smp.Customer{ID: "C2", Name: "Gone", Status: smp.StatusInactive}))
	_, err := h.orders.CreateOrder(ctx, "C2", smp.NewOrder{City: "HCMC", Service: "aircon_repair", Lat: lat0, Lng: lng0, PriceVND: 300000})
	if smp.ErrorCode(err) != smp.EFORBIDDEN {
		t.Fatalf("an inactive customer's order: %v", err)
	}
	if _, err := h.orders.CreateOrder(ctx, "C1", smp.NewOrder{City: "HCMC", Service: "aircon_repair", Lat: lat0, Lng: lng0, PriceVND: 300000}); err != nil {
		t.Fatalf("an active customer's order: %v", err)
	}
}

// TestServiceSkillDiffersFromCode: a service onboarded while the engine
// runs, whose skill (aircon) is not its code (ac_repair), is offered to
// the technicians with that skill and to no one else; ops' candidate list
// and a manual assignment's checks go by the skill too. Before, dispatch
// matched technicians by the service's code, and offered it to nobody.
func TestServiceSkillDiffersFromCode(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 3, maxWaves: 1, steps: []float64{5}, ttl: 30 * time.Second})
	ctx := context.Background()
	must(t, h.store.UpsertService(ctx, &smp.Service{Code: "ac_repair", Name: "Sửa máy lạnh", Skill: "aircon", PriceVND: 300000}))
	h.addTech("T_CODE", lat0+0.001, lng0, "ac_repair", "aircon_repair") // the code, not the skill
	h.addTech("T_SKILL", lat0+0.003, lng0, "aircon")
	o, err := h.orders.CreateOrder(ctx, "C1", smp.NewOrder{City: "HCMC", Service: "ac_repair", Lat: lat0, Lng: lng0, PriceVND: 300000})
	must(t, err)
	if got := h.waitOffered(o.ID, 1); !slices.Equal(got, []string{"T_SKILL"}) {
		t.Fatalf("offered to %v, want [T_SKILL]", got)
	}
	trace, err := h.engine.Trace(ctx, o.ID)
	must(t, err)
	if len(trace.Waves) != 1 || trace.Waves[0].Candidates != 1 {
		t.Fatalf("trace: %+v", trace.Waves)
	}
	cands, err := h.engine.Candidates(ctx, o.ID, 10)
	must(t, err)
	if len(cands) != 1 || cands[0].TechnicianID != "T_SKILL" || cands[0].Name != "T_SKILL" {
		t.Fatalf("ops' candidates: %+v, want T_SKILL", cands)
	}
	ops := smp.Principal{Name: "alice", Role: smp.RoleOps}
	if _, err := h.engine.ManualAssign(ctx, o.ID, "T_CODE", ops, "closest one", false); smp.ErrorCode(err) != smp.ECONFLICT ||
		!strings.Contains(smp.ErrorMessage(err), "has no aircon skill") {
		t.Fatalf("manual assignment to a technician without the skill: %v", err)
	}
	got, err := h.engine.ManualAssign(ctx, o.ID, "T_SKILL", ops, "customer called", false)
	if err != nil || got.TechnicianID != "T_SKILL" {
		t.Fatalf("manual assignment to the skilled technician: %+v %v", got, err)
	}
}

// suspend marks a technician suspended in the catalogue only, as another
// process (or smp import) would: the geo index still lists them online.
func (h *harness) suspend(id string) {
	h.t.Helper()
	ctx := context.Background()
	tech, err := h.store.FindTechnicianByID(ctx, id)
	must(h.t, err)
	tech.Status = smp.StatusSuspended
	must(h.t, h.store.UpsertTechnician(ctx, tech))
}

// TestSuspendedWhileOnlineGetsNoOffers: a technician suspended while the
// geo index still lists them online (connected) is offered nothing, and
// is not in ops' candidate list; the next technician gets the order.
func TestSuspendedWhileOnlineGetsNoOffers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 1, maxWaves: 2, steps: []float64{5}, ttl: 30 * time.Second})
	ctx := context.Background()
	h.addTech("T_SUSP", lat0+0.001, lng0)
	h.addTech("T_NEXT", lat0+0.003, lng0)
	h.suspend("T_SUSP")
	if p, ok, err := h.geo.Get(ctx, "T_SUSP"); err != nil || !ok || !p.Online {
		t.Fatalf("the geo index should still list T_SUSP online: %+v %v %v", p, ok, err)
	}
	o := h.createOrder(lat0, lng0)
	if got := h.waitOffered(o.ID, 1); !slices.Equal(got, []string{"T_NEXT"}) {
		t.Fatalf("offered to %v, want [T_NEXT]", got)
	}
	cands, err := h.engine.Candidates(ctx, o.ID, 10)
	must(t, err)
	for _, c := range cands {
		if c.TechnicianID == "T_SUSP" {
			t.Fatalf("ops' candidates list the suspended technician: %+v", cands)
		}
	}
	if got := h.notes.of("T_SUSP"); len(got) != 0 {
		t.Fatalf("the suspended technician was sent %+v", got)
	}
}

// TestTechnicianSuspendedWithdrawsOffers: suspending a technician who
// holds an open offer takes them offline in the geo index and withdraws
// the offer at once, so the round offers the order to the next technician
// without waiting for the offer's expiry (30 s here).
func TestTechnicianSuspendedWithdrawsOffers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 1, maxWaves: 2, steps: []float64{5}, ttl: 30 * time.Second})
	ctx := context.Background()
	h.addTech("T_SUSP", lat0+0.001, lng0)
	h.addTech("T_NEXT", lat0+0.003, lng0)
	o := h.createOrder(lat0, lng0)
	if got := h.waitOffered(o.ID, 1); !slices.Equal(got, []string{"T_SUSP"}) {
		t.Fatalf("offered to %v, want [T_SUSP]", got)
	}
	h.suspend("T_SUSP")
	must(t, h.engine.TechnicianSuspended(ctx, "T_SUSP"))
	if p, ok, err := h.geo.Get(ctx, "T_SUSP"); err != nil || !ok || p.Online || p.Conn != "" {
		t.Fatalf("after suspension the geo index says %+v %v %v, want offline", p, ok, err)
	}
	got := h.waitOffered(o.ID, 2)
	slices.Sort(got)
	if !slices.Equal(got, []string{"T_NEXT", "T_SUSP"}) {
		t.Fatalf("offers of %s: %v", o.ID, got)
	}
	inv, ok, err := h.invs.Get(ctx, o.ID, "T_SUSP")
	if err != nil || !ok || inv.State != smp.InvitationWithdrawn {
		t.Fatalf("the suspended technician's offer: %+v %v %v, want withdrawn", inv, ok, err)
	}
	if _, err := h.engine.Accept(ctx, "T_SUSP", o.ID); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("the suspended technician accepts the withdrawn offer: %v", err)
	}
}
