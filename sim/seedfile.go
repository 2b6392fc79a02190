package sim

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	mrand "math/rand/v2"

	"smp"
	"smp/catalog"
)

//go:embed seed.yaml
var seedFile []byte

// SeedFileName is the seed file's name in the repository (sim/seed.yaml).
const SeedFileName = "seed.yaml"

// SeedFile returns the demo's dataset as an import file: 3 cities, 4
// services, 20 partners (P001-P020), 200 technicians (T0001-T0200, phones
// +84900000001…) and 50 customers (C0001-C0050, phones +84910000001…).
// smp demo imports it; smp import --file sim/seed.yaml loads the same
// rows into any platform.
func SeedFile() []byte { return bytes.Clone(seedFile) }

// Importer applies an import batch (catalog.Service).
type Importer interface {
	Import(ctx context.Context, p smp.Principal, b catalog.Batch, dryRun bool, reason string) (*catalog.Report, error)
}

// LoadStore is what LoadDemo reads back and where it keeps tokens.
type LoadStore interface {
	smp.CatalogStore
	smp.TokenStore
}

// DemoBatch is the seed file sized by cfg: technicians and customers
// beyond the file's 200 and 50 are generated the same way (repeatably,
// from cfg.Seed); fewer are simply not used.
func DemoBatch(cfg SeedConfig) (catalog.Batch, error) {
	b, err := catalog.ParseFile(SeedFileName, seedFile, "")
	if err != nil {
		return b, fmt.Errorf("sim: the embedded seed file: %w", err)
	}
	rng := mrand.New(mrand.NewPCG(cfg.Seed, 0x5eed))
	cities, services := Cities(), Services()
	for i := len(b.Technicians) + 1; i <= cfg.Technicians; i++ {
		t := newTechnician(rng, i, 20, cities, services)
		if err := b.Add("technicians", map[string]any{"id": t.ID, "partner_id": t.PartnerID, "name": t.Name, "phone": t.Phone,
			"city": t.City, "skills": t.Skills, "lat": t.Lat, "lng": t.Lng}); err != nil {
			return b, err
		}
	}
	for i := len(b.Customers) + 1; i <= cfg.Customers; i++ {
		if err := b.Add("customers", map[string]any{"id": fmt.Sprintf("C%04d", i), "name": personName(rng), "phone": customerPhone(i)}); err != nil {
			return b, err
		}
	}
	return b, nil
}

// LoadDemo imports DemoBatch(cfg) through imp as p (created, updated or
// unchanged: it can run on every start), then issues fresh tokens for the
// first cfg.Technicians technicians and cfg.Customers customers, which it
// returns with them. A refused row is an error: the seed must load whole.
func LoadDemo(ctx context.Context, imp Importer, store LoadStore, p smp.Principal, cfg SeedConfig, hashToken func(string) string) (*Dataset, *catalog.Report, error) {
	if cfg.Technicians <= 0 {
		cfg.Technicians = 200
	}
	if cfg.Customers <= 0 {
		cfg.Customers = 50
	}
	b, err := DemoBatch(cfg)
	if err != nil {
		return nil, nil, err
	}
	rep, err := imp.Import(ctx, p, b, false, "demo seed ("+SeedFileName+")")
	if err != nil {
		return nil, rep, err
	}
	if rep.Refused > 0 {
		for _, r := range rep.Rows {
			if r.Result == catalog.Refused {
				return nil, rep, fmt.Errorf("sim: seed row %s #%d refused: %s", r.Kind, r.Row, r.Reason)
			}
		}
	}
	ds := &Dataset{}
	if ds.Cities, err = store.FindCities(ctx); err != nil {
		return nil, rep, err
	}
	if ds.Services, err = store.FindServices(ctx); err != nil {
		return nil, rep, err
	}
	for i := 1; i <= cfg.Technicians; i++ {
		t, err := store.FindTechnicianByID(ctx, fmt.Sprintf("T%04d", i))
		if err != nil {
			return nil, rep, err
		}
		st := SeededTechnician{Technician: *t, Token: NewToken("tech_"), Lat: t.Lat, Lng: t.Lng}
		if err := store.PutToken(ctx, hashToken(st.Token), "technician", t.ID, ""); err != nil {
			return nil, rep, err
		}
		ds.Technicians = append(ds.Technicians, st)
	}
	for i := 1; i <= cfg.Customers; i++ {
		c, err := store.FindCustomerByID(ctx, fmt.Sprintf("C%04d", i))
		if err != nil {
			return nil, rep, err
		}
		sc := SeededCustomer{Customer: *c, Token: NewToken("cust_")}
		if err := store.PutToken(ctx, hashToken(sc.Token), "customer", c.ID, ""); err != nil {
			return nil, rep, err
		}
		ds.Customers = append(ds.Customers, sc)
	}
	return ds, rep, nil
}

func technicianPhone(i int) string { return fmt.Sprintf("+8490%07d", i) }
func customerPhone(i int) string   { return fmt.Sprintf("+8491%07d", i) }

func personName(rng *mrand.Rand) string {
	return lastNames[rng.IntN(len(lastNames))] + " " + firstNames[rng.IntN(len(firstNames))]
}

// newTechnician draws technician i: half in HCMC, 30 % in HN, 20 % in
// DN, about half the skills, a home inside the city.
func newTechnician(rng *mrand.Rand, i, partners int, cities []*smp.City, services []*smp.Service) smp.Technician {
	weights := []float64{0.5, 0.3, 0.2}
	x, ci := rng.Float64(), 0
	for acc := weights[0]; x > acc && ci < len(weights)-1; {
		ci++
		acc += weights[ci]
	}
	city := cities[ci]
	skills := []string{}
	for _, s := range services {
		if rng.Float64() < 0.5 {
			skills = append(skills, s.Code)
		}
	}
	if len(skills) == 0 {
		skills = append(skills, services[rng.IntN(len(services))].Code)
	}
	t := smp.Technician{ID: fmt.Sprintf("T%04d", i), PartnerID: fmt.Sprintf("P%03d", 1+rng.IntN(partners)), Name: personName(rng),
		City: city.Code, Skills: skills, Phone: technicianPhone(i)}
	t.Lat = city.MinLat + rng.Float64()*(city.MaxLat-city.MinLat)
	t.Lng = city.MinLng + rng.Float64()*(city.MaxLng-city.MinLng)
	return t
}
