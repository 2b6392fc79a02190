package dispatch_test

import (
	"context"
	"testing"

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
