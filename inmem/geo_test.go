package inmem_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"smp"
	"smp/dispatchtest"
	"smp/inmem"
)

func BenchmarkNearby(b *testing.B) {
	for _, n := range []int{200, 10000} {
		for _, radius := range []float64{2000, 5000} {
			b.Run(fmt.Sprintf("technicians=%d/radius=%.0fkm", n, radius/1000), func(b *testing.B) {
				rng := mrand.New(mrand.NewPCG(1, 2))
				g := inmem.NewGeo()
				dispatchtest.Fill(b, g, n, rng)
				ctx := context.Background()
				for b.Loop() {
					g.Nearby(ctx, "HCMC", "plumbing", 10.70+rng.Float64()*0.18, 106.60+rng.Float64()*0.20, radius, 3)
				}
			})
		}
	}
}

// TestGeoUpdateInPlace: a location message that keeps the technician in
// their grid cell (the common one: a phone reports every few seconds)
// changes the entry where it is, without allocating; a move to another
// cell re-indexes it, and a search finds it there only.
func TestGeoUpdateInPlace(t *testing.T) { // not parallel: AllocsPerRun
	ctx := context.Background()
	g := inmem.NewGeo()
	if err := g.Upsert(ctx, smp.TechnicianPosition{TechnicianID: "t1", City: "HCMC", Lat: 10.7751, Lng: 106.7001, Skills: []string{"plumbing"}, Online: true, Available: true}); err != nil {
		t.Fatal(err)
	}
	lat := 10.7751
	move := func() smp.TechnicianChange {
		return smp.TechnicianChange{Set: smp.FieldLocation, To: smp.TechnicianPosition{Lat: lat, Lng: 106.7001}}
	}
	allocs := testing.AllocsPerRun(100, func() {
		lat += 0.000001 // metres: the same 0.01° cell
		if err := g.Update(ctx, "t1", move()); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a location update within the cell allocated %v times", allocs)
	}
	if p, ok, _ := g.Get(ctx, "t1"); !ok || p.Lat != lat {
		t.Fatalf("entry %+v, want lat %v", p, lat)
	}
	lat = 10.8251 // about 5.5 km north: another cell
	if err := g.Update(ctx, "t1", move()); err != nil {
		t.Fatal(err)
	}
	if c, _ := g.Nearby(ctx, "HCMC", "plumbing", 10.7751, 106.7001, 1000, 0); len(c) != 0 {
		t.Fatalf("found at the old place after moving: %+v", c)
	}
	if c, _ := g.Nearby(ctx, "HCMC", "plumbing", 10.8251, 106.7001, 1000, 0); len(c) != 1 || c[0].TechnicianID != "t1" {
		t.Fatalf("not found at the new place: %+v", c)
	}
	if err := g.Update(ctx, "t1", smp.TechnicianChange{Remove: true}); err != nil {
		t.Fatal(err)
	}
	if c, _ := g.Nearby(ctx, "HCMC", "plumbing", 10.8251, 106.7001, 1000, 0); len(c) != 0 {
		t.Fatalf("found after removal: %+v", c)
	}
}
