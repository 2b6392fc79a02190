package storetest

import (
	"errors"
	"reflect"
	"testing"

	"smp"
)

// The onboarding writes of CatalogTx and the lookups and lists of
// CatalogStore that go with them.
var onboardingTests = []Test{
	{"Onboarding/City/OK", testOnboardCity},
	{"Onboarding/City/ErrConflict", testOnboardCityConflict},
	{"Onboarding/City/ErrNotFound", testOnboardCityNotFound},
	{"Onboarding/Service/OK", testOnboardService},
	{"Onboarding/Service/ErrConflict", testOnboardServiceConflict},
	{"Onboarding/Service/ErrNotFound", testOnboardServiceNotFound},
	{"Onboarding/Partner/AllocatesIDs", testOnboardPartnerIDs},
	{"Onboarding/Partner/ErrConflict", testOnboardPartnerConflict},
	{"Onboarding/Partner/ErrNotFound", testOnboardPartnerNotFound},
	{"Onboarding/Partner/List", testOnboardPartnerList},
	{"Onboarding/Technician/OK", testOnboardTechnician},
	{"Onboarding/Technician/ErrConflict", testOnboardTechnicianConflict},
	{"Onboarding/Technician/ErrNotFound", testOnboardTechnicianNotFound},
	{"Onboarding/Technician/List", testOnboardTechnicianList},
	{"Onboarding/Customer/OK", testOnboardCustomer},
	{"Onboarding/Customer/ErrConflict", testOnboardCustomerConflict},
	{"Onboarding/Customer/ErrNotFound", testOnboardCustomerNotFound},
	{"Onboarding/Rollback", testOnboardRollback},
	{"Concurrent/InsertPartner/DistinctIDs", testConcurrentPartnerIDs},
}

func testOnboardCity(t *testing.T, s Store) {
	dn := &smp.City{Code: "DN", Name: "Đà Nẵng", MinLat: 15.9, MaxLat: 16.1, MinLng: 108.1, MaxLng: 108.3, Lat: 16.05, Lng: 108.2,
		RadiusStepsKm: []float64{2, 5}, WaveSize: 3, MaxWaves: 4}
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertCity(ctx, dn) })
	dn.Status = smp.StatusActive
	got, err := s.FindCityByCode(ctx, "DN")
	must(t, err)
	if !reflect.DeepEqual(got, dn) {
		t.Fatalf("DN\n got %+v\nwant %+v", got, dn)
	}
	inTx(t, s, func(tx smp.Tx) error {
		c, err := tx.CityForUpdate(ctx, "DN")
		if err != nil {
			return err
		}
		c.Name, c.Status = "Da Nang", smp.StatusInactive
		if err := tx.UpdateCity(ctx, c); err != nil {
			return err
		}
		return tx.UpdateCity(ctx, c) // unchanged: still found
	})
	got, _ = s.FindCityByCode(ctx, "DN")
	if got.Name != "Da Nang" || got.Status != smp.StatusInactive || got.WaveSize != 3 {
		t.Fatalf("after update: %+v", got)
	}
}

func testOnboardCityConflict(t *testing.T, s Store) {
	seed(t, s)
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertCity(ctx, &smp.City{Code: "HCMC", Name: "again"}) })
	wantCode(t, "InsertCity(existing)", err, smp.ECONFLICT)
	if c, _ := s.FindCityByCode(ctx, "HCMC"); c.Name != "Hồ Chí Minh" {
		t.Fatalf("the conflict changed the city: %+v", c)
	}
}

func testOnboardCityNotFound(t *testing.T, s Store) {
	_, err := s.FindCityByCode(ctx, "XX")
	wantCode(t, "FindCityByCode(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.CityForUpdate(ctx, "XX"); return err })
	wantCode(t, "CityForUpdate(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { return tx.UpdateCity(ctx, &smp.City{Code: "XX", Name: "x"}) })
	wantCode(t, "UpdateCity(unknown)", err, smp.ENOTFOUND)
}

func testOnboardService(t *testing.T, s Store) {
	sv := &smp.Service{Code: "aircon_repair", Name: "Sửa máy lạnh", Skill: "aircon", PriceVND: 350_000, Commission: 1525}
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertService(ctx, sv) })
	sv.Status = smp.StatusActive
	got, err := s.FindServiceByCode(ctx, "aircon_repair")
	must(t, err)
	if !reflect.DeepEqual(got, sv) {
		t.Fatalf("service\n got %+v\nwant %+v", got, sv)
	}
	inTx(t, s, func(tx smp.Tx) error {
		got, err := tx.ServiceForUpdate(ctx, "aircon_repair")
		if err != nil {
			return err
		}
		got.PriceVND, got.Commission = 400_000, 2000
		return tx.UpdateService(ctx, got)
	})
	if got, _ := s.FindServiceByCode(ctx, "aircon_repair"); got.PriceVND != 400_000 || got.Commission != 2000 {
		t.Fatalf("after update: %+v", got)
	}
}

func testOnboardServiceConflict(t *testing.T, s Store) {
	seed(t, s)
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertService(ctx, &smp.Service{Code: "plumbing", Name: "x"}) })
	wantCode(t, "InsertService(existing)", err, smp.ECONFLICT)
}

func testOnboardServiceNotFound(t *testing.T, s Store) {
	_, err := s.FindServiceByCode(ctx, "nope")
	wantCode(t, "FindServiceByCode(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.ServiceForUpdate(ctx, "nope"); return err })
	wantCode(t, "ServiceForUpdate(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { return tx.UpdateService(ctx, &smp.Service{Code: "nope", Name: "x"}) })
	wantCode(t, "UpdateService(unknown)", err, smp.ENOTFOUND)
}

// testOnboardPartnerIDs: ids are allocated P001, P002, … skipping ids an
// explicit insert took; country defaults to VN.
func testOnboardPartnerIDs(t *testing.T, s Store) {
	var got []string
	for _, p := range []*smp.Partner{{Name: "A"}, {Name: "B", Country: "SG"}, {ID: "P003", Name: "C"}, {Name: "D", Contact: "+84901234567"}} {
		inTx(t, s, func(tx smp.Tx) error { return tx.InsertPartner(ctx, p) })
		got = append(got, p.ID)
	}
	if want := []string{"P001", "P002", "P003", "P004"}; !sameStrings(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	p, err := s.FindPartnerByID(ctx, "P004")
	must(t, err)
	if want := (&smp.Partner{ID: "P004", Name: "D", Country: "VN", Contact: "+84901234567", Status: smp.StatusActive}); !reflect.DeepEqual(p, want) {
		t.Fatalf("P004 %+v, want %+v", p, want)
	}
}

func testOnboardPartnerConflict(t *testing.T, s Store) {
	seed(t, s)
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertPartner(ctx, &smp.Partner{ID: "P1", Name: "x"}) })
	wantCode(t, "InsertPartner(existing)", err, smp.ECONFLICT)
}

func testOnboardPartnerNotFound(t *testing.T, s Store) {
	_, err := s.FindPartnerByID(ctx, "P999")
	wantCode(t, "FindPartnerByID(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.PartnerForUpdate(ctx, "P999"); return err })
	wantCode(t, "PartnerForUpdate(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { return tx.UpdatePartner(ctx, &smp.Partner{ID: "P999", Name: "x"}) })
	wantCode(t, "UpdatePartner(unknown)", err, smp.ENOTFOUND)
}

func testOnboardPartnerList(t *testing.T, s Store) {
	for _, p := range []*smp.Partner{{Name: "A"}, {Name: "B", Country: "SG"}, {Name: "C", Status: smp.StatusInactive}, {Name: "A"}} {
		inTx(t, s, func(tx smp.Tx) error { return tx.InsertPartner(ctx, p) })
	}
	byID := func(ps []*smp.Partner) []string { return ids(ps, func(p *smp.Partner) string { return p.ID }) }
	for _, c := range []struct {
		f    smp.CatalogFilter
		want []string
	}{
		{smp.CatalogFilter{}, []string{"P001", "P002", "P003", "P004"}},
		{smp.CatalogFilter{Country: "SG"}, []string{"P002"}},
		{smp.CatalogFilter{Status: smp.StatusActive}, []string{"P001", "P002", "P004"}},
		{smp.CatalogFilter{Name: "A"}, []string{"P001", "P004"}},
		{smp.CatalogFilter{Limit: 2}, []string{"P001", "P002"}},
		{smp.CatalogFilter{After: "P002", Limit: 1}, []string{"P003"}},
	} {
		got, err := s.FindPartners(ctx, c.f)
		must(t, err)
		if !sameStrings(byID(got), c.want) {
			t.Errorf("FindPartners(%+v) = %v, want %v", c.f, byID(got), c.want)
		}
	}
}

func testOnboardTechnician(t *testing.T, s Store) {
	seed(t, s)
	tech := &smp.Technician{PartnerID: "P1", Name: "Lan", City: "HCMC", Skills: []string{"plumbing"}, Phone: "+84912345678", Lat: 10.5, Lng: 106.5}
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertTechnician(ctx, tech) })
	if tech.ID != "T0001" {
		t.Fatalf("allocated id %q, want T0001", tech.ID)
	}
	tech.Status = smp.StatusActive
	got, err := s.FindTechnicianByPhone(ctx, "+84912345678")
	must(t, err)
	if !reflect.DeepEqual(got, tech) {
		t.Fatalf("by phone\n got %+v\nwant %+v", got, tech)
	}
	inTx(t, s, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T0001", "o1") })
	inTx(t, s, func(tx smp.Tx) error {
		got, err := tx.TechnicianForUpdate(ctx, "T0001")
		if err != nil {
			return err
		}
		got.Status, got.Phone, got.Skills = smp.StatusSuspended, "+84912345679", []string{"plumbing", "electrical"}
		return tx.UpdateTechnician(ctx, got)
	})
	got, _ = s.FindTechnicianByID(ctx, "T0001")
	if got.Status != smp.StatusSuspended || got.Phone != "+84912345679" || got.ActiveOrderID != "o1" || len(got.Skills) != 2 {
		t.Fatalf("after update (the held order kept): %+v", got)
	}
	if _, err := s.FindTechnicianByPhone(ctx, "+84912345678"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("old phone still found: %v", err)
	}
}

// testOnboardTechnicianConflict: a phone belongs to one technician, on
// insert and on update; several technicians may have none.
func testOnboardTechnicianConflict(t *testing.T, s Store) {
	seed(t, s) // T1 and T2 have no phone
	inTx(t, s, func(tx smp.Tx) error {
		return tx.InsertTechnician(ctx, &smp.Technician{ID: "T3", PartnerID: "P1", Name: "x", City: "HCMC", Skills: []string{"plumbing"}, Phone: "+84912345678"})
	})
	err := s.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertTechnician(ctx, &smp.Technician{PartnerID: "P1", Name: "y", City: "HCMC", Skills: []string{"plumbing"}, Phone: "+84912345678"})
	})
	wantCode(t, "InsertTechnician(phone taken)", err, smp.ECONFLICT)
	err = s.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertTechnician(ctx, &smp.Technician{ID: "T1", PartnerID: "P1", Name: "y", City: "HCMC", Skills: []string{"plumbing"}})
	})
	wantCode(t, "InsertTechnician(id taken)", err, smp.ECONFLICT)
	err = s.InTx(ctx, func(tx smp.Tx) error {
		t1, err := tx.TechnicianForUpdate(ctx, "T1")
		if err != nil {
			return err
		}
		t1.Phone = "+84912345678"
		return tx.UpdateTechnician(ctx, t1)
	})
	wantCode(t, "UpdateTechnician(phone taken)", err, smp.ECONFLICT)
	err = s.UpsertTechnician(ctx, &smp.Technician{ID: "T2", PartnerID: "P1", Name: "z", City: "HCMC", Skills: []string{"plumbing"}, Phone: "+84912345678"})
	wantCode(t, "UpsertTechnician(phone taken)", err, smp.ECONFLICT)
}

func testOnboardTechnicianNotFound(t *testing.T, s Store) {
	_, err := s.FindTechnicianByPhone(ctx, "+84900000000")
	wantCode(t, "FindTechnicianByPhone(unknown)", err, smp.ENOTFOUND)
	_, err = s.FindTechnicianByPhone(ctx, "")
	wantCode(t, "FindTechnicianByPhone(empty)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.TechnicianForUpdate(ctx, "T9"); return err })
	wantCode(t, "TechnicianForUpdate(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error {
		return tx.UpdateTechnician(ctx, &smp.Technician{ID: "T9", PartnerID: "P1", Name: "x", City: "HCMC"})
	})
	wantCode(t, "UpdateTechnician(unknown)", err, smp.ENOTFOUND)
}

func testOnboardTechnicianList(t *testing.T, s Store) {
	seed(t, s) // T1, T2: HCMC, P1, plumbing+electrical
	must(t, s.UpsertCity(ctx, &smp.City{Code: "HN", Name: "Hà Nội"}))
	must(t, s.UpsertPartner(ctx, &smp.Partner{ID: "P2", Name: "P2"}))
	must(t, s.UpsertTechnician(ctx, &smp.Technician{ID: "T3", PartnerID: "P2", Name: "x", City: "HN", Skills: []string{"aircon_repair"}, Status: smp.StatusSuspended}))
	must(t, s.UpsertTechnician(ctx, &smp.Technician{ID: "T4", PartnerID: "P2", Name: "y", City: "HCMC", Skills: []string{"electrical_x"}}))
	byID := func(ts []*smp.Technician) []string { return ids(ts, func(t *smp.Technician) string { return t.ID }) }
	for _, c := range []struct {
		f    smp.CatalogFilter
		want []string
	}{
		{smp.CatalogFilter{}, []string{"T1", "T2", "T3", "T4"}},
		{smp.CatalogFilter{City: "HCMC"}, []string{"T1", "T2", "T4"}},
		{smp.CatalogFilter{PartnerID: "P2"}, []string{"T3", "T4"}},
		{smp.CatalogFilter{Skill: "electrical"}, []string{"T1", "T2"}},
		{smp.CatalogFilter{Status: smp.StatusSuspended}, []string{"T3"}},
		{smp.CatalogFilter{After: "T1", Limit: 2}, []string{"T2", "T3"}},
		{smp.CatalogFilter{City: "DN"}, []string{}},
	} {
		got, err := s.FindTechnicians(ctx, c.f)
		must(t, err)
		if !sameStrings(byID(got), c.want) {
			t.Errorf("FindTechnicians(%+v) = %v, want %v", c.f, byID(got), c.want)
		}
	}
}

func testOnboardCustomer(t *testing.T, s Store) {
	c := &smp.Customer{Name: "Khách", Phone: "+84987654321"}
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertCustomer(ctx, c) })
	if c.ID != "C0001" {
		t.Fatalf("allocated id %q, want C0001", c.ID)
	}
	got, err := s.FindCustomerByPhone(ctx, "+84987654321")
	must(t, err)
	c.Status = smp.StatusActive
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("by phone %+v, want %+v", got, c)
	}
	inTx(t, s, func(tx smp.Tx) error {
		got, err := tx.CustomerForUpdate(ctx, "C0001")
		if err != nil {
			return err
		}
		got.Status = smp.StatusInactive
		return tx.UpdateCustomer(ctx, got)
	})
	list, err := s.FindCustomers(ctx, smp.CatalogFilter{Status: smp.StatusInactive})
	must(t, err)
	if len(list) != 1 || list[0].ID != "C0001" {
		t.Fatalf("inactive customers %+v", list)
	}
}

func testOnboardCustomerConflict(t *testing.T, s Store) {
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertCustomer(ctx, &smp.Customer{Name: "a", Phone: "+84987654321"}) })
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertCustomer(ctx, &smp.Customer{Name: "b", Phone: "+84987654321"}) })
	wantCode(t, "InsertCustomer(phone taken)", err, smp.ECONFLICT)
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertCustomer(ctx, &smp.Customer{Name: "c", Phone: "+84987654322"}) })
	err = s.InTx(ctx, func(tx smp.Tx) error {
		return tx.UpdateCustomer(ctx, &smp.Customer{ID: "C0002", Name: "c", Phone: "+84987654321"})
	})
	wantCode(t, "UpdateCustomer(phone taken)", err, smp.ECONFLICT)
}

func testOnboardCustomerNotFound(t *testing.T, s Store) {
	_, err := s.FindCustomerByID(ctx, "C9")
	wantCode(t, "FindCustomerByID(unknown)", err, smp.ENOTFOUND)
	_, err = s.FindCustomerByPhone(ctx, "+84987654321")
	wantCode(t, "FindCustomerByPhone(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.CustomerForUpdate(ctx, "C9"); return err })
	wantCode(t, "CustomerForUpdate(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { return tx.UpdateCustomer(ctx, &smp.Customer{ID: "C9", Name: "x"}) })
	wantCode(t, "UpdateCustomer(unknown)", err, smp.ENOTFOUND)
}

// testOnboardRollback: a failed transaction keeps neither its record nor
// the id it allocated.
func testOnboardRollback(t *testing.T, s Store) {
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.InsertPartner(ctx, &smp.Partner{Name: "A"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want boom", err)
	}
	if ps, _ := s.FindPartners(ctx, smp.CatalogFilter{}); len(ps) != 0 {
		t.Fatalf("rolled back partner kept: %+v", ps)
	}
	p := &smp.Partner{Name: "B"}
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertPartner(ctx, p) })
	if p.ID != "P001" {
		t.Fatalf("id after a rollback %q, want P001", p.ID)
	}
}

// testConcurrentPartnerIDs: partners created at once get distinct ids
// (the counter row serializes allocation across connections and processes).
func testConcurrentPartnerIDs(t *testing.T, s Store) {
	got := make([]string, racers)
	errs := race(func(i int) error {
		return s.InTx(ctx, func(tx smp.Tx) error { // a fresh partner per attempt: InTx may run fn again
			p := &smp.Partner{Name: "racer"}
			err := tx.InsertPartner(ctx, p)
			got[i] = p.ID
			return err
		})
	})
	seen := map[string]bool{}
	for i, err := range errs {
		must(t, err)
		if seen[got[i]] {
			t.Fatalf("id %s allocated twice: %v", got[i], got)
		}
		seen[got[i]] = true
	}
	if ps, _ := s.FindPartners(ctx, smp.CatalogFilter{}); len(ps) != racers {
		t.Fatalf("%d partners, want %d", len(ps), racers)
	}
}
