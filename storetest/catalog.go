package storetest

import (
	"reflect"
	"testing"

	"smp"
)

var catalogTests = []Test{
	{"Catalog/Cities", testCities},
	{"Catalog/Services", testServices},
	{"Catalog/Technicians", testTechnicians},
	{"Catalog/FindTechnicianByID/ErrNotFound", testFindTechnicianNotFound},
	{"Catalog/FindTechniciansByID", testFindTechniciansByID},
	{"Catalog/ClaimTechnician/OK", testClaimTechnician},
	{"Catalog/ClaimTechnician/ErrConflict", testClaimTechnicianConflict},
	{"Catalog/ClaimTechnician/ErrNotFound", testClaimTechnicianNotFound},
	{"Catalog/ReleaseTechnician", testReleaseTechnician},
}

// testCities: cities by code, dispatch settings kept, upsert replaces.
func testCities(t *testing.T, s Store) {
	if cs, err := s.FindCities(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("empty store: %v %v", cs, err)
	}
	hn := &smp.City{Code: "HN", Name: "Hà Nội", MinLat: 20.9, MaxLat: 21.1, MinLng: 105.7, MaxLng: 105.9, RadiusStepsKm: []float64{1, 2.5, 8}, WaveSize: 5, MaxWaves: 3,
		Lat: 21, Lng: 105.8, Status: smp.StatusActive}
	hcmc := &smp.City{Code: "HCMC", Name: "HCMC", MinLat: 10, MaxLat: 11, MinLng: 106, MaxLng: 107, RadiusStepsKm: []float64{2}, WaveSize: 3, MaxWaves: 4,
		Status: smp.StatusActive}
	must(t, s.UpsertCity(ctx, hn))
	must(t, s.UpsertCity(ctx, hcmc))
	hcmc.Name, hcmc.WaveSize = "Hồ Chí Minh", 6
	must(t, s.UpsertCity(ctx, hcmc))
	got, err := s.FindCities(ctx)
	must(t, err)
	if !reflect.DeepEqual(got, []*smp.City{hcmc, hn}) {
		t.Fatalf("cities\n got %+v\nwant %+v", got, []*smp.City{hcmc, hn})
	}
}

func testServices(t *testing.T, s Store) {
	must(t, s.UpsertService(ctx, &smp.Service{Code: "plumbing", Name: "Plumbing"}))
	must(t, s.UpsertService(ctx, &smp.Service{Code: "aircon_repair", Name: "Aircon", Skill: "aircon", PriceVND: 350_000, Commission: 1250}))
	must(t, s.UpsertService(ctx, &smp.Service{Code: "plumbing", Name: "Sửa ống nước", Status: smp.StatusInactive}))
	got, err := s.FindServices(ctx)
	must(t, err)
	want := []*smp.Service{{Code: "aircon_repair", Name: "Aircon", Skill: "aircon", PriceVND: 350_000, Commission: 1250, Status: smp.StatusActive},
		{Code: "plumbing", Name: "Sửa ống nước", Status: smp.StatusInactive}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("services %+v, want %+v", got, want)
	}
}

// testTechnicians: by id, per city or all; skills kept; an upsert leaves
// the order the technician holds.
func testTechnicians(t *testing.T, s Store) {
	seed(t, s)
	must(t, s.UpsertCity(ctx, &smp.City{Code: "HN", Name: "Hà Nội", RadiusStepsKm: []float64{2}, WaveSize: 3, MaxWaves: 2}))
	must(t, s.UpsertTechnician(ctx, &smp.Technician{ID: "T3", PartnerID: "P1", Name: "Hà", City: "HN", Skills: []string{"aircon_repair"}}))
	inTx(t, s, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T1", "o1") })
	must(t, s.UpsertTechnician(ctx, &smp.Technician{ID: "T1", PartnerID: "P1", Name: "Renamed", City: "HCMC", Skills: []string{"plumbing"}, Phone: "+84901234567"}))
	t1, err := s.FindTechnicianByID(ctx, "T1")
	must(t, err)
	want := &smp.Technician{ID: "T1", PartnerID: "P1", Name: "Renamed", City: "HCMC", Skills: []string{"plumbing"}, Phone: "+84901234567",
		Status: smp.StatusActive, ActiveOrderID: "o1"}
	if !reflect.DeepEqual(t1, want) {
		t.Fatalf("T1\n got %+v\nwant %+v", t1, want)
	}
	byID := func(ts []*smp.Technician) []string { return ids(ts, func(t *smp.Technician) string { return t.ID }) }
	for city, want := range map[string][]string{"": {"T1", "T2", "T3"}, "HCMC": {"T1", "T2"}, "HN": {"T3"}, "DN": {}} {
		got, err := s.FindTechnicians(ctx, smp.CatalogFilter{City: city})
		must(t, err)
		if !sameStrings(byID(got), want) {
			t.Errorf("FindTechnicians(%q) = %v, want %v", city, byID(got), want)
		}
	}
}

// testFindTechniciansByID: the ones asked for, as last committed (status
// included), unknown ids left out, none for no ids.
func testFindTechniciansByID(t *testing.T, s Store) {
	seed(t, s)
	must(t, s.UpsertTechnician(ctx, &smp.Technician{ID: "T2", PartnerID: "P1", Name: "Suspended", City: "HCMC", Skills: []string{"plumbing"},
		Status: smp.StatusSuspended}))
	got, err := s.FindTechniciansByID(ctx, "T1", "T2", "T9")
	must(t, err)
	if len(got) != 2 || got["T1"] == nil || got["T1"].ID != "T1" || !got["T1"].Status.Active() || got["T2"] == nil || got["T2"].Status != smp.StatusSuspended {
		t.Fatalf("FindTechniciansByID(T1, T2, T9) = %+v", got)
	}
	none, err := s.FindTechniciansByID(ctx)
	if err != nil || len(none) != 0 {
		t.Fatalf("FindTechniciansByID() = %v, %v", none, err)
	}
}

func testFindTechnicianNotFound(t *testing.T, s Store) {
	_, err := s.FindTechnicianByID(ctx, "nope")
	wantCode(t, "FindTechnicianByID(unknown)", err, smp.ENOTFOUND)
}

func testClaimTechnician(t *testing.T, s Store) {
	seed(t, s)
	inTx(t, s, func(tx smp.Tx) error {
		if err := tx.ClaimTechnician(ctx, "T1", "o1"); err != nil {
			return err
		}
		return tx.ClaimTechnician(ctx, "T2", "o2")
	})
	for id, want := range map[string]string{"T1": "o1", "T2": "o2"} {
		if tech, _ := s.FindTechnicianByID(ctx, id); tech.ActiveOrderID != want {
			t.Errorf("%s holds %q, want %q", id, tech.ActiveOrderID, want)
		}
	}
}

// testClaimTechnicianConflict: a technician holds one order at a time;
// claiming the same order again is a conflict too.
func testClaimTechnicianConflict(t *testing.T, s Store) {
	seed(t, s)
	inTx(t, s, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T1", "o1") })
	for _, o := range []string{"o2", "o1"} {
		err := s.InTx(ctx, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T1", o) })
		wantCode(t, "ClaimTechnician(T1, "+o+") while T1 holds o1", err, smp.ECONFLICT)
	}
	if tech, _ := s.FindTechnicianByID(ctx, "T1"); tech.ActiveOrderID != "o1" {
		t.Fatalf("T1 holds %q after the conflicts, want o1", tech.ActiveOrderID)
	}
}

func testClaimTechnicianNotFound(t *testing.T, s Store) {
	seed(t, s)
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T9", "o1") })
	wantCode(t, "ClaimTechnician(unknown)", err, smp.ENOTFOUND)
}

// testReleaseTechnician: releasing another order (or an unknown
// technician) does nothing; releasing the held one frees the technician.
func testReleaseTechnician(t *testing.T, s Store) {
	seed(t, s)
	inTx(t, s, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T1", "o1") })
	inTx(t, s, func(tx smp.Tx) error { return tx.ReleaseTechnician(ctx, "T1", "o2") })
	inTx(t, s, func(tx smp.Tx) error { return tx.ReleaseTechnician(ctx, "T9", "o1") })
	if tech, _ := s.FindTechnicianByID(ctx, "T1"); tech.ActiveOrderID != "o1" {
		t.Fatalf("releasing another order freed T1: %+v", tech)
	}
	inTx(t, s, func(tx smp.Tx) error { return tx.ReleaseTechnician(ctx, "T1", "o1") })
	if tech, _ := s.FindTechnicianByID(ctx, "T1"); tech.ActiveOrderID != "" {
		t.Fatalf("T1 still holds %q", tech.ActiveOrderID)
	}
	inTx(t, s, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T1", "o2") })
}
