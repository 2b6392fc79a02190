package sim_test

import (
	"context"
	"path/filepath"
	"testing"

	"smp"
	"smp/catalog"
	"smp/sim"
	"smp/sqlstore"
)

// TestLoadDemo: the seed file loads whole through the import, again
// without a change, and sized up with generated rows.
func TestLoadDemo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := catalog.New(catalog.Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	p := smp.Principal{Name: "demo", Role: smp.RoleAdmin}
	hash := func(s string) string { return "h" + s }
	ds, rep, err := sim.LoadDemo(ctx, svc, db, p, sim.SeedConfig{Technicians: 10, Customers: 3}, hash)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 3+4+20+200+50 || rep.Refused != 0 {
		t.Fatalf("first load: %+v", rep)
	}
	if len(ds.Technicians) != 10 || len(ds.Customers) != 3 || ds.Technicians[0].Phone != "+84900000001" || ds.Technicians[0].Lat == 0 {
		t.Fatalf("dataset: %d technicians, %d customers, first %+v", len(ds.Technicians), len(ds.Customers), ds.Technicians[0])
	}
	if kind, id, _, err := db.FindTokenOwner(ctx, hash(ds.Technicians[0].Token)); err != nil || kind != "technician" || id != "T0001" {
		t.Fatalf("technician token: %s %s %v", kind, id, err)
	}
	_, rep, err = sim.LoadDemo(ctx, svc, db, p, sim.SeedConfig{Technicians: 205, Customers: 50}, hash)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 5 || rep.Updated != 0 || rep.Unchanged != 3+4+20+200+50 {
		t.Fatalf("second load with 5 more technicians: created %d updated %d unchanged %d", rep.Created, rep.Updated, rep.Unchanged)
	}
	if _, err := db.FindTechnicianByPhone(ctx, "+84900000205"); err != nil {
		t.Fatalf("generated technician: %v", err)
	}
}
