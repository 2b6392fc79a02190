package inmem_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"testing"

	"smp"
	"smp/inmem"
)

func fill(g *inmem.Geo, n int, rng *mrand.Rand) []smp.TechnicianPosition {
	var all []smp.TechnicianPosition
	skills := []string{"aircon_repair", "plumbing", "electrical"}
	for i := 0; i < n; i++ {
		p := smp.TechnicianPosition{TechnicianID: fmt.Sprintf("T%05d", i), City: "HCMC",
			Lat: 10.70 + rng.Float64()*0.18, Lng: 106.60 + rng.Float64()*0.20, Skills: []string{skills[i%3]},
			Online: rng.Float64() < 0.9, Available: rng.Float64() < 0.9, Busy: rng.Float64() < 0.2}
		g.Upsert(context.Background(), p)
		all = append(all, p)
	}
	return all
}

// TestNearbyMatchesBruteForce checks the grid search against a scan of
// every technician.
func TestNearbyMatchesBruteForce(t *testing.T) {
	t.Parallel()
	rng := mrand.New(mrand.NewPCG(1, 2))
	g := inmem.NewGeo()
	all := fill(g, 3000, rng)
	for q := 0; q < 200; q++ {
		lat, lng := 10.70+rng.Float64()*0.18, 106.60+rng.Float64()*0.20
		radius := []float64{500, 2000, 5000, 20000}[q%4]
		got, err := g.Nearby(context.Background(), "HCMC", "plumbing", lat, lng, radius, 10)
		if err != nil {
			t.Fatal(err)
		}
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
			if got[i].TechnicianID != want[i].TechnicianID {
				t.Fatalf("query %d rank %d: got %s, want %s", q, i, got[i].TechnicianID, want[i].TechnicianID)
			}
		}
	}
}

func TestUpdateMovesBetweenCells(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := inmem.NewGeo()
	g.Upsert(ctx, smp.TechnicianPosition{TechnicianID: "T1", City: "HCMC", Lat: 10.70, Lng: 106.60, Skills: []string{"x"}, Online: true, Available: true})
	g.Update(ctx, "T1", func(p *smp.TechnicianPosition, ok bool) bool { p.Lat, p.Lng = 10.85, 106.75; return ok })
	if got, _ := g.Nearby(ctx, "HCMC", "x", 10.70, 106.60, 1000, 5); len(got) != 0 {
		t.Fatal("found at the old position")
	}
	if got, _ := g.Nearby(ctx, "HCMC", "x", 10.85, 106.75, 1000, 5); len(got) != 1 {
		t.Fatal("not found at the new position")
	}
	g.Update(ctx, "T1", func(p *smp.TechnicianPosition, ok bool) bool { return false })
	if _, ok, _ := g.Get(ctx, "T1"); ok {
		t.Fatal("not removed")
	}
}

func BenchmarkNearby(b *testing.B) {
	for _, n := range []int{200, 10000} {
		for _, radius := range []float64{2000, 5000} {
			b.Run(fmt.Sprintf("technicians=%d/radius=%.0fkm", n, radius/1000), func(b *testing.B) {
				rng := mrand.New(mrand.NewPCG(1, 2))
				g := inmem.NewGeo()
				fill(g, n, rng)
				ctx := context.Background()
				for b.Loop() {
					g.Nearby(ctx, "HCMC", "plumbing", 10.70+rng.Float64()*0.18, 106.60+rng.Float64()*0.20, radius, 3)
				}
			})
		}
	}
}
